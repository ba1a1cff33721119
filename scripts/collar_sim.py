"""Independent GPS-collar simulator for validation (never imports ``telemetry``).

    python scripts/collar_sim.py --out DIR [--regime resident|commuter|migrant] [--schedule-s 14400] ...

Written separately from the pipeline and on purpose unlike its models: the smoother assumes
Gaussian processes (integrated OU velocity, OU position, a still regime) and Gaussian errors
``UERE x HDOP``; the behaviour HMM assumes gamma steps and von Mises turns. Here movement is
an agent walking at one-minute resolution with explicit behaviour:

* ``resting``: the position is fixed, with occasional bed shifts of a few to tens of metres;
  multi-day stays at kills for the resident carnivore;
* ``moving`` (foraging): lognormal speeds around a species scale, headings turning by a
  wrapped Cauchy step (heavy-tailed turns, not von Mises), attraction to the current patch;
* ``travelling``: fast and directed towards a goal (another patch, the next stopover).

Bout durations are drawn from heavy-tailed distributions (Pareto / lognormal, not the
geometric durations of a Markov chain), with a diel rhythm. Three regimes:

* ``resident``: a large carnivore (range resident; rests of hours, kills held for 1-4 days,
  night-time movement of a few km);
* ``commuter``: a grazer or bat shuttling between 2-4 patches, foraging in them;
* ``migrant``: a bird that stays at stopovers and flies legs of several hours at 40-60 km/h
  (~600 km a day) along the western European flyway (Germany -> France -> Spain -> Morocco).

The collar: a nominal schedule with seconds-to-minutes of jitter and failed attempts (rows
without a position), 2D fixes with heavy-tailed (Student-t, 3 d.o.f.) errors, HDOP lognormal,
satellite counts consistent with the fix type, gross outliers ("spikes") displaced by 0.5-20
km. Truth per fix: the true position at the fix time, the behaviour *at* the fix time and the
majority behaviour over the interval to the next fix, whether it is a spike, its fix class.
Everything is seeded.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyproj
from sim_output import movebank_rows, truth_rows, write_study  # a sibling script: the file format

GEOD = pyproj.Geod(ellps="WGS84")
STATES = np.array(["resting", "moving", "travelling"])


@dataclass
class Collar:
    """Collar and error settings (errors per axis: sigma = UERE x HDOP)."""

    schedule_s: float = 4 * 3600.0
    uere_3d_m: float = 4.0
    uere_2d_m: float = 9.0
    share_2d: float = 0.2
    fail_share: float = 0.1
    spike_share: float = 0.01
    fix_type_column: str = "fix_type"  # "fix_type", "sats" (satellite count only) or "none"
    days: float = 60.0


@dataclass
class Regime:
    """Movement of one kind of animal."""

    name: str = "resident"
    rest_h: tuple[float, float] = (2.0, 10.0)  # lognormal median, Pareto-ish cap multiplier
    move_h: float = 2.0
    speed_ms: float = 0.35  # foraging speed scale
    travel_ms: float = 1.2
    travel_share: float = 0.3
    range_km: float = 8.0
    patches: int = 4
    kill_every_d: float = 0.0
    extra: dict = field(default_factory=dict)


REGIMES = {
    "resident": Regime("resident", rest_h=(4.0, 3.0), move_h=3.0, speed_ms=0.35, travel_ms=1.0, travel_share=0.3,
                       range_km=10.0, patches=4, kill_every_d=7.0),
    "commuter": Regime("commuter", rest_h=(1.5, 2.0), move_h=2.0, speed_ms=0.25, travel_ms=2.5, travel_share=0.4,
                       range_km=15.0, patches=3),
    "migrant": Regime("migrant", rest_h=(3.0, 2.0), move_h=2.0, speed_ms=0.4, travel_ms=14.0, travel_share=0.0,
                      range_km=3.0, patches=1),
}

FLYWAY = [(10.0, 51.5), (6.0, 48.5), (2.5, 45.0), (-1.5, 41.5), (-4.5, 37.5), (-6.5, 33.5)]
"""Stopovers of the migrant (lon, lat): Germany, France, France, Spain, Spain, Morocco."""


def _bouts(rng: np.random.Generator, n_min: int, reg: Regime) -> np.ndarray:
    """Behaviour per minute: 0 rest, 1 moving, 2 travelling, with heavy-tailed bouts and a diel
    rhythm (activity starts more often at dusk)."""
    out = np.zeros(n_min, np.int8)
    i = 0
    active = False
    while i < n_min:
        hour = (i / 60.0) % 24.0
        if active:
            dur = rng.lognormal(math.log(reg.move_h * 60.0), 0.7)
            kind = 2 if rng.random() < reg.travel_share else 1
        else:
            # rests: lognormal with a Pareto tail; longer at midday
            base = reg.rest_h[0] * (1.6 if 8 <= hour <= 16 else 0.8)
            dur = rng.lognormal(math.log(base * 60.0), 0.8) * (rng.pareto(2.5) * 0.5 + 1.0)
            kind = 0
        dur = int(max(5, min(dur, n_min - i)))
        out[i:i + dur] = kind
        i += dur
        active = not active
    return out


def _walk(rng: np.random.Generator, state: np.ndarray, reg: Regime) -> tuple[np.ndarray, np.ndarray]:
    """Positions (m, local plane) per minute for a resident / commuter."""
    n = state.size
    patches = rng.uniform(-1, 1, (reg.patches, 2)) * reg.range_km * 500.0
    x = np.zeros(n)
    y = np.zeros(n)
    px, py = patches[0]
    head = rng.uniform(0, 2 * math.pi)
    goal = 0
    kill_until = -1
    for i in range(1, n):
        s = state[i]
        if reg.kill_every_d and i > kill_until and s == 1 and rng.random() < 1.0 / (reg.kill_every_d * 1440 * 0.4):
            kill_until = i + int(rng.uniform(1, 4) * 1440)  # held for 1-4 days
        if i <= kill_until:
            s = state[i] = 0
        if s == 0:
            x[i], y[i] = px, py
            if rng.random() < 1.0 / 240:  # a bed shift every ~4 h of rest
                d = rng.lognormal(math.log(15.0), 0.8)
                a = rng.uniform(0, 2 * math.pi)
                px += d * math.cos(a)
                py += d * math.sin(a)
            continue
        if s == 2 and (state[i - 1] != 2):
            goal = int(rng.integers(reg.patches))
        if s == 2:
            gx, gy = patches[goal]
            want = math.atan2(gy - py, gx - px)
            head = want + rng.normal(0, 0.15)
            speed = min(reg.travel_ms * rng.lognormal(0, 0.2), math.hypot(gx - px, gy - py) / 60.0)  # stop at the goal
        else:
            # foraging: wrapped-Cauchy turns, weak attraction to the nearest patch
            head += math.tan(math.pi * (rng.random() - 0.5)) * 0.15
            c = patches[int(np.argmin(np.hypot(patches[:, 0] - px, patches[:, 1] - py)))]
            pull = math.atan2(c[1] - py, c[0] - px)
            if math.hypot(c[0] - px, c[1] - py) > reg.range_km * 300.0:
                head = 0.7 * head + 0.3 * pull
            speed = reg.speed_ms * rng.lognormal(0, 0.5)
        px += speed * 60.0 * math.cos(head)
        py += speed * 60.0 * math.sin(head)
        x[i], y[i] = px, py
    return x, y


def _migrate(rng: np.random.Generator, n_min: int, reg: Regime) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """lon, lat (degrees) and behaviour per minute of a migrant along :data:`FLYWAY`."""
    lon = np.zeros(n_min)
    lat = np.zeros(n_min)
    state = np.zeros(n_min, np.int8)
    cur = np.array(FLYWAY[0], float)
    i = 0
    stop = 0
    while i < n_min:
        # a stay: local foraging and rests, 3-10 days
        stay = int(rng.uniform(3, 10) * 1440)
        local = _bouts(rng, min(stay, n_min - i), reg)
        x, y = _walk(rng, local.copy(), Regime("stay", rest_h=reg.rest_h, move_h=reg.move_h, speed_ms=reg.speed_ms,
                                                travel_ms=reg.speed_ms, travel_share=0.0, range_km=reg.range_km,
                                                patches=1))
        lo, la, _ = GEOD.fwd(np.full(x.size, cur[0]), np.full(x.size, cur[1]), np.degrees(np.arctan2(x, y)),
                             np.hypot(x, y))
        j = i + x.size
        lon[i:j], lat[i:j], state[i:j] = lo, la, local
        i = j
        stop += 1
        if i >= n_min or stop >= len(FLYWAY):
            if i < n_min:  # the last stopover lasts
                lon[i:], lat[i:], state[i:] = lon[i - 1], lat[i - 1], 0
            break
        # a migratory flight: nocturnal legs of 6-10 h at 40-60 km/h with daytime rests
        tgt = FLYWAY[stop]
        pos = np.array([lon[i - 1], lat[i - 1]])
        while i < n_min:
            az, _, dist = GEOD.inv(pos[0], pos[1], tgt[0], tgt[1])
            if dist < 20_000:
                break
            leg = min(int(rng.uniform(6, 10) * 60), n_min - i)
            v = rng.uniform(40, 60) / 3.6
            d = np.minimum(np.arange(1, leg + 1) * v * 60.0, dist)
            lo, la, _ = GEOD.fwd(np.full(leg, pos[0]), np.full(leg, pos[1]), np.full(leg, az + rng.normal(0, 5)), d)
            lon[i:i + leg], lat[i:i + leg], state[i:i + leg] = lo, la, 2
            i += leg
            pos = np.array([lon[i - 1], lat[i - 1]])
            rest = min(int(rng.uniform(8, 14) * 60), n_min - i)
            lon[i:i + rest], lat[i:i + rest], state[i:i + rest] = pos[0], pos[1], 0
            i += rest
        cur = pos
    return lon, lat, state


def simulate_animal(rng: np.random.Generator, animal: str, reg: Regime, col: Collar,
                    origin: tuple[float, float]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One animal's collar rows (Movebank columns) and truth."""
    n_min = int(col.days * 1440)
    if reg.name == "migrant":
        lon_t, lat_t, state = _migrate(rng, n_min, reg)
    else:
        state = _bouts(rng, n_min, reg)
        x, y = _walk(rng, state, reg)
        lon_t, lat_t, _ = GEOD.fwd(np.full(n_min, origin[0]), np.full(n_min, origin[1]),
                                   np.degrees(np.arctan2(x, y)), np.hypot(x, y))
    t0 = pd.Timestamp("2023-03-01", tz="UTC").value / 1e9 + rng.uniform(0, 3600)
    nominal = np.arange(0, n_min * 60.0 - col.schedule_s, col.schedule_s)
    t = nominal + rng.uniform(10, min(120, col.schedule_s / 4), nominal.size)  # time to fix
    idx = np.minimum((t / 60.0).astype(int), n_min - 1)
    m = t.size
    nxt = np.r_[idx[1:], n_min - 1]
    major = np.array([np.bincount(state[a:max(b, a + 1)], minlength=3).argmax() for a, b in zip(idx, nxt)])
    failed = rng.random(m) < col.fail_share
    is2 = rng.random(m) < col.share_2d
    hdop = np.where(is2, rng.lognormal(math.log(2.5), 0.5, m), rng.lognormal(math.log(1.4), 0.35, m))
    sats = np.where(is2, 3, rng.integers(4, 12, m))
    e3 = rng.normal(size=(m, 2))
    e2 = rng.standard_t(3, size=(m, 2)) / math.sqrt(3.0)  # unit variance, heavy tails
    err = np.where(is2[:, None], col.uere_2d_m * e2, col.uere_3d_m * e3) * hdop[:, None]
    spike = (rng.random(m) < col.spike_share) & ~failed
    dist = np.hypot(err[:, 0], err[:, 1])
    az = np.degrees(np.arctan2(err[:, 0], err[:, 1]))
    sd = rng.uniform(500, 20_000, m)
    lo, la, _ = GEOD.fwd(lon_t[idx], lat_t[idx], az, dist)
    lo2, la2, _ = GEOD.fwd(lo, la, rng.uniform(0, 360, m), sd)
    lo, la = np.where(spike, lo2, lo), np.where(spike, la2, la)
    ts = pd.to_datetime(t0 + t, unit="s", utc=True)
    rows = movebank_rows(animal, ts, lo, la, hdop, failed, is2 if col.fix_type_column == "fix_type" else None,
                         sats if col.fix_type_column in ("fix_type", "sats") else None)
    truth = truth_rows(animal, ts, failed, lon_t[idx], lat_t[idx], STATES[state[idx]], STATES[major], spike, is2, hdop)
    return rows, truth


