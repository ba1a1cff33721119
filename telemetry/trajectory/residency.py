"""Resident periods and transits of one track: where a home range can mean something.

A home range is the area of a *range-resident* process. A migrant (a cuckoo wintering in
Africa and breeding in Europe, a gull moving between colonies, a dispersing subadult) is
resident in several places in turn, and one 95 % range over all of it is a map of its
journeys. So each track is first cut into periods:

1. daily centroids of the fixes (one point per calendar day in UTC, or per fix when fixes
   are sparser than daily);
2. recursive binary segmentation of that series in time (the split that most reduces the
   sum of squared distances to the segments' means), kept while a split removes at least
   ``split_share`` of the segment's spread and leaves ``min_days`` on each side — a
   stationary range split in time gives two overlapping halves and a small reduction; a
   relocation gives two separate clouds and a large one;
3. adjacent segments whose clouds overlap (centre distance below the sum of their robust
   radii) are merged again;
4. the days at a segment's ends that lie beyond the segment's 99 % radius (2.6 × its median
   distance to its median centre, the Rayleigh quantile ratio) are transit days (a
   migration leg), unless they are the track's own first or last days.

Whether a resident period is range-resident is then decided by the movement models
(:mod:`telemetry.trajectory.ctmm`): a stationary model (OU, OUF, IID) must beat Brownian
motion by AICc — the variogram reaching an asymptote — which is the criterion of the
continuous-time literature (Fleming et al. 2014).
"""

from __future__ import annotations

import numpy as np

__all__ = ["Period", "periods"]

_RAYLEIGH_99_OVER_MEDIAN = 3.035 / 1.1774  # 99 % and 50 % quantiles of a Rayleigh radius


class Period:
    """Fix index range ``[start, stop)`` of one period and its kind (``resident``/``transit``)."""

    __slots__ = ("start", "stop", "kind")

    def __init__(self, start: int, stop: int, kind: str) -> None:
        self.start, self.stop, self.kind = start, stop, kind

    def __repr__(self) -> str:
        return f"Period({self.start}, {self.stop}, {self.kind!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Period) and (self.start, self.stop, self.kind) == (other.start, other.stop, other.kind)


def _sse(cx: np.ndarray, cy: np.ndarray) -> float:
    return float(((cx - cx.mean()) ** 2 + (cy - cy.mean()) ** 2).sum()) if cx.size else 0.0


def _best_split(cx: np.ndarray, cy: np.ndarray, min_len: int) -> tuple[int, float]:
    """Split index and the SSE it removes (prefix sums: O(n))."""
    n = cx.size
    if n < 2 * min_len:
        return -1, 0.0
    k = np.arange(1, n)
    sx, sy = np.cumsum(cx)[:-1], np.cumsum(cy)[:-1]
    tx, ty = cx.sum(), cy.sum()
    # between-groups sum of squares of a split after k points
    mx1, my1 = sx / k, sy / k
    mx2, my2 = (tx - sx) / (n - k), (ty - sy) / (n - k)
    between = k * (n - k) / n * ((mx1 - mx2) ** 2 + (my1 - my2) ** 2)
    ok = (k >= min_len) & (n - k >= min_len)
    if not ok.any():
        return -1, 0.0
    between = np.where(ok, between, -1.0)
    j = int(np.argmax(between))
    return int(k[j]), float(between[j])


def _radius(cx: np.ndarray, cy: np.ndarray) -> tuple[float, float, float]:
    """Median centre and median distance to it."""
    mx, my = float(np.median(cx)), float(np.median(cy))
    return mx, my, float(np.median(np.hypot(cx - mx, cy - my)))


def periods(t_s: np.ndarray, x_m: np.ndarray, y_m: np.ndarray, *, min_days: float = 14.0,
            split_share: float = 0.5) -> list[Period]:
    """Resident periods and transits of one track (see the module notes).

    Parameters
    ----------
    t_s : ndarray
        Fix times (s), sorted.
    x_m, y_m : ndarray
        Projected coordinates (m).
    min_days : float
        Shortest resident period (days).
    split_share : float
        Share of a segment's spread (sum of squared distances of its daily centroids to their
        mean) that a split must remove.

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

    cuts: list[int] = []

    def split(a: int, b: int) -> None:
        k, gain = _best_split(cx[a:b], cy[a:b], min_len)
        if k < 0 or gain < split_share * _sse(cx[a:b], cy[a:b]):
            return
        split(a, a + k)
        cuts.append(a + k)
        split(a + k, b)

    split(0, starts.size)
    segs = [[a, b] for a, b in zip([0, *cuts], [*cuts, starts.size])]
    merged = [segs[0]]
    for seg in segs[1:]:
        a0, b0 = merged[-1]
        mx0, my0, r0 = _radius(cx[a0:b0], cy[a0:b0])
        mx1, my1, r1 = _radius(cx[seg[0]:seg[1]], cy[seg[0]:seg[1]])
        if np.hypot(mx0 - mx1, my0 - my1) < r0 + r1:
            merged[-1][1] = seg[1]
        else:
            merged.append(seg)
    # transit days at the inner ends of each segment
    kinds = np.full(starts.size, "resident", dtype=object)
    for j, (a, b) in enumerate(merged):
        mx, my, r = _radius(cx[a:b], cy[a:b])
        far = np.hypot(cx[a:b] - mx, cy[a:b] - my) > _RAYLEIGH_99_OVER_MEDIAN * max(r, 1.0)
        if j > 0:
            i = 0
            while i < b - a and far[i]:
                kinds[a + i] = "transit"
                i += 1
        if j < len(merged) - 1:
            i = b - a - 1
            while i >= 0 and far[i]:
                kinds[a + i] = "transit"
                i -= 1
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
