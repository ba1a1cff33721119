"""Public generalisation: positions to a lon/lat grid, times to the month.

A sensitive species' exact position is a poacher's target, so what policymakers get
reveals locations only to a grid cell, following GBIF's practice for sensitive species
(Chapman 2020, *Current Best Practices for Generalizing Sensitive Species Occurrence
Data*: 0.1° for high sensitivity, 0.01°/0.001° for lower classes).

The grid
    Cells are ``grid_deg`` × ``grid_deg`` degrees aligned on (0°, 0°): cell ``(i, j)``
    spans ``[i·g, (i+1)·g) × [j·g, (j+1)·g)`` in WGS84 lon/lat. Corners are written with
    at most 6 decimals, so ``grid_deg`` must be a multiple of 1e-6°.

The guarantee (what :func:`check_generalised` verifies)
    Every coordinate of every generalised geometry is a *lattice point*: a cell corner
    ``(i·g, j·g)`` or a cell centre ``((i+½)·g, (j+½)·g)``. The output is a function of
    the *set of cells* the input touches only, so moving any input position anywhere
    inside its cell (or reshaping a polygon without changing the cells it touches) gives
    the same output. Hence no exported coordinate is a raw position (unless that position
    happens to sit exactly on the lattice, which then tells nothing beyond the cell), for
    every raw position ``p`` the nearest exported coordinate is no closer to ``p`` than the
    nearest lattice point is, and the file locates anything only to within one cell
    (0.1° ≈ 11 km N–S × 8 km E–W at 43° N).

Points become the cell that holds them (polygon) or its centre; polygons become the union
of the cells they intersect (so a polygon never shrinks, a 10-m home range becomes one whole
cell, and no vertex is a vertex of the precise polygon); times become ``YYYY-MM``.

Examples
--------
>>> import numpy as np, shapely
>>> cell_index(np.array([77.123]), np.array([43.051]), 0.1)
(array([771]), array([430]))
>>> shapely.get_coordinates(cell_polygons(np.array([771]), np.array([430]), 0.1)[0]).tolist()
[[77.1, 43.0], [77.2, 43.0], [77.2, 43.1], [77.1, 43.1], [77.1, 43.0]]
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

from telemetry.threads import thread_map

__all__ = [
    "DEFAULT_GRID_DEG",
    "check_grid_deg",
    "cell_index",
    "cell_polygons",
    "cell_centres",
    "snap_points",
    "generalise_polygons",
    "month",
    "on_lattice",
    "check_generalised",
]

DEFAULT_GRID_DEG = 0.1
"""GBIF generalisation for highly sensitive species (degrees)."""

_MICRO = 1_000_000  # lattice arithmetic in integer micro-degrees: exact, no float drift


def check_grid_deg(grid_deg: float) -> int:
    """Validate a grid size (degrees) and return it in integer micro-degrees.

    Raises
    ------
    ValueError
        If ``grid_deg`` is not in (0, 10] or not a multiple of 1e-6° (corners would need
        more than 6 decimals, which RFC 7946 output rounds away).
    """
    g = float(grid_deg)
    if not np.isfinite(g) or g <= 0 or g > 10:
        raise ValueError(f"grid_deg must be in (0, 10] degrees, got {grid_deg!r}")
    micro = round(g * _MICRO)
    if micro < 1 or abs(micro - g * _MICRO) > 1e-6:
        raise ValueError(f"grid_deg must be a multiple of 0.000001°, got {grid_deg!r}")
    return micro


def cell_index(lon: np.ndarray, lat: np.ndarray, grid_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Grid cell ``(i, j)`` of each position (degrees); int64, cells half-open ``[i·g, (i+1)·g)``.

    Positions are first rounded to the micro-degree (the 6 decimals of the output), so a
    position within 0.5e-6° of a cell line counts as on it.
    """
    g = check_grid_deg(grid_deg)
    # integer micro-degrees first so that a position exactly on a cell line always
    # lands in the same cell whatever the float representation of grid_deg
    x = np.floor(np.asarray(lon, dtype=float) * _MICRO + 0.5).astype(np.int64)
    y = np.floor(np.asarray(lat, dtype=float) * _MICRO + 0.5).astype(np.int64)
    return np.floor_divide(x, g), np.floor_divide(y, g)


