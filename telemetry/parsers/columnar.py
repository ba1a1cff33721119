"""Tracking tables that are not delimited text: Parquet, Feather/Arrow, GeoPackage, GeoJSON.

Recognised from content, never from the name:

================  ==========================================  =====================================
format            recognised by                                as saved by
================  ==========================================  =====================================
``parquet-table`` ``PAR1`` magic bytes                         pandas/GeoPandas ``to_parquet``,
                                                               ecoscope, movingpandas ``to_point_gdf``
``arrow-ipc``     ``ARROW1`` / ``FEA1`` magic (Feather v2/v1)  ``to_feather``, ``pyarrow.feather``
``geopackage``    SQLite header with application id ``GPKG``   QGIS, GeoPandas ``to_file``
``geojson``       text starting ``{`` with ``"Feature"``       QGIS, GeoPandas, EarthRanger
``shapefile``     ``.shp`` file code 9994 (its ``.dbf``,       ArcGIS, QGIS, GeoPandas; a zip of
                  ``.prj`` beside it), or a zip holding one     the parts as agencies mail them
================  ==========================================  =====================================

The position comes from ``lon``/``lat``-like columns or from the point
geometry (GeoParquet/GeoArrow metadata, GDAL layers, or an undeclared WKB or
WKT column), transformed to WGS84 when the file declares another CRS. The rest
of the mapping is that of the generic reader
(:func:`telemetry.parsers.generic.parse_table`): the same guessed names,
``--columns`` and ``--tz`` rules. Time columns that are typed timestamps with
a zone are exact; naive timestamps need ``--tz`` like naive text.

In messages and ``source_row`` a "line" of these files is the 1-based record
number (row of the table, feature of the layer).

A Parquet file written by this tool (canonical columns, ``flag``,
``source_row``) or a telemetry dataset folder is read back exactly by
:mod:`telemetry.parsers.parquet` instead.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import PurePath

import numpy as np
import pyarrow as pa

from telemetry.errors import NotTelemetry, ParseError
from telemetry.parsers.canonical import Parsed
from telemetry.parsers.detect import Format, Head, ReadOptions, register
from telemetry.parsers.points import point_coords
from telemetry.parsers.source import Source
from telemetry.parsers.table import RawTable, unique_names

SQLITE_MAGIC = b"SQLite format 3\x00"
GPKG_APPLICATION_IDS = (b"GPKG", b"GP10", b"GP11")
SHAPEFILE_MAGIC = b"\x00\x00\x27\x0a"
"""The file code (9994, big-endian) a ``.shp`` starts with."""
"""SQLite ``application_id`` (bytes 68..71) of GeoPackage 1.2+ and of 1.0/1.1."""


def kind(src: Source) -> str | None:
    """The columnar format of a file from its first bytes, or None.

    Examples
    --------
    >>> kind(Source("x", b"PAR1...."))
    'parquet-table'
    >>> kind(Source("x", b'  {"type": "FeatureCollection", "features": []}'))
    'geojson'
    >>> kind(Source("x", b"time,lon,lat\\n")) is None
    True
    """
    head = src.read_head(4096)
    if head.startswith(b"PAR1"):
        return "parquet-table"
    if head.startswith((b"ARROW1", b"FEA1")) or head[:4] == b"\xff\xff\xff\xff":
        return "arrow-ipc"
    if head.startswith(SQLITE_MAGIC):
        return "geopackage"
    if head.startswith(SHAPEFILE_MAGIC) or (head.startswith(b"PK") and src.name.lower().endswith(".shp")):
        return "shapefile"  # (a zipped one: telemetry.parsers.source names it archive.zip::layer.shp)
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n\x1e")
    if text.startswith(b"{") and re.search(rb'"type"\s*:\s*"Feature(Collection)?"', head):
        return "geojson"
    return None


def _buffer(src: Source):
    return str(src.path) if src.path is not None else io.BytesIO(src.data)


def _geo_metadata(schema: pa.Schema) -> dict:
    meta = schema.metadata or {}
    raw = meta.get(b"geo")
    if raw is None:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        return {}


def _crs_note_transform(crs, lon: np.ndarray, lat: np.ndarray, path: str) -> tuple[np.ndarray, np.ndarray, str | None]:
    """Coordinates in WGS84 (from ``crs``: pyproj-readable, None = already lon/lat)."""
    if crs is None:
        return lon, lat, None
    from pyproj import CRS, Transformer
    from pyproj.exceptions import CRSError

    try:
        src_crs = CRS.from_user_input(crs)
    except CRSError as err:
        raise ParseError(f"the file's coordinate reference system is not readable ({err})", path) from None
    if src_crs.is_geographic and src_crs.equals(CRS.from_epsg(4326), ignore_axis_order=True):
        return lon, lat, None
    tr = Transformer.from_crs(src_crs, 4326, always_xy=True)
    x, y = tr.transform(lon, lat)
    name = src_crs.to_string()
    return np.asarray(x, float), np.asarray(y, float), f"positions transformed from {name} to WGS84"


def _struct_points(col: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GeoArrow native point encoding (struct of x, y)."""
    arr = col.combine_chunks()
    x = np.asarray(arr.field("x").to_numpy(zero_copy_only=False), float)
    y = np.asarray(arr.field("y").to_numpy(zero_copy_only=False), float)
    valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), bool)
    x[~valid] = np.nan
    y[~valid] = np.nan
    return x, y, np.zeros(len(x), bool)


