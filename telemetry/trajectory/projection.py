"""Local metric projections for planar work on lon/lat fixes.

Planar filters (the Kalman smoother, step lengths for the HMM) need metres.
We use an azimuthal equidistant projection (``+proj=aeqd``) on the WGS84
ellipsoid centred on the data: distances from the centre are exact and the
scale error at distance ``d`` from the centre is about ``(d / R)**2 / 3``
(0.2 % at 500 km), far below GPS error for one animal's range. Web Mercator
is never used (its scale error is ``1/cos(lat) - 1``, 37 % at 43° N).

Functions
---------
local_crs          the projection centred on a set of points
to_local           lon/lat (degrees) -> x/y (metres) for one projection
from_local         x/y (metres) -> lon/lat (degrees)
project_by_group   one projection per group (e.g. per animal), both directions
reused_projections a block within which the same inputs are projected once

The per-group projections are applied as what the ellipsoidal ``aeqd`` is, the geodesic
from the centre (``x = s sin az``, ``y = s cos az``), by the parallel numba Vincenty
solutions of :mod:`telemetry.trajectory.geodesic` (< 1 µm from PROJ within hundreds of
km, 14 µm at 7,000 km): PROJ solves them one point at a time with Karney's algorithm,
which was the largest serial part of smoothing. Centres within 1° of a pole, where PROJ
switches to its polar form, stay with PROJ.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

import numba
import numpy as np
import pyproj

from telemetry.trajectory.geodesic import direct_one, inverse_one

__all__ = ["local_crs", "to_local", "from_local", "GroupProjection", "project_by_group", "reused_projections"]


def centre_lonlat(lon: np.ndarray, lat: np.ndarray) -> tuple[float, float]:
    """Centre of a point set in degrees: the mean direction on the sphere.

    A plain mean of longitudes breaks across the antimeridian; the mean of unit
    vectors does not.
    """
    ok = np.isfinite(lon) & np.isfinite(lat)
    if not ok.any():
        raise ValueError("no finite coordinates to centre a projection on")
    lo = np.radians(lon[ok])
    la = np.radians(lat[ok])
    x = np.mean(np.cos(la) * np.cos(lo))
    y = np.mean(np.cos(la) * np.sin(lo))
    z = np.mean(np.sin(la))
    return float(np.degrees(np.arctan2(y, x))), float(np.degrees(np.arctan2(z, np.hypot(x, y))))


def local_crs(lon: np.ndarray, lat: np.ndarray) -> pyproj.CRS:
    """Azimuthal equidistant CRS (WGS84 ellipsoid, metres) centred on the points.

    Parameters
    ----------
    lon, lat : array_like
        Longitudes and latitudes in decimal degrees (WGS84); NaN ignored.

    Returns
    -------
    pyproj.CRS

    Examples
    --------
    >>> crs = local_crs(np.array([77.0, 78.0]), np.array([43.0, 43.2]))
    >>> "Azimuthal Equidistant" in crs.coordinate_operation.method_name
    True
    """
    lon0, lat0 = centre_lonlat(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
    return pyproj.CRS.from_proj4(
        f"+proj=aeqd +lat_0={lat0:.8f} +lon_0={lon0:.8f} +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs"
    )


def to_local(lon: np.ndarray, lat: np.ndarray, crs: pyproj.CRS) -> tuple[np.ndarray, np.ndarray]:
    """Project lon/lat (degrees) to x/y (metres) in ``crs``. NaN stays NaN."""
    x, y = _transformer(crs).transform(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
    return np.asarray(x, dtype=float), np.asarray(y, dtype=float)


def from_local(x: np.ndarray, y: np.ndarray, crs: pyproj.CRS) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`to_local`: x/y (metres) in ``crs`` to lon/lat (degrees)."""
    lon, lat = _transformer(crs).transform(
        np.asarray(x, dtype=float), np.asarray(y, dtype=float), direction="INVERSE"
    )
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


