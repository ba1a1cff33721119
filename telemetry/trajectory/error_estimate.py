"""The collars' error model estimated from their own tracks (point 1 of
:mod:`telemetry.trajectory.smooth`; Fleming et al. 2020).

:func:`estimate_error_model` estimates the UERE of every error class the prior (a calibration,
or the configured defaults) leaves at ``source = "default"``: by maximum likelihood jointly
with each animal's movement model (:mod:`telemetry.trajectory.movement_fit`), on up to
``error_fit_max_fixes`` fixes (the first stretch of each animal), started from the resting
bouts' lag-one moment (:func:`_moment_uere`) and checked against the resting bouts' own
readings (the moment's bound; the held-position-and-jumps estimate of
:mod:`telemetry.trajectory.rest_jumps`). A class the data do not identify keeps the default,
and the model says why. :class:`FitMemo` lets a track store skip a fit it has made before.

Layer: trajectory; imports :mod:`telemetry.trajectory.movement_fit`,
:mod:`telemetry.trajectory.rest_jumps` and the modules below them; the smoother imports it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from telemetry.config import SmoothParams
from telemetry.trajectory.error_model import ERROR_CLASSES, MIXED_CLASS_NOTE, ErrorModel, default_error_model
from telemetry.trajectory.kalman import loglik_lanes, switching_loglik_lanes
from telemetry.trajectory.movement_fit import (
    Fit,
    Rows,
    fit_models,
    head_mask,
    prepare_rows,
    smooth_params,
    still_labels,
    subset_rows,
    usable_rows,
    window_max,
)
from telemetry.trajectory.rest_jumps import jump_fit


def _error_rows(d: Rows, p: SmoothParams) -> np.ndarray:
    """Positions of the rows the error model is estimated on: the head of each animal
    (:func:`telemetry.trajectory.movement_fit.head_rows`), of every k-th animal (in id order) so that at most
    ``error_fit_max_fixes`` rows are used; the UERE is a property of the collars, pooled."""
    n_fix = np.diff(d.bounds)
    # few animals: longer stretches of each, up to the budget
    per_animal = max(p.model_fit_fixes, p.error_fit_max_fixes // max(d.n_animals, 1))
    step = max(1, math.ceil(np.minimum(n_fix, per_animal).sum() / max(p.error_fit_max_fixes, 1)))
    pick = np.zeros(d.n_animals, bool)
    pick[::step] = True
    return d.rows[head_mask(d, per_animal) & pick[d.a]]


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
    p = smooth_params(params, overrides)
    model = default_errors(p) if prior is None else prior.merged(default_errors(p))
    d = prepare_rows(df, p, usable_rows(df)) if len(df) else None
    return estimate_for(df, d, p, model, memo)


def estimate_for(df: pd.DataFrame, d: Rows | None, p: SmoothParams, model: ErrorModel,
                 memo: FitMemo | None = None) -> ErrorModel:
    """:func:`estimate_error_model` given ``df``'s usable rows prepared (``d``)."""
    todo = np.array([model.source.get(c) == "default" for c in ERROR_CLASSES])
    if d is None or not p.estimate_error or not todo.any():
        return model
    s = subset_rows(df, p, _error_rows(d, p))
    if s is None:
        return model
    if memo is None:
        return _estimate_error(s, p, model, todo)
    key = _fit_key(s, p, model, todo)
    if key not in memo.known:
        memo.known[key] = _estimate_error(s, p, model, todo).exact()
    memo.used[key] = memo.known[key]
    return ErrorModel.from_exact(memo.known[key])  # (the same either way: exact() round-trips)


def _fit_key(s: Rows, p: SmoothParams, model: ErrorModel, todo: np.ndarray) -> str:
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


