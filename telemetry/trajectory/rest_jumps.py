"""Resting bouts as held positions with occasional jumps (the "jumps at rest" of
:mod:`telemetry.trajectory.smooth`).

A resting animal's position does not drift smoothly: it stays put and now and then shifts bed
or moves round a kill. The still steps of each animal are split by EM (:func:`jump_em`) into
the two fixes' errors, a slow Brownian drift and jumps arriving at a rate; :func:`exposure`
gives each still step its own expected drift-plus-jump variance for the smoother, and
:func:`jump_fit` (with the error classes' multipliers free) is the resting bouts' own reading
of the error for :mod:`telemetry.trajectory.error_estimate`.

Layer: trajectory; imports :mod:`telemetry.trajectory.movement_fit` (the rows) and the
configuration.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pandas as pd

from telemetry.arrays import over_groups
from telemetry.config import SmoothParams
from telemetry.trajectory.movement_fit import Rows


@numba.njit(cache=True, inline="always")
def _posterior1(d2: float, c: float, dt: float, ds0: float, jv: float, lam: float) -> tuple[float, float, float]:
    """P(jump) of one still step of squared displacement ``d2`` (m², both axes), error variance
    ``c`` and ``dt`` s, and its no-jump and jump variances (per axis); see :func:`_jump_posterior`."""
    pj = min(max(1.0 - math.exp(-lam * dt), 1e-9), 1 - 1e-9)
    v0 = c + ds0 * dt
    v1 = v0 + jv
    l0 = math.log1p(-pj) - math.log(v0) - d2 / (2 * v0)
    l1 = math.log(pj) - math.log(v1) - d2 / (2 * v1)
    return 1.0 / (1.0 + math.exp(min(max(l0 - l1, -700.0), 700.0))), v0, v1


@numba.njit(cache=True)
def _jump_posterior(d2: np.ndarray, c: np.ndarray, dt: np.ndarray, ds0: np.ndarray, jv: np.ndarray,
                    lam: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P(jump) of each still step and its two variances (per axis) under drift ``ds0`` (m²/s),
    jumps of variance ``jv`` (m²) at rate ``lam`` (1/s), per step."""
    g, v0, v1 = np.empty(d2.size), np.empty(d2.size), np.empty(d2.size)
    for i in range(d2.size):
        g[i], v0[i], v1[i] = _posterior1(d2[i], c[i], dt[i], ds0[i], jv[i], lam[i])
    return g, v0, v1


@numba.njit(cache=True, inline="always")
def _estep(d2: np.ndarray, c: np.ndarray, dt: np.ndarray, lo: int, hi: int, on: np.ndarray, ds0: float, jv: float,
           lam: float, g: np.ndarray, w0: np.ndarray, out: np.ndarray) -> None:
    """One E-step over the still steps ``lo:hi`` of one group: each step's P(jump) into ``g`` (0
    where not ``on``), its no-jump weight ``(1 - g) / v0²`` into ``w0`` (both indexed from ``lo``),
    and the four sums of the M-step's fixed points (jump variance: numerator, denominator;
    drift: numerator, denominator) added to ``out``, in row order as ``np.bincount`` sums."""
    for i in range(lo, hi):
        gi, v0, v1 = _posterior1(d2[i], c[i], dt[i], ds0, jv, lam)
        if not on[i]:
            gi = 0.0
        g[i - lo] = gi
        y = d2[i] / 2.0
        w1 = gi / (v1 * v1)
        out[0] += w1 * (y - v0)
        out[1] += w1
        w = (1.0 - gi) / (v0 * v0)
        w0[i - lo] = w
        out[2] += w * dt[i] * (y - c[i])
        out[3] += w * dt[i] * dt[i]


@numba.njit(cache=True, inline="always")
def _rate_score(g: np.ndarray, dt: np.ndarray, lo: int, hi: int, lam: float) -> tuple[float, float]:
    """The first and second derivative in ``log λ`` of ``Σ g log(1 - exp(-λ dt)) - (1 - g) λ dt``
    over the steps ``lo:hi`` of one group (``g`` indexed from ``lo``)."""
    s1 = 0.0
    s2 = 0.0
    for i in range(lo, hi):
        x = lam * dt[i]
        e = math.exp(-x)
        q = max(-math.expm1(-x), 1e-300)
        gi = g[i - lo]
        s1 += gi * x * e / q - (1.0 - gi) * x
        s2 += gi * x * e * (q - x) / (q * q) - (1.0 - gi) * x
    return s1, s2


