"""Brownian bridge utilisation distributions and population footprint stacking.

The first of the two corridor methods (the second is :mod:`telemetry.corridor.behaviour`):

1. every animal's movement is modelled as a Brownian bridge between consecutive
   fixes (Horne et al. 2007): at time ``t`` between fixes ``a`` (time ``t_a``) and
   ``b`` (time ``t_b``, ``T = t_b - t_a``, ``α = (t - t_a) / T``) the animal is
   normally distributed around ``a + α (b - a)`` with per-axis variance
   ``σ²(t) = T α (1 - α) σ²_m + (1 - α)² δ_a² + α² δ_b²``, where ``σ²_m`` (m²/s) is the
   animal's Brownian motion variance and ``δ`` (m) the location error of the fixes;
2. ``σ²_m`` is estimated per animal by maximum likelihood with Horne's leave-one-out
   method: the odd fixes are treated as observations of the bridges between the even
   fixes either side (:func:`brownian_variance`);
3. the utilisation distribution (UD) is the time-weighted integral of the bridges,
   evaluated on a shared equal-area grid (:func:`make_grid`, :func:`utilisation`);
4. each animal's 99 % footprint (the highest-UD cells summing to 99 %) is stacked into
   a count of distinct animals per cell (Sawyer et al. 2009; the "Migration Mapper"
   workflow of Merkle et al.), and classes of that count are turned into polygons
   (:func:`stack_footprints`, :func:`count_polygons`).

The bridge integral runs in numba: per bridge and per time sample, only the cells
within ``k_sigma`` standard deviations of the bridge mean are touched, and the normal
distribution is integrated over each cell (a product of two differences of the normal
CDF, read from a table to 3e-8), so the UD sums to one whatever the cell size relative
to ``σ``.

References
----------
Horne, J. S., Garton, E. O., Krone, S. M. & Lewis, J. S. (2007). Analyzing animal
movements using Brownian bridges. *Ecology* 88(9), 2354–2363.
Sawyer, H., Kauffman, M. J., Nielson, R. M. & Horne, J. S. (2009). Identifying and
prioritizing ungulate migration routes for landscape-level conservation. *Journal of
Applied Ecology* 46(3), 1049–1058 (footprint stacking, count of animals per cell).
Merkle, J. A., Gage, J., Sawyer, H., Lowrey, B. & Kauffman, M. J. (2022). Migration
Mapper: identifying movement corridors and seasonal ranges for large mammal
conservation. *Methods in Ecology and Evolution* 13(11), 2397–2403.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace

import numba
import numpy as np
import pandas as pd
import pyproj
import shapely
from scipy import ndimage, optimize, sparse, special
from scipy.sparse import csgraph

from telemetry.arrays import distinct, group_codes, sorted_usable, usable_mask
from telemetry.threads import thread_map

__all__ = [
    "TrackArrays",
    "Grid",
    "track_arrays",
    "location_error_m",
    "equal_area_crs",
    "brownian_variance",
    "make_grid",
    "utilisation",
    "footprint_mask",
    "footprint_cells",
    "stack_footprints",
    "footprint_grid",
    "bridge_cell_m",
    "stack_cells",
    "count_polygons",
]

# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class TrackArrays:
    """Usable fixes of all animals, sorted by (animal, time), in one metric projection.

    Attributes
    ----------
    animal : ndarray of int64
        Animal code per fix (``0..len(labels)-1``).
    labels : pandas.Index
        Animal id of each code.
    t_s : ndarray of float64
        Time (s since the epoch).
    x, y : ndarray of float64
        Position (m) in ``crs``.
    sigma_m : ndarray of float64
        Per-axis location error σ (m).
    step_ok : ndarray of bool
        True where a step arrives at this fix from the previous one: same animal, same
        segment, ``0 < dt <= max_gap_s``.
    month : ndarray of int64
        Calendar month (1–12, UTC) of the fix.
    crs : pyproj.CRS
        The shared projection (Lambert azimuthal equal-area centred on the data).
    """

    animal: np.ndarray
    labels: pd.Index
    t_s: np.ndarray
    x: np.ndarray
    y: np.ndarray
    sigma_m: np.ndarray
    step_ok: np.ndarray
    month: np.ndarray
    crs: pyproj.CRS

    def __len__(self) -> int:
        return int(self.x.size)


def equal_area_crs(lon: np.ndarray, lat: np.ndarray) -> pyproj.CRS:
    """Lambert azimuthal equal-area projection (WGS84, metres) centred on the points.

    Equal-area so that every grid cell covers the same ground area and polygon areas
    are exact; its distance scale error at 300 km from the centre is < 0.1 %.

    Parameters
    ----------
    lon, lat : array_like
        Decimal degrees (WGS84); NaN ignored.

    Returns
    -------
    pyproj.CRS

    Examples
    --------
    >>> crs = equal_area_crs(np.array([77.0, 78.0]), np.array([43.0, 43.2]))
    >>> crs.coordinate_operation.method_name
    'Lambert Azimuthal Equal Area'
    """
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    ok = np.isfinite(lon) & np.isfinite(lat)
    if not ok.any():
        raise ValueError("no finite coordinates to centre a projection on")
    # centre = mean unit vector (robust across the antimeridian)
    lo, la = np.radians(lon[ok]), np.radians(lat[ok])
    vx, vy, vz = (np.mean(np.cos(la) * np.cos(lo)), np.mean(np.cos(la) * np.sin(lo)), np.mean(np.sin(la)))
    lon0 = math.degrees(math.atan2(vy, vx))
    lat0 = math.degrees(math.atan2(vz, math.hypot(vx, vy)))
    return pyproj.CRS.from_proj4(
        f"+proj=laea +lat_0={lat0:.6f} +lon_0={lon0:.6f} +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs"
    )


def location_error_m(df: pd.DataFrame) -> np.ndarray:
    """Per-axis location error σ (m) of every row.

    ``se_m`` (the smoother's standard error) where present and finite; otherwise the fix's
    own measurement error: ``sigma_m`` (the error model the smoother estimated) where present,
    else :func:`telemetry.trajectory.smooth.measurement_sigma_m` (the configured defaults:
    UERE × HDOP by fix type, Argos class error).

    Parameters
    ----------
    df : pandas.DataFrame
        Canonical table (``hdop``, ``fix_type``, ``argos_lc`` and ``se_m`` are all optional).

    Returns
    -------
    ndarray of float64

    Examples
    --------
    >>> df = pd.DataFrame({"hdop": [1.0, np.nan, 3.0], "fix_type": ["3D", "3D", "2D"]})
    >>> location_error_m(df).tolist()  # a 3D fix without HDOP takes the median HDOP of the 3D fixes
    [10.0, 10.0, 90.0]
    """
    from telemetry.trajectory.smooth import measurement_sigma_m

    sigma = measurement_sigma_m(df)
    if "sigma_m" in df:
        given = df["sigma_m"].to_numpy(dtype=float, na_value=np.nan)
        sigma = np.where(np.isfinite(given) & (given > 0), given, sigma)
    if "se_m" in df:
        se = df["se_m"].to_numpy(dtype=float, na_value=np.nan)
        sigma = np.where(np.isfinite(se) & (se > 0), se, sigma)
    return sigma


def track_arrays(tracks: pd.DataFrame, *, max_gap_h: float = 24.0, crs: pyproj.CRS | None = None) -> TrackArrays:
    """Usable fixes as sorted numpy arrays in a shared equal-area projection.

    Positions are the smoothed ``lon_s``/``lat_s`` where present and finite, else the raw
    ``lon``/``lat``. Only usable rows count (``flag`` NA, time and coordinates present).
    Steps never cross animals, ``segment_id`` boundaries (when the column exists) or
    gaps longer than ``max_gap_h``.

    Parameters
    ----------
    tracks : pandas.DataFrame
        Canonical fix table, raw or after :func:`telemetry.process`.
    max_gap_h : float
        Longest interval (h) still bridged by a step.
    crs : pyproj.CRS, optional
        Projection to use (default :func:`equal_area_crs` of the fixes).

    Returns
    -------
    TrackArrays
    """
    usable = usable_mask(tracks)
    lon = tracks["lon"].to_numpy(dtype=float, na_value=np.nan)
    lat = tracks["lat"].to_numpy(dtype=float, na_value=np.nan)
    if "lon_s" in tracks and "lat_s" in tracks:
        lon_s = tracks["lon_s"].to_numpy(dtype=float, na_value=np.nan)
        lat_s = tracks["lat_s"].to_numpy(dtype=float, na_value=np.nan)
        smooth_ok = np.isfinite(lon_s) & np.isfinite(lat_s)
        lon = np.where(smooth_ok, lon_s, lon)
        lat = np.where(smooth_ok, lat_s, lat)
    pos, codes, t_ns = sorted_usable(tracks, usable)
    _, labels = group_codes(tracks)
    lon, lat = lon[pos], lat[pos]
    if crs is None:
        crs = equal_area_crs(lon, lat) if pos.size else pyproj.CRS.from_epsg(6933)
    x, y = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
    t_s = t_ns.astype(np.float64) / 1e9
    step_ok = np.zeros(pos.size, dtype=bool)
    if pos.size > 1:
        same = codes[1:] == codes[:-1]
        if "segment_id" in tracks:
            seg = tracks["segment_id"].to_numpy(dtype=float, na_value=np.nan)[pos]
            same &= seg[1:] == seg[:-1]
        dt = np.diff(t_s)
        step_ok[1:] = same & (dt > 0) & (dt <= max_gap_h * 3600.0)
    month = pd.DatetimeIndex(t_ns.view("datetime64[ns]")).month.to_numpy().astype(np.int64)
    return TrackArrays(animal=codes, labels=labels, t_s=t_s, x=np.asarray(x, float), y=np.asarray(y, float),
                       sigma_m=location_error_m(tracks)[pos], step_ok=step_ok, month=month, crs=crs)


# --------------------------------------------------------------------------- σ²_m


def _bridge_loglik(log_vm: float, T: np.ndarray, alpha: np.ndarray, r2: np.ndarray,
                   da2: np.ndarray, db2: np.ndarray, dm2: np.ndarray) -> float:
    var = T * alpha * (1 - alpha) * math.exp(log_vm) + (1 - alpha) ** 2 * da2 + alpha**2 * db2 + dm2
    # bivariate isotropic normal: log φ = -log(2π σ²) - r² / (2 σ²)
    return float(np.sum(-np.log(2 * np.pi * var) - r2 / (2 * var)))


_WIDER_LOG = math.log(1e5)
"""How far (natural log) past the upper bound the search goes on when the likelihood peaks at it."""


def brownian_variance(ta: TrackArrays, *, bounds_m2_s: tuple[float, float] = (1e-4, 1e5),
                      mid_error: bool = True) -> np.ndarray:
    """Brownian motion variance σ²_m (m²/s) of each animal by maximum likelihood.

    Horne et al. (2007) leave-one-out estimator: along each unbroken run of steps the
    fixes at odd positions ``i`` are independent observations of the bridge between
    fixes ``i - 1`` and ``i + 1``; their likelihood is a bivariate normal with mean
    ``a + α (b - a)`` and per-axis variance ``T α (1 - α) σ²_m + (1 - α)² δ_a² + α² δ_b² + δ_i²``.
    The last term is the error of the observed odd fix itself; the BBMM R package
    (Nielson et al.) leaves it out (``mid_error=False``), which inflates σ²_m by about
    ``δ² / (T α (1 - α))`` — +25 % for 30 m errors, 2-h bridges and σ²_m = 2 m²/s.
    The log-likelihood is maximised over ``log σ²_m`` within ``bounds_m2_s`` (bounded
    Brent search); when it peaks at the upper bound, the search goes on up to 10⁵ times
    that bound (a seabird at daily fixes wanders farther than 1e5 m²/s allows). Animals
    with fewer than 3 such triplets get the moment estimate ``Σ |step|² / (2 Σ dt)``;
    animals with no step at all get NaN.

    Parameters
    ----------
    ta : TrackArrays
        From :func:`track_arrays`.
    bounds_m2_s : (float, float)
        Search interval for σ²_m (m²/s).
    mid_error : bool
        Include the odd fix's own location error in its likelihood (see above).

    Returns
    -------
    ndarray of float64
        σ²_m per animal code (``len(ta.labels)``), m²/s.
    """
    n_animals = len(ta.labels)
    out = np.full(n_animals, np.nan)
    n = len(ta)
    if n < 2:
        return out
    # position of each fix within its run of consecutive valid steps
    run_start = ~ta.step_ok
    run_id = np.cumsum(run_start) - 1
    first = np.flatnonzero(run_start)
    k = np.arange(n) - first[run_id]
    mid = np.flatnonzero((k % 2 == 1) & (np.arange(n) + 1 < n))
    mid = mid[ta.step_ok[np.minimum(mid + 1, n - 1)]]
    a, b = mid - 1, mid + 1
    T = ta.t_s[b] - ta.t_s[a]
    alpha = (ta.t_s[mid] - ta.t_s[a]) / T
    mx = ta.x[a] + alpha * (ta.x[b] - ta.x[a])
    my = ta.y[a] + alpha * (ta.y[b] - ta.y[a])
    r2 = (ta.x[mid] - mx) ** 2 + (ta.y[mid] - my) ** 2
    da2, db2 = ta.sigma_m[a] ** 2, ta.sigma_m[b] ** 2
    dm2 = ta.sigma_m[mid] ** 2 if mid_error else np.zeros(mid.size)
    owner = ta.animal[mid]
    # moment fallback from all steps
    st = np.flatnonzero(ta.step_ok)
    d2 = (ta.x[st] - ta.x[st - 1]) ** 2 + (ta.y[st] - ta.y[st - 1]) ** 2
    dt = ta.t_s[st] - ta.t_s[st - 1]
    num = np.bincount(ta.animal[st], d2, minlength=n_animals)
    den = np.bincount(ta.animal[st], dt, minlength=n_animals)
    with np.errstate(invalid="ignore", divide="ignore"):
        moment = num / (2 * den)
    counts = np.bincount(owner, minlength=n_animals)
    order = np.argsort(owner, kind="stable")
    edges = np.searchsorted(owner[order], np.arange(n_animals + 1))
    lo, hi = math.log(bounds_m2_s[0]), math.log(bounds_m2_s[1])
    for g in range(n_animals):  # one 1-D optimisation per animal, each fully vectorised
        if counts[g] < 3:
            out[g] = moment[g]
            continue
        idx = order[edges[g]:edges[g + 1]]
        args = (T[idx], alpha[idx], r2[idx], da2[idx], db2[idx], dm2[idx])
        res = optimize.minimize_scalar(lambda v, args=args: -_bridge_loglik(v, *args), bounds=(lo, hi),
                                       method="bounded", options={"xatol": 1e-4})
        if res.x > hi - 1e-3:  # at the upper edge: a wide-ranging animal (an albatross at daily fixes); look on
            res = optimize.minimize_scalar(lambda v, args=args: -_bridge_loglik(v, *args),
                                           bounds=(hi - 1e-3, hi + _WIDER_LOG), method="bounded", options={"xatol": 1e-4})
        out[g] = math.exp(res.x)
    return out


# --------------------------------------------------------------------------- grid and UD


@dataclass(frozen=True)
class Grid:
    """A regular grid of square cells in a metric CRS.

    Cell ``(row j, column i)`` spans ``x0 + i·cell_m .. x0 + (i+1)·cell_m`` and
    ``y0 + j·cell_m .. y0 + (j+1)·cell_m`` (rows go *up*, south to north).
    """

    x0: float
    y0: float
    cell_m: float
    nx: int
    ny: int
    crs: pyproj.CRS
    sparse: bool = False
    """True when ``nx × ny`` exceeds the dense budget: no array spans the grid, footprints are
    computed tile by tile and counted as sorted cell lists (cost follows the fixes, not the extent)."""
    cell_source: str = "given"
    """Where ``cell_m`` came from (:func:`footprint_grid`): ``"given"``, ``"bridges"``
    (:func:`bridge_cell_m`), ``"min_cell_m"`` (its floor) or ``"cost budget"`` (:func:`budget_cell_m`)."""

    @property
    def shape(self) -> tuple[int, int]:
        return (self.ny, self.nx)

    def cell_of(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Flat cell index (row-major) of points; -1 outside the grid."""
        i = np.floor((np.asarray(x) - self.x0) / self.cell_m)
        j = np.floor((np.asarray(y) - self.y0) / self.cell_m)
        ok = (i >= 0) & (i < self.nx) & (j >= 0) & (j < self.ny)
        return np.where(ok, np.where(ok, j, 0) * self.nx + np.where(ok, i, 0), -1).astype(np.int64)


def make_grid(x: np.ndarray, y: np.ndarray, crs: pyproj.CRS, *, cell_m: float = 250.0, pad_m: float = 5000.0,
              max_cells: int = 4_000_000) -> Grid:
    """A grid covering the points plus ``pad_m``, at ``cell_m`` whatever the extent.

    If the extent needs more than ``max_cells`` cells the grid is *sparse*
    (:attr:`Grid.sparse`): nothing is allocated over it, each animal's footprint is computed
    on tiles along its own path and the animals are counted per cell from sorted cell lists,
    so memory and time follow the fixes, not the extent of the study.

    Parameters
    ----------
    x, y : ndarray
        Coordinates (m) in ``crs``.
    crs : pyproj.CRS
    cell_m : float
        Cell side (m).
    pad_m : float
        Margin (m) around the points, wide enough for the bridge tails.
    max_cells : int
        Largest ``nx * ny`` handled with dense arrays; larger grids are sparse.

    Returns
    -------
    Grid

    Examples
    --------
    >>> g = make_grid(np.array([0.0, 1000.0]), np.array([0.0, 500.0]), pyproj.CRS.from_epsg(3857),
    ...               cell_m=100, pad_m=0)
    >>> g.nx, g.ny, g.sparse
    (11, 6, False)
    >>> make_grid(np.array([0.0, 3e6]), np.array([0.0, 2e6]), pyproj.CRS.from_epsg(3857)).sparse
    True
    """
    xmin, xmax = float(np.nanmin(x)) - pad_m, float(np.nanmax(x)) + pad_m
    ymin, ymax = float(np.nanmin(y)) - pad_m, float(np.nanmax(y)) + pad_m
    cell = float(cell_m)
    # snap the origin to a multiple of the cell size: same data → same grid
    x0 = math.floor(xmin / cell) * cell
    y0 = math.floor(ymin / cell) * cell
    nx = math.floor((xmax - x0) / cell) + 1
    ny = math.floor((ymax - y0) / cell) + 1
    return Grid(x0=x0, y0=y0, cell_m=cell, nx=int(nx), ny=int(ny), crs=crs, sparse=nx * ny > max_cells)


# The normal CDF tabulated on [-PHI_Z_MAX, PHI_Z_MAX] every 1/PHI_PER_UNIT standard
# deviations, read by linear interpolation: ≤ 3e-8 absolute error (h²/8 · max φ'), and
# the cell probabilities along an axis telescope, so a bridge sample still carries its
# whole mass. math.erfc per cell edge was ~80 % of the bridge integral's time; the
# table is ~4× faster overall and changes the UD by ~1e-10 (tests/test_footprints.py).
PHI_Z_MAX = 9.0
# Time steps of the bridge integral (see utilisation), chosen against a ≥ 8×-finer reference
# on 10 animals of the 1M-fix benchmark tracks: L1 error of the UD 0.008 (the earlier fixed
# quarter-cell steps, at least 8 per bridge: 0.020), 99 % footprints differing in 0.12 % of
# their cells (0.13 %), in the same or less time.
SAMPLE_SPACING = 1.5
SAMPLE_VAR_CHANGE = 4.0
PHI_PER_UNIT = 1024
_PHI_TABLE = special.ndtr(np.arange(-PHI_Z_MAX * PHI_PER_UNIT, PHI_Z_MAX * PHI_PER_UNIT + 2) / PHI_PER_UNIT)


@numba.njit(cache=True, nogil=True, inline="always")
def _phi(z: float, table: np.ndarray) -> float:  # pragma: no cover
    """Standard normal CDF at ``z`` from ``table`` (see ``_PHI_TABLE``), linear interpolation."""
    u = (z + PHI_Z_MAX) * PHI_PER_UNIT
    if u <= 0.0:
        return 0.0
    if u >= table.size - 1:
        return 1.0
    k = int(u)
    return table[k] + (u - k) * (table[k + 1] - table[k])


@numba.njit(cache=True, nogil=True, inline="always")
def _bridge_var(a: float, T: float, vm: float, da2: float, db2: float) -> float:  # pragma: no cover
    """σ²(α) of a Brownian bridge (m², per axis): T α (1-α) σ²_m + (1-α)² δ_a² + α² δ_b²."""
    return T * a * (1.0 - a) * vm + (1.0 - a) ** 2 * da2 + a * a * db2


@numba.njit(cache=True, nogil=True)
def _time_step(a0: float, T: float, vm: float, da2: float, db2: float, length: float, cell2_12: float,
               spacing: float, var_change: float, min_step: float, max_step: float) -> float:  # pragma: no cover
    """Next midpoint-rule step in α from ``a0``: the bridge mean moves at most ``spacing`` σ_eff and
    σ_eff² changes by at most ``var_change`` × itself, checked at both ends of the step.

    σ_eff² = σ²(α) + cell²/12 is the spread of the density after integration over a cell:
    successive normals one σ_eff apart add up to a smooth ridge (the ripple of a sum of
    normals spaced h apart is ~exp(-2π² σ²/h²), 3e-9 at h = σ).
    """
    st = min(1.0 - a0, max_step)
    for probe in range(2):
        a = a0 if probe == 0 else a0 + st
        v = _bridge_var(a, T, vm, da2, db2) + cell2_12
        if length > 0.0:
            st = min(st, spacing * math.sqrt(v) / length)
        dv = abs(T * vm * (1.0 - 2.0 * a) - 2.0 * (1.0 - a) * da2 + 2.0 * a * db2)
        if dv > 0.0:
            st = min(st, var_change * v / dv)
    st = max(st, min_step)
    if a0 + st > 1.0 - 1e-9:  # never leave a sliver at the end
        st = 1.0 - a0
    return st


@numba.njit(cache=True, nogil=True)
def _bbmm_kernel(xa, ya, xb, yb, T, da2, db2, vm, x0, y0, cell, k_sigma, spacing, var_change, min_step,
                 max_step, table, out):  # pragma: no cover
    """Accumulate ∫ bridge density dt (cell-integrated) into ``out[ny, nx]``; returns the samples used."""
    ny, nx = out.shape
    px = np.empty(nx + 1)  # reused by every time sample (an allocation per sample cost ~10 %)
    cell2_12 = cell * cell / 12.0
    n_samples = 0
    for s in range(xa.size):
        dx = xb[s] - xa[s]
        dy = yb[s] - ya[s]
        length = math.sqrt(dx * dx + dy * dy)
        a0 = 0.0
        while a0 < 1.0:
            st = _time_step(a0, T[s], vm, da2[s], db2[s], length, cell2_12, spacing, var_change, min_step, max_step)
            a = a0 + 0.5 * st
            a0 += st
            n_samples += 1
            w = T[s] * st
            mx = xa[s] + a * dx
            my = ya[s] + a * dy
            sd = math.sqrt(_bridge_var(a, T[s], vm, da2[s], db2[s]))
            r = k_sigma * sd
            i0 = max(0, int(math.floor((mx - r - x0) / cell)))
            i1 = min(nx - 1, int(math.floor((mx + r - x0) / cell)))
            j0 = max(0, int(math.floor((my - r - y0) / cell)))
            j1 = min(ny - 1, int(math.floor((my + r - y0) / cell)))
            if i1 < i0 or j1 < j0:
                continue
            c = 1.0 / sd
            # cell probabilities along each axis: differences of the normal CDF at the edges
            prev = _phi((x0 + i0 * cell - mx) * c, table)
            for i in range(i0, i1 + 1):
                nxt = _phi((x0 + (i + 1) * cell - mx) * c, table)
                px[i - i0] = nxt - prev
                prev = nxt
            m = i1 - i0 + 1
            prev = _phi((y0 + j0 * cell - my) * c, table)
            for j in range(j0, j1 + 1):
                nxt = _phi((y0 + (j + 1) * cell - my) * c, table)
                pyj = (nxt - prev) * w
                prev = nxt
                row = out[j, i0:i1 + 1]  # a row view lets LLVM vectorise the update (~25 % faster)
                for i in range(m):
                    row[i] += pyj * px[i]
    return n_samples


def utilisation(xa: np.ndarray, ya: np.ndarray, xb: np.ndarray, yb: np.ndarray, T: np.ndarray,
                sigma_a: np.ndarray, sigma_b: np.ndarray, var_m2_s: float, grid: Grid, *,
                window: tuple[int, int, int, int] | None = None, k_sigma: float = 5.0,
                spacing: float = SAMPLE_SPACING, var_change: float = SAMPLE_VAR_CHANGE,
                min_samples: int = 8, max_samples: int = 2000) -> np.ndarray:
    """Brownian bridge UD of one animal on ``grid`` (Horne et al. 2007, eq. 4).

    ``UD(cell) = Σ_bridges (1 / Σ T) ∫_0^T P(cell | bridge, t) dt``, the probability of
    each cell being the integral of the normal over the cell (normal CDF tabulated, error
    ≤ 3e-8 per cell edge). The time integral uses the midpoint rule with adaptive steps
    (:func:`_time_step`): successive bridge means at most ``spacing`` × σ_eff apart and
    σ_eff² changing by at most ``var_change`` × itself per step, where σ_eff² = σ²(t) +
    cell²/12; at least ``min_samples`` and at most ``max_samples`` steps per bridge. Long
    bridges with a wide middle thus get few wide samples there and close ones near the
    fixes, where the density is sharp.

    Parameters
    ----------
    xa, ya, xb, yb : ndarray
        Start and end of each bridge (m, grid CRS).
    T : ndarray
        Duration of each bridge (s).
    sigma_a, sigma_b : ndarray
        Per-axis location error σ (m) at the two ends.
    var_m2_s : float
        Brownian motion variance σ²_m (m²/s).
    grid : Grid
    window : (j0, i0, ny, nx), optional
        Evaluate only in this sub-window of the grid (rows, columns); default the whole grid.
    k_sigma : float
        Cells farther than this many σ(t) from the bridge mean are skipped (5σ leaves
        < 1e-6 of the mass out).
    spacing : float
        Largest move of the bridge mean between time samples, in σ_eff.
    var_change : float
        Largest relative change of σ_eff² between time samples.
    min_samples, max_samples : int
        Bounds on the time samples per bridge.

    Returns
    -------
    ndarray of float64, shape ``(ny, nx)`` of the window
        Probability per cell; sums to 1 when the window covers the bridges' tails.
    """
    j0, i0, ny, nx = window if window is not None else (0, 0, grid.ny, grid.nx)
    out = np.zeros((ny, nx))
    T = np.asarray(T, dtype=float)
    if T.size == 0 or not np.isfinite(var_m2_s):
        return out
    _bbmm_kernel(np.ascontiguousarray(xa, dtype=float), np.ascontiguousarray(ya, dtype=float),
                 np.ascontiguousarray(xb, dtype=float), np.ascontiguousarray(yb, dtype=float), T,
                 np.asarray(sigma_a, float) ** 2, np.asarray(sigma_b, float) ** 2, float(var_m2_s),
                 grid.x0 + i0 * grid.cell_m, grid.y0 + j0 * grid.cell_m, grid.cell_m, float(k_sigma),
                 float(spacing), float(var_change), 1.0 / max_samples, 1.0 / min_samples, _PHI_TABLE, out)
    out /= T.sum()
    return out


def footprint_mask(ud: np.ndarray, level: float = 0.99, *, key: np.ndarray | None = None) -> np.ndarray:
    """Cells of the ``level`` isopleth: the highest-UD cells whose sum reaches ``level``.

    Equal values are taken in ``key`` order (default: position in ``ud``), so the
    result does not depend on the order the cells come in when ``key`` is given.

    Parameters
    ----------
    ud : ndarray
        Utilisation distribution (any shape; need not sum exactly to 1).
    level : float
        Probability mass of the footprint (0.99 in Sawyer et al. 2009).
    key : ndarray of int, optional
        Tie-break order of the cells (e.g. flat grid indices), same size as ``ud``.

    Returns
    -------
    ndarray of bool, same shape

    Examples
    --------
    >>> footprint_mask(np.array([0.5, 0.3, 0.15, 0.05]), 0.9).tolist()
    [True, True, True, False]
    >>> footprint_mask(np.array([0.25, 0.25, 0.25, 0.25]), 0.5, key=np.array([3, 2, 1, 0])).tolist()
    [False, False, True, True]
    """
    flat = ud.ravel()
    total = flat.sum()
    mask = np.zeros(flat.size, dtype=bool)
    if total <= 0:
        return mask.reshape(ud.shape)
    nz = np.flatnonzero(flat > 0)
    mask[nz[_top_mass(flat[nz], level * total, None if key is None else np.asarray(key).ravel()[nz])]] = True
    return mask.reshape(ud.shape)


_MASS_BINS_PER_OCTAVE = 32
"""Value classes per factor of 2 in :func:`_top_mass` (only the class the cut falls in is sorted)."""


def _top_mass(vals: np.ndarray, target: float, key: np.ndarray | None) -> np.ndarray:
    """Indices of the largest positive ``vals`` whose running sum (largest first, ties in
    ``key`` order, else position) first reaches ``target`` (at least one, at most all).

    The same cut as sorting all values, in O(n): values are binned by their log₂
    (``_MASS_BINS_PER_OCTAVE`` per octave); bins above the one where the mass crosses
    ``target`` are taken whole and only that bin's values are sorted (a sort of 20M values
    was most of a wide-ranging animal's footprint time).
    """
    n = vals.size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if target >= vals.sum():  # the whole mass (level 1): every cell, not an accident of rounding
        return np.arange(n)
    b = np.floor(np.log2(vals) * _MASS_BINS_PER_OCTAVE).astype(np.int64)
    b = b.max() - b  # 0 = highest values
    mass = np.bincount(b, weights=vals)
    above = np.r_[0.0, np.cumsum(mass)[:-1]]  # mass of the bins above each bin
    crossing = np.flatnonzero(above + mass >= target)
    cut_bin = int(crossing[0]) if crossing.size else mass.size - 1
    inside = np.flatnonzero(b < cut_bin)
    cand = np.flatnonzero(b == cut_bin)
    tie = cand if key is None else key[cand]
    cand = cand[np.lexsort((tie, -vals[cand]))]
    csum = above[cut_bin] + np.cumsum(vals[cand])
    last = min(int(np.searchsorted(csum, target, side="left")), cand.size - 1)
    return np.concatenate([inside, cand[:last + 1]])


@dataclass(frozen=True)
class Footprints:
    """Result of :func:`stack_footprints`.

    Attributes
    ----------
    grid : Grid
    count : ndarray of int16, shape ``(ny, nx)``, or None
        Number of distinct animals whose footprint covers each cell (None on a sparse grid).
    cells : list of ndarray
        Flat cell indices of each animal's footprint (by animal code; empty if none).
    var_m2_s : ndarray
        σ²_m per animal code (m²/s).
    """

    grid: Grid
    count: np.ndarray | None
    cells: list[np.ndarray]
    var_m2_s: np.ndarray

    def occupied(self) -> tuple[np.ndarray, np.ndarray]:
        """Sorted flat cells covered by any footprint and the number of animals on each (int16)."""
        if self.count is not None:
            flat = self.count.ravel()
            occ = np.flatnonzero(flat)
            return occ, flat[occ]
        occ, n = np.unique(np.concatenate(self.cells) if self.cells else np.zeros(0, np.int64), return_counts=True)
        return occ, n.astype(np.int16)


def _bridges(ta: TrackArrays, var_m2_s: np.ndarray, k_sigma: float,
             cell_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bridges (steps) with a finite σ²_m: end fix, start fix, duration (s), owner, σ²_m, reach (m).

    ``reach`` is the widest extent of the bridge's density: ``k_sigma`` σ at α = ½ (which
    bounds the Brownian term) with the larger end error, plus two cells.
    """
    st = np.flatnonzero(ta.step_ok)
    a = st - 1
    T = ta.t_s[st] - ta.t_s[a]
    owner = ta.animal[st]
    vm = np.asarray(var_m2_s, dtype=float)[owner]
    ok = np.isfinite(vm)
    st, a, T, owner, vm = st[ok], a[ok], T[ok], owner[ok], vm[ok]
    reach = k_sigma * np.sqrt(T * 0.25 * vm + np.maximum(ta.sigma_m[a], ta.sigma_m[st]) ** 2) + 2 * cell_m
    return st, a, T, owner, vm, reach


def bridge_cell_m(ta: TrackArrays, var_m2_s: np.ndarray, *, min_cell_m: float = 250.0) -> float:
    """Footprint cell (m) for a study: half the median σ (m) of its bridges at mid-step.

    A bridge's density is a band about ``2 k_sigma σ`` wide (σ² = ``T σ²_m / 4 + δ²`` at α = ½),
    so this cell puts the same number of cells across a bridge whatever the species and
    schedule, and the grid's cost follows the number of bridges, not the distance they cover.
    Never finer than ``min_cell_m``; ``min_cell_m`` itself when no bridge has a finite σ²_m.

    >>> ta = TrackArrays(animal=np.zeros(3, np.int64), labels=np.array(["a"]), t_s=np.array([0.0, 3600, 7200]),
    ...                  x=np.zeros(3), y=np.zeros(3), sigma_m=np.full(3, 10.0), step_ok=np.array([False, True, True]),
    ...                  month=np.ones(3, np.int64), crs=None)
    >>> round(bridge_cell_m(ta, np.array([400.0])))  # σ = sqrt(3600 s · 400 m²/s / 4 + 10²) ≈ 600 m
    300
    >>> bridge_cell_m(ta, np.array([4.0]))  # σ ≈ 61 m: the floor
    250.0
    """
    *_, sigma = _bridges(ta, np.asarray(var_m2_s, dtype=float), 1.0, 0.0)  # a reach of 1 σ and no cell: σ
    return float(max(min_cell_m, 0.5 * float(np.median(sigma)))) if sigma.size else float(min_cell_m)


def budget_cell_m(ta: TrackArrays, var_m2_s: np.ndarray, cell_m: float, *, k_sigma: float = 5.0,
                  max_cells_per_bridge: float = 5000.0, min_cell_budget: int = 50_000_000) -> float:
    """``cell_m`` (m), coarsened where needed so that the boxes the bridges' densities are evaluated
    over (each bridge's ends plus its reach, :func:`_bridges`) hold at most
    ``max(min_cell_budget, max_cells_per_bridge × bridges)`` cells in all: the kernel's cost and the
    footprints' memory then follow the number of bridges, whatever their widths.

    :func:`bridge_cell_m` takes the median bridge: one animal whose bridges are thousands of times
    wider than the rest (steps of hundreds of km among animals at rest) would otherwise be drawn on
    billions of cells.

    >>> ta = TrackArrays(animal=np.zeros(3, np.int64), labels=np.array(["a"]), t_s=np.array([0.0, 3600, 7200]),
    ...                  x=np.array([0.0, 1e5, 2e5]), y=np.zeros(3), sigma_m=np.full(3, 10.0),
    ...                  step_ok=np.array([False, True, True]), month=np.ones(3, np.int64), crs=None)
    >>> budget_cell_m(ta, np.array([400.0]), 250.0)  # reach 3 km + 2 cells: ~12,000 cells a bridge
    250.0
    >>> round(budget_cell_m(ta, np.array([400.0]), 250.0, max_cells_per_bridge=100, min_cell_budget=0))
    6502
    """
    st, a, _, _, _, k_reach = _bridges(ta, np.asarray(var_m2_s, dtype=float), k_sigma, 0.0)
    if not st.size:
        return float(cell_m)
    dx, dy = np.abs(ta.x[st] - ta.x[a]), np.abs(ta.y[st] - ta.y[a])
    budget = max(float(min_cell_budget), float(max_cells_per_bridge) * st.size)
    cell = float(cell_m)
    for _ in range(60):  # (each round at least halves the excess; a few rounds in practice)
        cost = _box_cells(dx, dy, k_reach, cell)
        if not cost > budget:  # (NaN: nothing to coarsen by)
            break
        cell *= math.sqrt(cost / budget) * 1.001
    return cell


def box_cells(ta: TrackArrays, var_m2_s: np.ndarray, cell_m: float, k_sigma: float = 5.0) -> float:
    """Cells (at ``cell_m``, m) of the boxes the bridges' densities are evaluated over: the
    footprint kernel's cost, which :func:`budget_cell_m` bounds.

    >>> ta = TrackArrays(animal=np.zeros(2, np.int64), labels=np.array(["a"]), t_s=np.array([0.0, 3600]),
    ...                  x=np.array([0.0, 1e5]), y=np.zeros(2), sigma_m=np.full(2, 10.0),
    ...                  step_ok=np.array([False, True]), month=np.ones(2, np.int64), crs=None)
    >>> round(box_cells(ta, np.array([400.0]), 250.0))  # (100 km + 2 x 3.5 km) x (2 x 3.5 km) / 250² m²
    11986
    """
    st, a, _, _, _, k_reach = _bridges(ta, np.asarray(var_m2_s, dtype=float), k_sigma, 0.0)
    return _box_cells(np.abs(ta.x[st] - ta.x[a]), np.abs(ta.y[st] - ta.y[a]), k_reach, float(cell_m))


def _box_cells(dx: np.ndarray, dy: np.ndarray, k_reach: np.ndarray, cell: float) -> float:
    """Cells of the bridges' boxes: ends ``dx``, ``dy`` apart (m) plus the reach each side, ``k σ``
    (``k_reach``, m) and two cells as :func:`_bridges` puts it."""
    r = k_reach + 2.0 * cell
    return float(np.sum((dx + 2.0 * r) * (dy + 2.0 * r))) / cell**2


def footprint_cells(ta: TrackArrays, grid: Grid, animals: np.ndarray | None = None, *, level: float = 0.99,
                    k_sigma: float = 5.0, var_m2_s: np.ndarray | None = None,
                    n_threads: int | None = None) -> list[tuple[int, np.ndarray, float]]:
    """Each animal's Brownian bridge footprint as flat cell indices of a fixed grid (the *map* step).

    For every requested animal: σ²_m (m²/s, :func:`brownian_variance` unless given), the
    UD of its bridges (:func:`utilisation`) on the window of ``grid`` that its bridges can
    reach (``k_sigma`` σ), and the cells of its ``level`` isopleth (:func:`footprint_mask`).
    The result of an animal depends only on its own fixes and on ``grid``: any split of
    the animals into calls (threads, processes, Dask partitions — each given the
    TrackArrays of its animals, or all of them) gives identical cells, and the stacked
    count is ``np.bincount`` of all the cells (:func:`stack_footprints`, the *reduce* step).

    Parameters
    ----------
    ta : TrackArrays
        Fixes (metric CRS of ``grid``); may hold more animals than requested.
    grid : Grid
        The shared grid (same for every call; e.g. from :func:`stack_footprints` or
        :func:`make_grid` with a pad ≥ the bridges' reach). Cells outside it are dropped.
    animals : ndarray of int, optional
        Animal codes (``ta.animal`` values) to compute; default every code with a step.
    level : float
        Footprint isopleth (0.99: the highest-UD cells holding 99 % of the UD).
    k_sigma : float
        Bridge truncation in standard deviations.
    var_m2_s : ndarray, optional
        σ²_m per animal code (m²/s, indexed by code); default fitted here, per animal.
    n_threads : int, optional
        Worker threads over animals (the numba kernel releases the GIL; default: CPU
        count, 1 = serial). Results do not depend on it.

    Returns
    -------
    list of (int, ndarray of int64, float)
        Per requested animal with at least one bridge, in ascending code order:
        ``(animal code, flat row-major cell indices of the footprint (sorted, into
        grid.ny × grid.nx), σ²_m in m²/s)``. Animals without a step or with a
        non-finite σ²_m are left out.
    """
    if var_m2_s is None:
        var_m2_s = brownian_variance(subset_animals(ta, animals))
    var_m2_s = np.asarray(var_m2_s, dtype=float)
    st, a, T, owner, vm, reach = _bridges(ta, var_m2_s, k_sigma, grid.cell_m)
    codes = distinct(owner)
    if animals is not None:
        codes = np.intersect1d(codes, np.asarray(animals, dtype=np.int64))
    order = np.argsort(owner, kind="stable")
    lo = np.searchsorted(owner[order], codes, side="left")
    hi = np.searchsorted(owner[order], codes, side="right")

    def one(k: int) -> tuple[int, np.ndarray, float]:
        idx = order[lo[k]:hi[k]]
        s, p = st[idx], a[idx]
        xs = np.concatenate([ta.x[s], ta.x[p]])
        ys = np.concatenate([ta.y[s], ta.y[p]])
        r = float(np.max(reach[idx]))
        i0 = max(0, int((xs.min() - r - grid.x0) // grid.cell_m))
        i1 = min(grid.nx - 1, int((xs.max() + r - grid.x0) // grid.cell_m))
        j0 = max(0, int((ys.min() - r - grid.y0) // grid.cell_m))
        j1 = min(grid.ny - 1, int((ys.max() + r - grid.y0) // grid.cell_m))
        code, v = int(codes[k]), float(vm[idx][0])
        if i1 < i0 or j1 < j0:  # the animal lies outside this grid
            return code, np.zeros(0, dtype=np.int64), v
        win = (j0, i0, j1 - j0 + 1, i1 - i0 + 1)
        if win[2] * win[3] > TILE_SIDE * TILE_SIDE * 4:  # wide-ranging: tiles along its path only
            return code, _tiled_cells(ta, p, s, T[idx], reach[idx], v, grid, win, level, k_sigma), v
        ud = utilisation(ta.x[p], ta.y[p], ta.x[s], ta.y[s], T[idx], ta.sigma_m[p], ta.sigma_m[s], v, grid,
                         window=win, k_sigma=k_sigma)
        jj, ii = np.nonzero(footprint_mask(ud, level))
        return code, (jj + j0).astype(np.int64) * grid.nx + (ii + i0), v

    # animals are independent; thread_map keeps their order, so the output is deterministic
    return thread_map(one, range(codes.size), max_workers=n_threads)


TILE_SIDE = 1024
"""Side (cells) of the tiles a wide-ranging animal's UD is computed on (8 MB of float64 each);
an animal whose window exceeds 4 tiles is computed tile by tile, only where its bridges reach."""


def _tiled_cells(ta: TrackArrays, p: np.ndarray, s: np.ndarray, T: np.ndarray, reach: np.ndarray, v: float,
                 grid: Grid, win: tuple[int, int, int, int], level: float, k_sigma: float) -> np.ndarray:
    """One animal's ``level`` footprint (sorted flat cells) from its UD on the tiles its bridges reach.

    Each bridge is evaluated on every tile its reach box touches (the kernel clips to the
    window, so each cell gets its mass once); memory is one tile at a time plus the non-zero
    cells, whatever the extent of the window.
    """
    j0, i0, nj, ni = win
    c = grid.cell_m
    lo_x = np.minimum(ta.x[p], ta.x[s]) - reach
    hi_x = np.maximum(ta.x[p], ta.x[s]) + reach
    lo_y = np.minimum(ta.y[p], ta.y[s]) - reach
    hi_y = np.maximum(ta.y[p], ta.y[s]) + reach
    # tile ranges of each bridge (tiles counted from the window's corner)
    tx0 = np.clip((np.floor((lo_x - grid.x0) / c) - i0) // TILE_SIDE, 0, (ni - 1) // TILE_SIDE).astype(np.int64)
    tx1 = np.clip((np.floor((hi_x - grid.x0) / c) - i0) // TILE_SIDE, 0, (ni - 1) // TILE_SIDE).astype(np.int64)
    ty0 = np.clip((np.floor((lo_y - grid.y0) / c) - j0) // TILE_SIDE, 0, (nj - 1) // TILE_SIDE).astype(np.int64)
    ty1 = np.clip((np.floor((hi_y - grid.y0) / c) - j0) // TILE_SIDE, 0, (nj - 1) // TILE_SIDE).astype(np.int64)
    nxt = (ni - 1) // TILE_SIDE + 1
    # (tile, bridge) pairs: every tile of each bridge's box, in bridge order
    wx, wy = tx1 - tx0 + 1, ty1 - ty0 + 1
    per = wx * wy
    bridge = np.repeat(np.arange(p.size), per)
    k = np.arange(int(per.sum())) - np.repeat(np.cumsum(per) - per, per)
    tile = (ty0[bridge] + k // wx[bridge]) * nxt + tx0[bridge] + k % wx[bridge]
    order = np.argsort(tile, kind="stable")
    tile, bridge = tile[order], bridge[order]
    starts = np.flatnonzero(np.r_[True, tile[1:] != tile[:-1]])
    ends = np.r_[starts[1:], tile.size]
    total_T = float(T.sum())

    def one_tile(a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        t = int(tile[a])
        tj, ti = j0 + (t // nxt) * TILE_SIDE, i0 + (t % nxt) * TILE_SIDE
        w = (tj, ti, min(TILE_SIDE, j0 + nj - tj), min(TILE_SIDE, i0 + ni - ti))
        bb = bridge[a:b]
        ud = utilisation(ta.x[p[bb]], ta.y[p[bb]], ta.x[s[bb]], ta.y[s[bb]], T[bb], ta.sigma_m[p[bb]],
                         ta.sigma_m[s[bb]], v, grid, window=w, k_sigma=k_sigma)
        flat = ud.ravel()
        nz = np.flatnonzero(flat > 0)
        # utilisation is normalised by these bridges' time: rescale to the animal's
        return (nz // w[3] + tj).astype(np.int64) * grid.nx + (nz % w[3] + ti), flat[nz] * (float(T[bb].sum()) / total_T)

    if starts.size == 0:
        return np.zeros(0, dtype=np.int64)
    # tiles along the path on threads (the kernel releases the GIL): one wide animal is often
    # most of a study's footprint time; map() keeps the tile order, so the result is fixed
    parts = thread_map(lambda ab: one_tile(*ab), zip(starts, ends, strict=True))
    cell = np.concatenate([c for c, _ in parts])
    val = np.concatenate([x for _, x in parts])
    # ties by cell index, as the dense window's row-major scan; only the kept cells are sorted
    return np.sort(cell[_top_mass(val, level * val.sum(), cell)]) if cell.size else cell


def subset_animals(ta: TrackArrays, animals: np.ndarray | None) -> TrackArrays:
    """The fixes of some animal codes (codes and labels unchanged); ``ta`` itself for None."""
    if animals is None:
        return ta
    keep = np.isin(ta.animal, np.asarray(animals, dtype=np.int64))
    # the first kept fix of an animal has step_ok False already (steps never cross animals)
    return TrackArrays(animal=ta.animal[keep], labels=ta.labels, t_s=ta.t_s[keep], x=ta.x[keep], y=ta.y[keep],
                       sigma_m=ta.sigma_m[keep], step_ok=ta.step_ok[keep], month=ta.month[keep], crs=ta.crs)


def stack_footprints(ta: TrackArrays, *, cell_m: float | None = None, level: float = 0.99, k_sigma: float = 5.0,
                     max_cells: int = 4_000_000, var_m2_s: np.ndarray | None = None,
                     n_threads: int | None = None, min_cell_m: float = 250.0, max_cells_per_bridge: float = 5000.0,
                     min_cell_budget: int = 50_000_000) -> Footprints:
    """Per-animal Brownian bridge footprints stacked into a count of animals per cell.

    The grid covers all fixes plus the widest bridge reach (:func:`make_grid`); each
    animal's footprint comes from :func:`footprint_cells` (independent per animal) and
    the count is one ``np.bincount`` of all the footprint cells.

    Parameters
    ----------
    ta : TrackArrays
        From :func:`track_arrays`.
    cell_m : float, optional
        Cell side (m) of the shared grid; default :func:`bridge_cell_m` (from the bridges'
        widths, no finer than ``min_cell_m``).
    level : float
        Footprint isopleth (0.99 → the cells holding 99 % of each UD).
    k_sigma : float
        Bridge truncation in standard deviations.
    max_cells : int
        Largest grid held in dense arrays; beyond it the grid is sparse (:func:`make_grid`).
    var_m2_s : ndarray, optional
        σ²_m per animal code (m²/s; default :func:`brownian_variance`).
    n_threads : int, optional
        Threads over animals for :func:`footprint_cells` (results do not depend on it).
    min_cell_m : float
        Finest cell (m) chosen from the data.
    max_cells_per_bridge, min_cell_budget
        The cost budget of the cell chosen from the data (:func:`budget_cell_m`).

    Returns
    -------
    Footprints
    """
    if var_m2_s is None:
        var_m2_s = brownian_variance(ta)
    var_m2_s = np.asarray(var_m2_s, dtype=float)
    grid = footprint_grid(ta, var_m2_s, cell_m=cell_m, k_sigma=k_sigma, max_cells=max_cells, min_cell_m=min_cell_m,
                          max_cells_per_bridge=max_cells_per_bridge, min_cell_budget=min_cell_budget)
    parts = [footprint_cells(ta, grid, level=level, k_sigma=k_sigma, var_m2_s=var_m2_s, n_threads=n_threads)]
    return stack_cells(grid, parts, var_m2_s)


def footprint_grid(ta: TrackArrays, var_m2_s: np.ndarray, *, cell_m: float | None = None, k_sigma: float = 5.0,
                   max_cells: int = 4_000_000, min_cell_m: float = 250.0, max_cells_per_bridge: float = 5000.0,
                   min_cell_budget: int = 50_000_000) -> Grid:
    """The shared footprint grid: all fixes padded by the widest bridge reach (:func:`make_grid`).

    Parameters
    ----------
    ta : TrackArrays
    var_m2_s : ndarray
        σ²_m per animal code (m²/s).
    cell_m, k_sigma, max_cells, min_cell_m
        As in :func:`stack_footprints`.
    max_cells_per_bridge, min_cell_budget
        The cell from the data (``cell_m`` None) is coarsened to keep the cost within them
        (:func:`budget_cell_m`); a given ``cell_m`` is used as is.
    """
    var_m2_s = np.asarray(var_m2_s, dtype=float)
    source = "given"
    if cell_m is None:
        median = bridge_cell_m(ta, var_m2_s, min_cell_m=min_cell_m)
        cell_m = budget_cell_m(ta, var_m2_s, median, k_sigma=k_sigma, max_cells_per_bridge=max_cells_per_bridge,
                               min_cell_budget=min_cell_budget)
        source = "cost budget" if cell_m > median else "bridges" if cell_m > min_cell_m else "min_cell_m"
    *_, reach = _bridges(ta, var_m2_s, k_sigma, cell_m)
    pad = float(np.max(reach)) if reach.size else 1000.0
    return replace(make_grid(ta.x, ta.y, ta.crs, cell_m=cell_m, pad_m=pad, max_cells=max_cells), cell_source=source)


def stack_cells(grid: Grid, parts: Iterable[list[tuple[int, np.ndarray, float]]],
                var_m2_s: np.ndarray) -> Footprints:
    """The *reduce* step: results of :func:`footprint_cells` (any split of the animals) → :class:`Footprints`.

    Parameters
    ----------
    grid : Grid
        The grid every part was computed on.
    parts : iterable of lists
        Outputs of :func:`footprint_cells`, each animal in exactly one part.
    var_m2_s : ndarray
        σ²_m per animal code (m²/s); its length is the number of animal codes.
    """
    var_m2_s = np.asarray(var_m2_s, dtype=float)
    cells: list[np.ndarray] = [np.zeros(0, dtype=np.int64) for _ in range(var_m2_s.size)]
    for part in parts:
        for code, c, _ in part:
            cells[code] = c
    flat = np.concatenate(cells) if cells else np.zeros(0, dtype=np.int64)
    if grid.sparse:  # no array over the grid: Footprints.occupied counts the cells
        return Footprints(grid=grid, count=None, cells=cells, var_m2_s=var_m2_s)
    # each animal's cells are distinct, so the bincount is the number of animals per cell
    count = np.bincount(flat, minlength=grid.nx * grid.ny).astype(np.int16).reshape(grid.shape)
    return Footprints(grid=grid, count=count, cells=cells, var_m2_s=var_m2_s)


# --------------------------------------------------------------------------- polygons


def mask_polygons(mask: np.ndarray, grid: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Polygonise a boolean raster: one polygon per 4-connected group of True cells.

    Components by :func:`scipy.ndimage.label` (4-connectivity), polygons by
    :func:`cell_polygons` (each row's runs as rectangles, unioned per component by GEOS).
    The Python loop runs over components, never over cells.

    Parameters
    ----------
    mask : ndarray of bool, shape ``(ny, nx)``
    grid : Grid

    Returns
    -------
    polygons : ndarray of shapely.Polygon
        In the grid CRS (metres), one per component, in label order.
    labels : ndarray of int32, shape ``(ny, nx)``
        Component label per cell (0 = outside; polygon ``k`` has label ``k + 1``).
    n : int
        Number of components.

    Examples
    --------
    >>> g = Grid(0.0, 0.0, 10.0, 4, 2, pyproj.CRS.from_epsg(3857))
    >>> polys, labels, n = mask_polygons(np.array([[1, 1, 0, 1], [0, 1, 0, 1]], bool), g)
    >>> n, [p.area for p in polys]
    (2, [300.0, 200.0])
    """
    labels, n = ndimage.label(mask)
    if n == 0:
        return np.array([], dtype=object), labels, 0
    cells = np.flatnonzero(mask)
    return cell_polygons(cells, labels.ravel()[cells], n, grid), labels, n


def count_polygons(fp: Footprints, classes: tuple[int, ...] | None = None) -> pd.DataFrame:
    """Polygons of the cells used by at least ``k`` animals, for each class ``k``.

    Parameters
    ----------
    fp : Footprints
        From :func:`stack_footprints`.
    classes : tuple of int, optional
        Minimum animal counts (default ``1, 2, …, max count``).

    Returns
    -------
    pandas.DataFrame
        One row per connected polygon: ``n_animals`` (class, minimum count of animals per
        cell), ``animal_codes`` (tuple of the codes of the animals whose footprint
        overlaps it), ``cells`` (flat cell indices), ``geometry`` (shapely Polygon in the
        grid CRS).
    """
    grid = fp.grid
    occ, cnt = fp.occupied()
    max_count = int(cnt.max()) if cnt.size else 0
    if classes is None:
        classes = tuple(range(1, max_count + 1))
    # cell → animal pairs, once; each class then looks up the labels of those cells
    n_anim = max(len(fp.cells), 1)
    a_codes = np.concatenate([np.full(c.size, g, dtype=np.int64) for g, c in enumerate(fp.cells)]
                             or [np.zeros(0, dtype=np.int64)])
    a_cells = np.concatenate(fp.cells or [np.zeros(0, dtype=np.int64)]).astype(np.int64)
    # position of each footprint cell among the occupied ones (a table lookup on a dense grid)
    a_pos = (np.searchsorted(occ, a_cells) if fp.count is None
             else (np.cumsum(fp.count.ravel() > 0) - 1)[a_cells])
    rows = []
    for k in sorted(set(int(k) for k in classes)):  # a handful of classes
        keep = cnt >= k
        if k < 1 or not keep.any():
            continue
        cells = occ[keep]
        if fp.count is None:
            lab, n_lab = sparse_label(cells, grid.nx)
        else:
            labels, n_lab = ndimage.label(fp.count >= k)
            lab = labels.ravel()[cells]
        polys = cell_polygons(cells, lab, n_lab, grid)
        # stable sort of cells by label; ≤ 16-bit keys make numpy use an O(n) radix sort
        order = np.argsort(lab.astype(np.uint16) if n_lab < 2**16 else lab, kind="stable")
        lab_edges = np.searchsorted(lab[order], np.arange(1, n_lab + 2))
        inside = keep[a_pos]
        rank = np.cumsum(keep) - 1  # position of an occupied cell among this class's cells
        key = lab[rank[a_pos[inside]]].astype(np.int64) * n_anim + a_codes[inside]
        # distinct (label, animal) pairs in (label, animal) order: a bitmap when it is
        # small (no sort), else one 1-D unique
        if (n_lab + 1) * n_anim <= 64_000_000:
            seen = np.zeros((n_lab + 1) * n_anim, dtype=bool)
            seen[key] = True
            key = np.flatnonzero(seen)
        else:
            key = distinct(key)
        p_lab, p_code = key // n_anim, key % n_anim
        p_edges = np.searchsorted(p_lab, np.arange(1, n_lab + 2))
        for lb, poly in enumerate(polys, start=1):
            rows.append({
                "n_animals": k,
                "animal_codes": tuple(int(v) for v in p_code[p_edges[lb - 1]:p_edges[lb]]),
                "cells": cells[order[lab_edges[lb - 1]:lab_edges[lb]]],
                "geometry": poly,
            })
    return pd.DataFrame(rows, columns=["n_animals", "animal_codes", "cells", "geometry"])


def sparse_label(cells: np.ndarray, nx: int) -> tuple[np.ndarray, int]:
    """4-connected components of sorted flat cells (row-major, ``nx`` columns), as :func:`scipy.ndimage.label`
    numbers them: 1, 2, … in the order of each component's first cell.

    Labels runs (a row's consecutive cells) rather than cells: a run touches the runs of the
    row below whose columns overlap its own, so the graph has one node per run (tens of
    times fewer than cells on footprints).

    >>> sparse_label(np.array([0, 1, 3, 4, 7]), 4)  # rows [0 1 . 3], [4 . . 7]
    (array([1, 1, 2, 1, 2]), 2)
    """
    n = cells.size
    if n == 0:
        return np.zeros(0, dtype=np.int64), 0
    rs, re = cell_runs(cells, nx)
    m = rs.size
    first, last = cells[rs], cells[re]  # first and last cell of each run
    # runs of the row above that overlap run q are those with last ≥ first[q] - nx and
    # first ≤ last[q] - nx (a run lies in one row, so no other row's run meets both); runs are
    # sorted, so that is the range lo..hi-1, empty when hi ≤ lo
    lo = np.searchsorted(last, first - nx, side="left")
    hi = np.searchsorted(first, last - nx, side="right")
    width = np.maximum(hi - lo, 0)
    q = np.repeat(np.arange(m), width)
    other = np.repeat(lo, width) + (np.arange(int(width.sum())) - np.repeat(np.cumsum(width) - width, width))
    graph = sparse.coo_matrix((np.ones(q.size, dtype=np.int8), (q, other)), shape=(m, m))
    n_comp, comp = csgraph.connected_components(graph, directed=False)
    # runs are in cell order, so a component's first run holds its first cell
    first_run = np.full(n_comp, m, dtype=np.int64)
    np.minimum.at(first_run, comp, np.arange(m))
    rank = np.empty(n_comp, dtype=np.int64)
    rank[np.argsort(first_run, kind="stable")] = np.arange(n_comp)
    return np.repeat(rank[comp] + 1, re - rs + 1), int(n_comp)


def cell_runs(cells: np.ndarray, nx: int) -> tuple[np.ndarray, np.ndarray]:
    """Index of the first and of the last cell of every run of sorted flat cells (consecutive
    cells of one row, ``nx`` columns).

    >>> [a.tolist() for a in cell_runs(np.array([0, 1, 3, 4, 7]), 4)]
    [[0, 2, 3, 4], [1, 2, 3, 4]]
    """
    if cells.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    start = np.r_[True, (cells[1:] != cells[:-1] + 1) | (cells[1:] % nx == 0)]
    rs = np.flatnonzero(start)
    return rs, np.r_[rs[1:], cells.size] - 1


def cell_polygons(cells: np.ndarray, lab: np.ndarray, n_lab: int, grid: Grid) -> np.ndarray:
    """Polygons of labelled sorted flat cells: each row's runs of cells as rectangles, unioned per
    label 1..``n_lab`` (collinear vertices of the rectangle edges dropped), in the grid CRS."""
    rs, re = cell_runs(cells, grid.nx)
    row, col, col_end = cells[rs] // grid.nx, cells[rs] % grid.nx, cells[re] % grid.nx
    c = grid.cell_m
    boxes = shapely.box(grid.x0 + col * c, grid.y0 + row * c, grid.x0 + (col_end + 1) * c, grid.y0 + (row + 1) * c)
    rl = lab[rs]
    order = np.argsort(rl, kind="stable")
    groups = np.split(boxes[order], np.searchsorted(rl[order], np.arange(2, n_lab + 1)))
    polys = np.array(thread_map(shapely.union_all, groups), dtype=object)  # GEOS releases the GIL
    return shapely.simplify(polys, 0.0)
