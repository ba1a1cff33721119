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

:func:`revisited_spikes` asks the animal's other fixes instead: a candidate that lies among
them more closely than an error thrown as far in a random direction would is a trip to a
place the animal uses (a roost, a patch, a landfill), and is not a spike.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from telemetry.arrays import group_time_order, sorted_usable, usable_mask
from telemetry.config import CleanParams
from telemetry.threads import cpu_count
from telemetry.trajectory._arrays import EARTH_RADIUS_M, haversine_m, wrap_deg

__all__ = ["residual_outliers", "explained_spikes", "revisited_spikes", "revisit_pvalues", "beyond_reach",
           "fdr_release"]


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
    order = group_time_order(codes, t)
    if order is not None:
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
    usable = tracks["flag"].isna().to_numpy() & np.isfinite(chi2) & (codes >= 0)
    # a fix kept where it is (its error unidentified: se_m = sigma_m) has no smoothed distance
    # to recover; its distance from the line between its usable neighbours stands in (with the
    # error unidentified the fixes are far apart next to it, so both measure the movement)
    kept = usable & ~(p < r)
    if kept.any():
        loo = np.where(kept, _off_line_m(tracks, usable, kept), loo)
    ok = np.isfinite(loo) & usable
    out = np.zeros(n_animals)
    if ok.any():
        qs = pd.Series(loo[ok]).groupby(codes[ok]).quantile(q)
        out[qs.index.to_numpy()] = qs.to_numpy()
    return out


def _off_line_m(tracks: pd.DataFrame, usable: np.ndarray, at: np.ndarray | None = None) -> np.ndarray:
    """Per row, the distance (m) of a ``usable`` fix from the point at its time on the straight
    line between its usable neighbours (same animal, in time order); NaN elsewhere, and on rows
    not ``at`` (bool per row, default all: the caller needs a few; the bench's 1M fixes: 1,979).

    Against ``pyproj.Geod`` (the geodesic midpoint of neighbours 2 km apart, across the
    antimeridian, and a fix 150 m north of it): within 0.5 m.

    >>> import pyproj
    >>> g = pyproj.Geod(ellps="WGS84")
    >>> mlon, mlat = g.npts(179.99, 60.0, -179.97, 60.0, 1)[0]           # ~2.2 km apart
    >>> lon, lat, _ = g.fwd(mlon, mlat, 0.0, 150.0)
    >>> df = pd.DataFrame({"animal_id": "a", "time": pd.date_range("2024-01-01", periods=3, freq="1h", tz="UTC"),
    ...                    "lon": [179.99, lon, -179.97], "lat": [60.0, lat, 60.0]})
    >>> bool(abs(_off_line_m(df, np.ones(3, bool))[1] - 150.0) < 0.5)
    True
    >>> _off_line_m(df, np.ones(3, bool), np.array([False, True, False]))[[0, 2]].tolist()  # only where asked
    [nan, nan]
    """
    out = np.full(len(tracks), np.nan)
    pos, codes, t = sorted_usable(tracks, usable)
    if pos.size < 3:
        return out
    lon = tracks["lon"].to_numpy(dtype=float, na_value=np.nan)[pos]
    lat = tracks["lat"].to_numpy(dtype=float, na_value=np.nan)[pos]
    mid = np.arange(1, pos.size - 1)
    mid = mid[(codes[mid - 1] == codes[mid]) & (codes[mid + 1] == codes[mid]) & (t[mid + 1] > t[mid - 1])]
    if at is not None:
        mid = mid[at[pos[mid]]]
    f = (t[mid] - t[mid - 1]) / (t[mid + 1] - t[mid - 1])
    # (neighbours close next to the Earth's radius: interpolating degrees is exact enough, and
    # the longitude difference is wrapped so a line across the antimeridian stays short)
    ilon = wrap_deg(lon[mid - 1] + f * wrap_deg(lon[mid + 1] - lon[mid - 1]))
    ilat = lat[mid - 1] + f * (lat[mid + 1] - lat[mid - 1])
    out[pos[mid]] = haversine_m(lon[mid], lat[mid], ilon, ilat)
    return out