def _deg(micro: np.ndarray) -> np.ndarray:
    """Integer micro-degrees → degrees, rounded so the float prints with ≤ 6 decimals."""
    return np.round(np.asarray(micro, dtype=np.int64) / _MICRO, 6)


def cell_polygons(i: np.ndarray, j: np.ndarray, grid_deg: float) -> np.ndarray:
    """Counter-clockwise square polygons of cells ``(i, j)`` (array of shapely Polygons)."""
    g = check_grid_deg(grid_deg)
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    x0, x1, y0, y1 = _deg(i * g), _deg((i + 1) * g), _deg(j * g), _deg((j + 1) * g)
    ring = np.stack([np.column_stack(c) for c in ((x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0))], axis=1)
    return shapely.polygons(ring)


def runs_polygon(row: np.ndarray, first: np.ndarray, last: np.ndarray, grid_deg: float) -> shapely.Geometry:
    """The union of runs of cells (row ``row``, columns ``first..last``): one (Multi)Polygon whose
    vertices are cell corners, collinear corners dropped.

    Each run is one rectangle, so the union costs the runs (about the rows × the pieces per row),
    not the cells: a hemisphere-wide range at 0.1° is ~1,000 rectangles instead of 2 million
    squares. The rectangles of neighbouring rows do not share their vertices, so they are not a
    coverage: they are unioned by ``union_all``.

    >>> p = runs_polygon(np.array([0, 1]), np.array([0, 1]), np.array([1, 1]), 0.1)  # an L of three cells
    >>> shapely.get_coordinates(shapely.normalize(p)).tolist()
    [[0.0, 0.0], [0.0, 0.1], [0.1, 0.1], [0.1, 0.2], [0.2, 0.2], [0.2, 0.0], [0.0, 0.0]]
    """
    g = check_grid_deg(grid_deg)
    row, first, last = (np.asarray(a, dtype=np.int64) for a in (row, first, last))
    boxes = shapely.box(_deg(first * g), _deg(row * g), _deg((last + 1) * g), _deg((row + 1) * g))
    return shapely.simplify(shapely.union_all(boxes), 0.0)


