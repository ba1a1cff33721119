"""Cleaning: give every unusable fix one ``flag`` reason; never drop a row.

Rules run in a fixed order and a row keeps the *first* reason it gets (parser flags
such as ``malformed_row`` or ``no_fix`` are kept as they are):

1. ``no_fix`` – no time or coordinates, or the collar reported a failed fix;
2. ``zero_coords`` – 0/0; ``out_of_range`` – outside -180..180 / -90..90;
3. ``marked_outlier`` – the source marks it (Movebank ``visible = false``,
   ``manually-marked-outlier`` / ``algorithm-marked-outlier`` true);
4. ``outside_deployment`` – before the start or after the end in the deployment table;
5. ``clock_jump`` – the collar clock jumped: the time is far from its neighbours' in
   file order, or far outside the animal's main time span;
6. ``low_quality`` – 2D with DOP above a threshold, any DOP above a cap, too few
   satellites, rejected Argos location classes;
7. ``duplicate`` – same animal and time as a better fix (fix type, DOP, satellites,
   then file order);
8. ``speed`` / ``spike`` – iterated: each round blames only the worse end of a too-fast
   step (the end farther from the median of its neighbours) and flags Bjørneraas et al.
   (2010) spikes (fast in, fast out, sharp turn back) and *out-and-back* spikes (far from
   both neighbours, which are close to each other, by more than the animal's own movement
   at that time of day explains; see :func:`_out_and_back`); then speeds are recomputed
   without the flagged fixes, so one outlier never condemns its neighbours.

At a 4-5 h schedule a gross outlier of 1-2 km is often geometrically identical to a real
excursion (a cat leaves its kill at dusk and is back by dawn), so no rule on positions
alone finds all of them without flagging real fixes; the out-and-back rule is tuned for
precision (see the issue 4 report for the recall reachable per state and distance).

:func:`flag_summary` reports per animal how many rows each reason took.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from telemetry.config import CleanParams
from telemetry.errors import TelemetryError
from telemetry.schema import FLAGS
from telemetry.trajectory._arrays import (
    FLAG_CODE,
    bearing_deg,
    flag_codes,
    flags_to_series,
    group_codes,
    group_ends,
    group_starts,
    haversine_m,
    same_group_as_previous,
    time_ns,
    wrap_deg,
)

__all__ = ["clean", "flag_summary"]

_NS_PER_H = 3_600 * 10**9
_FIX_RANK = {"3D": 0.0, "2D": 2.0, "argos": 3.0, "none": 20.0}
_TRUE_STRINGS = {"true", "t", "1", "yes", "y"}
_FALSE_STRINGS = {"false", "f", "0", "no", "n"}


def clean(
    df: pd.DataFrame,
    params: CleanParams | None = None,
    *,
    deployments: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Flag unusable fixes; return a copy of the table with the ``flag`` column set.

    Parameters
    ----------
    df : pandas.DataFrame
        Canonical fix table (:mod:`telemetry.schema`), any row order.
    params : CleanParams, optional
        Thresholds (speeds in km/h, distances in m, times in h); default: snow leopard.
    deployments : pandas.DataFrame, optional
        One row per deployment with ``animal_id``, ``start``, ``end`` (times; naive times
        are UTC; a missing start or end is open). Fixes of a listed animal outside all of
        its deployments are flagged ``outside_deployment``; unlisted animals are left alone.

    Returns
    -------
    pandas.DataFrame
        Same rows, same order, same columns; ``flag`` holds one reason per unusable row
        (NA = usable).

    Examples
    --------
    >>> import pandas as pd, telemetry
    >>> t = pd.date_range("2024-01-01", periods=5, freq="h", tz="UTC")
    >>> df = pd.DataFrame({"animal_id": "a", "time": t, "lon": [77.0, 77.001, 79.0, 77.002, 77.003],
    ...                    "lat": 43.0})
    >>> telemetry.clean(df)["flag"].tolist()
    [nan, nan, 'speed', nan, nan]
    """
    params = params or CleanParams()
    _check_columns(df)
    n = len(df)
    codes = flag_codes(df)
    lon = _float(df, "lon")
    lat = _float(df, "lat")
    t = time_ns(df)
    has_time = df["time"].notna().to_numpy()

    def put(mask: np.ndarray, reason: str) -> None:
        codes[(codes < 0) & mask] = FLAG_CODE[reason]

    fix_type = _str_col(df, "fix_type")
    put(~has_time | np.isnan(lon) | np.isnan(lat) | (fix_type == "none"), "no_fix")
    put((lon == 0) & (lat == 0), "zero_coords")
    put(~np.isfinite(lon) | ~np.isfinite(lat) | (np.abs(lon) > 180) | (np.abs(lat) > 90), "out_of_range")
    put(_marked_outlier(df), "marked_outlier")
    animal, _ = group_codes(df)
    if deployments is not None:
        put(_outside_deployment(df, deployments), "outside_deployment")
    put(_clock_jump(df, animal, t, codes < 0, params), "clock_jump")
    put(_low_quality(df, fix_type, params), "low_quality")
    put(_duplicates(df, animal, t, fix_type, codes < 0), "duplicate")
    speed, spike = _speed_and_spikes(animal, t, lon, lat, codes < 0, params)
    put(speed, "speed")
    put(spike, "spike")

    out = df.copy(deep=False)
    out["flag"] = flags_to_series(codes, df.index)
    assert len(out) == n
    return out