def revisited_spikes(tracks: pd.DataFrame, candidates: np.ndarray, params: CleanParams | None = None) -> np.ndarray:
    """Of the ``candidates`` (bool per row: fixes flagged or about to be flagged ``spike``), those
    at a place the animal was seen at other times (bool per row).

    A gross error lands wherever the error throws it; an animal that goes somewhere and comes
    back often goes where it has been before (a roost, a water hole, a foraging patch, a kill;
    revisitation, Bracis et al. 2018). The test, per candidate: ``d_k`` is its distance to the
    ``k``-th nearest usable fix of the same animal at any time (``k = revisit_fixes``; its
    neighbours in time, from which it stands out, are farther). Had an error thrown the fix
    as far from where the animal was (the mean of its usable neighbours in time) in another
    direction, how often would it have had ``k`` of the animal's fixes within ``d_k``? That
    share of the circle, estimated from ``revisit_directions`` stratified directions, is a
    p-value for "an error that happened to land here"; below ``revisit_alpha`` the fix is a
    real trip. So about that share of true gross errors is put back (errors thrown in random
    directions), however dense the animal's fixes, while a fix among the animal's own places (a
    dense cluster the circle mostly misses) is.

    Parameters
    ----------
    tracks : DataFrame
        ``animal_id``, ``time``, ``lon``, ``lat``, ``flag`` (usable fixes: no flag); any row order.
    candidates : ndarray of bool
        Rows to test (rows without a position or time are never put back).
    params : CleanParams, optional
        ``revisit_alpha`` (0-1; 0 disables), ``revisit_fixes``, ``revisit_directions``.

    Returns
    -------
    ndarray of bool
        True for the candidates the animal's other fixes explain.

    Examples
    --------
    An animal resting at a den (10.0 E, 50.0 N) and visiting a patch 3.6 km east now and
    then: a fix at the patch between two at the den is a trip; one 3 km north-east, where it
    never went, is an error.

    >>> rng = np.random.default_rng(0)
    >>> place = np.where(np.arange(60) % 6 == 3, 1, 0)              # every 6th fix at the patch
    >>> lon = np.where(place == 1, 10.05, 10.0) + rng.normal(0, 1e-4, 60)
    >>> lat = 50.0 + rng.normal(0, 1e-4, 60)
    >>> lon[[27, 40]], lat[[27, 40]] = [10.05, 10.02], [50.0, 50.025]  # between fixes at the den
    >>> df = pd.DataFrame({"animal_id": "a", "time": pd.date_range("2024-01-01", periods=60, freq="4h", tz="UTC"),
    ...                    "lon": lon, "lat": lat, "flag": pd.NA})
    >>> cand = np.zeros(60, bool); cand[[27, 40]] = True
    >>> np.flatnonzero(revisited_spikes(df, cand)).tolist()
    [27]
    """
    p = params or CleanParams()
    out = np.zeros(len(tracks), dtype=bool)
    if p.revisit_alpha <= 0 or not np.any(candidates):
        return out
    fdr = p.revisit_fdr > 0
    # (the false discovery rate needs every candidate's p-value, not only whether it is small)
    pval = revisit_pvalues(tracks, candidates, max(int(p.revisit_fixes), 1), max(int(p.revisit_directions), 1),
                           1.0 if fdr else p.revisit_alpha)
    with np.errstate(invalid="ignore"):
        out = pval < p.revisit_alpha
    if fdr:
        animal = pd.factorize(tracks["animal_id"])[0]
        out |= fdr_release(pval, animal, p.revisit_fdr, p.revisit_fdr_min, p.revisit_null_above)
    if out.any():
        out &= ~beyond_reach(tracks, candidates, p)
    return out


def fdr_release(pval: np.ndarray, group: np.ndarray, q: float, min_n: int, lam: float = 0.5) -> np.ndarray:
    """Rows (bool) whose p-value falls below each group's Benjamini-Hochberg threshold at false
    discovery rate ``q``, with the share of nulls ``pi0`` estimated from the group's own p-values
    above ``lam`` (Storey 2002, plus one: conservative for small groups); NaN p-values are not
    tested, and groups with fewer than ``min_n`` tested rows release nothing.

    Storey, J. D. (2002). A direct approach to false discovery rates. J. R. Stat. Soc. B 64:479-498.

    >>> p = np.r_[np.full(8, 0.02), np.linspace(0.05, 1.0, 12)]       # 8 trips among 12 errors
    >>> int(fdr_release(p, np.zeros(20, int), 0.05, 10).sum())
    8
    >>> int(fdr_release(np.linspace(0.02, 1.0, 20), np.zeros(20, int), 0.05, 10).sum())  # errors only
    0
    """
    out = np.zeros(pval.size, dtype=bool)
    idx = np.flatnonzero(np.isfinite(pval) & (group >= 0))
    idx = idx[np.argsort(group[idx], kind="stable")]  # (candidates only: cost follows them, not the rows)
    cut = np.flatnonzero(np.diff(group[idx])) + 1
    for rows in np.split(idx, cut) if idx.size else []:
        n = rows.size
        if n < max(min_n, 1):
            continue
        pv = pval[rows]
        pi0 = min(1.0, (np.sum(pv > lam) + 1.0) / (n * (1.0 - lam)))
        srt = np.sort(pv)
        ok = np.flatnonzero(pi0 * n * srt <= q * np.arange(1, n + 1))
        if ok.size:
            out[rows] = pv <= srt[ok[-1]]
    return out