def cell_centres(i: np.ndarray, j: np.ndarray, grid_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Lon, lat (degrees) of the centres of cells ``(i, j)``."""
    g = check_grid_deg(grid_deg)
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    # 2·i·g + g over 2 stays in integers; the centre needs 7 decimals only for odd
    # micro-degree grids, which _deg then rounds to the nearest micro-degree
    return _deg((2 * i * g + g) // 2), _deg((2 * j * g + g) // 2)


def snap_points(lon: np.ndarray, lat: np.ndarray, grid_deg: float, *, as_cells: bool = True) -> np.ndarray:
    """Points → the cells that hold them (polygons) or those cells' centres (points).

    Missing positions give None.
    """
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    ok = np.isfinite(lon) & np.isfinite(lat)
    out = np.full(len(lon), None, dtype=object)
    if ok.any():
        i, j = cell_index(lon[ok], lat[ok], grid_deg)
        if as_cells:
            out[ok] = cell_polygons(i, j, grid_deg)
        else:
            out[ok] = shapely.points(*cell_centres(i, j, grid_deg))
    return out


def generalise_polygons(geoms: np.ndarray, grid_deg: float) -> np.ndarray:
    """Each (multi)polygon → the union of the grid cells whose interior it overlaps.

    Parameters
    ----------
    geoms : array of shapely geometries
        Polygons in WGS84 lon/lat (degrees); None or empty give None.
    grid_deg : float
        Cell size (degrees).

    Returns
    -------
    ndarray of shapely geometries
        Polygon or MultiPolygon per input whose every vertex is a cell corner; holes
        (cells not touched) are kept. The result covers the input, so areas only grow.

    Notes
    -----
    Rasterised by rows: the polygon is cut into one band per cell row (one vectorised GEOS
    intersection), and each connected piece of a band covers exactly the cells whose
    columns overlap its x-extent (the interior of a valid polygon is connected, so its
    projection is an interval). The cost follows the rows × the polygon's vertices, not
    the cells of its bounding box: a migratory bird's home range over 25° of latitude at
    0.1° costs 256 band cuts instead of 44,000 cell tests. A cell that only shares an edge
    or a corner with the polygon is not part of it (else every polygon ending on a cell
    line would grow by a row of cells), unless the geometry has no area at all.

    Examples
    --------
    >>> sq = shapely.box(77.05, 43.05, 77.25, 43.15)
    >>> shapely.get_coordinates(generalise_polygons(np.array([sq]), 0.1)[0]).tolist()
    [[77.0, 43.0], [77.3, 43.0], [77.3, 43.2], [77.0, 43.2], [77.0, 43.0]]
    """
    geoms = np.asarray(geoms, dtype=object)
    out = np.full(len(geoms), None, dtype=object)
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))

    def one(geom: shapely.Geometry) -> shapely.Geometry | None:
        row, first, last = runs_of(geom, grid_deg)
        if not row.size:
            return None
        return shapely.orient_polygons(shapely.normalize(runs_polygon(row, first, last, grid_deg)))

    idx = np.flatnonzero(ok)
    # geometries on threads: the GEOS cuts release the GIL
    for gi, g in zip(idx, thread_map(one, geoms[idx]), strict=True):
        out[gi] = g
    return out


def _row_pieces(geom: shapely.Geometry, lo: int, hi: int, g: int, x0: float, x1: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """The polygonal pieces of ``geom`` in each cell row ``lo..hi-1``, and the row of each piece.

    The geometry is halved by rows recursively (one vectorised GEOS intersection per level), so a
    polygon of ``V`` vertices over ``R`` rows costs about ``V log R`` instead of ``V R``.
    """
    pieces = np.array([geom], dtype=object)
    span = np.array([[lo, hi]], dtype=np.int64)
    while True:
        wide = span[:, 1] - span[:, 0] > 1
        if not wide.any():
            break
        mid = (span[wide, 0] + span[wide, 1]) // 2
        halves = np.concatenate([np.column_stack([span[wide, 0], mid]), np.column_stack([mid, span[wide, 1]])])
        boxes = shapely.box(x0, _deg(halves[:, 0] * g), x1, _deg(halves[:, 1] * g))
        cut = shapely.intersection(np.concatenate([pieces[wide], pieces[wide]]), boxes)
        keep = shapely.area(cut) > 0  # lines and points where the polygon only touches a band
        pieces = np.concatenate([pieces[~wide], cut[keep]])
        span = np.concatenate([span[~wide], halves[keep]])
    parts, idx = shapely.get_parts(pieces, return_index=True)
    keep = shapely.area(parts) > 0
    return parts[keep], span[idx[keep], 0]


def cells_of(geom: shapely.Geometry, grid_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """``(i, j)`` of the cells whose interior ``geom`` overlaps (see :func:`generalise_polygons`),
    distinct, sorted by row ``j`` then column ``i``."""
    row, first, last = runs_of(geom, grid_deg)
    n = last - first + 1
    owner = np.repeat(np.arange(row.size), n)
    return first[owner] + (np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)), row[owner]


def runs_of(geom: shapely.Geometry, grid_deg: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The cells whose interior ``geom`` overlaps, as runs: ``(row, first, last)`` columns, int64,
    sorted by row and column, neither overlapping nor touching within a row (a hemisphere-wide
    range at 0.1° is ~1,000 runs of 2 million cells).

    >>> [a.tolist() for a in runs_of(shapely.box(0.05, 0.05, 0.25, 0.15), 0.1)]
    [[0, 1], [0, 0], [2, 2]]
    """
    g = check_grid_deg(grid_deg)
    xmin, ymin, xmax, ymax = shapely.bounds(geom)
    i0, j0 = cell_index(np.array([xmin]), np.array([ymin]), grid_deg)
    i1, j1 = cell_index(np.array([xmax]), np.array([ymax]), grid_deg)
    if shapely.area(geom) <= 0:  # degenerate (a line on a cell line): every cell it meets
        ii, jj = np.meshgrid(np.arange(i0[0], i1[0] + 1), np.arange(j0[0], j1[0] + 1))
        ii, jj = ii.ravel(), jj.ravel()
        hit = shapely.intersects(cell_polygons(ii, jj, grid_deg), geom)
        return merge_runs(jj[hit], ii[hit], ii[hit])
    parts, rows = _row_pieces(geom, int(j0[0]), int(j1[0]) + 1, g, _deg(i0[0] * g) - 1.0, _deg((i1[0] + 1) * g) + 1.0)
    b = shapely.bounds(parts)
    x_lo = np.floor(b[:, 0] * _MICRO + 0.5).astype(np.int64)
    x_hi = np.floor(b[:, 2] * _MICRO + 0.5).astype(np.int64)
    first = np.floor_divide(x_lo, g)
    last = -np.floor_divide(-x_hi, g) - 1  # a piece ending on a cell line stops before it
    return merge_runs(np.asarray(rows, dtype=np.int64), first, np.maximum(last, first))


def merge_runs(row: np.ndarray, first: np.ndarray, last: np.ndarray,
               owner: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """Runs of cells (row, first..last columns) merged where they overlap or touch, per row (and
    per ``owner`` when given, which then comes first in the result and in the order).

    >>> [a.tolist() for a in merge_runs(np.array([0, 0, 0, 1]), np.array([5, 0, 2, 0]), np.array([6, 3, 4, 0]))]
    [[0, 1], [0, 0], [6, 0]]
    >>> [a.tolist() for a in merge_runs(np.array([]), np.array([]), np.array([]))]
    [[], [], []]
    """
    row, first, last = (np.asarray(a, dtype=np.int64) for a in (row, first, last))
    if not row.size:  # (no cells: a range at a pole, degenerate where the degrees meet)
        return (row, first, last) if owner is None else (np.asarray(owner, dtype=np.int64), row, first, last)
    keys = (first, row) if owner is None else (first, row, np.asarray(owner, dtype=np.int64))
    order = np.lexsort(keys)
    row, first, last = row[order], first[order], last[order]
    group = np.r_[True, row[1:] != row[:-1]]
    if owner is not None:
        owner = np.asarray(owner, dtype=np.int64)[order]
        group |= np.r_[True, owner[1:] != owner[:-1]]
    # the farthest column reached so far within the group: a run starts anew beyond it
    gid = np.cumsum(group) - 1
    reach = np.maximum.accumulate(last + (gid << 40)) - (gid << 40) if last.size else last
    new = group | (first > np.r_[first[:1] - 2, reach[:-1]] + 1)
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], row.size] - 1
    out = (row[starts], first[starts], reach[ends])
    return out if owner is None else (owner[starts], *out)