@numba.njit(cache=True, inline="always")
def _rate_fit(g: np.ndarray, dt: np.ndarray, lo: int, hi: int, lam: float, cold: bool) -> float:
    """The jump rate (1/s) of one group (steps ``lo:hi``, ``g`` indexed from ``lo``) maximising
    ``Σ g log(1 - exp(-λ dt)) - (1 - g) λ dt``: ``cold``, from the rate exact for a regular
    schedule and six Newton steps in log λ; else two from ``lam`` (the EM's previous rate)."""
    if cold:
        cnt = max(hi - lo, 1)
        sg = 0.0
        sdt = 0.0
        for i in range(lo, hi):
            sg += g[i - lo]
            sdt += dt[i]
        gm = min(max(sg / cnt, 1e-6), 1.0 - 1e-6)
        lam = -math.log1p(-gm) / max(sdt / cnt, 1.0)
    for _ in range(6 if cold else 2):
        s1, s2 = _rate_score(g, dt, lo, hi, lam)
        step = 0.0
        if math.isfinite(s1) and math.isfinite(s2) and s2 < 0:
            step = min(max(-s1 / s2, -2.0), 2.0)
        lam = lam * math.exp(step)
    return min(max(lam, 1e-9), 1.0)


@numba.njit(cache=True, nogil=True)
def _em_sums(d2: np.ndarray, c: np.ndarray, dt: np.ndarray, bounds: np.ndarray, on: np.ndarray, ds0: np.ndarray,
             jv: np.ndarray, lam: np.ndarray, g: np.ndarray, w0: np.ndarray, sums: np.ndarray, g0: int,
             g1: int) -> None:
    """:func:`_estep` of the groups ``g0:g1`` (group ``k``: rows ``bounds[k]:bounds[k+1]``, its
    parameters ``ds0[k]``, ``jv[k]``, ``lam[k]``, its sums into ``sums[:, k]``): one pass instead of a
    dozen array expressions and four ``bincount``."""
    for k in range(g0, g1):
        lo, hi = bounds[k], bounds[k + 1]
        _estep(d2, c, dt, lo, hi, on, ds0[k], jv[k], lam[k], g[lo:hi], w0[lo:hi], sums[:, k])


@numba.njit(cache=True, nogil=True)
def _rate_groups(g: np.ndarray, dt: np.ndarray, bounds: np.ndarray, lam: np.ndarray, cold: bool, g0: int,
                 g1: int) -> None:
    """:func:`_rate_fit` of each group of ``g0:g1`` (rows ``bounds[k]:bounds[k+1]``), ``lam[k]`` updated in place."""
    for k in range(g0, g1):
        lam[k] = _rate_fit(g[bounds[k]:bounds[k + 1]], dt, bounds[k], bounds[k + 1], lam[k], cold)