def _with_position(table: pa.Table, geom: str | None, crs, path: str, notes: list[str]) -> pa.Table:
    """Replace the geometry column by ``lon``/``lat`` in WGS84 (unless the table has its own)."""
    if geom is None or geom not in table.column_names:
        return table
    col = table.column(geom)
    if pa.types.is_struct(col.type):
        lon, lat, bad = _struct_points(col)
    else:
        lon, lat, bad = point_coords(col)
    lon, lat, note = _crs_note_transform(crs, lon, lat, path)
    if note:
        notes.append(note)
    lower = {c.lower() for c in table.column_names}
    if {"lon", "lat"} & lower or {"longitude", "latitude"} <= lower:
        notes.append(f"point geometry '{geom}' not used: the table has its own longitude/latitude columns")
        return table.drop_columns([geom])
    if bad.any():
        # unreadable geometries stay unreadable: NaN position, flagged by the generic reader
        i = int(np.flatnonzero(bad)[0])
        notes.append(f"{int(bad.sum())} rows have no point geometry (first: record {i + 1})")
    table = table.drop_columns([geom])
    table = table.append_column("lon", pa.array(lon, pa.float64())).append_column("lat", pa.array(lat, pa.float64()))
    notes.append(f"position from the point geometry column '{geom}'")
    return table


def _read_parquet_or_arrow(src: Source, fmt: str) -> tuple[pa.Table, list[str]]:
    import pyarrow.feather as feather
    import pyarrow.parquet as pq

    try:
        if fmt == "parquet-table":
            table = pq.read_table(_buffer(src))
        else:
            try:
                table = feather.read_table(_buffer(src))
            except (pa.ArrowInvalid, OSError):
                import pyarrow.ipc as ipc

                table = ipc.open_stream(src.data).read_all()
    except (OSError, ValueError, pa.ArrowException) as err:
        what = "Parquet" if fmt == "parquet-table" else "Feather/Arrow IPC"
        raise ParseError(f"cannot read as {what}: {err}", src.name) from None
    notes: list[str] = []
    geo = _geo_metadata(table.schema)
    geom, crs = None, None
    if geo:
        geom = geo.get("primary_column") or next(iter(geo.get("columns", {})), None)
        info = geo.get("columns", {}).get(geom, {})
        crs = info.get("crs", "OGC:CRS84")  # GeoParquet: a missing crs means OGC:CRS84
        if isinstance(crs, dict):
            crs = json.dumps(crs)
        if crs == "OGC:CRS84":
            crs = None
    else:
        # undeclared WKB/WKT geometry (pandas saved a GeoDataFrame's WKB, or a text column of points)
        for name in table.column_names:
            typ = table.column(name).type
            if name.lower() in ("geometry", "geom", "wkb_geometry", "location", "the_geom") and (
                    pa.types.is_binary(typ) or pa.types.is_large_binary(typ)):
                geom = name
                notes.append(f"column '{name}' read as WKB points in longitude/latitude (no CRS declared)")
                break
    return _with_position(table, geom, crs, src.name, notes), notes


