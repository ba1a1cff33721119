"""Border crossings: where and when tracks change zone, robust to fix and border error.

A fix's side of a border is *certain* only when it lies deeper inside its polygon (or, for a
fix outside every polygon, farther from every polygon) than a band::

    band_m = band_k * sqrt(sigma_m**2 + accuracy_m**2)

with ``sigma_m`` the fix's own 1-σ error (smoothed ``se_m`` when the table has it, else the
measurement error from HDOP / fix type / Argos class) and ``accuracy_m`` the stated 1-σ accuracy of
the zone layer (500 m for the bundled Natural Earth 1:10m countries, 2.5 km for 1:50m). Depth is the
distance (m) to the nearest polygon boundary on a local tangent plane of the WGS84 ellipsoid at the
fix (exact to ~0.1 % within tens of km; checked against ``pyproj.Geod`` in the tests).

Certain fixes form *runs* (consecutive certain fixes of one animal on one side; uncertain fixes
in between are bridged, i.e. ignored). A run on land is a *stay* when it has at least
``min_stay_fixes`` fixes spanning at least ``min_stay_h`` hours (or, with ``open_end``, when it is
the animal's last run: the data end before the animal could come back). Then, per animal:

* two consecutive stays in different zones A → B make one **crossing** A → B. Its bracket is the
  last certain fix in A (``t_before``) and the first certain fix in B after it (``t_after``);
* a short run in zone C between a stay in A and the last visit to A before the next stay is an
  **excursion** A → C → A (``kind="excursion"``), never a pair of crossings;
* runs outside every polygon ("sea") never start or end anything: A → sea → B is a crossing A → B
  with ``via_sea=True``; A → sea → A is nothing. That holds for the countries; for a user zone
  layer (protected areas, hunting blocks) the land outside every zone is a place like any other
  (``outside_is_place``): leaving a park for the land around it is a crossing A → outside, and the
  columns are ``from_zone``/``to_zone`` instead of ``from_iso``/``to_iso`` (:func:`telemetry.schema.endpoint_columns`).

Crossing point and time: the (smoothed) path from the ``t_before`` fix to the ``t_after`` fix,
straight in longitude/latitude between fixes, is intersected with the border line shared by the
two zones. ``geometry`` is a MultiPoint of *all* intersections (a path that wiggles across the line
crosses it several times); ``lon``/``lat`` is the median intersection in path order (the first one
for an excursion, i.e. where it left the home zone) and ``time`` interpolates the fix times by the
fraction of the step length at which that point lies. If the path does not meet the shared line
(via sea, or the border data disagree), the boundaries of both zones are used and ``on_border``
is False.

Confidence (documented formula, in [0, 1])::

    confidence = Phi(d_before / s_before) * Phi(d_after / s_after)
                 * gap_scale_h / (gap_scale_h + gap_h) * (0.5 if truncated else 1)

``Phi`` the standard normal CDF, ``d`` a bracket fix's depth (m), ``s = sqrt(sigma_m**2 +
accuracy_m**2)``: the probability that each bracket fix is truly on its side given a Gaussian error
across the border, times a factor that halves when the bracket is ``gap_scale_h`` long (a long
gap leaves the time and place of the crossing, and unseen back-and-forth, open), halved again when
the arrival stay was cut short by the end of the data.

Functions
---------
fix_sides        zone, depth and certainty of every usable fix
crossings        crossings (and excursions) as a GeoDataFrame
time_in_zones    days and fixes per animal and zone
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.special import ndtr

from telemetry.arrays import group_codes, sorted_usable, usable_mask
from telemetry.config import CrossingParams
from telemetry.corridor.zones import load_zones, zone_borders
from telemetry.schema import endpoint_columns

__all__ = ["fix_sides", "crossings", "time_in_zones", "endpoint_columns", "DEFAULTS"]

DEFAULTS: dict[str, Any] = dataclasses.asdict(CrossingParams())
"""Default parameters of :func:`crossings` (units in the names; ``band_k`` is a multiple of σ).

