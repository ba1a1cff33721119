"""Resident periods and transits of one track: where a home range can mean something.

A home range is the area of a *range-resident* process. A migrant (a cuckoo wintering in
Africa and breeding in Europe, a gull moving between colonies, a dispersing subadult) is
resident in several places in turn, and one 95 % range over all of it is a map of its
journeys. So each track is first cut into periods:

1. daily centroids of the fixes (one point per calendar day in UTC, or per fix when fixes
   are sparser than daily);
2. the optimal partition of that series in time into segments of at least ``min_days``,
   each a Gaussian cloud with its own centre and spread, penalised by BIC (optimal
   partitioning, Jackson et al. 2005; exact, unlike binary segmentation, which misses a
   return to an earlier range — a gull wintering south and breeding north year after year);
3. adjacent segments are merged again while the centre of one (the median of its fixes)
   lies inside the other's range (the radius holding 99 % of a Gaussian cloud with the
   fixes' median distance to the centre: 2.58 × that distance, robust to a migration leg
   inside the segment): a resident animal using its range part by part is cut by step 2
   and joined again here;
4. the days at a segment's inner ends whose centroid lies outside the segment's range are
   transit days (a migration leg), trimmed until the range of the days left holds them all.

Whether a resident period is range-resident is then decided by the movement models
(:mod:`telemetry.trajectory.ctmm`): a stationary model (OU, OUF, IID) must beat Brownian
motion by AICc — the variogram reaching an asymptote — which is the criterion of the
continuous-time literature (Fleming et al. 2014).
"""

from __future__ import annotations

import numpy as np

__all__ = ["Period", "periods"]

_RAYLEIGH_99_OVER_50 = 3.0349 / 1.1774  # 99 % and 50 % quantiles of the radius of a 2-D Gaussian

# Jackson, B. et al. (2005). An algorithm for optimal partitioning of data on an interval.
# IEEE Signal Process. Lett. 12:105-108.


class Period:
    """Fix index range ``[start, stop)`` of one period and its kind (``resident``/``transit``)."""

    __slots__ = ("start", "stop", "kind")

    def __init__(self, start: int, stop: int, kind: str) -> None:
        self.start, self.stop, self.kind = start, stop, kind

    def __repr__(self) -> str:
        return f"Period({self.start}, {self.stop}, {self.kind!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Period) and (self.start, self.stop, self.kind) == (other.start, other.stop, other.kind)


def _segments(cx: np.ndarray, cy: np.ndarray, min_len: int, penalty: float, floor_m2: float) -> list[int]:
    """Cut points of the optimal partition of the daily centroids (optimal partitioning,
    Jackson et al. 2005) under a Gaussian cost with each segment's own mean and variance,
    ``2 n log(SSE / 2n + floor)``, plus ``penalty`` per segment; segments ≥ ``min_len`` days.
    O(D²) in the number of days, vectorised over the segment starts."""
    d = cx.size
    s1 = np.r_[0.0, np.cumsum(cx)]
    s2 = np.r_[0.0, np.cumsum(cy)]
    q = np.r_[0.0, np.cumsum(cx * cx + cy * cy)]
    best = np.full(d + 1, np.inf)
    best[0] = -penalty
    prev = np.zeros(d + 1, dtype=np.int64)
    for j in range(min_len, d + 1):
        i = np.arange(0, j - min_len + 1)
        i = i[np.isfinite(best[i])]
        if i.size == 0:
            continue
        n = (j - i).astype(float)
        sse = np.maximum(q[j] - q[i] - ((s1[j] - s1[i]) ** 2 + (s2[j] - s2[i]) ** 2) / n, 0.0)
        cost = best[i] + 2.0 * n * np.log(sse / (2.0 * n) + floor_m2) + penalty
        k = int(np.argmin(cost))
        best[j], prev[j] = cost[k], i[k]
    if not np.isfinite(best[d]):
        return []
    cuts = []
    j = d
    while j > 0:
        j = int(prev[j])
        if j > 0:
            cuts.append(j)
    return sorted(cuts)


