"""Home ranges: minimum convex polygons (MCP) and kernel density isopleths (KDE).

Each animal is projected to its own Lambert azimuthal equal-area projection (WGS84,
centred on the animal's mean position), so areas are true areas; polygons are returned
in WGS84 lon/lat with edges densified so their shape survives the trip back.

* MCP ``p`` %: convex hull of the ``p`` % of fixes closest to the centroid (Mohr 1947;
  the usual "95 % MCP" drops the 5 % farthest fixes).
* KDE ``p`` %: bivariate Gaussian kernel with the reference bandwidth
  ``h_ref = sqrt((s_x² + s_y²) / 2) · n^(-1/6)`` (Worton 1989), evaluated on a grid by
  binning + separable convolution; the ``p`` % isopleth is the density level enclosing ``p`` % of
  the probability mass, traced with contourpy (holes kept).

Only usable (unflagged) fixes count. Animals are independent: they run on a thread pool
(the heavy parts, FFT, sorting, PROJ and GEOS, release the GIL).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import contourpy
import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from telemetry.arrays import group_codes, usable_mask
from telemetry.config import HomeRangeParams
from telemetry.threads import thread_map
from telemetry.trajectory.antimeridian import plane_to_lonlat

__all__ = ["home_ranges", "mcp", "kde", "density_grid", "isopleths", "cells_for_mass", "laea", "within_laea",
           "laea_to_lonlat"]

DENSIFY_M = 250.0
DENSIFY_MAX_VERTICES = 4_000
"""Vertices a range's edges are densified to at most (its perimeter over this when longer than
:data:`DENSIFY_M` apart): a tern's hemisphere-wide range at 250 m held 100,000-200,000 vertices, and
every public cell cut cost them; at 4,000 its geodesic area moves by < 4e-7 and its outline by < 0.0005°."""
LAEA_MAX_M = 0.99 * math.sqrt(2.0) * 6_371_007.2
"""Radius (m) of the disk a polygon in :func:`laea`'s plane is clipped to: just inside the image of
the great circle 90° from the centre (√2 authalic radii), so a range is drawn within the hemisphere
around its fixes. Beyond it the plane squeezes the far hemisphere into a thin ring whose rim is the
antipode: a pole-to-pole migrant's kernel reached past the rim and came back to degrees as
infinities, and clipped at the rim its ring in degrees no longer bounded the area it held."""
_COLUMNS = ("animal_id", "method", "level_pct", "area_km2", "n_fixes", "bandwidth_m", "geometry")


def home_ranges(df: pd.DataFrame, params: HomeRangeParams | None = None,
                method: str | tuple[str, ...] = ("mcp", "kde")) -> gpd.GeoDataFrame:
    """MCP and KDE home ranges per animal.

    Parameters
    ----------
    df : pandas.DataFrame
        Canonical table (flags respected).
    params : HomeRangeParams, optional
        Levels (%), KDE grid size and bandwidth factor.
    method : str or tuple of str
        ``"mcp"``, ``"kde"``, both or neither (an empty table). (``telemetry.home_ranges`` —
        :func:`telemetry.trajectory.ranges.home_ranges` — also takes ``"akde"``.)

    Returns
    -------
    geopandas.GeoDataFrame
        One row per animal, method (``"mcp"``/``"kde"``) and level: ``animal_id``,
        ``method``, ``level_pct``, ``area_km2`` (in the animal's equal-area projection),
        ``n_fixes``, ``bandwidth_m`` (KDE only), ``geometry`` (EPSG:4326).
        Animals with fewer than 3 usable fixes get no rows.
    """
    params = params or HomeRangeParams()
    methods = (method,) if isinstance(method, str) else tuple(method)
    unknown = set(methods) - {"mcp", "kde"}
    if unknown:
        raise ValueError(f"unknown home-range method(s): {', '.join(sorted(unknown))} (mcp, kde; "
                         "akde: telemetry.home_ranges)")
    if not methods:
        return gpd.GeoDataFrame({c: [] for c in _COLUMNS}, geometry="geometry", crs="EPSG:4326")
    if set(methods) != {"mcp", "kde"}:
        params = dataclasses.replace(params, mcp_levels_pct=params.mcp_levels_pct if "mcp" in methods else (),
                                     kde_levels_pct=params.kde_levels_pct if "kde" in methods else ())
    ok = usable_mask(df)
    codes, labels = group_codes(df)
    lon_all = df["lon"].to_numpy(dtype=float, na_value=np.nan)
    lat_all = df["lat"].to_numpy(dtype=float, na_value=np.nan)
    rows: list[dict] = []
    c = codes[ok]
    lon_ok, lat_ok = lon_all[ok], lat_all[ok]
    if c.size and not (np.diff(c) >= 0).all():  # processed tracks come sorted by animal: no sort
        order = np.argsort(c, kind="stable")
        c, lon_ok, lat_ok = c[order], lon_ok[order], lat_ok[order]
    bounds = np.searchsorted(c, np.arange(len(labels) + 1))
    jobs = [
        (label, lon_ok[bounds[g] : bounds[g + 1]], lat_ok[bounds[g] : bounds[g + 1]])
        for g, label in enumerate(labels)
        if bounds[g + 1] - bounds[g] >= 3
    ]

    def one(job: tuple) -> list[dict]:
        return _animal_rows(*job, params)

    # animals are independent and most of their time is in code that releases the GIL (FFT,
    # sorts, PROJ, GEOS): threads use every core; map keeps the animals' order
    for part in thread_map(one, jobs):
        rows.extend(part)
    if not rows:
        return gpd.GeoDataFrame({c: [] for c in _COLUMNS}, geometry="geometry", crs="EPSG:4326")
    out = gpd.GeoDataFrame(rows, columns=list(_COLUMNS), geometry="geometry", crs="EPSG:4326")
    if isinstance(df["animal_id"].dtype, pd.CategoricalDtype):
        out["animal_id"] = out["animal_id"].astype(df["animal_id"].dtype)
    return out


def _animal_rows(label: Any, lon: np.ndarray, lat: np.ndarray, params: HomeRangeParams) -> list[dict]:
    """MCP and KDE rows (see :func:`home_ranges`) of one animal's usable fixes (degrees)."""
    fwd, inv = laea(lon, lat)
    x, y = fwd.transform(lon, lat)
    kde_polys, hs = kde(x, y, params.kde_levels_pct, grid_cells=params.kde_grid_cells,
                        bandwidth_factor=params.kde_bandwidth_factor)
    methods = ["mcp"] * len(params.mcp_levels_pct) + ["kde"] * len(params.kde_levels_pct)
    levels = [*params.mcp_levels_pct, *params.kde_levels_pct]
    bandwidths = [np.nan] * len(params.mcp_levels_pct) + hs
    polys = within_laea([mcp(x, y, level) for level in params.mcp_levels_pct] + kde_polys)
    geos = laea_to_lonlat(polys, inv)
    return [
        {
            "animal_id": label,
            "method": method,
            "level_pct": float(level),
            "area_km2": float(poly.area) / 1e6,
            "n_fixes": int(lon.size),
            "bandwidth_m": h,
            "geometry": geo,
        }
        for method, level, poly, h, geo in zip(methods, levels, polys, bandwidths, geos)
    ]


def mcp(x: np.ndarray, y: np.ndarray, level_pct: float = 95.0) -> shapely.Geometry:
    """Minimum convex polygon of the ``level_pct`` % of points closest to their centroid.

    Parameters
    ----------
    x, y : ndarray
        Planar coordinates (m) in an equal-area projection.
    level_pct : float
        Percentage of points kept (0-100].

    Returns
    -------
    shapely.Geometry
        The hull (a Polygon for 3+ non-collinear points), in the same coordinates.

    Examples
    --------
    >>> mcp(np.array([0.0, 1.0, 0.0, 1.0, 50.0]), np.array([0.0, 0.0, 1.0, 1.0, 50.0]), 80).area
    1.0
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    d2 = (x - x.mean()) ** 2 + (y - y.mean()) ** 2
    n = x.size
    k = max(int(np.ceil(level_pct / 100.0 * n - 1e-9)), 1)
    # the k closest points, as the first k of a stable argsort of d2 (ties at the cut-off go to
    # the lower index), found by one partition instead of sorting all fixes
    if k < n:
        cut = np.partition(d2, k - 1)[k - 1]
        keep = d2 < cut
        tied = np.flatnonzero(d2 == cut)
        keep[tied[: k - int(keep.sum())]] = True
        idx = np.flatnonzero(keep)
    else:
        idx = np.arange(n)
    cand = idx[_hull_candidates(x[idx], y[idx], d2[idx])]
    # GEOS gets the candidates in the order the sorted fixes had, (d2, index): the same hull,
    # vertex for vertex, as from sorting them all
    cand = cand[np.lexsort((cand, d2[cand]))]
    pts = np.column_stack([x[cand], y[cand]])
    # a LineString through the points has the same coordinate list as their MultiPoint (GEOS's hull
    # sees the same input, same result) but is one coordinate sequence, not a Point per fix: ~6x faster
    geom = shapely.linestrings(pts) if len(pts) >= 2 else shapely.multipoints(pts)
    return shapely.convex_hull(geom)


def _first_extreme(v: np.ndarray, rank: np.ndarray | None, largest: bool) -> int:
    """Index of the smallest (largest) ``v``; ties go to the lowest ``(rank, index)``.

    With ``rank`` = the squared distance of :func:`mcp` this is ``np.argmin`` / ``np.argmax`` over
    the points in their sorted order, so the candidates do not depend on the points being sorted.
    """
    ties = np.flatnonzero(v == (v.max() if largest else v.min()))
    if ties.size == 1 or rank is None:
        return int(ties[0])
    return int(ties[np.lexsort((ties, rank[ties]))[0]])


def _hull_candidates(x: np.ndarray, y: np.ndarray, rank: np.ndarray | None = None) -> np.ndarray:
    """Mask of the points that may be hull vertices (Akl–Toussaint throw-away).

    A point well inside the quadrilateral of the extreme points (min/max x, min/max y) is
    inside the hull, so dropping it cannot change the hull GEOS computes; only the few
    others become shapely points (building a point per fix was most of the MCP time).
    Points within a relative 1e-9 of the quadrilateral's edges are kept, so float
    rounding in the side test never drops a vertex. Ties between extreme points go to the
    lowest ``(rank, index)`` (:func:`_first_extreme`; no ``rank``: the first).
    """
    n = x.size
    if n < 16:
        return np.ones(n, dtype=bool)
    # counter-clockwise: min x, min y, max x, max y
    ext = [_first_extreme(x, rank, False), _first_extreme(y, rank, False),
           _first_extreme(x, rank, True), _first_extreme(y, rank, True)]
    qx, qy = x[ext], y[ext]
    scale = max(float(np.ptp(x)), float(np.ptp(y)), 1.0)
    inside = np.ones(n, dtype=bool)
    for a in range(4):
        b = (a + 1) % 4
        ex, ey = qx[b] - qx[a], qy[b] - qy[a]
        if ex == 0.0 and ey == 0.0:
            continue  # two extremes are the same point: that edge constrains nothing
        # cross product > 0: strictly left of the edge a→b, i.e. inside a CCW polygon
        cross = ex * (y - qy[a]) - ey * (x - qx[a])
        inside &= cross > 1e-9 * scale * np.hypot(ex, ey)
    return ~inside


def kde(
    x: np.ndarray,
    y: np.ndarray,
    levels_pct: tuple[float, ...] = (50.0, 95.0),
    *,
    grid_cells: int = 256,
    bandwidth_factor: float = 1.0,
) -> tuple[list[shapely.Geometry], list[float]]:
    """Kernel density isopleths with the reference bandwidth.

    Parameters
    ----------
    x, y : ndarray
        Planar coordinates (m) in an equal-area projection.
    levels_pct : tuple of float
        Isopleths (% of probability mass enclosed).
    grid_cells : int
        Cells along the longer side of the grid.
    bandwidth_factor : float
        Multiplier of ``h_ref``.

    Returns
    -------
    polygons : list of shapely.Geometry
        (Multi)polygons in the input coordinates, one per level.
    bandwidths : list of float
        The bandwidth used (m), repeated per level.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = x.size
    sd = np.sqrt((np.var(x, ddof=1) + np.var(y, ddof=1)) / 2.0)
    h = bandwidth_factor * sd * n ** (-1.0 / 6.0)
    if not np.isfinite(h) or h < 1.0:
        # all fixes in one place: a 1 m kernel still gives a (tiny) polygon. (Below 1 m too: the
        # same place projected can spread by 1e-9 m, whose kernel made a grid one cell wide)
        h = 1.0
    dens, cx, cy = density_grid(x, y, h, grid_cells)
    return isopleths(dens, cx, cy, levels_pct), [float(h)] * len(levels_pct)


def density_grid(x: np.ndarray, y: np.ndarray, h: float, grid_cells: int = 256,
                 weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian kernel density of points on a regular grid (binning + separable convolution).

    Parameters
    ----------
    x, y : ndarray
        Planar coordinates (any unit).
    h : float
        Kernel standard deviation, in the same unit.
    grid_cells : int
        Cells along the longer side (finer where the kernel needs ~4 cells per ``h``; at most
        2048 a side).
    weights : ndarray, optional
        Weight of each point (default equal).

    Returns
    -------
    dens : ndarray
        Probability mass per cell, shape ``(nx, ny)``, summing to 1.
    cx, cy : ndarray
        Cell centres along x and y.

    Examples
    --------
    >>> d, cx, cy = density_grid(np.zeros(3), np.zeros(3), 1.0, 64)
    >>> round(float(d.sum()), 6), abs(float((d.sum(axis=1) * cx).sum())) < 0.1
    (1.0, True)
    """
    pad = 4.0 * h
    x0, x1 = x.min() - pad, x.max() + pad
    y0, y1 = y.min() - pad, y.max() + pad
    cell = max(x1 - x0, y1 - y0) / grid_cells
    # the kernel must be resolved by the grid (~4 cells per bandwidth), but a range much
    # wider than the kernel (migrants) must not blow up memory: at most 2048 cells a side
    cell = max(min(cell, h / 4.0), max(x1 - x0, y1 - y0) / 2048)
    nx = int(np.ceil((x1 - x0) / cell)) + 1
    ny = int(np.ceil((y1 - y0) / cell)) + 1
    counts, _, _ = np.histogram2d(
        x, y, bins=[nx, ny], range=[[x0, x0 + nx * cell], [y0, y0 + ny * cell]], weights=weights
    )
    r = int(np.ceil(4.0 * h / cell))
    k1 = np.exp(-0.5 * ((np.arange(-r, r + 1) * cell) / h) ** 2)
    # the Gaussian kernel is separable: two 1-D passes (2-4x faster than a 2-D FFT convolution
    # on these grids, equal to 1e-15; imported here: scipy.ndimage costs ~0.3 s to import)
    from scipy.ndimage import correlate1d

    dens = correlate1d(correlate1d(counts, k1, axis=0, mode="constant"), k1, axis=1, mode="constant")
    dens = np.clip(dens, 0.0, None)
    dens /= dens.sum()
    cx = x0 + (np.arange(nx) + 0.5) * cell
    cy = y0 + (np.arange(ny) + 0.5) * cell
    return dens, cx, cy


def cells_for_mass(dens: np.ndarray, level_pct: float) -> int:
    """How many cells of a gridded density, densest first, hold ``level_pct`` % of its mass.

    >>> cells_for_mass(np.array([[0.5, 0.25], [0.125, 0.125]]), 70.0)
    2
    """
    flat, cum = _top_mass(dens.ravel(), level_pct / 100.0)
    return min(int(np.searchsorted(cum, level_pct / 100.0)) + 1, flat.size)


def isopleths(dens: np.ndarray, cx: np.ndarray, cy: np.ndarray, levels_pct: tuple[float, ...],
              thresholds: list[float] | None = None) -> list[shapely.Geometry]:
    """(Multi)polygons enclosing ``levels_pct`` % of a gridded density (holes kept).

    ``thresholds`` (density values) replace the levels when given.
    """
    flat, cum = _top_mass(dens.ravel(), max(levels_pct, default=0.0) / 100.0)
    gen = contourpy.contour_generator(cx, cy, dens.T, fill_type=contourpy.FillType.OuterOffset)
    polys = []
    for j, level in enumerate(levels_pct):
        if thresholds is not None:
            threshold = thresholds[j]
        else:
            i = min(int(np.searchsorted(cum, level / 100.0)), flat.size - 1)
            threshold = flat[i]
        points, offsets = gen.filled(threshold, np.inf)
        parts = []
        for pts, offs in zip(points, offsets):
            rings = [pts[offs[k] : offs[k + 1]] for k in range(len(offs) - 1)]
            parts.append(shapely.Polygon(rings[0], rings[1:]))
        polys.append(shapely.make_valid(shapely.MultiPolygon(parts)) if parts else shapely.Polygon())
    return polys


def _top_mass(values: np.ndarray, mass: float) -> tuple[np.ndarray, np.ndarray]:
    """The largest ``values`` in descending order and their running sum, at least until
    the sum reaches ``mass`` (else all of them).

    Equal to the head of ``np.sort(values)[::-1]`` and its ``np.cumsum`` (a running sum
    of a prefix does not depend on what follows), but sorts only the top of a
    (mostly empty) density grid: the isopleth thresholds come out bit-identical.
    """
    n = values.size
    # 95 % of a KDE's mass sits in 20-30 % of its grid cells: one partition usually does
    k = min(n, max(4096, 3 * n // 8))
    while k < n:
        top = np.partition(values, n - k)[n - k :]
        top = np.sort(top)[::-1]
        cum = np.cumsum(top)
        if cum[-1] >= mass:
            return top, cum
        k *= 2
    flat = np.sort(values)[::-1]
    return flat, np.cumsum(flat)


def within_laea(polys: list[shapely.Geometry]) -> list[shapely.Geometry]:
    """Polygons in :func:`laea`'s plane clipped to the disk of radius :data:`LAEA_MAX_M` where they
    reach beyond it (others are returned as they are), so that their area counts ground only.

    >>> big = shapely.box(-2e7, -1e6, 0.0, 1e6)
    >>> a, b = within_laea([big, shapely.box(0, 0, 1, 1)])
    >>> round(float(shapely.bounds(a)[0] / LAEA_MAX_M), 6), b.area
    (-1.0, 1.0)
    """
    out = list(polys)
    # (a box's farthest corner is farther than any vertex inside it: only those beyond are looked at)
    b = np.abs(shapely.bounds(np.asarray(out, dtype=object)))
    far = np.hypot(np.maximum(b[:, 0], b[:, 2]), np.maximum(b[:, 1], b[:, 3])) > LAEA_MAX_M
    for i in np.flatnonzero(far):
        xy = shapely.get_coordinates(out[i])
        if np.hypot(xy[:, 0], xy[:, 1]).max() > LAEA_MAX_M:
            out[i] = shapely.intersection(out[i], shapely.Point(0.0, 0.0).buffer(LAEA_MAX_M, quad_segs=256))
    return out


def laea_to_lonlat(polys: list[shapely.Geometry], inv: Any) -> np.ndarray:
    """Polygons in :func:`laea`'s plane (already :func:`within_laea`) back to degrees with ``inv``
    (its inverse): edges densified to :data:`DENSIFY_M`, or to :data:`DENSIFY_MAX_VERTICES` along
    a longer perimeter, all of them in one PROJ call, split at the antimeridian and closed at a
    pole where one crosses or holds one (:func:`telemetry.trajectory.antimeridian.plane_to_lonlat`)."""
    polys = np.asarray(polys, dtype=object)
    spacing = np.maximum(DENSIFY_M, np.nan_to_num(shapely.length(polys)) / DENSIFY_MAX_VERTICES)
    return plane_to_lonlat(polys, inv.transform, spacing)


def laea(lon: np.ndarray, lat: np.ndarray) -> tuple[pyproj.Transformer, pyproj.Transformer]:
    """Transformers to/from the equal-area projection centred on the points' mean direction."""
    lo, la = np.radians(lon), np.radians(lat)
    vx, vy, vz = np.mean(np.cos(la) * np.cos(lo)), np.mean(np.cos(la) * np.sin(lo)), np.mean(np.sin(la))
    lon0 = np.degrees(np.arctan2(vy, vx))
    lat0 = np.degrees(np.arctan2(vz, np.hypot(vx, vy)))
    # an explicit pipeline: 100x faster to build than a CRS-to-CRS transformer (no database search)
    tr = pyproj.Transformer.from_pipeline(
        "+proj=pipeline +step +proj=unitconvert +xy_in=deg +xy_out=rad "
        f"+step +proj=laea +lat_0={lat0:.8f} +lon_0={lon0:.8f} +x_0=0 +y_0=0 +ellps=WGS84"
    )
    return _Direction(tr, "FORWARD"), _Direction(tr, "INVERSE")


class _Direction:
    """One direction of a pipeline transformer, with the ``transform(x, y)`` interface."""

    def __init__(self, tr: pyproj.Transformer, direction: str) -> None:
        self.tr, self.direction = tr, direction

    def transform(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, y = self.tr.transform(np.asarray(a, dtype=float), np.asarray(b, dtype=float), direction=self.direction)
        return np.asarray(x), np.asarray(y)
