"""Track smoothing with the collar's own error: error model, movement model, Kalman/RTS smoother.

What it does, per run
---------------------
1. **Error model.** Each located fix has a 1-σ error per axis ``sigma = UERE_class × HDOP``
   (:mod:`telemetry.trajectory.error_model`: classes 3D / 2D / unknown GPS and the Argos
   location classes). A calibration (stationary collars, ``telemetry calibrate``) is used
   when given. Otherwise the UERE of every class with enough fixes is *estimated* by
   maximum likelihood jointly with the movement models (Fleming et al. 2020): EM over the
   error scale (Shumway & Stoffer 1982; the expected squared error of each fix under the
   smoother, ``|z - x̂|² + 2 P``, averaged per class) alternated with the maximum-likelihood
   movement parameters of every animal, on up to ``error_fit_max_fixes`` fixes (whole
   stretches of each animal's track); the 95 % interval comes from the curvature of the
   likelihood in ``log UERE``. For 3D fixes (``error_switching_classes``) that likelihood sums
   over each step being still or moving rather than taking the step HMM's labels (labels read
   from the displacements pick as still the steps whose errors happened to be small, and the
   scale comes out low). For 3D fixes (``error_jump_classes``) the estimate from the
   resting bouts read as held positions with occasional jumps (:func:`_jump_uere`) replaces
   it wherever it is firm (``error_jumps``): the likelihood's Brownian drift at rest spreads
   the shifts over every still step, and a movement model that misfits (migrants, kill sites
   visited bed by bed) puts its misfit in the error (simulated migrants: 11.5-12.7 m from the
   likelihood, 7.9-8.0 from the rests, truth 8; 4-h fixes of a 3 m collar: 2.1-2.3 vs 3.0-3.6).
   A class too small to estimate takes the configured default, and the model says so
   (``source = "default"``).
2. **Movement model, per animal**, chosen by BIC (Schwarz 1978) among
   ``BM`` (Brownian motion of the position; diffusion ``2 q tau`` with ``tau`` → 0),
   ``IOU`` (an Ornstein–Uhlenbeck velocity integrated to position: the continuous-time
   correlated random walk of Johnson et al. 2008, ``tau`` from ``tau_grid_s``), and each of
   them with a **still regime**: steps on which the animal did not move at all (position
   held, velocity redrawn; :mod:`telemetry.trajectory.kalman`), labelled by a two-state HMM
   on the raw displacements (:mod:`telemetry.trajectory.regimes`). Still steps let a resting
   bout's fixes be averaged, and they are what identifies the error scale: the scatter of a
   resting animal's fixes is all error. Any schedule works: transitions are exact over each
   interval, so irregular times and gaps need no resampling.
3. **Kalman filter + RTS smoother** (Rauch et al. 1965) with the chosen model and the
   estimated errors, restarting at each segment. Two departures from the fitted model, both
   measured on the independent simulator of ``scripts/validate.py``:

   * *Jumps at rest.* A resting animal's position does not drift smoothly: it stays put and
     now and then shifts bed, moves round a kill. Each animal's still steps are split by EM
     into a slow drift plus jumps arriving at a rate (:func:`_jump_em`; the two fixes' errors
     known), and each still step is smoothed with its own expected drift variance, so a rest
     without a shift is averaged whole and one with a shift is not. Where the fitted jumps
     are no larger than the errors (``jump_min_ratio``; 15-min schedules, where a shift
     spreads over many steps) the fitted Brownian drift stays.
   * *Unidentified error, no averaging.* Still steps next to a GPS fix whose error the data
     could not identify (``source = "default"``) are smoothed as active: with fixes a day
     apart every split of a step's spread between error and drift fits, and an assumed error
     above the collar's averages fixes that should not be (``average_unidentified``). Such a
     fix also keeps its own position, with its assumed error as ``se_m``
     (:func:`_unidentified_fixes`). A UERE the user configured with estimation switched off
     (``estimate_error``) is their statement of the error, not a stand-in, and is averaged with.

Rows
----
Only usable rows (``flag`` NA, time and both coordinates present, a known animal) are
smoothed. Other rows get NaN in ``lon_s``, ``lat_s``, ``se_m`` — flagged rows include clock
jumps and duplicates whose times cannot be trusted. Positions at other times come from
:func:`predict`. The filter restarts at a gap longer than ``max_gap_h`` that also splits the
segments: ``segment_id`` (if the column exists) or, failing that, the default
:class:`SegmentParams` rule on the animal's own fix interval.

Outputs
-------
``lon_s``, ``lat_s`` (degrees WGS84), ``se_m`` (m): the smoothed position and its standard
error per axis (``sqrt(P_xx)``; the radial RMS error is ``sqrt(2) × se_m``); ``sigma_m``: the
fix's own measurement error (m per axis) under the error model; ``p_still``: probability
that the animal did not move between the previous fix and this one; ``resid_chi2``: the
fix's standardised residual ``|z - x̂|² / (sigma² - se²)`` — the squared distance of the fix
from the prediction of all *other* fixes in units of its variance, chi-square with 2
degrees of freedom under the model (large values are outliers).
``out.attrs["smooth"]`` holds per animal the chosen model and its parameters, every
candidate's BIC, and ``out.attrs["error_model"]`` the UERE table with intervals and source.

References
----------
Fleming, C. H. et al. (2020). A comprehensive framework for handling location error in animal
tracking data. bioRxiv 10.1101/2020.06.12.130195.
Johnson, D. S., London, J. M., Lea, M.-A. & Durban, J. W. (2008). Continuous-time correlated
random walk model for animal telemetry data. Ecology 89:1208–1215.
Rauch, H. E., Tung, F. & Striebel, C. T. (1965). AIAA Journal 3:1445–1450.
Schwarz, G. (1978). Estimating the dimension of a model. Ann. Stat. 6:461–464.
Shumway, R. H. & Stoffer, D. S. (1982). An approach to time series smoothing and forecasting
using the EM algorithm. J. Time Ser. Anal. 3:253–264.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import pandas as pd

from telemetry.config import ARGOS_ERROR_M, SmoothParams
from telemetry.errors import TelemetryError
from telemetry.schema import SharedAttr
from telemetry.trajectory.error_model import (
    ERROR_CLASSES,
    GPS_CLASSES,
    ErrorModel,
    default_error_model,
    error_classes,
)
from telemetry.trajectory.kalman import (
    IOU,
    OUF,
    loglik_lanes,
    smooth_all,
    switching_loglik_lanes,
    transitions,
)
from telemetry.trajectory.projection import GroupProjection, project_by_group
from telemetry.trajectory.regimes import still_weights
from telemetry.trajectory.segment import split_gap_s

__all__ = ["SmoothParams", "smooth", "predict", "estimate_error_model", "FitMemo", "measurement_sigma_m", "ARGOS_ERROR_M",
           "MODELS", "has_still_regime", "resting_regime", "SMOOTHED_COLUMNS"]

SMOOTHED_COLUMNS = ("lon_s", "lat_s", "se_m", "sigma_m", "p_still", "resid_chi2")
"""The columns :func:`smooth` writes (float, NaN on unusable rows)."""


MODELS: tuple[str, ...] = ("BM", "IOU", "OU", "OUF", "BM+still", "IOU+still", "OU+still", "OUF+still")
"""Movement models the smoother chooses among, per animal (see the module docstring)."""

_TAU_BM_S = 0.01
"""Velocity time scale (s) that makes the integrated OU process Brownian at any real schedule."""


# --------------------------------------------------------------------------- rows


@dataclass
class _Rows:
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

    def subset(self, keep: np.ndarray) -> _Rows:
        """The rows where ``keep`` (whole leading stretches of animals: dt/start stay valid)."""
        a = self.a[keep]
        bounds = np.searchsorted(a, np.arange(self.n_animals + 1)).astype(np.int64)
        start = self.start[keep].copy()
        start[bounds[:-1][bounds[:-1] < a.size]] = True
        return _Rows(self.rows[keep], a, self.names, bounds, self.dt[keep], self.t_s[keep], start,
                     self.x[keep], self.y[keep], self.proj, self.cls[keep], self.factor[keep], self.cx, self.cy)

    def to_lonlat(self, x: np.ndarray, y: np.ndarray, a: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Centred x, y (m) of animals ``a`` (default: this object's rows) back to lon/lat (degrees)."""
        a = self.a if a is None else a
        return replace(self.proj, codes=a).inverse(x + self.cx[a], y + self.cy[a])