def month(times: pd.Series | pd.DatetimeIndex) -> pd.Series:
    """UTC times → ``"YYYY-MM"`` strings (missing stay missing)."""
    t = pd.Series(pd.to_datetime(times, utc=True))
    return t.dt.strftime("%Y-%m").astype(object).where(t.notna(), None)


def on_lattice(coords: np.ndarray, grid_deg: float, *, tol_deg: float = 1e-9) -> np.ndarray:
    """True for each ``(lon, lat)`` row that is a cell corner or a cell centre."""
    g = check_grid_deg(grid_deg) / _MICRO
    c = np.asarray(coords, dtype=float).reshape(-1, 2)

    def frac(v: np.ndarray, shift: float) -> np.ndarray:
        r = (v / g - shift) % 1.0
        return np.minimum(r, 1.0 - r) * g  # distance to the nearest multiple, in degrees

    corner = (frac(c[:, 0], 0.0) <= tol_deg) & (frac(c[:, 1], 0.0) <= tol_deg)
    centre = (frac(c[:, 0], 0.5) <= tol_deg) & (frac(c[:, 1], 0.5) <= tol_deg)
    return corner | centre


def check_generalised(geoms: np.ndarray, grid_deg: float) -> None:
    """Raise ``ValueError`` if any coordinate of ``geoms`` is off the lattice (see module doc)."""
    coords = shapely.get_coordinates(np.asarray(geoms, dtype=object))
    bad = ~on_lattice(coords, grid_deg)
    if bad.any():
        raise ValueError(f"{int(bad.sum())} coordinate(s) are not on the {grid_deg}° lattice, "
                         f"e.g. {coords[bad][0].tolist()}")