def _moment_uere(d: Rows, r: np.ndarray, p: SmoothParams,
                 w: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Starting UERE per class from resting bouts: the lag-one moment of the displacements.

    Within a still stretch, consecutive displacements share the middle fix's error with
    opposite signs, so ``E[d_i · d_{i+1}] = -2 σ_i²`` (two axes) whatever slow drift the animal
    has; hence ``UERE_c² = -Σ d_i·d_{i+1} / (2 Σ h_i²)`` over the pairs whose middle fix is in
    class ``c``. Steps are labelled still by the step HMM (:mod:`telemetry.trajectory.regimes`)
    under ``r``, or by ``w``, its ``P(still)`` per row when the caller already has it. Returns the estimate (NaN where it is not positive or rests on fewer than
    ``error_min_fixes`` pairs), the number of pairs per class and the standard error of the
    log estimate (delta method on the ratio ``Σ prod / Σ h²``, neighbouring pairs' shared
    displacement counted with a lag-one Bartlett term), and the one-sided upper bound of the UERE
    from the same moment (``error_moment_bound_z`` standard errors), which stands even where the estimate itself is not positive
    (the rests' displacements show no error that large); inf where too few pairs or where the
    covariance is positive beyond that bound (the steps are moves, not rests).
    """
    if w is None:
        w, _ = still_labels(d, r, p)
    i = _held_pairs((w > 0.5) & ~d.start)
    u2, var_u2, pairs = _lag_one(d, i)
    u, se_log = _moment_reading(u2, var_u2, pairs, p)
    with np.errstate(invalid="ignore"):
        top = u2 + p.error_moment_bound_z * np.sqrt(var_u2)
    # a lag-one covariance that is positive beyond doubt shows moves carried on from step to step
    # (slow grazing labelled still): such steps are no held rests and bound nothing
    hi = np.where((pairs >= p.error_min_fixes) & (top > 0), np.sqrt(np.where(top > 0, top, 0.0)), np.inf)
    return u, pairs, se_log, hi


def _moment_reading(u2: np.ndarray, var_u2: np.ndarray, pairs: np.ndarray,
                    p: SmoothParams) -> tuple[np.ndarray, np.ndarray]:
    """A lag-one moment (:func:`_lag_one`: ``UERE²`` per class, m², its variance and the number of
    pairs) as a UERE (m) and the standard error of its log (delta method), NaN and inf where it
    rests on fewer than ``error_min_fixes`` pairs or is not positive.

    >>> u, se = _moment_reading(np.array([100.0, -4.0, 100.0]), np.array([400.0, 1.0, 400.0]),
    ...                         np.array([500, 500, 3]), SmoothParams())
    >>> u.tolist(), se.tolist()
    ([10.0, nan, nan], [0.1, inf, inf])
    """
    ok = (pairs >= p.error_min_fixes) & (u2 > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, np.sqrt(u2), np.nan), np.where(ok, 0.5 * np.sqrt(var_u2) / u2, np.inf)


def _lag_prod(d: Rows, i: np.ndarray) -> np.ndarray:
    """``-d_i·d_{i+1} / 2`` (m² per axis) for the fixes ``i``: the lag-one product of the
    displacements into and out of each, whose expectation at rest is the fix's error variance."""
    return -((d.x[i] - d.x[i - 1]) * (d.x[i + 1] - d.x[i]) + (d.y[i] - d.y[i - 1]) * (d.y[i + 1] - d.y[i])) / 2.0


def _lag_one(d: Rows, i: np.ndarray, offset: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The lag-one moment of the displacements around the fixes ``i`` (rows of ``d``, each with
    a row before and after it): per class of the middle fix, ``UERE² = Σ (p_i - offset) / Σ h_i²``
    (``p_i`` from :func:`_lag_prod`; ``offset``, m², a part known not to be error), its variance
    (neighbouring pairs' shared displacement counted with a lag-one Bartlett term) and the
    number of pairs. See :func:`_moment_uere`."""
    prod = _lag_prod(d, i) - offset
    n_cls = len(ERROR_CLASSES)
    num = np.bincount(d.cls[i], prod, minlength=n_cls)
    den = np.bincount(d.cls[i], d.factor[i] ** 2, minlength=n_cls)
    pairs = np.bincount(d.cls[i], minlength=n_cls)
    with np.errstate(invalid="ignore", divide="ignore"):
        u2 = num / den
        e = prod - u2[d.cls[i]] * d.factor[i] ** 2  # each pair's residual from the ratio
        adj = np.r_[i[1:] == i[:-1] + 1, False]  # pairs k and k+1 share a displacement
        cross = np.bincount(d.cls[i][adj], e[adj] * e[np.flatnonzero(adj) + 1], minlength=n_cls) if i.size else 0.0
        var_u2 = np.maximum(np.bincount(d.cls[i], e * e, minlength=n_cls) + cross, 0.0) / den**2
    return u2, var_u2, pairs


def _bracket_uere(d: Rows, r: np.ndarray, w: np.ndarray, control: np.ndarray,
                  p: SmoothParams) -> tuple[np.ndarray, np.ndarray]:
    """UERE per class from the fixes between two resting neighbours, whatever their own error.

    :func:`_moment_uere` reads the fixes whose step in and step out are both labelled still. A
    fix far off in a rest (a heavy-tailed 2D error) makes those two steps look like moves, so
    the fixes that carry most of a heavy-tailed class's variance are left out, and the scale
    comes out low; so does the likelihood that takes the same labels. Here the middle fix ``i``
    is chosen by its neighbours alone: the step into fix ``i-1`` and the step out of fix ``i+1``
    labelled still (``w``: ``P(still)`` of the step into each row), and the two neighbours
    within their errors of each other (``error_bracket_span_chi2``). Its own error does not
    enter the choice, so the lag-one moment (:func:`_lag_one`) reads all of it.

    - A middle fix farther from its neighbours' mean than ``error_bracket_trim`` times its
      expected spread under ``r`` (each row's error variance per axis, m², at the current
      estimate) is an excursion between two fixes at rest and is left out. The trim is not
      redone at the scale read: wider, it lets excursions in (``validate.py --fuzz 40 --seed
      2468``, setting 35: 2D read at 0.94 of the truth, redone 1.28).
    - Shorter excursions stay in and add a term of their own (m², whatever the middle fix's
      class: an animal at a kill walks to the carcass and back whether its collar gets a 3D or
      a 2D fix). The ``control`` classes (bool per class; light-tailed, their error known: 3D)
      measure it as the mean excess of their lag-one products over their error variance in
      ``r``, and it is taken off every class's moment; with fewer than ``error_min_fixes``
      control fixes nothing is read. ``tests/alertsim.py``'s kill sites (the bench's second
      generator): the bracketed 3D fixes read 19.3 m for a 5 m collar, and the 2D fixes 17.0 m
      where 14.2 m covers their errors at 95 %; with the term taken off, 14.4 m.
    - Neither test allows for drift at rest: the step HMM's "still" regime of an animal that
      never rests is slow movement (its drift at the top of its range, 8-10 m²/s for simulated
      commuters), and with it in the spread their trips between patches passed for 2D errors
      (``validate.py``'s commuters at 4 h: 2D read at 3.3-3.5 times the truth, every fix
      smoothed 1.8 times farther from it than raw).

    Returns per class the UERE (NaN where fewer than ``error_min_fixes`` fixes, or the moment is
    not positive) and the standard error of its log (inf there).

    A resting collar whose 2D fixes err as a Student-t of 3 d.o.f. (per axis 20 m at HDOP 1,
    the variance stated; these draws' own RMS is 19.6 m): the held rests read the bulk (14.7 m),
    the bracketed fixes all but the farthest few (17.5 m; a Student-t's central 95 % is that of
    a Gaussian 0.94 times as wide, so this covers it).

    >>> rng = np.random.default_rng(3)
    >>> n = 6000; h = rng.lognormal(0.5, 0.3, n); is2 = rng.random(n) < 0.3
    >>> e = np.where(is2[:, None], 20.0 * rng.standard_t(3, (n, 2)) / np.sqrt(3.0), 8.0 * rng.normal(size=(n, 2)))
    >>> xy = e * h[:, None]
    >>> cls = np.where(is2, ERROR_CLASSES.index("2D"), ERROR_CLASSES.index("3D"))
    >>> d = Rows(np.arange(n), np.zeros(n, np.int64), np.array(["a"]), np.array([0, n]), np.full(n, 3600.0),
    ...          np.arange(n) * 3600.0, np.r_[True, np.zeros(n - 1, bool)], xy[:, 0], xy[:, 1], None, cls, h,
    ...          np.zeros(1), np.zeros(1))
    >>> r = np.where(is2, 13.0, 8.0) ** 2 * h**2               # the 2D error read low, at 13 m
    >>> still = np.hypot(*np.diff(xy, axis=0, prepend=xy[:1]).T) < 4.0 * np.sqrt(r + np.r_[r[:1], r[:-1]])
    >>> held = _moment_uere(d, r, SmoothParams(), w=still.astype(float))[0]
    >>> u, se = _bracket_uere(d, r, np.ones(n), _class_mask(("3D",)), SmoothParams())
    >>> c2 = ERROR_CLASSES.index("2D")
    >>> bool(held[c2] < 15.5), bool(17.0 < u[c2] < 20.0), bool(se[c2] < 0.1)
    (True, True, True)
    """
    st = (w > 0.5) & ~d.start
    i = np.arange(2, st.size - 2)
    i = i[st[i - 1] & st[i + 2] & ~d.start[i] & ~d.start[i + 1]]
    dx, dy = d.x[i + 1] - d.x[i - 1], d.y[i + 1] - d.y[i - 1]
    i = i[dx * dx + dy * dy < p.error_bracket_span_chi2 * (r[i - 1] + r[i + 1])]
    # (the middle's expected offset from its neighbours' mean: its error and a quarter of theirs)
    mx, my = d.x[i] - 0.5 * (d.x[i - 1] + d.x[i + 1]), d.y[i] - 0.5 * (d.y[i - 1] + d.y[i + 1])
    i = i[mx * mx + my * my < p.error_bracket_trim**2 * (r[i] + 0.25 * (r[i - 1] + r[i + 1]))]
    n_cls = len(ERROR_CLASSES)
    ctl = control[d.cls[i]]
    if ctl.sum() < p.error_min_fixes:
        return np.full(n_cls, np.nan), np.full(n_cls, np.inf)
    excess = float(np.mean(_lag_prod(d, i[ctl]) - r[i[ctl]]))
    return _moment_reading(*_lag_one(d, i, excess), p)


def _interval(u: np.ndarray, se: np.ndarray, readings: list[tuple[np.ndarray, np.ndarray]],
              max_se: float) -> tuple[np.ndarray, np.ndarray]:
    """Per class, the 95 % interval ``u × exp(±1.96 se)`` widened to hold the interval of every
    other reading ``(value, se of its log)`` that is firm (se below ``max_se``; NaN values and
    infinite se are no reading).

    >>> u, se = np.array([5.0, 10.0]), np.array([0.1, 0.1])
    >>> lo, hi = _interval(u, se, [(np.array([13.0, np.nan]), np.array([0.05, np.inf])),
    ...                            (np.array([4.0, 11.0]), np.array([0.5, 0.05]))], 0.25)
    >>> np.round(lo, 2).tolist(), np.round(hi, 2).tolist()   # 13 m widens the first; 4 m is loose
    ([4.11, 8.22], [14.34, 12.17])
    >>> _interval(np.array([10.0]), np.array([np.inf]), [], 0.25)   # not identified: no warning
    (array([0.]), array([inf]))
    """
    with np.errstate(over="ignore", invalid="ignore"):  # (a class not identified: se inf, no interval)
        lo, hi = u * np.exp(-1.96 * se), u * np.exp(1.96 * se)
        for x, sx in readings:
            firm = np.isfinite(x) & (x > 0) & (sx < max_se)
            lo = np.where(firm, np.minimum(lo, x * np.exp(-1.96 * np.where(firm, sx, 0.0))), lo)
            hi = np.where(firm, np.maximum(hi, x * np.exp(1.96 * np.where(firm, sx, 0.0))), hi)
    return lo, hi


def _larger_bound(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The larger of two upper bounds per class where both are finite, the finite one where one is.

    An infinite bound is no bound (:func:`_moment_uere`: too few held rests, or moves among
    them), so a finite one read under other labels stands.

    >>> _larger_bound(np.array([1.0, np.inf, 2.0, np.inf]), np.array([3.0, 4.0, np.inf, np.inf])).tolist()
    [3.0, 4.0, 2.0, inf]
    """
    both = np.isfinite(a) & np.isfinite(b)
    return np.where(both, np.maximum(a, b), np.where(np.isfinite(a), a, b))


def _jump_uere(d: Rows, r: np.ndarray, p: SmoothParams, iters: int = 30, among: np.ndarray | None = None,
               w: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """UERE per class from the resting bouts read as held positions with occasional jumps.

    The still steps (labelled by the step HMM under ``r``) are each a difference of two fixes'
    errors, plus a slow drift ``ds0 dt`` and, at a rate, a jump of variance ``J`` (bed shifts; the
    EM of :func:`telemetry.trajectory.rest_jumps.jump_em`). Here the errors' scale is a parameter
    too: a multiplier ``m_c`` of each class's variance ``r``, shared by all animals, fitted with
    each animal's ``ds0`` by weighted least squares on the no-jump part of the steps (EM weights
    ``(1 - P(jump)) / v0²``), the jumps' size and rate per animal as in
    :func:`telemetry.trajectory.rest_jumps.jump_em`; an animal keeps its jumps only where they raise
    its log-likelihood by more than ``log n`` (BIC for their two parameters), as a Gaussian error's
    tails otherwise pass for jumps and the scale comes out low (held rests, 15 m: 7 % low without
    the test, 4 % with it). A Gaussian drift spread over every still step (the likelihood's still
    regime) takes the error's share of a rest where the animal mostly holds still and sometimes
    shifts; the jumps do not. ``among`` (bool per class): only the steps between two fixes of
    these classes (a step to a fix of a heavy-tailed class carries that fix's far-off errors,
    which read as jumps and pull the Gaussian part, and so the scale, down). ``w``: the step
    HMM's ``P(still)`` under ``r`` where the caller has it (else labelled here). Returns per class
    the factor ``sqrt(m_c)`` on the UERE behind ``r`` (NaN where fewer than ``error_min_fixes``
    steps touch the class) and the standard error of its log (sandwich, steps independent).

    >>> rng = np.random.default_rng(2)
    >>> n = 3000; t = np.arange(n) * 3600.0; h = rng.lognormal(0.3, 0.35, n)
    >>> shift = np.cumsum((rng.random(n) < 0.1)[:, None] * rng.normal(0, 30, (n, 2)), axis=0)
    >>> xy = shift + rng.normal(size=(n, 2)) * (3.0 * h)[:, None]          # UERE 3 m, at rest
    >>> d = Rows(np.arange(n), np.zeros(n, np.int64), np.array(["a"]), np.array([0, n]),
    ...           np.r_[0.0, np.diff(t)], t, np.r_[True, np.zeros(n - 1, bool)], xy[:, 0], xy[:, 1],
    ...           None, np.zeros(n, np.int64), h, np.zeros(1), np.zeros(1))
    >>> m, se = _jump_uere(d, (2.0 * h) ** 2, SmoothParams())            # started from 2 m
    >>> bool(abs(2.0 * m[0] - 3.0) < 0.2), bool(se[0] < 0.05)
    (True, True)
    """
    n_cls = len(ERROR_CLASSES)
    k, se_log = np.full(n_cls, np.nan), np.full(n_cls, np.inf)
    if w is None:
        w, _ = still_labels(d, r, p)
    i = np.flatnonzero((w > 0.5) & ~d.start)
    if among is not None:
        i = i[among[d.cls[i]] & among[d.cls[i - 1]]]
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
    m, ds0, _, _, g, v0, ll1 = jump_fit(d2, x_cls, dt, grp, n, iters, np.ones(present.size), np.ones(n, bool), True)
    # jumps only where they earn their two parameters (BIC per animal): a Gaussian error's
    # tails otherwise pass for jumps and the scale comes out low (held rests, 15 m: -7 %)
    ll0 = jump_fit(d2, x_cls, dt, grp, n, 10, m, np.zeros(n, bool), True)[-1]  # (least squares alone: fast)
    jumps = ll1 - ll0 > np.log(np.maximum(np.bincount(grp, minlength=n), 2))
    if not jumps.all():
        m, ds0, _, _, g, v0, _ = jump_fit(d2, x_cls, dt, grp, n, iters, m, jumps, True)
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


def _held_pairs(still: np.ndarray) -> np.ndarray:
    """Rows ``i`` whose step in and step out are both still (``still``: bool per row, the step
    into the row; False at a segment's first row): the middle fix of a held rest, three fixes
    at one place. The lag-one moment reads these pairs; :func:`_held_steps` keeps their steps.

    >>> _held_pairs(np.array([0, 1, 0, 1, 1, 1, 0, 1, 1], bool)).tolist()
    [3, 4, 7]
    """
    return np.flatnonzero(still[1:-1] & still[2:]) + 1 if still.size > 2 else np.zeros(0, np.int64)


def _held_steps(d: Rows, w: np.ndarray) -> np.ndarray:
    """``w`` (per row of ``d``: the still weight of the step into the row) kept on the still steps
    of held rests (:func:`_held_pairs`), 0.0 on isolated ones.

    >>> from types import SimpleNamespace
    >>> d = SimpleNamespace(start=np.array([1, 0, 0, 0, 0, 0, 1, 0, 0], bool))
    >>> _held_steps(d, np.array([0, 1, 0, 1, 1, 0, 0, 1, 1.0])).tolist()
    [0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0]
    """
    i = _held_pairs((w > 0) & ~d.start)
    keep = np.zeros(w.size, bool)
    keep[i] = keep[i + 1] = True
    return np.where(keep, w, 0.0)


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


def _profile_ll(s: Rows, r: np.ndarray, fit: Fit, sel: np.ndarray, logk: np.ndarray,
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
    logq, _ = window_max(lambda u: ll(np.exp(u), ds), logq0 - 0.5, logq0 + 0.5, 6)
    q = np.exp(logq)
    still = fit.om > 0
    if still.any():
        logds0 = np.log(ds)
        logds, _ = window_max(lambda u: ll(q, np.exp(u)), np.maximum(logds0 - 2.0, ds_lo),
                                 np.minimum(logds0 + 2.0, ds_hi), 8)
        ds = np.where(still[:, None], np.exp(logds), ds)
    out = ll(q, ds)
    return np.sum(np.where(fit.fitted[:, None] & np.isfinite(out), out, 0.0), axis=0)


def _search_scale(s: Rows, r: np.ndarray, fit: Fit, sel: np.ndarray, p: SmoothParams,
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


def _search_power(s: Rows, u: np.ndarray, power: np.ndarray, fit: Fit, c: int, p: SmoothParams) -> float:
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


def _estimate_error(s: Rows, p: SmoothParams, prior: ErrorModel, todo: np.ndarray) -> ErrorModel:
    """Maximum-likelihood UERE of the classes in ``todo`` (bool per class) with enough fixes.

    On ``s`` (the rows of :func:`_error_rows`): start from the lag-one moment estimate of the resting bouts
    (:func:`_moment_uere`; the prior where there is none), fit the movement models, then
    maximise the profile likelihood over a common scale of the estimated classes and over each
    class in turn (:func:`_search_scale`), take the resting bouts' held-position-and-jumps
    estimate instead where it is firm (:func:`_jump_uere`; ``error_jump_classes``), and refit.
    Where the smoother seldom averages fixes (``error_min_informative``; fixes that only an
    isolated still step ties together do not count, ``error_informative_held``) a class keeps its
    estimate only if the resting bouts agree with the likelihood's (their lag-one moment or
    their held-position-and-jumps estimate, within the two intervals; where the likelihood sums
    over the regimes, ``error_switching_classes``, the latter may agree with it or with the
    likelihood that takes the step HMM's labels), both readings are firm
    (``error_check_max_se_log``; the moment ``error_moment_max_se_log``) and the estimate is
    within the bound the lag-one moment puts on the error (``error_moment_bound_z``), a bound it
    must be able to put
    (``error_check_needs_bound``); or, for a class whose value the held positions with jumps give,
    the resting bouts' lag-one moment at the estimate's labels agrees with it, both firm at
    ``error_check_max_se_log`` and within the moment's bound (``error_rests_two_ways``); else the
    default. Wherever fixes are averaged or
    not, an estimate more than ``error_moment_clash`` times that bound is not identified, and one
    more than ``error_moment_cap`` times it is capped at it where the rests read the error the same
    two ways (that moment, firm, and the held positions with jumps). The bound
    is read with the still steps labelled at the prior and again at the estimate, the larger kept
    (``error_bound_at_estimate``; :func:`_larger_bound`).
    The 95 % interval of each class is ``UERE × exp(±1.96 se)``, ``se`` from the curvature of
    its profile (or the sandwich of the resting-bout estimate), widened to hold every other firm
    reading of the class's error with its own interval (``error_interval_readings``).
    """
    n_cls = len(ERROR_CLASSES)
    counts = np.bincount(s.cls, minlength=n_cls)
    est = todo & (counts >= p.error_min_fixes)
    u = prior.values().copy()
    power = np.ones(n_cls)

    def var(uu: np.ndarray) -> np.ndarray:
        return np.maximum(uu[s.cls] ** 2 * s.factor ** (2.0 * power[s.cls]), p.min_sigma_m**2)

    # the still steps labelled under the prior: the moment's start, and the rests' reading under
    # the prior's labels for the interval below (the step HMM's EM is the costly part of each)
    w_prior, _ = still_labels(s, var(u), p)
    start, _, start_se, start_hi = _moment_uere(s, var(u), p, w_prior)
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
            fit = fit_models(s, var(u), p, gate=False)
        elif p.regimes:  # the models stay; only the still steps are labelled afresh
            fit.p_still, fit.hmm = still_labels(s, var(u), p)
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
    rest = np.zeros(n_cls, bool)  # (the classes whose value the rests give)
    u_j, se_j = np.full(n_cls, np.nan), np.full(n_cls, math.inf)  # (the rests' reading, m; see the cap below)
    u_p, se_p = np.full(n_cls, np.nan), np.full(n_cls, math.inf)  # (... with the prior's labels, m)
    both = np.zeros(n_cls, bool)  # (the classes whose rests and likelihood agree: weighed below)
    weighed_u, weighed_se = np.full(n_cls, np.nan), np.full(n_cls, math.inf)
    if est.any() and p.error_jumps and p.regimes:  # (no still regime: no rests to read)
        # (the still steps labelled once for both readings below: the step HMM's EM is the
        # costly part of each)
        w_j, _ = still_labels(s, var(u), p)
        k_j, se_j = _jump_uere(s, var(u), p, w=w_j)
        light = _class_mask(p.error_jump_classes)
        # the value a light class takes from the rests (below): read from the steps between its
        # own fixes only, where that reads higher. A step to a 2D fix carries its heavy tail,
        # read as jumps, and so only pulls the scale down (validate.py --fuzz 40 --seed 2468, half
        # the fixes 2D: 3D 0.77-0.83 of the truth from all still steps, 0.87-0.92 from these);
        # lower, the difference is the fewer steps' noise. Whether the rests are firm or agree
        # with the likelihood is still judged on all the steps: the fewer steps' own interval
        # can be too narrow (--seed 1357, setting 27: rests drifting 22 m per axis between
        # 4-h fixes of a 2.5 m collar, read at 6.8 m with se 0.23 against se 0.36 from all steps)
        k_v, se_v = k_j, se_j
        if light.any() and not light[s.cls].all():
            k_l, se_l = _jump_uere(s, var(u), p, among=light, w=w_j)
            use = light & np.isfinite(k_l) & (k_l > np.nan_to_num(k_j, nan=-np.inf))
            k_v, se_v = np.where(use, k_l, k_j), np.where(use, se_l, se_j)
        u_j = u * k_j
        if p.error_interval_readings:  # the same reading, the still steps labelled under the prior (see the interval)
            k_p, se_p = _jump_uere(s, var(u), p, w=w_prior)
            u_p = u * k_p
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
            u_v = u * np.nan_to_num(k_v, nan=1.0)
            # where the likelihood and the rests agree within their noise, neither shows the other's
            # misfit: the value is then the two readings weighed by their precision (below, once the
            # rests' value has passed the checks; the rests' alone is the noisier where few still
            # steps pin a rest's spread between error and drift)
            both = rest & p.error_rests_weighted & np.isfinite(se) & (se > 0) & _agree(u, se, u_v, se_v)
            with np.errstate(divide="ignore", invalid="ignore"):
                wl, wv = 1.0 / se**2, 1.0 / se_v**2
                weighed_u = np.exp((wl * np.log(u) + wv * np.log(u_v)) / (wl + wv))
                weighed_se = np.minimum(se, se_v)
            u = np.where(rest, u_v, u)
            se = np.where(rest, se_v, se)
            at_edge = at_edge & ~rest
    # where the smoother follows every fix (consecutive fixes far apart next to their error) the
    # likelihood's preference for an error scale is the movement model's misfit, not the error
    informative = 1.0
    m_est, m_se = np.full(n_cls, np.nan), np.full(n_cls, math.inf)  # (the moment at the estimate's labels)
    if est.any():
        fit = fit_models(s, var(u), p)
        # (a still step alone pins its two fixes together whatever their error: counted, the
        # steps labelled still made the error "seen" wherever there were any, moves among them)
        pins = replace(fit, w=_held_steps(s, fit.w)) if p.error_informative_held else fit
        _, _, vv = pins.smooth(s, var(u))
        # pooled over the classes: within a class the share depends on the other classes' errors
        informative = float(np.mean((vv < 0.5 * var(u))[est[s.cls]]))
        # the rests' bound (below) read again with the rests labelled at the estimate: labelled
        # at a prior far above the error, slow moves pass for rests, and a few pairs of them that
        # keep their direction drag the moment (and its bound) below the truth; the larger stands.
        # (fit_models has just labelled them at the estimate: its p_still, unless regimes are off)
        if p.error_bound_at_estimate:
            m_est, _, m_se, m_hi = _moment_uere(s, var(u), p, fit.p_still if p.regimes else None)
            start_hi = _larger_bound(start_hi, m_hi)
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
    # ... and so must the moment be: a loose one agrees with anything in its wide interval (a
    # Brownian walker's steps labelled still read 13.6 m, se 0.37 in log, for a 6 m collar, and
    # confirmed the likelihood's 13.7 m); the held-positions reading below may still confirm
    moment = agree & (start_se < p.error_moment_max_se_log)
    confirmed = moment & sure & (not seen)  # (the rests are consulted only where fixes are seldom averaged)
    # ... and not above what the rests' lag-one moment allows (its upper bound: drift does not
    # enter it; where the steps labelled still are moves, the other two readings both split
    # their spread by HDOP alone and can agree on an error several times the truth)
    # (a bound it cannot put - too few held rests of two steps or more, or their steps carried
    # on as moves - is no check: then nothing tells the error from the moves and drift inside
    # the single still steps, whose spread both readings split by HDOP alone)
    bounded = np.isfinite(start_hi) | (not p.error_check_needs_bound)
    checked = rest_agree & ~moment & sure & bounded & (u <= start_hi) & (not seen)
    # the rests read the error the same two ways, neither with a movement model: their lag-one
    # moment at the estimate's labels and their held positions with jumps agree (used twice below)
    two_ways = _agree(m_est, m_se, u_j, se_j)
    # ... or, where the likelihood confirms nothing, they do so firmly for a class whose value the
    # held positions give, within the moment's bound: the bound keeps out what both read high
    # where the still steps are moves
    with np.errstate(invalid="ignore"):
        twice = (rest & ~checked & ~confirmed & p.error_rests_two_ways & two_ways & (m_se < p.error_check_max_se_log)
                 & (se_j < p.error_check_max_se_log) & (u <= start_hi) & (not seen))
    identified = ~at_edge & (se < p.error_max_se_log) & (seen | confirmed | checked | twice)
    # ... and where it lies more than error_moment_cap times above the rests' bound while the
    # rests read the error the same two ways (the moment firm), it is the movement model's
    # misfit read as error (slow winding walks, rests that drift): capped at the bound, the
    # largest error the rests allow
    with np.errstate(invalid="ignore"):
        capped = (identified & (p.error_moment_cap > 0) & np.isfinite(start_hi)
                  & (u > p.error_moment_cap * start_hi) & (m_se < p.error_moment_max_se_log) & two_ways)
    read_as = u.copy()
    u = np.where(capped, start_hi, u)
    se = np.where(capped, m_se, se)
    weigh = both & identified & ~capped
    u = np.where(weigh, weighed_u, u)
    se = np.where(weigh, weighed_se, se)
    jumped = [ERROR_CLASSES[c] for c in np.flatnonzero(rest & ~weigh)]  # (the note's two wordings)
    weighed = [ERROR_CLASSES[c] for c in np.flatnonzero(weigh)]
    # heavy-tailed classes (error_bracket_classes): the likelihood with the step HMM's labels and
    # the held rests read only the bulk of the error (a fix far off makes its steps look like
    # moves); the fixes between two resting neighbours, chosen whatever their own error, read
    # all of it (simulated Student-t 2D errors: see SmoothParams.error_bracket_classes)
    bracketed = np.zeros(n_cls, bool)
    heavy = _class_mask(p.error_bracket_classes)
    u_b, se_b = np.full(n_cls, np.nan), np.full(n_cls, math.inf)
    # (read for the raise below, and for the interval even where the class was capped)
    if p.regimes and (identified & heavy & (~capped | p.error_interval_readings)).any():
        # (the control: light classes whose error is known, estimated here or given)
        control = _class_mask(p.error_jump_classes) & (identified | ~todo) & ~heavy
        u_b, se_b = _bracket_uere(s, var(u), fit.p_still, control, p)
        u_b = np.where(heavy, u_b, np.nan)  # (a control class reads its own error back: no reading)
        with np.errstate(invalid="ignore"):
            bracketed = identified & ~capped & heavy & (se_b < p.error_check_max_se_log) & (u_b > u)
        # (by at most error_bracket_max_raise: the whole over the bulk of a heavy-tailed error)
        u = np.where(bracketed, np.minimum(u_b, np.minimum(p.error_bracket_max_raise * u, ceiling)), u)
        se = np.where(bracketed, se_b, se)
    # the interval: the curvature (or sandwich) of the chosen reading measures its noise given
    # its model and its still labels, not the model; where another reading, firm, puts the error
    # elsewhere, the data leave that much open (see SmoothParams.error_interval_readings)
    readings = [(u_j, se_j), (u_p, se_p), (m_est, m_se), (u_b, se_b)] if p.error_interval_readings else []
    lo, hi = _interval(u, se, readings, p.error_check_max_se_log)
    own_lo, own_hi = _interval(u, se, [], math.inf)
    widened = [ERROR_CLASSES[c] for c in np.flatnonzero(est & identified & ((lo < own_lo) | (hi > own_hi)))]
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
        ci[name] = (float(lo[c]), float(hi[c]))
        src[name] = "estimated"
        nf[name] = int(counts[c])
    powers = {ERROR_CLASSES[c]: float(power[c]) for c in range(n_cls) if power[c] != 1.0 and ERROR_CLASSES[c] in uere}
    note = (f"maximum likelihood jointly with the movement models on {s.a.size} fixes of "
            f"{int((np.diff(s.bounds) > 0).sum())} animal(s), started from "
            + ", ".join(f"{k}: {v}" for k, v in start_from.items()))
    if jumped:
        note += ("; from the resting bouts read as held positions with jumps (not the likelihood) for "
                 + ", ".join(jumped))
    if weighed:
        note += ("; the likelihood and the resting bouts read as held positions with jumps agree, weighed by "
                 "their precision, for " + ", ".join(weighed))
    if confirmed.any():
        note += ("; fixes seldom averaged, but the resting bouts' lag-one moment agrees for "
                 + ", ".join(ERROR_CLASSES[c] for c in np.flatnonzero(confirmed)))
    if checked.any():
        note += ("; fixes seldom averaged, but the resting bouts read as held positions with jumps agree "
                 "with the likelihood for "
                 + ", ".join(ERROR_CLASSES[c] for c in np.flatnonzero(checked)))
    if (twice & identified).any():
        note += ("; fixes seldom averaged and the likelihood does not confirm it, but the resting bouts read "
                 "the error the same two ways (held positions with jumps, and their lag-one moment) for "
                 + ", ".join(ERROR_CLASSES[c] for c in np.flatnonzero(twice & identified)))
    if capped.any():
        note += ("; capped at the upper bound the resting bouts' lag-one moment puts on the error, which "
                 "their held positions with jumps confirm (the likelihood read the movement model's misfit "
                 "as error), for " + ", ".join(f"{ERROR_CLASSES[c]} ({read_as[c]:.3g} m by likelihood, "
                                                 f"{start_hi[c]:.3g} m bound)" for c in np.flatnonzero(capped)))
    if widened:
        note += ("; the 95 % interval of " + ", ".join(widened) + " also holds the other firm readings of its "
                 "error (the resting bouts as held positions with jumps under two labellings, their lag-one "
                 "moment, the fixes between resting neighbours): they differ by more than its own noise")
    if bracketed.any():
        note += ("; raised to the lag-one moment of the fixes between two resting neighbours (the heavy tails "
                 "the likelihood reads as moves) for " + ", ".join(f"{ERROR_CLASSES[c]} ({read_as[c]:.3g} m by likelihood)"
                                                                   for c in np.flatnonzero(bracketed)))
    if weak:
        note += ("; not identified by the data (the likelihood is flat, keeps rising towards "
                 f"{p.error_max_factor:g}x or {p.error_min_factor:g}x the default, lies far above what the "
                 "resting bouts say, or fixes are too far apart for their errors to show), "
                 "defaults used for: " + ", ".join(weak))
    if powers:
        note += "; error grows as HDOP to the power " + ", ".join(f"{v:g} ({k})" for k, v in powers.items())
    if "unknown" in uere:
        # measured: 30-min fixes, half of them 2D, no fix type (validate.py --fuzz 24 --seed 4800,
        # setting 7): unknown 4.0 m for 3D 4 / 2D 7.6 m; se_m covers 96 % of the 3D fixes' errors
        # (per axis, nominal 95 %), 83 % of the 2D ones (tests/test_smooth.py: 99 % and 84 %)
        note += (f"; {MIXED_CLASS_NOTE}: where a file mixes 3D and 2D fixes, se_m is "
                 "too wide for the better ones and too narrow for the worse (a fix-type or satellite-count "
                 "column, or a calibration, tells them apart)")
    return ErrorModel(uere_m=uere, ci_m=ci, source=src, n_fixes=nf, note=note, hdop_power=powers).merged(prior)


def default_errors(p: SmoothParams) -> ErrorModel:
    return default_error_model(p.uere_3d_m, p.uere_2d_m, p.uere_unknown_m, p.argos_error_m)