def _usable(df: pd.DataFrame) -> np.ndarray:
    lon = pd.to_numeric(df["lon"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    lat = pd.to_numeric(df["lat"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    ok = np.isfinite(lon) & np.isfinite(lat) & df["time"].notna().to_numpy()
    if "flag" in df:
        ok &= df["flag"].isna().to_numpy()
    return ok & df["animal_id"].notna().to_numpy()  # a fix of no known animal is on no track


def _prepare(df: pd.DataFrame, p: SmoothParams, usable: np.ndarray) -> _Rows | None:
    rows = np.flatnonzero(usable)
    if not rows.size:
        return None
    a, names = _factorize_sorted(df["animal_id"], rows)
    t = df["time"].to_numpy(dtype="datetime64[ns]").view(np.int64)[rows]
    da, dtn = np.diff(a), np.diff(t)
    if not ((da > 0) | ((da == 0) & (dtn >= 0))).all():  # processed tracks come sorted: skip the sort
        order = np.lexsort((t, a))  # stable: an already sorted table keeps its order
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
    return _Rows(rows, a, names, bounds, dt, t / 1e9, start, x - cx[a], y - cy[a], proj, cls[rows], factor[rows],
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


# --------------------------------------------------------------------------- movement models


@dataclass
class _Fit:
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

    def table(self, d: _Rows) -> np.ndarray:
        return transitions(d.dt, d.bounds, self.kind, self.tau_p, self.tau_v)

    def smooth(self, d: _Rows, r: np.ndarray, tr: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
"""Steps of Brent's method after the grid (:func:`_grid_max`). Golden section took 14 for the
same log-likelihoods: on the bench's and alertsim's first 200k fixes and the bats' and
buffalo's, every animal's fitted log-likelihood is within 0.002 of 14 golden steps' or above
it (by up to 6.3), with the same models; a refinement within a fixed window whose maximum can
sit at the window's edge (:func:`_refine`, the error profile) keeps its golden-length budget."""

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


def _crossing_time(d: _Rows) -> np.ndarray:
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


def _candidates(d: _Rows, p: SmoothParams) -> list[_Scales]:
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


def _scan(d: _Rows, r: np.ndarray, w: np.ndarray, c: _Scales, oms: tuple[float, ...], ds: np.ndarray) -> np.ndarray:
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


def _ll_of_scale(d: _Rows, r: np.ndarray, w: np.ndarray, tr: np.ndarray, om: float | np.ndarray,
                 ds: np.ndarray) -> Any:
    """The per-animal log-likelihood as a function of the log process scale (lanes); ``om``, the
    still regime's weight, is one for all animals or one per animal."""
    om_k = np.broadcast_to(np.asarray(om, dtype=np.float64), (d.n_animals,))

    def f(logs: np.ndarray) -> np.ndarray:
        return loglik_lanes(tr, d.x, d.y, r, d.start, w, d.bounds, np.exp(logs),
                            np.repeat(om_k[:, None], logs.shape[1], axis=1), np.repeat(ds[:, None], logs.shape[1], axis=1))

    return f


def _ll_of_ds(d: _Rows, r: np.ndarray, w: np.ndarray, tr: np.ndarray, sc: np.ndarray) -> Any:
    """The per-animal log-likelihood of the still models as a function of log ds (lanes)."""

    def f(logds: np.ndarray) -> np.ndarray:
        return loglik_lanes(tr, d.x, d.y, r, d.start, w, d.bounds, np.repeat(sc[:, None], logds.shape[1], axis=1),
                            np.ones(logds.shape), np.exp(logds))

    return f


def _grid_max(ll_fn: Any, lo: np.ndarray, hi: np.ndarray, vals: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
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


def _window_max(ll_fn: Any, lo: np.ndarray, hi: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
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
    >>> u, fu = _window_max(f, np.array([-1.0]), np.array([2.0]), 6)
    >>> round(float(u[0]), 4), float(fu[0]) > -1e-9
    (0.3, True)
    >>> u, fu = _window_max(lambda u: -u, np.array([0.0]), np.array([1.0]), 8)  # at the edge
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


def _fit_models(d: _Rows, r: np.ndarray, p: SmoothParams, gate: bool = True) -> _Fit:
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
        p_still, hmm = _still_labels(d, r, p)
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
            logs, ll = _grid_max(_ll_of_scale(d, r, w, tr, om_value, ds), lo, hi, vals[kbest, oi, :, idx].T)
            if om_value:  # coordinate ascent: the still drift at this scale, then the scale again
                logds, ll_d = _grid_max(_ll_of_ds(d, r, w, tr, np.exp(logs)), np.full(n, ds_lo), np.full(n, ds_hi))
                ds = np.where(ll_d > ll, np.exp(logds), ds)
                logs, ll = _grid_max(_ll_of_scale(d, r, w, tr, om_value, ds), lo, hi)
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
    return _Fit(
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


def _refine(d: _Rows, r: np.ndarray, fit: _Fit, p: SmoothParams) -> _Fit:
    """``fit`` (chosen on a subset of ``d``) on all of ``d``'s rows: the still regimes of every
    step, and each animal's process scale and still drift by line search within a factor
    ``e`` of the subset's values (the model family and time scales held)."""
    n = d.n_animals
    if p.regimes:
        p_still, hmm = _still_labels(d, r, p)
        w = _hard_regimes(d, r, p_still, hmm)
    else:
        p_still, hmm, w = np.zeros(d.a.size), np.full((n, 5), np.nan), np.zeros(d.a.size)
    out = _Fit(model=fit.model, kind=fit.kind, tau_p=fit.tau_p, tau_v=fit.tau_v, scale=fit.scale.copy(),
               om=fit.om, ds=fit.ds.copy(), loglik=fit.loglik.copy(), bic=fit.bic, fitted=fit.fitted, w=w, hmm=hmm,
               p_still=p_still)
    tr = out.table(d)
    ls0 = np.log(out.scale)
    logs, ll = _window_max(lambda u: _scale_ll(d, r, out, tr, u), ls0 - 0.5, ls0 + 0.5, 8)
    out.scale = np.where(fit.fitted, np.exp(logs), out.scale)
    if p.retune_tau:
        ll = _retune_tau(d, r, out, p, ll)
        tr = out.table(d)
    still = fit.fitted & (out.om > 0)
    if still.any():
        ds_lo, ds_hi = (math.log(v) for v in p.still_diffusion_bounds_m2s)
        ld0 = np.log(np.maximum(out.ds, math.exp(ds_lo)))
        logds, ll_d = _window_max(lambda u: _ds_ll(d, r, out, tr, u), np.maximum(ld0 - 1.0, ds_lo),
                                    np.minimum(ld0 + 1.0, ds_hi), 8)
        out.ds = np.where(still & (ll_d > ll), np.exp(logds), out.ds)
        ll = np.where(still & (ll_d > ll), ll_d, ll)
    out.loglik = np.where(fit.fitted, ll, np.nan)
    return out


def _retune_tau(d: _Rows, r: np.ndarray, fit: _Fit, p: SmoothParams, ll: np.ndarray) -> np.ndarray:
    """Move the velocity time scale of each IOU animal that has more fixes than its model was
    chosen on to a neighbouring value of ``p.tau_grid_s`` (its scale re-fitted) where that fits
    all its fixes better; ``fit`` is updated in place and the new log-likelihoods returned.

    An animal's first ``model_fit_fixes`` fixes can be one season of several (see
    ``SmoothParams.retune_tau``). Only those animals' rows are filtered: per neighbour, the scale
    by :func:`_grid_max` (one pass over a grid of scales in lanes, then Brent's method).
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
        u, peak = _grid_max(_ll_of_scale(sub, rr, w, tr, fit.om, fit.ds), ls0 - ratio - 0.5, ls0 + ratio + 0.5)
        better = cand & (peak > best_ll)
        best_ll = np.where(better, peak, best_ll)
        best_tau = np.where(better, tau, best_tau)
        best_logs = np.where(better, u, best_logs)
    # (new arrays: the old may be shared with the subset's fit)
    fit.tau_v, fit.scale = best_tau, np.where(todo, np.exp(best_logs), fit.scale)
    return best_ll


def _scale_ll(d: _Rows, r: np.ndarray, fit: _Fit, tr: np.ndarray, logs: np.ndarray) -> np.ndarray:
    """Per-animal log-likelihood at process scales ``exp(logs)`` (one per animal), the rest of ``fit`` held."""
    return loglik_lanes(tr, d.x, d.y, r, d.start, fit.w, d.bounds, np.exp(logs)[:, None], fit.om[:, None],
                        fit.ds[:, None])[:, 0]


def _ds_ll(d: _Rows, r: np.ndarray, fit: _Fit, tr: np.ndarray, logds: np.ndarray) -> np.ndarray:
    """Per-animal log-likelihood at still drifts ``exp(logds)``, the rest of ``fit`` held."""
    return loglik_lanes(tr, d.x, d.y, r, d.start, fit.w, d.bounds, fit.scale[:, None], fit.om[:, None],
                        np.exp(logds)[:, None])[:, 0]


def _fit_from_attrs(d: _Rows, r: np.ndarray, models: dict[str, dict[str, Any]], p: SmoothParams) -> _Fit | None:
    """The fitted models of ``attrs["smooth"]`` on ``d``'s rows (``fitted`` False for animals
    without one), with the still regimes of the steps labelled afresh; None when none is known."""
    get = [models.get(str(nm)) for nm in d.names]
    if not any(g for g in get):
        return None
    n = d.n_animals
    have = np.array([bool(g) and g.get("estimated", False) for g in get])
    g0 = [g or {} for g in get]
    if p.regimes:
        p_still, hmm = _still_labels(d, r, p)
        w = _hard_regimes(d, r, p_still, hmm)
    else:
        p_still, hmm, w = np.zeros(d.a.size), np.full((n, 5), np.nan), np.zeros(d.a.size)
    model = np.array([MODELS.index(g["model"]) if g.get("model") in MODELS else MODELS.index("IOU") for g in g0])
    return _Fit(
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


def _take(fit: _Fit, other: _Fit, mask: np.ndarray) -> _Fit:
    """``fit`` with the per-animal parameters of ``other`` where ``mask`` (same rows)."""
    out = {}
    for f in fields(_Fit):
        a, b = getattr(fit, f.name), getattr(other, f.name)
        out[f.name] = (np.where(mask.reshape(-1, *([1] * (a.ndim - 1))), b, a)
                       if f.name not in ("w", "p_still") else a)
    return _Fit(**out)


def _still_labels(d: _Rows, r: np.ndarray, p: SmoothParams) -> tuple[np.ndarray, np.ndarray]:
    """The step HMM's ``P(still)`` per row and its parameters per animal (see
    :func:`telemetry.trajectory.regimes.still_weights`) under fix variances ``r``, its still
    drift held to the smoother's own range (``still_diffusion_bounds_m2s``)."""
    return still_weights(d.dt, d.x, d.y, r, d.start, d.bounds, p.regime_max_iter, p.still_diffusion_bounds_m2s[1])


def _hard_regimes(d: _Rows, r: np.ndarray, w: np.ndarray, hmm: np.ndarray) -> np.ndarray:
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


def _resid_chi2(d: _Rows, r: np.ndarray, sx: np.ndarray, sy: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Standardised residual of every fix against the smoother given all *other* fixes:
    ``|z - x̂|² / (r - P)`` (chi-square, 2 d.o.f., under the model; see the module docstring)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return ((d.x - sx) ** 2 + (d.y - sy) ** 2) / np.maximum(r - var, 1e-12 * r)


def _release_misfits(d: _Rows, r: np.ndarray, fit: _Fit, sx: np.ndarray, sy: np.ndarray, var: np.ndarray,
                     p: SmoothParams, tr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps labelled still next to a fix the still model cannot explain become active; re-smooth.

    A fix far outside what the rest of the track predicts (``resid_chi2`` above the
    ``misfit_p`` quantile) next to a still step is usually the animal setting off or arriving
    (the step HMM's persistence labelled the step still); holding the position there drags the
    fix back to the bed. Releasing the step costs one resting step's averaging at most.
    """
    bad = _resid_chi2(d, r, sx, sy, var) > -2.0 * math.log(1.0 - p.misfit_p)  # chi-square(2) quantile
    into = bad & (fit.w > 0)  # the step into a bad fix
    out_of = np.r_[False, bad[:-1]] & (fit.w > 0)  # the step out of it (w is 0 at segment starts)
    release = into | out_of
    if not release.any():
        return sx, sy, var
    fit.w = np.where(release, 0.0, fit.w)
    return fit.smooth(d, r, tr)


def _hedge(d: _Rows, r: np.ndarray, fit: _Fit, sx: np.ndarray, sy: np.ndarray, var: np.ndarray,
           p: SmoothParams, tr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Average the smoothing with and without the still steps the step HMM is unsure of.

    Each still step is taken whole (see :mod:`telemetry.trajectory.kalman`), but a step at the
    edge of a rest can be either (a 2D fix 100 m from the bed). Smoothing again with the
    unsure steps (posterior ``P(still)`` below ``still_sure_p``) active gives the other answer;
    each fix takes the two in proportion to the probability that its unsure neighbouring
    steps are still, with the mixture's variance (a two-model approximation of the switching
    smoother; cf. Blom & Bar-Shalom 1988).
    """
    unsure = (fit.w > 0) & (fit.p_still < p.still_sure_p)
    if not unsure.any():
        return sx, sy, var
    held = fit.w
    fit.w = np.where(unsure, 0.0, held)
    bx, by, bvar = fit.smooth(d, r, tr)
    fit.w = held
    ps = np.where(unsure, fit.p_still, 1.0)
    wt = ps * np.r_[ps[1:], 1.0]  # the step into the fix and the step out of it
    dx, dy = sx - bx, sy - by
    mix_var = wt * var + (1.0 - wt) * bvar + wt * (1.0 - wt) * (dx * dx + dy * dy) / 2.0
    return bx + wt * dx, by + wt * dy, mix_var


def _jump_posterior(d2: np.ndarray, c: np.ndarray, dt: np.ndarray, ds0: np.ndarray, jv: np.ndarray,
                    lam: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P(jump) of each still step and its two variances (per axis) under drift ``ds0`` (m²/s),
    jumps of variance ``jv`` (m²) at rate ``lam`` (1/s), per step."""
    pj = np.clip(1.0 - np.exp(-lam * dt), 1e-9, 1 - 1e-9)
    v0 = c + ds0 * dt
    v1 = v0 + jv
    l0 = np.log1p(-pj) - np.log(v0) - d2 / (2 * v0)
    l1 = np.log(pj) - np.log(v1) - d2 / (2 * v1)
    return 1.0 / (1.0 + np.exp(np.clip(l0 - l1, -700.0, 700.0))), v0, v1


def _jump_fit(d2: np.ndarray, x: np.ndarray, dt: np.ndarray, grp: np.ndarray, n: int, iters: int,
              m: np.ndarray, jumps: np.ndarray, fit_scale: bool) -> tuple[np.ndarray, ...]:
    """EM of still steps as error plus slow drift plus jumps (see :func:`_jump_em`), per group
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
    for it in range(iters):
        c = x @ m
        g, v0, v1 = _jump_posterior(d2, c, dt, ds0[grp], jv[grp], lam[grp])
        g = np.where(on, g, 0.0)
        # variance components by their fixed points (weights 1/v², the Gaussian score)
        w1 = g / (v1 * v1)
        jv = np.maximum(np.bincount(grp, w1 * (y - v0), minlength=n)
                        / np.maximum(np.bincount(grp, w1, minlength=n), 1e-300), 1e-6)
        w0 = (1.0 - g) / (v0 * v0)
        ds0 = np.maximum(np.bincount(grp, w0 * dt * (y - c), minlength=n)
                         / np.maximum(np.bincount(grp, w0 * dt * dt, minlength=n), 1e-300), 1e-9)
        if fit_scale:  # weighted least squares of the classes' multipliers given the drifts
            sw = np.sqrt(w0)
            m = np.maximum(np.linalg.lstsq(x * sw[:, None], (y - dt * ds0[grp]) * sw, rcond=None)[0], 1e-6)
        if on.any():  # (warm-started from the last iteration's rates: two Newton steps keep up)
            lam = _jump_rate(g, dt, grp, n, lam if it else None)
    g, v0, v1 = _jump_posterior(d2, x @ m, dt, ds0[grp], jv[grp], lam[grp])
    pj = np.where(on, np.clip(1.0 - np.exp(-lam[grp] * dt), 1e-9, 1 - 1e-9), 0.0)
    with np.errstate(divide="ignore"):
        ll = np.logaddexp(np.log1p(-pj) - np.log(v0) - d2 / (2 * v0), np.log(pj) - np.log(v1) - d2 / (2 * v1))
    return m, ds0, jv, lam, np.where(on, g, 0.0), v0, np.bincount(grp, ll, minlength=n)


def _jump_em(d2: np.ndarray, c: np.ndarray, dt: np.ndarray, grp: np.ndarray, n: int,
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
    >>> ds0, jv, lam = _jump_em((e**2).sum(1), np.full(4000, 50.0), dt, np.zeros(4000, np.int64), 1)
    >>> round(float(np.sqrt(jv[0]))), round(float(1 - np.exp(-lam[0] * 3600)), 2)
    (30, 0.3)
    """
    _, ds0, jv, lam, *_ = _jump_fit(d2, c[:, None], dt, grp, n, iters, np.ones(1), np.ones(n, bool), False)
    return ds0, jv, lam


def _jump_rate(g: np.ndarray, dt: np.ndarray, grp: np.ndarray, n: int, lam0: np.ndarray | None = None) -> np.ndarray:
    """Per group, the rate (1/s) maximising ``Σ g log(1 - exp(-λ dt)) - (1 - g) λ dt`` (``g``:
    P(jump) of each step of ``dt`` s): exact for a regular schedule, then six Newton steps in
    log λ; from ``lam0`` (the EM's previous rates), two.

    >>> round(float(_jump_rate(np.array([1.0, 0.0, 0.0, 1.0]), np.full(4, 3600.0), np.zeros(4, int), 1)[0]) * 3600, 3)
    0.693
    """
    if lam0 is None:
        cnt = np.maximum(np.bincount(grp, minlength=n), 1)
        gm = np.clip(np.bincount(grp, g, minlength=n) / cnt, 1e-6, 1.0 - 1e-6)
        lam = -np.log1p(-gm) / np.maximum(np.bincount(grp, dt, minlength=n) / cnt, 1.0)
    else:
        lam = np.asarray(lam0, dtype=float)
    for _ in range(6 if lam0 is None else 2):
        x = lam[grp] * dt
        e = np.exp(-x)
        q = np.maximum(-np.expm1(-x), 1e-300)
        s1 = np.bincount(grp, g * x * e / q - (1.0 - g) * x, minlength=n)  # d/d(log λ)
        s2 = np.bincount(grp, g * x * e * (q - x) / (q * q) - (1.0 - g) * x, minlength=n)
        ok = np.isfinite(s1) & np.isfinite(s2) & (s2 < 0)
        step = np.where(ok, np.clip(-s1 / np.where(ok, s2, -1.0), -2.0, 2.0), 0.0)
        lam = lam * np.exp(step)
    return np.clip(lam, 1e-9, 1.0)


def _exposure(d: _Rows, r: np.ndarray, still: np.ndarray, ds: np.ndarray, p: SmoothParams) -> np.ndarray:
    """Each row's still-drift exposure (s; :data:`telemetry.trajectory.kalman.N_TABLE`): its ``dt``,
    except on the ``still`` steps of an animal with jumps at rest, where ``ds × exposure`` is the
    step's expected drift-plus-jump variance (:func:`_jump_em`, fitted on the animal's first
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
    ds0, jv, lam = _jump_em(d2[head], c[head], dt[head], grp[head], d.n_animals)
    med_c = pd.Series(c).groupby(grp).median().reindex(range(d.n_animals)).to_numpy()
    # jumps no larger than the errors: no step tells held from shifted (the Brownian drift stays)
    on = ((n_k >= 30) & (jv >= p.jump_min_ratio * med_c))[grp]
    if on.any():
        g, _, _ = _jump_posterior(d2, c, dt, ds0[grp], jv[grp], lam[grp])
        out[idx[on]] = (ds0[grp] * dt + g * jv[grp])[on] / ds[grp][on]
    return out


def _unidentified_steps(d: _Rows, bad: np.ndarray) -> np.ndarray:
    """Steps next to a GPS fix whose error the data could not identify (``bad``, from
    :func:`_unidentified_fixes`): they are not averaged as still.

    Where the likelihood cannot tell the error from the movement (fixes a day apart), every
    split of a still step's spread between error and drift fits equally; an assumed error larger
    than the collar's averages each fix with neighbours it should not be averaged with (24-h
    fixes of 4 m / 9 m collars: 3D 9.0 m raw, 9.7 m smoothed with the 10 m default; 9.0 m
    with this rule). The fixes themselves are then kept where they are (:func:`_unidentified_fixes`).
    :func:`predict` does not apply it: a prediction has no fix of its own to protect, and
    averaging a rest's fixes is what predicts the animal there (real buffalo, every 5th fix held
    out, ``scripts/validate.py``: 241.5 m RMSE, median 84 m; with the rule 244.7 m, median 100 m).
    """
    return (bad | np.r_[False, bad[:-1]]) & ~d.start


# --------------------------------------------------------------------------- error model


def _unidentified_fixes(d: _Rows, model: ErrorModel, p: SmoothParams) -> np.ndarray:
    """GPS fixes whose error the data could not identify (``source = "default"``): their smoothed
    position is the fix itself and ``se_m`` its assumed error (bool per row).

    The smoother moves a fix towards what its neighbours and the movement model predict by
    the share ``P / (r + P)`` its assumed error ``r`` earns; with ``r`` a stand-in, that share
    is a guess, and a default above the collar's error moves good fixes away from the truth.
    Where the likelihood cannot identify the error the movement between fixes swamps it, so
    little is lost by not moving them. Measured on ``scripts/validate.py``'s cell "sw:short
    rests" (``scripts/switch_sim.py``: 4-h fixes, 90-min rests, 3D 4 m / 2D 9 m, no fix type;
    the 20 m default used in seeds 1015, 2015, 3015): 3D fixes 8.97 / 8.72 / 8.90 m raw,
    smoothed 9.30 / 9.11 / 9.36 m; kept, equal to raw. (The collar_sim daily cell of
    ``tests/test_validate_invariants.py``, seed 11: 2D fixes 2.7 % farther than raw.) The fixes
    still inform their neighbours, and :func:`predict` still uses them. ``resid_chi2`` stays
    the model's, so for them it is no longer ``|z - x̂|² / (sigma² - se²)``. Off with
    ``average_unidentified``.
    """
    if p.average_unidentified:
        return np.zeros(d.a.size, bool)
    gps = np.array([ERROR_CLASSES[c] in GPS_CLASSES and model.source.get(ERROR_CLASSES[c], "default") == "default"
                    for c in range(len(ERROR_CLASSES))])
    return gps[d.cls]


def _head_rows(d: _Rows, per_animal: int) -> np.ndarray:
    """Positions (in the input table) of the first ``per_animal`` rows of every animal of ``d``:
    what a model is chosen on, the same whatever other animals the table holds."""
    pos = np.arange(d.a.size) - d.bounds[d.a]
    return d.rows[pos < per_animal]


def _error_rows(d: _Rows, p: SmoothParams) -> np.ndarray:
    """Positions of the rows the error model is estimated on: the head of each animal
    (:func:`_head_rows`), of every k-th animal (in id order) so that at most
    ``error_fit_max_fixes`` rows are used; the UERE is a property of the collars, pooled."""
    n_fix = np.diff(d.bounds)
    # few animals: longer stretches of each, up to the budget
    per_animal = max(p.model_fit_fixes, p.error_fit_max_fixes // max(d.n_animals, 1))
    step = max(1, math.ceil(np.minimum(n_fix, per_animal).sum() / max(p.error_fit_max_fixes, 1)))
    pick = np.zeros(d.n_animals, bool)
    pick[::step] = True
    pos = np.arange(d.a.size) - d.bounds[d.a]
    return d.rows[(pos < per_animal) & pick[d.a]]


def _subset_rows(df: pd.DataFrame, p: SmoothParams, rows: np.ndarray) -> _Rows | None:
    """Those rows as a :class:`_Rows` of their own (projected on their own centres)."""
    mask = np.zeros(len(df), bool)
    mask[rows] = True
    return _prepare(df, p, mask)


@dataclass
class FitMemo:
    """Error-model fits by the digest of their inputs (see :func:`estimate_error_model`):
    ``known`` to look up, ``used`` the fit this run used (what a store records)."""

    known: dict[str, Any] = field(default_factory=dict)
    used: dict[str, Any] = field(default_factory=dict)


def estimate_error_model(df: pd.DataFrame, params: SmoothParams | None = None, *,
                         prior: ErrorModel | None = None, memo: FitMemo | None = None,
                         **overrides: Any) -> ErrorModel:
    """The collars' error model from tracks: every class of ``prior`` (default: the configured
    defaults) whose source is ``"default"`` is estimated by maximum likelihood where the data
    allow (see the module docstring); the others are kept.

    Parameters
    ----------
    df : DataFrame
        Cleaned fixes (``flag``; optional ``segment_id``); only usable rows count.
    params : SmoothParams, optional
    prior : ErrorModel, optional
        E.g. a calibration of some classes.
    memo : FitMemo, optional
        Fits already made (``memo.known``: ``{key: ErrorModel.exact()}``, the key a digest of
        everything the fit reads: the rows it is estimated on, the parameters, the prior). A
        fit whose key is known is taken from it, bit for bit what refitting would give; the
        fit used is put in ``memo.used``. A track store keeps it, so that adding a day to
        years of data (the rows of the fit are each animal's head, which a new day does not
        change) skips the maximum-likelihood search.

    Returns
    -------
    ErrorModel
        With ``source`` per class: ``"estimated"``, the prior's, or ``"default"`` (and the
        ``note`` says why) where the data do not identify the error.
    """
    p = _params(params, overrides)
    model = _defaults(p) if prior is None else prior.merged(_defaults(p))
    d = _prepare(df, p, _usable(df)) if len(df) else None
    return _estimate_for(df, d, p, model, memo)


def _estimate_for(df: pd.DataFrame, d: _Rows | None, p: SmoothParams, model: ErrorModel,
                  memo: FitMemo | None = None) -> ErrorModel:
    """:func:`estimate_error_model` given ``df``'s usable rows prepared (``d``)."""
    todo = np.array([model.source.get(c) == "default" for c in ERROR_CLASSES])
    if d is None or not p.estimate_error or not todo.any():
        return model
    s = _subset_rows(df, p, _error_rows(d, p))
    if s is None:
        return model
    if memo is None:
        return _estimate_error(s, p, model, todo)
    key = _fit_key(s, p, model, todo)
    if key not in memo.known:
        memo.known[key] = _estimate_error(s, p, model, todo).exact()
    memo.used[key] = memo.known[key]
    return ErrorModel.from_exact(memo.known[key])  # (the same either way: exact() round-trips)


def _fit_key(s: _Rows, p: SmoothParams, model: ErrorModel, todo: np.ndarray) -> str:
    """Digest of everything :func:`_estimate_error` reads: the rows' arrays (not their positions
    in the table, which a new fix of an earlier animal shifts), the parameters and the prior."""
    import hashlib

    h = hashlib.sha256()
    for arr in (s.a, s.bounds, s.dt, s.t_s, s.start, s.x, s.y, s.cls, s.factor, s.cx, s.cy, todo):
        a = np.ascontiguousarray(arr)
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    h.update("\x00".join(map(str, s.names)).encode())
    h.update(repr(p).encode())
    h.update(json.dumps(model.exact(), sort_keys=True).encode())
    return h.hexdigest()


def _moment_uere(d: _Rows, r: np.ndarray, p: SmoothParams) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Starting UERE per class from resting bouts: the lag-one moment of the displacements.

    Within a still stretch, consecutive displacements share the middle fix's error with
    opposite signs, so ``E[d_i · d_{i+1}] = -2 σ_i²`` (two axes) whatever slow drift the animal
    has; hence ``UERE_c² = -Σ d_i·d_{i+1} / (2 Σ h_i²)`` over the pairs whose middle fix is in
    class ``c``. Steps are labelled still by the step HMM (:mod:`telemetry.trajectory.regimes`)
    under ``r``. Returns the estimate (NaN where it is not positive or rests on fewer than
    ``error_min_fixes`` pairs), the number of pairs per class and the standard error of the
    log estimate (delta method on the ratio ``Σ prod / Σ h²``, neighbouring pairs' shared
    displacement counted with a lag-one Bartlett term), and the one-sided upper bound of the UERE
    from the same moment (``error_moment_bound_z`` standard errors), which stands even where the estimate itself is not positive
    (the rests' displacements show no error that large); inf where too few pairs or where the
    covariance is positive beyond that bound (the steps are moves, not rests).
    """
    w, _ = _still_labels(d, r, p)
    still = (w > 0.5) & ~d.start
    i = np.flatnonzero(still[1:-1] & still[2:]) + 1 if d.a.size > 2 else np.zeros(0, np.int64)
    prod = -((d.x[i] - d.x[i - 1]) * (d.x[i + 1] - d.x[i]) + (d.y[i] - d.y[i - 1]) * (d.y[i + 1] - d.y[i])) / 2.0
    n_cls = len(ERROR_CLASSES)
    num = np.bincount(d.cls[i], prod, minlength=n_cls)
    den = np.bincount(d.cls[i], d.factor[i] ** 2, minlength=n_cls)
    pairs = np.bincount(d.cls[i], minlength=n_cls)
    with np.errstate(invalid="ignore", divide="ignore"):
        u2 = num / den
        u = np.sqrt(u2)
        e = prod - u2[d.cls[i]] * d.factor[i] ** 2  # each pair's residual from the ratio
        adj = np.r_[i[1:] == i[:-1] + 1, False]  # pairs k and k+1 share a displacement
        cross = np.bincount(d.cls[i][adj], e[adj] * e[np.flatnonzero(adj) + 1], minlength=n_cls) if i.size else 0.0
        var_u2 = np.maximum(np.bincount(d.cls[i], e * e, minlength=n_cls) + cross, 0.0) / den**2
        se_log = 0.5 * np.sqrt(var_u2) / u2
    ok = (pairs >= p.error_min_fixes) & (num > 0)
    with np.errstate(invalid="ignore"):
        top = u2 + p.error_moment_bound_z * np.sqrt(var_u2)
    # a lag-one covariance that is positive beyond doubt shows moves carried on from step to step
    # (slow grazing labelled still): such steps are no held rests and bound nothing
    hi = np.where((pairs >= p.error_min_fixes) & (top > 0), np.sqrt(np.where(top > 0, top, 0.0)), np.inf)
    return np.where(ok, u, np.nan), pairs, np.where(ok, se_log, np.inf), hi


def _jump_uere(d: _Rows, r: np.ndarray, p: SmoothParams, iters: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """UERE per class from the resting bouts read as held positions with occasional jumps.

    The still steps (labelled by the step HMM under ``r``) are each a difference of two fixes'
    errors, plus a slow drift ``ds0 dt`` and, at a rate, a jump of variance ``J`` (bed shifts;
    :func:`_jump_em`). Here the errors' scale is a parameter too: a multiplier ``m_c`` of each
    class's variance ``r``, shared by all animals, fitted with each animal's ``ds0`` by weighted
    least squares on the no-jump part of the steps (EM weights ``(1 - P(jump)) / v0²``), the
    jumps' size and rate per animal as in :func:`_jump_em`; an animal keeps its jumps only
    where they raise its log-likelihood by more than ``log n`` (BIC for their two parameters),
    as a Gaussian error's tails otherwise pass for jumps and the scale comes out low (held
    rests, 15 m: 7 % low without the test, 4 % with it). A Gaussian drift spread over every
    still step (the likelihood's still regime) takes the error's share of a rest where the
    animal mostly holds still and sometimes shifts; the jumps do not. Returns per class the
    factor ``sqrt(m_c)`` on the UERE behind ``r`` (NaN where fewer than ``error_min_fixes``
    steps touch the class) and the standard error of its log (sandwich, steps independent).

    >>> rng = np.random.default_rng(2)
    >>> n = 3000; t = np.arange(n) * 3600.0; h = rng.lognormal(0.3, 0.35, n)
    >>> shift = np.cumsum((rng.random(n) < 0.1)[:, None] * rng.normal(0, 30, (n, 2)), axis=0)
    >>> xy = shift + rng.normal(size=(n, 2)) * (3.0 * h)[:, None]          # UERE 3 m, at rest
    >>> d = _Rows(np.arange(n), np.zeros(n, np.int64), np.array(["a"]), np.array([0, n]),
    ...           np.r_[0.0, np.diff(t)], t, np.r_[True, np.zeros(n - 1, bool)], xy[:, 0], xy[:, 1],
    ...           None, np.zeros(n, np.int64), h, np.zeros(1), np.zeros(1))
    >>> m, se = _jump_uere(d, (2.0 * h) ** 2, SmoothParams())            # started from 2 m
    >>> bool(abs(2.0 * m[0] - 3.0) < 0.2), bool(se[0] < 0.05)
    (True, True)
    """
    n_cls = len(ERROR_CLASSES)
    k, se_log = np.full(n_cls, np.nan), np.full(n_cls, np.inf)
    w, _ = _still_labels(d, r, p)
    i = np.flatnonzero((w > 0.5) & ~d.start)
    # each animal's drift is a parameter of its own: an animal with a handful of still steps
    # fits it to them (to nothing, if they are short), and their weights, inverse to a
    # variance without drift, then make those few steps the whole estimate and its interval
    i = i[np.bincount(d.a[i], minlength=d.n_animals)[d.a[i]] >= p.error_jump_min_steps]
    ca, cb = d.cls[i], d.cls[i - 1]
    touch = np.bincount(ca, minlength=n_cls) + np.bincount(cb, minlength=n_cls)
    present = np.flatnonzero(touch >= p.error_min_fixes)
    if present.size == 0:
        return k, se_log
    d2 = (d.x[i] - d.x[i - 1]) ** 2 + (d.y[i] - d.y[i - 1]) ** 2
    dt = np.maximum(d.dt[i], 1.0)
    grp, n = d.a[i], d.n_animals
    ra, rb = r[i], r[i - 1]
    x_cls = np.stack([ra * (ca == c) + rb * (cb == c) for c in present], axis=1)
    y = d2 / 2.0
    m, ds0, _, _, g, v0, ll1 = _jump_fit(d2, x_cls, dt, grp, n, iters, np.ones(present.size), np.ones(n, bool), True)
    # jumps only where they earn their two parameters (BIC per animal): a Gaussian error's
    # tails otherwise pass for jumps and the scale comes out low (held rests, 15 m: -7 %)
    ll0 = _jump_fit(d2, x_cls, dt, grp, n, 10, m, np.zeros(n, bool), True)[-1]  # (least squares alone: fast)
    jumps = ll1 - ll0 > np.log(np.maximum(np.bincount(grp, minlength=n), 2))
    if not jumps.all():
        m, ds0, _, _, g, v0, _ = _jump_fit(d2, x_cls, dt, grp, n, iters, m, jumps, True)
    w0 = (1.0 - g) / (v0 * v0)
    # sandwich covariance of the multipliers, the animals' drifts partialled out (Frisch-Waugh)
    # and the steps taken as independent
    bw = np.stack([np.bincount(grp, w0 * dt * x_cls[:, j], minlength=n) for j in range(present.size)], axis=1)
    dg = np.maximum(np.bincount(grp, w0 * dt * dt, minlength=n), 1e-300)
    xt = x_cls - dt[:, None] * (bw / dg[:, None])[grp]
    resid = y - x_cls @ m - dt * ds0[grp]
    xw = xt * w0[:, None]
    bread = np.linalg.pinv(xt.T @ xw)
    cov = bread @ ((xw * (resid * resid)[:, None]).T @ xw) @ bread
    k[present] = np.sqrt(m)
    se_log[present] = 0.5 * np.sqrt(np.maximum(np.diag(cov), 0.0)) / m
    return k, se_log


def _agree(a: np.ndarray, se_a: np.ndarray, b: np.ndarray, se_b: np.ndarray) -> np.ndarray:
    """Whether two estimates of a scale agree: ``|log(a / b)|`` within 1.96 times the combined
    standard error of their logs (False where either is missing).

    >>> _agree(np.array([10.0, 10.0, np.nan]), np.full(3, 0.1), np.array([11.0, 14.0, 10.0]), np.full(3, 0.1)).tolist()
    [True, False, False]
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.abs(np.log(a / b)) <= 1.96 * np.hypot(se_a, se_b)


def _class_mask(names: tuple[str, ...]) -> np.ndarray:
    """True for each of :data:`ERROR_CLASSES` named in ``names`` (a parameter's class list).

    >>> [ERROR_CLASSES[c] for c in np.flatnonzero(_class_mask(("unknown", "3D")))]
    ['3D', 'unknown']
    """
    return np.isin(np.array(ERROR_CLASSES), names)


def _profile_ll(s: _Rows, r: np.ndarray, fit: _Fit, sel: np.ndarray, logk: np.ndarray,
                p: SmoothParams) -> np.ndarray:
    """Total log-likelihood (fitted animals) with the error of the ``sel`` rows scaled by
    ``exp(logk)`` (one value per lane), each animal's q and still drift re-maximised per lane
    near their fitted values (the models and regimes held). Where every ``sel`` row is of a class
    in ``error_switching_classes`` the regimes are summed over with the step HMM's transition
    probabilities (:func:`~telemetry.trajectory.kalman.switching_loglik_lanes`), not labelled."""
    n, lanes = s.n_animals, logk.size
    tr = fit.table(s)
    rs = np.repeat(np.exp(2.0 * logk)[None, :], n, axis=0)
    om = np.repeat(fit.om[:, None], lanes, axis=1)
    ds_lo, ds_hi = (math.log(v) for v in p.still_diffusion_bounds_m2s)

    def ll(q: np.ndarray, ds: np.ndarray) -> np.ndarray:
        if switching:  # the regimes summed over, not labelled (see the kalman module)
            return switching_loglik_lanes(tr, s.x, s.y, r, s.start, s.bounds, q, om, ds, fit.hmm[:, 2], fit.hmm[:, 3],
                                          rs, sel)
        return loglik_lanes(tr, s.x, s.y, r, s.start, fit.w, s.bounds, q, om, ds, rs, sel)

    switching = bool(sel.any()) and bool(np.all(_class_mask(p.error_switching_classes)[s.cls[sel]]))
    logq0 = np.repeat(np.log(fit.scale)[:, None], lanes, axis=1)
    ds = np.repeat(np.maximum(fit.ds, 1e-12)[:, None], lanes, axis=1)
    logq, _ = _window_max(lambda u: ll(np.exp(u), ds), logq0 - 0.5, logq0 + 0.5, 6)
    q = np.exp(logq)
    still = fit.om > 0
    if still.any():
        logds0 = np.log(ds)
        logds, _ = _window_max(lambda u: ll(q, np.exp(u)), np.maximum(logds0 - 2.0, ds_lo),
                                 np.minimum(logds0 + 2.0, ds_hi), 8)
        ds = np.where(still[:, None], np.exp(logds), ds)
    out = ll(q, ds)
    return np.sum(np.where(fit.fitted[:, None] & np.isfinite(out), out, 0.0), axis=0)


def _search_scale(s: _Rows, r: np.ndarray, fit: _Fit, sel: np.ndarray, p: SmoothParams,
                  top: float = 3.0, bottom: float = -math.inf) -> tuple[float, float, bool]:
    """Maximum of the profile log-likelihood in ``log k`` (the ``sel`` rows' error times ``k``).

    A coarse scan over two decades each way (one pass, a lane per point: the start may be far
    off, e.g. a moment estimate on an animal that never rests) picks the best point; successive
    parabolas through three points refine it, never above ``top`` nor below ``bottom``. Returns
    ``log k``, its standard error from the curvature (inf when the likelihood is flat) and
    whether the maximum is at ``top`` or ``bottom`` (the likelihood still rising: the error is
    not identified).
    """
    bottom = min(bottom, top)
    scan = np.unique(np.clip(np.array([-4.5, -3.0, -1.5, -0.7, 0.0, 0.7, 1.5, 3.0]), bottom, top))
    f = _profile_ll(s, r, fit, sel, scan, p)
    centre = float(scan[int(np.argmax(f))])
    delta = 0.35
    se = math.inf
    for _ in range(6):
        pts = centre + delta * np.array([-1.0, 0.0, 1.0])
        f = _profile_ll(s, r, fit, sel, pts, p)
        curv = (f[2] - 2.0 * f[1] + f[0]) / delta**2
        slope = (f[2] - f[0]) / (2.0 * delta)
        if curv < 0:
            step = float(np.clip(-slope / curv, -2.0 * delta, 2.0 * delta))
            se = 1.0 / math.sqrt(-curv)
        else:
            step = 2.0 * delta * float(np.sign(slope))
            se = math.inf
        centre = float(np.clip(centre + step, scan[0], top))
        if abs(step) < 0.01:
            break
        delta = float(np.clip(abs(step), 0.05, 0.35))
    return centre, se, centre >= top - 1e-9 or centre <= bottom + 1e-9


def _search_power(s: _Rows, u: np.ndarray, power: np.ndarray, fit: _Fit, c: int, p: SmoothParams) -> float:
    """The HDOP exponent of class ``c`` (``sigma = UERE HDOP**g``) of the highest profile likelihood
    among ``error_hdop_powers``, the class's mean error variance held (so only the shape changes)."""
    sel = s.cls == c
    h = s.factor[sel]
    if not sel.any() or np.ptp(h) == 0:
        return 1.0
    best, best_ll = 1.0, -np.inf
    for g in p.error_hdop_powers:
        pw = power.copy()
        pw[c] = g
        # keep mean(UERE² h^2g) of the class, so the likelihood compares shapes, not scales
        scale = math.sqrt(np.mean(h ** (2.0 * power[c])) / np.mean(h ** (2.0 * g)))
        uu = u.copy()
        uu[c] *= scale
        r = np.maximum(uu[s.cls] ** 2 * s.factor ** (2.0 * pw[s.cls]), p.min_sigma_m**2)
        ll = float(_profile_ll(s, r, fit, sel, np.array([0.0]), p)[0])
        if ll > best_ll:
            best, best_ll = g, ll
    if best != power[c]:
        u[c] *= math.sqrt(np.mean(h ** (2.0 * power[c])) / np.mean(h ** (2.0 * best)))
    return best


def _estimate_error(s: _Rows, p: SmoothParams, prior: ErrorModel, todo: np.ndarray) -> ErrorModel:
    """Maximum-likelihood UERE of the classes in ``todo`` (bool per class) with enough fixes.

    On ``s`` (:func:`_error_subset`): start from the lag-one moment estimate of the resting bouts
    (:func:`_moment_uere`; the prior where there is none), fit the movement models, then
    maximise the profile likelihood over a common scale of the estimated classes and over each
    class in turn (:func:`_search_scale`), take the resting bouts' held-position-and-jumps
    estimate instead where it is firm (:func:`_jump_uere`; ``error_jump_classes``), and refit.
    Where the smoother seldom averages fixes (``error_min_informative``) a class keeps its
    estimate only if the resting bouts agree with the likelihood's (their lag-one moment or
    their held-position-and-jumps estimate, within the two intervals; where the likelihood sums
    over the regimes, ``error_switching_classes``, the latter may agree with it or with the
    likelihood that takes the step HMM's labels), both readings are firm
    (``error_check_max_se_log``) and the estimate is within the bound the lag-one moment puts
    on the error (``error_moment_bound_z``), a bound it must be able to put
    (``error_check_needs_bound``); else the default. Wherever fixes are averaged or
    not, an estimate more than ``error_moment_clash`` times that bound is not identified.
    The 95 % interval of each class is ``UERE × exp(±1.96 se)``, ``se`` from the curvature of
    its profile (or the sandwich of the resting-bout estimate).
    """
    n_cls = len(ERROR_CLASSES)
    counts = np.bincount(s.cls, minlength=n_cls)
    est = todo & (counts >= p.error_min_fixes)
    jumped: list[str] = []
    u = prior.values().copy()
    power = np.ones(n_cls)

    def var(uu: np.ndarray) -> np.ndarray:
        return np.maximum(uu[s.cls] ** 2 * s.factor ** (2.0 * power[s.cls]), p.min_sigma_m**2)

    start, _, start_se, start_hi = _moment_uere(s, var(u), p)
    start_from = {ERROR_CLASSES[c]: ("moment" if np.isfinite(start[c]) else "prior") for c in np.flatnonzero(est)}
    # the moment start is only as good as the still labels: never start above the prior (the
    # scan in _search_scale still reaches twenty times higher)
    u = np.where(est & np.isfinite(start), np.minimum(start, u), u)
    se = np.full(n_cls, math.inf)
    ceiling = prior.values() * p.error_max_factor  # no GPS collar errs by more (see SmoothParams)
    floor = prior.values() * p.error_min_factor  # ... nor by less
    # classes the likelihood does not identify: its maximum at the ceiling or the floor (and,
    # below, far above what the resting bouts say)
    at_edge = np.zeros(n_cls, bool)
    for round_ in range(p.error_rounds if est.any() else 0):
        # the regimes (which steps are still) depend on the error scale: label them at the
        # current estimate, then maximise the likelihood with them held; a start too low
        # would otherwise keep the largest errors out of the still steps and bias the scale down
        if round_ == 0:
            # still steps by the posterior alone: gating them by their own displacement (as the
            # smoothing does) would keep the largest errors out of them and bias the scale down
            fit = _fit_models(s, var(u), p, gate=False)
        elif p.regimes:  # the models stay; only the still steps are labelled afresh
            fit.p_still, fit.hmm = _still_labels(s, var(u), p)
            fit.w = (fit.p_still > 0.5).astype(np.float64) * ~s.start
        groups = ([np.flatnonzero(est)] if round_ == 0 else []) + [[c] for c in np.flatnonzero(est)]
        for group in groups:
            sel = np.isin(s.cls, group)
            top = float(np.min(np.log(ceiling[group] / u[group])))
            with np.errstate(divide="ignore"):  # (error_min_factor 0: no floor)
                bottom = float(np.max(np.log(floor[group] / u[group])))
            logk, sek, hit = _search_scale(s, var(u), fit, sel, p, top, bottom)
            u[group] *= math.exp(logk)
            se[group] = sek
            at_edge[group] = hit
        unk = ERROR_CLASSES.index("unknown")
        if round_ == 0 and est[unk] and p.error_hdop_powers:
            power[unk] = _search_power(s, u, power, fit, unk, p)
    # the resting bouts read as held positions with jumps: for classes whose errors are not
    # heavy-tailed (``error_jump_classes``), the estimate wherever it is firm. Against the
    # simulated truth it is as close as the likelihood's where the movement model fits, and far
    # closer where it does not (migrants: 7.9-8.0 m vs 11.5-12.7 for a truth of 8; the alert
    # tests' kill sites: 5.1 vs 19.3 for 5; 4-h fixes of a 3 m collar: 3.0-3.6 vs 2.1-2.3); the
    # likelihood's own interval is then far too narrow to weigh the two by (see issue 14's note)
    rest_agree = np.zeros(n_cls, bool)
    if est.any() and p.error_jumps and p.regimes:  # (no still regime: no rests to read)
        k_j, se_j = _jump_uere(s, var(u), p)
        light = _class_mask(p.error_jump_classes)
        # (and inside the range the likelihood is searched in: a least-squares reading whose
        # error multiplier ran to zero, the drift taking it all, reports a tiny interval too)
        with np.errstate(invalid="ignore"):
            firm_j = (est & np.isfinite(k_j) & (se_j < p.error_max_se_log)
                      & (u * k_j >= floor) & (u * k_j <= ceiling))
        rest = firm_j & light
        same = _agree(u, se, u * k_j, se_j)
        # where the likelihood summed over the regimes (error_switching_classes), the rests may
        # agree with it or with the likelihood that takes the HMM's labels: each is the maximum
        # of one approximation of the switching model, and the two fail apart (slow movers: the
        # labels read low; commuters' travels and bed shifts at 4 h: summed over, 10.1 m for a
        # truth of 8, the labels and the rests 7.3-7.4)
        labelled = replace(p, error_switching_classes=())
        for c in np.flatnonzero(firm_j & ~same & _class_mask(p.error_switching_classes)):
            logk, sek, _ = _search_scale(s, var(u), fit, s.cls == c, labelled, float(np.log(ceiling[c] / u[c])),
                                         float(np.log(floor[c] / u[c])) if floor[c] > 0 else -math.inf)
            same[c] = bool(_agree(np.array([u[c] * math.exp(logk)]), np.array([sek]), u[c:c + 1] * k_j[c:c + 1],
                                  se_j[c:c + 1])[0])
        # and a check on the likelihood, for every class: an estimate the rests agree with is
        # no misfit of the movement model, however seldom the smoother averages fixes
        # (commuters at 4 h: 2D 17.7-22.6 m for a truth of 20 kept instead of the default)
        # (the reading that agrees must be firm too: two loose readings agree by being loose)
        rest_agree = firm_j & ~at_edge & same & (se_j < p.error_check_max_se_log)
        # ... and against it: where the rests put a class's error at less than 1/error_rest_clash
        # of the likelihood's, outside both intervals, the likelihood is taking the movement
        # model's misfit for error (the class is then not identified: its fixes stay as they are)
        at_edge |= firm_j & ~rest & ~same & (p.error_rest_clash > 0) & (k_j * p.error_rest_clash < 1.0)
        if rest.any():
            u = np.where(rest, u * np.nan_to_num(k_j, nan=1.0), u)
            se = np.where(rest, se_j, se)
            at_edge = at_edge & ~rest
            jumped = [ERROR_CLASSES[c] for c in np.flatnonzero(rest)]
    # where the smoother follows every fix (consecutive fixes far apart next to their error) the
    # likelihood's preference for an error scale is the movement model's misfit, not the error
    informative = 1.0
    if est.any():
        fit = _fit_models(s, var(u), p)
        _, _, vv = fit.smooth(s, var(u))
        # pooled over the classes: within a class the share depends on the other classes' errors
        informative = float(np.mean((vv < 0.5 * var(u))[est[s.cls]]))
    # ... nor one far above the upper bound the rests' lag-one moment puts on the error (drift
    # does not enter that bound): where the animal drifts at rest farther between fixes than
    # its collar errs, the likelihood can take the drift for error wherever it reads it
    with np.errstate(invalid="ignore"):
        at_edge |= est & (p.error_moment_clash > 0) & (u > p.error_moment_clash * start_hi)
    # ... unless the resting bouts say the same: the lag-one moment (no movement model) agrees
    # with the likelihood's scale for a class it pins down, so the joint fit is not misfit
    firm = est & (start_se < p.error_max_se_log) & np.isfinite(se) & ~at_edge
    agree = firm & _agree(u, se, start, start_se)
    seen = informative >= p.error_min_informative
    # ... and is itself a firm reading: two loose readings agree by being loose
    sure = se < p.error_check_max_se_log
    confirmed = agree & sure & (not seen)  # (the rests are consulted only where fixes are seldom averaged)
    # ... and not above what the rests' lag-one moment allows (its upper bound: drift does not
    # enter it; where the steps labelled still are moves, the other two readings both split
    # their spread by HDOP alone and can agree on an error several times the truth)
    # (a bound it cannot put - too few held rests of two steps or more, or their steps carried
    # on as moves - is no check: then nothing tells the error from the moves and drift inside
    # the single still steps, whose spread both readings split by HDOP alone)
    bounded = np.isfinite(start_hi) | (not p.error_check_needs_bound)
    checked = rest_agree & ~agree & sure & bounded & (u <= start_hi) & (not seen)
    identified = ~at_edge & (se < p.error_max_se_log) & (seen | confirmed | checked)
    uere, ci, src, nf = {}, {}, {}, {}
    weak: list[str] = []
    for c in np.flatnonzero(est):
        name = ERROR_CLASSES[c]
        if not identified[c]:
            # neither pins it down: the default, and say so. (The moment alone is no fallback:
            # commuters' back-and-forth trips labelled still make it 7x the truth; measured.)
            weak.append(name)
            continue
        uere[name] = float(u[c])
        half = 1.96 * se[c]
        ci[name] = (float(u[c] * math.exp(-half)), float(u[c] * math.exp(half)))
        src[name] = "estimated"
        nf[name] = int(counts[c])
    powers = {ERROR_CLASSES[c]: float(power[c]) for c in range(n_cls) if power[c] != 1.0 and ERROR_CLASSES[c] in uere}
    note = (f"maximum likelihood jointly with the movement models on {s.a.size} fixes of "
            f"{int((np.diff(s.bounds) > 0).sum())} animal(s), started from "
            + ", ".join(f"{k}: {v}" for k, v in start_from.items()))
    if jumped:
        note += ("; from the resting bouts read as held positions with jumps (not the likelihood) for "
                 + ", ".join(jumped))
    if confirmed.any():
        note += ("; fixes seldom averaged, but the resting bouts' lag-one moment agrees for "
                 + ", ".join(ERROR_CLASSES[c] for c in np.flatnonzero(confirmed)))
    if checked.any():
        note += ("; fixes seldom averaged, but the resting bouts read as held positions with jumps agree "
                 "with the likelihood for "
                 + ", ".join(ERROR_CLASSES[c] for c in np.flatnonzero(checked)))
    if weak:
        note += ("; not identified by the data (the likelihood is flat, keeps rising towards "
                 f"{p.error_max_factor:g}x or {p.error_min_factor:g}x the default, lies far above what the "
                 "resting bouts say, or fixes are too far apart for their errors to show), "
                 "defaults used for: " + ", ".join(weak))
    if powers:
        note += "; error grows as HDOP to the power " + ", ".join(f"{v:g} ({k})" for k, v in powers.items())
    return ErrorModel(uere_m=uere, ci_m=ci, source=src, n_fixes=nf, note=note, hdop_power=powers).merged(prior)


# --------------------------------------------------------------------------- python layer


def _fit_attrs(fit: _Fit, k: int, still_share: float, n_fixes: int, ds_max: float = math.inf) -> dict[str, Any]:
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
        # a still regime whose drift the likelihood pushed to the top of its range is a second
        # way of moving, not a rest (see :func:`resting_regime`)
        "still_drift_at_bound": bool(MODELS[fit.model[k]].endswith("+still") and fit.ds[k] >= ds_max * (1 - 1e-6)),
        "still_share": still_share,
        "loglik": float(fit.loglik[k]),
        "bic": {m: (None if not np.isfinite(fit.bic[k, i]) else float(fit.bic[k, i])) for i, m in enumerate(MODELS)},
        "n_fixes": n_fixes,
    }


def _params(params: SmoothParams | None, overrides: dict[str, Any]) -> SmoothParams:
    p = params if params is not None else SmoothParams()
    if overrides:
        known = {f.name for f in fields(SmoothParams)}
        bad = set(overrides) - known
        if bad:
            raise TypeError(f"unknown smoothing parameter(s): {sorted(bad)}")
        p = replace(p, **overrides)
    for name in ("error_switching_classes", "error_jump_classes"):
        bad = sorted(set(getattr(p, name)) - set(ERROR_CLASSES))
        if bad:  # a misspelt class would silently switch the method off
            raise TelemetryError(f"parameter smooth.{name}: unknown error class(es) {', '.join(bad)}; "
                                 f"the classes are {', '.join(ERROR_CLASSES)}")
    return p


def _defaults(p: SmoothParams) -> ErrorModel:
    return default_error_model(p.uere_3d_m, p.uere_2d_m, p.uere_unknown_m, p.argos_error_m)


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


def measurement_sigma_m(df: pd.DataFrame, params: SmoothParams | None = None, *,
                        error_model: ErrorModel | None = None, **overrides: Any) -> np.ndarray:
    """Per-fix 1-σ error per axis (metres) under an error model (default: the configured defaults).

    Parameters
    ----------
    df : DataFrame
        Canonical fix table (uses ``fix_type``, ``hdop``, ``argos_lc`` when present).
    params : SmoothParams, optional
    error_model : ErrorModel, optional
        E.g. a calibration or ``tracks.attrs["error_model"]`` of processed tracks; classes it
        lacks take the defaults.
    **overrides
        Any :class:`SmoothParams` field, e.g. ``uere_3d_m=8.0``.

    Examples
    --------
    >>> df = pd.DataFrame({"fix_type": ["3D", "2D", None], "hdop": [1.5, 2.0, 1.0]})
    >>> measurement_sigma_m(df, uere_3d_m=8.0, uere_2d_m=25.0, uere_unknown_m=15.0).tolist()
    [12.0, 50.0, 15.0]
    """
    p = _params(params, overrides)
    model = _defaults(p) if error_model is None else error_model.merged(_defaults(p))
    codes, factor = error_classes(df)
    return model.sigma_m(codes, factor, p.min_sigma_m)


def smooth(df: pd.DataFrame, params: SmoothParams | None = None, *, error_model: ErrorModel | None = None,
           models: dict[str, dict[str, Any]] | None = None, **overrides: Any) -> pd.DataFrame:
    """Smooth every animal's track with its own movement model and the collars' estimated error.

    Parameters
    ----------
    df : DataFrame
        Canonical fix table (``animal_id, time, lon, lat, fix_type, hdop, argos_lc, flag``;
        optional ``segment_id``). Rows may be in any order.
    params : SmoothParams, optional
    error_model : ErrorModel, optional
        A calibration (:func:`telemetry.trajectory.error_model.calibrate`), or the model of an
        earlier run; its classes other than defaults are used as given, the others estimated
        (or defaulted) as without one.
    models : dict, optional
        ``attrs["smooth"]`` of an earlier run: each animal keeps its fitted movement model and
        only the smoothing is redone (e.g. after more fixes were flagged); animals it lacks
        are fitted.
    **overrides
        Any :class:`SmoothParams` field, e.g. ``tau_grid_s=(600.0,)``, ``estimate_error=False``.

    Returns
    -------
    DataFrame
        A copy of ``df`` (same rows, same order) with ``lon_s``, ``lat_s`` (degrees WGS84),
        ``se_m``, ``sigma_m`` (m per axis), ``p_still`` and ``resid_chi2`` (see the module
        docstring). Unusable rows get NaN. ``out.attrs["smooth"]`` holds per animal the model
        and its parameters (``model``, ``tau_s``, ``speed_sd_ms`` = ``sqrt(q)``,
        ``diffusion_m2s`` (the position's long-run diffusion ``2 q tau``), ``still_diffusion_m2s``,
        ``still_drift_at_bound`` (see :func:`resting_regime`), ``still_share``, ``loglik``, ``bic``
        per candidate model, ``n_fixes``), ``out.attrs["error_model"]``
        the UERE table (:meth:`ErrorModel.to_dict`).

    Examples
    --------
    >>> out = smooth(fixes)  # doctest: +SKIP
    >>> out.attrs["error_model"]["3D"]  # doctest: +SKIP
    {'uere_m': 4.1, 'ci_low_m': 3.9, 'ci_high_m': 4.3, 'source': 'estimated', 'n_fixes': 5123}
    """
    p = _params(params, overrides)
    out = df.copy(deep=False)  # copy-on-write: new columns only, the input's stay shared
    n = len(df)
    cols = {c: np.full(n, np.nan) for c in SMOOTHED_COLUMNS}
    usable = _usable(df) if n else np.zeros(0, bool)
    d = _prepare(df, p, usable) if n else None
    defaults = _defaults(p)
    model = defaults if error_model is None else error_model.merged(defaults)
    attrs: dict[str, dict[str, Any]] = {}
    if d is not None:
        model = _estimate_for(df, d, p, model)
        sigma = model.sigma_m(d.cls, d.factor, p.min_sigma_m)
        r = sigma**2
        known = _fit_from_attrs(d, r, models or {}, p)
        if known is not None and known.fitted.all():
            fit = known
        else:
            # the models are chosen on each animal's first stretch (a few hundred fixes tell
            # them apart) and their scales and still drift re-estimated on all its fixes
            sub = _subset_rows(df, p, _head_rows(d, p.model_fit_fixes))
            fit = _refine(d, r, _fit_models(sub, model.sigma_m(sub.cls, sub.factor, p.min_sigma_m) ** 2, p), p)
            if known is not None:
                fit = _take(fit, known, known.fitted)
        stay = np.zeros(d.a.size, bool)
        if p.estimate_error or error_model is not None:
            # (estimation off and no model given: the configured UERE is the caller's statement)
            stay = _unidentified_fixes(d, model, p)
            fit.w = np.where(_unidentified_steps(d, stay), 0.0, fit.w)
        tr = fit.table(d)  # once: the three smoothing passes below share it
        tr[:, 7] = _exposure(d, r, (fit.w > 0) & (fit.om[d.a] > 0), fit.ds, p)
        sx, sy, var = fit.smooth(d, r, tr)
        sx, sy, var = _release_misfits(d, r, fit, sx, sy, var, p, tr)
        # the leave-one-out identity holds for one Gaussian smoother, not for the hedge's mixture
        # (whose variance can exceed the fix's own: r - P < 0)
        chi2 = _resid_chi2(d, r, sx, sy, var)
        sx, sy, var = _hedge(d, r, fit, sx, sy, var, p, tr)
        # a fix whose error the data could not identify stays where it is, with its assumed error
        var = np.where(stay, r, var)
        lon_s, lat_s = d.to_lonlat(sx, sy)
        if stay.any():  # (its own coordinates, not their round trip through the projection)
            lon_s = np.where(stay, df["lon"].to_numpy(dtype=float, na_value=np.nan)[d.rows], lon_s)
            lat_s = np.where(stay, df["lat"].to_numpy(dtype=float, na_value=np.nan)[d.rows], lat_s)
        cols["lon_s"][d.rows] = lon_s
        cols["lat_s"][d.rows] = lat_s
        cols["se_m"][d.rows] = np.sqrt(np.maximum(var, 0.0))
        cols["sigma_m"][d.rows] = sigma
        w_used = fit.w * fit.om[d.a]
        cols["p_still"][d.rows] = np.where(d.start, np.nan, fit.p_still * fit.om[d.a])
        cols["resid_chi2"][d.rows] = chi2
        n_fix = np.diff(d.bounds)
        steps = np.maximum(n_fix - 1, 1)
        still_share = np.bincount(d.a, weights=np.where(d.start, 0.0, w_used), minlength=d.n_animals) / steps
        for k, name in enumerate(d.names):
            attrs[str(name)] = _fit_attrs(fit, k, float(still_share[k]), int(n_fix[k]), p.still_diffusion_bounds_m2s[1])
    for name, values in cols.items():
        out[name] = values
    present = [ERROR_CLASSES[c] for c in (np.unique(d.cls) if d is not None else [])]
    out.attrs = {**df.attrs, "smooth": SharedAttr(attrs), "error_model": SharedAttr(model.to_dict(present))}
    return out


def predict(tracks: pd.DataFrame, query: pd.DataFrame, params: SmoothParams | None = None) -> pd.DataFrame:
    """Positions at other times from smoothed tracks: the smoother's estimate given every fix.

    Parameters
    ----------
    tracks : DataFrame
        Output of :func:`smooth` (or :func:`telemetry.process`): its ``attrs["smooth"]`` holds
        each animal's fitted model and ``sigma_m`` each fix's error.
    query : DataFrame
        ``animal_id`` and ``time`` (UTC) of the wanted positions.
    params : SmoothParams, optional
        Only ``max_gap_h`` is used (where the filter restarts, as in :func:`smooth`).

    Returns
    -------
    DataFrame
        ``query``'s rows in its order with ``lon``, ``lat`` (degrees) and ``se_m`` (m per axis);
        NaN for an animal without a fitted model and for times outside the span of a segment
        (no extrapolation).
    """
    p = _params(params, {})
    fits = tracks.attrs.get("smooth", {})
    res = query[["animal_id", "time"]].copy()
    res["lon"] = np.nan
    res["lat"] = np.nan
    res["se_m"] = np.nan
    usable = _usable(tracks) & np.isfinite(tracks["sigma_m"].to_numpy(dtype=float, na_value=np.nan))
    d = _prepare(tracks, p, usable)
    if d is None or not len(query):
        return res
    name_to_code = {str(nm): k for k, nm in enumerate(d.names)}
    qa = np.array([name_to_code.get(str(v), -1) for v in query["animal_id"].astype(object)], dtype=np.int64)
    qt = query["time"].to_numpy(dtype="datetime64[ns]").view(np.int64) / 1e9
    ok_q = (qa >= 0) & query["time"].notna().to_numpy()
    # segment of each query: the one whose time span holds it
    seg_id = np.cumsum(d.start) - 1
    first_t = d.t_s[d.start]
    last_idx = np.r_[np.flatnonzero(d.start)[1:] - 1, d.a.size - 1]
    last_t = d.t_s[last_idx]
    seg_animal = d.a[d.start]
    key_seg = seg_animal.astype(float) * 1e11 + first_t
    key_q = qa.astype(float) * 1e11 + qt
    s_idx = np.searchsorted(key_seg, key_q, side="right") - 1
    inside = ok_q & (s_idx >= 0)
    s_idx = np.clip(s_idx, 0, None)
    inside &= (seg_animal[s_idx] == qa) & (qt <= last_t[s_idx])
    qi = np.flatnonzero(inside)
    # merge query rows (r = inf: predict only) into the fix rows, in (segment, time) order
    seg_all = np.r_[seg_id, s_idx[qi]]
    t_all = np.r_[d.t_s, qt[qi]]
    is_q = np.r_[np.zeros(d.a.size, bool), np.ones(qi.size, bool)]
    order = np.lexsort((is_q, t_all, seg_all))
    seg_o, t_o, isq_o = seg_all[order], t_all[order], is_q[order]
    a_o = np.r_[d.a, qa[qi]][order]
    x_o = np.r_[d.x, np.zeros(qi.size)][order]
    y_o = np.r_[d.y, np.zeros(qi.size)][order]
    r_o = np.r_[tracks["sigma_m"].to_numpy(dtype=float)[d.rows] ** 2, np.full(qi.size, np.inf)][order]
    start_o = np.r_[True, seg_o[1:] != seg_o[:-1]]
    dt_o = np.r_[0.0, np.diff(t_o)]
    # still weight: the step's P(still) applies to both parts of a step that a query splits
    p_still = tracks["p_still"].to_numpy(dtype=float, na_value=np.nan)[d.rows] if "p_still" in tracks else None
    w_fix = np.nan_to_num(p_still, nan=0.0) if p_still is not None else np.zeros(d.a.size)
    w_all = np.r_[w_fix, np.zeros(qi.size)][order]
    # a query takes the weight of the next fix's step (the step it lies in)
    nxt = np.where(~isq_o, np.arange(order.size), order.size)
    nxt = np.minimum.accumulate(nxt[::-1])[::-1]
    has_next = nxt < order.size
    w_o = np.where(isq_o & has_next, w_all[np.minimum(nxt, order.size - 1)], w_all)
    bounds = np.searchsorted(a_o, np.arange(d.n_animals + 1)).astype(np.int64)
    get = [fits.get(str(nm), {}) for nm in d.names]
    kind = np.array([OUF if g.get("kind") == "OUF" else IOU for g in get], dtype=np.int64)
    tau_p = np.array([g.get("tau_position_s", math.inf) for g in get], dtype=float)
    tau_v = np.array([g.get("tau_velocity_s", np.nan) for g in get], dtype=float)
    sc = np.array([g.get("scale", np.nan) for g in get], dtype=float)
    om = has_still_regime(get).astype(float)
    ds = np.array([g.get("still_diffusion_m2s", 0.0) for g in get], dtype=float)
    good = np.isfinite(tau_v) & np.isfinite(sc) & (np.isfinite(tau_p) | (kind == IOU))
    tau_v = np.where(good, tau_v, 1.0)
    tau_p = np.where(good, tau_p, math.inf)
    sc = np.where(good, sc, 1.0)
    # the still drift stays Brownian here (the smoother's jumps at rest, tried in this path too at
    # stop 27, moved no real hold-out: buffalo 241.49 m either way, bats 68.91)
    tr = transitions(dt_o, bounds, kind, tau_p, tau_v)
    sx, sy, var = smooth_all(tr, x_o, y_o, r_o, start_o, w_o, bounds, sc, om, ds)
    sel = np.flatnonzero(isq_o)
    back = order[sel] - d.a.size  # index into qi
    lon, lat = d.to_lonlat(sx[sel], sy[sel], a_o[sel])
    animal_ok = good[a_o[sel]]
    target = qi[back]
    res.iloc[target, res.columns.get_loc("lon")] = np.where(animal_ok, lon, np.nan)
    res.iloc[target, res.columns.get_loc("lat")] = np.where(animal_ok, lat, np.nan)
    res.iloc[target, res.columns.get_loc("se_m")] = np.where(animal_ok, np.sqrt(np.maximum(var[sel], 0)), np.nan)
    return res
