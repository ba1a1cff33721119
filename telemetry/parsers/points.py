"""Longitude/latitude from a point-geometry column, whatever it was saved as.

Tables written by GIS tools and platforms keep the position in one column
instead of two: EarthRanger and ecoscope exports (``location``/``geometry``),
GeoPandas ``to_csv`` (WKT), GeoParquet/Feather without geo metadata (WKB). One
function reads all of them, vectorised:

=================  ===============================================================
cell               example
=================  ===============================================================
WKT (EWKT)         ``POINT (77.23 43.09)``, ``POINT Z (77.23 43.09 3311)``, ``SRID=4326;POINT(...)``
GeoJSON            ``{"type": "Point", "coordinates": [77.23, 43.09]}``
lat/lon mapping    ``{'latitude': 43.09, 'longitude': 77.23}`` (EarthRanger API ``location``)
WKB                binary well-known binary (GeoParquet/Feather without geo metadata)
=================  ===============================================================

Cells that are empty, ``POINT EMPTY`` or another geometry type give NaN and
are reported as bad only when they are present but unreadable.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
WKT_POINT = r"^\s*(?:SRID=\d+\s*;\s*)?POINT\s*(?:Z|M|ZM)?\s*\(\s*(?P<a>" + NUM + r")\s+(?P<b>" + NUM + ")"
GEOJSON_POINT = r"\"coordinates\"\s*:\s*\[\s*(?P<a>" + NUM + r")\s*,\s*(?P<b>" + NUM + ")"
MAP_LON = r"['\"](?:longitude|lon|lng|x)['\"]\s*:\s*(?P<a>" + NUM + ")"
MAP_LAT = r"['\"](?:latitude|lat|y)['\"]\s*:\s*(?P<a>" + NUM + ")"

NAMES = ("geometry", "location", "geom", "the-geom", "wkt", "position", "coordinates", "point", "wkb-geometry")
"""Normalised column names that may hold a point geometry (checked by content too)."""


def _num(arr: pa.Array) -> np.ndarray:
    return np.asarray(pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False), dtype=float)


def _pair(text: pa.Array, pattern: str) -> tuple[np.ndarray, np.ndarray]:
    got = pc.extract_regex(text, pattern)
    valid = np.asarray(got.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    a = pc.if_else(got.is_valid(), pc.struct_field(got, [0]), pa.scalar("nan"))
    b = pc.if_else(got.is_valid(), pc.struct_field(got, [1]), pa.scalar("nan"))
    return np.where(valid, _num(a), np.nan), np.where(valid, _num(b), np.nan)


def _one(text: pa.Array, pattern: str) -> np.ndarray:
    got = pc.extract_regex(text, pattern)
    valid = np.asarray(got.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    a = pc.if_else(got.is_valid(), pc.struct_field(got, [0]), pa.scalar("nan"))
    return np.where(valid, _num(a), np.nan)


def point_coords(values: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(lon, lat, bad)`` of a column of point geometries (text or WKB).

    ``bad`` marks cells that are present but not a readable point.

    Examples
    --------
    >>> import pyarrow as pa
    >>> lon, lat, bad = point_coords(pa.array(["POINT (77.2 43.1)", '{"type": "Point", "coordinates": [8.5, 47.4]}',
    ...                                        "{'latitude': -1.25, 'longitude': 36.8}", None, "LINESTRING (0 0, 1 1)"]))
    >>> lon.tolist()[:3], lat.tolist()[:3], bad.tolist()
    ([77.2, 8.5, 36.8], [43.1, 47.4, -1.25], [False, False, False, False, True])
    """
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    n = len(arr)
    if pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type):
        import shapely

        raw = arr.to_numpy(zero_copy_only=False)
        present = np.array([v is not None for v in raw], dtype=bool)
        geoms = np.full(n, None, dtype=object)
        bad = np.zeros(n, dtype=bool)
        try:
            geoms[present] = shapely.from_wkb(raw[present])
        except Exception:  # one bad blob: decode one by one to find it
            for i in np.flatnonzero(present):
                try:
                    geoms[i] = shapely.from_wkb(raw[i])
                except Exception:
                    bad[i] = True
        is_point = np.array([g is not None and g.geom_type == "Point" and not g.is_empty for g in geoms])
        lon = np.full(n, np.nan)
        lat = np.full(n, np.nan)
        if is_point.any():
            lon[is_point] = shapely.get_x(geoms[is_point])
            lat[is_point] = shapely.get_y(geoms[is_point])
        bad |= present & ~is_point & ~np.array([g is not None and g.is_empty for g in geoms])
        return lon, lat, bad
    text = pc.utf8_trim_whitespace(pc.cast(arr, pa.string()))
    present = np.asarray(pc.fill_null(pc.not_equal(text, ""), False).to_numpy(zero_copy_only=False), dtype=bool)
    lon, lat = _pair(text, WKT_POINT)
    lon2, lat2 = _pair(text, GEOJSON_POINT)
    lon = np.where(np.isnan(lon), lon2, lon)
    lat = np.where(np.isnan(lat), lat2, lat)
    lon = np.where(np.isnan(lon), _one(text, MAP_LON), lon)
    lat = np.where(np.isnan(lat), _one(text, MAP_LAT), lat)
    empty = np.asarray(pc.fill_null(pc.match_substring_regex(text, r"(?i)^\s*(SRID=\d+;)?POINT\s*EMPTY"),
                                    False).to_numpy(zero_copy_only=False), dtype=bool)
    bad = present & ~empty & (np.isnan(lon) | np.isnan(lat))
    return lon, lat, bad


def looks_like_points(values: pa.Array | pa.ChunkedArray, min_share: float = 0.5) -> bool:
    """True when most present cells are point geometries with coordinates in degree range."""
    lon, lat, bad = point_coords(values)
    ok = np.isfinite(lon) & np.isfinite(lat) & (np.abs(lon) <= 180) & (np.abs(lat) <= 90)
    return bool(ok.any()) and ok.sum() >= min_share * (ok.sum() + bad.sum())