@lru_cache(maxsize=4096)
def _transformer(crs: pyproj.CRS) -> pyproj.Transformer:
    """lon/lat (degrees, WGS84) → ``crs``.

    ``Transformer.from_crs`` searches PROJ's database for the operation (~13 ms
    each; with hundreds of animals that dominated smoothing). Our local CRSs are
    plain PROJ strings on the WGS84 ellipsoid, so the operation is known: build
    the pipeline directly (~0.05 ms, identical coordinates).
    """
    srs = crs.srs.strip()
    if srs.startswith("+proj=") and "+ellps=WGS84" in srs and "+towgs84" not in srs:
        step = " ".join(t for t in srs.split() if t not in ("+no_defs", "+type=crs", "+units=m"))
        return pyproj.Transformer.from_pipeline(
            f"+proj=pipeline +step +proj=unitconvert +xy_in=deg +xy_out=rad +step {step}"
        )
    return pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)


@lru_cache(maxsize=4096)
def _crs_of(proj4: str) -> pyproj.CRS:
    return pyproj.CRS.from_proj4(proj4)


POLAR_CENTRE_DEG = 89.0
"""Groups centred beyond this latitude (degrees) are projected by PROJ itself."""


@dataclass(frozen=True)
class GroupProjection:
    """One local projection per group (group codes ``0..n_groups-1``).

    Each group (animal) gets its own centre, so one continent-wide dataset never
    forces a single far-off centre on every animal. With ``lon0``/``lat0`` (the centres
    as written in the CRS strings) the transforms are geodesics from the centre in numba
    (see the module docstring); without them, or for a group centred within 1° of a
    pole, PROJ transforms with ``crs`` (a CRS or its PROJ string per group: the string is parsed
    only for a group PROJ transforms; parsing every animal's cost ~0.15 ms each).
    """

    codes: np.ndarray
    crs: tuple[pyproj.CRS | str | None, ...]
    lon0: np.ndarray | None = None
    lat0: np.ndarray | None = None

    def forward(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """lon/lat (degrees) -> x/y (metres), each row in its group's projection."""
        return self._apply(lon, lat, inverse=False)

    def inverse(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """x/y (metres) -> lon/lat (degrees), each row in its group's projection."""
        return self._apply(x, y, inverse=True)

    def _apply(self, a: np.ndarray, b: np.ndarray, inverse: bool) -> tuple[np.ndarray, np.ndarray]:
        a = np.asarray(a, dtype=float)
        b = np.asarray(b, dtype=float)
        by_proj = np.array([c is not None for c in self.crs], dtype=bool)
        if self.lon0 is None or self.lat0 is None:
            return self._apply_proj(a, b, inverse, by_proj, np.full(a.shape, np.nan), np.full(b.shape, np.nan))
        from telemetry.trajectory import geodesic

        codes = np.ascontiguousarray(self.codes, dtype=np.int64)
        lon0 = np.ascontiguousarray(self.lon0, dtype=float)
        lat0 = np.ascontiguousarray(self.lat0, dtype=float)
        shape = a.shape
        a, b = np.ascontiguousarray(a).ravel(), np.ascontiguousarray(b).ravel()
        kernel = _aeqd_inverse if inverse else _aeqd_forward
        out_a, out_b = kernel(a, b, codes.ravel(), lon0, lat0)
        # Vincenty did not converge (nearly antipodal to the centre): Karney via pyproj
        codes = codes.ravel()
        redo = np.flatnonzero(np.isnan(out_a) & np.isfinite(a) & np.isfinite(b) & (codes >= 0) & (codes < lon0.size))
        if redo.size:
            g = codes[redo]
            if inverse:
                out_a[redo], out_b[redo] = geodesic.direct(lon0[g], lat0[g], np.degrees(np.arctan2(a[redo], b[redo])),
                                                           np.hypot(a[redo], b[redo]))
            else:
                az, _, dist = geodesic.inverse(lon0[g], lat0[g], a[redo], b[redo])
                out_a[redo], out_b[redo] = dist * np.sin(np.radians(az)), dist * np.cos(np.radians(az))
        out_a, out_b = out_a.reshape(shape), out_b.reshape(shape)
        return self._apply_proj(a.reshape(shape), b.reshape(shape), inverse,
                                by_proj & (np.abs(self.lat0) > POLAR_CENTRE_DEG), out_a, out_b)

    def _apply_proj(self, a: np.ndarray, b: np.ndarray, inverse: bool, groups: np.ndarray,
                    out_a: np.ndarray, out_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """PROJ's transform of the rows of ``groups`` (bool per group) into ``out_a``/``out_b``."""
        from pyproj.enums import TransformDirection

        if not groups.any():
            return out_a, out_b
        direction = TransformDirection.INVERSE if inverse else TransformDirection.FORWARD
        # one pyproj call per group (not per row): sort once, slice contiguous runs
        order = np.argsort(self.codes, kind="stable")
        bounds = np.searchsorted(self.codes[order], np.arange(len(self.crs) + 1))
        for g in np.flatnonzero(groups):
            idx = order[bounds[g] : bounds[g + 1]]
            crs = self.crs[g]
            crs = _crs_of(crs) if isinstance(crs, str) else crs
            out_a[idx], out_b[idx] = _transformer(crs).transform(a[idx], b[idx], direction=direction)
        return out_a, out_b


@numba.njit(cache=True)
def _unit_vector_sums(lon, lat, codes, n_groups):  # pragma: no cover - compiled
    """Per group: sums of the unit vectors (x, y, z) of its finite points and their count;
    group centres are the directions of these sums."""
    sx = np.zeros(n_groups)
    sy = np.zeros(n_groups)
    sz = np.zeros(n_groups)
    cnt = np.zeros(n_groups, dtype=np.int64)
    d2r = math.pi / 180.0
    for i in range(lon.size):
        g = codes[i]
        if g < 0 or g >= n_groups or not (np.isfinite(lon[i]) and np.isfinite(lat[i])):
            continue
        lo, la = lon[i] * d2r, lat[i] * d2r
        sx[g] += math.cos(la) * math.cos(lo)
        sy[g] += math.cos(la) * math.sin(lo)
        sz[g] += math.sin(la)
        cnt[g] += 1
    return sx, sy, sz, cnt


@numba.njit(cache=True, parallel=True)
def _aeqd_forward(lon, lat, codes, lon0, lat0):  # pragma: no cover - compiled
    """x, y (m) of each row in its group's azimuthal equidistant projection: the geodesic
    from the group's centre, ``x = s sin az``, ``y = s cos az``; NaN for rows of no group
    (code < 0 or beyond the centres) and where Vincenty does not converge."""
    n = lon.size
    x = np.empty(n)
    y = np.empty(n)
    d2r = math.pi / 180.0
    for i in numba.prange(n):
        g = codes[i]
        if g < 0 or g >= lon0.size:
            x[i] = y[i] = np.nan
            continue
        az, _, dist = inverse_one(lon0[g], lat0[g], lon[i], lat[i])
        x[i] = dist * math.sin(az * d2r)
        y[i] = dist * math.cos(az * d2r)
    return x, y


@numba.njit(cache=True, parallel=True)
def _aeqd_inverse(x, y, codes, lon0, lat0):  # pragma: no cover - compiled
    """lon, lat (degrees) of each row's x, y in its group's projection (:func:`_aeqd_forward`
    undone by the direct geodesic problem); NaN as there."""
    n = x.size
    lon = np.empty(n)
    lat = np.empty(n)
    r2d = 180.0 / math.pi
    for i in numba.prange(n):
        g = codes[i]
        if g < 0 or g >= lon0.size:
            lon[i] = lat[i] = np.nan
            continue
        lon[i], lat[i] = direct_one(lon0[g], lat0[g], math.atan2(x[i], y[i]) * r2d, math.hypot(x[i], y[i]))
    return lon, lat


def project_by_group(
    lon: np.ndarray, lat: np.ndarray, codes: np.ndarray, n_groups: int | None = None
) -> tuple[np.ndarray, np.ndarray, GroupProjection]:
    """Project every row into the local projection of its group.

    Parameters
    ----------
    lon, lat : ndarray
        Decimal degrees (WGS84). NaN rows give NaN and do not move the centres.
    codes : ndarray of int
        Group code per row (``0..n_groups-1``; negative = no group, gives NaN).
    n_groups : int, optional
        Number of groups (default ``codes.max() + 1``).

    Returns
    -------
    x, y : ndarray
        Metres in the group's azimuthal equidistant projection.
    proj : GroupProjection
        Use ``proj.inverse(x, y)`` to go back to lon/lat.
    """
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    codes = np.asarray(codes, dtype=np.int64)
    if n_groups is None:
        n_groups = int(codes.max()) + 1 if codes.size else 0
    made = _made_before(lon, lat, codes, n_groups)
    if made is not None:
        return made
    x, y, proj = _project_by_group(lon, lat, codes, n_groups)
    _remember(lon, lat, codes, n_groups, x, y, proj)
    return x, y, proj


def _project_by_group(lon: np.ndarray, lat: np.ndarray, codes: np.ndarray,
                      n_groups: int) -> tuple[np.ndarray, np.ndarray, GroupProjection]:
    ok = np.isfinite(lon) & np.isfinite(lat) & (codes >= 0)
    sx, sy, sz, cnt = _unit_vector_sums(lon, lat, codes, n_groups)
    crs: list[str | None] = []
    lon0 = np.full(n_groups, np.nan)
    lat0 = np.full(n_groups, np.nan)
    for g in range(n_groups):
        if cnt[g] == 0:
            crs.append(None)
            continue
        c_lon = f"{np.degrees(np.arctan2(sy[g], sx[g])):.8f}"
        c_lat = f"{np.degrees(np.arctan2(sz[g], np.hypot(sx[g], sy[g]))):.8f}"
        lon0[g], lat0[g] = float(c_lon), float(c_lat)  # the centre as PROJ parses it from the string
        crs.append(f"+proj=aeqd +lat_0={c_lat} +lon_0={c_lon} +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs")
    proj = GroupProjection(codes=np.where(ok | (codes >= 0), codes, -1), crs=tuple(crs), lon0=lon0, lat0=lat0)
    x, y = proj.forward(lon, lat)
    return x, y, proj


# Projections made inside a ``reused_projections`` block: (lon, lat, codes, n_groups, x, y, proj),
# most recently used last; ``None`` outside any block (nothing is kept).
_reuse_lock = threading.Lock()
_reuse: list[tuple] | None = None
_reuse_depth = 0
_REUSE_ENTRIES = 4  # a pipeline's whole table and its model-fitting heads, two partitions at once


@contextmanager
def reused_projections() -> Iterator[None]:
    """Within this block :func:`project_by_group` of inputs equal to an earlier call's (the same
    coordinates, NaN included, groups and ``n_groups``) returns copies of that call's result
    instead of projecting again. A pipeline's error estimate, smoother and outlier prediction
    each project the same usable fixes (three times 0.3 s on 866,000 fixes); the result is the
    same to the bit, and the memory (five arrays per kept call) is released when the outermost
    block ends. Blocks nest and may be entered from several threads.

    >>> lon, lat, g = np.array([10.0, 10.1]), np.array([45.0, 45.1]), np.array([0, 0])
    >>> with reused_projections():
    ...     x1, _, _ = project_by_group(lon, lat, g)
    ...     x2, _, _ = project_by_group(lon.copy(), lat.copy(), g.copy())
    >>> bool(np.array_equal(x1, x2)) and x1 is not x2
    True
    """
    global _reuse, _reuse_depth
    with _reuse_lock:
        _reuse_depth += 1
        if _reuse is None:
            _reuse = []
    try:
        yield
    finally:
        with _reuse_lock:
            _reuse_depth -= 1
            if _reuse_depth == 0:
                _reuse = None


def _made_before(lon: np.ndarray, lat: np.ndarray, codes: np.ndarray,
                 n_groups: int) -> tuple[np.ndarray, np.ndarray, GroupProjection] | None:
    """The kept projection of exactly these inputs (copies of x and y), or None."""
    with _reuse_lock:
        entries = list(_reuse) if _reuse is not None else []
    for e in reversed(entries):
        if (e[3] == n_groups and e[0].shape == lon.shape and np.array_equal(e[2], codes)
                and np.array_equal(e[0], lon, equal_nan=True) and np.array_equal(e[1], lat, equal_nan=True)):
            with _reuse_lock:  # (by identity: tuples of arrays do not compare with ==)
                at = [k for k, f in enumerate(_reuse or []) if f is e]
                if at and _reuse is not None:
                    _reuse.append(_reuse.pop(at[0]))
            return e[4].copy(), e[5].copy(), e[6]
    return None


def _remember(lon: np.ndarray, lat: np.ndarray, codes: np.ndarray, n_groups: int, x: np.ndarray,
              y: np.ndarray, proj: GroupProjection) -> None:
    with _reuse_lock:
        if _reuse is None:
            return
        _reuse.append((lon.copy(), lat.copy(), codes.copy(), n_groups, x.copy(), y.copy(), proj))
        del _reuse[:-_REUSE_ENTRIES]
