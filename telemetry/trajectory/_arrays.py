"""Compiled array kernels of the trajectory steps: order statistics per group, fast spherical
distances and bearings, a sum of logs taken in chunks (the shared numpy helpers are in
:mod:`telemetry.arrays`)."""

from __future__ import annotations

import math

import numba
import numpy as np

EARTH_RADIUS_M = 6_371_008.8
"""Mean Earth radius (m, IUGG) for the fast spherical distances used by filters."""


@numba.njit(cache=True, inline="always")
def log_absorb(det: float, s: float, ll: float) -> tuple[float, float]:
    """``det × s`` and ``ll``, or (1, ``ll - log(det × s)``) where that product leaves
    [1e-150, 1e150]: a recursion's ``ll - Σ log s`` as one ``log`` per chunk of rows rather than
    one per row (the Kalman filters' ``log`` was 30-36 % of a lane's cost per row in a
    microbenchmark; the sums agree to ~1e-14 relative). The caller ends with ``ll - log(det)``. ``s > 0`` (a NaN propagates).

    >>> import math
    >>> det, ll = 1.0, 0.0
    >>> for s in [1e100, 3e70, 2.0, 1e-3]:
    ...     det, ll = log_absorb(det, s, ll)
    >>> abs((ll - math.log(det)) + math.log(1e100 * 3e70 * 2.0 * 1e-3)) < 1e-9
    True
    """
    q = det * s
    if 1e-150 < q < 1e150:
        return q, ll
    return 1.0, ll - (math.log(det) + math.log(s))  # (separately: the product may overflow)


@numba.njit(cache=True)
def select_kth(a: np.ndarray, k: int) -> float:  # pragma: no cover
    """The ``k``-th smallest value of ``a`` (0-based), reordering ``a`` in place.

    Quickselect with Hoare partitioning: O(n) on average, and a fraction of the compile
    time of numba's ``np.partition``/``np.sort`` (seconds each on the first run). On
    return every value after position ``k`` is ≥ ``a[k]``.
    """
    lo, hi = 0, a.size - 1
    while lo < hi:
        pivot = a[(lo + hi) // 2]
        i, j = lo, hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            break  # a[j+1:i] all equal the pivot
    return a[k]


@numba.njit(cache=True, parallel=True)
def group_order_stats(values: np.ndarray, start: np.ndarray, count: np.ndarray,
                      k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
    """The ``k[g]``-th and ``(k[g]+1)``-th smallest values of each group (the second = the
    first when ``k[g]`` is the last); ``values`` grouped, group ``g`` at
    ``start[g]:start[g]+count[g]`` (groups without values give NaN). O(n), no sort."""
    lo = np.full(start.size, np.nan)
    hi = np.full(start.size, np.nan)
    for g in numba.prange(start.size):
        m = count[g]
        if m == 0:
            continue
        buf = values[start[g]:start[g] + m].copy()
        kk = k[g]
        lo[g] = select_kth(buf, kk)
        hi[g] = lo[g] if kk + 1 >= m else np.min(buf[kk + 1:])
    return lo, hi


def _flat4(*arrays: np.ndarray) -> tuple[tuple[int, ...], list[np.ndarray]]:
    """Broadcast four coordinate arrays; their shape and contiguous float64 1-D views."""
    b = np.broadcast_arrays(*[np.asarray(a, dtype=np.float64) for a in arrays])
    return b[0].shape, [np.ascontiguousarray(a).ravel() for a in b]


@numba.njit(cache=True, parallel=True)
def _haversine(lon1, lat1, lon2, lat2, radius):  # pragma: no cover - compiled
    out = np.empty(lon1.size)
    d2r = math.pi / 180.0
    for i in numba.prange(lon1.size):
        p1 = lat1[i] * d2r
        p2 = lat2[i] * d2r
        s1 = math.sin(0.5 * (p2 - p1))
        s2 = math.sin(0.5 * (lon2[i] - lon1[i]) * d2r)
        a = s1 * s1 + math.cos(p1) * math.cos(p2) * s2 * s2
        out[i] = 2.0 * radius * math.asin(math.sqrt(min(max(a, 0.0), 1.0)))
    return out


@numba.njit(cache=True, parallel=True)
def _bearing(lon1, lat1, lon2, lat2):  # pragma: no cover - compiled
    out = np.empty(lon1.size)
    d2r = math.pi / 180.0
    for i in numba.prange(lon1.size):
        p1 = lat1[i] * d2r
        p2 = lat2[i] * d2r
        dl = (lon2[i] - lon1[i]) * d2r
        y = math.sin(dl) * math.cos(p2)
        x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
        out[i] = math.atan2(y, x) / d2r
    return out


def haversine_m(lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray) -> np.ndarray:
    """Great-circle distance (m) on the mean sphere; within 0.5 % of the ellipsoid.

    Used only where a threshold is compared (filters, clusters), where speed beats the
    last 0.5 %; reported distances are geodesic (:mod:`telemetry.trajectory.geodesic`).
    One parallel numba loop (inputs in degrees, broadcast together; NaN in, NaN out).
    """
    shape, (a, b, c, d) = _flat4(lon1, lat1, lon2, lat2)
    return _haversine(a, b, c, d, EARTH_RADIUS_M).reshape(shape)


def bearing_deg(lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray) -> np.ndarray:
    """Initial great-circle bearing (degrees clockwise from north, -180..180)."""
    shape, (a, b, c, d) = _flat4(lon1, lat1, lon2, lat2)
    return _bearing(a, b, c, d).reshape(shape)


def wrap_deg(angle: np.ndarray) -> np.ndarray:
    """Wrap degrees to ``(-180, 180]``."""
    out = np.mod(angle + 180.0, 360.0) - 180.0
    return np.where(out == -180.0, 180.0, out)
