"""What the map may draw: the size budget and the display simplification that keeps a map of
millions of fixes a few MB (round Douglas–Peucker tolerances, thinned time series, the most
important markers)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely

from telemetry.config import MapParams
from telemetry.errors import TelemetryError
from telemetry.trajectory.projection import centre_lonlat


@dataclass(frozen=True)
class MapBudget:
    """Upper bounds on what the map draws, so the file stays small whatever the data size.

    A browser opens a map of a few MB at once; tens of MB load slowly and hundreds of
    thousands of markers freeze the page. Below every bound the map shows everything at the
    configured tolerances (the sample map, ~30k fixes, is far below). Above a bound the layer
    is reduced for display only, and the legend says how:

    * tracks: the Douglas–Peucker tolerance (metres) is raised from ``simplify_m`` in round
      steps (50, 100, 200, 500 m, …) until all tracks together have at most
      ``track_vertices`` vertices (~20 bytes each in the file);
    * corridors and home ranges: likewise, each layer at most ``area_vertices`` vertices;
    * time slider and "Fixes" layer: at most ``fixes`` fixes (~16 bytes each), one per
      animal per time bin (5 min, 10 min, … 1 week, …), the smallest bin that fits;
    * point layers (flagged fixes, clusters, crossings, hotspots): at most ``points``
      markers each (~100–250 bytes each), the most important ones (longest clusters,
      most confident crossings, busiest hotspots; flagged fixes evenly spread); corridors
      (~500 bytes of popup each, those used by most animals) and home ranges likewise.

    The defaults keep a map of 1M fixes (358 animals) at ~11 MB and one of 10M fixes
    (3,580 animals) below ~15 MB: about 3 MB tracks, 2.5 MB time series, ≤ 2.5 MB per area
    layer, ≤ 1.2 MB per point layer, plus ~300 bytes per animal (layer entry, legend).
    """

    track_vertices: int = 150_000
    area_vertices: int = 60_000
    fixes: int = 150_000
    points: int = 5_000

    @classmethod
    def of(cls, params: MapParams) -> MapBudget:
        """The budget of the ``map`` section of the configuration."""
        return cls(track_vertices=params.max_track_vertices, area_vertices=params.max_area_vertices,
                   fixes=params.max_fixes, points=params.max_points)

    def __post_init__(self) -> None:
        for name in ("track_vertices", "area_vertices", "fixes", "points"):
            if int(getattr(self, name)) < 1:
                raise TelemetryError(f"MapBudget.{name} must be a positive count, got {getattr(self, name)!r}")


def tolerance_ladder(start_m: float) -> Iterator[float]:
    """``start_m``, then the round tolerances 1, 2, 5, 10, 20, 50 … m above it (up to 500 km).

    Round numbers read well in the legend ("tracks simplified to 200 m").
    """
    yield float(start_m)
    for exponent in range(6):
        for step in (1, 2, 5):
            tol = float(step * 10 ** exponent)
            if tol > start_m:
                yield tol


# up to this many vertices, polygon layers are simplified topology-preserving (as GEOS's
# TopologyPreservingSimplifier always did here); it costs ~1.4 µs a vertex, so larger
# layers use plain Douglas–Peucker (~0.1 µs) and only redo rings that it collapsed
_TOPOLOGY_VERTICES = 200_000


def fit_simplify(geoms_m: np.ndarray, start_m: float, budget: int, *,
                  preserve_topology: bool) -> tuple[np.ndarray, float]:
    """Douglas–Peucker with the smallest ladder tolerance whose vertex total fits ``budget``.

    ``geoms_m`` are in metres (local plane); each try simplifies the originals, so the
    reported tolerance (metres) is the true maximum deviation. The tolerance is searched
    with plain Douglas–Peucker (fast); with ``preserve_topology`` the chosen tolerance is
    then applied topology-preserving when the layer is small or where plain simplification
    emptied a geometry. Returns the geometries and the tolerance (the ladder's last if
    nothing fits).
    """
    out, tol = geoms_m, float(start_m)
    for tol in tolerance_ladder(start_m):
        out = shapely.simplify(geoms_m, tol, preserve_topology=False) if tol > 0 else geoms_m
        if int(shapely.get_num_coordinates(out).sum()) <= budget:
            break
    if preserve_topology and tol > 0:
        if int(shapely.get_num_coordinates(geoms_m).sum()) <= _TOPOLOGY_VERTICES:
            exact = shapely.simplify(geoms_m, tol, preserve_topology=True)
            # topology preservation keeps a few more vertices: use it when it still fits
            if int(shapely.get_num_coordinates(exact).sum()) <= budget:
                out = exact
        else:
            lost = shapely.is_empty(out) & ~shapely.is_empty(geoms_m)
            if lost.any():
                out = out.copy()
                out[lost] = shapely.simplify(geoms_m[lost], tol, preserve_topology=True)
    return out, tol


_EARTH_RADIUS_M = 6_371_008.8  # mean radius (IUGG)


@dataclass(frozen=True)
class LocalPlane:
    """Metric plane for display simplification: sinusoidal projection about the data's centre.

    ``x = R·Δlon·cos(lat)``, ``y = R·(lat − lat0)`` (metres). Distances are true along
    parallels and meridians; the error is ~0.03 % two degrees from the central meridian
    and a fraction of a percent at ten, far below what a display tolerance needs, and it
    is plain numpy: PROJ's azimuthal equidistant transform cost ~0.5 µs a vertex (seconds
    for millions of track and home-range vertices). The inverse is exact, so vertices the
    simplification keeps come back unchanged (to float rounding).
    """

    lon0: float
    lat0: float

    @classmethod
    def around(cls, lon: np.ndarray, lat: np.ndarray) -> LocalPlane:
        """Plane centred on the points (mean direction on the sphere, antimeridian-safe)."""
        lon0, lat0 = centre_lonlat(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
        return cls(lon0, lat0)

    def fwd(self, c: np.ndarray) -> np.ndarray:
        """``(n, 2)`` lon/lat degrees → ``(n, 2)`` x/y metres."""
        dlon = (c[:, 0] - self.lon0 + 180.0) % 360.0 - 180.0
        k = np.pi / 180.0 * _EARTH_RADIUS_M
        return np.column_stack([k * dlon * np.cos(np.radians(c[:, 1])), k * (c[:, 1] - self.lat0)])

    def inv(self, c: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`fwd` (longitudes may leave [-180, 180] across the antimeridian)."""
        k = np.pi / 180.0 * _EARTH_RADIUS_M
        lat = c[:, 1] / k + self.lat0
        return np.column_stack([self.lon0 + c[:, 0] / (k * np.cos(np.radians(lat))), lat])