def periods(t_s: np.ndarray, x_m: np.ndarray, y_m: np.ndarray, *, min_days: float = 14.0,
            penalty_factor: float = 1.0, floor_m: float = 100.0) -> list[Period]:
    """Resident periods and transits of one track (see the module notes).

    Parameters
    ----------
    t_s : ndarray
        Fix times (s), sorted.
    x_m, y_m : ndarray
        Projected coordinates (m).
    min_days : float
        Shortest resident period (days).
    penalty_factor : float
        Multiplier of the BIC penalty per segment (more: fewer periods).
    floor_m : float
        Smallest spread (m) a segment's daily centroids are taken to have.

    Returns
    -------
    list of Period
        Covering every fix in order.

    Examples
    --------
    A track that stays 40 days at one place and 40 days 500 km away, moving between them in
    4 days, has two resident periods and a transit:

    >>> rng = np.random.default_rng(0)
    >>> t = np.arange(0, 84 * 86400, 4 * 3600.0)
    >>> x = np.where(t < 40 * 86400, 0.0, np.minimum((t - 40 * 86400) / (4 * 86400), 1.0) * 5e5)
    >>> x = x + rng.normal(0, 2000, t.size)
    >>> [p.kind for p in periods(t, x, rng.normal(0, 2000, t.size))]
    ['resident', 'transit', 'resident']
    """
    t = np.asarray(t_s, dtype=float)
    n = t.size
    if n == 0:
        return []
    day = np.floor((t - t[0]) / 86400.0).astype(np.int64)
    starts = np.flatnonzero(np.r_[True, day[1:] != day[:-1]])
    counts = np.diff(np.r_[starts, n])
    cx = np.add.reduceat(np.asarray(x_m, float), starts) / counts
    cy = np.add.reduceat(np.asarray(y_m, float), starts) / counts
    days = day[starts]
    span_days = float(days[-1] - days[0] + 1)
    min_len = max(int(np.ceil(min_days * starts.size / span_days)), 2)

    # BIC: three parameters (mean x, y, variance) per segment; the floor keeps a nest or a den
    # (centroids metres apart) from looking infinitely certain
    cuts = _segments(cx, cy, min_len, penalty_factor * 3.0 * np.log(max(starts.size, 2)), floor_m ** 2)
    segs = [[a, b] for a, b in zip([0, *cuts], [*cuts, starts.size])]
    xf, yf = np.asarray(x_m, float), np.asarray(y_m, float)
    fix_at = np.r_[starts, n]

    def extent(a: int, b: int) -> tuple[float, float, float]:
        """Median centre of the fixes of days [a, b) and the radius holding 99 % of a Gaussian
        cloud with their median distance to it (m): robust to a migration leg inside the days."""
        px, py = xf[fix_at[a]:fix_at[b]], yf[fix_at[a]:fix_at[b]]
        mx, my = float(np.median(px)), float(np.median(py))
        return mx, my, _RAYLEIGH_99_OVER_50 * float(np.median(np.hypot(px - mx, py - my)))

    # neighbours whose centres lie inside one another's range are one range that drifted or
    # was used part by part: merged, again until no pair is left (a resident animal's cuts)
    ext = [extent(a, b) for a, b in segs]
    j = 0
    while j < len(segs) - 1:
        (x0, y0, r0), (x1, y1, r1) = ext[j], ext[j + 1]
        if np.hypot(x0 - x1, y0 - y1) < r0 + r1:
            segs[j] = [segs[j][0], segs[j + 1][1]]
            del segs[j + 1], ext[j + 1]
            ext[j] = extent(*segs[j])
            j = max(j - 1, 0)  # the merged segment may now overlap its left neighbour
        else:
            j += 1
    merged = segs
    # transit days at the inner ends of each segment: daily centres outside its range, trimmed
    # until the range of what is left no longer leaves any out
    kinds = np.full(starts.size, "resident", dtype=object)
    for j, (a, b) in enumerate(merged):
        lo, hi = a, b
        while hi - lo > 1:
            mx, my, r = extent(lo, hi)
            far = np.hypot(cx[lo:hi] - mx, cy[lo:hi] - my) > max(r, floor_m)
            nlo, nhi = lo, hi
            if j > 0:
                while nlo < nhi - 1 and far[nlo - lo]:
                    nlo += 1
            if j < len(merged) - 1:
                while nhi > nlo + 1 and far[nhi - 1 - lo]:
                    nhi -= 1
            if (nlo, nhi) == (lo, hi):
                break
            lo, hi = nlo, nhi
        kinds[a:lo] = "transit"
        kinds[hi:b] = "transit"
    # day runs → fix ranges; every change of segment or kind starts a period
    seg_of_day = np.zeros(starts.size, dtype=np.int64)
    for j, (a, b) in enumerate(merged):
        seg_of_day[a:b] = j
    # transit days between two segments form one transit period
    label = np.where(kinds == "transit", -1, seg_of_day)
    change = np.flatnonzero(np.r_[True, label[1:] != label[:-1]])
    fix_start = np.r_[starts, n]
    ends = np.r_[change[1:], starts.size]
    out = [Period(int(fix_start[i]), int(fix_start[j]), "transit" if label[i] < 0 else "resident")
           for i, j in zip(change, ends)]
    return out
