"""Fix tables to files: GeoParquet (point WKB written by hand, no shapely objects), GeoPackage
(through pyogrio's Arrow writer) and CSV, in batches, for millions of rows.

IO layer: imports only the core (:mod:`telemetry.io.atomic`, :mod:`telemetry.errors`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from telemetry.errors import TelemetryError
from telemetry.io.atomic import atomic_write

FORMATS = {".parquet": "parquet", ".geoparquet": "parquet", ".gpkg": "gpkg", ".csv": "csv"}


def output_format(path: str | os.PathLike[str]) -> str:
    """``parquet``, ``gpkg`` or ``csv`` from the file extension (anything else is an error)."""
    ext = Path(path).suffix.lower()
    if ext not in FORMATS:
        raise TelemetryError(f"unknown output type {ext or '(none)'!r}; use .parquet, .gpkg or .csv", str(path))
    return FORMATS[ext]


def track_metadata(tracks: pd.DataFrame) -> dict[str, Any]:
    """What a file of processed tracks records about how they were made: every parameter, the
    steps that ran and, where the tracks were smoothed, the location-error model used
    (``error_model``: UERE per fix class, its 95 % interval, estimated / calibrated / default,
    as :func:`telemetry.process` put it in ``attrs``; issue 14: in every output's metadata).

    >>> t = pd.DataFrame({"x": [1]})
    >>> t.attrs = {"parameters": {"species": "bat"}, "steps": ["clean"], "smooth": {"a": {}},
    ...            "error_model": {"3D": {"uere_m": 4.1, "source": "estimated"}, "note": "ML"}}
    >>> sorted(track_metadata(t)), track_metadata(t)["error_model"]["3D"]["uere_m"]
    (['error_model', 'parameters', 'steps'], 4.1)
    """
    meta = {"parameters": tracks.attrs.get("parameters", {}), "steps": tracks.attrs.get("steps", [])}
    if tracks.attrs.get("error_model"):
        meta["error_model"] = tracks.attrs["error_model"]
    return meta


def write_tracks(tracks: pd.DataFrame, path: str | os.PathLike[str], *, fmt: str | None = None) -> None:
    """Write tracks atomically (temp file in the same folder, then rename).

    GeoParquet and GeoPackage get point geometry (EPSG:4326; none for rows without
    coordinates) and :func:`track_metadata` (the parameters, the steps, the location-error
    model) as metadata (Parquet key ``telemetry``, GeoPackage layer metadata
    ``telemetry_parameters``); CSV gets a ``<out>.json`` sidecar.

    GeoParquet is written in slices of one row group each, straight from the columns (no
    shapely points, no GeoDataFrame copy): the bytes are those of
    ``GeoDataFrame.to_parquet`` and memory stays bounded by one slice.
    """
    fmt = fmt or output_format(path)
    path = Path(path)
    meta = json.dumps(track_metadata(tracks), sort_keys=True, separators=(",", ":"), default=str)
    df = tracks.copy(deep=False)
    df.attrs = {}
    if fmt == "csv":
        atomic_write(path, lambda tmp: df.to_csv(tmp, index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ"))
        atomic_write(path.with_name(path.name + ".json"), lambda tmp: Path(tmp).write_text(meta + "\n"))
        return
    if fmt == "parquet":
        atomic_write(path, lambda tmp: write_point_parquet(df, tmp, {b"telemetry": meta.encode()}))
        return
    # GeoPackage has no categoricals: plain strings (nullable ints stay ints here)
    layer = PointLayer(df, keep_missing=True, ints_as_float=False)
    atomic_write(path, lambda tmp: write_gpkg_arrow(layer.reader(), tmp, "tracks", {"telemetry_parameters": meta},
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


def write_point_parquet(df: pd.DataFrame, path: str, extra_meta: dict[bytes, bytes]) -> None:
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


class PointLayer:
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
        # nullable ints → float64 (as plain_columns does for every format)
        floats = {c for c in attrs.columns if self.ints_as_float and is_nullable_int(attrs[c].dtype)}
        # object columns of anything but strings (bools of a vendor column, mixed values):
        # pyogrio's row writer stores str(value); do the same rather than let Arrow type them
        texts = [c for c in attrs.columns if attrs[c].dtype == object
                 and pd.api.types.infer_dtype(attrs[c], skipna=True) not in ("string", "empty")]

        def convert(start: int, schema: Any) -> Any:
            sl = slice(start, start + _GPKG_BATCH)
            m = has[sl]
            part = attrs.iloc[sl] if keep else attrs.iloc[sl][m]
            if texts:
                part = part.assign(**{c: as_text(part[c]) for c in texts})
            x, y = (lon[sl], lat[sl]) if keep else (lon[sl][m], lat[sl][m])
            table = plain_arrow(pa.Table.from_pandas(part, preserve_index=False, schema=schema), floats)
            return table.append_column(geom_field, _point_wkb(x, y))

        # the schema of the first batch fixes the types of all later ones (an all-missing
        # object column in a later batch must not change type)
        head = attrs.iloc[: _GPKG_BATCH]
        raw_schema = pa.Schema.from_pandas(head.assign(**{c: as_text(head[c]) for c in texts}),
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


def is_nullable_int(dtype: Any) -> bool:
    """True for pandas' nullable integer dtypes (``Int64`` …), which GeoPackage gets as floats."""
    return isinstance(dtype, pd.api.extensions.ExtensionDtype) and pd.api.types.is_integer_dtype(dtype)


def as_text(col: pd.Series) -> pd.Series:
    """``str(value)`` of every non-missing value, None for missing (object dtype)."""
    vals = col.to_numpy(dtype=object)
    return pd.Series(np.where(pd.isna(vals), None, vals.astype(str)), index=col.index, dtype=object)


def plain_arrow(table: Any, floats: set[str]) -> Any:
    """Arrow columns that GDAL writes as pyogrio's row-by-row writer does for :func:`plain_columns`.

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


def write_gpkg_arrow(reader: Any, path: str, layer: str, layer_metadata: dict[str, str], *,
                      append: bool = False, geometry_type: str = "Point") -> None:
    """One GeoPackage layer from an Arrow stream (what ``to_file(use_arrow=True)`` does)."""
    from pyogrio.raw import write_arrow

    write_arrow(reader, path, layer=layer, driver="GPKG", geometry_name="geometry", geometry_type=geometry_type,
                crs="EPSG:4326", append=append, layer_metadata=layer_metadata)


def plain_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Columns every format can hold: categoricals → str, nullable ints → float, no attrs."""
    df = df.copy(deep=False)
    df.attrs = {}
    for c in df.columns:
        dt = df[c].dtype
        if isinstance(dt, pd.CategoricalDtype):
            df[c] = df[c].astype(object)
        elif is_nullable_int(dt):
            df[c] = df[c].astype("float64")
    return df
