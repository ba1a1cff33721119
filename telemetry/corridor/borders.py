"""Bundled country borders: country polygons and the land borders between them.

The polygons come from Natural Earth 4.1.0 via world-atlas 2.0.2 (public domain), 1:10m for
every country, split at the antimeridian and closed at the poles, no two overlapping; see
``telemetry/data/README.md`` for provenance and accuracy (the 1:10m line is good
to a few hundred metres at best, so a crossing point is uncertain by at least that).
The file is built by ``scripts/build_boundaries.py``; nothing here reads outside
the package.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

__all__ = ["load_countries", "border_lines", "COUNTRIES_FILE"]

COUNTRIES_FILE = "countries.parquet"
"""Package-data file (GeoParquet, EPSG:4326) in ``telemetry/data``."""

BORDER_LINES_FILE = "border_lines.parquet"
"""Package-data file: :func:`border_lines` of the bundled countries, derived by
``scripts/build_boundaries.py`` (deriving them takes ~4 s, once per process otherwise)."""

SNAP_DEG = 1e-6
"""Grid (degrees, ~0.1 m) to which boundaries are snapped before intersecting.

Neighbours share their vertices exactly where they come from the same TopoJSON
arc; ``make_valid`` and the clipping of 1:50m countries by the 1:10m block can
move a vertex by floating-point noise, which the snap absorbs."""


@lru_cache(maxsize=1)
def _countries() -> gpd.GeoDataFrame:
    with resources.as_file(resources.files("telemetry.data") / COUNTRIES_FILE) as path:
        gdf = gpd.read_parquet(path)
    return gdf.set_crs("EPSG:4326", allow_override=True)


def load_countries() -> gpd.GeoDataFrame:
    """The bundled country polygons.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``iso_a3`` (ISO 3166-1 alpha-3; Natural Earth ``ADM0_A3`` for the
        few entities without one, e.g. ``XKX`` Kosovo, ``KAB`` Baikonur),
        ``iso_n3`` (ISO numeric, may be missing), ``name``, ``resolution``
        (``"10m"`` or ``"50m"``) and ``geometry`` (valid (Multi)Polygons in
        longitude/latitude degrees, EPSG:4326). A copy of a cached frame: callers
        may modify it.

    Examples
    --------
    >>> from telemetry.corridor.borders import load_countries
    >>> c = load_countries()
    >>> c.loc[c.iso_a3 == "KGZ", "resolution"].item()
    '10m'
    """
    return _countries().copy()


def border_lines(countries: gpd.GeoDataFrame | None = None, *, grid_deg: float = SNAP_DEG) -> gpd.GeoDataFrame:
    """Land borders shared by pairs of countries.

    Method: candidate pairs are the countries whose polygons intersect (spatial
    index query, then an exact predicate). For each pair the two polygon
    boundaries are intersected with a precision grid of ``grid_deg`` degrees
    (GEOS overlay snaps both to the grid, so shared arcs whose vertices differ by
    floating-point noise still coincide). Isolated touching points are dropped
    and the remaining segments are merged into (Multi)LineStrings. The result is
    the part of each boundary that both countries share; where a 1:10m country
    meets a 1:50m one, only the stretches where the two lines coincide are found.

    Parameters
    ----------
    countries : geopandas.GeoDataFrame, optional
        Country polygons with an ``iso_a3`` column (default: :func:`load_countries`).
    grid_deg : float
        Precision grid in degrees used for the intersection (default 1e-6, ~0.1 m).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per pair with columns ``iso_a``, ``iso_b`` (``iso_a < iso_b``) and
        ``geometry`` (LineString or MultiLineString, EPSG:4326), sorted by pair.

    Examples
    --------
    >>> from telemetry.corridor.borders import border_lines, load_countries
    >>> c = load_countries()
    >>> lines = border_lines(c[c.iso_a3.isin(["KAZ", "KGZ"])])
    >>> lines[["iso_a", "iso_b"]].values.tolist()
    [['KAZ', 'KGZ']]
    """
    if countries is None:
        return _default_border_lines().copy()
    return _border_lines(countries, grid_deg)


@lru_cache(maxsize=1)
def _default_border_lines() -> gpd.GeoDataFrame:
    data = resources.files("telemetry.data") / BORDER_LINES_FILE
    if not data.is_file():  # a checkout whose data predate the file: derive (slow, same result)
        return _border_lines(_countries(), SNAP_DEG)
    with resources.as_file(data) as path:
        gdf = gpd.read_parquet(path)
    return gdf.set_crs("EPSG:4326", allow_override=True)


def _border_lines(countries: gpd.GeoDataFrame, grid_deg: float) -> gpd.GeoDataFrame:
    geoms = countries.geometry.values
    codes = countries["iso_a3"].astype(str).to_numpy()
    left, right = countries.sindex.query(geoms, predicate="intersects")
    keep = (left < right) & (codes[left] != codes[right])
    left, right = left[keep], right[keep]
    if len(left) == 0:
        return gpd.GeoDataFrame({"iso_a": [], "iso_b": []}, geometry=[], crs=countries.crs)
    bounds = shapely.boundary(np.asarray(geoms))
    # clip both boundaries to the overlap of the two bounding boxes first: the
    # intersection then works on a few hundred vertices instead of all of Russia
    b = shapely.bounds(np.asarray(geoms))
    box = shapely.box(np.maximum(b[left, 0], b[right, 0]) - grid_deg, np.maximum(b[left, 1], b[right, 1]) - grid_deg,
                      np.minimum(b[left, 2], b[right, 2]) + grid_deg, np.minimum(b[left, 3], b[right, 3]) + grid_deg)
    la = shapely.intersection(bounds[left], box)
    lb = shapely.intersection(bounds[right], box)
    shared = shapely.intersection(la, lb, grid_size=grid_deg)
    lines = np.array([_linework(g) for g in shared], dtype=object)
    a, bb = codes[left], codes[right]
    swap = a > bb
    out = pd.DataFrame({"iso_a": np.where(swap, bb, a), "iso_b": np.where(swap, a, bb)})
    gdf = gpd.GeoDataFrame(out, geometry=gpd.GeoSeries(lines, crs=countries.crs))
    gdf = gdf[gdf.geometry.notna()]
    # the same pair can occur twice when a country has several rows (e.g. resolutions)
    gdf = gdf.dissolve(by=["iso_a", "iso_b"], as_index=False, sort=True)
    gdf["geometry"] = shapely.line_merge(gdf.geometry.values)
    return gdf[["iso_a", "iso_b", "geometry"]].reset_index(drop=True)


def _linework(geom: shapely.Geometry) -> shapely.Geometry | None:
    """The linear parts of an intersection result, merged; None if only points."""
    parts = shapely.get_parts(geom)
    lines = [p for p in parts if shapely.get_type_id(p) in (1, 5) and not p.is_empty]
    if not lines:
        return None
    return shapely.line_merge(shapely.multilinestrings(
        np.concatenate([shapely.get_parts(x) for x in lines])))