def _time_neighbours(tracks: pd.DataFrame, candidates: np.ndarray, lon: np.ndarray, lat: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The usable fixes other than the candidates (the reference) and the candidates with a
    position and a time, in (animal, time) order: ``pos`` (rows), ``codes`` (animals), ``t_s``
    (s), ``ref`` (bool: a reference fix), and for each ordered row the index of the reference
    fix just before and just after it (-1 / ``pos.size`` where there is none; the caller checks
    that it is the same animal's)."""
    has = np.isfinite(lon) & np.isfinite(lat) & tracks["time"].notna().to_numpy()
    is_ref = usable_mask(tracks) & ~candidates & has
    pos, codes, t_ns = sorted_usable(tracks, is_ref | (has & candidates))
    keep = codes >= 0  # (rows without an animal)
    pos, codes, t_s = pos[keep], codes[keep], t_ns[keep] / 1e9
    ref = is_ref[pos]
    idx = np.arange(pos.size)
    before = np.maximum.accumulate(np.where(ref, idx, -1))
    after = np.minimum.accumulate(np.where(ref, idx, pos.size)[::-1])[::-1]
    return pos, codes, t_s, ref, before, after


def beyond_reach(tracks: pd.DataFrame, candidates: np.ndarray, params: CleanParams | None = None) -> np.ndarray:
    """Candidates (bool per row) the animal could not have reached and left in the time between
    its usable neighbouring fixes (bool per row; False for rows not tested).

    A trip to a fix and back takes the time between the fixes before and after it: the slower
    of the two legs, ``min(d_in / dt_in, d_out / dt_out)``, is the least speed the trip needs.
    Above the animal's own speed limit (:func:`telemetry.trajectory.clean.speed_limits` with
    ``speed_limit_from_data``: ``speed_limit_factor`` × the ``speed_limit_quantile`` of the
    speeds between its usable fixes other than the candidates, Argos fixes of the poorer classes left out:
    :func:`telemetry.trajectory.clean.speed_reference`) the fix is an error wherever it
    lies, even among places the animal uses: a 12 km error between fixes 15 min apart of an
    animal that walks at 1 km/h is not a visit to the far side of its range.

    >>> t = pd.date_range("2024-01-01", periods=40, freq="15min", tz="UTC")
    >>> lon = 10.0 + np.arange(40) * 0.001                  # ~70 m per 15 min (0.3 km/h)
    >>> lon[[10, 30]] = [10.0 + 11 * 0.001 - 0.001, 10.15]    # a small step back; 11 km off
    >>> df = pd.DataFrame({"animal_id": "a", "time": t, "lon": lon, "lat": 50.0, "flag": pd.NA})
    >>> cand = np.zeros(40, bool); cand[[10, 30]] = True
    >>> np.flatnonzero(beyond_reach(df, cand)).tolist()
    [30]
    """
    from dataclasses import replace

    from telemetry.trajectory.clean import speed_limits, speed_reference

    p = params or CleanParams()
    out = np.zeros(len(tracks), dtype=bool)
    lon = tracks["lon"].to_numpy(dtype=float, na_value=np.nan)
    lat = tracks["lat"].to_numpy(dtype=float, na_value=np.nan)
    pos, codes, t_s, ref, before, after = _time_neighbours(tracks, candidates, lon, lat)
    if ref.sum() < 3 or ref.all():
        return out
    # each animal's limit from its reference fixes alone (the candidates' own legs would raise it)
    rpos, rcodes, rt = pos[ref], codes[ref], t_s[ref]
    first = np.r_[True, rcodes[1:] != rcodes[:-1]]
    starts = np.r_[np.flatnonzero(first), rpos.size]
    limit_kmh, _ = speed_limits(starts, rt, lon[rpos], lat[rpos], replace(p, speed_limit_from_data=True),
                                speed_reference(tracks, p)[rpos])
    animal_limit = np.full(int(codes.max()) + 1, np.inf)
    animal_limit[rcodes[first]] = limit_kmh
    cand = np.flatnonzero(~ref)
    b, a = before[cand], after[cand]
    ok = (b >= 0) & (a < pos.size)
    cand, b, a = cand[ok], b[ok], a[ok]
    ok = (codes[b] == codes[cand]) & (codes[a] == codes[cand])
    cand, b, a = cand[ok], b[ok], a[ok]
    if not cand.size:
        return out
    with np.errstate(divide="ignore", invalid="ignore"):
        v_in = haversine_m(lon[pos[b]], lat[pos[b]], lon[pos[cand]], lat[pos[cand]]) / (t_s[cand] - t_s[b]) * 3.6
        v_out = haversine_m(lon[pos[cand]], lat[pos[cand]], lon[pos[a]], lat[pos[a]]) / (t_s[a] - t_s[cand]) * 3.6
        need = np.fmin(v_in, v_out)
    out[pos[cand]] = need > animal_limit[codes[cand]]
    return out


def revisit_pvalues(tracks: pd.DataFrame, candidates: np.ndarray, k: int, m: int, alpha: float = 1.0) -> np.ndarray:
    """The p-value of :func:`revisited_spikes` per row, counting the ``k``-th nearest usable fix
    and ``m`` directions (NaN for rows not tested; a value at or above ``alpha`` may be a lower
    bound: those rows stop early). ``scripts/validate.py --revisit`` tabulates it by ``k``."""
    from scipy.spatial import cKDTree

    pval = np.full(len(tracks), np.nan)
    lon = tracks["lon"].to_numpy(dtype=float, na_value=np.nan)
    lat = tracks["lat"].to_numpy(dtype=float, na_value=np.nan)
    pos, codes, _, ref_o, before, after = _time_neighbours(tracks, candidates, lon, lat)
    if ref_o.sum() < k or ref_o.all():
        return pval
    # each candidate's neighbours in time: the usable fixes of its animal just before and after it
    cand_o = np.flatnonzero(~ref_o)
    xyz_o = _sphere_xyz(lon[pos], lat[pos])
    centre = np.zeros((cand_o.size, 3))
    count = np.zeros(cand_o.size)
    for nb in (before[cand_o], after[cand_o]):
        j = np.clip(nb, 0, pos.size - 1)
        ok = (nb >= 0) & (nb < pos.size) & (codes[j] == codes[cand_o])
        centre += np.where(ok[:, None], xyz_o[j], 0.0)
        count += ok
    cand_o, centre = cand_o[count > 0], centre[count > 0]
    if not cand_o.size:
        return pval
    rows, cand_codes = pos[cand_o], codes[cand_o]
    centre *= EARTH_RADIUS_M / np.linalg.norm(centre, axis=1)[:, None]
    radius = np.linalg.norm(xyz_o[cand_o] - centre, axis=1)
    # the k-th nearest usable fix of the same animal (animals set apart along a fourth axis)
    far = 4.0 * EARTH_RADIUS_M
    tree = cKDTree(np.c_[xyz_o[ref_o], codes[ref_o] * far], balanced_tree=False, compact_nodes=False)
    d_k = tree.query(np.c_[xyz_o[cand_o], cand_codes * far], k=[k], distance_upper_bound=far / 2,
                     workers=cpu_count())[0][:, 0]
    ok = np.isfinite(d_k) & (radius > 0)
    rows, cand_codes, centre, radius, d_k = rows[ok], cand_codes[ok], centre[ok], radius[ok], d_k[ok]
    if not rows.size:
        return pval
    # the circle of that radius around where the animal was, on the sphere: m directions,
    # stratified with an offset per row (reproducible, and unbiased over rows)
    east = np.cross([0.0, 0.0, 1.0], centre)
    norm = np.linalg.norm(east, axis=1)
    east = np.where(norm[:, None] > 0, east / np.maximum(norm, 1e-300)[:, None], [1.0, 0.0, 0.0])
    north = np.cross(centre / EARTH_RADIUS_M, east)
    offset = (rows * 0.6180339887498949) % 1.0
    hits = np.zeros(rows.size)
    todo = np.arange(rows.size)
    # every 4th direction first: a row with more hits there than alpha allows in all m is
    # decided (most true errors in a dense range), the others take the remaining directions
    for first in (True, False):
        js = np.arange(0, m, 4) if first else np.setdiff1d(np.arange(m), np.arange(0, m, 4))
        theta = 2 * np.pi * (js[None, :] + offset[todo, None]) / m
        pts = centre[todo, None, :] + radius[todo, None, None] * (
            np.cos(theta)[..., None] * east[todo, None, :] + np.sin(theta)[..., None] * north[todo, None, :])
        pts *= EARTH_RADIUS_M / np.linalg.norm(pts, axis=2)[..., None]
        q = np.c_[pts.reshape(-1, 3), np.repeat(cand_codes[todo] * far, js.size)]
        # (the k-th nearest fix of each point, rather than counting all fixes within d_k: in
        # a dense home range a ball holds hundreds)
        hits[todo] += (tree.query(q, k=[k], workers=cpu_count())[0][:, 0].reshape(-1, js.size) <= d_k[todo, None]).sum(axis=1)
        todo = todo[hits[todo] < alpha * m]
        if not todo.size:
            break
    pval[rows] = hits / m
    return pval


def _sphere_xyz(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Points (m) on the sphere of mean Earth radius: chord distances, equal to the great-circle
    ones within 1e-6 relative below 10 km."""
    lo, la = np.radians(lon), np.radians(lat)
    c = np.cos(la)
    return EARTH_RADIUS_M * np.c_[c * np.cos(lo), c * np.sin(lo), np.sin(la)]
