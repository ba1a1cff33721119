"""Movement models of the smoother, per animal (point 2 of :mod:`telemetry.trajectory.smooth`).

The fixes as the Kalman filter reads them (:class:`Rows`: the usable rows sorted by animal and
time, projected on each animal's own centre), the candidate models (``BM``, ``IOU``, ``OU``,
``OUF``, each with or without a still regime whose steps the step HMM of
:mod:`telemetry.trajectory.regimes` labels), their maximum-likelihood parameters on each
animal's first ``model_fit_fixes`` fixes, the choice among them by BIC (Schwarz 1978) and the
refinement on all fixes (:func:`refine`). :mod:`telemetry.trajectory.error_estimate` fits the
same models jointly with the error; :mod:`telemetry.trajectory.smooth` smooths with them.

Layer: trajectory; imports the core, the configuration and the Kalman, projection, regime and
segment modules, nothing above.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import pandas as pd

from telemetry.arrays import group_time_order
from telemetry.config import SmoothParams
from telemetry.errors import TelemetryError
from telemetry.trajectory.error_model import ERROR_CLASSES, error_classes
from telemetry.trajectory.kalman import IOU, OUF, loglik_lanes, smooth_all, transitions
from telemetry.trajectory.projection import GroupProjection, project_by_group
from telemetry.trajectory.regimes import still_weights
from telemetry.trajectory.segment import split_gap_s

MODELS: tuple[str, ...] = ("BM", "IOU", "OU", "OUF", "BM+still", "IOU+still", "OU+still", "OUF+still")
"""Movement models the smoother chooses among, per animal (see the module docstring)."""

_TAU_BM_S = 0.01
"""Velocity time scale (s) that makes the integrated OU process Brownian at any real schedule."""



@dataclass
class Rows:
    """The usable rows of a table, sorted by (animal, time), projected, with their error classes."""

    rows: np.ndarray  # positions in the input table
    a: np.ndarray  # animal code per row
    names: np.ndarray  # animal ids in code order
    bounds: np.ndarray  # animal k owns rows bounds[k]:bounds[k+1]
    dt: np.ndarray  # s since the previous row (0 at an animal's first)
    t_s: np.ndarray  # s since the epoch (float, for prediction)
    start: np.ndarray  # first row of a segment
    x: np.ndarray
    y: np.ndarray
    proj: GroupProjection
    cls: np.ndarray  # error class code
    factor: np.ndarray  # HDOP factor
    cx: np.ndarray  # per animal: the projected mean position taken off x, y (m)
    cy: np.ndarray

    @property
    def n_animals(self) -> int:
        return len(self.names)

    def subset(self, keep: np.ndarray) -> Rows:
        """The rows where ``keep`` (whole leading stretches of animals: dt/start stay valid)."""
        a = self.a[keep]
        bounds = np.searchsorted(a, np.arange(self.n_animals + 1)).astype(np.int64)
        start = self.start[keep].copy()
        start[bounds[:-1][bounds[:-1] < a.size]] = True
        return Rows(self.rows[keep], a, self.names, bounds, self.dt[keep], self.t_s[keep], start,
                    self.x[keep], self.y[keep], self.proj, self.cls[keep], self.factor[keep], self.cx, self.cy)

    def to_lonlat(self, x: np.ndarray, y: np.ndarray, a: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Centred x, y (m) of animals ``a`` (default: this object's rows) back to lon/lat (degrees)."""
        a = self.a if a is None else a
        return replace(self.proj, codes=a).inverse(x + self.cx[a], y + self.cy[a])


