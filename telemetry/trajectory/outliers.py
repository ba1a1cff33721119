"""Outliers the smoother exposes: fixes far from where every other fix puts the animal.

:func:`telemetry.trajectory.clean.clean` flags what positions alone can tell (impossible
speeds, sharp fast out-and-back spikes, excursions the animal's own movement scale does not
explain). Between fast-moving neighbours a gross error looks like movement to those rules,
and a real out-and-back trip of a kilometre looks like an error. The smoother knows more:
each fix's standardised residual ``resid_chi2`` (:mod:`telemetry.trajectory.smooth`) is its
squared distance from the position all *other* fixes and the fitted movement model predict,
in units of its variance — chi-square with 2 degrees of freedom if the fix is what the model
says, whatever the animal's speed at the time.

A fix is flagged ``spike`` here when (a) its residual exceeds the chi-square quantile
``1 - outlier_alpha`` and (b) its neighbours agree with each other and not with it: the detour
through it, ``d_in + d_out``, is more than ``outlier_detour`` times the direct step between the
neighbours (a real long move passes through the fix in line; an error sticks out of it).
Fixes next to a still step are left to the cleaning rules: while an animal rests, the model
holds its position, and any real short trip away from the bed would look like an error.

The other way round, :func:`explained_spikes` asks the smoother about the fixes the cleaning
rules flagged ``spike`` from geometry alone (a fix far from both neighbours): the smoothed
track, which did not use them, predicts where the animal was at each one's time, with its
standard error. A fix that prediction explains (residual below the same chi-square quantile,
counting the fix's own error, and no farther off than the animal's own fixes usually are from
their predictions) is a real out-and-back trip of an animal that moves that far in that time,
and goes back into the track.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from telemetry.config import CleanParams
from telemetry.trajectory._arrays import haversine_m

__all__ = ["residual_outliers", "explained_spikes"]


def residual_outliers(tracks: pd.DataFrame, params: CleanParams | None = None) -> np.ndarray:
    """Rows of smoothed tracks to flag ``spike`` by the smoother's residuals (bool per row).

    Parameters
    ----------
    tracks : DataFrame
        Output of :func:`telemetry.trajectory.smooth.smooth` (``lon``, ``lat``, ``resid_chi2``,
        ``p_still``, ``flag``, ``animal_id``, ``time``); any row order.
    params : CleanParams, optional
        ``outlier_alpha`` and ``outlier_detour``.

    Returns
    -------
    ndarray of bool
        True for the rows to flag (usable rows only; none when ``outlier_alpha`` is 0).

    Examples
    --------
    >>> t = pd.date_range("2024-01-01", periods=5, freq="h", tz="UTC")
    >>> df = pd.DataFrame({"animal_id": "a", "time": t, "lon": [10.0, 10.01, 10.5, 10.03, 10.04], "lat": 50.0,
    ...                    "resid_chi2": [1.0, 2.0, 400.0, 1.5, 0.5], "p_still": 0.0})
    >>> residual_outliers(df).tolist()
    [False, False, True, False, False]
    """
    p = params or CleanParams()
    n = len(tracks)
    out = np.zeros(n, dtype=bool)
    if n < 3 or p.outlier_alpha <= 0 or "resid_chi2" not in tracks.columns:
        return out
    chi2 = tracks["resid_chi2"].to_numpy(dtype=float, na_value=np.nan)
    ok = np.isfinite(chi2)
    if "flag" in tracks.columns:
        ok &= tracks["flag"].isna().to_numpy()
    rows = np.flatnonzero(ok)
    if rows.size < 3:
        return out
    codes = pd.factorize(tracks["animal_id"])[0][rows]
    t = tracks["time"].to_numpy(dtype="datetime64[ns]").view(np.int64)[rows]
    order = np.lexsort((t, codes))
    rows, codes = rows[order], codes[order]
    lon = tracks["lon"].to_numpy(dtype=float)[rows]
    lat = tracks["lat"].to_numpy(dtype=float)[rows]
    still = (tracks["p_still"].to_numpy(dtype=float, na_value=0.0)[rows] > 0.5
             if "p_still" in tracks.columns else np.zeros(rows.size, bool))
    mid = np.arange(1, rows.size - 1)
    mid = mid[(codes[mid - 1] == codes[mid]) & (codes[mid + 1] == codes[mid])]
    d_in = haversine_m(lon[mid - 1], lat[mid - 1], lon[mid], lat[mid])
    d_out = haversine_m(lon[mid], lat[mid], lon[mid + 1], lat[mid + 1])
    d_skip = haversine_m(lon[mid - 1], lat[mid - 1], lon[mid + 1], lat[mid + 1])
    limit = -2.0 * math.log(p.outlier_alpha)  # chi-square(2) quantile 1 - alpha
    bad = (chi2[rows[mid]] > limit) & (d_in + d_out > p.outlier_detour * d_skip)
    bad &= ~still[mid] & ~still[mid + 1]  # neither the step into the fix nor out of it is still
    out[rows[mid[bad]]] = True
    return out



def explained_spikes(tracks: pd.DataFrame, params: CleanParams | None = None) -> np.ndarray:
    """Rows flagged ``spike`` by the cleaning rules that the smoothed track explains (bool per row).

    Each such fix is predicted from the smoothed track at its time
    (:func:`telemetry.trajectory.smooth.predict`: the fix itself was left out, so this is a true
    hold-out) and its residual ``|z - x̂|² / (σ² + se²)`` compared with the chi-square(2)
    quantile ``1 - outlier_alpha``, ``σ`` the fix's own error under the tracks' error model and
    ``se`` the prediction's. Below it the fix is movement the model expects.

    Parameters
    ----------
    tracks : DataFrame
        Output of :func:`telemetry.trajectory.smooth.smooth` (its ``attrs`` hold the fitted
        models and the error model); any row order.
    params : CleanParams, optional
        ``outlier_alpha`` (0 disables: nothing is released; the same level as for
        :func:`residual_outliers`) and ``outlier_release_quantile``: the fix must also be no
        farther from its prediction than that quantile of the animal's usable fixes' distances
        from theirs (see the parameter for what each choice measured).

    Returns
    -------
    ndarray of bool
        True for the ``spike`` rows to put back; False for every other row and for a fix no
        model predicts (outside a segment's span, an animal without a fit).
    """
    from telemetry.trajectory.error_model import ErrorModel
    from telemetry.trajectory.smooth import measurement_sigma_m, predict

    p = params or CleanParams()
    n = len(tracks)
    out = np.zeros(n, dtype=bool)
    if not n or p.outlier_alpha <= 0 or "flag" not in tracks.columns or "resid_chi2" not in tracks.columns:
        return out
    cand = (tracks["flag"].astype(object) == "spike").to_numpy() & tracks["time"].notna().to_numpy()
    cand &= np.isfinite(tracks["lon"].to_numpy(dtype=float, na_value=np.nan))
    cand &= np.isfinite(tracks["lat"].to_numpy(dtype=float, na_value=np.nan))
    if not cand.any() or not tracks["lon_s"].notna().any():
        return out
    rows = np.flatnonzero(cand)
    pred = predict(tracks, tracks.iloc[rows][["animal_id", "time"]].reset_index(drop=True))
    em = tracks.attrs.get("error_model")
    model = ErrorModel.from_dict(em) if em else None
    sigma = measurement_sigma_m(tracks.iloc[rows], error_model=model)
    d = haversine_m(tracks["lon"].to_numpy(dtype=float)[rows], tracks["lat"].to_numpy(dtype=float)[rows],
                    pred["lon"].to_numpy(dtype=float), pred["lat"].to_numpy(dtype=float))
    var = sigma**2 + pred["se_m"].to_numpy(dtype=float) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        chi2 = d**2 / var
    limit = -2.0 * math.log(p.outlier_alpha)
    ok = np.isfinite(chi2) & (chi2 < limit)
    # ... and no farther from it than the animal's own fixes stray from theirs: a Gaussian
    # movement model fitted to occasional long moves predicts every fix loosely
    codes, names = pd.factorize(tracks["animal_id"])
    ok &= d <= _typical_stray_m(tracks, codes, len(names), p.outlier_release_quantile)[codes[rows]]
    out[rows[ok]] = True
    return out


def _typical_stray_m(tracks: pd.DataFrame, codes: np.ndarray, n_animals: int, q: float) -> np.ndarray:
    """Per animal (``codes``: each row's animal), the ``q`` quantile of the distance (m) of its
    usable fixes from their prediction by all its other fixes; 0 for an animal without any.

    From the smoother's output: a fix with error variance ``r = sigma_m²``, smoothed variance
    ``P = se_m²`` (per axis) and standardised residual ``resid_chi2 = |z - x̂|² / (r - P)`` is
    ``|z - x̂| r / (r - P) = sqrt(resid_chi2) r / sqrt(r - P)`` from the prediction without it.
    """
    r = tracks["sigma_m"].to_numpy(dtype=float, na_value=np.nan) ** 2
    p = tracks["se_m"].to_numpy(dtype=float, na_value=np.nan) ** 2
    chi2 = tracks["resid_chi2"].to_numpy(dtype=float, na_value=np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        loo = np.sqrt(chi2) * r / np.sqrt(np.maximum(r - p, 1e-12 * r))
    ok = np.isfinite(loo) & (codes >= 0) & tracks["flag"].isna().to_numpy()
    out = np.zeros(n_animals)
    if ok.any():
        qs = pd.Series(loo[ok]).groupby(codes[ok]).quantile(q)
        out[qs.index.to_numpy()] = qs.to_numpy()
    return out
