"""Writing outputs: tracks and layers as GeoParquet, GeoPackage, GeoJSON or CSV.

Every write is atomic (a temporary file in the target folder, then a rename),
so a crash never leaves a half-written output behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from telemetry.errors import TelemetryError

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
    """
    import geopandas as gpd

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
    lon = df["lon"].to_numpy(dtype=float, na_value=np.nan)
    lat = df["lat"].to_numpy(dtype=float, na_value=np.nan)
    geom = gpd.points_from_xy(lon, lat)
    geom[~(np.isfinite(lon) & np.isfinite(lat))] = None
    gdf = gpd.GeoDataFrame(df, geometry=geom, crs="EPSG:4326")
    if fmt == "parquet":
        import pyarrow.parquet as pq
        from geopandas.io.arrow import _geopandas_to_arrow

        # the converter behind GeoDataFrame.to_parquet (adds the GeoParquet "geo" metadata);
        # used directly so our own metadata can join it before the single write
        table = _geopandas_to_arrow(gdf, index=False)
        md = dict(table.schema.metadata or {})
        md[b"telemetry"] = meta.encode()
        table = table.replace_schema_metadata(md)
        atomic_write(path, lambda tmp: pq.write_table(table, tmp))
    else:
        # GeoPackage has no categoricals or nullable ints: plain strings / floats
        for c in gdf.columns:
            if isinstance(gdf[c].dtype, pd.CategoricalDtype):
                gdf[c] = gdf[c].astype(object)
        atomic_write(path, lambda tmp: gdf.to_file(tmp, driver="GPKG", layer="tracks", engine="pyogrio",
                                              layer_metadata={"telemetry_parameters": meta}))


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

    ``meta`` goes into the FeatureCollection as the foreign member ``"telemetry"``. The same
    frame and metadata give the same bytes.
    """
    df = gdf.copy()
    df.attrs = {}
    for c in df.columns:
        if pd.api.types.is_float_dtype(df[c].dtype):
            df[c] = df[c].where(np.isfinite(df[c]), np.nan)  # JSON has no Infinity
        elif isinstance(df[c].dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(df[c].dtype):
            df[c] = df[c].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    doc = json.loads(df.to_json(na="null", drop_id=True))
    doc["telemetry"] = meta
    text = json.dumps(doc, ensure_ascii=False, sort_keys=False, default=str, allow_nan=False,
                      separators=(",", ":"))
    atomic_write(path, lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))
