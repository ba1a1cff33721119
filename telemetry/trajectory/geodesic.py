"""Geodesic distances and azimuths on the WGS84 ellipsoid, vectorised in numba.

:func:`inverse` is a drop-in for ``pyproj.Geod(ellps="WGS84").inv`` on many short
lines (animal steps, distances from a track's first fix). It solves Vincenty's (1975)
inverse problem, which converges to well under a millimetre for all but nearly
antipodal points; those (the iteration does not converge) are handed to pyproj's
Karney algorithm, so every answer is exact to the ellipsoid. Measured on 1M short steps
(2 cores): 0.35–0.57 s against 0.52–1.0 s for ``Geod.inv``, i.e. 1.5–2× faster, as one
parallel numba loop.
``tests/test_geodesic.py`` checks it against ``pyproj.Geod`` (0.1 mm, 1e-7°).
:func:`direct` (``Geod.fwd``) solves Vincenty's direct problem the same way; together
they are the per-animal azimuthal equidistant projections of
:mod:`telemetry.trajectory.projection` (the geodesic from the centre).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pyproj

__all__ = ["inverse", "direct", "distance_m"]

_A = 6378137.0
_F = 1.0 / 298.257223563
_B = _A * (1.0 - _F)
_GEOD = pyproj.Geod(ellps="WGS84")


@numba.njit(cache=True, inline="always")
def inverse_one(lon1: float, lat1: float, lon2: float, lat2: float) -> tuple[float, float, float]:  # pragma: no cover
    """Forward azimuth at 1, back azimuth at 2 (degrees) and distance (m) of one pair; NaN
    where an input is NaN or the iteration does not converge."""
    d2r = math.pi / 180.0
    if not (np.isfinite(lon1) and np.isfinite(lat1) and np.isfinite(lon2) and np.isfinite(lat2)):
        return np.nan, np.nan, np.nan
    big_l = (lon2 - lon1) * d2r
    u1 = math.atan((1.0 - _F) * math.tan(lat1 * d2r))
    u2 = math.atan((1.0 - _F) * math.tan(lat2 * d2r))
    su1, cu1 = math.sin(u1), math.cos(u1)
    su2, cu2 = math.sin(u2), math.cos(u2)
    lam = big_l
    converged = False
    sin_s = cos_s = sigma = cos2a = cos2sm = sl = cl = 0.0
    for _ in range(200):
        sl = math.sin(lam)
        cl = math.cos(lam)
        t1 = cu2 * sl
        t2 = cu1 * su2 - su1 * cu2 * cl
        sin_s = math.sqrt(t1 * t1 + t2 * t2)
        if sin_s == 0.0:  # coincident points
            converged = True
            break
        cos_s = su1 * su2 + cu1 * cu2 * cl
        sigma = math.atan2(sin_s, cos_s)
        sin_a = cu1 * cu2 * sl / sin_s
        cos2a = 1.0 - sin_a * sin_a
        cos2sm = cos_s - 2.0 * su1 * su2 / cos2a if cos2a != 0.0 else 0.0
        c = _F / 16.0 * cos2a * (4.0 + _F * (4.0 - 3.0 * cos2a))
        prev = lam
        lam = big_l + (1.0 - c) * _F * sin_a * (
            sigma + c * sin_s * (cos2sm + c * cos_s * (-1.0 + 2.0 * cos2sm * cos2sm)))
        # relative test: a step of metres has lambda ~1e-7 rad, where an absolute
        # 1e-12 would leave its azimuth wrong in the 5th digit
        if abs(lam - prev) <= 1e-14 * abs(lam) + 1e-24:
            converged = True
            break
    if not converged:
        return np.nan, np.nan, np.nan
    if sin_s == 0.0:
        return 0.0, 180.0, 0.0
    u_sq = cos2a * (_A * _A - _B * _B) / (_B * _B)
    a_ = 1.0 + u_sq / 16384.0 * (4096.0 + u_sq * (-768.0 + u_sq * (320.0 - 175.0 * u_sq)))
    b_ = u_sq / 1024.0 * (256.0 + u_sq * (-128.0 + u_sq * (74.0 - 47.0 * u_sq)))
    ds = b_ * sin_s * (cos2sm + b_ / 4.0 * (cos_s * (-1.0 + 2.0 * cos2sm * cos2sm)
                                            - b_ / 6.0 * cos2sm * (-3.0 + 4.0 * sin_s * sin_s)
                                            * (-3.0 + 4.0 * cos2sm * cos2sm)))
    dist = _B * a_ * (sigma - ds)
    az12 = math.atan2(cu2 * sl, cu1 * su2 - su1 * cu2 * cl) / d2r
    fwd2 = math.atan2(cu1 * sl, -su1 * cu2 + cu1 * su2 * cl) / d2r
    # back azimuth (from 2 towards 1) in (-180, 180], as pyproj reports it
    back = fwd2 + 180.0
    return az12, (back - 360.0 if back > 180.0 else back), dist


@numba.njit(cache=True, parallel=True)
def _vincenty(lon1, lat1, lon2, lat2):  # pragma: no cover - compiled
    """:func:`inverse_one` of every pair."""
    n = lon1.size
    az12 = np.empty(n)
    az21 = np.empty(n)
    dist = np.empty(n)
    for i in numba.prange(n):
        az12[i], az21[i], dist[i] = inverse_one(lon1[i], lat1[i], lon2[i], lat2[i])
    return az12, az21, dist


@numba.njit(cache=True, inline="always")
def direct_one(lon1: float, lat1: float, az12: float, dist: float) -> tuple[float, float]:  # pragma: no cover
    """End point (degrees, longitude in [-180, 180]) of the geodesic from 1 along ``az12``
    (degrees) for ``dist`` (m); NaN where an input is NaN or the iteration does not converge."""
    d2r = math.pi / 180.0
    if not (np.isfinite(lon1) and np.isfinite(lat1) and np.isfinite(az12) and np.isfinite(dist)):
        return np.nan, np.nan
    if dist == 0.0:
        return lon1, lat1
    u1 = math.atan((1.0 - _F) * math.tan(lat1 * d2r))
    su1, cu1 = math.sin(u1), math.cos(u1)
    sa1, ca1 = math.sin(az12 * d2r), math.cos(az12 * d2r)
    sig1 = math.atan2(su1 / cu1, ca1)
    sin_a = cu1 * sa1
    cos2a = 1.0 - sin_a * sin_a
    u_sq = cos2a * (_A * _A - _B * _B) / (_B * _B)
    a_ = 1.0 + u_sq / 16384.0 * (4096.0 + u_sq * (-768.0 + u_sq * (320.0 - 175.0 * u_sq)))
    b_ = u_sq / 1024.0 * (256.0 + u_sq * (-128.0 + u_sq * (74.0 - 47.0 * u_sq)))
    sig0 = dist / (_B * a_)
    sigma = sig0
    converged = False
    for _ in range(200):
        cos2sm = math.cos(2.0 * sig1 + sigma)
        sin_s, cos_s = math.sin(sigma), math.cos(sigma)
        ds = b_ * sin_s * (cos2sm + b_ / 4.0 * (cos_s * (-1.0 + 2.0 * cos2sm * cos2sm)
                                                - b_ / 6.0 * cos2sm * (-3.0 + 4.0 * sin_s * sin_s)
                                                * (-3.0 + 4.0 * cos2sm * cos2sm)))
        prev = sigma
        sigma = sig0 + ds
        if abs(sigma - prev) <= 1e-14 * abs(sigma) + 1e-24:
            converged = True
            break
    if not converged:
        return np.nan, np.nan
    cos2sm = math.cos(2.0 * sig1 + sigma)
    sin_s, cos_s = math.sin(sigma), math.cos(sigma)
    t = su1 * sin_s - cu1 * cos_s * ca1
    lat2 = math.atan2(su1 * cos_s + cu1 * sin_s * ca1, (1.0 - _F) * math.sqrt(sin_a * sin_a + t * t)) / d2r
    lam = math.atan2(sin_s * sa1, cu1 * cos_s - su1 * sin_s * ca1)
    c = _F / 16.0 * cos2a * (4.0 + _F * (4.0 - 3.0 * cos2a))
    big_l = lam - (1.0 - c) * _F * sin_a * (sigma + c * sin_s * (cos2sm + c * cos_s * (-1.0 + 2.0 * cos2sm * cos2sm)))
    lon = lon1 + big_l / d2r
    return (lon - 360.0 * math.floor((lon + 180.0) / 360.0) if (lon < -180.0 or lon > 180.0) else lon), lat2


@numba.njit(cache=True, parallel=True)
def _vincenty_direct(lon1, lat1, az12, dist):  # pragma: no cover - compiled
    """:func:`direct_one` of every row."""
    n = lon1.size
    lon2 = np.empty(n)
    lat2 = np.empty(n)
    for i in numba.prange(n):
        lon2[i], lat2[i] = direct_one(lon1[i], lat1[i], az12[i], dist[i])
    return lon2, lat2


def direct(lon1: np.ndarray, lat1: np.ndarray, az12: np.ndarray, dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """End points of geodesics on WGS84, like the longitude and latitude of ``pyproj.Geod.fwd``.

    Parameters
    ----------
    lon1, lat1 : array_like
        Start points (degrees).
    az12 : array_like
        Azimuth at the start (degrees clockwise from north).
    dist : array_like
        Length (m).

    Returns
    -------
    lon2, lat2 : ndarray of float64
        Degrees, longitude in [-180, 180]; NaN where an input is NaN.
    """
    lon1, lat1, az12, dist = (np.ascontiguousarray(v, dtype=np.float64)
                              for v in np.broadcast_arrays(lon1, lat1, az12, dist))
    shape = lon1.shape
    args = [v.ravel() for v in (lon1, lat1, az12, dist)]
    lon2, lat2 = _vincenty_direct(*args)
    bad = np.isnan(lon2) & np.isfinite(args[0]) & np.isfinite(args[1]) & np.isfinite(args[2]) \
        & np.isfinite(args[3])
    if bad.any():  # Karney's algorithm via pyproj
        lo, la, _ = _GEOD.fwd(args[0][bad], args[1][bad], args[2][bad], args[3][bad])
        lon2[bad], lat2[bad] = lo, la
    return lon2.reshape(shape), lat2.reshape(shape)


def inverse(lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray,
            lat2: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Azimuths and distances between point pairs on WGS84, like ``pyproj.Geod.inv``.

    Parameters
    ----------
    lon1, lat1, lon2, lat2 : array_like
        Degrees; broadcast together.

    Returns
    -------
    az12, az21, dist : ndarray of float64
        Forward azimuth at point 1 and back azimuth at point 2 (degrees clockwise from
        north, in [-180, 180]), geodesic distance (m). NaN where an input is NaN.
    """
    lon1, lat1, lon2, lat2 = (np.ascontiguousarray(v, dtype=np.float64)
                              for v in np.broadcast_arrays(lon1, lat1, lon2, lat2))
    shape = lon1.shape
    args = [v.ravel() for v in (lon1, lat1, lon2, lat2)]
    az12, az21, dist = _vincenty(*args)
    # nearly antipodal pairs (Vincenty does not converge): Karney's algorithm via pyproj
    bad = np.isnan(dist) & np.isfinite(args[0]) & np.isfinite(args[1]) & np.isfinite(args[2]) \
        & np.isfinite(args[3])
    if bad.any():
        a, b, d = _GEOD.inv(args[0][bad], args[1][bad], args[2][bad], args[3][bad])
        az12[bad], az21[bad], dist[bad] = a, b, d
    return az12.reshape(shape), az21.reshape(shape), dist.reshape(shape)


def distance_m(lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray) -> np.ndarray:
    """Geodesic distance (m) on WGS84 between point pairs (degrees); see :func:`inverse`."""
    return inverse(lon1, lat1, lon2, lat2)[2]