def simulate(regime: str, collar: Collar, n_animals: int = 5, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows (a Movebank CSV table) and truth of ``n_animals`` animals."""
    rng = np.random.default_rng(seed)
    reg = REGIMES[regime]
    rows, truth = [], []
    for k in range(n_animals):
        origin = (76.5 + 0.4 * k, 43.0 + 0.15 * k)  # Tien Shan foothills, well inside Kazakhstan
        r, tr = simulate_animal(rng, f"{regime[:3]}{k:02d}", reg, collar, origin)
        rows.append(r)
        truth.append(tr)
    return pd.concat(rows, ignore_index=True), pd.concat(truth, ignore_index=True)


def write(out: Path, regime: str, collar: Collar, n_animals: int = 5, seed: int = 0) -> tuple[Path, Path]:
    """Write ``collars.csv`` and ``truth.parquet`` into ``out``; returns their paths."""
    return write_study(out, *simulate(regime, collar, n_animals, seed), "scripts/collar_sim.py")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--regime", choices=sorted(REGIMES), default="resident")
    ap.add_argument("--animals", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    for f, v in asdict(Collar()).items():
        ap.add_argument("--" + f.replace("_", "-"), type=type(v), default=v)
    args = ap.parse_args(argv)
    col = Collar(**{f: getattr(args, f) for f in asdict(Collar())})
    csv, tp = write(args.out, args.regime, col, args.animals, args.seed)
    print(f"wrote {csv} and {tp}")


if __name__ == "__main__":
    main()
