"""Autocorrelated kernel density estimation (AKDE) of one range-resident track.

The bandwidth minimises the mean integrated square error of a Gaussian kernel density
estimate *for the fitted movement model's autocorrelation* (Fleming et al. 2015), not for
independent fixes: with position autocorrelation ``ρ`` between fixes ``i, j`` and the
bandwidth matrix ``H = h² Σ`` (``Σ`` the range covariance), for a Gaussian range

    4π √det Σ · MISE(h) = (1/n²) Σᵢⱼ 1 / (h² + 1 − ρᵢⱼ) − 4 / (2 + h²) + 1,

whose double sum is taken over a histogram of the time lags (one FFT of the fixes'
occupancy of a time grid), so the cost follows the number of fixes and the track's span,
not n². Denser sampling of the same range adds little information, so the optimal ``h``
stays wide where KDE's reference bandwidth shrinks as ``n^(-1/6)``.

The density is built in the range's whitened coordinates (``Σ̂^(-1/2)(x − μ̂)``) where the
kernel is circular, then mapped back. **Small-sample bias correction** (the Gaussian
reference of Fleming & Calabrese 2017): the estimate's covariance is the fixes' spread
about their own mean, ``Σ(1 − ρ̄) + r̄``, plus the kernel's ``h² Σ``; its expected excess
over ``Σ`` is removed by contracting the density about the fixes' mean by
``1/√(1 + h² − ρ̄ + r̄/σ²)`` (``ρ̄`` the mean autocorrelation over all pairs, ``r̄`` the mean
error variance), so the areas are unbiased for a Gaussian range and the bias does not grow
with autocorrelation. The 95 % CI of each area is the scaled χ² with ``2 N_area`` degrees
of freedom (ctmm's), and CI contours are the isopleths whose areas are the CI's bounds.

Not done (said in the output): ctmm's optimal weights for irregular sampling (Fleming et
al. 2018, wAKDE) — fixes are weighted equally.

References
----------
Fleming, C. H. et al. (2015). Rigorous home range estimation with movement data: a new
autocorrelated kernel density estimator. Ecology 96:1182–1188.
Fleming, C. H. & Calabrese, J. M. (2017). A new kernel density estimator for accurate
home-range and species-range area estimation. Methods Ecol. Evol. 8:571–579.
Noonan, M. J. et al. (2019). A comprehensive analysis of autocorrelation and bias in home
range estimation. Ecol. Monogr. 89:e01344.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely

from telemetry.trajectory.ctmm import MovementFit, autocorrelation
from telemetry.trajectory.homerange import cells_for_mass, density_grid, isopleths

__all__ = ["UD", "akde", "akde_bandwidth", "chi2_area_ci", "lag_histogram", "lumpiness"]

_MAX_LAG_BINS = 1 << 20


def chi2_quantile(p: float, dof: float) -> float:
    """Quantile ``p`` of the χ² distribution with ``dof`` degrees of freedom.

    >>> round(chi2_quantile(0.975, 2.0), 4)
    7.3778
    """
    from scipy.special import gammaincinv

    return 2.0 * float(gammaincinv(dof / 2.0, p))


def chi2_area_ci(area: float, n_area: float, level: float = 0.95) -> tuple[float, float]:
    """CI of an area whose estimate is distributed as ``area · χ²(2 N)/(2 N)`` (ctmm's).

    >>> lo, hi = chi2_area_ci(100.0, 50.0)
    >>> round(lo, 1), round(hi, 1)
    (77.2, 134.7)
    """
    if not (np.isfinite(n_area) and n_area > 0 and np.isfinite(area)):
        return math.nan, math.nan
    dof = 2.0 * n_area
    a = (1.0 - level) / 2.0
    return area * dof / chi2_quantile(1.0 - a, dof), area * dof / chi2_quantile(a, dof)


def lag_histogram(t_s: np.ndarray, bin_s: float | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """Number of ordered pairs of distinct fixes per time lag (s), from one FFT.

    Returns ``(lag_s, pairs, n)``: bin centres (``0.25·bin`` for the first bin, which holds
    pairs closer than one bin), pair counts (both orders) and the number of fixes. The bin is
    a quarter of the median interval, coarser if the span would need more than 2²⁰ bins.

    >>> lag, c, n = lag_histogram(np.array([0.0, 10.0, 20.0]), 10.0)
    >>> lag[:3].tolist(), c[:3].tolist(), n
    ([2.5, 10.0, 20.0], [0.0, 4.0, 2.0], 3)
    """
    t = np.asarray(t_s, dtype=float)
    t = t - t[0]
    n = t.size
    span = float(t[-1]) if n else 0.0
    if bin_s is None:
        dt = np.diff(t)
        dt = dt[dt > 0]
        bin_s = float(np.median(dt)) / 4.0 if dt.size else 1.0
    bin_s = max(bin_s, span / (_MAX_LAG_BINS - 1), 1e-6)
    k = np.rint(t / bin_s).astype(np.int64)
    occ = np.bincount(k).astype(float)
    size = 1 << int(math.ceil(math.log2(2 * occ.size)))
    f = np.fft.rfft(occ, size)
    ac = np.rint(np.fft.irfft(f * np.conj(f), size)[: occ.size])
    pairs = 2.0 * ac
    pairs[0] = ac[0] - n  # same bin, distinct fixes (ordered pairs counted once each way already)
    lag = np.arange(occ.size) * bin_s
    lag[0] = 0.25 * bin_s
    return lag, np.maximum(pairs, 0.0), n


def akde_bandwidth(fit: MovementFit, t_s: np.ndarray) -> tuple[float, float]:
    """Optimal bandwidth ``h`` (in units of the range's standard deviation) and ``ρ̄``.

    ``ρ̄ = (1/n²) Σᵢⱼ ρᵢⱼ`` over all pairs (self-pairs included) is the share of the range's
    variance that the fixes' spread about their own mean misses.

    For IID fixes ``h`` is near the Gaussian-reference ``n^(-1/6)`` rule:

    >>> f = MovementFit("iid", True, 0, 0, 3, 1000, 1.0, 0, 0, math.nan, math.nan, (0, 0),
    ...                 np.zeros((0, 0)), (), np.zeros(0))
    >>> h, rho = akde_bandwidth(f, np.arange(1000.0))
    >>> 0.25 < h < 0.4, rho
    (True, 0.001)
    """
    from scipy.optimize import minimize_scalar

    lag, pairs, n = lag_histogram(t_s)
    keep = pairs > 0
    rho = autocorrelation(fit, lag[keep])
    w = pairs[keep] / float(n * n)
    self_w = 1.0 / n
    rho_bar = float(self_w + np.sum(w * rho))

    def mise(logh: float) -> float:
        h2 = math.exp(2 * logh)
        return self_w / h2 + float(np.sum(w / (h2 + 1.0 - rho))) - 4.0 / (2.0 + h2)

    res = minimize_scalar(mise, bounds=(math.log(1e-3), math.log(10.0)), method="bounded",
                          options={"xatol": 1e-4})
    return float(math.exp(res.x)), rho_bar


@dataclass
class UD:
    """An AKDE utilisation distribution on a grid, and its isopleths (projected metres).

    Attributes
    ----------
    x, y : ndarray
        Projected coordinates (m) of the grid cells holding the top ``max(levels)`` % of the
        mass (flattened), and ``mass`` their probability (summing to ~``max(levels)/100``).
    polygons : dict
        ``(level_pct, "estimate"|"low"|"high") → shapely geometry`` (projected metres).
    areas_m2 : dict
        Same keys → area (m²): the estimate's isopleth area and the CI bounds.
    h : float
        Bandwidth in range standard deviations; ``bandwidth_m = h · √σ²_area``.
    debias : float
        Area factor of the Gaussian-reference correction of the kernel's spread (≤ 1).
    bias : dict
        ``level_pct → factor``: the kernel estimate's lumpiness under the fitted model
        (:func:`lumpiness`; areas were divided by it; 1 without replicates).
    n_eff : dict
        ``level_pct → N``: the effective sample size of that area's CI (``N_area`` less the
        kernel estimate's own noise).
    """

    x: np.ndarray
    y: np.ndarray
    mass: np.ndarray
    polygons: dict
    areas_m2: dict
    h: float
    bandwidth_m: float
    debias: float
    bias: dict
    n_eff: dict


def _whitened_density(fit: MovementFit, t_s: np.ndarray, x_m: np.ndarray, y_m: np.ndarray,
                      err_var_m2: np.ndarray, grid_cells: int) -> dict:
    """The bias-corrected (Gaussian reference) KDE of the fixes in the range's whitened coordinates."""
    h, rho_bar = akde_bandwidth(fit, t_s)
    a, b = fit.axis_vars()
    c, s = math.cos(fit.theta_rad), math.sin(fit.theta_rad)
    mx, my = fit.mean_xy
    dx, dy = np.asarray(x_m, float) - mx, np.asarray(y_m, float) - my
    # whitened: rotate onto the range's axes, scale each to unit variance
    u = (c * dx + s * dy) / math.sqrt(a)
    w = (-s * dx + c * dy) / math.sqrt(b)
    r_bar = float(np.nanmean(err_var_m2)) if np.size(err_var_m2) else 0.0
    inflation = max(1.0 + h * h - rho_bar + r_bar / fit.var_m2, 1.0)  # never expand a KDE
    shrink = 1.0 / math.sqrt(inflation)
    dens, cx, cy = density_grid(u, w, h, grid_cells)
    um, wm = float(u.mean()), float(w.mean())
    gx = um + shrink * (cx - um)
    gy = wm + shrink * (cy - wm)
    flat = dens.ravel()
    order = np.argsort(flat)[::-1]
    return {"h": h, "inflation": inflation, "dens": dens, "gx": gx, "gy": gy, "flat": flat, "order": order,
            "cum": np.cumsum(flat[order]), "cell_area": (gx[1] - gx[0]) * (gy[1] - gy[0]) * math.sqrt(a * b),
            "rot": (c, s, math.sqrt(a), math.sqrt(b), mx, my)}


def _level_area(kd: dict, level_pct: float) -> float:
    k = min(int(np.searchsorted(kd["cum"], level_pct / 100.0)) + 1, kd["flat"].size)
    return k * kd["cell_area"]


def lumpiness(fit: MovementFit, t_s: np.ndarray, err_var_m2: np.ndarray, h: float,
              levels_pct: tuple[float, ...], grid_cells: int, replicates: int, seed: int = 0) -> dict:
    """Expected ratio of a kernel estimate's isopleth area to that of a Gaussian with the
    estimate's own covariance, for tracks like this one under the fitted model.

    A kernel estimate of a finite, autocorrelated sample is lumpy: its mass gathers where
    the fixes bunch, so its 95 % region is smaller than that of a Gaussian of the same
    spread (by ~1 % for 1,000 independent fixes, ~5 % with 20 range crossings). Tracks are
    simulated from ``fit`` at the same times with the same errors, their kernel estimate
    built with the same bandwidth in the same whitened coordinates, and the ratio averaged.
    The ratio depends on the shape of the sample, not on its scale, so a few replicates fix
    it well (unlike a bootstrap of the variance itself, whose noise at few range crossings
    exceeds the bias it would remove). Its spread is the kernel estimate's sampling variance
    beyond that of the range's covariance, added to the area's variance for its CI.
    Returns ``{level: (mean ratio, variance of its log)}``; ``(1, 0)`` when ``replicates`` is 0.
    """
    if replicates <= 0:
        return {lv: (1.0, 0.0) for lv in levels_pct}
    from telemetry.trajectory.ctmm import simulate

    rng = np.random.default_rng(seed)
    a, b = fit.axis_vars()
    c, s = math.cos(fit.theta_rad), math.sin(fit.theta_rad)
    mx, my = fit.mean_xy
    ratios: dict = {lv: [] for lv in levels_pct}
    for _ in range(replicates):
        x, y = simulate(fit, t_s, err_var_m2, rng)
        u = (c * (x - mx) + s * (y - my)) / math.sqrt(a)
        w = (-s * (x - mx) + c * (y - my)) / math.sqrt(b)
        dens, cx, cy = density_grid(u, w, h, grid_cells)
        cell = (cx[1] - cx[0]) * (cy[1] - cy[0])
        cov = np.cov(np.vstack([u, w]), ddof=0) + h * h * np.eye(2)
        det = math.sqrt(max(float(np.linalg.det(cov)), 1e-300))
        for lv in levels_pct:
            k = cells_for_mass(dens, lv)
            ratios[lv].append(k * cell / (-2.0 * math.log(1.0 - lv / 100.0) * math.pi * det))
    return {lv: (float(np.mean(v)), float(np.var(np.log(v), ddof=1)) if len(v) > 1 else 0.0)
            for lv, v in ratios.items()}


def akde(fit: MovementFit, t_s: np.ndarray, x_m: np.ndarray, y_m: np.ndarray, err_var_m2: np.ndarray,
         levels_pct: tuple[float, ...] = (50.0, 95.0), grid_cells: int = 256,
         ci_level: float = 0.95, bootstrap: int = 0, seed: int = 0) -> UD:
    """AKDE of one range-resident track under its fitted model (see the module notes).

    Parameters
    ----------
    fit : MovementFit
        The selected model (IID, OU or OUF) of these fixes.
    t_s, x_m, y_m, err_var_m2 : ndarray
        Times (s), projected coordinates (m) and error variances per axis (m²).
    levels_pct : tuple of float
        Isopleths (% of the distribution).
    grid_cells : int
        Grid cells along the longer side (whitened coordinates).
    ci_level : float
        Confidence level of the area CIs (and CI contours).
    bootstrap : int
        Simulated replicates for the lumpiness correction (:func:`lumpiness`); 0: none.
    seed : int
        Their random seed (the result is reproducible).
    """
    if not fit.resident:
        raise ValueError("AKDE needs a range-resident model (IID, OU or OUF), not Brownian motion")
    from shapely import affinity

    kd = _whitened_density(fit, t_s, x_m, y_m, err_var_m2, grid_cells)
    bias = lumpiness(fit, t_s, err_var_m2, kd["h"], levels_pct, grid_cells, bootstrap, seed)
    flat, order, cum, cell_area = kd["flat"], kd["order"], kd["cum"], kd["cell_area"]
    c, s, sa, sb, mx, my = kd["rot"]
    polys: dict = {}
    areas: dict = {}
    n_eff = {}
    for level in levels_pct:
        factor = max(bias[level][0], 1e-3)
        area = _level_area(kd, level) / factor
        # the area's information: the range's (1/N_area) and the kernel's lumpiness, added in variance
        n_eff[level] = 1.0 / (1.0 / fit.n_area + bias[level][1]) if np.isfinite(fit.n_area) else math.nan
        lo, hi = chi2_area_ci(area, n_eff[level], ci_level)
        # back to projected metres: x = μ + R diag(√a, √b) (u, w), then the bias correction
        # as a contraction about the mean (areas scale by 1/factor)
        k = 1.0 / math.sqrt(factor)
        matrix = [k * c * sa, -k * s * sb, k * s * sa, k * c * sb, mx, my]
        for name, target in (("estimate", area), ("low", lo), ("high", hi)):
            areas[(level, name)] = target
            if not np.isfinite(target):
                polys[(level, name)] = shapely.Polygon()
                continue
            kk = int(np.clip(round(target * factor / cell_area), 1, flat.size))
            poly = isopleths(kd["dens"], kd["gx"], kd["gy"], (level,), [float(flat[order[kk - 1]])])[0]
            polys[(level, name)] = affinity.affine_transform(poly, matrix)
    top = max(levels_pct)
    factor = max(bias[top][0], 1e-3)
    k = 1.0 / math.sqrt(factor)
    ncell = min(int(np.searchsorted(cum, top / 100.0)) + 1, flat.size)
    ix, iy = np.unravel_index(order[:ncell], kd["dens"].shape)
    uu, ww = kd["gx"][ix] * sa * k, kd["gy"][iy] * sb * k
    return UD(x=mx + c * uu - s * ww, y=my + s * uu + c * ww, mass=flat[order[:ncell]], polygons=polys,
              areas_m2=areas, h=kd["h"], bandwidth_m=kd["h"] * math.sqrt(fit.var_m2),
              debias=1.0 / kd["inflation"],
              bias={lv: b[0] for lv, b in bias.items()}, n_eff=n_eff)