def flag_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Rows per animal: total, usable and one column per flag reason.

    Parameters
    ----------
    df : pandas.DataFrame
        A table with ``animal_id`` and ``flag`` (e.g. the output of :func:`clean`).

    Returns
    -------
    pandas.DataFrame
        Index ``animal_id``; columns ``rows``, ``usable`` and every reason of
        :data:`telemetry.schema.FLAGS` (zeros included), so that
        ``rows == usable + sum(reasons)`` on every line.
    """
    codes = flag_codes(df)
    animal, labels = group_codes(df)
    k = len(labels)
    counts = np.zeros((k, len(FLAGS) + 1), dtype=np.int64)
    np.add.at(counts, (animal, codes.astype(np.int64) + 1), 1)
    out = pd.DataFrame(counts[:, 1:], columns=list(FLAGS), index=pd.Index(labels, name="animal_id"))
    out.insert(0, "usable", counts[:, 0])
    out.insert(0, "rows", counts.sum(axis=1))
    return out[out["rows"] > 0]


# ---------------------------------------------------------------- rules


def _check_columns(df: pd.DataFrame) -> None:
    missing = [c for c in ("time", "lon", "lat") if c not in df.columns]
    if missing:
        raise TelemetryError(f"the fix table has no {', '.join(missing)} column(s); use telemetry.read()")


def _float(df: pd.DataFrame, name: str) -> np.ndarray:
    if name not in df.columns:
        return np.full(len(df), np.nan)
    return pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _str_col(df: pd.DataFrame, name: str) -> np.ndarray:
    """Column as a numpy string array ("" for missing); categoricals via their codes (fast)."""
    if name not in df.columns:
        return np.full(len(df), "", dtype="<U1")
    col = df[name]
    if isinstance(col.dtype, pd.CategoricalDtype):
        cats = np.asarray([str(c) for c in col.cat.categories] + [""])
        return cats[col.cat.codes.to_numpy()]  # code -1 picks the trailing ""
    return col.astype(object).where(col.notna(), "").to_numpy(dtype=object).astype(str)


def _truthy(s: pd.Series) -> np.ndarray:
    """True for True/"true"/1-like values; NA and anything else False."""
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.fillna(False).to_numpy(dtype=bool)
    low = s.astype(object).where(s.notna(), "").astype(str).str.strip().str.lower()
    return low.isin(_TRUE_STRINGS).to_numpy()


def _falsy(s: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(s.dtype):
        return (~s.fillna(True).astype(bool)).to_numpy(dtype=bool)
    low = s.astype(object).where(s.notna(), "").astype(str).str.strip().str.lower()
    return low.isin(_FALSE_STRINGS).to_numpy()


def _marked_outlier(df: pd.DataFrame) -> np.ndarray:
    out = np.zeros(len(df), dtype=bool)
    for name in ("visible",):
        if name in df.columns:
            out |= _falsy(df[name])
    for name in ("manually-marked-outlier", "algorithm-marked-outlier", "import-marked-outlier"):
        if name in df.columns:
            out |= _truthy(df[name])
    return out


def _outside_deployment(df: pd.DataFrame, deployments: pd.DataFrame) -> np.ndarray:
    need = {"animal_id", "start", "end"}
    if not need <= set(deployments.columns):
        raise TelemetryError(
            f"the deployment table needs columns animal_id, start, end; it has {', '.join(map(str, deployments.columns))}"
        )
    dep = deployments.loc[:, ["animal_id", "start", "end"]].copy()
    dep["animal_id"] = dep["animal_id"].astype(str)
    for c in ("start", "end"):
        dep[c] = _to_utc(dep[c], c)
    rows = pd.DataFrame(
        {"animal_id": df["animal_id"].astype(object).astype(str).to_numpy(), "time": time_ns(df), "row": np.arange(len(df))}
    )
    rows = rows[df["time"].notna().to_numpy() & df["animal_id"].notna().to_numpy()]
    m = rows.merge(dep, on="animal_id", how="inner")
    start = m["start"].to_numpy(dtype=np.int64)
    end = m["end"].to_numpy(dtype=np.int64)
    inside = (m["time"].to_numpy() >= start) & (m["time"].to_numpy() <= end)
    listed = np.zeros(len(df), dtype=bool)
    listed[m["row"].to_numpy()] = True
    covered = np.zeros(len(df), dtype=bool)
    covered[m["row"].to_numpy()[inside]] = True
    return listed & ~covered


def _to_utc(s: pd.Series, name: str) -> pd.Series:
    """Times as int64 ns; a missing start/end becomes the open bound (int64 min / max)."""
    try:
        t = pd.to_datetime(s, utc=True, errors="raise", format="mixed")
    except (ValueError, TypeError) as err:
        raise TelemetryError(f"deployment table: cannot read {name} times: {err}") from None
    ns = t.dt.as_unit("ns").to_numpy(dtype="datetime64[ns]").view(np.int64).copy()
    info = np.iinfo(np.int64)
    ns[t.isna().to_numpy()] = info.min if name == "start" else info.max
    return pd.Series(ns, index=s.index)


def _clock_jump(
    df: pd.DataFrame, animal: np.ndarray, t: np.ndarray, ok: np.ndarray, p: CleanParams
) -> np.ndarray:
    """Records whose time is far from their file-order neighbours or the animal's main span."""
    out = np.zeros(len(df), dtype=bool)
    pos = np.flatnonzero(ok)
    if pos.size == 0:
        return out
    limit = p.clock_jump_min_h * _NS_PER_H

    # (a) in file order: compare each time with the median of itself and two records on
    # each side. In a file sorted either way the median is the record itself, so only
    # records that disagree with their neighbours stand out; up to two consecutive
    # jumped records are caught.
    src = group_codes(df, "source")[0] if "source" in df.columns else np.zeros(len(df), dtype=np.int64)
    row = df["source_row"].to_numpy(dtype=np.int64) if "source_row" in df.columns else np.arange(len(df))
    order = pos[np.lexsort((row[pos], animal[pos], src[pos]))]
    key = src[order] * (animal.max() + 1) + animal[order]
    tt = t[order]
    starts, ends = group_starts(key), group_ends(key)
    # apply only to (file, animal) runs that are ordered in time (either direction);
    # a shuffled file says nothing about its clock
    back = np.zeros(tt.size, dtype=bool)
    back[1:] = (tt[1:] < tt[:-1]) & (key[1:] == key[:-1])
    run_id = np.cumsum(np.r_[True, key[1:] != key[:-1]]) - 1
    n_back = np.bincount(run_id, back)
    n_run = np.bincount(run_id)
    frac_back = (n_back / np.maximum(n_run - 1, 1))[run_id]
    ordered = (frac_back <= 0.1) | (frac_back >= 0.9)
    i = np.arange(tt.size)
    window = np.stack([tt[np.clip(i + o, starts, ends - 1)] for o in (-2, -1, 0, 1, 2)], axis=1)
    med = np.median(window, axis=1)
    jump = ordered & (np.abs(tt - med) > limit)
    out[order[jump]] = True

    # (b) far outside the animal's main time span (10th..90th percentile of its times, so
    # a block of up to 10 % jumped records, e.g. a GPS week-number rollover, cannot hide)
    keep = pos[~out[pos]]
    order = keep[np.lexsort((t[keep], animal[keep]))]
    a, tt = animal[order], t[order]
    starts, ends = group_starts(a), group_ends(a)
    n = ends - starts
    lo = tt[starts + np.floor(0.1 * (n - 1)).astype(np.int64)]
    hi = tt[starts + np.ceil(0.9 * (n - 1)).astype(np.int64)]
    margin = np.maximum(limit, p.clock_jump_span_fraction * (hi - lo).astype(float))
    far = (tt < lo - margin) | (tt > hi + margin)
    out[order[far]] = True
    return out