# minimum spacing of the fixes kept for the time slider when there are too many (minutes)
_THIN_STEPS_MIN = (5, 10, 15, 20, 30, 60, 120, 180, 240, 360, 480, 720, 1440, 2880, 4320, 10080)


def thin_fixes(codes: np.ndarray, minutes: np.ndarray, budget: int) -> tuple[np.ndarray, int]:
    """Rows kept for the time series: all if they fit ``budget``, else one per animal and time bin.

    The bin (minutes, aligned on the first fix of the data) is the smallest of
    ``_THIN_STEPS_MIN`` (then doubled) that leaves at most ``budget`` rows; each animal keeps
    its first fix in every bin. Rows must be sorted by animal then time. Returns the mask
    and the bin in minutes (0: nothing thinned).
    """
    n = len(minutes)
    if n <= budget:
        return np.ones(n, dtype=bool), 0
    new_animal = np.r_[True, codes[1:] != codes[:-1]]
    span = int(minutes.max() - minutes.min()) + 1
    steps = itertools.chain(_THIN_STEPS_MIN, (_THIN_STEPS_MIN[-1] * 2 ** k for k in itertools.count(1)))
    for step in steps:
        b = minutes // step
        keep = new_animal.copy()
        keep[1:] |= b[1:] != b[:-1]
        if keep.sum() <= budget or step > span:  # beyond the span: one fix per animal, the floor
            return keep, int(step)
    raise AssertionError("unreachable")  # pragma: no cover


def simplify_deg(geoms: Any, crs: LocalPlane, tolerance_m: float) -> np.ndarray:
    """Simplify lon/lat geometries with a tolerance in metres (in the local metric plane)."""
    g = shapely.transform(np.asarray(geoms, dtype=object), crs.fwd)
    g = shapely.simplify(g, tolerance_m, preserve_topology=True)
    return shapely.transform(g, crs.inv)


def fit_areas(geoms: Any, crs: LocalPlane, start_m: float, budget: int) -> tuple[np.ndarray, float]:
    """Simplify lon/lat polygons in metres, raising the tolerance until ≤ ``budget`` vertices.

    Like :func:`simplify_deg` (topology preserved) with the tolerance search of
    :func:`fit_simplify`; returns lon/lat geometries and the tolerance used (metres).
    """
    g = shapely.transform(np.asarray(geoms, dtype=object), crs.fwd)
    g, tol = fit_simplify(g, start_m, budget, preserve_topology=True)
    return shapely.transform(g, crs.inv), tol


def select_budget(n: int, budget: int, priority: np.ndarray | None = None) -> np.ndarray:
    """Positions of the rows a point layer draws, in their original order.

    All ``n`` when they fit ``budget``; else the ``budget`` rows of highest ``priority``
    (NaN last, ties in input order), or evenly spread rows when there is no priority.
    """
    if n <= budget:
        return np.arange(n)
    if priority is None:
        return np.unique(np.linspace(0, n - 1, budget).round().astype(np.int64))
    order = np.argsort(-np.asarray(priority, dtype=float), kind="stable")  # NaN sorts last
    return np.sort(order[:budget])