def jump_fit(d2: np.ndarray, x: np.ndarray, dt: np.ndarray, grp: np.ndarray, n: int, iters: int,
             m: np.ndarray, jumps: np.ndarray, fit_scale: bool) -> tuple[np.ndarray, ...]:
    """EM of still steps as error plus slow drift plus jumps (see :func:`jump_em`), per group
    ``grp`` (``n`` groups); the steps' error variance is ``x @ m`` (``x``: per step, the two
    fixes' variances of each error class; ``m``: the classes' multipliers, refitted by weighted
    least squares when ``fit_scale``); groups where not ``jumps`` have none. Returns ``m``,
    ``ds0`` (m²/s), ``J`` (m²), ``lam`` (1/s) per group, each step's P(jump) and no-jump
    variance, and the log-likelihood per group."""
    cnt = np.maximum(np.bincount(grp, minlength=n), 1)
    lam = np.log(2.0) / np.maximum(np.bincount(grp, dt, minlength=n) / cnt, 1.0)
    jv = np.maximum(np.bincount(grp, d2, minlength=n) / cnt / 2.0, 1.0)
    ds0 = np.full(n, 1e-6)
    on = jumps[grp]
    y = d2 / 2.0
    bounds = _group_bounds(grp, n)
    g, w0, sums = np.empty(d2.size), np.empty(d2.size), np.empty((4, n))  # (every row written each pass)
    for it in range(iters):
        c = x @ m
        sums[:] = 0.0
        over_groups(_em_sums, bounds, d2, c, dt, bounds, on, ds0, jv, lam, g, w0, sums)
        # variance components by their fixed points (weights 1/v², the Gaussian score)
        jv = np.maximum(sums[0] / np.maximum(sums[1], 1e-300), 1e-6)
        ds0 = np.maximum(sums[2] / np.maximum(sums[3], 1e-300), 1e-9)
        if fit_scale:  # weighted least squares of the classes' multipliers given the drifts
            sw = np.sqrt(w0)
            m = np.maximum(np.linalg.lstsq(x * sw[:, None], (y - dt * ds0[grp]) * sw, rcond=None)[0], 1e-6)
        if on.any():  # (warm-started from the last iteration's rates: two Newton steps keep up)
            lam = _jump_rate(g, dt, grp, n, lam if it else None, bounds)
    g, v0, v1 = _jump_posterior(d2, x @ m, dt, ds0[grp], jv[grp], lam[grp])
    pj = np.where(on, np.clip(1.0 - np.exp(-lam[grp] * dt), 1e-9, 1 - 1e-9), 0.0)
    with np.errstate(divide="ignore"):
        ll = np.logaddexp(np.log1p(-pj) - np.log(v0) - d2 / (2 * v0), np.log(pj) - np.log(v1) - d2 / (2 * v1))
    return m, ds0, jv, lam, np.where(on, g, 0.0), v0, np.bincount(grp, ll, minlength=n)