``border_error_m`` None: the zone layer's own accuracy per zone. ``smoothed``: use ``lon_s``,
``lat_s``, ``se_m`` when the table has them. ``outside_is_place`` None: False for the countries
(the sea starts and ends nothing), True for user zone layers (the land around the zones is a side)."""


_A_M = 6_378_137.0  # WGS84 semi-major axis (m)
_E2 = 6.694379990141317e-3  # WGS84 first eccentricity squared
_NS_PER_H = 3_600e9


# --------------------------------------------------------------------------------------------
# fixes: positions, errors, sides
# --------------------------------------------------------------------------------------------

def _fix_table(tracks: pd.DataFrame, smoothed: bool) -> dict[str, np.ndarray]:
    """Usable fixes sorted by (animal, time): positions, σ and ids as arrays."""
    usable = usable_mask(tracks)
    pos, codes, t_ns = sorted_usable(tracks, usable)
    lon = tracks["lon"].to_numpy(dtype=float, na_value=np.nan)[pos]
    lat = tracks["lat"].to_numpy(dtype=float, na_value=np.nan)[pos]
    sigma = _raw_sigma_m(tracks)[pos]
    if smoothed and {"lon_s", "lat_s"} <= set(tracks.columns):
        lon_s = tracks["lon_s"].to_numpy(dtype=float, na_value=np.nan)[pos]
        lat_s = tracks["lat_s"].to_numpy(dtype=float, na_value=np.nan)[pos]
        se = (tracks["se_m"].to_numpy(dtype=float, na_value=np.nan)[pos] if "se_m" in tracks
              else np.full(len(pos), np.nan))
        # rows the smoother skipped keep their raw position and raw error
        ok = np.isfinite(lon_s) & np.isfinite(lat_s) & np.isfinite(se)
        lon = np.where(ok, lon_s, lon)
        lat = np.where(ok, lat_s, lat)
        sigma = np.where(ok, se, sigma)
    seg = None
    if "segment_id" in tracks.columns:
        seg = tracks["segment_id"].to_numpy(dtype=float, na_value=np.nan)[pos]
    _, labels = group_codes(tracks)
    return {"pos": pos, "code": codes, "t": t_ns, "lon": lon, "lat": lat, "sigma": sigma,
            "seg": seg, "labels": labels}


def _raw_sigma_m(tracks: pd.DataFrame) -> np.ndarray:
    """1-σ error per coordinate (m) of the raw fixes: ``sigma_m`` if present, else from quality."""
    from telemetry.trajectory.smooth import measurement_sigma_m

    sigma = measurement_sigma_m(tracks)
    if "sigma_m" in tracks.columns:
        given = tracks["sigma_m"].to_numpy(dtype=float, na_value=np.nan)
        sigma = np.where(np.isfinite(given), given, sigma)
    return sigma


def _metres_per_degree(lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Metres per degree of longitude and latitude on the WGS84 ellipsoid at ``lat`` (degrees)."""
    phi = np.radians(lat)
    w = np.sqrt(1.0 - _E2 * np.sin(phi) ** 2)
    n = _A_M / w  # prime-vertical radius of curvature
    m = _A_M * (1.0 - _E2) / w**3  # meridional radius of curvature
    return np.radians(1.0) * n * np.cos(phi), np.radians(1.0) * m


