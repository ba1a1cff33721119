"""Compiled loops of :mod:`telemetry.trajectory.clean` (numba, cached on disk).

Each kernel walks rows that the caller has already put in order (file order for the
clock-jump window, ``(animal, time)`` for the rest) and handles one animal (or one
``(file, animal)`` run) at a time, so the per-animal state stays in a few small arrays
instead of whole-table temporaries.

The arithmetic copies the vectorised numpy formulas it replaces operation for operation
(same order of floating-point operations, same int-to-float conversions), because the
flags must not change by a single row: a fix exactly at a threshold must land on the same
side. Distances use the same spherical formula as
:func:`telemetry.trajectory._arrays.haversine_m`.

``error_model="numpy"``: a division by zero gives inf/NaN as in numpy (e.g. an
out-and-back denominator of 0 with ``out_and_back_floor_m = 0``) instead of raising.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from telemetry.arrays import over_groups
from telemetry.trajectory._arrays import EARTH_RADIUS_M, select_kth

_D2R = math.pi / 180.0


@numba.njit(cache=True)
def _haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:  # pragma: no cover
    """Great-circle distance (m); the expression of ``_arrays._haversine``, term for term."""
    p1 = lat1 * _D2R
    p2 = lat2 * _D2R
    s1 = math.sin(0.5 * (p2 - p1))
    s2 = math.sin(0.5 * (lon2 - lon1) * _D2R)
    a = s1 * s1 + math.cos(p1) * math.cos(p2) * s2 * s2
    return 2.0 * EARTH_RADIUS_M * math.asin(math.sqrt(min(max(a, 0.0), 1.0)))


@numba.njit(cache=True)
def _bearing_deg(lon1: float, lat1: float, lon2: float, lat2: float) -> float:  # pragma: no cover
    """Initial bearing (degrees, -180..180); the expression of ``_arrays._bearing``."""
    p1 = lat1 * _D2R
    p2 = lat2 * _D2R
    dl = (lon2 - lon1) * _D2R
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.atan2(y, x) / _D2R


@numba.njit(cache=True)
def _wrap_deg(angle: float) -> float:  # pragma: no cover
    """Degrees wrapped to (-180, 180] (float ``%`` has numpy's ``np.mod`` semantics)."""
    out = (angle + 180.0) % 360.0 - 180.0
    return 180.0 if out == -180.0 else out


@numba.njit(cache=True)
def _diel_bin(t_s: float, lon: float, n_bins: int) -> int:  # pragma: no cover
    """Local-solar-time bin (0..n_bins-1) of time ``t_s`` (s since epoch) at longitude ``lon``."""
    hour = (t_s / 3600.0 + lon / 15.0) % 24.0
    return min(int(hour * n_bins / 24.0), n_bins - 1)


@numba.njit(cache=True)
def _insertion_sort(a: np.ndarray, n: int) -> None:  # pragma: no cover
    """Sort ``a[:n]`` in place (a handful of values: cheaper than a general sort)."""
    for i in range(1, n):
        v = a[i]
        j = i
        while j > 0 and a[j - 1] > v:
            a[j] = a[j - 1]
            j -= 1
        a[j] = v


# ---------------------------------------------------------------- clock jumps


@numba.njit(cache=True, error_model="numpy")
def file_order_jumps(src: np.ndarray, animal: np.ndarray, t_ns: np.ndarray, limit_ns: float) -> np.ndarray:  # pragma: no cover
    """Clock-jump rule (a) on rows in file order: ``|t - median of t[i-2..i+2]| > limit_ns``.

    Runs of equal ``(src, animal)`` are judged separately and only when ordered in time
    (at most 10 % or at least 90 % of their steps go backwards); the window is clipped to
    the run (edge values repeat, as ``np.clip`` on the indices does).
    """
    n = t_ns.size
    out = np.zeros(n, dtype=np.bool_)
    window = np.empty(5, dtype=np.int64)
    s = 0
    while s < n:
        e = s + 1
        while e < n and src[e] == src[s] and animal[e] == animal[s]:
            e += 1
        n_back = 0
        for i in range(s + 1, e):
            if t_ns[i] < t_ns[i - 1]:
                n_back += 1
        frac_back = float(n_back) / float(max(e - s - 1, 1))
        if frac_back <= 0.1 or frac_back >= 0.9:
            for i in range(s, e):
                for o in range(5):
                    window[o] = t_ns[min(max(i + o - 2, s), e - 1)]
                _insertion_sort(window, 5)  # np.sort per row would cost 10x more
                # np.median of 5 ints is the middle one as float; int - float compares as floats
                if abs(float(t_ns[i]) - float(window[2])) > limit_ns:
                    out[i] = True
        s = e
    return out


@numba.njit(cache=True, error_model="numpy")
def span_jumps(animal: np.ndarray, t_ns: np.ndarray, limit_ns: float, span_fraction: float) -> np.ndarray:  # pragma: no cover
    """Clock-jump rule (b) on rows sorted by ``(animal, time)``: far outside the 10th-90th
    percentile span of the animal's times, by more than ``max(limit_ns, span_fraction * span)``."""
    n = t_ns.size
    out = np.zeros(n, dtype=np.bool_)
    s = 0
    while s < n:
        e = s + 1
        while e < n and animal[e] == animal[s]:
            e += 1
        m = e - s
        lo = t_ns[s + int(math.floor(0.1 * (m - 1)))]
        hi = t_ns[s + int(math.ceil(0.9 * (m - 1)))]
        margin = max(limit_ns, span_fraction * float(hi - lo))
        low, high = float(lo) - margin, float(hi) + margin
        for i in range(s, e):
            ti = float(t_ns[i])
            out[i] = ti < low or ti > high
        s = e
    return out


# ---------------------------------------------------------------- speed and spikes



@numba.njit(cache=True, error_model="numpy")
def _scale_row(t_s: np.ndarray, x: np.ndarray, d_step: np.ndarray, n_bins: int, q: float,
               min_steps: int) -> np.ndarray:  # pragma: no cover
    """One animal's movement scale (m per sqrt(h)) per local-solar-time bin.

    The lower ``q``-quantile of ``step / sqrt(dt_h)`` over the steps (length ``d_step[i]``
    into fix ``i``, m) whose midpoint falls in the bin; bins with fewer than ``min_steps``
    steps take the all-day quantile (NaN when the animal has no step). Rows sorted by time.
    """
    m = t_s.size
    sp = np.empty(max(m - 1, 0))
    bins = np.empty(max(m - 1, 0), dtype=np.int64)
    count = np.zeros(n_bins, dtype=np.int64)
    k = 0
    for i in range(1, m):
        dt_h = (t_s[i] - t_s[i - 1]) / 3600.0
        if dt_h > 0:
            sp[k] = d_step[i] / math.sqrt(dt_h)
            bins[k] = _diel_bin(0.5 * (t_s[i] + t_s[i - 1]), x[i], n_bins)
            count[bins[k]] += 1
            k += 1
    if k == 0:
        return np.full(n_bins, np.nan)
    # order statistics: the value does not depend on how ties are ordered, so it is the
    # one the stable sort of the vectorised version picked
    grouped = sp[:k].copy()
    table = np.full(n_bins, select_kth(grouped, int(math.floor(q * (k - 1)))))
    # group the values by bin (counting sort), then one partition per bin
    first = np.zeros(n_bins + 1, dtype=np.int64)
    for b in range(n_bins):
        first[b + 1] = first[b] + count[b]
    fill = first[:n_bins].copy()
    for j in range(k):
        grouped[fill[bins[j]]] = sp[j]
        fill[bins[j]] += 1
    for b in range(n_bins):
        if count[b] >= min_steps:
            want = int(math.floor(q * (count[b] - 1)))
            table[b] = select_kth(grouped[first[b]:first[b + 1]], want)
    return table


@numba.njit(cache=True, error_model="numpy")
def _local_median_deviation(i: int, x: np.ndarray, y: np.ndarray, m: int, w: int,
                            dlon: np.ndarray, nlat: np.ndarray) -> float:  # pragma: no cover
    """Distance (m) from fix ``i`` to the component-wise median of up to ``w`` fixes each
    side among ``x[:m]``, ``y[:m]`` (longitudes relative to the fix); 0 without neighbours.

    The median is ``np.ma.median``'s (what ``np.nanmedian`` uses on short rows):
    ``(low + high) / 2`` of the two middle values, the middle value twice when odd.
    ``dlon`` and ``nlat`` are scratch of length ``2 * w``.
    """
    c = 0
    for j in range(max(i - w, 0), min(i + w + 1, m)):
        if j != i:
            dlon[c] = _wrap_deg(x[j] - x[i])
            nlat[c] = y[j]
            c += 1
    if c == 0:
        return 0.0
    _insertion_sort(dlon, c)
    _insertion_sort(nlat, c)
    h = c // 2
    lo = h if c % 2 == 1 else h - 1
    mlon = (dlon[lo] + dlon[h]) / 2.0
    mlat = (nlat[lo] + nlat[h]) / 2.0
    return _haversine_m(x[i], y[i], x[i] + mlon, mlat)


RETURN_FIXES = 3
"""A fast step blames a fix only if the track is back within this many fixes without it."""


@numba.njit(cache=True, error_model="numpy")
def _comes_back(tt: np.ndarray, xx: np.ndarray, yy: np.ndarray, m: int, anchor: int, first: int, direction: int,
                max_speed_kmh: float, min_step_m: float) -> bool:  # pragma: no cover
    """Whether the track comes back without fix ``first``: skipping it (and up to
    ``RETURN_FIXES - 1`` more beyond it in ``direction``), a later (earlier) fix lies within
    half of the suspect step's length of ``anchor`` and is reached at a plausible speed."""
    away = _haversine_m(xx[anchor], yy[anchor], xx[first], yy[first])
    for j in range(RETURN_FIXES):
        o = first + direction * (j + 1)
        if o < 0 or o >= m:
            return False
        d = _haversine_m(xx[anchor], yy[anchor], xx[o], yy[o])
        dt = abs(tt[o] - tt[anchor])
        if d < 0.5 * away and (d <= min_step_m or (dt > 0 and d / dt * 3.6 <= max_speed_kmh)):
            return True
    return False


@numba.njit(cache=True, error_model="numpy")
def _filter_animal(t_s: np.ndarray, x: np.ndarray, y: np.ndarray, d_step: np.ndarray, table: np.ndarray,
                   n_bins: int, max_speed_kmh: float, min_step_m: float, spike_speed_kmh: float,
                   min_turn_deg: float, ratio: float, floor_m: float, skip_weight: float, w: int,
                   max_iterations: int, speed_out: np.ndarray, spike_out: np.ndarray) -> None:  # pragma: no cover
    """Iterated speed/spike filter of one animal (rows sorted by time); writes the flags.

    A lone fix still gets a round (with ``ratio < 0`` its score 0 makes it a spike, as
    in the vectorised version). Works on the fixes still alive, compacted in place to the first ``m`` slots of each
    array. Everything about fix ``k`` except the blame of a fast step depends only on
    ``k`` and its two alive neighbours, so after a round only the fixes next to a removed
    one are recomputed. Animals never influence each other, so iterating per animal
    until a round flags nothing gives the flags of the whole-table rounds of the former
    vectorised version.
    """
    n = t_s.size
    if n == 0:
        return
    check_ratio = math.isfinite(ratio)
    row = np.arange(n)  # animal-local row of each alive slot
    tt, xx, yy = t_s.copy(), x.copy(), y.copy()
    d_in = d_step.copy()  # step into each fix (m), from the previous alive fix
    v_in = np.zeros(n)  # its speed (km/h)
    s_in = np.zeros(n)  # movement scale of its local-solar-time bin (m per sqrt(h))
    spike = np.zeros(n, dtype=np.bool_)  # spike candidate (either rule)
    score = np.zeros(n)  # out-and-back score
    dirty = np.ones(n, dtype=np.bool_)  # the previous alive fix changed (or first round)
    blamed = np.zeros(n, dtype=np.bool_)
    rank = np.empty(n)
    dev = np.empty(n)
    keep = np.empty(n, dtype=np.bool_)
    dlon = np.empty(2 * w)
    nlat = np.empty(2 * w)
    m = n
    for it in range(max_iterations):
        for k in range(1, m):
            if dirty[k]:
                if it > 0:  # round 0 has the steps of the caller
                    d_in[k] = _haversine_m(xx[k - 1], yy[k - 1], xx[k], yy[k])
                # no time between two fixes (a dated-only study): the speed cannot be judged
                v_in[k] = d_in[k] / (tt[k] - tt[k - 1]) * 3.6 if d_in[k] > 0 and tt[k] > tt[k - 1] else 0.0
                s_in[k] = table[_diel_bin(0.5 * (tt[k] + tt[k - 1]), xx[k], n_bins)]
        for k in range(1, m - 1):
            if not (dirty[k] or dirty[k + 1]):
                continue  # same neighbours as last round: same verdict
            # Bjørneraas et al. (2010): fast in, fast out, sharp turn back (bearings only
            # when the rest holds: the trigonometry is the expensive part)
            spike[k] = (
                v_in[k] > spike_speed_kmh and v_in[k + 1] > spike_speed_kmh
                and d_in[k] > min_step_m and d_in[k + 1] > min_step_m
                and abs(_wrap_deg(_bearing_deg(xx[k], yy[k], xx[k + 1], yy[k + 1])
                                  - _bearing_deg(xx[k - 1], yy[k - 1], xx[k], yy[k]))) > min_turn_deg
            )
            score[k] = 0.0
            if check_ratio:  # out-and-back score (formula: clean._speed_and_spikes)
                d_skip = _haversine_m(xx[k - 1], yy[k - 1], xx[k + 1], yy[k + 1])
                dt_in = (tt[k] - tt[k - 1]) / 3600.0
                dt_out = (tt[k + 1] - tt[k]) / 3600.0
                bridge = math.sqrt(0.5 * (s_in[k] ** 2 + s_in[k + 1] ** 2) * dt_in * dt_out / (dt_in + dt_out))
                sc = min(d_in[k], d_in[k + 1]) / (floor_m + skip_weight * d_skip + bridge)
                score[k] = sc if math.isfinite(sc) else 0.0
        # the ends have no out-and-back score and no spike of their own
        spike[0] = spike[m - 1] = False
        score[0] = score[m - 1] = 0.0
        for k in range(m):
            spike[k] = spike[k] or score[k] > ratio  # 0 > ratio at the ends, as before
            blamed[k] = False
            dev[k] = np.nan
        flagged = False
        for k in range(1, m):
            if v_in[k] > max_speed_kmh and d_in[k] > min_step_m:
                # too fast from k-1 to k. A fix is out of place only if the track comes back
                # without it: blame k if skipping it (and up to RETURN_FIXES - 1 more after
                # it) leaves a step of plausible speed, k-1 likewise backwards; both: the end
                # farther from its neighbours' median (on a tie, the later fix); neither: the
                # animal really went (a fast leg, or the wrong species profile), nobody is blamed
                late = _comes_back(tt, xx, yy, m, k - 1, k, 1, max_speed_kmh, min_step_m)
                early = _comes_back(tt, xx, yy, m, k, k - 1, -1, max_speed_kmh, min_step_m)
                if not (late or early):
                    continue
                if late and early:
                    if np.isnan(dev[k - 1]):
                        dev[k - 1] = _local_median_deviation(k - 1, xx, yy, m, w, dlon, nlat)
                    if np.isnan(dev[k]):
                        dev[k] = _local_median_deviation(k, xx, yy, m, w, dlon, nlat)
                    blamed[k - 1 if dev[k - 1] > dev[k] else k] = True
                else:
                    blamed[k if late else k - 1] = True
                flagged = True
        for k in range(m):
            rank[k] = np.inf if blamed[k] else (score[k] if spike[k] else -np.inf)
        # of adjacent candidates take only the worst this round (blamed speed fixes first);
        # the others are judged again once their bad neighbours are gone
        for k in range(m):
            beaten = (k > 0 and rank[k - 1] > rank[k]) or (
                k < m - 1 and ((rank[k + 1] >= rank[k] and spike[k + 1]) or blamed[k + 1]))
            keep[k] = True
            if blamed[k]:
                speed_out[row[k]] = True
                keep[k] = False
            elif spike[k] and not beaten:
                spike_out[row[k]] = True
                keep[k] = False
                flagged = True
        if not flagged:
            return
        # compact the survivors in place; a fix whose previous alive fix changed is dirty
        j = 0
        prev_kept = -2
        for k in range(m):
            if keep[k]:
                row[j], tt[j], xx[j], yy[j] = row[k], tt[k], xx[k], yy[k]
                d_in[j], v_in[j], s_in[j] = d_in[k], v_in[k], s_in[k]
                spike[j], score[j] = spike[k], score[k]
                dirty[j] = j > 0 and prev_kept != k - 1
                prev_kept = k
                j += 1
        m = j
        if m == 0:
            return


def speed_and_spikes(starts: np.ndarray, t_s: np.ndarray, x: np.ndarray, y: np.ndarray, n_bins: int,
                     q: float, min_steps: int, max_speed_kmh: np.ndarray, min_step_m: float,
                     spike_speed_kmh: np.ndarray, min_turn_deg: float, ratio: float, floor_m: float,
                     skip_weight: float, w: int, max_iterations: int) -> tuple[np.ndarray, np.ndarray]:
    """Speed and spike flags of rows sorted by ``(animal, time)`` (times in s, lon/lat in
    degrees); animal ``g`` is rows ``starts[g]:starts[g+1]`` with speed limits
    ``max_speed_kmh[g]`` and ``spike_speed_kmh[g]``. Animals are independent and run on threads
    (:func:`~telemetry.trajectory._arrays.over_groups`)."""
    n = t_s.size
    speed_out = np.zeros(n, dtype=np.bool_)
    spike_out = np.zeros(n, dtype=np.bool_)
    over_groups(_speed_and_spikes_block, starts, starts, t_s, x, y, int(n_bins), float(q), int(min_steps),
                max_speed_kmh, float(min_step_m), spike_speed_kmh, float(min_turn_deg), float(ratio), float(floor_m),
                float(skip_weight), int(w), int(max_iterations), speed_out, spike_out)
    return speed_out, spike_out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _speed_and_spikes_block(starts, t_s, x, y, n_bins, q, min_steps, max_speed_kmh, min_step_m, spike_speed_kmh,
                            min_turn_deg, ratio, floor_m, skip_weight, w, max_iterations, speed_out, spike_out,
                            g0, g1):  # pragma: no cover
    for g in range(g0, g1):
        lo, hi = starts[g], starts[g + 1]
        # step lengths (m) into each fix: the movement scale and the first round share them
        d_step = np.zeros(hi - lo)
        for i in range(lo + 1, hi):
            d_step[i - lo] = _haversine_m(x[i - 1], y[i - 1], x[i], y[i])
        table = _scale_row(t_s[lo:hi], x[lo:hi], d_step, n_bins, q, min_steps)
        _filter_animal(t_s[lo:hi], x[lo:hi], y[lo:hi], d_step, table, n_bins, max_speed_kmh[g], min_step_m,
                       spike_speed_kmh[g], min_turn_deg, ratio, floor_m, skip_weight, w, max_iterations,
                       speed_out[lo:hi], spike_out[lo:hi])