def _read_gdal(src: Source, fmt: str) -> tuple[pa.Table, list[str]]:
    import pyogrio
    from pyogrio.errors import DataLayerError, DataSourceError

    buf = str(src.path) if src.path is not None else src.data
    try:
        if fmt == "geopackage":
            layers = pyogrio.list_layers(buf)
            # the layer with point geometries and most features
            points = [(name, g) for name, g in layers if g and "point" in str(g).lower()]
            if not points and not any(g for _, g in layers):
                raise NotTelemetry("SQLite database without a GeoPackage point layer; not telemetry", src.name)
            if not points:
                kinds = ", ".join(sorted({str(g) for _, g in layers if g}))
                raise ParseError(f"GeoPackage has no point layer (only {kinds}); fixes are points", src.name)
            best = max(points, key=lambda lg: pyogrio.read_info(buf, layer=lg[0])["features"])[0]
            meta, table = pyogrio.read_arrow(buf, layer=best)
        elif fmt == "shapefile" and "::" in src.name:  # a layer of a zipped set of parts
            meta, table = _read_zipped_shapefile(src.data, src.name.split("::")[-1])
        else:
            meta, table = pyogrio.read_arrow(buf)
    except (DataSourceError, DataLayerError) as err:
        what = {"geopackage": "GeoPackage", "shapefile": "a shapefile (with its .dbf, .shx and .prj)"}.get(fmt, "GeoJSON")
        raise ParseError(f"cannot read as {what}: {' '.join(str(err).split())[:200]}", src.name) from None
    notes: list[str] = []
    if fmt == "geopackage":
        notes.append(f"layer '{best}'" + (f" of {len(layers)}" if len(layers) > 1 else ""))
    gtype = str(meta.get("geometry_type") or "")
    if gtype and "point" not in gtype.lower() and gtype.lower() != "unknown":
        raise ParseError(f"{fmt} layer holds {gtype} geometries, not points (fixes are points)", src.name)
    geom = meta.get("geometry_name") or "wkb_geometry"
    if geom not in table.column_names:
        geom = next((c for c in table.column_names if c.lower() in ("wkb_geometry", "geometry", "geom")), None)
    table = _with_position(table, geom, meta.get("crs"), src.name, notes)
    return table, notes


def _read_zipped_shapefile(data: bytes, member: str) -> tuple[dict, pa.Table]:
    """The layer ``member`` (``dir/name.shp``) of a zip of shapefile parts: its parts (every
    member ``dir/name.*``) put in a temporary folder, where GDAL finds them beside each other."""
    import tempfile
    import zipfile

    import pyogrio

    stem = member[:-4]
    with tempfile.TemporaryDirectory(prefix="telemetry-shp-") as tmp, zipfile.ZipFile(io.BytesIO(data)) as z:
        for info in z.infolist():
            if info.filename.rsplit(".", 1)[0] == stem:
                part = PurePath(tmp) / ("layer." + info.filename.rsplit(".", 1)[-1].lower())
                with open(part, "wb") as fh:
                    fh.write(z.read(info))
        return pyogrio.read_arrow(str(PurePath(tmp) / "layer.shp"))


def parse(src: Source, head: Head, options: ReadOptions, fmt: str) -> Parsed:
    """Read one columnar file through the generic column mapping."""
    from telemetry.parsers.generic import parse_table

    if fmt in ("parquet-table", "arrow-ipc"):
        table, notes = _read_parquet_or_arrow(src, fmt)
    else:
        table, notes = _read_gdal(src, fmt)
    if table.num_columns == 0:
        raise NotTelemetry("table has no columns; not telemetry", src.name)
    names = unique_names([str(c) for c in table.column_names])
    table = table.rename_columns(names)
    # nested values (lists, structs, maps) become JSON-like text so they can be kept as extras
    for i, name in enumerate(names):
        typ = table.column(i).type
        if pa.types.is_nested(typ) or pa.types.is_dictionary(typ):
            table = table.set_column(i, name, _flatten(table.column(i)))
    raw = RawTable(table=table, lines=np.arange(1, table.num_rows + 1, dtype=np.int64), header=names,
                   header_line=None)
    return parse_table(raw, src.name, options, fmt, notes=notes)


def _flatten(col: pa.ChunkedArray) -> pa.Array:
    if pa.types.is_dictionary(col.type):
        return col.cast(col.type.value_type)
    values = col.to_pylist()
    return pa.array([None if v is None else json.dumps(v, default=str) for v in values], pa.string())


LABELS = {
    "parquet-table": "Parquet / GeoParquet table of fixes (lon/lat columns or point geometry)",
    "arrow-ipc": "Feather / Arrow IPC table of fixes (lon/lat columns or point geometry)",
    "geopackage": "GeoPackage point layer",
    "geojson": "GeoJSON point features (FeatureCollection, GeoJSONSeq)",
    "shapefile": "Esri shapefile of points (.shp with its .dbf/.prj, or zipped)",
}
for _name, _label in LABELS.items():
    register(Format(_name, _label, sniff=lambda head: False,
                    parse=lambda src, head, options, _f=_name: parse(src, head, options, _f), priority=0))