def jump_em(d2: np.ndarray, c: np.ndarray, dt: np.ndarray, grp: np.ndarray, n: int,
            iters: int = 30) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Still steps as a slow drift (per-axis variance ``ds0 dt``) plus, at rate ``lam`` (1/s),
    jumps of per-axis variance ``J`` (bed shifts), per group ``grp`` (animal, ``n`` of them);
    ``c`` the two fixes' error variances, ``d2`` the squared displacement (m², both axes). EM,
    all groups at once; returns ``ds0`` (m²/s), ``J`` (m²) and ``lam`` per group. (Consecutive
    steps share a fix's error; the EM treats them as independent.)

    >>> rng = np.random.default_rng(0)
    >>> dt = np.full(4000, 3600.0)
    >>> jump = rng.random(4000) < 0.3
    >>> e = rng.normal(0, 5.0, (4000, 2)) * np.sqrt(2) + jump[:, None] * rng.normal(0, 30.0, (4000, 2))
    >>> ds0, jv, lam = jump_em((e**2).sum(1), np.full(4000, 50.0), dt, np.zeros(4000, np.int64), 1)
    >>> round(float(np.sqrt(jv[0]))), round(float(1 - np.exp(-lam[0] * 3600)), 2)
    (30, 0.3)
    """
    bounds = _group_bounds(grp, n)
    ds0, jv, lam = np.empty(n), np.empty(n), np.empty(n)
    # (no parameter shared across animals here, unlike jump_fit's multipliers: each animal's whole
    # EM runs in one compiled loop, its steps in cache, and one thread dispatch for all)
    over_groups(_jump_em_groups, bounds, d2, c, dt, bounds, np.ones(d2.size, np.bool_), iters, ds0, jv, lam)
    return ds0, jv, lam


@numba.njit(cache=True, nogil=True)
def _jump_em_groups(d2: np.ndarray, c: np.ndarray, dt: np.ndarray, bounds: np.ndarray, on: np.ndarray, iters: int,
                    ds0: np.ndarray, jv: np.ndarray, lam: np.ndarray, g0: int, g1: int) -> None:
    """:func:`jump_fit` without multipliers (every animal with jumps), for the groups ``g0:g1``
    (rows ``bounds[k]:bounds[k+1]``), into ``ds0``, ``jv``, ``lam``: the same arithmetic in the
    same order, so the same numbers to the bit (``tests/test_smooth.py``)."""
    for k in range(g0, g1):
        lo, hi = bounds[k], bounds[k + 1]
        cnt = max(hi - lo, 1)
        sdt = 0.0
        sd2 = 0.0
        for i in range(lo, hi):
            sdt += dt[i]
            sd2 += d2[i]
        la = math.log(2.0) / max(sdt / cnt, 1.0)
        v = max(sd2 / cnt / 2.0, 1.0)
        d = 1e-6
        g = np.empty(hi - lo)
        w0 = np.empty(hi - lo)
        sums = np.empty(4)
        for it in range(iters):
            sums[:] = 0.0
            _estep(d2, c, dt, lo, hi, on, d, v, la, g, w0, sums)
            v = max(sums[0] / max(sums[1], 1e-300), 1e-6)
            d = max(sums[2] / max(sums[3], 1e-300), 1e-9)
            la = _rate_fit(g, dt, lo, hi, la, it == 0)  # (as _jump_rate: cold at the first iteration)
        ds0[k] = d
        jv[k] = v
        lam[k] = la


def _group_bounds(grp: np.ndarray, n: int) -> np.ndarray:
    """Row bounds of groups ``0..n-1`` in ``grp``, which must be sorted (the steps of each animal in turn)."""
    if grp.size and np.any(grp[1:] < grp[:-1]):
        raise ValueError("the still steps must be in order of their group")
    return np.searchsorted(grp, np.arange(n + 1)).astype(np.int64)


def _jump_rate(g: np.ndarray, dt: np.ndarray, grp: np.ndarray, n: int, lam0: np.ndarray | None = None,
               bounds: np.ndarray | None = None) -> np.ndarray:
    """Per group, the rate (1/s) maximising ``Σ g log(1 - exp(-λ dt)) - (1 - g) λ dt`` (``g``:
    P(jump) of each step of ``dt`` s): exact for a regular schedule, then six Newton steps in
    log λ; from ``lam0`` (the EM's previous rates), two.

    >>> round(float(_jump_rate(np.array([1.0, 0.0, 0.0, 1.0]), np.full(4, 3600.0), np.zeros(4, int), 1)[0]) * 3600, 3)
    0.693
    """
    bounds = _group_bounds(grp, n) if bounds is None else bounds
    lam = np.zeros(n) if lam0 is None else np.array(lam0, dtype=float)  # (a copy: updated in place)
    over_groups(_rate_groups, bounds, g, dt, bounds, lam, lam0 is None)
    return lam


def exposure(d: Rows, r: np.ndarray, still: np.ndarray, ds: np.ndarray, p: SmoothParams) -> np.ndarray:
    """Each row's still-drift exposure (s; :data:`telemetry.trajectory.kalman.N_TABLE`): its ``dt``,
    except on the ``still`` steps of an animal with jumps at rest, where ``ds × exposure`` is the
    step's expected drift-plus-jump variance (:func:`jump_em`, fitted on the animal's first
    ``model_fit_fixes`` still steps). Animals whose jumps are no larger than their errors keep
    ``dt`` (the fitted Brownian drift ``ds``)."""
    out = d.dt.copy()
    idx = np.flatnonzero(still & ~d.start & (ds[d.a] > 0)) if p.still_jumps else np.zeros(0, np.int64)
    if idx.size < 30:
        return out
    grp = d.a[idx]
    n_k = np.bincount(grp, minlength=d.n_animals)
    rank = np.arange(idx.size) - np.searchsorted(grp, grp)  # position among the animal's still steps
    d2 = (d.x[idx] - d.x[idx - 1]) ** 2 + (d.y[idx] - d.y[idx - 1]) ** 2
    c = r[idx] + r[idx - 1]
    dt = np.maximum(d.dt[idx], 1.0)
    head = rank < p.model_fit_fixes
    ds0, jv, lam = jump_em(d2[head], c[head], dt[head], grp[head], d.n_animals)
    med_c = pd.Series(c).groupby(grp).median().reindex(range(d.n_animals)).to_numpy()
    # jumps no larger than the errors: no step tells held from shifted (the Brownian drift stays)
    on = ((n_k >= 30) & (jv >= p.jump_min_ratio * med_c))[grp]
    if on.any():
        g, _, _ = _jump_posterior(d2, c, dt, ds0[grp], jv[grp], lam[grp])
        out[idx[on]] = (ds0[grp] * dt + g * jv[grp])[on] / ds[grp][on]
    return out