def usable_rows(df: pd.DataFrame) -> np.ndarray:
    lon = pd.to_numeric(df["lon"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    lat = pd.to_numeric(df["lat"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    ok = np.isfinite(lon) & np.isfinite(lat) & df["time"].notna().to_numpy()
    if "flag" in df:
        ok &= df["flag"].isna().to_numpy()
    return ok & df["animal_id"].notna().to_numpy()  # a fix of no known animal is on no track


def prepare_rows(df: pd.DataFrame, p: SmoothParams, usable: np.ndarray) -> Rows | None:
    rows = np.flatnonzero(usable)
    if not rows.size:
        return None
    a, names = _factorize_sorted(df["animal_id"], rows)
    t = df["time"].to_numpy(dtype="datetime64[ns]").view(np.int64)[rows]
    # processed tracks come sorted (by category order where the id is a categorical: a cheap
    # merge of the animals' runs then puts them in the order of the sorted names)
    order = group_time_order(a, t)
    if order is not None:
        rows, a, t = rows[order], a[order], t[order]
    bounds = np.searchsorted(a, np.arange(len(names) + 1)).astype(np.int64)
    dt = np.zeros(rows.size)
    dt[1:] = np.diff(t) / 1e9  # int64 ns differences: no float precision loss on absolute times
    start = np.ones(rows.size, dtype=np.bool_)
    start[1:] = a[1:] != a[:-1]
    long_gap = dt[1:] > p.max_gap_h * 3600.0
    if "segment_id" in df:
        # a segment break shorter than max_gap_h is bridged: the models carry the uncertainty
        # of a gap, and a duty cycle's nights are gaps of the schedule (see SmoothParams.max_gap_h)
        seg = pd.factorize(df["segment_id"].to_numpy()[rows])[0]
        start[1:] |= (seg[1:] != seg[:-1]) & long_gap
    else:
        # the segments' own rule (default SegmentParams): daily fixes, every interval a little
        # over max_gap_h, stay one track
        gap = np.nan_to_num(split_gap_s(a, t, len(names)), nan=0.0)
        start[1:] |= long_gap & (dt[1:] > gap[a[1:]])
    lon = pd.to_numeric(df["lon"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)[rows]
    lat = pd.to_numeric(df["lat"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)[rows]
    x, y, proj = project_by_group(lon, lat, a, len(names))
    # centre each animal on its mean position: the range-resident models revert to the origin
    cnt = np.maximum(np.diff(bounds), 1)
    cx = np.bincount(a, x, minlength=len(names)) / cnt
    cy = np.bincount(a, y, minlength=len(names)) / cnt
    cls, factor = error_classes(df)
    return Rows(rows, a, names, bounds, dt, t / 1e9, start, x - cx[a], y - cy[a], proj, cls[rows], factor[rows],
                cx, cy)


def _factorize_sorted(col: pd.Series, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``pd.factorize(col.to_numpy()[rows], sort=True)``: codes and sorted names of ``col[rows]`` (no NA).

    A categorical of string categories is factorised from its codes (no object array of 1M
    names, ~10x faster); the same codes and names as the generic path.
    """
    if isinstance(col.dtype, pd.CategoricalDtype) and rows.size:
        cats = col.cat.categories
        if cats.inferred_type == "string":
            cat_codes = col.cat.codes.to_numpy()[rows].astype(np.int64)
            used = np.flatnonzero(np.bincount(cat_codes, minlength=len(cats)))
            names = cats[used].to_numpy(dtype=object)
            srt = np.argsort(names, kind="stable")
            lut = np.empty(len(cats), np.int64)
            lut[used[srt]] = np.arange(used.size)
            return lut[cat_codes], names[srt]
    return pd.factorize(col.to_numpy()[rows], sort=True)


@dataclass
class Fit:
    """Per-animal movement model: arrays of length n_animals, plus the regime of each row's step."""

    model: np.ndarray  # index into MODELS
    kind: np.ndarray  # kalman.IOU or kalman.OUF
    tau_p: np.ndarray  # position time scale (s; inf for IOU/BM)
    tau_v: np.ndarray  # velocity time scale (s)
    scale: np.ndarray  # q (m²/s², IOU) or sigma² (m², OUF)
    om: np.ndarray  # 1.0 with a still regime, else 0.0
    ds: np.ndarray  # still-regime diffusion (m²/s per axis)
    loglik: np.ndarray
    bic: np.ndarray  # (n_animals, len(MODELS)); NaN where not fitted
    fitted: np.ndarray  # bool: estimated (else defaults)
    w: np.ndarray  # 1.0 where the step into the row is still, else 0.0
    hmm: np.ndarray  # (n_animals, 5) step-HMM parameters (see regimes.still_weights)
    p_still: np.ndarray  # the step HMM's posterior P(still) of the step into each row

    def table(self, d: Rows) -> np.ndarray:
        return transitions(d.dt, d.bounds, self.kind, self.tau_p, self.tau_v)

    def smooth(self, d: Rows, r: np.ndarray, tr: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Smoothed x, y (m) and position variance (m² per axis) of ``d``'s rows under this fit
        (``tr``: its :meth:`table`, when the caller already has it)."""
        return smooth_all(self.table(d) if tr is None else tr, d.x, d.y, r, d.start, self.w, d.bounds, self.scale,
                          self.om, self.ds)


@dataclass
class _Scales:
    """One candidate pair of time scales per animal for one model family (arrays per animal)."""

    family: str
    kind: int
    tau_p: np.ndarray
    tau_v: np.ndarray
    lo: np.ndarray  # log scale search range
    hi: np.ndarray
    valid: np.ndarray  # the family applies to the animal


N_GRID = 12
"""Coarse grid points over a log-parameter range (brackets the maximum)."""
N_REFINE = 6
"""Steps of Brent's method after the grid (:func:`grid_max`). Golden section took 14 for the
same log-likelihoods: on the bench's and alertsim's first 200k fixes and the bats' and
buffalo's, every animal's fitted log-likelihood is within 0.002 of 14 golden steps' or above
it (by up to 6.3), with the same models; a refinement within a fixed window whose maximum can
sit at the window's edge (:func:`refine`, the error profile) keeps its golden-length budget."""

_N_PARAMS = {"BM": 1, "IOU": 2, "OU": 4, "OUF": 5}
"""Free parameters of each family for the BIC: the diffusion (BM); q and tau_v (IOU); sigma²,
tau_p and the two coordinates of the range centre (OU). A still regime adds its diffusion and
the step HMM's two diffusions and two persistence probabilities (:data:`_N_STILL`)."""
_N_STILL = 5

_OU_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)
_OUF_FACTORS = (0.5, 1.0, 2.0)
"""Range-crossing times tried for the OU model, as multiples of each animal's variogram estimate."""


def _n_params(model: str) -> int:
    family, _, still = model.partition("+")
    return _N_PARAMS[family] + (_N_STILL if still else 0)


def _crossing_time(d: Rows) -> np.ndarray:
    """Each animal's range-crossing time ``tau_p`` (s) from its empirical semivariogram; inf when
    the track shows no range residency within its span.

    For an OU position, the per-axis semivariance at lag ``L`` is ``sigma² (1 - exp(-L/tau_p))``
    (plus the error); ``sigma²`` is estimated by the positions' variance and ``tau_p`` solved at
    lags of 1, 2, 4, … fixes, taking the median over the lags where the semivariance lies
    between 10 % and 90 % of ``sigma²`` (Fleming et al. 2014 fit the same curve to guide
    their model choice).
    """
    n = d.n_animals
    cnt = np.maximum(np.diff(d.bounds), 1)
    var = (np.bincount(d.a, d.x**2, minlength=n) + np.bincount(d.a, d.y**2, minlength=n)) / (2 * cnt)
    var -= ((np.bincount(d.a, d.x, minlength=n) / cnt) ** 2 + (np.bincount(d.a, d.y, minlength=n) / cnt) ** 2) / 2
    est = [[] for _ in range(n)]
    lag = 1
    t = d.t_s
    while lag < d.a.size:
        same = d.a[lag:] == d.a[:-lag]
        if not same.any():
            break
        a = d.a[lag:][same]
        L = (t[lag:] - t[:-lag])[same]
        g = ((d.x[lag:] - d.x[:-lag]) ** 2 + (d.y[lag:] - d.y[:-lag]) ** 2)[same] / 4.0
        gm = np.bincount(a, g, minlength=n) / np.maximum(np.bincount(a, minlength=n), 1)
        lm = np.bincount(a, L, minlength=n) / np.maximum(np.bincount(a, minlength=n), 1)
        ratio = gm / np.maximum(var, 1e-12)
        for k in np.flatnonzero((ratio > 0.1) & (ratio < 0.9)):
            est[k].append(-lm[k] / math.log(1.0 - ratio[k]))
        lag *= 2
    return np.array([float(np.median(e)) if e else math.inf for e in est]), np.maximum(var, 1.0)


def _candidates(d: Rows, p: SmoothParams) -> list[_Scales]:
    """The time-scale candidates of every family (see :data:`MODELS`)."""
    n = d.n_animals
    yes = np.ones(n, bool)
    out = []
    lo, hi = (math.log(v / (2.0 * _TAU_BM_S)) for v in p.diffusion_bounds_m2s)
    out.append(_Scales("BM", IOU, np.full(n, np.inf), np.full(n, _TAU_BM_S), np.full(n, lo), np.full(n, hi), yes))
    lo, hi = (2.0 * math.log(v) for v in p.speed_sd_bounds_ms)
    for tau in p.tau_grid_s:
        out.append(_Scales("IOU", IOU, np.full(n, np.inf), np.full(n, tau), np.full(n, lo), np.full(n, hi), yes))
    if p.range_resident:
        tau_p, var = _crossing_time(d)
        ok = np.isfinite(tau_p)
        for f in _OU_FACTORS:
            tp = np.where(ok, tau_p * f, 86400.0)
            out.append(_Scales("OU", OUF, np.maximum(tp, 10 * _TAU_BM_S), np.full(n, _TAU_BM_S),
                               np.log(var / 100.0), np.log(var * 100.0), ok))
        if p.velocity_resident:
            for f in _OUF_FACTORS:
                tp = np.where(ok, tau_p * f, 86400.0)
                for tau in p.tau_grid_s:
                    out.append(_Scales("OUF", OUF, np.maximum(tp, 2.0 * tau), np.full(n, tau),
                                       np.log(var / 100.0), np.log(var * 100.0), ok & (tp > 2.0 * tau)))
    return out


def _scan(d: Rows, r: np.ndarray, w: np.ndarray, c: _Scales, oms: tuple[float, ...], ds: np.ndarray) -> np.ndarray:
    """Log-likelihood on a grid of log scales, shape ``(len(oms), N_GRID, n_animals)``."""
    n = d.n_animals
    grid = np.linspace(0.0, 1.0, N_GRID)
    logs = c.lo[:, None] + grid[None, :] * (c.hi - c.lo)[:, None]
    tr = transitions(d.dt, d.bounds, np.full(n, c.kind, np.int64), c.tau_p, c.tau_v)
    sc = np.exp(np.concatenate([logs] * len(oms), axis=1))
    om = np.repeat(np.asarray(oms), N_GRID)[None, :].repeat(n, axis=0)
    ll = loglik_lanes(tr, d.x, d.y, r, d.start, w, d.bounds, sc, om, om * ds[:, None])
    ll = np.where(c.valid[:, None], ll, -np.inf)
    return ll.reshape(n, len(oms), N_GRID).transpose(1, 2, 0)


def _ll_of_scale(d: Rows, r: np.ndarray, w: np.ndarray, tr: np.ndarray, om: float | np.ndarray,
                 ds: np.ndarray) -> Any:
    """The per-animal log-likelihood as a function of the log process scale (lanes); ``om``, the
    still regime's weight, is one for all animals or one per animal."""
    om_k = np.broadcast_to(np.asarray(om, dtype=np.float64), (d.n_animals,))

    def f(logs: np.ndarray) -> np.ndarray:
        return loglik_lanes(tr, d.x, d.y, r, d.start, w, d.bounds, np.exp(logs),
                            np.repeat(om_k[:, None], logs.shape[1], axis=1), np.repeat(ds[:, None], logs.shape[1], axis=1))

    return f


def _ll_of_ds(d: Rows, r: np.ndarray, w: np.ndarray, tr: np.ndarray, sc: np.ndarray) -> Any:
    """The per-animal log-likelihood of the still models as a function of log ds (lanes)."""

    def f(logds: np.ndarray) -> np.ndarray:
        return loglik_lanes(tr, d.x, d.y, r, d.start, w, d.bounds, np.repeat(sc[:, None], logds.shape[1], axis=1),
                            np.ones(logds.shape), np.exp(logds))

    return f


def grid_max(ll_fn: Any, lo: np.ndarray, hi: np.ndarray, vals: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Maximise ``ll_fn(u) -> ll`` over ``u`` in ``[lo, hi]`` for all animals at once.

    ``ll_fn`` maps ``u`` of shape ``(n_animals, L)`` to the log-likelihoods (same shape; the
    ``L`` points of an animal run in one pass). A coarse grid of ``N_GRID`` points brackets the
    maximum (the likelihood in a log scale parameter can be flat and is not guaranteed
    unimodal over decades; ``vals``, shape ``(N_GRID, n_animals)``, reuses one already
    evaluated), then Brent's method (:func:`_bracket_max`) refines within the two grid cells
    around the best, starting from the grid's three points.
    """
    if vals is None:
        grid = np.linspace(0.0, 1.0, N_GRID)
        vals = ll_fn(np.stack([lo + g * (hi - lo) for g in grid], axis=1)).T
    vals = np.where(np.isfinite(vals), vals, -np.inf)
    best = np.argmax(vals, axis=0)
    step = (hi - lo) / (N_GRID - 1)
    cols = np.arange(vals.shape[1])
    i_lo, i_hi = np.maximum(best - 1, 0), np.minimum(best + 1, N_GRID - 1)
    f_lo, f_hi = vals[i_lo, cols], vals[i_hi, cols]
    f_lo, f_hi = np.where(i_lo == best, -np.inf, f_lo), np.where(i_hi == best, -np.inf, f_hi)
    # the grid's best and its neighbours start the search (an edge's missing neighbour: -inf)
    w_hi = f_hi >= f_lo
    return _bracket_max(lambda u: ll_fn(u[:, None])[:, 0], lo + i_lo * step, lo + best * step, lo + i_hi * step,
                        vals[best, cols], lo + np.where(w_hi, i_hi, i_lo) * step, np.where(w_hi, f_hi, f_lo),
                        N_REFINE, lo + np.where(w_hi, i_lo, i_hi) * step, np.where(w_hi, f_lo, f_hi))


def window_max(ll_fn: Any, lo: np.ndarray, hi: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Maximise ``ll_fn`` over ``[lo, hi]`` elementwise (arrays of one shape; ``ll_fn(u)`` takes
    and returns that shape) in ``steps + 2`` calls: the two golden-section points, then
    :func:`_bracket_max` (the ends' values unknown). Returns the best point and its value."""
    c, d = hi - _GOLD * (hi - lo), lo + _GOLD * (hi - lo)
    fc, fd = _finite(ll_fn(c)), _finite(ll_fn(d))
    left = fc >= fd  # the maximum lies in [lo, d] (best c) or in [c, hi] (best d)
    return _bracket_max(ll_fn, np.where(left, lo, c), np.where(left, c, d), np.where(left, d, hi),
                        np.where(left, fc, fd), np.where(left, d, c), np.where(left, fd, fc), steps)


_GOLD = (math.sqrt(5.0) - 1.0) / 2.0


def _finite(f: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(f), f, -np.inf)


def _bracket_max(ll_fn: Any, a: np.ndarray, x: np.ndarray, c: np.ndarray, fx: np.ndarray, w: np.ndarray,
                 fw: np.ndarray, steps: int, v: np.ndarray | None = None,
                 fv: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Maximise ``ll_fn`` elementwise within brackets ``[a, c]`` holding the best point seen
    ``x`` (value ``fx``), the second best ``w`` (``fw``) and optionally a third ``v``, in
    ``steps`` calls, by Brent's method (1973, "Algorithms for minimization without derivatives",
    ch. 5): each call at the vertex of the parabola through the three best points where that is
    a maximum inside the bracket and moves less than half the step before last, else at the
    golden-section point of the larger side. Near a smooth maximum the parabola converges
    superlinearly where golden section gains a constant factor per call. Returns the best point
    and its value.

    >>> f = lambda u: -(u - 0.3) ** 2 + 0.1 * (u - 0.3) ** 3
    >>> u, fu = window_max(f, np.array([-1.0]), np.array([2.0]), 6)
    >>> round(float(u[0]), 4), float(fu[0]) > -1e-9
    (0.3, True)
    >>> u, fu = window_max(lambda u: -u, np.array([0.0]), np.array([1.0]), 8)  # at the edge
    >>> bool(u[0] < 0.01)
    True
    """
    fx, fw = _finite(fx), _finite(fw)
    v, fv = (w, fw) if v is None or fv is None else (v, _finite(fv))
    e = c - a  # the step before last (a parabola may move less than half of it)
    d = np.zeros(x.shape)  # the last step
    for _ in range(steps):
        with np.errstate(all="ignore"):
            r, q = (x - w) * (fx - fv), (x - v) * (fx - fw)
            num, den = (x - v) * q - (x - w) * r, 2.0 * (q - r)
            step = -num / den
            # a maximum: the three points' second divided difference is negative
            concave = ((fw - fx) / (w - x) - (fv - fx) / (v - x)) / (w - v) < 0
        u = x + step
        mid = 0.5 * (a + c)
        parabola = concave & np.isfinite(u) & (u > a) & (u < c) & (np.abs(step) < 0.5 * np.abs(e))
        gold = np.where(x >= mid, a - x, c - x)
        e = np.where(parabola, d, gold)
        d = np.where(parabola, step, (1.0 - _GOLD) * gold)
        tiny = 1e-4 * (c - a)  # a step onto the best point teaches nothing
        d = np.where(np.abs(d) < tiny, np.where(d >= 0, tiny, -tiny), d)
        u = np.clip(x + d, a, c)  # (that nudge may not leave the bracket: its ends can be the search's bounds)
        fu = _finite(ll_fn(u))
        better = fu > fx
        # the bracket closes on the side away from the better point
        a = np.where(better, np.where(u >= x, x, a), np.where(u < x, u, a))
        c = np.where(better, np.where(u >= x, c, x), np.where(u < x, c, u))
        second = ~better & ((fu > fw) | (w == x))
        third = ~better & ~second & ((fu > fv) | (v == x) | (v == w))
        v, fv = np.where(better | second, w, np.where(third, u, v)), np.where(better | second, fw, np.where(third, fu, fv))
        w, fw = np.where(better, x, np.where(second, u, w)), np.where(better, fx, np.where(second, fu, fw))
        x, fx = np.where(better, u, x), np.where(better, fu, fx)
    return x, fx


def fit_models(d: Rows, r: np.ndarray, p: SmoothParams, gate: bool = True) -> Fit:
    """Maximum-likelihood movement model of every animal, chosen by BIC among :data:`MODELS`
    (a ``+still`` model only where its still drift fits below the top of its range).

    Each time-scale candidate of each family (:func:`_candidates`) is one pass over a grid of
    process scales, with and without the still regime; each model is then refined at its
    best candidate: the scale by Brent's method, and for the still models the still drift and
    the scale once more (coordinate ascent).
    """
    n = d.n_animals
    n_fix = np.diff(d.bounds)
    n_obs = np.maximum(n_fix - np.bincount(d.a[d.start], minlength=n), 1)
    fit = n_fix >= p.min_fixes_ml
    ds_lo, ds_hi = (math.log(v) for v in p.still_diffusion_bounds_m2s)
    if p.regimes:
        p_still, hmm = still_labels(d, r, p)
        w = _hard_regimes(d, r, p_still, hmm) if gate else (p_still > 0.5).astype(np.float64) * ~d.start
        ds0 = np.exp(np.clip(np.log(np.where(np.isfinite(hmm[:, 0]) & (hmm[:, 0] > 0), hmm[:, 0], 1e-6)),
                             ds_lo, ds_hi))
    else:
        w, hmm = np.zeros(d.a.size), np.full((n, 5), np.nan)
        p_still = np.zeros(d.a.size)
        ds0 = np.zeros(n)
    oms = (0.0, 1.0) if p.regimes else (0.0,)
    cands = _candidates(d, p)
    vals = np.stack([_scan(d, r, w, c, oms, ds0) for c in cands])  # (cand, om, grid, animal)
    shape = (n, len(MODELS))
    bic, best_sc, best_ds = (np.full(shape, np.nan) for _ in range(3))
    best_c = np.zeros(shape, dtype=np.int64)
    best_ll = np.full(shape, -np.inf)
    idx = np.arange(n)
    for oi, om_value in enumerate(oms):
        for family in ("BM", "IOU", "OU", "OUF"):
            ks = np.array([k for k, c in enumerate(cands) if c.family == family])
            if not ks.size:
                continue
            name = family + ("+still" if om_value else "")
            mi = MODELS.index(name)
            kbest = ks[np.argmax(vals[ks, oi].max(axis=1), axis=0)]
            pick = [cands[k] for k in kbest]
            kind = np.array([c.kind for c in pick], dtype=np.int64)
            tau_p = np.array([c.tau_p[i] for i, c in enumerate(pick)])
            tau_v = np.array([c.tau_v[i] for i, c in enumerate(pick)])
            lo = np.array([c.lo[i] for i, c in enumerate(pick)])
            hi = np.array([c.hi[i] for i, c in enumerate(pick)])
            valid = np.array([c.valid[i] for i, c in enumerate(pick)])
            tr = transitions(d.dt, d.bounds, kind, tau_p, tau_v)
            ds = ds0 * om_value
            logs, ll = grid_max(_ll_of_scale(d, r, w, tr, om_value, ds), lo, hi, vals[kbest, oi, :, idx].T)
            if om_value:  # coordinate ascent: the still drift at this scale, then the scale again
                logds, ll_d = grid_max(_ll_of_ds(d, r, w, tr, np.exp(logs)), np.full(n, ds_lo), np.full(n, ds_hi))
                ds = np.where(ll_d > ll, np.exp(logds), ds)
                logs, ll = grid_max(_ll_of_scale(d, r, w, tr, om_value, ds), lo, hi)
            ll = np.where(valid, ll, -np.inf)
            best_sc[:, mi] = np.exp(logs)
            best_c[:, mi] = kbest
            best_ds[:, mi] = ds
            best_ll[:, mi] = ll
            # a still regime drifting at the top of its range is a second way of moving, not a
            # rest (see resting_regime): the model that holds positions there is not this one
            at_top = (om_value > 0) & (ds >= p.still_diffusion_bounds_m2s[1] * (1 - 1e-6))
            bic[:, mi] = np.where(valid & ~at_top, -2.0 * ll + _n_params(name) * np.log(n_obs), np.nan)
    choice = np.argmin(np.where(np.isfinite(bic), bic, np.inf), axis=1)
    pick = [cands[best_c[i, choice[i]]] for i in range(n)]
    is_still = np.char.endswith(np.asarray(MODELS)[choice], "+still")
    iou = MODELS.index("IOU")
    # too few fixes to estimate: an IOU with the default speed, no still regime
    return Fit(
        model=np.where(fit, choice, iou),
        kind=np.where(fit, [c.kind for c in pick], IOU).astype(np.int64),
        tau_p=np.where(fit, [c.tau_p[i] for i, c in enumerate(pick)], np.inf),
        tau_v=np.where(fit, [c.tau_v[i] for i, c in enumerate(pick)], p.tau_grid_s[-1]),
        scale=np.where(fit, best_sc[idx, choice], p.default_speed_sd_ms**2),
        om=np.where(fit & is_still, 1.0, 0.0),
        ds=np.where(fit & is_still, best_ds[idx, choice], 0.0),
        loglik=np.where(fit, best_ll[idx, choice], np.nan),
        bic=bic, fitted=fit, w=w, hmm=hmm, p_still=p_still,
    )


def refine(d: Rows, r: np.ndarray, fit: Fit, p: SmoothParams) -> Fit:
    """``fit`` (chosen on a subset of ``d``) on all of ``d``'s rows: the still regimes of every
    step, and each animal's process scale and still drift by line search within a factor
    ``e`` of the subset's values (the model family and time scales held)."""
    n = d.n_animals
    if p.regimes:
        p_still, hmm = still_labels(d, r, p)
        w = _hard_regimes(d, r, p_still, hmm)
    else:
        p_still, hmm, w = np.zeros(d.a.size), np.full((n, 5), np.nan), np.zeros(d.a.size)
    out = Fit(model=fit.model, kind=fit.kind, tau_p=fit.tau_p, tau_v=fit.tau_v, scale=fit.scale.copy(),
              om=fit.om, ds=fit.ds.copy(), loglik=fit.loglik.copy(), bic=fit.bic, fitted=fit.fitted, w=w, hmm=hmm,
              p_still=p_still)
    tr = out.table(d)
    ls0 = np.log(out.scale)
    logs, ll = window_max(lambda u: _scale_ll(d, r, out, tr, u), ls0 - 0.5, ls0 + 0.5, 8)
    out.scale = np.where(fit.fitted, np.exp(logs), out.scale)
    if p.retune_tau:
        ll = _retune_tau(d, r, out, p, ll)
        tr = out.table(d)
    still = fit.fitted & (out.om > 0)
    if still.any():
        ds_lo, ds_hi = (math.log(v) for v in p.still_diffusion_bounds_m2s)
        ld0 = np.log(np.maximum(out.ds, math.exp(ds_lo)))
        logds, ll_d = window_max(lambda u: _ds_ll(d, r, out, tr, u), np.maximum(ld0 - 1.0, ds_lo),
                                    np.minimum(ld0 + 1.0, ds_hi), 8)
        out.ds = np.where(still & (ll_d > ll), np.exp(logds), out.ds)
        ll = np.where(still & (ll_d > ll), ll_d, ll)
    out.loglik = np.where(fit.fitted, ll, np.nan)
    return out


def _retune_tau(d: Rows, r: np.ndarray, fit: Fit, p: SmoothParams, ll: np.ndarray) -> np.ndarray:
    """Move the velocity time scale of each IOU animal that has more fixes than its model was
    chosen on to a neighbouring value of ``p.tau_grid_s`` (its scale re-fitted) where that fits
    all its fixes better; ``fit`` is updated in place and the new log-likelihoods returned.

    An animal's first ``model_fit_fixes`` fixes can be one season of several (see
    ``SmoothParams.retune_tau``). Only those animals' rows are filtered: per neighbour, the scale
    by :func:`grid_max` (one pass over a grid of scales in lanes, then Brent's method).
    """
    grid = np.asarray(p.tau_grid_s, dtype=float)
    family = np.array([MODELS[m].partition("+")[0] for m in fit.model])
    todo = fit.fitted & (family == "IOU") & (np.diff(d.bounds) > p.model_fit_fixes)
    if grid.size < 2 or not todo.any():
        return ll
    keep = todo[d.a]
    sub = d.subset(keep)  # (whole animals, in order: each keeps its segment starts)
    rr, w = r[keep], fit.w[keep]
    at = np.where(todo, np.searchsorted(grid, fit.tau_v), grid.size)  # (an IOU fit's tau_v is a grid value)
    ls0 = np.log(np.where(todo, fit.scale, 1.0))
    best_ll, best_tau, best_logs = ll.copy(), fit.tau_v.copy(), ls0
    for step in (-1, 1):
        nxt = np.clip(at + step, 0, grid.size - 1)
        cand = (nxt != at) & (at < grid.size)
        if not cand.any():
            continue
        tau = np.where(cand, grid[nxt], fit.tau_v)
        tr = transitions(sub.dt, sub.bounds, fit.kind, fit.tau_p, tau)
        # the fixes see q·tau (intervals >> tau), q, or q/tau (intervals << tau: bats at 30 s
        # keep q/tau): the scale that holds any of them, ± 0.5
        with np.errstate(divide="ignore", invalid="ignore"):  # (animals not retuned: any tau_v)
            ratio = np.abs(np.log(np.where(cand, fit.tau_v / tau, 1.0)))
        u, peak = grid_max(_ll_of_scale(sub, rr, w, tr, fit.om, fit.ds), ls0 - ratio - 0.5, ls0 + ratio + 0.5)
        better = cand & (peak > best_ll)
        best_ll = np.where(better, peak, best_ll)
        best_tau = np.where(better, tau, best_tau)
        best_logs = np.where(better, u, best_logs)
    # (new arrays: the old may be shared with the subset's fit)
    fit.tau_v, fit.scale = best_tau, np.where(todo, np.exp(best_logs), fit.scale)
    return best_ll


def _scale_ll(d: Rows, r: np.ndarray, fit: Fit, tr: np.ndarray, logs: np.ndarray) -> np.ndarray:
    """Per-animal log-likelihood at process scales ``exp(logs)`` (one per animal), the rest of ``fit`` held."""
    return loglik_lanes(tr, d.x, d.y, r, d.start, fit.w, d.bounds, np.exp(logs)[:, None], fit.om[:, None],
                        fit.ds[:, None])[:, 0]


def _ds_ll(d: Rows, r: np.ndarray, fit: Fit, tr: np.ndarray, logds: np.ndarray) -> np.ndarray:
    """Per-animal log-likelihood at still drifts ``exp(logds)``, the rest of ``fit`` held."""
    return loglik_lanes(tr, d.x, d.y, r, d.start, fit.w, d.bounds, fit.scale[:, None], fit.om[:, None],
                        np.exp(logds)[:, None])[:, 0]


def fit_from_attrs(d: Rows, r: np.ndarray, models: dict[str, dict[str, Any]], p: SmoothParams) -> Fit | None:
    """The fitted models of ``attrs["smooth"]`` on ``d``'s rows (``fitted`` False for animals
    without one), with the still regimes of the steps labelled afresh; None when none is known."""
    get = [models.get(str(nm)) for nm in d.names]
    if not any(g for g in get):
        return None
    n = d.n_animals
    have = np.array([bool(g) and g.get("estimated", False) for g in get])
    g0 = [g or {} for g in get]
    if p.regimes:
        # EM starts from the earlier fit's step HMM: the steps are the same but for a few
        # fixes flagged or put back (pipeline._smooth_again), and a start from the data's
        # quartiles costs ~7 times as much (see regimes._still_range)
        p_still, hmm = still_labels(d, r, p, _hmm_start(g0))
        w = _hard_regimes(d, r, p_still, hmm)
    else:
        p_still, hmm, w = np.zeros(d.a.size), np.full((n, 5), np.nan), np.zeros(d.a.size)
    model = np.array([MODELS.index(g["model"]) if g.get("model") in MODELS else MODELS.index("IOU") for g in g0])
    return Fit(
        model=model,
        kind=np.array([OUF if g.get("kind") == "OUF" else IOU for g in g0], dtype=np.int64),
        tau_p=np.array([g.get("tau_position_s", math.inf) for g in g0], dtype=float),
        tau_v=np.array([g.get("tau_velocity_s", p.tau_grid_s[-1]) for g in g0], dtype=float),
        scale=np.array([g.get("scale", p.default_speed_sd_ms**2) for g in g0], dtype=float),
        om=has_still_regime(g0).astype(float),
        ds=np.array([g.get("still_diffusion_m2s", 0.0) for g in g0], dtype=float),
        loglik=np.array([g.get("loglik", np.nan) for g in g0], dtype=float),
        bic=np.array([[(g.get("bic") or {}).get(m) or np.nan for m in MODELS] for g in g0], dtype=float),
        fitted=have, w=w, hmm=hmm, p_still=p_still,
    )


def take_fit(fit: Fit, other: Fit, mask: np.ndarray) -> Fit:
    """``fit`` with the per-animal parameters of ``other`` where ``mask`` (same rows)."""
    out = {}
    for f in fields(Fit):
        a, b = getattr(fit, f.name), getattr(other, f.name)
        out[f.name] = (np.where(mask.reshape(-1, *([1] * (a.ndim - 1))), b, a)
                       if f.name not in ("w", "p_still") else a)
    return Fit(**out)


def still_labels(d: Rows, r: np.ndarray, p: SmoothParams,
                 init: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The step HMM's ``P(still)`` per row and its parameters per animal (see
    :func:`telemetry.trajectory.regimes.still_weights`) under fix variances ``r``, its still
    drift held to the smoother's own range (``still_diffusion_bounds_m2s``); ``init`` where to
    start its EM (one row per animal, NaN: from the data)."""
    return still_weights(d.dt, d.x, d.y, r, d.start, d.bounds, p.regime_max_iter, p.still_diffusion_bounds_m2s[1],
                         init)


_HMM_ATTRS = ("still_label_diffusion_m2s", "still_label_active_m2s", "still_label_stay_still",
              "still_label_stay_active")
"""``attrs["smooth"]`` keys of the step HMM's fitted parameters (``Fit.hmm[:, :4]``)."""


def _hmm_start(fits: list[dict[str, Any]]) -> np.ndarray:
    """Each animal's step-HMM parameters of an earlier fit (:data:`_HMM_ATTRS`), a row of NaN
    where any is missing: where EM starts again.

    >>> _hmm_start([{"still_label_diffusion_m2s": 1e-4, "still_label_active_m2s": 2.0,
    ...              "still_label_stay_still": 0.9, "still_label_stay_active": 0.8}, {}]).tolist()
    [[0.0001, 2.0, 0.9, 0.8], [nan, nan, nan, nan]]
    """
    out = np.array([[g.get(k) for k in _HMM_ATTRS] for g in fits], dtype=float).reshape(len(fits), len(_HMM_ATTRS))
    out[~np.isfinite(out).all(axis=1)] = np.nan
    return out


def _hard_regimes(d: Rows, r: np.ndarray, w: np.ndarray, hmm: np.ndarray) -> np.ndarray:
    """1.0 where a step is still, else 0.0: the step HMM's posterior favours still *and* so does
    the step's own displacement.

    The posterior alone lets a resting bout's persistence claim the step on which the animal
    set off (a 100 m move after a day in bed); forcing that step still pulls the first moving
    fix back to the bed, which costs far more than leaving one resting step unaveraged.
    """
    prev = np.maximum(np.arange(d.a.size) - 1, 0)
    d2 = (d.x - d.x[prev]) ** 2 + (d.y - d.y[prev]) ** 2
    c = r + r[prev]
    dt = np.maximum(d.dt, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        s_still = c + hmm[d.a, 0] * dt
        s_act = c + hmm[d.a, 1] * dt
        lr = -np.log(s_still) - 0.5 * d2 / s_still + np.log(s_act) + 0.5 * d2 / s_act
    return ((w > 0.5) & (lr > 0) & ~d.start).astype(np.float64)


def head_mask(d: Rows, per_animal: int) -> np.ndarray:
    """True on the first ``per_animal`` rows of every animal of ``d`` (bool per row of ``d``)."""
    return np.arange(d.a.size) - d.bounds[d.a] < per_animal


def head_rows(d: Rows, per_animal: int) -> np.ndarray:
    """Positions (in the input table) of the first ``per_animal`` rows of every animal of ``d``:
    what a model is chosen on, the same whatever other animals the table holds."""
    return d.rows[head_mask(d, per_animal)]


def subset_rows(df: pd.DataFrame, p: SmoothParams, rows: np.ndarray) -> Rows | None:
    """Those rows as a :class:`Rows` of their own (projected on their own centres)."""
    mask = np.zeros(len(df), bool)
    mask[rows] = True
    return prepare_rows(df, p, mask)


def fit_attrs(fit: Fit, k: int, still_share: float, n_fixes: int, ds_max: float = math.inf) -> dict[str, Any]:
    """One animal's fitted movement model as plain numbers (``attrs["smooth"][animal]``);
    ``ds_max`` the top of the still drift's search range (m²/s)."""
    oufish = fit.kind[k] == OUF
    sc = float(fit.scale[k])
    return {
        "model": MODELS[fit.model[k]],
        "estimated": bool(fit.fitted[k]),
        "kind": "OUF" if oufish else "IOU",
        "tau_position_s": float(fit.tau_p[k]) if oufish else math.inf,
        "tau_velocity_s": float(fit.tau_v[k]),
        "scale": sc,
        # what the scale means for each family: the range's s.d. per axis, or the speed s.d.
        "range_sd_m": math.sqrt(sc) if oufish else math.inf,
        "speed_sd_ms": math.sqrt(sc / (fit.tau_p[k] * fit.tau_v[k])) if oufish else math.sqrt(sc),
        "diffusion_m2s": (2.0 * sc / fit.tau_p[k]) if oufish else 2.0 * sc * float(fit.tau_v[k]),
        "still_diffusion_m2s": float(fit.ds[k]),
        # the step HMM whose posterior is the output's p_still: its still regime's drift, the
        # active diffusion (m²/s) and each regime's persistence; a later smoothing of the
        # animal's track starts its EM from them (fit_from_attrs)
        **{key: float(fit.hmm[k, i]) if np.isfinite(fit.hmm[k, i]) else None for i, key in enumerate(_HMM_ATTRS)},
        # a still regime whose drift the likelihood pushed to the top of its range is a second
        # way of moving, not a rest (see :func:`resting_regime`)
        "still_drift_at_bound": bool(MODELS[fit.model[k]].endswith("+still") and fit.ds[k] >= ds_max * (1 - 1e-6)),
        "still_share": still_share,
        "loglik": float(fit.loglik[k]),
        "bic": {m: (None if not np.isfinite(fit.bic[k, i]) else float(fit.bic[k, i])) for i, m in enumerate(MODELS)},
        "n_fixes": n_fixes,
    }


def smooth_params(params: SmoothParams | None, overrides: dict[str, Any]) -> SmoothParams:
    p = params if params is not None else SmoothParams()
    if overrides:
        known = {f.name for f in fields(SmoothParams)}
        bad = set(overrides) - known
        if bad:
            raise TypeError(f"unknown smoothing parameter(s): {sorted(bad)}")
        p = replace(p, **overrides)
    for name in ("error_switching_classes", "error_jump_classes", "error_bracket_classes"):
        bad = sorted(set(getattr(p, name)) - set(ERROR_CLASSES))
        if bad:  # a misspelt class would silently switch the method off
            raise TelemetryError(f"parameter smooth.{name}: unknown error class(es) {', '.join(bad)}; "
                                 f"the classes are {', '.join(ERROR_CLASSES)}")
    return p


def has_still_regime(fits: list[dict[str, Any]]) -> np.ndarray:
    """Whether each animal's fitted model (an entry of ``tracks.attrs["smooth"]``) has a still regime.

    >>> has_still_regime([{"model": "IOU+still"}, {"model": "OU"}, {}]).tolist()
    [True, False, False]
    """
    return np.array([str(g.get("model", "")).endswith("+still") for g in fits], dtype=bool)


def resting_regime(fits: list[dict[str, Any]]) -> np.ndarray:
    """Whether each animal's fitted model has a still regime that is a rest: one whose drift
    stayed inside its search range (``still_drift_at_bound`` false). At the top of the range
    (``still_diffusion_bounds_m2s``: a few hundred metres in four hours) the likelihood has
    used the regime for slow movement, and its ``p_still`` says "slow", not "resting"
    (``scripts/validate.py --fuzz 40 --seed 2``, setting 10: 8-h fixes, 39-min rests, 10 m²/s
    in three of four animals, 92 % of the fixes called resting where 32 % were). Inside the
    range but within ``states.still_rest_min_ratio`` of the animal's movement, the states
    decline the animal (:func:`telemetry.trajectory.states.label_states`).

    >>> resting_regime([{"model": "BM+still"}, {"model": "BM+still", "still_drift_at_bound": True}]).tolist()
    [True, False]
    """
    return has_still_regime(fits) & ~np.array([bool(g.get("still_drift_at_bound", False)) for g in fits], dtype=bool)