def _segments(lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every 2-point segment of (Multi)LineStrings: (start xy, end xy), each (n, 2) degrees."""
    parts = shapely.get_parts(lines[~shapely.is_missing(lines)])
    parts = parts[shapely.get_type_id(parts) == 1]
    coords, idx = shapely.get_coordinates(parts, return_index=True)
    same = idx[1:] == idx[:-1]
    return coords[:-1][same], coords[1:][same]


def _locate(lon: np.ndarray, lat: np.ndarray, geoms: np.ndarray) -> np.ndarray:
    """Index of the polygon containing each point (first wins), -1 outside all."""
    zi = np.full(lon.shape, -1, dtype=np.int64)
    b = shapely.bounds(geoms)
    for j in range(len(geoms)):  # loop over a handful of zones, each test vectorised over points
        m = (zi < 0) & (lon >= b[j, 0]) & (lon <= b[j, 2]) & (lat >= b[j, 1]) & (lat <= b[j, 3])
        idx = np.flatnonzero(m)
        if len(idx):
            zi[idx[shapely.contains_xy(geoms[j], lon[idx], lat[idx])]] = j
    return zi


def _depth_m(lon: np.ndarray, lat: np.ndarray, reach_m: np.ndarray, boundaries: np.ndarray) -> np.ndarray:
    """Distance (m) from each point to the nearest boundary segment; inf beyond ``reach_m``.

    Only points within ``reach_m`` of a boundary get a distance. An STRtree of the boundary
    segments is asked once per occupied cell of a grid as wide as the longest reach (in degrees,
    conservatively) whether any segment comes within a cell's width of the cell; the points of
    those cells then get their candidate segments from the tree, and the distance to each candidate
    is computed on the tangent plane at the point (east/north metres from the ellipsoid's radii of
    curvature), all vectorised. The cost follows the number of fixes and of segments, not the
    area between them: a migrant spanning continents asks about the cells it visits, where a
    buffer of every outline in its bounding box would draw the coasts of half the world.
    """
    n = len(lon)
    depth = np.full(n, np.inf)
    a, b = _segments(boundaries)
    if n == 0 or len(a) == 0:
        return depth
    # degrees that certainly cover reach_m: divide by the smallest metres-per-degree at the latitude
    lat_hi = np.minimum(np.abs(lat) + reach_m / 110_000.0, 89.0)
    mx, my = _metres_per_degree(lat_hi)
    reach_deg = reach_m / np.minimum(mx, my) * 1.01
    tree = shapely.STRtree(shapely.linestrings(np.stack([a, b], axis=1)))
    # cells as wide as the longest reach: a segment within reach of a point of a cell meets the
    # cell grown by one width on every side
    # (at least 1e-6 degrees, so that one int64 numbers every cell of the globe)
    w = max(float(reach_deg.max()), 1e-6)
    cx, cy = np.floor(lon / w).astype(np.int64), np.floor(lat / w).astype(np.int64)
    cx0, cy0 = cx.min(), cy.min()
    rows = int(cy.max() - cy0) + 1
    keys, cell_of = np.unique((cx - cx0) * rows + (cy - cy0), return_inverse=True)
    gx, gy = keys // rows + cx0, keys % rows + cy0
    grown = shapely.box((gx - 1) * w, (gy - 1) * w, (gx + 2) * w, (gy + 2) * w)
    hit = np.zeros(len(keys), bool)
    hit[tree.query(grown, predicate="intersects")[0]] = True
    near = np.flatnonzero(hit[cell_of])
    if len(near) == 0:
        return depth
    pts = shapely.points(lon[near], lat[near])
    kx, ky = _metres_per_degree(lat[near])
    bound = reach_deg[near]
    if bound.max() > 4.0 * float(np.median(np.hypot(*(b - a).T))):
        # a reach of many segments (an Argos error's tens of km): the nearest segment in degrees
        # (distance D) bounds the nearest in metres, since a segment's metric distance lies within
        # [min, max](kx, ky) × its degree distance; only segments within D × max/min degrees can be
        # nearer in metres, a few per point instead of hundreds (the same depths, 3× faster)
        (qi, _), d_deg = tree.query_nearest(pts, max_distance=float(bound.max()), return_distance=True)
        nearest = np.full(near.size, -1.0)
        nearest[qi] = d_deg  # (ties come with the same distance)
        bound = np.where(nearest >= 0, np.minimum(bound, nearest * (np.maximum(kx, ky) / np.minimum(kx, ky))
                                                  * (1 + 1e-9) + 1e-12), -1.0)
    has = np.flatnonzero(bound >= 0)
    pi, si = tree.query(pts[has], predicate="dwithin", distance=bound[has])
    if len(pi) == 0:
        return depth
    pi = has[pi]
    p = near[pi]
    kx, ky = kx[pi], ky[pi]
    # east/north metres of both segment ends relative to the point (longitudes wrapped)
    x1 = (((a[si, 0] - lon[p]) + 180.0) % 360.0 - 180.0) * kx
    y1 = (a[si, 1] - lat[p]) * ky
    x2 = (((b[si, 0] - lon[p]) + 180.0) % 360.0 - 180.0) * kx
    y2 = (b[si, 1] - lat[p]) * ky
    dx, dy = x2 - x1, y2 - y1
    L2 = dx * dx + dy * dy
    u = np.clip(np.where(L2 > 0, -(x1 * dx + y1 * dy) / np.where(L2 > 0, L2, 1.0), 0.0), 0.0, 1.0)
    d = np.hypot(x1 + u * dx, y1 + u * dy)
    np.minimum.at(depth, p, d)
    return depth


def _sides(lon: np.ndarray, lat: np.ndarray, sigma: np.ndarray, zones: gpd.GeoDataFrame,
           band_k: float) -> dict[str, np.ndarray]:
    """Zone index (−1 outside), depth, band and certainty of each point (see module docstring)."""
    n = len(lon)
    ok = np.isfinite(lon) & np.isfinite(lat)
    if not ok.any():
        z = np.full(n, -1)
        return {"zone": z, "depth": np.full(n, np.inf), "band": np.zeros(n), "acc": np.zeros(n),
                "certain": np.zeros(n, bool)}
    sig = np.where(np.isfinite(sigma), sigma, 0.0)
    geoms_all = np.asarray(zones.geometry.values, dtype=object)
    acc_all = zones["accuracy_m"].to_numpy(dtype=float)
    # spatial prefilter: only zones near the data's bounding box (+ the widest band) take part
    margin_m = band_k * math.sqrt(float(np.nanmax(sig)) ** 2 + float(np.nanmax(acc_all)) ** 2)
    mx, my = _metres_per_degree(np.array([min(float(np.nanmax(np.abs(lat))) + 1.0, 89.0)]))
    margin = margin_m / min(mx[0], my[0]) + 1e-6
    box = (np.nanmin(lon) - margin, np.nanmin(lat) - margin, np.nanmax(lon) + margin, np.nanmax(lat) + margin)
    cand = np.sort(zones.sindex.query(shapely.box(*box), predicate="intersects"))
    if cand.size == 0:  # nowhere near any zone (open sea, an atoll the map omits)
        return {"zone": np.full(n, -1), "depth": np.full(n, np.inf), "band": np.zeros(n), "acc": np.zeros(n),
                "certain": np.zeros(n, bool)}
    geoms = shapely.clip_by_rect(geoms_all[cand], *box)  # fewer vertices for every test below
    shapely.prepare(geoms)
    zi_local = _locate(np.where(ok, lon, 0.0), np.where(ok, lat, 0.0), geoms)
    zi_local[~ok] = -1
    zone = np.where(zi_local >= 0, cand[np.maximum(zi_local, 0)], -1)
    # outside every polygon: the least accurate nearby boundary bounds the error
    acc = np.where(zone >= 0, acc_all[np.maximum(zone, 0)], acc_all[cand].max() if len(cand) else 0.0)
    band = band_k * np.sqrt(sig**2 + acc**2)
    # boundaries of the *unclipped* polygons, clipped as lines: no artificial edges on the box
    boundaries = shapely.clip_by_rect(shapely.boundary(geoms_all[cand]), *box)
    depth = np.full(n, np.inf)
    depth[ok] = _depth_m(lon[ok], lat[ok], band[ok], boundaries)
    return {"zone": zone, "depth": depth, "band": band, "acc": acc, "certain": ok & (depth > band)}


def _resolve_zones(borders: Any, zones: Any, zone_field: str | None,
                   border_error_m: float | None) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame | None]:
    """(zone polygons, border lines or None) from the ``borders``/``zones`` arguments."""
    lines = None
    if isinstance(borders, gpd.GeoDataFrame) and len(borders):
        kinds = set(shapely.get_type_id(np.asarray(borders.geometry.values, dtype=object)).tolist())
        if kinds <= {3, 6}:  # polygons passed as `borders`: they are the zones
            zones = borders if zones is None else zones
        else:
            lines = normalise_lines(borders)
    elif borders is not None and not isinstance(borders, gpd.GeoDataFrame):
        zones = borders if zones is None else zones
    z = load_zones(zones, zone_field, border_error_m=border_error_m)
    return z, lines


def normalise_lines(lines: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    for a, b in (("zone_a", "zone_b"), ("iso_a", "iso_b")):
        if a in lines.columns and b in lines.columns:
            out = gpd.GeoDataFrame({"zone_a": lines[a].astype(str).to_numpy(), "zone_b": lines[b].astype(str).to_numpy()},
                                   geometry=lines.geometry.values, crs=lines.crs or "EPSG:4326")
            return out.to_crs("EPSG:4326") if out.crs and not out.crs.equals("EPSG:4326") else out
    raise ValueError("border lines need columns zone_a/zone_b or iso_a/iso_b")


def fix_sides(tracks: pd.DataFrame, borders: Any = None, *, zones: Any = None, zone_field: str | None = None,
              band_k: float = DEFAULTS["band_k"], border_error_m: float | None = None,
              smoothed: bool = True) -> pd.DataFrame:
    """Zone, depth and certainty of every usable fix.

    Parameters
    ----------
    tracks : DataFrame
        Canonical fix table or processed tracks (``lon_s``/``lat_s``/``se_m`` used when present
        and ``smoothed``). Only usable rows (``flag`` NA, time and coordinates present) count.
    borders, zones, zone_field, border_error_m
        Zone layer as in :func:`crossings`.
    band_k : float
        Band half-width as a multiple of the combined 1-σ error (dimensionless).
    smoothed : bool
        Use the smoothed position and its standard error when the table has them.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``tracks`` (usable rows only, sorted by animal and time): ``animal_id``,
        ``time``, ``lon``, ``lat`` (the position used, degrees), ``sigma_m`` (m), ``zone``
        (str; the layer's outside label, e.g. ``"sea"``, outside every polygon), ``depth_m``
        (distance to the nearest boundary, m; inf when farther than the band), ``band_m`` (m),
        ``certain`` (bool).

    Examples
    --------
    >>> import pandas as pd
    >>> fx = pd.DataFrame({"animal_id": ["a", "a"], "time": pd.to_datetime(["2022-01-01", "2022-01-02"], utc=True),
    ...                    "lon": [77.2, 77.07], "lat": [43.2, 42.9686], "hdop": [1.0, 1.0], "fix_type": ["3D", "3D"]})
    >>> fix_sides(fx)[["zone", "certain"]].values.tolist()
    [['KAZ', True], ['KGZ', False]]
    """
    z, _ = _resolve_zones(borders, zones, zone_field, border_error_m)
    f = _fix_table(tracks, smoothed)
    s = _sides(f["lon"], f["lat"], f["sigma"], z, band_k)
    names = np.append(z["zone"].to_numpy(dtype=object), z.attrs.get("outside", "outside"))
    return pd.DataFrame({
        "animal_id": np.asarray(f["labels"], dtype=object)[f["code"]],
        "time": tracks["time"].to_numpy()[f["pos"]],
        "lon": f["lon"], "lat": f["lat"], "sigma_m": f["sigma"],
        "zone": names[s["zone"]], "depth_m": s["depth"], "band_m": s["band"], "certain": s["certain"],
    }, index=tracks.index[f["pos"]])


# --------------------------------------------------------------------------------------------
# runs → events
# --------------------------------------------------------------------------------------------

def _events(code: np.ndarray, t: np.ndarray, label: np.ndarray, certain: np.ndarray, outside: int,
            min_stay_fixes: int, min_stay_h: float, open_end: bool, excursions: bool) -> pd.DataFrame:
    """Crossings and excursions from the side sequence (indices into the sorted fixes)."""
    ci = np.flatnonzero(certain)
    empty = pd.DataFrame({c: np.zeros(0, np.int64) for c in
                          ("kind", "i_before", "i_after", "from", "to", "n_fixes", "truncated", "via_run0",
                           "via_run1")})
    if len(ci) == 0:
        return empty
    cc, cl = code[ci], label[ci]
    start = np.ones(len(ci), bool)
    start[1:] = (cc[1:] != cc[:-1]) | (cl[1:] != cl[:-1])
    rs = np.flatnonzero(start)  # run starts (positions in ci)
    re = np.append(rs[1:], len(ci)) - 1  # run ends
    ra, rl = cc[rs], cl[rs]
    nr = len(rs)
    rn = re - rs + 1
    rdur_h = (t[ci[re]] - t[ci[rs]]) / _NS_PER_H
    land = rl != outside
    last_of_animal = np.append(ra[1:] != ra[:-1], True)
    truncated = np.zeros(nr, bool)
    conf = land & (rn >= min_stay_fixes) & (rdur_h >= min_stay_h)
    if open_end:
        truncated = land & last_of_animal & ~conf
        conf |= truncated
    ar = np.arange(nr)
    # P: latest stay at or before each run; N: next stay at or after (same animal, else -1)
    P = np.maximum.accumulate(np.where(conf, ar, -1))
    P = np.where((P >= 0) & (ra[np.maximum(P, 0)] == ra), P, -1)
    Nr = np.minimum.accumulate(np.where(conf, ar, nr)[::-1])[::-1]
    N = np.where((Nr < nr) & (ra[np.minimum(Nr, nr - 1)] == ra), Nr, -1)
    home = (P >= 0) & (rl == rl[np.maximum(P, 0)])
    H = np.maximum.accumulate(np.where(home, ar, -1))  # latest run in the home zone
    target = (N >= 0) & (rl == rl[np.maximum(N, 0)])
    T = np.minimum.accumulate(np.where(target, ar, nr)[::-1])[::-1]  # next run in the next stay's zone

    # crossings: stay q whose previous stay p (same animal) is in another zone
    q = np.flatnonzero(conf)
    q = q[q > 0]
    p = P[q - 1]
    keep = (p >= 0) & (ra[q - 1] == ra[q]) & (rl[np.maximum(p, 0)] != rl[q])
    q, p = q[keep], p[keep]
    j = H[q - 1]  # last run in the departure zone before q
    k = T[j + 1]  # first run in the arrival zone after j
    cross = pd.DataFrame({
        "kind": 0, "i_before": ci[re[j]], "i_after": ci[rs[k]], "from": rl[p], "to": rl[q],
        "n_fixes": ci[rs[k]] - ci[re[j]] - 1, "truncated": truncated[q], "via_run0": j + 1, "via_run1": k,
    })
    frames = [cross]
    if excursions:
        # a short land run in another zone, after a stay and before the last return to that stay's zone
        last_run = np.flatnonzero(last_of_animal)[np.cumsum(np.r_[0, last_of_animal[:-1]])]
        nxt_home_zone = (N >= 0) & (rl[np.maximum(N, 0)] == rl[np.maximum(P, 0)])
        limit = np.where(N >= 0, np.where(nxt_home_zone, N, H[np.maximum(N - 1, 0)]), H[last_run])
        e = np.flatnonzero(land & ~conf & ~home & (P >= 0) & (ar < limit))
        if len(e):
            frames.append(pd.DataFrame({
                "kind": 1, "i_before": ci[re[e - 1]], "i_after": ci[rs[e + 1]], "from": rl[P[e]], "to": rl[e],
                "n_fixes": rn[e], "truncated": False, "via_run0": e, "via_run1": e,
            }))
    out = pd.concat(frames, ignore_index=True)
    out.attrs["runs"] = (rl, ci[rs], ci[re])
    return out


def _via(ev: pd.DataFrame, outside: int) -> tuple[np.ndarray, list[list[int]]]:
    """Whether each crossing's bridge holds a certain outside fix, and the other zones it touched."""
    rl = ev.attrs["runs"][0]
    r0 = ev["via_run0"].to_numpy()
    r1 = ev["via_run1"].to_numpy()
    n_between = np.where(ev["kind"].to_numpy() == 0, r1 - r0, 0)
    is_out = np.r_[0, np.cumsum(rl == outside)]
    via_sea = (n_between > 0) & ((is_out[np.maximum(r1, 0)] - is_out[np.maximum(r0, 0)]) > 0)
    others: list[list[int]] = [[] for _ in range(len(ev))]
    for i in np.flatnonzero(n_between > 0):  # rare: only crossings with runs in between
        labs = np.unique(rl[r0[i]:r1[i]])
        others[i] = [int(x) for x in labs if x != outside]
    return via_sea, others


# --------------------------------------------------------------------------------------------
# crossing points and times
# --------------------------------------------------------------------------------------------

def _steps(i0: np.ndarray, i1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every step (fix k → k+1) inside each event's bracket: (event index, first fix index)."""
    n = i1 - i0
    ev = np.repeat(np.arange(len(i0)), n)
    k = i0[ev] + (np.arange(int(n.sum())) - np.repeat(np.r_[0, np.cumsum(n)[:-1]], n))
    return ev, k


def _meet(sx0, sy0, sx1, sy1, lines: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where each step (straight in lon/lat) meets its line: (step index, xy, fraction of the step)."""
    has = ~shapely.is_missing(lines)
    inter = np.full(len(sx0), None, dtype=object)
    if has.any():
        steps = shapely.linestrings(np.stack([np.column_stack([sx0[has], sy0[has]]),
                                              np.column_stack([sx1[has], sy1[has]])], axis=1))
        inter[has] = shapely.intersection(steps, lines[has])
    xy, idx = shapely.get_coordinates(inter, return_index=True)
    dx, dy = sx1[idx] - sx0[idx], sy1[idx] - sy0[idx]
    L2 = dx * dx + dy * dy
    frac = np.where(L2 > 0, ((xy[:, 0] - sx0[idx]) * dx + (xy[:, 1] - sy0[idx]) * dy) / np.where(L2 > 0, L2, 1), 0)
    return idx, xy, np.clip(frac, 0.0, 1.0)


def _place(ev: pd.DataFrame, f: dict[str, np.ndarray], zones: gpd.GeoDataFrame, lines: gpd.GeoDataFrame,
           outside_name: str) -> dict[str, Any]:
    """Crossing points (MultiPoint), the estimate point and its interpolated time per event.

    Each step of the bracket is intersected on its own with the border line, so a path that
    crosses the same place several times gives several points, each with its own step and time.
    """
    lon, lat, t = f["lon"], f["lat"], f["t"]
    i0 = ev["i_before"].to_numpy()
    i1 = ev["i_after"].to_numpy()
    n_ev = len(ev)
    sev, k = _steps(i0, i1)
    zcode = np.append(zones["zone"].to_numpy(dtype=object), outside_name)  # the last: outside every zone
    fr, to = ev["from"].to_numpy(), ev["to"].to_numpy()
    a, b = zcode[fr], zcode[to]
    lo, hi = np.where(a < b, a, b), np.where(a < b, b, a)
    key = pd.MultiIndex.from_arrays([lines["zone_a"].to_numpy(dtype=object), lines["zone_b"].to_numpy(dtype=object)])
    pos = key.get_indexer(pd.MultiIndex.from_arrays([lo, hi])) if len(key) else np.full(n_ev, -1)
    lg = np.asarray(lines.geometry.values, dtype=object)
    border = np.full(n_ev, None, dtype=object)
    border[pos >= 0] = lg[pos[pos >= 0]]
    sidx, xy, frac = _meet(lon[k], lat[k], lon[k + 1], lat[k + 1], border[sev])
    on_border = np.zeros(n_ev, bool)
    on_border[sev[sidx]] = True
    miss = ~on_border
    if miss.any():
        # no shared line crossed (via sea, or the two layers' lines disagree): both zones' outlines,
        # clipped to the bracket first (whole outlines are long)
        m = np.flatnonzero(miss)
        # outside every zone has no outline of its own: the other zone's is the whole boundary
        zb = np.append(shapely.boundary(np.asarray(zones.geometry.values, dtype=object)),
                       shapely.GeometryCollection())
        bl = np.minimum.reduceat(np.minimum(lon[k], lon[k + 1]), np.r_[0, np.cumsum(i1 - i0)[:-1]])
        bb = np.minimum.reduceat(np.minimum(lat[k], lat[k + 1]), np.r_[0, np.cumsum(i1 - i0)[:-1]])
        br = np.maximum.reduceat(np.maximum(lon[k], lon[k + 1]), np.r_[0, np.cumsum(i1 - i0)[:-1]])
        bt = np.maximum.reduceat(np.maximum(lat[k], lat[k + 1]), np.r_[0, np.cumsum(i1 - i0)[:-1]])
        eps = 1e-6  # a straight east-west or north-south bracket has a flat bounding box
        box = shapely.box(bl[m] - eps, bb[m] - eps, br[m] + eps, bt[m] + eps)
        alt = np.full(n_ev, None, dtype=object)
        alt[m] = shapely.union(shapely.intersection(zb[fr[m]], box), shapely.intersection(zb[to[m]], box))
        s2 = np.flatnonzero(miss[sev])
        sidx2, xy2, frac2 = _meet(lon[k[s2]], lat[k[s2]], lon[k[s2] + 1], lat[k[s2] + 1], alt[sev[s2]])
        sidx = np.r_[sidx, s2[sidx2]]
        xy = np.vstack([xy, xy2])
        frac = np.r_[frac, frac2]
    pev = sev[sidx]
    order = np.lexsort((frac, sidx))  # steps are in path order within each event
    pev, sidx, xy, frac = pev[order], sidx[order], xy[order], frac[order]
    kk = k[sidx]
    tt = t[kk].astype(float) + frac * (t[kk + 1] - t[kk]).astype(float)

    count = np.bincount(pev, minlength=n_ev)
    first = np.r_[0, np.cumsum(count)][:-1]
    pick = first + np.where(ev["kind"].to_numpy() == 0, (count - 1) // 2, 0)
    has = count > 0
    est_lon = (lon[i0] + lon[i1]) / 2  # no intersection at all cannot happen for polygons; guard
    est_lat = (lat[i0] + lat[i1]) / 2
    est_t = (t[i0].astype(float) + t[i1].astype(float)) / 2
    est_lon[has] = xy[pick[has], 0]
    est_lat[has] = xy[pick[has], 1]
    est_t[has] = tt[pick[has]]
    geoms = shapely.multipoints(np.column_stack([est_lon, est_lat])[:, None, :])
    if len(pev):
        hit, dense = np.unique(pev, return_inverse=True)  # multipoints wants indices without holes
        geoms[hit] = shapely.multipoints(xy, indices=dense)
    return {"geometry": geoms, "lon": est_lon, "lat": est_lat, "time_ns": est_t, "n_points": count,
            "on_border": on_border}


# --------------------------------------------------------------------------------------------
# public
# --------------------------------------------------------------------------------------------

def crossings(tracks: pd.DataFrame, borders: Any = None, *, zones: Any = None, zone_field: str | None = None,
              **params: Any) -> gpd.GeoDataFrame:
    """Border crossings (and excursions) of every animal, robust to fix and border error.

    Parameters
    ----------
    tracks : DataFrame
        Canonical fixes or processed tracks (``lon_s``, ``lat_s``, ``se_m`` used when present).
        Only usable rows count (``flag`` NA, time and coordinates present).
    borders : GeoDataFrame, optional
        Border *lines* with ``zone_a``/``zone_b`` (or ``iso_a``/``iso_b``) used for the crossing
        points (default: the lines shared by the zones). A *polygon* layer passed here is taken
        as ``zones``.
    zones : GeoDataFrame or path, optional
        Zone polygons (default: the bundled countries); see :func:`telemetry.corridor.zones.load_zones`.
    zone_field : str, optional
        Column naming the zones of a user layer (e.g. ``"NAME"``).
    **params
        ``band_k`` (2.0, multiple of the combined σ), ``border_error_m`` (None: the layer's
        per-zone accuracy; m), ``min_stay_fixes`` (2), ``min_stay_h`` (0.0, hours),
        ``open_end`` (True), ``gap_scale_h`` (48.0, hours), ``excursions`` (True: include rows
        with ``kind="excursion"``), ``smoothed`` (True).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per event, sorted by animal and time, EPSG:4326. Columns: ``animal_id``,
        ``kind`` (``"crossing"`` or ``"excursion"``), ``from_iso``, ``to_iso`` (ISO alpha-3 for
        countries, zone values for user layers; for an excursion ``from_iso`` is home and
        ``to_iso`` the zone visited), ``time`` (estimate, UTC), ``t_before``, ``t_after``
        (bracketing certain fixes; for an excursion the certain fixes around the visit),
        ``gap_h`` (hours), ``lon``, ``lat`` (estimated point, degrees), ``n_points`` (times the
        path meets the line), ``on_border`` (points on the shared line), ``via_sea``, ``via``
        (other zones touched in the bracket, comma-separated), ``n_fixes`` (fixes inside the
        bracket; for an excursion the certain fixes of the visit), ``depth_before_m``,
        ``depth_after_m``, ``sigma_before_m``, ``sigma_after_m`` (m), ``truncated`` (arrival stay
        cut by the end of the data), ``confidence`` (see module docstring) and ``geometry``
        (MultiPoint of every intersection). ``attrs["parameters"]`` holds the parameters.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.date_range("2022-01-01", periods=6, freq="4h", tz="UTC")
    >>> fx = pd.DataFrame({"animal_id": "a", "time": t, "hdop": 1.0, "fix_type": "3D",
    ...                    "lon": 77.1, "lat": [43.05, 43.04, 43.03, 42.90, 42.89, 42.88]})
    >>> c = crossings(fx)
    >>> c[["from_iso", "to_iso", "kind"]].values.tolist()
    [['KAZ', 'KGZ', 'crossing']]
    """
    unknown = set(params) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown parameter(s): {', '.join(sorted(unknown))} (known: {', '.join(DEFAULTS)})")
    p = {**DEFAULTS, **params}
    z, lines = _resolve_zones(borders, zones, zone_field, p["border_error_m"])
    outside_name = z.attrs.get("outside", "outside")
    place = p["outside_is_place"]
    place = (not z.attrs.get("countries", False)) if place is None else bool(place)
    if lines is None:
        lines = zone_borders(z, outside=outside_name if place else None)
    f = _fix_table(tracks, p["smoothed"])
    s = _sides(f["lon"], f["lat"], f["sigma"], z, p["band_k"])
    outside = len(z)
    label = np.where(s["zone"] >= 0, s["zone"], outside)
    # the label that starts and ends nothing (-1: none, every side is a place)
    passive = -1 if place else outside
    ev = _events(f["code"], f["t"], label, s["certain"], passive, int(p["min_stay_fixes"]),
                 float(p["min_stay_h"]), bool(p["open_end"]), bool(p["excursions"]))
    cols = _empty_columns()
    if not z.attrs.get("countries", False):
        cols = {("from_zone" if k == "from_iso" else "to_zone" if k == "to_iso" else k): v for k, v in cols.items()}
    if len(ev) == 0:
        out = gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries([], crs="EPSG:4326"))
        out.attrs["parameters"] = _printable(p)
        return out
    via_sea, others = _via(ev, passive)
    zcode = np.append(z["zone"].to_numpy(dtype=object), outside_name)
    pl = _place(ev, f, z, lines, outside_name)
    i0, i1 = ev["i_before"].to_numpy(), ev["i_after"].to_numpy()
    t = f["t"]
    gap_h = (t[i1] - t[i0]) / _NS_PER_H
    s0 = np.sqrt(f["sigma"][i0] ** 2 + s["acc"][i0] ** 2)
    s1 = np.sqrt(f["sigma"][i1] ** 2 + s["acc"][i1] ** 2)
    d0 = np.where(np.isfinite(s["depth"][i0]), s["depth"][i0], s["band"][i0] * 3)
    d1 = np.where(np.isfinite(s["depth"][i1]), s["depth"][i1], s["band"][i1] * 3)
    trunc = ev["truncated"].to_numpy(dtype=bool)
    g = float(p["gap_scale_h"])
    conf = (ndtr(d0 / np.maximum(s0, 1e-9)) * ndtr(d1 / np.maximum(s1, 1e-9)) * (g / (g + gap_h))
            * np.where(trunc, 0.5, 1.0))
    kind = np.where(ev["kind"].to_numpy() == 0, "crossing", "excursion")
    est_t = pd.to_datetime(np.round(pl["time_ns"]).astype(np.int64), utc=True).as_unit("ns")
    data = {
        "animal_id": np.asarray(f["labels"], dtype=object)[f["code"][i0]],
        "kind": kind,
        "from_iso": zcode[ev["from"].to_numpy()],
        "to_iso": zcode[ev["to"].to_numpy()],  # renamed below for a user zone layer
        "time": est_t,
        "t_before": pd.to_datetime(t[i0], utc=True).as_unit("ns"),
        "t_after": pd.to_datetime(t[i1], utc=True).as_unit("ns"),
        "gap_h": gap_h,
        "lon": pl["lon"], "lat": pl["lat"],
        "n_points": pl["n_points"], "on_border": pl["on_border"],
        "via_sea": via_sea,
        "via": [",".join(str(zcode[x]) for x in o) for o in others],
        "n_fixes": ev["n_fixes"].to_numpy(),
        "depth_before_m": s["depth"][i0], "depth_after_m": s["depth"][i1],
        "sigma_before_m": f["sigma"][i0], "sigma_after_m": f["sigma"][i1],
        "truncated": trunc,
        "confidence": conf,
    }
    out = gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(pl["geometry"], crs="EPSG:4326"))
    out = out.sort_values(["animal_id", "time", "kind"], kind="stable").reset_index(drop=True)
    if not z.attrs.get("countries", False):
        out = out.rename(columns={"from_iso": "from_zone", "to_iso": "to_zone"})
    out.attrs["parameters"] = _printable({**p, "outside_is_place": place})
    return out


def _empty_columns() -> dict[str, Any]:
    return {"animal_id": pd.Series(dtype=object), "kind": pd.Series(dtype=object),
            "from_iso": pd.Series(dtype=object), "to_iso": pd.Series(dtype=object),
            "time": pd.Series(dtype="datetime64[ns, UTC]"), "t_before": pd.Series(dtype="datetime64[ns, UTC]"),
            "t_after": pd.Series(dtype="datetime64[ns, UTC]"), "gap_h": pd.Series(dtype=float),
            "lon": pd.Series(dtype=float), "lat": pd.Series(dtype=float), "n_points": pd.Series(dtype=np.int64),
            "on_border": pd.Series(dtype=bool), "via_sea": pd.Series(dtype=bool), "via": pd.Series(dtype=object),
            "n_fixes": pd.Series(dtype=np.int64), "depth_before_m": pd.Series(dtype=float),
            "depth_after_m": pd.Series(dtype=float), "sigma_before_m": pd.Series(dtype=float),
            "sigma_after_m": pd.Series(dtype=float), "truncated": pd.Series(dtype=bool),
            "confidence": pd.Series(dtype=float)}


def _printable(p: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in p.items()}


def time_in_zones(tracks: pd.DataFrame, borders: Any = None, *, zones: Any = None, zone_field: str | None = None,
                  max_step_h: float | None = None, smoothed: bool = True, band_k: float = DEFAULTS["band_k"],
                  border_error_m: float | None = None) -> pd.DataFrame:
    """Days and fixes per animal and zone.

    Each step between consecutive usable fixes of an animal gives half its duration to the zone
    of each end fix (the zone the position lies in; certainty is reported separately). Steps
    that join two segments (``segment_id`` differs) or last longer than ``max_step_h`` count for
    nothing: the animal was not observed then.

    Parameters
    ----------
    tracks : DataFrame
        Canonical fixes or processed tracks.
    borders, zones, zone_field, border_error_m, band_k, smoothed
        As in :func:`crossings`.
    max_step_h : float, optional
        Longest step (hours) whose duration is counted.

    Returns
    -------
    pandas.DataFrame
        Columns ``animal_id``, ``zone`` (the outside label, e.g. ``"sea"``, for fixes outside
        every polygon), ``name``, ``days`` (float), ``fixes`` (int), ``certain_fixes`` (int),
        ``share`` (fraction of the animal's counted days), sorted by animal and zone.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.date_range("2022-01-01", periods=3, freq="12h", tz="UTC")
    >>> fx = pd.DataFrame({"animal_id": "a", "time": t, "lon": 77.1, "lat": [43.05, 43.04, 42.88],
    ...                    "hdop": 1.0, "fix_type": "3D"})
    >>> time_in_zones(fx)[["zone", "days", "fixes"]].values.tolist()
    [['KAZ', 0.75, 2], ['KGZ', 0.25, 1]]
    """
    z, _ = _resolve_zones(borders, zones, zone_field, border_error_m)
    f = _fix_table(tracks, smoothed)
    s = _sides(f["lon"], f["lat"], f["sigma"], z, band_k)
    outside = len(z)
    label = np.where(s["zone"] >= 0, s["zone"], outside)
    code, t = f["code"], f["t"]
    n = len(code)
    step_ok = np.zeros(max(n - 1, 0), bool)
    if n > 1:
        step_ok = code[1:] == code[:-1]
        if f["seg"] is not None:
            step_ok &= f["seg"][1:] == f["seg"][:-1]
        dt_d = (t[1:] - t[:-1]) / (_NS_PER_H * 24)
        if max_step_h is not None:
            step_ok &= dt_d * 24 <= max_step_h
        half = np.where(step_ok, dt_d / 2, 0.0)
        days = np.r_[half, 0.0] + np.r_[0.0, half]
    else:
        days = np.zeros(n)
    names = np.append(z["zone"].to_numpy(dtype=object), z.attrs.get("outside", "outside"))
    display = np.append(z["name"].to_numpy(dtype=object), z.attrs.get("outside", "outside"))
    df = pd.DataFrame({"a": code, "z": label, "days": days, "fixes": 1, "certain_fixes": s["certain"].astype(int)})
    g = df.groupby(["a", "z"], sort=True).sum().reset_index()
    total = g.groupby("a")["days"].transform("sum")
    return pd.DataFrame({
        "animal_id": np.asarray(f["labels"], dtype=object)[g["a"].to_numpy()],
        "zone": names[g["z"].to_numpy()],
        "name": display[g["z"].to_numpy()],
        "days": g["days"].to_numpy(dtype=float),
        "fixes": g["fixes"].to_numpy(dtype=np.int64),
        "certain_fixes": g["certain_fixes"].to_numpy(dtype=np.int64),
        "share": np.where(total > 0, g["days"] / total.where(total > 0, 1.0), np.nan),
    })