def _low_quality(df: pd.DataFrame, fix_type: np.ndarray, p: CleanParams) -> np.ndarray:
    hdop = _float(df, "hdop")
    with np.errstate(invalid="ignore"):
        bad = (fix_type == "2D") & (hdop > p.max_hdop_2d)
        bad |= hdop > p.max_hdop
        if p.min_sats > 0 and "n_sats" in df.columns:
            sats = _float(df, "n_sats")
            bad |= sats < p.min_sats  # NaN (unknown) compares False
    if p.argos_reject_classes and "argos_lc" in df.columns:
        lc = _str_col(df, "argos_lc")
        bad |= np.isin(lc, [str(c) for c in p.argos_reject_classes])
    return bad


def _quality_rank(df: pd.DataFrame, fix_type: np.ndarray) -> np.ndarray:
    """Lower is better: 3D < unknown GPS < 2D < Argos (by class) < no fix."""
    rank = np.ones(fix_type.size)  # unknown fix type: between 3D and 2D
    for name, value in _FIX_RANK.items():
        rank[fix_type == name] = value
    if "argos_lc" in df.columns and isinstance(df["argos_lc"].dtype, pd.CategoricalDtype):
        lc = df["argos_lc"].cat.codes.to_numpy().astype(float)
        rank = rank + np.where(lc >= 0, lc / 10.0, 0.0)
    return rank


