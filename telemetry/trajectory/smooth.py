"""Track smoothing with the collar's own error: error model, movement model, Kalman/RTS smoother.

What it does, per run
---------------------
1. **Error model** (estimated in :mod:`telemetry.trajectory.error_estimate`). Each located fix
   has a 1-σ error per axis ``sigma = UERE_class × HDOP``
   (:mod:`telemetry.trajectory.error_model`: classes 3D / 2D / unknown GPS and the Argos
   location classes). A calibration (stationary collars, ``telemetry calibrate``) is used when
   given. Otherwise the UERE of every class with enough fixes is *estimated* by maximum
   likelihood jointly with the movement models (Fleming et al. 2020): in ``error_rounds``
   rounds, the still steps are labelled at the current scale and the profile likelihood is
   maximised over a common scale of the classes and over each class in turn (a coarse scan,
   then successive parabolas), with every animal's maximum-likelihood movement model, on up to
   ``error_fit_max_fixes`` fixes (whole stretches of each animal's track); the 95 % interval
   comes from the curvature of the likelihood in ``log UERE``. For 3D
   fixes (``error_switching_classes``) that likelihood sums over each step being still or moving
   rather than taking the step HMM's labels (labels read from the displacements pick as still
   the steps whose errors happened to be small, and the scale comes out low). For 3D fixes
   (``error_jump_classes``) the estimate from the resting bouts read as held positions with
   occasional jumps (:mod:`telemetry.trajectory.rest_jumps`) replaces it wherever it is firm
   (``error_jumps``), or, where the two agree within their noise, is weighed with it by their
   precision (``error_rests_weighted``): the likelihood's Brownian drift at rest spreads the shifts over every
   still step, and a movement model that misfits (migrants, kill sites visited bed by bed) puts
   its misfit in the error (simulated migrants: 11.5-12.7 m from the likelihood, 7.9-8.0 from
   the rests, truth 8; 4-h fixes of a 3 m collar: 2.1-2.3 vs 3.0-3.6). Heavy-tailed classes
   (2D, ``error_bracket_classes``) are raised to the lag-one moment of their fixes between two
   resting neighbours where that is firm and larger: a fix far off in a rest reads as a move to
   the likelihood and the held rests, which then see only the bulk of the error. A class too small to
   estimate, or one the data do not identify (the checks of
   :mod:`telemetry.trajectory.error_estimate`: a flat likelihood, one at the edge of its range,
   one the resting bouts contradict), takes the configured default, and
   the model says so (``source = "default"``).
2. **Movement model, per animal** (:mod:`telemetry.trajectory.movement_fit`), chosen by BIC
   (Schwarz 1978) among ``BM`` (Brownian motion of the position; diffusion ``2 q tau`` with
   ``tau`` → 0), ``IOU`` (an Ornstein–Uhlenbeck velocity integrated to position: the
   continuous-time correlated random walk of Johnson et al. 2008, ``tau`` from ``tau_grid_s``),
   and each of them with a **still regime**: steps on which the animal did not move at all
   (position held, velocity redrawn; :mod:`telemetry.trajectory.kalman`), labelled by a
   two-state HMM on the raw displacements (:mod:`telemetry.trajectory.regimes`). Still steps let
   a resting bout's fixes be averaged, and they are what identifies the error scale: the scatter
   of a resting animal's fixes is all error. Any schedule works: transitions are exact over each
   interval, so irregular times and gaps need no resampling.
3. **Kalman filter + RTS smoother** (Rauch et al. 1965) with the chosen model and the
   estimated errors, restarting at each segment. Two departures from the fitted model, both
   measured on the independent simulator of ``scripts/validate.py``:

   * *Jumps at rest.* A resting animal's position does not drift smoothly: it stays put and now
     and then shifts bed, moves round a kill. Each animal's still steps are split by EM into a
     slow drift plus jumps arriving at a rate (:func:`telemetry.trajectory.rest_jumps.jump_em`;
     the two fixes' errors known), and each still step is smoothed with its own expected drift
     variance, so a rest without a shift is averaged whole and one with a shift is not. Where
     the fitted jumps are no larger than the errors (``jump_min_ratio``; 15-min schedules, where
     a shift spreads over many steps) the fitted Brownian drift stays.
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
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from telemetry.arrays import with_columns
from telemetry.config import ARGOS_ERROR_M, SmoothParams
from telemetry.schema import SharedAttr
from telemetry.trajectory.error_estimate import FitMemo, default_errors, estimate_error_model, estimate_for
from telemetry.trajectory.error_model import ERROR_CLASSES, GPS_CLASSES, ErrorModel, error_classes
from telemetry.trajectory.kalman import IOU, OUF, smooth_all, transitions
from telemetry.trajectory.movement_fit import (
    MODELS,
    Fit,
    Rows,
    fit_attrs,
    fit_from_attrs,
    fit_models,
    has_still_regime,
    head_rows,
    prepare_rows,
    refine,
    resting_regime,
    smooth_params,
    subset_rows,
    take_fit,
    usable_rows,
)
from telemetry.trajectory.rest_jumps import exposure

__all__ = ["SmoothParams", "smooth", "predict", "estimate_error_model", "FitMemo", "measurement_sigma_m", "ARGOS_ERROR_M",
           "MODELS", "has_still_regime", "resting_regime", "SMOOTHED_COLUMNS"]

SMOOTHED_COLUMNS = ("lon_s", "lat_s", "se_m", "sigma_m", "p_still", "resid_chi2")
"""The columns :func:`smooth` writes (float, NaN on unusable rows)."""


def _resid_chi2(d: Rows, r: np.ndarray, sx: np.ndarray, sy: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Standardised residual of every fix against the smoother given all *other* fixes:
    ``|z - x̂|² / (r - P)`` (chi-square, 2 d.o.f., under the model; see the module docstring)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return ((d.x - sx) ** 2 + (d.y - sy) ** 2) / np.maximum(r - var, 1e-12 * r)


def _release_misfits(d: Rows, r: np.ndarray, fit: Fit, sx: np.ndarray, sy: np.ndarray, var: np.ndarray,
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


def _hedge(d: Rows, r: np.ndarray, fit: Fit, sx: np.ndarray, sy: np.ndarray, var: np.ndarray,
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


def _unidentified_steps(d: Rows, bad: np.ndarray) -> np.ndarray:
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


def _unidentified_fixes(d: Rows, model: ErrorModel, p: SmoothParams) -> np.ndarray:
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
    p = smooth_params(params, overrides)
    model = default_errors(p) if error_model is None else error_model.merged(default_errors(p))
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
        and its parameters (:func:`telemetry.trajectory.movement_fit.fit_attrs`: ``model``,
        ``estimated``, ``kind``, ``tau_position_s``, ``tau_velocity_s``, ``scale``,
        ``range_sd_m``, ``speed_sd_ms``, ``diffusion_m2s`` (the position's long-run diffusion),
        ``still_diffusion_m2s``, ``still_label_diffusion_m2s`` (the drift of the step HMM's still
        regime, whose posterior is ``p_still``), ``still_label_active_m2s`` (its active regime's
        diffusion), ``still_label_stay_still``, ``still_label_stay_active`` (its transition
        probabilities; with ``models`` the step HMM starts from these), ``still_drift_at_bound`` (see
        :func:`resting_regime`), ``still_share``, ``loglik``, ``bic`` per candidate model,
        ``n_fixes``); ``out.attrs["error_model"]`` the UERE table (:meth:`ErrorModel.to_dict`).

    Examples
    --------
    >>> out = smooth(fixes)  # doctest: +SKIP
    >>> out.attrs["error_model"]["3D"]  # doctest: +SKIP
    {'uere_m': 4.1, 'ci_low_m': 3.9, 'ci_high_m': 4.3, 'source': 'estimated', 'n_fixes': 5123}
    """
    p = smooth_params(params, overrides)
    n = len(df)
    cols = {c: np.full(n, np.nan) for c in SMOOTHED_COLUMNS}
    usable = usable_rows(df) if n else np.zeros(0, bool)
    d = prepare_rows(df, p, usable) if n else None
    defaults = default_errors(p)
    model = defaults if error_model is None else error_model.merged(defaults)
    attrs: dict[str, dict[str, Any]] = {}
    if d is not None:
        model = estimate_for(df, d, p, model)
        sigma = model.sigma_m(d.cls, d.factor, p.min_sigma_m)
        r = sigma**2
        known = fit_from_attrs(d, r, models or {}, p)
        if known is not None and known.fitted.all():
            fit = known
        else:
            # the models are chosen on each animal's first stretch (a few hundred fixes tell
            # them apart) and their scales and still drift re-estimated on all its fixes
            sub = subset_rows(df, p, head_rows(d, p.model_fit_fixes))
            fit = refine(d, r, fit_models(sub, model.sigma_m(sub.cls, sub.factor, p.min_sigma_m) ** 2, p), p)
            if known is not None:
                fit = take_fit(fit, known, known.fitted)
        stay = np.zeros(d.a.size, bool)
        if p.estimate_error or error_model is not None:
            # (estimation off and no model given: the configured UERE is the caller's statement)
            stay = _unidentified_fixes(d, model, p)
            fit.w = np.where(_unidentified_steps(d, stay), 0.0, fit.w)
        tr = fit.table(d)  # once: the three smoothing passes below share it
        tr[:, 7] = exposure(d, r, (fit.w > 0) & (fit.om[d.a] > 0), fit.ds, p)
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
            attrs[str(name)] = fit_attrs(fit, k, float(still_share[k]), int(n_fix[k]), p.still_diffusion_bounds_m2s[1])
    out = with_columns(df, cols)  # (copy-on-write: the input's columns stay shared)
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
    p = smooth_params(params, {})
    fits = tracks.attrs.get("smooth", {})
    res = query[["animal_id", "time"]].copy()
    res["lon"] = np.nan
    res["lat"] = np.nan
    res["se_m"] = np.nan
    usable = usable_rows(tracks) & np.isfinite(tracks["sigma_m"].to_numpy(dtype=float, na_value=np.nan))
    d = prepare_rows(tracks, p, usable)
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

