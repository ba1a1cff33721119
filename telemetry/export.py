"""Writing outputs: tracks and layers as GeoParquet, GeoPackage, GeoJSON or CSV.

Every write is atomic (a temporary file in the target folder, then a rename),
so a crash never leaves a half-written output behind.
"""

from __future__ import annotations

import gc
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from telemetry.errors import TelemetryError
from telemetry.schema import endpoint_columns

FORMATS = {".parquet": "parquet", ".geoparquet": "parquet", ".gpkg": "gpkg", ".csv": "csv"}


def output_format(path: str | os.PathLike[str]) -> str:
    """``parquet``, ``gpkg`` or ``csv`` from the file extension (anything else is an error)."""
    ext = Path(path).suffix.lower()
    if ext not in FORMATS:
        raise TelemetryError(f"unknown output type {ext or '(none)'!r}; use .parquet, .gpkg or .csv", str(path))
    return FORMATS[ext]


def write_tracks(tracks: pd.DataFrame, path: str | os.PathLike[str], *, fmt: str | None = None) -> None:
    """Write tracks atomically (temp file in the same folder, then rename).

    GeoParquet and GeoPackage get point geometry (EPSG:4326; none for rows without
    coordinates) and the parameters as metadata (Parquet key ``telemetry``, GeoPackage
    layer metadata ``telemetry_parameters``); CSV gets a ``<out>.json`` sidecar.

    GeoParquet is written in slices of one row group each, straight from the columns (no
    shapely points, no GeoDataFrame copy): the bytes are those of
    ``GeoDataFrame.to_parquet`` and memory stays bounded by one slice.
    """
    fmt = fmt or output_format(path)
    path = Path(path)
    meta = json.dumps(
        {"parameters": tracks.attrs.get("parameters", {}), "steps": tracks.attrs.get("steps", [])},
        sort_keys=True, separators=(",", ":"), default=str,
    )
    df = tracks.copy(deep=False)
    df.attrs = {}
    if fmt == "csv":
        atomic_write(path, lambda tmp: df.to_csv(tmp, index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ"))
        atomic_write(path.with_name(path.name + ".json"), lambda tmp: Path(tmp).write_text(meta + "\n"))
        return
    if fmt == "parquet":
        atomic_write(path, lambda tmp: _write_point_parquet(df, tmp, {b"telemetry": meta.encode()}))
        return
    # GeoPackage has no categoricals: plain strings (nullable ints stay ints here)
    layer = _PointLayer(df, keep_missing=True, ints_as_float=False)
    atomic_write(path, lambda tmp: _write_gpkg_arrow(layer.reader(), tmp, "tracks", {"telemetry_parameters": meta},
                                                     geometry_type=layer.geometry_type()))


_ROW_GROUP = 1024 * 1024
"""pyarrow's default maximum row-group length (rows): writing slices of exactly this size
gives the same Parquet file as one ``write_table`` call of the whole table."""

_GPKG_BATCH = 1024 * 1024
"""Rows per Arrow batch handed to GDAL for GeoPackage layers. Bounds the temporary copies
(~0.5 GB per batch); a layer that fits in one batch gives the very bytes of the
GeoDataFrame route (GDAL lays out the file pages per batch, so larger layers hold the
same rows and features but in a different page order)."""


def _point_wkb(lon: np.ndarray, lat: np.ndarray) -> Any:
    """2-D points as a pyarrow binary array of ISO WKB (null where lon or lat is not finite).

    Each value is the 21 bytes shapely writes for a point (byte order 1 = little endian,
    geometry type 1, x, y as float64), built with one numpy record array instead of a
    million shapely objects.
    """
    import pyarrow as pa

    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    ok = np.isfinite(lon) & np.isfinite(lat)
    n_ok = int(ok.sum())
    rec = np.empty(n_ok, dtype=np.dtype([("order", "u1"), ("type", "<u4"), ("x", "<f8"), ("y", "<f8")]))
    rec["order"] = 1
    rec["type"] = 1
    rec["x"] = lon[ok]
    rec["y"] = lat[ok]
    offsets = np.zeros(len(lon) + 1, dtype=np.int32)
    np.cumsum(ok * np.int32(rec.itemsize), out=offsets[1:])
    validity = None if n_ok == len(lon) else pa.array(ok, type=pa.bool_()).buffers()[1]
    return pa.Array.from_buffers(pa.binary(), len(lon), [validity, pa.py_buffer(offsets), pa.py_buffer(rec.tobytes())],
                                 null_count=len(lon) - n_ok)


def _xy(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``lon``, ``lat`` of a table as float arrays (degrees; NaN for missing)."""
    return (df["lon"].to_numpy(dtype=float, na_value=np.nan), df["lat"].to_numpy(dtype=float, na_value=np.nan))


def _geo_metadata(lon: np.ndarray, lat: np.ndarray, sample: pd.DataFrame) -> bytes:
    """GeoParquet ``geo`` metadata of a point column, as geopandas writes it.

    geopandas derives it from the whole GeoSeries (bounding box, geometry types); a
    two-row GeoDataFrame holding the two bbox corners has the same bbox and types, so its
    metadata is that of the full table at the cost of two points.
    """
    import geopandas as gpd
    from geopandas.io.arrow import _create_metadata, _encode_metadata

    ok = np.isfinite(lon) & np.isfinite(lat)
    if ok.any():
        xs = [lon[ok].min(), lon[ok].max()]
        ys = [lat[ok].min(), lat[ok].max()]
        geom = gpd.points_from_xy(xs, ys)
    else:
        geom = gpd.GeoSeries([None, None]).values
    proto = gpd.GeoDataFrame(sample.iloc[:0].reindex(range(2)), geometry=geom, crs="EPSG:4326")
    return _encode_metadata(_create_metadata(proto))


def _write_point_parquet(df: pd.DataFrame, path: str, extra_meta: dict[bytes, bytes]) -> None:
    """GeoParquet of ``df`` with a point ``geometry`` from ``lon``/``lat`` (EPSG:4326), in
    slices of one row group; byte-identical to ``GeoDataFrame.to_parquet(index=False)``."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from geopandas.io._geoarrow import construct_wkb_array
    from pyproj import CRS

    lon, lat = _xy(df)
    attrs = df.drop(columns=["geometry"], errors="ignore")
    geo = _geo_metadata(lon, lat, attrs)
    # geopandas' geometry field (WKB, geoarrow extension metadata with the CRS)
    field, _ = construct_wkb_array(np.empty(0, dtype=object), field_name="geometry", crs=CRS("EPSG:4326"))
    # the schema (with pandas metadata) as geopandas builds it: the attributes plus a null
    # geometry column, replaced by the WKB one; the first slice fixes it for the others
    schema = None
    writer = None
    try:
        for start in range(0, max(len(df), 1), _ROW_GROUP):
            part = attrs.iloc[start : start + _ROW_GROUP]
            table = pa.Table.from_pandas(part.assign(geometry=None), preserve_index=False, schema=schema)
            if schema is None:
                schema = table.schema
            table = table.set_column(table.num_columns - 1, field,
                                     _point_wkb(lon[start : start + _ROW_GROUP], lat[start : start + _ROW_GROUP]))
            md = dict(schema.metadata or {})
            md[b"geo"] = geo
            md.update(extra_meta)
            table = table.replace_schema_metadata(md)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


class _PointLayer:
    """A big point layer (the tracks) kept as its table and streamed to GDAL in Arrow batches.

    Building a GeoDataFrame of a million shapely points, converting categoricals to Python
    strings and copying the rows with coordinates would take seconds and a full copy of the
    table; this hands GDAL the same columns (plain strings / floats, WKB points) one batch
    at a time instead. ``keep_missing`` keeps rows without coordinates (null geometry).
    """

    def __init__(self, df: pd.DataFrame, *, keep_missing: bool = False, ints_as_float: bool = True) -> None:
        self.df = df
        self.keep_missing = keep_missing
        self.ints_as_float = ints_as_float

    def __len__(self) -> int:
        return len(self.df)

    def reader(self) -> Any:
        """A ``pyarrow.RecordBatchReader`` of the layer (geometry column ``geometry``, last)."""
        import pyarrow as pa

        df = self.df
        lon, lat = _xy(df)
        has = np.isfinite(lon) & np.isfinite(lat)
        attrs = df.drop(columns=["geometry"], errors="ignore")
        attrs.attrs = {}
        geom_field = pa.field("geometry", pa.binary())
        keep = self.keep_missing
        # nullable ints → float64 (as _plain_columns does for every format)
        floats = {c for c in attrs.columns if self.ints_as_float and _is_nullable_int(attrs[c].dtype)}
        # object columns of anything but strings (bools of a vendor column, mixed values):
        # pyogrio's row writer stores str(value); do the same rather than let Arrow type them
        texts = [c for c in attrs.columns if attrs[c].dtype == object
                 and pd.api.types.infer_dtype(attrs[c], skipna=True) not in ("string", "empty")]

        def convert(start: int, schema: Any) -> Any:
            sl = slice(start, start + _GPKG_BATCH)
            m = has[sl]
            part = attrs.iloc[sl] if keep else attrs.iloc[sl][m]
            if texts:
                part = part.assign(**{c: _as_text(part[c]) for c in texts})
            x, y = (lon[sl], lat[sl]) if keep else (lon[sl][m], lat[sl][m])
            table = _plain_arrow(pa.Table.from_pandas(part, preserve_index=False, schema=schema), floats)
            return table.append_column(geom_field, _point_wkb(x, y))

        # the schema of the first batch fixes the types of all later ones (an all-missing
        # object column in a later batch must not change type)
        head = attrs.iloc[: _GPKG_BATCH]
        raw_schema = pa.Schema.from_pandas(head.assign(**{c: _as_text(head[c]) for c in texts}),
                                           preserve_index=False)
        first = convert(0, raw_schema)
        starts = range(_GPKG_BATCH, len(df), _GPKG_BATCH)

        def batches() -> Any:
            yield from first.to_batches()
            for start in starts:
                yield from convert(start, raw_schema).cast(first.schema).to_batches()

        return pa.RecordBatchReader.from_batches(first.schema, batches())

    def geometry_type(self) -> str:
        """``Point``, or ``Unknown`` when no row has coordinates (as pyogrio infers it)."""
        lon, lat = _xy(self.df)
        return "Point" if (np.isfinite(lon) & np.isfinite(lat)).any() else "Unknown"


def _is_nullable_int(dtype: Any) -> bool:
    """True for pandas' nullable integer dtypes (``Int64`` …), which GeoPackage gets as floats."""
    return isinstance(dtype, pd.api.extensions.ExtensionDtype) and pd.api.types.is_integer_dtype(dtype)


def _as_text(col: pd.Series) -> pd.Series:
    """``str(value)`` of every non-missing value, None for missing (object dtype)."""
    vals = col.to_numpy(dtype=object)
    return pd.Series(np.where(pd.isna(vals), None, vals.astype(str)), index=col.index, dtype=object)


def _plain_arrow(table: Any, floats: set[str]) -> Any:
    """Arrow columns that GDAL writes as pyogrio's row-by-row writer does for :func:`_plain_columns`.

    Dictionaries (categoricals) → their values (strings as ``string``); nullable ints in
    ``floats`` → float64; null-typed columns → strings (GDAL has no null type); timestamps floored to the
    millisecond (GeoPackage keeps ms: the row writer truncates, GDAL's Arrow reader
    would round).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    for k, field in enumerate(table.schema):
        t = field.type
        col = table.column(k)
        if pa.types.is_dictionary(t):
            t = t.value_type
            col = col.cast(t)
        if pa.types.is_large_string(t) or pa.types.is_string_view(t) or pa.types.is_null(t):
            t, col = pa.string(), col.cast(pa.string())
        elif field.name in floats:
            t, col = pa.float64(), col.cast(pa.float64())
        elif pa.types.is_timestamp(t) and t.unit in ("us", "ns"):
            col = pc.floor_temporal(col, unit="millisecond")
        if col is not table.column(k):
            table = table.set_column(k, pa.field(field.name, t), col)
    return table


def _write_gpkg_arrow(reader: Any, path: str, layer: str, layer_metadata: dict[str, str], *,
                      append: bool = False, geometry_type: str = "Point") -> None:
    """One GeoPackage layer from an Arrow stream (what ``to_file(use_arrow=True)`` does)."""
    from pyogrio.raw import write_arrow

    write_arrow(reader, path, layer=layer, driver="GPKG", geometry_name="geometry", geometry_type=geometry_type,
                crs="EPSG:4326", append=append, layer_metadata=layer_metadata)


def atomic_write(path: str | os.PathLike[str], write: Callable[[str], object]) -> None:
    """Call ``write(tmp_path)`` then move the temporary file onto ``path``.

    The temporary file is in the same folder (same file system), so the final
    rename is atomic; on failure nothing is left behind.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise TelemetryError(f"cannot create the output folder: {err.strerror or err}", str(folder)) from None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=folder)
    os.close(fd)
    try:
        os.unlink(tmp)  # writers (GPKG) refuse to open an existing empty file
        write(tmp)
        os.replace(tmp, path)
    except OSError as err:
        raise TelemetryError(f"cannot write: {err.strerror or err}", str(path)) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_geojson(gdf: Any, path: str | os.PathLike[str], meta: dict[str, Any]) -> None:
    """Write a GeoDataFrame as RFC 7946 GeoJSON atomically; times as ISO 8601 UTC strings.

    Geometries are oriented and rounded by :func:`rfc7946_geometry` (6 decimals, polygon
    exteriors counter-clockwise). ``meta`` goes into the FeatureCollection as the foreign
    member ``"telemetry"``. The same frame and metadata give the same bytes.
    """
    geoms = [rfc7946_geometry(g) for g in gdf.geometry.values]
    df = gdf.copy()
    df.attrs = {}
    for c in df.columns:
        if pd.api.types.is_float_dtype(df[c].dtype):
            df[c] = df[c].where(np.isfinite(df[c]), np.nan)  # JSON has no Infinity
        elif isinstance(df[c].dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(df[c].dtype):
            df[c] = df[c].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    doc = json.loads(df.to_json(na="null", drop_id=True))
    for feature, geom in zip(doc["features"], geoms):
        feature["geometry"] = geom
    doc["telemetry"] = meta
    text = json.dumps(doc, ensure_ascii=False, sort_keys=False, default=str, allow_nan=False,
                      separators=(",", ":"))
    atomic_write(path, lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))


# --------------------------------------------------------------------------- layered exports
#
# A "layer" is one product (corridors, hotspots, crossing counts, home ranges, tracks, …)
# as a GeoDataFrame in EPSG:4326. The public set is generalised (telemetry.generalise);
# the internal set keeps exact positions and is for the field team only.

EXPORT_FORMATS = {".geojson": "geojson", ".json": "geojson", ".gpkg": "gpkg", ".parquet": "parquet",
                  ".geoparquet": "parquet", ".csv": "csv"}
PUBLIC_LAYERS = ("corridors", "hotspots", "crossing_counts", "home_ranges")
INTERNAL_LAYERS = ("tracks", "crossings", "hotspots", "corridors", "home_ranges", "clusters")
DEFAULT_LICENCE = "CC-BY-4.0"
BORDER_NOTE = ("International borders are shown as in Natural Earth (naturalearthdata.com, public domain); "
               "their depiction implies no position on disputed borders or territories.")
COORD_DECIMALS = 6
"""RFC 7946 §11.2: 6 decimals (≈ 0.1 m) is more than GPS collars resolve."""


def export_format(path: str | os.PathLike[str]) -> str:
    """``geojson``, ``gpkg``, ``parquet`` or ``csv`` from the file extension."""
    ext = Path(path).suffix.lower()
    if ext not in EXPORT_FORMATS:
        raise TelemetryError(f"unknown export type {ext or '(none)'!r}; use .geojson, .gpkg, .parquet or .csv",
                             str(path))
    return EXPORT_FORMATS[ext]


def _gdf(df: Any, geometry: Any = None) -> Any:
    """GeoDataFrame in EPSG:4326; ``geometry=None`` → a column of missing geometries."""
    import geopandas as gpd

    if geometry is None:
        geometry = np.full(len(df), None, dtype=object)
    df = pd.DataFrame(df).reset_index(drop=True)
    return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(np.asarray(geometry, dtype=object), crs="EPSG:4326"))


def public_layers(crossings: pd.DataFrame | None = None, hotspots: pd.DataFrame | None = None,
                  corridors: pd.DataFrame | None = None, home_ranges: pd.DataFrame | None = None, *,
                  grid_deg: float = 0.1) -> dict[str, Any]:
    """Generalised, aggregate layers that are safe to publish (see :mod:`telemetry.generalise`).

    Parameters
    ----------
    crossings, hotspots, corridors, home_ranges : DataFrame, optional
        Outputs of :func:`telemetry.crossings`, :func:`telemetry.hotspots`,
        :func:`telemetry.corridors`, :func:`telemetry.home_ranges`; None → layer skipped.
    grid_deg : float
        Generalisation grid (degrees; 0.1 = GBIF "high sensitivity").

    Returns
    -------
    dict of GeoDataFrame
        ``corridors`` and ``home_ranges``: polygons replaced by the union of the grid cells
        they touch, areas (km², of the precise polygon) rounded to whole km²;
        ``hotspots``: one grid cell (polygon) per border pair and cell, with summed counts
        and first/last month; ``crossing_counts``: events per border × month × direction ×
        kind, no geometry. No exact point, time or animal path survives.
    """
    from telemetry import generalise as gen

    gen.check_grid_deg(grid_deg)
    out: dict[str, Any] = {}
    if corridors is not None:
        keep = [c for c in ("corridor_id", "method", "n_animals", "animal_count", "countries", "cross_border",
                            "hotspots", "crossings", "months", "area_km2") if c in corridors.columns]
        df = pd.DataFrame(corridors[keep]).reset_index(drop=True)
        if "area_km2" in df:
            df["area_km2"] = df["area_km2"].round(0)
        geom = gen.generalise_polygons(corridors.geometry.to_numpy(), grid_deg)
        out["corridors"] = _gdf(df, geom)
    if hotspots is not None:
        out["hotspots"] = _public_hotspots(hotspots, grid_deg)
    if crossings is not None:
        out["crossing_counts"] = _gdf(crossing_counts(crossings), None)
    if home_ranges is not None:
        keep = [c for c in ("animal_id", "method", "level_pct", "n_fixes", "area_km2") if c in home_ranges.columns]
        df = pd.DataFrame(home_ranges[keep]).reset_index(drop=True)
        if "area_km2" in df:
            df["area_km2"] = df["area_km2"].round(0)
        geom = gen.generalise_polygons(home_ranges.geometry.to_numpy(), grid_deg)
        out["home_ranges"] = _gdf(df, geom)
    return out


def crossing_counts(crossings: pd.DataFrame) -> pd.DataFrame:
    """Border events per border × month × direction × kind (no points, no exact times).

    Returns
    -------
    pandas.DataFrame
        ``border`` (``"KAZ–KGZ"``, zones in sorted order), ``month`` (``YYYY-MM``, UTC),
        ``from_iso``, ``to_iso`` (``from_zone``, ``to_zone`` for a user zone layer), ``kind``
        (``crossing``/``excursion``), ``n_events``,
        ``n_animals``; sorted by border, month, direction, kind.
    """
    from telemetry.generalise import month

    col_from, col_to = endpoint_columns(crossings) if crossings is not None else ("from_iso", "to_iso")
    cols = ["border", "month", col_from, col_to, "kind", "n_events", "n_animals"]
    if crossings is None or len(crossings) == 0:
        return pd.DataFrame({c: pd.Series(dtype=object if c[:2] != "n_" else np.int64) for c in cols})
    fa = crossings[col_from].astype(str).to_numpy(dtype=object)
    ta = crossings[col_to].astype(str).to_numpy(dtype=object)
    df = pd.DataFrame({
        "border": np.where(fa < ta, fa + "–" + ta, ta + "–" + fa),
        "month": month(crossings["time"]).to_numpy(dtype=object),
        col_from: fa, col_to: ta,
        "kind": crossings["kind"].astype(str).to_numpy(dtype=object) if "kind" in crossings else "crossing",
        "animal": crossings["animal_id"].astype(str).to_numpy(dtype=object),
    })
    df["month"] = df["month"].fillna("unknown")
    g = df.groupby(cols[:5], sort=True)
    tab = g.agg(n_events=("animal", "size"), n_animals=("animal", "nunique")).reset_index()
    return tab[cols].astype({"n_events": np.int64, "n_animals": np.int64})


def _public_hotspots(hotspots: pd.DataFrame, grid_deg: float) -> Any:
    """Hotspots → one cell per border pair and cell, counts summed, months unioned."""
    from telemetry import generalise as gen

    pts = hotspots.geometry.to_numpy()
    lon, lat = shapely_xy(pts)
    ok = np.isfinite(lon) & np.isfinite(lat)
    h = pd.DataFrame(hotspots.drop(columns=[c for c in ("geometry", "segment") if c in hotspots.columns]))
    h = h.reset_index(drop=True)[ok]
    i, j = gen.cell_index(lon[ok], lat[ok], grid_deg)
    h = h.assign(_i=i, _j=j, first_month=gen.month(h["first"]).to_numpy(dtype=object),
                 last_month=gen.month(h["last"]).to_numpy(dtype=object))
    cols = ["name", "zone_a", "zone_b", "n_crossings", "n_animals", "n_a_to_b", "n_b_to_a", "months",
            "first_month", "last_month"]
    if h.empty:
        return _gdf(pd.DataFrame({c: pd.Series(dtype=object) for c in cols}), np.array([], dtype=object))

    def union(values: pd.Series, sep: str = ",", key: Any = str) -> str:
        items = {v for s in values.dropna().astype(str) for v in s.split(sep) if v}
        return sep.join(sorted(items, key=key))

    g = h.groupby(["zone_a", "zone_b", "_i", "_j"], sort=True)
    tab = g.agg(name=("name", lambda s: "; ".join(sorted(s.astype(str)))),
                n_crossings=("n_crossings", "sum"), n_a_to_b=("n_a_to_b", "sum"), n_b_to_a=("n_b_to_a", "sum"),
                n_animals=("animals", lambda s: len(union(s).split(",")) if union(s) else 0),
                months=("months", lambda s: union(s, key=int)),
                first_month=("first_month", "min"), last_month=("last_month", "max")).reset_index()
    geom = gen.cell_polygons(tab["_i"].to_numpy(), tab["_j"].to_numpy(), grid_deg)
    return _gdf(tab[cols], geom)


def shapely_xy(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x, y of point geometries (NaN for missing or empty; centroid for non-points)."""
    import shapely

    geoms = np.asarray(geoms, dtype=object)
    bad = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    pts = np.where(bad, None, geoms)
    pts = np.where(shapely.get_type_id(pts) == 0, pts, shapely.centroid(pts))
    x, y = shapely.get_x(pts), shapely.get_y(pts)
    return np.where(bad, np.nan, x), np.where(bad, np.nan, y)


def internal_layers(tracks: pd.DataFrame | None = None, crossings: pd.DataFrame | None = None,
                    hotspots: pd.DataFrame | None = None, corridors: pd.DataFrame | None = None,
                    home_ranges: pd.DataFrame | None = None) -> dict[str, Any]:
    """Exact layers for the field team (NOT for publication: positions and times are exact).

    ``tracks`` become points (every row that has coordinates, flagged ones included, with
    their ``flag``); ``clusters`` (from ``cluster_id``) are cluster centroids; hotspots
    keep their border ``segment`` as WKT; the other layers are passed through.
    """
    return _internal_layers(tracks, crossings, hotspots, corridors, home_ranges, stream_tracks=False)


def track_lines(tracks: pd.DataFrame, *, steps_from_metrics: bool = False) -> Any:
    """One LineString per animal and segment through its usable fixes, in time order.

    ``steps_from_metrics=True`` says ``tracks`` come unchanged from :func:`telemetry.process`:
    the lengths then add up its ``step_m`` instead of measuring the steps again (the same
    floats, ~0.4 s less per million fixes; see :func:`_steps_m`).

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326; ``animal_id``, ``segment_id`` (NA without segments), ``start`` / ``end``
        (UTC), ``n_fixes`` and ``length_km`` (geodesic, sum of the steps between the
        line's fixes); runs of a single fix are left out (no line).
    """
    import geopandas as gpd
    import shapely

    from telemetry.trajectory._arrays import group_codes, sorted_usable

    pos, codes, t = sorted_usable(tracks)
    seg = (tracks["segment_id"].to_numpy(dtype=float, na_value=-1.0)[pos] if "segment_id" in tracks.columns
           else np.full(pos.size, -1.0))
    lon = tracks["lon"].to_numpy(dtype=float, na_value=np.nan)[pos]
    lat = tracks["lat"].to_numpy(dtype=float, na_value=np.nan)[pos]
    new = np.ones(pos.size, dtype=bool)
    new[1:] = (codes[1:] != codes[:-1]) | (seg[1:] != seg[:-1])
    line = np.cumsum(new) - 1
    n = np.bincount(line) if pos.size else np.zeros(0, np.int64)
    keep = n[line] >= 2
    _, labels = group_codes(tracks)
    first = np.flatnonzero(new)[n >= 2]
    last = first + n[n >= 2] - 1
    step = np.zeros(pos.size)
    if pos.size > 1:
        step[1:] = np.where(new[1:], 0.0, _steps_m(tracks, pos, new, lon, lat, steps_from_metrics)[1:])
    length = np.bincount(line, weights=step, minlength=n.size)[n >= 2] / 1000.0
    _, ids = np.unique(line[keep], return_inverse=True)
    geoms = shapely.linestrings(np.column_stack([lon[keep], lat[keep]]), indices=ids) if keep.any() \
        else np.array([], dtype=object)
    out = pd.DataFrame({
        "animal_id": np.asarray(labels.astype(str))[codes[first]] if first.size else np.array([], dtype=object),
        "segment_id": pd.array(np.where(seg[first] >= 0, seg[first], np.nan), dtype="Int64"),
        "start": pd.to_datetime(t[first], utc=True),
        "end": pd.to_datetime(t[last], utc=True),
        "n_fixes": n[n >= 2].astype(np.int64),
        "length_km": length,
    })
    return gpd.GeoDataFrame(out, geometry=gpd.GeoSeries(geoms, crs="EPSG:4326"))


def _steps_m(tracks: pd.DataFrame, pos: np.ndarray, new: np.ndarray, lon: np.ndarray, lat: np.ndarray,
             from_metrics: bool) -> np.ndarray:
    """Geodesic step (m) from each sorted usable fix to the previous one (meaningless where ``new``).

    ``pos`` are :func:`~telemetry.trajectory._arrays.sorted_usable` positions, ``new`` marks
    the first fix of each animal and segment. In tracks straight from
    :func:`telemetry.process` (``from_metrics``), :func:`telemetry.metrics` measured exactly
    these steps on ``lon``/``lat`` into ``step_m`` (same fixes, order, segments and numba
    geodesic, so the same floats): they are taken from there, provided ``step_m`` is NaN
    exactly at the line starts (a guard, not a proof: a fix flagged or moved since would
    leave stale steps that no cheap test finds, hence the opt-in). Otherwise measured here.
    """
    from telemetry.trajectory.geodesic import distance_m

    if from_metrics and "step_m" in tracks.columns and "metrics" in tracks.attrs.get("steps", ()):
        known = tracks["step_m"].to_numpy(dtype=float, na_value=np.nan)[pos]
        if np.array_equal(np.isfinite(known), ~new):
            return known
    out = np.zeros(pos.size)
    out[1:] = distance_m(lon[:-1], lat[:-1], lon[1:], lat[1:])
    return out


def _internal_layers(tracks: pd.DataFrame | None, crossings: pd.DataFrame | None, hotspots: pd.DataFrame | None,
                     corridors: pd.DataFrame | None, home_ranges: pd.DataFrame | None, *,
                     stream_tracks: bool, fix_points: bool = True,
                     steps_from_metrics: bool = False) -> dict[str, Any]:
    """:func:`internal_layers`; ``stream_tracks=True`` gives the tracks as a :class:`_PointLayer`
    (for :func:`write_gpkg_layers`: same GeoPackage, no GeoDataFrame of every fix);
    ``fix_points=False`` replaces the per-fix ``tracks`` layer by ``track_lines``
    (:func:`track_lines`, with ``steps_from_metrics``)."""
    out: dict[str, Any] = {}
    if tracks is not None and not fix_points:
        out["track_lines"] = track_lines(tracks, steps_from_metrics=steps_from_metrics)
    elif tracks is not None and stream_tracks and _PointLayer(tracks).geometry_type() == "Point":
        # (a layer without any point goes the GeoDataFrame way: GDAL lays out the file of
        # an empty layer differently when it comes through Arrow)
        out["tracks"] = _PointLayer(tracks)
    elif tracks is not None:
        df = _plain_columns(pd.DataFrame(tracks))
        lon = df["lon"].to_numpy(dtype=float, na_value=np.nan)
        lat = df["lat"].to_numpy(dtype=float, na_value=np.nan)
        has = np.isfinite(lon) & np.isfinite(lat)
        import geopandas as gpd

        out["tracks"] = _gdf(df[has].reset_index(drop=True), gpd.points_from_xy(lon[has], lat[has]))
    if crossings is not None:
        out["crossings"] = crossings
    if hotspots is not None:
        h = hotspots.copy()
        if "segment" in h.columns:
            seg = h.pop("segment")
            h["segment_wkt"] = [g.wkt if g is not None else None for g in seg]  # a few hotspots
        out["hotspots"] = h
    if corridors is not None:
        out["corridors"] = corridors
    if home_ranges is not None:
        out["home_ranges"] = home_ranges
    if tracks is not None and "cluster_id" in tracks.columns:
        from telemetry.trajectory.segment import cluster_table

        ct = cluster_table(tracks)
        if stream_tracks and len(ct) and np.isfinite(ct[["lon", "lat"]].to_numpy(dtype=float)).all():
            # ~100,000 resting clusters per million fixes: streamed from the columns like
            # the tracks (same GeoPackage layer, no shapely point per cluster)
            out["clusters"] = _PointLayer(ct)
        else:
            import geopandas as gpd

            out["clusters"] = _gdf(ct, gpd.points_from_xy(ct["lon"], ct["lat"]))
    return out


def _plain_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Columns every format can hold: categoricals → str, nullable ints → float, no attrs."""
    df = df.copy(deep=False)
    df.attrs = {}
    for c in df.columns:
        dt = df[c].dtype
        if isinstance(dt, pd.CategoricalDtype):
            df[c] = df[c].astype(object)
        elif _is_nullable_int(dt):
            df[c] = df[c].astype("float64")
    return df


SYNTHETIC_NOTE = ("made from SYNTHETIC collar data (simulated animals, e.g. the bundled sample), "
                  "not from observations of real animals.")


def synthetic_sources(tracks: pd.DataFrame | None) -> list[str]:
    """Input files that declare themselves synthetic (``SYNTHETIC`` in the file name, as the
    bundled sample's do): everything made from them must say so."""
    if tracks is None:
        return []
    names = [str(r.get("source", "")) for r in tracks.attrs.get("sources") or []]
    if not names and "source" in tracks.columns:
        names = [str(c) for c in tracks["source"].astype("category").cat.categories]
    return sorted({Path(n.split("::")[0]).name for n in names if "SYNTHETIC" in Path(n.split("::")[-1]).name})


def export_metadata(*, audience: str, grid_deg: float | None, params: dict[str, Any] | None = None,
                    generated: str | None = None, tracks: pd.DataFrame | None = None,
                    layers: dict[str, Any] | None = None, licence: str = DEFAULT_LICENCE) -> dict[str, Any]:
    """Metadata of an export (goes into the GeoJSON FeatureCollection as ``"telemetry"``).

    ``generated`` is never the wall-clock time (that would break byte-identical reruns):
    it is the value given, else derived from the data — the month of the last usable fix
    (``YYYY-MM``, public: times are only shown to the month), or the full time of that fix
    for internal exports; ``generated_from`` says which.
    """
    from telemetry import __version__

    basis = "given"
    if generated is None:
        last = _last_time(tracks, layers)
        if last is not None:
            generated = last.strftime("%Y-%m") if audience == "public" else last.strftime("%Y-%m-%dT%H:%M:%SZ")
            basis = "month of the last fix in the data" if audience == "public" else "time of the last fix"
        else:
            basis = "no times in the data"
    meta: dict[str, Any] = {
        "title": "Collar telemetry: movement corridors and border crossings",
        "audience": audience,
        "generated": generated,
        "generated_from": basis,
        "tool": "telemetry",
        "tool_version": __version__,
        "licence": licence,
        "borders_note": BORDER_NOTE,
        "layers": sorted(layers) if layers else [],
        "parameters": _jsonable(params or {}),
    }
    synthetic = synthetic_sources(tracks)
    if synthetic:
        meta["title"] = "SYNTHETIC DATA – " + meta["title"]
        meta["synthetic"] = SYNTHETIC_NOTE + " Sources: " + ", ".join(synthetic)
    if audience == "public":
        meta["generalisation"] = {
            "grid_deg": grid_deg,
            "positions": (f"every coordinate is a corner or centre of a {grid_deg}° × {grid_deg}° lon/lat grid "
                          "aligned on 0°, 0°: points are given as the cell holding them, polygons as the union "
                          "of the cells they touch (so they only grow); locations are revealed only to one cell"),
            "times": "calendar month (UTC)",
            "omitted": "raw fixes, tracks, exact crossing points and times, individual crossing events, "
                       "resting clusters",
            "practice": "GBIF sensitive-species data generalisation (Chapman 2020), high sensitivity = 0.1°",
        }
    else:
        meta["warning"] = "EXACT POSITIONS OF A SENSITIVE SPECIES: do not publish or share outside the team."
    return meta


def _last_time(tracks: pd.DataFrame | None, layers: dict[str, Any] | None) -> pd.Timestamp | None:
    """Latest usable fix time, else the latest time found in the layers."""
    if tracks is not None and len(tracks):
        from telemetry.trajectory._arrays import usable_mask

        t = tracks["time"][usable_mask(tracks)]
        if t.notna().any():
            return pd.Timestamp(t.max()).tz_convert("UTC")
    best = None
    for layer in (layers or {}).values():
        layer = layer.df if isinstance(layer, _PointLayer) else layer  # a streamed layer: its table
        for c in layer.columns:
            if isinstance(layer[c].dtype, pd.DatetimeTZDtype) and layer[c].notna().any():
                m = pd.Timestamp(layer[c].max()).tz_convert("UTC")
                best = m if best is None or m > best else best
    return best


def _jsonable(obj: Any) -> Any:
    """Parameters as plain JSON (tuples → lists, numpy scalars → Python, others → str)."""
    return json.loads(json.dumps(obj, sort_keys=True, default=_json_default))


def _json_default(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (set, frozenset)):
        return sorted(v)
    if isinstance(v, pd.Timestamp):
        return v.strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(v)


def _round_coords(obj: Any, nd: int = COORD_DECIMALS) -> Any:
    """Nested coordinate lists rounded to ``nd`` decimals (``-0.0`` written as ``0.0``)."""
    if isinstance(obj, (list, tuple)):
        if obj and isinstance(obj[0], (int, float)):
            return [round(float(v), nd) + 0.0 for v in obj]
        return [_round_coords(o, nd) for o in obj]
    return obj


def rfc7946_geometry(geom: Any) -> dict[str, Any] | None:
    """A shapely geometry as an RFC 7946 geometry object: polygon exteriors counter-clockwise,
    holes clockwise (§3.1.6), coordinates rounded to 6 decimals; None for missing/empty."""
    import shapely

    if geom is None or shapely.is_empty(geom):
        return None
    g = shapely.orient_polygons(geom) if shapely.get_type_id(geom) in (3, 6, 7) else geom
    d = shapely.geometry.mapping(g)
    return _geometry_lists(d)


def _geometry_lists(d: Any) -> Any:
    if d.get("type") == "GeometryCollection":
        return {"type": d["type"], "geometries": [_geometry_lists(x) for x in d["geometries"]]}
    return {"type": d["type"], "coordinates": _round_coords(d["coordinates"])}


def _properties(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts: times ISO 8601 UTC, NaN/NA → null, numpy → Python."""
    df = _plain_columns(pd.DataFrame(df))
    for c in df.columns:
        dt = df[c].dtype
        if isinstance(dt, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(dt):
            t = pd.to_datetime(df[c], utc=True)
            df[c] = t.dt.strftime("%Y-%m-%dT%H:%M:%SZ").where(t.notna(), None)
    obj = df.astype(object)
    obj = obj.where(pd.notna(obj), None)
    recs = obj.to_dict("records")
    for r in recs:
        for k, v in r.items():
            if isinstance(v, np.generic):
                v = v.item()
            if isinstance(v, float) and not np.isfinite(v):
                v = None
            r[k] = v
    return recs


def feature_collection(layers: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """One RFC 7946 FeatureCollection of all layers; each feature says its ``layer``.

    No ``crs`` member (RFC 7946 §4: always WGS84 lon/lat); the metadata is the foreign
    member ``"telemetry"``.
    """
    feats: list[dict[str, Any]] = []
    for name in layers:
        gdf = layers[name]
        geoms = gdf.geometry.to_numpy() if getattr(gdf, "geometry", None) is not None and \
            gdf._geometry_column_name in gdf.columns else np.full(len(gdf), None, dtype=object)
        attrs = pd.DataFrame(gdf).drop(columns=[gdf._geometry_column_name], errors="ignore")
        for props, geom in zip(_properties(attrs), geoms, strict=True):
            feats.append({"type": "Feature", "properties": {"layer": name, **props},
                          "geometry": rfc7946_geometry(geom)})
    return {"type": "FeatureCollection", "telemetry": meta, "features": feats}


def write_feature_collection(layers: dict[str, Any], path: str | os.PathLike[str], meta: dict[str, Any]) -> None:
    """Write :func:`feature_collection` atomically; the same layers and metadata give the same bytes."""
    text = json.dumps(feature_collection(layers, meta), ensure_ascii=False, allow_nan=False,
                      separators=(",", ":"), default=_json_default)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))


def write_gpkg_layers(layers: dict[str, Any], path: str | os.PathLike[str], meta: dict[str, Any]) -> None:
    """One GeoPackage layer per product, metadata in each layer's ``telemetry`` metadata item.

    GDAL stamps ``gpkg_contents.last_change`` with the current time; it is pinned to
    ``meta["generated"]`` (or the epoch) so reruns give identical bytes.
    """
    import pyogrio

    text = json.dumps(meta, sort_keys=True, ensure_ascii=False, default=_json_default)
    options = {
        "OGR_CURRENT_DATE": _gdal_date(meta.get("generated")),
        # the file is a temporary one renamed only once complete (atomic_write), so SQLite
        # needs neither a rollback journal nor an fsync per transaction: ~2x faster writes.
        # These change how the file is written, not its bytes.
        "OGR_SQLITE_JOURNAL": "OFF",
        "OGR_SQLITE_SYNCHRONOUS": "OFF",
    }

    def write(tmp: str) -> None:
        old = {k: pyogrio.get_gdal_config_option(k) for k in options}
        pyogrio.set_gdal_config_options(options)
        try:
            for k, name in enumerate(layers):
                layer = layers[name]
                if isinstance(layer, _PointLayer):
                    _write_gpkg_arrow(layer.reader(), tmp, name, {"telemetry": text}, append=k > 0,
                                      geometry_type=layer.geometry_type())
                    continue
                ready = _gpkg_ready(layer)
                arrow = _gpkg_arrow_table(ready)
                if arrow is not None:
                    # GDAL's Arrow writer: ~3x faster than the row writer (100,000 resting
                    # clusters: 1.3 s → 0.4 s) and it releases the GIL; same bytes
                    _write_gpkg_arrow(arrow[0], tmp, name, {"telemetry": text}, append=k > 0,
                                      geometry_type=arrow[1])
                    continue
                # what the Arrow route cannot reproduce (see _gpkg_arrow_table): pyogrio's row writer
                ready.to_file(tmp, driver="GPKG", layer=name, engine="pyogrio", append=k > 0,
                              layer_metadata={"telemetry": text})
        finally:
            pyogrio.set_gdal_config_options(old)

    atomic_write(path, write)


def _gdal_date(generated: Any) -> str:
    """A fixed ``YYYY-MM-DDTHH:MM:SS.sssZ`` for GDAL from ``generated`` (epoch if unusable)."""
    try:
        t = pd.Timestamp(str(generated)) if generated else pd.Timestamp(0)
    except ValueError:
        t = pd.Timestamp(0)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _gpkg_ready(gdf: Any) -> Any:
    """GeoPackage-writable copy: plain columns, extra geometry columns as WKT, oriented polygons."""
    import geopandas as gpd
    import shapely

    geo_col = gdf._geometry_column_name if isinstance(gdf, gpd.GeoDataFrame) else None
    df = _plain_columns(pd.DataFrame(gdf))
    for c in df.columns:
        if c != geo_col and isinstance(df[c].dtype, gpd.array.GeometryDtype):
            df[c] = shapely.to_wkt(df[c].to_numpy(), rounding_precision=COORD_DECIMALS)
    geom = df.pop(geo_col).to_numpy() if geo_col in df.columns else np.full(len(df), None, dtype=object)
    geom = shapely.orient_polygons(np.asarray(geom, dtype=object))
    return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(geom, crs="EPSG:4326"))


_OGR_TYPE_NAMES = {0: "Point", 1: "LineString", 3: "Polygon", 4: "MultiPoint", 5: "MultiLineString",
                   6: "MultiPolygon", 7: "GeometryCollection"}
"""OGR layer geometry types by shapely type id (2, LinearRing, is never a layer type)."""


def _gpkg_arrow_table(gdf: Any) -> tuple[Any, str] | None:
    """A :func:`_gpkg_ready` layer as the Arrow table and layer geometry type that make GDAL's
    Arrow writer write the bytes of pyogrio's row writer; None when it cannot.

    The row writer (``to_file(engine="pyogrio")``) infers the layer type from the geometry
    types, promotes mixed single/multi geometries to multi, truncates times to the
    millisecond and stores ``str(value)`` of object columns that are not strings. Here the
    same columns go through :func:`_plain_arrow` (times floored to the ms, strings plain)
    and the WKB of geopandas' ``to_wkb``, as the row writer gets it. Left to the row writer
    (None): layers without rows or without any geometry (GDAL lays out an empty layer
    differently through Arrow), mixed geometry types (promotion to multi), 3-D geometries,
    and times that are not tz-aware UTC (the row writer stores local times and offsets).
    """
    import pyarrow as pa
    import shapely
    from geopandas.array import to_wkb

    geoms = gdf.geometry.to_numpy()  # shapely objects
    present = ~shapely.is_missing(geoms)
    if not len(gdf) or not present.any() or shapely.has_z(geoms[present]).any():
        return None
    types = np.unique(shapely.get_type_id(geoms[present]))
    if types.size != 1 or int(types[0]) not in _OGR_TYPE_NAMES:
        return None
    attrs = pd.DataFrame(gdf.drop(columns=[gdf.geometry.name]))
    for c in attrs.columns:
        dt = attrs[c].dtype
        if isinstance(dt, pd.DatetimeTZDtype) and str(dt.tz) != "UTC":
            return None
        if pd.api.types.is_datetime64_dtype(dt) or pd.api.types.is_timedelta64_dtype(dt):
            return None  # naive times, durations: as the row writer has them
    texts = [c for c in attrs.columns if attrs[c].dtype == object
             and pd.api.types.infer_dtype(attrs[c], skipna=True) not in ("string", "empty")]
    if texts:
        attrs = attrs.assign(**{c: _as_text(attrs[c]) for c in texts})
    table = _plain_arrow(pa.Table.from_pandas(attrs, preserve_index=False), set())
    table = table.append_column(pa.field("geometry", pa.binary()), pa.array(to_wkb(gdf.geometry.values), type=pa.binary()))
    return table, _OGR_TYPE_NAMES[int(types[0])]


def write_table_layers(layers: dict[str, Any], path: str | os.PathLike[str], meta: dict[str, Any],
                       fmt: str) -> None:
    """All layers in one table with a ``layer`` column: GeoParquet (``fmt="parquet"``, metadata
    under the Parquet key ``telemetry``) or CSV (geometry as WKT with 6 decimals, metadata in a
    ``<out>.json`` sidecar)."""
    import geopandas as gpd
    import shapely

    frames = []
    for name in layers:
        g = _gpkg_ready(layers[name])
        g.insert(0, "layer", name)
        frames.append(g)
    if frames:
        table = pd.concat(frames, ignore_index=True)
        table = gpd.GeoDataFrame(table, geometry="geometry", crs="EPSG:4326")
    else:
        table = gpd.GeoDataFrame({"layer": pd.Series(dtype=object)}, geometry=gpd.GeoSeries([], crs="EPSG:4326"))
    text = json.dumps(meta, sort_keys=True, ensure_ascii=False, default=_json_default)
    if fmt == "csv":
        df = pd.DataFrame(table.drop(columns="geometry"))
        df["geometry_wkt"] = shapely.to_wkt(table.geometry.to_numpy(), rounding_precision=COORD_DECIMALS)
        atomic_write(path, lambda tmp: df.to_csv(tmp, index=False, date_format="%Y-%m-%dT%H:%M:%SZ"))
        atomic_write(Path(path).with_name(Path(path).name + ".json"), lambda tmp: Path(tmp).write_text(text + "\n"))
        return
    import pyarrow.parquet as pq
    from geopandas.io.arrow import _geopandas_to_arrow

    arrow = _geopandas_to_arrow(table, index=False)
    md = dict(arrow.schema.metadata or {})
    md[b"telemetry"] = text.encode()
    arrow = arrow.replace_schema_metadata(md)
    atomic_write(path, lambda tmp: pq.write_table(arrow, tmp))


def write_layers(layers: dict[str, Any], path: str | os.PathLike[str], meta: dict[str, Any],
                 fmt: str | None = None) -> None:
    """Write layers atomically in the format of the extension (see :func:`export_format`)."""
    fmt = fmt or export_format(path)
    if fmt == "geojson":
        write_feature_collection(layers, path, meta)
    elif fmt == "gpkg":
        write_gpkg_layers(layers, path, meta)
    else:
        write_table_layers(layers, path, meta, fmt)


# --------------------------------------------------------------------------- deliverables of `telemetry run`


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Keep the objects alive on entry out of the garbage collector's full passes until exit.

    Why: the charts, GeoJSON and layers allocate many short-lived objects, which now and
    then trigger a full (oldest-generation) collection, and that walks every object of the
    run (the tables' object arrays included): 0.4–0.6 s of the exports at a million fixes.
    :func:`gc.freeze` moves the existing objects to the permanent generation, so those
    passes only look at what the block allocated; they are handed back on exit. Garbage
    made inside the block is collected as usual. No-op when something else froze objects.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def write_deliverables(out_dir: str | os.PathLike[str], tracks: pd.DataFrame | None = None,
                       crossings: pd.DataFrame | None = None, hotspots: pd.DataFrame | None = None,
                       corridors: pd.DataFrame | None = None, home_ranges: pd.DataFrame | None = None,
                       quality: dict[str, Any] | None = None, params: dict[str, Any] | None = None, *,
                       grid_deg: float = 0.1, generated: str | None = None,
                       licence: str = DEFAULT_LICENCE, fix_points: bool = True,
                       summary: pd.DataFrame | None = None, steps_from_metrics: bool = False,
                       background: Sequence[Callable[[], object]] = ()) -> list[Path]:
    """Write the products of a run into ``out_dir``; every layer argument is optional.

    Files (skipped when nothing feeds them)::

        public.geojson          generalised corridors, hotspots, crossing counts, home ranges
        internal.gpkg           exact layers: tracks (every fix; track_lines instead with
                                ``fix_points=False``), crossings, hotspots, corridors,
                                home_ranges, clusters (NOT for publication)
        crossings_by_month.csv  events per border × month × direction × kind
        charts/*.png            fix success, daily distance, crossings per month
        index.html              links to map.html (if present), charts and files; a table

    Parameters
    ----------
    out_dir : path
        Output folder (created if missing).
    tracks, crossings, hotspots, corridors, home_ranges : DataFrame, optional
        Outputs of :func:`telemetry.process`, :func:`telemetry.crossings`,
        :func:`telemetry.hotspots`, :func:`telemetry.corridors`, :func:`telemetry.home_ranges`.
    quality : dict, optional
        :func:`telemetry.quality.summarize` of the fixes (fix success in the index table).
    params : dict, optional
        Parameters to record in the metadata (default ``tracks.attrs["parameters"]``).
    grid_deg : float
        Generalisation grid of the public file (degrees).
    generated, licence
        See :func:`export_metadata`; ``generated`` defaults to a value derived from the data,
        so reruns give byte-identical files.
    fix_points : bool
        Every fix as a point in ``internal.gpkg`` (the slowest file: ~4 s per million fixes);
        False writes one line per animal and segment instead, for when the fixes go to a
        GeoParquet file beside it (``telemetry run`` writes ``tracks.parquet``).
    summary : DataFrame, optional
        :func:`telemetry.pipeline.track_summary` of ``tracks`` when the caller has it
        (the animal table of ``index.html``); computed otherwise.
    steps_from_metrics : bool
        ``tracks`` come unchanged from :func:`telemetry.process`: the track lines add up
        its ``step_m`` (see :func:`track_lines`).
    background : sequence of callables
        Other writers (e.g. :func:`write_tracks` of the fixes) to run on worker threads
        while these files are written; they finish before ``index.html`` is built, so it
        can list the files they write. Their errors are raised here.

    Returns
    -------
    list of Path
        The files written, in the order above.
    """
    with frozen_heap():
        return _write_deliverables(out_dir, tracks, crossings, hotspots, corridors, home_ranges, quality, params,
                                   grid_deg=grid_deg, generated=generated, licence=licence, fix_points=fix_points,
                                   summary=summary, steps_from_metrics=steps_from_metrics,
                                   background=background)


def _write_deliverables(out_dir: str | os.PathLike[str], tracks: pd.DataFrame | None,
                        crossings: pd.DataFrame | None, hotspots: pd.DataFrame | None,
                        corridors: pd.DataFrame | None, home_ranges: pd.DataFrame | None,
                        quality: dict[str, Any] | None, params: dict[str, Any] | None, *, grid_deg: float,
                        generated: str | None, licence: str, fix_points: bool, summary: pd.DataFrame | None,
                        steps_from_metrics: bool, background: Sequence[Callable[[], object]]) -> list[Path]:
    """:func:`write_deliverables` (its arguments), inside :func:`frozen_heap`."""
    from telemetry.charts import write_charts

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if params is None:
        params = dict(tracks.attrs.get("parameters", {})) if tracks is not None else {}
    all_params = layer_parameters(params, crossings=crossings, hotspots=hotspots, corridors=corridors)
    written: list[Path] = []

    internal = _internal_layers(tracks, crossings, hotspots, corridors, home_ranges, stream_tracks=True,
                                fix_points=fix_points, steps_from_metrics=steps_from_metrics)
    # The GeoPackage and the ``background`` writers run on worker threads while this one
    # builds the GeoJSON and the charts (pure Python, holding the GIL). pyarrow releases the
    # GIL while it encodes Parquet, so that overlaps on two cores; pyogrio 0.13's
    # write_arrow was measured to hold it (the GeoPackage only interleaves). Each file is
    # written by one thread only, from tables nobody modifies, so the bytes do not depend
    # on the timing. (The internal layers are built here, not on a worker: a fallback
    # geodesic in track_lines is a parallel numba loop, which must not run in two threads.)
    with ThreadPoolExecutor(max_workers=1 + len(background)) as pool:
        jobs = [pool.submit(job) for job in background]
        gpkg_job = None
        if internal:
            meta = export_metadata(audience="internal", grid_deg=None, params=all_params, generated=generated,
                                   tracks=tracks, layers=internal, licence=licence)
            gpkg_job = pool.submit(write_gpkg_layers, internal, out / "internal.gpkg", meta)
        pub = public_layers(crossings, hotspots, corridors, home_ranges, grid_deg=grid_deg)
        if pub:
            meta = export_metadata(audience="public", grid_deg=grid_deg, params=all_params, generated=generated,
                                   tracks=tracks, layers=pub, licence=licence)
            write_feature_collection(pub, out / "public.geojson", meta)
            written.append(out / "public.geojson")
        later: list[Path] = []
        if crossings is not None:
            table = crossing_counts(crossings)
            atomic_write(out / "crossings_by_month.csv", lambda tmp: table.to_csv(tmp, index=False))
            later.append(out / "crossings_by_month.csv")
        later += write_charts(out / "charts", tracks, crossings)
        for job in jobs:
            job.result()  # re-raises the worker's error, if any
        if gpkg_job is not None:
            gpkg_job.result()
            written.append(out / "internal.gpkg")
        written += later
    index = out / "index.html"
    html = index_html(out, written, tracks=tracks, crossings=crossings, quality=quality, grid_deg=grid_deg,
                      generated=export_metadata(audience="public", grid_deg=grid_deg, generated=generated,
                                                tracks=tracks, layers=pub)["generated"], summary=summary)
    atomic_write(index, lambda tmp: Path(tmp).write_text(html, encoding="utf-8"))
    written.append(index)
    return written


RUN_FILES = ("tracks.parquet", "track_summary.csv", "flag_summary.csv", "quality.json")
"""Files of :func:`telemetry.pipeline.run` that ``index.html`` links when present."""


def layer_parameters(params: dict[str, Any], **layers: Any) -> dict[str, Any]:
    """The run's parameters plus each layer's own (``attrs["parameters"]``)."""
    out = {"process": params} if params else {}
    for name, layer in layers.items():
        if layer is not None and layer.attrs.get("parameters"):
            out[name] = layer.attrs["parameters"]
    return _jsonable(out)


def _esc(text: Any) -> str:
    import html

    return html.escape("" if text is None else str(text), quote=True)


def index_html(out_dir: Path, files: list[Path], *, tracks: pd.DataFrame | None = None,
               crossings: pd.DataFrame | None = None, quality: dict[str, Any] | None = None,
               grid_deg: float = 0.1, generated: str | None = None, summary: pd.DataFrame | None = None) -> str:
    """A self-contained ``index.html`` (inline CSS, no scripts, no CDN) for ``out_dir``.

    Links ``map.html`` when it exists in ``out_dir``, shows the charts among ``files`` and
    lists every file with its size; a per-animal table (fixes, days, fix success,
    distance, crossings) when ``tracks`` is given (``summary``: its
    :func:`telemetry.pipeline.track_summary`, if already computed).
    """
    from telemetry import __version__

    rel = [p.relative_to(out_dir).as_posix() for p in files if p.parent == out_dir or out_dir in p.parents]
    # the other outputs of `telemetry run`, when they are already there
    rel += [n for n in RUN_FILES if (out_dir / n).exists() and n not in rel]
    charts = [r for r in rel if r.endswith(".png")]
    data = [r for r in rel if not r.endswith(".png") and r != "index.html"]
    notes = {"public.geojson": f"safe to publish: generalised to {grid_deg}° cells and months",
             "internal.gpkg": "exact positions — for the team only, do not publish",
             "crossings_by_month.csv": "border events per border, month and direction",
             "tracks.parquet": "exact positions — for the team only",
             "map.html": "interactive map"}
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             "<title>Collar telemetry summary</title>",
             "<style>body{font-family:sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;font-size:90%}td,th{border:1px solid #ccc;padding:3px 8px}"
             "td.n{text-align:right}th{background:#f2f2f2}img{max-width:100%;border:1px solid #eee}"
             ".warn{color:#a00}</style>", "</head>", "<body>",
             "<h1>Collar telemetry summary</h1>",
             f"<p>telemetry {_esc(__version__)}; data through {_esc(generated or 'n/a')}.</p>"]
    synthetic = synthetic_sources(tracks)
    if synthetic:
        parts.append(f'<p class="warn"><strong>SYNTHETIC DATA</strong>: everything here was {_esc(SYNTHETIC_NOTE)} '
                     f'Sources: {_esc(", ".join(synthetic))}.</p>')
    if (out_dir / "map.html").exists():
        parts.append('<p><a href="map.html"><strong>Open the interactive map</strong></a></p>')
    if tracks is not None:
        parts += ["<h2>Animals</h2>", _animal_table(tracks, crossings, quality, summary)]
    notes_run = ((quality or {}).get("processing") or {}).get("notes") or []
    if notes_run:
        parts += ["<h2>What the data said</h2>", "<ul>"] + [f"<li>{_esc(n)}</li>" for n in notes_run] + ["</ul>"]
    skipped = (quality or {}).get("skipped_files") or []
    if skipped:
        parts += ["<h2>Files not read</h2>", "<ul>"] + [
            f'<li class="warn">{_esc(s_.get("source", ""))}: {_esc(s_.get("reason", ""))}</li>' for s_ in skipped
        ] + ["</ul>"]
    if charts:
        parts.append("<h2>Charts</h2>")
        parts += [f'<p><img src="{_esc(c)}" alt="{_esc(Path(c).stem.replace("_", " "))}"></p>' for c in charts]
    if data:
        parts += ["<h2>Files</h2>", "<ul>"]
        for r in data:
            size = (out_dir / r).stat().st_size if (out_dir / r).exists() else 0
            note = notes.get(r, "")
            cls = ' class="warn"' if "team only" in note else ""
            parts.append(f'<li><a href="{_esc(r)}">{_esc(r)}</a> ({size / 1024:.0f} kB)'
                         + (f" — <span{cls}>{_esc(note)}</span>" if note else "") + "</li>")
        parts.append("</ul>")
    parts += [f"<p><small>{_esc(BORDER_NOTE)}</small></p>", "</body>", "</html>", ""]
    return "\n".join(parts)


def _animal_table(tracks: pd.DataFrame, crossings: pd.DataFrame | None, quality: dict[str, Any] | None,
                  summary: pd.DataFrame | None = None) -> str:
    from telemetry.pipeline import track_summary

    s = (track_summary(tracks) if summary is None else summary).copy(deep=False)  # (index replaced below)
    s.index = s.index.astype(str)
    success: dict[str, list[float]] = {}
    for f in (quality or {}).get("files", []):
        for a in f.get("animals", []):
            if a.get("fix_success_pct") is not None:
                success.setdefault(str(a["animal_id"]), []).append(float(a["fix_success_pct"]))
    n_cross = (crossings[crossings["kind"] == "crossing"]["animal_id"].astype(str).value_counts()
               if crossings is not None and len(crossings) else pd.Series(dtype=np.int64))
    head = ("<table><tr><th>animal</th><th>usable fixes</th><th>flagged</th><th>first day</th><th>last day</th>"
            "<th>days</th><th>fix success %</th><th>distance km</th><th>crossings</th></tr>")
    rows = []
    for aid, r in s.iterrows():  # one row per animal: a display table, not a hot path
        fs = success.get(aid)
        first = r["first"].strftime("%Y-%m-%d") if pd.notna(r["first"]) else ""
        last = r["last"].strftime("%Y-%m-%d") if pd.notna(r["last"]) else ""
        rows.append(
            f"<tr><td>{_esc(aid)}</td><td class=n>{int(r['usable'])}</td><td class=n>{int(r['flagged'])}</td>"
            f"<td>{first}</td><td>{last}</td><td class=n>{_fmt(r['days'], 0)}</td>"
            f"<td class=n>{_fmt(np.mean(fs), 1) if fs else ''}</td>"
            f"<td class=n>{_fmt(r.get('distance_km', np.nan), 0)}</td>"
            f"<td class=n>{int(n_cross.get(aid, 0))}</td></tr>")
    return head + "".join(rows) + "</table>"


def _fmt(v: Any, nd: int) -> str:
    return "" if v is None or pd.isna(v) else f"{float(v):.{nd}f}"