def _duplicates(
    df: pd.DataFrame, animal: np.ndarray, t: np.ndarray, fix_type: np.ndarray, ok: np.ndarray
) -> np.ndarray:
    """Same animal and time as a better fix: keep the best, flag the others."""
    out = np.zeros(len(df), dtype=bool)
    pos = np.flatnonzero(ok)
    if pos.size < 2:
        return out
    rank = _quality_rank(df, fix_type)
    hdop = np.nan_to_num(_float(df, "hdop"), nan=np.inf)
    sats = np.nan_to_num(_float(df, "n_sats"), nan=0.0)
    row = np.arange(len(df))  # file/read order breaks remaining ties: the first is kept
    # np.lexsort: last key is primary
    order = pos[np.lexsort((row[pos], -sats[pos], hdop[pos], rank[pos], t[pos], animal[pos]))]
    same = np.zeros(order.size, dtype=bool)
    same[1:] = (animal[order][1:] == animal[order][:-1]) & (t[order][1:] == t[order][:-1])
    out[order[same]] = True
    return out


def _speed_and_spikes(
    animal: np.ndarray,
    t: np.ndarray,
    lon: np.ndarray,
    lat: np.ndarray,
    ok: np.ndarray,
    p: CleanParams,
) -> tuple[np.ndarray, np.ndarray]:
    """Iterated speed and spike filter over all animals at once (see module docstring)."""
    n_all = len(animal)
    speed_out = np.zeros(n_all, dtype=bool)
    spike_out = np.zeros(n_all, dtype=bool)
    pos = np.flatnonzero(ok)
    if pos.size < 2:
        return speed_out, spike_out
    pos = pos[np.lexsort((t[pos], animal[pos]))]
    A, T = animal[pos], t[pos].astype(np.float64) / 1e9
    X, Y = lon[pos], lat[pos]
    alive = np.ones(pos.size, dtype=bool)
    w = max(int(p.median_window_fixes), 1)
    # the animal's own movement scale per bin of local solar time, from all usable steps
    # once (a robust quantile, so the few outliers do not inflate it)
    n_bins = max(int(round(24.0 / p.diel_bin_h)), 1) if p.diel_bin_h > 0 else 1
    scale_table = _movement_scale_table(A, T, X, Y, n_bins, p)
    for _ in range(max(int(p.max_iterations), 1)):
        idx = np.flatnonzero(alive)
        a, tt, x, y = A[idx], T[idx], X[idx], Y[idx]
        has_prev = same_group_as_previous(a)
        m = idx.size
        prv = np.maximum(np.arange(m) - 1, 0)
        d_in = np.where(has_prev, haversine_m(x[prv], y[prv], x, y), np.nan)
        dt_in = np.where(has_prev, tt - tt[prv], np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            v_in = np.where(d_in > 0, d_in / dt_in * 3.6, 0.0)
        v_in = np.where(has_prev, v_in, np.nan)
        has_next = np.r_[has_prev[1:], False]
        nxt = np.minimum(np.arange(m) + 1, m - 1)
        v_out = np.where(has_next, v_in[nxt], np.nan)
        d_out = np.where(has_next, d_in[nxt], np.nan)

        # spikes (Bjørneraas et al. 2010): fast in, fast out, sharp turn back
        b_in = bearing_deg(x[prv], y[prv], x, y)
        b_out = b_in[nxt]
        turn = np.abs(wrap_deg(b_out - b_in))
        with np.errstate(invalid="ignore"):
            spike = (
                has_prev & has_next
                & (v_in > p.spike_speed_kmh) & (v_out > p.spike_speed_kmh)
                & (d_in > p.speed_min_step_m) & (d_out > p.speed_min_step_m)
                & (turn > p.spike_min_turn_deg)
            )
            fast = has_prev & (v_in > p.max_speed_kmh) & (d_in > p.speed_min_step_m)
        score = _out_and_back(a, tt, x, y, d_in, d_out, has_prev, has_next, scale_table, n_bins, p)
        spike |= score > p.out_and_back_ratio
        blamed = np.zeros(m, dtype=bool)
        steps = np.flatnonzero(fast)  # step from steps-1 to steps
        if steps.size:
            ends_ = np.unique(np.r_[steps - 1, steps])
            dev = np.full(m, np.nan)
            dev[ends_] = _deviation_from_local_median(ends_, a, x, y, w)
            d_prev, d_this = dev[steps - 1], dev[steps]
            # blame the end farther from its neighbours' median; on a tie, the later fix
            blame = np.where(d_prev > d_this, steps - 1, steps)
            blamed[blame] = True
        is_speed = blamed
        # a fix between two bad fixes (i-1 and i+1) looks like a spike too: this round take
        # only the worst of adjacent candidates (by out-and-back score; blamed speed fixes
        # first) and judge the others again once their bad neighbours are gone
        rank = np.where(blamed, np.inf, np.where(spike, score, -np.inf))
        beaten = (has_prev & (rank[prv] > rank)) | (has_next & (rank[nxt] >= rank) & spike[nxt])
        beaten |= has_next & blamed[nxt]
        is_spike = spike & ~blamed & ~beaten
        if not (is_speed.any() or is_spike.any()):
            break
        speed_out[pos[idx[is_speed]]] = True
        spike_out[pos[idx[is_spike]]] = True
        alive[idx[is_speed | is_spike]] = False
    return speed_out, spike_out


def _deviation_from_local_median(
    i: np.ndarray, a: np.ndarray, x: np.ndarray, y: np.ndarray, w: int
) -> np.ndarray:
    """Distance (m) from fix ``i`` to the component-wise median of up to ``w`` fixes each side.

    Longitudes are taken relative to the fix itself so the antimeridian does not matter.
    A fix with no neighbours gets 0.
    """
    offsets = np.r_[np.arange(-w, 0), np.arange(1, w + 1)]
    j = i[:, None] + offsets[None, :]
    valid = (j >= 0) & (j < a.size)
    jc = np.clip(j, 0, a.size - 1)
    valid &= a[jc] == a[i][:, None]
    dlon = np.where(valid, wrap_deg(x[jc] - x[i][:, None]), np.nan)
    nlat = np.where(valid, y[jc], np.nan)
    has = valid.any(axis=1)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: no neighbours
        mlon = np.nanmedian(dlon, axis=1)
        mlat = np.nanmedian(nlat, axis=1)
    d = haversine_m(x[i], y[i], x[i] + mlon, mlat)
    return np.where(has, d, 0.0)


def _diel_bin(t_s: np.ndarray, lon: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin (0..n_bins-1) of local solar time (UTC + lon / 15 h) of times ``t_s`` (s since epoch)."""
    hour = np.mod(t_s / 3600.0 + lon / 15.0, 24.0)
    return np.minimum((hour * n_bins / 24.0).astype(np.int64), n_bins - 1)


def _step_midpoints(
    a: np.ndarray, t_s: np.ndarray, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per sorted fix, the step *into* it: has a previous fix, length (m), duration (h), midpoint time (s)."""
    has_prev = same_group_as_previous(a)
    prv = np.maximum(np.arange(a.size) - 1, 0)
    d = haversine_m(x[prv], y[prv], x, y)
    dt_h = (t_s - t_s[prv]) / 3600.0
    mid_t = 0.5 * (t_s + t_s[prv])
    return has_prev, d, dt_h, mid_t


def _movement_scale_table(
    a: np.ndarray, t_s: np.ndarray, x: np.ndarray, y: np.ndarray, n_bins: int, p: CleanParams
) -> np.ndarray:
    """Movement scale (m per sqrt(h)) per animal code and local-solar-time bin.

    The ``movement_quantile`` of ``step / sqrt(dt)`` over the steps whose midpoint falls in
    the bin: for a random walk the displacement grows with sqrt(time), so steps of any
    interval are comparable. Bins with fewer than ``diel_min_steps`` steps take the
    animal's all-day value; animals with no steps get NaN (the rule then never fires).
    Rows are sorted by (animal, time); returns an array of shape ``(a.max() + 1, n_bins)``.
    """
    k = int(a.max()) + 1 if a.size else 1
    has_prev, d, dt_h, mid_t = _step_midpoints(a, t_s, x, y)
    use = has_prev & (dt_h > 0)
    sp = d[use] / np.sqrt(dt_h[use])
    b = _diel_bin(mid_t[use], x[use], n_bins)
    q = float(np.clip(p.movement_quantile, 0.0, 1.0))
    by_value = np.argsort(sp, kind="stable")  # one float sort shared by both groupings
    by_bin, n_bin = _group_quantile(a[use] * n_bins + b, sp, q, k * n_bins, by_value)
    all_day, _ = _group_quantile(a[use], sp, q, k, by_value)
    table = by_bin.reshape(k, n_bins)
    few = n_bin.reshape(k, n_bins) < max(int(p.diel_min_steps), 1)
    return np.where(few, all_day[:, None], table)


def _group_quantile(key: np.ndarray, values: np.ndarray, q: float, n_groups: int,
                    by_value: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Lower ``q``-quantile of ``values`` per integer ``key`` in ``0..n_groups-1`` (NaN if empty), and counts.

    ``by_value`` is ``np.argsort(values, kind="stable")`` when the caller has it: the
    (key, value) order is then a stable sort of the small integer keys, which numpy does
    by radix sort (the same order as ``np.lexsort((values, key))``, in a fraction of its time).
    """
    if by_value is None:
        by_value = np.argsort(values, kind="stable")
    small = np.uint16 if n_groups <= np.iinfo(np.uint16).max else np.int64
    order = by_value[np.argsort(key[by_value].astype(small), kind="stable")]
    ks, vs = key[order], values[order]
    count = np.bincount(ks, minlength=n_groups)
    start = np.r_[0, np.cumsum(count)[:-1]]
    out = np.full(n_groups, np.nan)
    has = count > 0
    pick = start[has] + np.floor(q * (count[has] - 1)).astype(np.int64)
    out[has] = vs[pick]
    return out, count


def _out_and_back(
    a: np.ndarray,
    t_s: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    d_in: np.ndarray,
    d_out: np.ndarray,
    has_prev: np.ndarray,
    has_next: np.ndarray,
    scale_table: np.ndarray,
    n_bins: int,
    p: CleanParams,
) -> np.ndarray:
    """Out-and-back score (dimensionless; 0 without two neighbours) of every sorted fix.

    A fix scoring above ``out_and_back_ratio`` is far from both neighbours by more than the
    animal's own movement explains.

    For sorted fix ``i`` with neighbours ``i-1`` and ``i+1`` (distances in m, times in s)::

        score = min(d_in, d_out) / (floor_m + skip_weight * d_skip + bridge_m)

    ``d_skip`` is the distance between the neighbours; ``bridge_m`` is the spread of a
    Brownian bridge between them at fix ``i``, ``s * sqrt(dt_in * dt_out / (dt_in + dt_out))``
    with ``s`` (m per sqrt(h)) the animal's movement scale in the local-solar-time bins
    of the two steps (RMS). A gross error is far from *both* neighbours (``min``), so the
    fixes next to an outlier, which are far from only one side, are never blamed.
    """
    if not np.isfinite(p.out_and_back_ratio) or a.size < 3:
        return np.zeros(a.size, dtype=bool)
    m = a.size
    prv = np.maximum(np.arange(m) - 1, 0)
    nxt = np.minimum(np.arange(m) + 1, m - 1)
    d_skip = haversine_m(x[prv], y[prv], x[nxt], y[nxt])
    dt_in = (t_s - t_s[prv]) / 3600.0
    dt_out = (t_s[nxt] - t_s) / 3600.0
    # scale of the step into each fix, looked up by the bin of the step's midpoint
    s_in = scale_table[a, _diel_bin(0.5 * (t_s + t_s[prv]), x, n_bins)]
    s_out = s_in[nxt]
    with np.errstate(invalid="ignore", divide="ignore"):
        bridge = np.sqrt(0.5 * (s_in**2 + s_out**2) * dt_in * dt_out / (dt_in + dt_out))
        score = np.minimum(d_in, d_out) / (
            p.out_and_back_floor_m + p.out_and_back_skip_weight * d_skip + bridge
        )
        return np.where(has_prev & has_next & np.isfinite(score), score, 0.0)
