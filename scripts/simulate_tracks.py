"""Simulate the SYNTHETIC sample: 11 Tien Shan snow leopards with GPS collars.

    python scripts/simulate_tracks.py [--out DIR]

Writes ``sample_tracks/`` (collar files in Movebank, Vectronic GPS Plus X and
Lotek Web Service layouts) and ``sample_tracks/truth/`` (the true 5-minute
path, per-record truth, border crossings, kill sites, animals). Every number
is simulated: these are not observations of real animals. Same code + same
library versions -> same bytes (seeded ``numpy.random.default_rng`` per animal,
fixed float formatting, gzip with ``mtime=0``).

Movement model (local azimuthal-equidistant plane of each animal, km, 5-min steps):

* daily cycle in local time (UTC+6, Almaty until 2024): a day bed (resting, AR(1)
  jitter of ~10 m) and one active bout starting 17-20 h lasting 9-13 h;
* kill sites: every ~8 days (gamma, CV 0.35) the cat kills early in an active bout
  and stays ~3 days (gamma, clipped 1.5-5 d) within 100 m (resting, 30 m jitter);
* moving: velocity-autocorrelated random walk with OU attraction to the current
  activity patch (a second-order linear recurrence run with ``scipy.signal.lfilter``);
* travelling: directed move to another patch at 1.6-2.4 km/h (<= ~10 km / 4 h)
  with a Brownian-bridge lateral deviation;
* home range: 4-5 activity patches on a ring sized from the published home-range
  area of the sex; a cat switches patch at ~30% of active bouts;
* border crossers: at least one patch lies in the neighbouring country; excursions
  there are scheduled regularly (2-4 per collar-year) so the number of true
  crossings per year is controlled; moving bouts are kept inside the patch's
  country (a bout leaving it is redrawn), so crossings happen on travel bouts;
* non-crossers stay >= 3 km inside their country (bouts redrawn otherwise);
* the disperser leaves its natal range along waypoints ~10-15 km apart to a
  settlement range 80-160 km away.

Collar model: fixes on a fixed UTC schedule plus a time-to-fix of 15-120 s;
failures clustered in time (two-state obstruction process: 75 % failure while
"in a gorge" for ~16 h spells, 2 % otherwise); HDOP lognormal (median 1.5);
15 % 2D fixes; error sigma = UERE x HDOP per axis (UERE 10 m 3D, 30 m 2D);
0.5 % gross outliers displaced 1-5 km; 0.3 % duplicated records; one collar
(SL04, Lotek) with a GPS week-rollover clock jump (-1024 weeks) for a week.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer
from scipy.signal import lfilter, lfiltic

from telemetry.corridor.borders import load_countries

ROOT = Path(__file__).resolve().parents[1]
SEED = 20240611
STEP_S = 300  # 5-minute truth resolution
STEPS_PER_H = 3600 // STEP_S
LOCAL_UTC_OFFSET_H = 6  # Almaty time in 2021-2023 (UTC+6)
STUDY = "SYNTHETIC snow leopards Tien Shan (simulated, not real observations)"
COMMENT = "SYNTHETIC - simulated by scripts/simulate_tracks.py, not an observation"
TAXON = "Panthera uncia"
SAMPLE_ISO = ("KAZ", "KGZ", "CHN")
SAMPLE_WINDOW = (74.0, 40.0, 84.0, 47.5)  # lon/lat box holding every simulated path

# published parameters (see sample_tracks/README.md for sources)
HR_KM2 = {"M": (207.0, 63.0), "F": (124.0, 41.0)}  # Johansson et al. 2016: mean, SD
KILL_INTERVAL_D = 8.0  # Johansson et al. 2015
KILL_STAY_D = 3.0  # Johansson et al. 2015; Jackson 1996
KILL_RADIUS_KM = 0.1
TRAVEL_KMH = (1.6, 2.4)  # <= ~10 km per 4 h
HDOP_MEDIAN, HDOP_LOG_SD = 1.5, 0.45
P_2D = 0.15
UERE_M = {"3D": 10.0, "2D": 30.0}
OUTLIER_SHARE, OUTLIER_KM = 0.005, (1.0, 5.0)
DUPLICATE_SHARE = 0.003
GORGE_SPELL_H, P_FAIL_GORGE, P_FAIL_OPEN = 16.0, 0.75, 0.02
GPS_WEEK_ROLLOVER = pd.Timedelta(weeks=1024)
PATCH_MARGIN_KM = 1.5  # patch centres at least this far inside their country


@dataclass(frozen=True)
class Animal:
    """One simulated collar deployment (positions are lon/lat degrees)."""

    animal_id: str
    sex: str
    age_class: str
    region: str
    center: tuple[float, float]
    home_iso: str
    away_iso: tuple[str, ...]  # countries of patches across a border; () = never crosses
    vendor: str  # movebank | vectronic | lotek
    tag_id: str
    fix_interval_h: int
    start: str  # UTC, first scheduled fix
    days: int
    collar_fate: str
    hr_km2: float  # target 95% MCP area
    success: float  # target fix success
    excursions_per_year: float = 0.0
    settle: tuple[float, float] | None = None  # disperser: settlement range centre
    disperse_day: int = 0
    clock_jump: bool = False
    seed_offset: int = 0


ANIMALS: tuple[Animal, ...] = (
    Animal("SL01", "M", "adult", "Ile-Alatau / Almaty reserve (KAZ-KGZ)", (77.145, 42.955), "KAZ", ("KGZ",),
           "movebank", "30701", 4, "2021-03-10 02:00", 610, "programmed drop-off", 215.0, 0.90, 3.0),
    Animal("SL02", "F", "adult", "Kungey Alatau ridge (KAZ-KGZ)", (78.474, 42.882), "KAZ", ("KGZ",),
           "movebank", "30702", 4, "2021-09-15 03:00", 425, "battery exhausted", 125.0, 0.91, 2.5),
    Animal("SL03", "M", "adult", "Kolsai-Kegen-Narynkol (KAZ-KGZ)", (79.193, 42.742), "KAZ", ("KGZ",),
           "vectronic", "41935", 5, "2022-02-20 01:00", 720, "programmed drop-off", 200.0, 0.89, 2.0),
    Animal("SL04", "F", "adult", "Ketmen range, Narynkol (KAZ-CHN)", (80.421, 43.062), "KAZ", ("CHN",),
           "lotek", "47113", 4, "2022-03-01 00:00", 365, "programmed drop-off", 120.0, 0.88, 3.0,
           clock_jump=True),
    Animal("SL05", "M", "adult", "Khan Tengri tripoint, Terskey (KAZ-KGZ-CHN)", (80.22, 42.215), "KAZ",
           ("KGZ", "CHN"), "movebank", "30705", 1, "2022-08-10 05:00", 213, "battery exhausted", 300.0,
           0.88, 4.0),
    Animal("SL06", "F", "adult", "Zhongar Alatau (KAZ-CHN)", (80.45, 45.102), "KAZ", ("CHN",),
           "vectronic", "41936", 4, "2021-05-05 00:00", 487, "programmed drop-off", 130.0, 0.92, 2.5),
    Animal("SL07", "F", "adult", "Altyn-Emel (KAZ)", (78.62, 44.10), "KAZ", (),
           "movebank", "30707", 5, "2022-10-01 01:00", 335, "programmed drop-off", 115.0, 0.91),
    Animal("SL08", "M", "adult", "Ile-Alatau north slope (KAZ)", (77.45, 43.12), "KAZ", (),
           "movebank", "30708", 4, "2023-03-01 04:00", 91, "failed early (no signal)", 190.0, 0.89),
    Animal("SL09", "M", "adult", "Zhongar Alatau, Koksu (KAZ)", (79.35, 45.15), "KAZ", (),
           "movebank", "30709", 4, "2021-10-12 02:00", 548, "battery exhausted", 220.0, 0.90),
    Animal("SL10", "F", "adult", "Kolsai lakes (KAZ)", (78.32, 43.02), "KAZ", (),
           "movebank", "30710", 1, "2023-01-20 00:00", 152, "failed early (no signal)", 118.0, 0.90),
    Animal("SL11", "M", "subadult", "disperser: Chilik valley -> Toksanbai/Altyn-Emel (KAZ)", (77.95, 43.18),
           "KAZ", (), "movebank", "30711", 4, "2022-04-15 03:00", 274, "programmed drop-off", 150.0, 0.90,
           settle=(78.85, 43.98), disperse_day=120),
)


# ---------------------------------------------------------------- geometry
@dataclass
class Plane:
    """An animal's local azimuthal-equidistant plane (km) and its country polygons there."""

    fwd: Transformer
    inv: Transformer
    countries: dict[str, shapely.Geometry] = field(default_factory=dict)
    allowed: dict[str, shapely.Geometry] = field(default_factory=dict)
    core: dict[str, shapely.Geometry] = field(default_factory=dict)  # where patch centres may lie

    def to_km(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, y = self.fwd.transform(lon, lat)
        return np.asarray(x) / 1e3, np.asarray(y) / 1e3

    def to_lonlat(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lon, lat = self.inv.transform(np.asarray(x) * 1e3, np.asarray(y) * 1e3)
        return np.asarray(lon), np.asarray(lat)

    def country_of(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        out = np.full(np.shape(x), "", dtype="<U3")
        for iso, poly in self.countries.items():
            out[shapely.contains_xy(poly, x, y)] = iso
        return out

    def inside(self, iso: str, x: np.ndarray, y: np.ndarray) -> bool:
        return bool(shapely.contains_xy(self.allowed[iso], x, y).all())


def make_plane(center: tuple[float, float], margin_km: float, countries: pd.DataFrame) -> Plane:
    lon0, lat0 = center
    proj = f"+proj=aeqd +lon_0={lon0} +lat_0={lat0} +datum=WGS84 +units=m"
    fwd = Transformer.from_crs("EPSG:4326", proj, always_xy=True)
    inv = Transformer.from_crs(proj, "EPSG:4326", always_xy=True)
    plane = Plane(fwd, inv)

    def to_km(xy: np.ndarray) -> np.ndarray:
        x, y = fwd.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y]) / 1e3

    for iso, geom in zip(countries.iso_a3, countries.geometry):
        # a window of +-3 degrees is all an animal can reach; projecting all of China is wasteful
        clipped = shapely.clip_by_rect(geom, lon0 - 3, lat0 - 3, lon0 + 3, lat0 + 3)
        local = shapely.make_valid(shapely.transform(clipped, to_km))
        shapely.prepare(local)
        plane.countries[iso] = local
        inner = shapely.buffer(local, -margin_km)
        shapely.prepare(inner)
        plane.allowed[iso] = inner
        core = shapely.buffer(local, -max(margin_km, PATCH_MARGIN_KM))
        shapely.prepare(core)
        plane.core[iso] = core
    return plane


# ---------------------------------------------------------------- movement
def ar1(rng: np.random.Generator, n: int, phi: float, sd: float) -> np.ndarray:
    """(n, 2) stationary-sd ``sd`` AR(1) jitter starting at 0 (km)."""
    e = rng.normal(0.0, sd * math.sqrt(1 - phi * phi), size=(n, 2))
    return lfilter([1.0], [1.0, -phi], e, axis=0)


def moving_bout(rng: np.random.Generator, n: int, p0: np.ndarray, v0: np.ndarray, centre: np.ndarray,
                a: float = 0.8, b: float = 0.0016, s: float = 0.043) -> np.ndarray:
    """Velocity-autocorrelated walk attracted to ``centre`` (km, 5-min steps).

    y_t = x_t - centre follows y_t = (1 + a - b) y_{t-1} - a y_{t-2} + e_t, i.e.
    v_t = a v_{t-1} - b y_{t-1} + e_t: persistence ``a`` per step, attraction ``b``.
    """
    den = [1.0, -(1.0 + a - b), a]
    e = rng.normal(0.0, s, size=(n, 2))
    y1 = p0 - centre
    y2 = y1 - v0
    out = np.empty((n, 2))
    for k in range(2):
        zi = lfiltic([1.0], den, y=[y1[k], y2[k]])
        out[:, k] = lfilter([1.0], den, e[:, k], zi=zi)[0]
    return out + centre


def travel_bout(rng: np.random.Generator, p0: np.ndarray, p1: np.ndarray) -> np.ndarray:
    """Directed travel from p0 to p1 (km): straight line plus a Brownian-bridge lateral deviation."""
    d = float(np.hypot(*(p1 - p0)))
    step = rng.uniform(*TRAVEL_KMH) / STEPS_PER_H
    n = max(2, math.ceil(d / step))
    f = np.arange(1, n + 1) / n
    w = np.cumsum(rng.normal(0.0, 0.035, n))
    bridge = w - f * w[-1]
    u = (p1 - p0) / max(d, 1e-9)
    perp = np.array([-u[1], u[0]])
    return p0 + np.outer(f * d, u) + np.outer(bridge, perp)


@dataclass
class Track:
    """The true path of one animal in its plane."""

    xy: np.ndarray  # (n, 2) km
    state: np.ndarray  # (n,) int8: 0 resting, 1 moving, 2 travelling
    kills: list[tuple[int, int, float, float]]  # start step, end step, x, y
    redraws: int


STATES = np.array(["resting", "moving", "travelling"])


def patches_for(rng: np.random.Generator, a: Animal, plane: Plane, centre: np.ndarray, n_patch: int,
                area_km2: float, home: str, away: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Activity patches on a ring sized for ``area_km2``; each >= 1.5 km inside its country.

    Crossers need >= 2 home patches and one patch in each ``away`` country; others all at home.
    Returns (patch xy (k, 2), patch country (k,)).
    """
    # ring radius: MCP95 of the ring of patches plus the spread of movement around them
    # (factor calibrated on the simulated tracks, see tests/test_sample_tracks.py)
    # crossers spend little time in their away patch, so their MCP95 needs a wider ring
    r = math.sqrt(area_km2) / (2.1 if away else 2.65)
    for _ in range(5000):
        # random bearings at least 45 degrees apart: a ring-like range that can bend around borders
        ang = np.sort(rng.uniform(0, 2 * np.pi, n_patch))
        if np.diff(np.r_[ang, ang[0] + 2 * np.pi]).min() < np.pi / 4:
            continue
        rad = r * rng.uniform(0.8, 1.15, n_patch)
        xy = centre + np.column_stack([rad * np.cos(ang), rad * np.sin(ang)])
        iso = np.full(n_patch, "", dtype="<U3")
        for c in (home, *away):
            iso[shapely.contains_xy(plane.core[c], xy[:, 0], xy[:, 1])] = c
        if (iso == "").any():
            continue
        if (iso == home).sum() >= 2 and all((iso == c).any() for c in away):
            return xy, iso
    if n_patch > 3:  # a narrow wedge of country (tripoint): fewer, wider-spaced patches
        return patches_for(rng, a, plane, centre, n_patch - 1, area_km2, home, away)
    raise RuntimeError(f"{a.animal_id}: no patch layout fits the borders")


def simulate_path(a: Animal, rng: np.random.Generator, plane: Plane, n_steps: int,
                  t0_local_h: float) -> Track:
    """Simulate the 5-min true path (loop over days and bouts; each bout vectorised)."""
    xy = np.zeros((n_steps + 400, 2))
    state = np.zeros(n_steps + 400, dtype=np.int8)
    n_patch = 5 if a.sex == "M" else 4
    centre = np.zeros(2)
    pxy, piso = patches_for(rng, a, plane, centre, n_patch, a.hr_km2, a.home_iso, a.away_iso)
    home = np.flatnonzero(piso == a.home_iso)
    awayp = np.flatnonzero(piso != a.home_iso)
    settle_xy = way = None
    if a.settle is not None:
        sx, sy = plane.to_km(np.array([a.settle[0]]), np.array([a.settle[1]]))
        settle_xy = np.array([sx[0], sy[0]])
        spxy, _ = patches_for(rng, a, plane, settle_xy, n_patch, a.hr_km2, a.home_iso, ())
        d = float(np.hypot(*settle_xy))
        k = max(2, round(d / 12.0))
        f = np.arange(1, k)[:, None] / k
        perp = np.array([-settle_xy[1], settle_xy[0]]) / d
        way = f * settle_xy + np.outer(rng.normal(0, 3.0, k - 1), perp)
        for j in range(len(way)):  # keep each waypoint >= 3 km inside the country
            on_line = settle_xy * (j + 1) / k
            for _ in range(50):
                if plane.inside(a.home_iso, way[j:j + 1, 0], way[j:j + 1, 1]):
                    break
                way[j] = 0.8 * way[j] + 0.2 * on_line
    cur = int(rng.choice(home))
    pos = pxy[cur] + rng.normal(0, 0.3, 2)
    vel = np.zeros(2)
    steps_per_day = 24 * STEPS_PER_H
    # excursions across the border: regular-ish schedule so crossings/year are controlled
    exc: list[tuple[int, int, int]] = []
    if len(awayp):
        period = 365.0 / a.excursions_per_year * steps_per_day
        t = rng.uniform(0.15, 0.6) * period
        while t < n_steps:
            dur = rng.uniform(3, 12) * steps_per_day
            exc.append((int(t), int(t + dur), int(awayp[len(exc) % len(awayp)])))
            t += period * rng.uniform(0.75, 1.25)
    next_kill = int(rng.gamma(8.0, KILL_INTERVAL_D / 8.0) * steps_per_day * 0.5)
    kills: list[tuple[int, int, float, float]] = []
    redraws = 0
    t = 0
    day = 0
    way_i = 0
    dispersing = False
    anchor: np.ndarray | None = None  # attraction centre while dispersing (the last waypoint)
    # local time of step 0 -> index of the first local midnight
    first_midnight = int(round((24 - t0_local_h) % 24 * STEPS_PER_H))

    def put(seg: np.ndarray, st: int) -> None:
        nonlocal t, pos, vel
        n = len(seg)
        if n == 0:
            return
        end = min(t + n, len(xy))
        seg = seg[: end - t]
        xy[t:end] = seg
        state[t:end] = st
        vel = seg[-1] - (seg[-2] if len(seg) > 1 else pos)
        pos = seg[-1].copy()
        t = end

    def rest(n: int, sd: float, phi: float = 0.995, clip: float | None = None) -> None:
        j = ar1(rng, n, phi, sd)
        if clip is not None:
            r = np.hypot(j[:, 0], j[:, 1])
            j *= np.minimum(1.0, clip / np.maximum(r, 1e-12))[:, None]
        put(pos + j, 0)

    def region_of(patch: int) -> str:
        return a.home_iso if a.settle is not None else str(piso[patch])

    def move(n: int) -> None:
        nonlocal redraws
        iso = region_of(cur)
        target = anchor if anchor is not None else pxy[cur]
        for _ in range(30):
            seg = moving_bout(rng, n, pos, vel, target)
            if plane.inside(iso, seg[:, 0], seg[:, 1]):
                put(seg, 1)
                return
            redraws += 1
        rest(n, 0.01)  # the cat stays put rather than leave the range this night

    def travel(p1: np.ndarray, same_side: str | None) -> None:
        nonlocal redraws
        for _ in range(30):
            seg = travel_bout(rng, pos, p1)
            if same_side is None or plane.inside(same_side, seg[:, 0], seg[:, 1]):
                put(seg, 2)
                return
            redraws += 1
        f = np.linspace(0, 1, max(2, math.ceil(np.hypot(*(p1 - pos)) / 0.15)))[1:, None]
        put(pos + f * (p1 - pos), 2)

    while t < n_steps:
        act = first_midnight + (day - 1) * steps_per_day + int(rng.uniform(17, 20) * STEPS_PER_H)
        day += 1
        if act + 3 * STEPS_PER_H < t:
            continue  # still at a kill from an earlier night
        if act > t:
            rest(act - t, 0.01)
        active_n = int(rng.uniform(9, 13) * STEPS_PER_H)
        bout_end = t + active_n
        if a.settle is not None and day >= a.disperse_day and way is not None and not dispersing:
            dispersing = True
        if t >= next_kill:
            pre = int(rng.uniform(1, 5) * STEPS_PER_H)
            move(pre)
            stay = int(np.clip(rng.gamma(9.0, KILL_STAY_D / 9.0), 1.5, 5.0) * steps_per_day)
            k0 = t
            kx, ky = pos
            rest(stay, 0.03, phi=0.98, clip=KILL_RADIUS_KM * 0.95)
            kills.append((k0, t, float(kx), float(ky)))
            next_kill = k0 + int(max(rng.gamma(8.0, KILL_INTERVAL_D / 8.0), stay / steps_per_day + 2)
                                 * steps_per_day)
            continue
        # where to spend this night
        target_patch = cur
        if dispersing and way is not None and way_i <= len(way):
            if way_i < len(way):
                travel(way[way_i], a.home_iso)
                anchor = way[way_i]
                way_i += 1
            else:
                pxy, piso = spxy, np.full(len(spxy), a.home_iso)
                home = np.arange(len(spxy))
                target_patch = cur = int(rng.integers(len(spxy)))
                travel(pxy[cur], a.home_iso)
                way_i += 1
                dispersing = False
                anchor = None
            if t < bout_end:
                move(bout_end - t)
            continue
        in_exc = [e for e in exc if e[0] <= t < e[1]]
        if in_exc:
            target_patch = in_exc[0][2]
        elif piso[cur] != a.home_iso:
            target_patch = int(rng.choice(home))
        elif rng.random() < 0.3 and len(home) > 1:
            target_patch = int(rng.choice(home[home != cur]))
        if target_patch != cur:
            same = a.home_iso if piso[target_patch] == piso[cur] else None
            cur = target_patch
            travel(pxy[cur] + rng.normal(0, 0.4, 2), same)
        if t < bout_end:
            move(bout_end - t)
    return Track(xy[:n_steps], state[:n_steps], kills, redraws)


# ---------------------------------------------------------------- collar
def gorge_mask(rng: np.random.Generator, hours: np.ndarray, success: float, span_h: float) -> np.ndarray:
    """True where the collar is 'in a gorge' (obstructed sky): alternating exponential spells."""
    f = (1.0 - success - P_FAIL_OPEN) / (P_FAIL_GORGE - P_FAIL_OPEN)
    open_h = GORGE_SPELL_H * (1 - f) / f
    n = int(span_h / (open_h + GORGE_SPELL_H) * 3) + 20
    spells = np.empty(2 * n)
    spells[0::2] = rng.exponential(open_h, n)
    spells[1::2] = rng.exponential(GORGE_SPELL_H, n)
    edges = np.cumsum(spells) - rng.uniform(0, open_h)
    return (np.searchsorted(edges, hours, side="right") % 2) == 1


def terrain_m(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """A smooth synthetic elevation surface (m): no DEM is used, heights are illustrative only."""
    return (2900 + 450 * np.sin(lon * 37.0) * np.cos(lat * 41.0) + 250 * np.sin(lon * 113.0 + lat * 97.0))


def simulate_records(a: Animal, rng: np.random.Generator, plane: Plane, t0: pd.Timestamp,
                     lon: np.ndarray, lat: np.ndarray, state: np.ndarray) -> pd.DataFrame:
    """Fix attempts, their truth and what the collar writes (one row per written record)."""
    interval_s = a.fix_interval_h * 3600
    n_fix = int(a.days * 86400 // interval_s)
    sched = np.arange(n_fix) * interval_s
    hours = sched / 3600.0
    in_gorge = gorge_mask(rng, hours, a.success, a.days * 24.0)
    ok = rng.random(n_fix) >= np.where(in_gorge, P_FAIL_GORGE, P_FAIL_OPEN)
    # the time of a record: scheduled + time to fix (success) or + timeout (failure)
    offs = np.where(ok, rng.integers(15, 121, n_fix), 180)
    tsec = sched + offs
    # true position: linear interpolation of the (rounded) 5-min path
    i = np.minimum(tsec // STEP_S, len(lon) - 2)
    w = (tsec - i * STEP_S) / STEP_S
    tlon = lon[i] + w * (lon[i + 1] - lon[i])
    tlat = lat[i] + w * (lat[i + 1] - lat[i])
    st = state[np.where(w < 0.5, i, i + 1)]
    hdop = np.round(np.clip(HDOP_MEDIAN * np.exp(rng.normal(0, HDOP_LOG_SD, n_fix)), 0.6, 20.0), 1)
    is2d = rng.random(n_fix) < P_2D
    fix_type = np.where(ok, np.where(is2d, "2D", "3D"), "none")
    sigma = np.where(is2d, UERE_M["2D"], UERE_M["3D"]) * hdop
    n_ok = int(ok.sum())
    okidx = np.flatnonzero(ok)
    outl = np.zeros(n_fix, bool)
    outl[rng.choice(okidx, max(1, round(OUTLIER_SHARE * n_ok)), replace=False)] = True
    # observed = truth + N(0, sigma) per axis; outliers displaced 1-5 km in a random direction
    tx, ty = plane.to_km(tlon, tlat)
    ex = rng.normal(0, 1, n_fix) * sigma / 1e3
    ey = rng.normal(0, 1, n_fix) * sigma / 1e3
    dist = rng.uniform(*OUTLIER_KM, n_fix)
    ang = rng.uniform(0, 2 * np.pi, n_fix)
    ex = np.where(outl, dist * np.cos(ang), ex)
    ey = np.where(outl, dist * np.sin(ang), ey)
    olon, olat = plane.to_lonlat(tx + ex, ty + ey)
    alt = terrain_m(olon, olat) + rng.normal(0, 1, n_fix) * 1.5 * sigma
    sats = np.where(is2d, 3, np.clip(np.round(9 - 2 * np.log2(hdop / 1.5) + rng.normal(0, 1.2, n_fix)), 4, 12))
    sats = np.where(ok, sats, rng.integers(0, 3, n_fix)).astype(int)
    day_frac = ((tsec / 3600.0 + LOCAL_UTC_OFFSET_H) % 24) / 24
    doy = (t0 + pd.to_timedelta(tsec, unit="s")).day_of_year.to_numpy()
    # collar temperature: seasonal (coldest mid-January) + daily cycle + noise, degC
    temp = np.round(-2 - 12 * np.cos(2 * np.pi * (doy - 15) / 365) + 6 * np.sin(2 * np.pi * (day_frac - 0.3))
                    + rng.normal(0, 2, n_fix)).astype(int)
    volt = np.round(3.70 - 0.35 * (tsec / tsec[-1]) ** 3 + rng.normal(0, 0.01, n_fix), 2)
    frame = pd.DataFrame({
        "animal_id": a.animal_id, "tsec": tsec, "true_lon": tlon, "true_lat": tlat,
        "state": STATES[st], "fix_ok": ok, "fix_type": fix_type, "hdop": np.where(ok, hdop, np.nan),
        "sigma_m": np.where(ok, sigma, np.nan), "is_outlier": outl, "is_duplicate": False,
        "clock_jump": False, "lon": np.where(ok, olon, np.nan), "lat": np.where(ok, olat, np.nan),
        "alt": np.where(ok, alt, np.nan), "sats": sats, "temp": temp, "volt": volt,
        "activity": np.where(st == 0, rng.integers(0, 15, n_fix), rng.integers(20, 120, n_fix)),
    })
    # clock jump: a week of records stamped 1024 GPS weeks early (week-number rollover)
    if a.clock_jump:
        j0 = int(n_fix * 0.55)
        nj = int(7 * 24 / a.fix_interval_h)
        frame.loc[j0:j0 + nj - 1, "clock_jump"] = True
    # duplicates: re-delivered records written again right after the original
    dup = rng.choice(okidx[~outl[okidx]], max(1, round(DUPLICATE_SHARE * n_ok)), replace=False)
    order = np.sort(np.concatenate([np.arange(n_fix), dup]))
    frame = frame.iloc[order].reset_index(drop=True)
    frame["is_duplicate"] = np.r_[False, order[1:] == order[:-1]]
    return frame


# ---------------------------------------------------------------- writers
def _f(x: np.ndarray, fmt: str) -> np.ndarray:
    """Format floats with ``fmt``; NaN -> ''."""
    x = np.asarray(x, dtype=float)
    out = np.char.mod(fmt, np.nan_to_num(x)).astype(object)
    out[np.isnan(x)] = ""
    return out


def _mdy(t: pd.DatetimeIndex) -> tuple[pd.Index, pd.Index]:
    """Vectronic ``M/D/YYYY`` and ``H:MM:SS`` (no zero padding on month, day, hour)."""
    d = t.month.astype(str) + "/" + t.day.astype(str) + "/" + t.year.astype(str)
    h = t.hour.astype(str) + t.strftime(":%M:%S")
    return d, h


def _csv_bytes(cols: dict[str, object]) -> bytes:
    buf = io.StringIO()
    pd.DataFrame(cols).to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue().encode("utf-8")


def written_time(rec: pd.DataFrame, t0: pd.Timestamp) -> pd.DatetimeIndex:
    t = t0 + pd.to_timedelta(rec["tsec"].to_numpy(), unit="s")
    return pd.DatetimeIndex(np.where(rec["clock_jump"].to_numpy(), t - GPS_WEEK_ROLLOVER, t))


def write_movebank(recs: list[tuple[Animal, pd.DataFrame, pd.Timestamp]]) -> bytes:
    parts = []
    for a, r, t0 in recs:
        t = written_time(r, t0)
        ft = r["fix_type"].map({"3D": "3", "2D": "2", "none": "1"}).to_numpy()
        parts.append(pd.DataFrame({
            "visible": "true",
            "timestamp": t.strftime("%Y-%m-%d %H:%M:%S.000"),
            "location-long": _f(r["lon"], "%.7f"), "location-lat": _f(r["lat"], "%.7f"),
            "gps:hdop": _f(r["hdop"], "%.1f"), "gps:satellite-count": r["sats"].astype(str),
            "gps:fix-type": ft, "height-above-msl": _f(r["alt"], "%.1f"), "sensor-type": "gps",
            "individual-taxon-canonical-name": TAXON, "tag-local-identifier": a.tag_id,
            "individual-local-identifier": a.animal_id, "study-name": STUDY, "comments": COMMENT,
        }))
    df = pd.concat(parts, ignore_index=True)
    df.insert(0, "event-id", (np.arange(len(df)) + 1).astype(str))
    return _csv_bytes({c: df[c] for c in df.columns})


def write_vectronic(a: Animal, r: pd.DataFrame, t0: pd.Timestamp) -> tuple[bytes, np.ndarray]:
    """Vectronic GPS Plus X table, newest first. Returns bytes and the file row of each record."""
    t = written_time(r, t0)
    lmt = t + pd.Timedelta(hours=LOCAL_UTC_OFFSET_H)
    scts = t + pd.to_timedelta(30 + (r["tsec"].to_numpy() % 97), unit="s")
    ud, ut = _mdy(t)
    ld, lt = _mdy(lmt)
    sd, st = _mdy(scts)
    ok = r["fix_ok"].to_numpy()
    ftype = np.where(~ok, "No Fix", np.where(r["fix_type"] == "2D", "GPS-2D",
                                            np.where(r["hdop"] < 5, "val. GPS-3D", "GPS-3D")))
    cols = {
        "CollarID": a.tag_id, "AnimalID": a.animal_id, "UTC_Date": ud, "UTC_Time": ut,
        "LMT_Date": ld, "LMT_Time": lt, "Origin": "G", "SCTS_Date": sd, "SCTS_Time": st,
        "Latitude": _f(r["lat"], "%.5f"), "Longitude": _f(r["lon"], "%.5f"),
        "Height": _f(np.round(r["alt"]), "%.0f"), "DOP": _f(r["hdop"], "%.1f"), "FixType": ftype,
        "3D_Error [m]": _f(np.where(ok, np.round(r["sigma_m"].fillna(0)), 0), "%.0f"),
        "Sats": r["sats"].astype(str), "Mort. Status": "1", "Activity": r["activity"].astype(str),
        "Main [V]": _f(r["volt"], "%.2f"), "Beacon [V]": "0", "Temp [C]": r["temp"].astype(str),
    }
    df = pd.DataFrame({k: np.asarray(v) if not isinstance(v, str) else v for k, v in cols.items()})
    df = df.iloc[::-1].reset_index(drop=True)  # newest first (as written; a clock jump breaks the order)
    df.insert(0, "No", np.arange(len(df)).astype(str))
    rows = (len(r) - np.arange(len(r))) + 1  # record k (collar order) is on file line len-k+1
    return _csv_bytes({c: df[c] for c in df.columns}), rows


def excel_serial(t: pd.DatetimeIndex) -> np.ndarray:
    return (t - pd.Timestamp("1899-12-30")) / pd.Timedelta(days=1)


def write_lotek(a: Animal, r: pd.DataFrame, t0: pd.Timestamp) -> bytes:
    t = written_time(r, t0)
    ok = r["fix_ok"].to_numpy()
    status = np.where(~ok, "No Fix", np.where(r["fix_type"] == "2D", "2D Fix",
                                             np.where(r["hdop"] < 5, "3D-V Fix", "3D Fix")))
    cols = {
        "Device Name": a.animal_id, "Device ID": a.tag_id,
        "Date & Time [GMT]": _f(excel_serial(t), "%.5f"),
        "Date & Time [Local]": _f(excel_serial(t + pd.Timedelta(hours=LOCAL_UTC_OFFSET_H)), "%.5f"),
        "Latitude": _f(r["lat"], "%.7f"), "Longitude": _f(r["lon"], "%.7f"),
        "Altitude": _f(r["alt"], "%.2f"), "Fix Status": status, "DOP": _f(r["hdop"], "%.1f"),
        "Temp [C]": r["temp"].astype(str), "Main [V]": _f(r["volt"], "%.2f"),
        "Back [V]": _f(np.round(r["volt"] - 0.05, 2), "%.2f"),
    }
    return _csv_bytes({k: (np.asarray(v) if not isinstance(v, str) else [v] * len(r)) for k, v in cols.items()})


# ---------------------------------------------------------------- truth: crossings
def true_crossings(path: pd.DataFrame, countries: pd.DataFrame) -> pd.DataFrame:
    """Exact crossings of the piecewise-linear (in lon/lat) 5-min path with the bundled borders.

    Every path segment is intersected with every border segment (STRtree); each
    intersection point gives a crossing at the fraction ``f`` of the segment, time
    interpolated linearly; ``from``/``to`` are the countries a hair (1e-7 of the
    segment) before and after the point. Touching without changing country is dropped.
    """
    sub = countries[countries.iso_a3.isin(SAMPLE_ISO)]
    # the polygons' own rings (not border_lines(), which snaps to a 1e-6 degree grid):
    # a crossing is then exactly where the country of the path changes
    rings = shapely.get_parts(shapely.boundary(shapely.clip_by_rect(sub.geometry.values, *SAMPLE_WINDOW)))
    segs = []
    for ring in rings:  # a loop over a few rings
        c = shapely.get_coordinates(ring)
        segs.append(shapely.linestrings(np.stack([c[:-1], c[1:]], axis=1)))
    bseg = np.concatenate(segs)
    tree = shapely.STRtree(bseg)
    polys = {iso: g for iso, g in zip(sub.iso_a3, sub.geometry)}
    for g in polys.values():
        shapely.prepare(g)
    out = []
    for aid, p in path.groupby("animal_id", sort=True, observed=True):
        lon, lat = p["lon"].to_numpy(), p["lat"].to_numpy()
        t = p["t"].to_numpy()
        a0 = np.column_stack([lon[:-1], lat[:-1]])
        a1 = np.column_stack([lon[1:], lat[1:]])
        pseg = shapely.linestrings(np.stack([a0, a1], axis=1))
        pi, bi = tree.query(pseg, predicate="intersects")
        if len(pi) == 0:
            continue
        pts = shapely.intersection(pseg[pi], bseg[bi])
        pts = shapely.get_coordinates(shapely.centroid(pts))  # collinear overlap (never seen) -> midpoint
        d = a1[pi] - a0[pi]
        L2 = (d ** 2).sum(1)
        f = np.clip(((pts - a0[pi]) * d).sum(1) / np.where(L2 > 0, L2, 1), 0, 1)
        # dedupe: a crossing exactly through a border vertex hits two border segments
        key = pd.DataFrame({"pi": pi, "f": np.round(f, 9)}).drop_duplicates()
        pi, f = key["pi"].to_numpy(), key["f"].to_numpy()
        order = np.lexsort((f, pi))
        pi, f = pi[order], f[order]
        d = a1[pi] - a0[pi]
        eps = 1e-7
        before = a0[pi] + np.maximum(f - eps, 0)[:, None] * d
        after = a0[pi] + np.minimum(f + eps, 1)[:, None] * d
        c_before = np.full(len(pi), "", dtype="<U3")
        c_after = np.full(len(pi), "", dtype="<U3")
        for iso, g in polys.items():
            c_before[shapely.contains_xy(g, before[:, 0], before[:, 1])] = iso
            c_after[shapely.contains_xy(g, after[:, 0], after[:, 1])] = iso
        keep = c_before != c_after
        pi, f, c_before, c_after = pi[keep], f[keep], c_before[keep], c_after[keep]
        pt = a0[pi] + f[:, None] * (a1[pi] - a0[pi])
        out.append(pd.DataFrame({"animal_id": aid, "tsec": t[pi] + f * STEP_S, "lon": pt[:, 0],
                                 "lat": pt[:, 1], "from_iso": c_before, "to_iso": c_after}))
    return pd.concat(out, ignore_index=True)


# ---------------------------------------------------------------- main
def _gzip_bytes(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return buf.getvalue()


def _iso(t: pd.DatetimeIndex | pd.Series) -> np.ndarray:
    """UTC ISO 8601 with a Z, to the second."""
    return np.asarray(pd.DatetimeIndex(t).strftime("%Y-%m-%dT%H:%M:%SZ"))


def run(out: Path) -> dict[str, str]:
    """Simulate everything and write ``out`` (and ``out/truth``). Returns {file: sha256}."""
    countries = load_countries()
    countries = countries[countries.iso_a3.isin(SAMPLE_ISO)].reset_index(drop=True)
    root = np.random.SeedSequence(SEED)
    children = root.spawn(len(ANIMALS))
    paths, records, kills, summary = [], [], [], []
    for a, ss in zip(ANIMALS, children):
        rng = np.random.default_rng(ss)
        margin = 0.3 if a.away_iso else 3.0
        plane = make_plane(a.center, margin, countries)
        t0 = pd.Timestamp(a.start)
        n_steps = a.days * 24 * STEPS_PER_H + 2
        local_h = (t0.hour + t0.minute / 60 + LOCAL_UTC_OFFSET_H) % 24
        tr = simulate_path(a, rng, plane, n_steps, local_h)
        lon, lat = plane.to_lonlat(tr.xy[:, 0], tr.xy[:, 1])
        lon, lat = np.round(lon, 6), np.round(lat, 6)  # truth is what path.csv says, exactly
        paths.append(pd.DataFrame({"animal_id": a.animal_id, "t0": t0, "t": np.arange(n_steps) * STEP_S,
                                   "lon": lon, "lat": lat, "state": STATES[tr.state]}))
        rec = simulate_records(a, rng, plane, t0, lon, lat, tr.state)
        records.append((a, rec, t0))
        for k0, k1, kx, ky in tr.kills:
            klon, klat = plane.to_lonlat(np.array([kx]), np.array([ky]))
            kills.append({"animal_id": a.animal_id, "start": t0 + pd.Timedelta(seconds=k0 * STEP_S),
                          "end": t0 + pd.Timedelta(seconds=k1 * STEP_S), "lon": round(float(klon[0]), 6),
                          "lat": round(float(klat[0]), 6)})
        summary.append((a, t0, tr.redraws))

    files: dict[str, bytes] = {}
    fixes_rows = []
    mb = [(a, r, t0) for a, r, t0 in records if a.vendor == "movebank"]
    mb_name = "movebank_SYNTHETIC_snow_leopards_tien_shan.csv"
    files[mb_name] = write_movebank(mb)
    line = 2
    for _a, r, t0 in mb:
        fixes_rows.append(r.assign(source=mb_name, source_row=np.arange(line, line + len(r)), t0=t0))
        line += len(r)
    file_of: dict[str, str] = {a.animal_id: mb_name for a, _, _ in mb}
    for a, r, t0 in records:
        if a.vendor == "vectronic":
            name = f"vectronic_SYNTHETIC_{a.animal_id}_collar{a.tag_id}.csv"
            files[name], rows = write_vectronic(a, r, t0)
        elif a.vendor == "lotek":
            name = f"lotek_SYNTHETIC_{a.animal_id}_device{a.tag_id}.CSV"
            files[name] = write_lotek(a, r, t0)
            rows = np.arange(2, len(r) + 2)
        else:
            continue
        file_of[a.animal_id] = name
        fixes_rows.append(r.assign(source=name, source_row=rows, t0=t0))

    fx = pd.concat(fixes_rows, ignore_index=True)
    fx["time"] = _iso(pd.DatetimeIndex(fx["t0"] + pd.to_timedelta(fx["tsec"], unit="s")))
    fx = fx.sort_values(["source", "source_row"], kind="stable")
    truth_fixes = pd.DataFrame({
        "source": fx["source"], "source_row": fx["source_row"], "animal_id": fx["animal_id"],
        "time": fx["time"], "true_lon": _f(fx["true_lon"], "%.6f"), "true_lat": _f(fx["true_lat"], "%.6f"),
        "state": fx["state"], "fix_ok": fx["fix_ok"].map({True: "true", False: "false"}),
        "fix_type": fx["fix_type"], "hdop": _f(fx["hdop"], "%.1f"), "sigma_m": _f(fx["sigma_m"], "%.1f"),
        "is_outlier": fx["is_outlier"].map({True: "true", False: "false"}),
        "is_duplicate": fx["is_duplicate"].map({True: "true", False: "false"}),
        "clock_jump": fx["clock_jump"].map({True: "true", False: "false"}),
    })
    files["truth/fixes.csv"] = _csv_bytes({c: truth_fixes[c] for c in truth_fixes.columns})

    path = pd.concat(paths, ignore_index=True)
    ptime = _iso(pd.DatetimeIndex(path["t0"] + pd.to_timedelta(path["t"], unit="s")))
    files["truth/path.csv.gz"] = _gzip_bytes(_csv_bytes({
        "animal_id": path["animal_id"], "time": ptime, "lon": _f(path["lon"], "%.6f"),
        "lat": _f(path["lat"], "%.6f"), "state": path["state"]}))

    cr = true_crossings(path, load_countries())
    t0_of = {a.animal_id: pd.Timestamp(a.start) for a in ANIMALS}
    ctime = pd.DatetimeIndex([t0_of[x] for x in cr["animal_id"]]) + pd.to_timedelta(cr["tsec"].round(), unit="s")
    files["truth/crossings.csv"] = _csv_bytes({
        "animal_id": cr["animal_id"], "time": _iso(ctime), "lon": _f(cr["lon"], "%.6f"),
        "lat": _f(cr["lat"], "%.6f"), "from_iso": cr["from_iso"], "to_iso": cr["to_iso"]})

    kd = pd.DataFrame(kills)
    files["truth/kills.csv"] = _csv_bytes({
        "animal_id": kd["animal_id"], "start": _iso(pd.DatetimeIndex(kd["start"])),
        "end": _iso(pd.DatetimeIndex(kd["end"])), "lon": _f(kd["lon"], "%.6f"), "lat": _f(kd["lat"], "%.6f")})

    ncross = cr.groupby("animal_id").size()
    an = []
    for a, t0, redraws in summary:
        r = next(rec for aa, rec, _ in records if aa is a)
        end = t0 + pd.Timedelta(seconds=int(r["tsec"].max()))
        an.append({
            "animal_id": a.animal_id, "sex": a.sex, "age_class": a.age_class, "region": a.region,
            "vendor": a.vendor, "file": file_of[a.animal_id], "tag_id": a.tag_id,
            "fix_interval_h": a.fix_interval_h, "start": _iso(pd.DatetimeIndex([t0]))[0],
            "end": _iso(pd.DatetimeIndex([end]))[0], "collar_fate": a.collar_fate,
            "home_range_center_lon": f"{a.center[0]:.4f}", "home_range_center_lat": f"{a.center[1]:.4f}",
            "home_country": a.home_iso, "away_countries": " ".join(a.away_iso),
            "target_mcp95_km2": f"{a.hr_km2:.0f}", "target_fix_success": f"{a.success:.2f}",
            "settle_center_lon": "" if a.settle is None else f"{a.settle[0]:.4f}",
            "settle_center_lat": "" if a.settle is None else f"{a.settle[1]:.4f}",
            "n_records": len(r), "n_crossings": int(ncross.get(a.animal_id, 0)),
            "clock_jump": "true" if a.clock_jump else "false",
            "bouts_redrawn": redraws,
        })
    files["truth/.telemetry-ignore"] = (
        b"Ground truth of the SYNTHETIC sample, not collar data: telemetry.read() skips this folder.\n")
    files["truth/animals.csv"] = _csv_bytes(pd.DataFrame(an).to_dict("list"))

    hashes = {}
    for name, data in sorted(files.items()):
        dest = out / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(dest)
        hashes[name] = hashlib.sha256(data).hexdigest()
    return hashes


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Simulate the SYNTHETIC snow-leopard sample.")
    ap.add_argument("--out", type=Path, default=ROOT / "sample_tracks", help="output folder")
    args = ap.parse_args(argv)
    hashes = run(args.out)
    for name, h in hashes.items():
        print(f"{h[:16]}  {name}")


if __name__ == "__main__":
    main()
