"""A second, independent collar simulator: a two-state switching walk (SYNTHETIC data).

``scripts/collar_sim.py`` simulates agent-based carnivores whose rests hold the position
exactly (with bed shifts). This one is deliberately built on other assumptions, so that the
validation does not rest on one simulator's idea of an animal:

* behaviour alternates between *resting* and *moving* bouts with exponential durations
  (memoryless, as in the discrete hidden-Markov movement models of Morales et al. 2004 and
  Langrock et al. 2012, here at 1-minute resolution);
* a resting animal is not still: its position drifts as a Brownian motion of diffusion
  ``drift_m2s`` (m²/s per axis; a grazer, a bird on a roost moving about);
* a moving animal walks with a log-normal speed and a heading that diffuses by
  ``turn_sd_rad`` per minute (a correlated random walk, no home-range attraction);
* GPS errors: 3D fixes Gaussian ``uere_3d_m × HDOP`` per axis, 2D fixes Student-t (3 d.o.f.)
  ``uere_2d_m × HDOP``; HDOP log-normal, the 2D fixes' higher unless ``same_hdop``; gross
  errors thrown 0.8–15 km in a random direction; failed fixes without a position.

The output has the columns of a Movebank export and a truth table with the columns
``scripts/validate.py`` scores (``animal_id, event_id, time, located, true_lon, true_lat,
state_at_fix, state_interval, is_spike, fix_class, hdop``; written by ``scripts/sim_output.py``, as
collar_sim's). Nothing here imports the package.

    python scripts/switch_sim.py --out /tmp/sw --schedule-s 14400 --rest-min 90 --seed 3
"""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyproj
from sim_output import movebank_rows, truth_rows, write_study  # a sibling script: the file format

GEOD = pyproj.Geod(ellps="WGS84")


@dataclass
class Switch:
    """Settings of one simulated study (units in the names; shares 0-1)."""

    schedule_s: float = 4 * 3600.0
    uere_3d_m: float = 4.0
    uere_2d_m: float = 9.0
    share_2d: float = 0.2
    fix_type_column: str = "none"  # "fix_type" (2/3 and satellites) or "none"
    same_hdop: bool = False
    fail_share: float = 0.05
    spike_share: float = 0.015
    move_share: float = 0.62  # long-run share of time moving
    rest_min: float = 300.0  # mean resting bout (min)
    drift_m2s: float = 0.003  # diffusion of a resting animal (m²/s per axis)
    speed_ms: float = 0.25  # median moving speed
    turn_sd_rad: float = 0.3  # heading diffusion per minute while moving
    days: float = 120.0


def _animal(rng: np.random.Generator, s: Switch, name: str, origin: tuple[float, float]
            ) -> tuple[pd.DataFrame, pd.DataFrame]:
    n = int(s.days * 1440)
    move_min = s.rest_min * s.move_share / (1.0 - s.move_share)
    moving = np.zeros(n, bool)
    i, state = 0, bool(rng.random() < s.move_share)
    while i < n:
        dur = int(rng.exponential(move_min if state else s.rest_min)) + 1
        moving[i:i + dur] = state
        i += dur
        state = not state
    heading = np.cumsum(rng.normal(0.0, s.turn_sd_rad, n))
    speed = np.where(moving, s.speed_ms * rng.lognormal(0.0, 0.4, n), 0.0)
    sd = math.sqrt(2.0 * s.drift_m2s * 60.0)
    dx = speed * 60.0 * np.sin(heading) + np.where(moving, 0.0, rng.normal(0.0, sd, n))
    dy = speed * 60.0 * np.cos(heading) + np.where(moving, 0.0, rng.normal(0.0, sd, n))
    x, y = np.cumsum(dx), np.cumsum(dy)
    step = max(int(round(s.schedule_s / 60.0)), 1)
    idx = np.arange(int(rng.integers(0, step)), n - 1, step)
    m = idx.size
    nxt = np.r_[idx[1:], n - 1]
    major = np.array([moving[a:max(b, a + 1)].mean() >= 0.5 for a, b in zip(idx, nxt)])
    failed = rng.random(m) < s.fail_share
    is2 = rng.random(m) < s.share_2d
    hdop_2d = rng.lognormal(math.log(1.4 if s.same_hdop else 2.2), 0.35 if s.same_hdop else 0.4, m)
    hdop = np.where(is2, hdop_2d, rng.lognormal(math.log(1.4), 0.35, m))
    err = np.where(is2[:, None], s.uere_2d_m * rng.standard_t(3, (m, 2)) / math.sqrt(3.0),
                   s.uere_3d_m * rng.normal(size=(m, 2))) * hdop[:, None]
    spike = (rng.random(m) < s.spike_share) & ~failed
    far, ang = rng.uniform(800.0, 15_000.0, m), rng.uniform(0.0, 2 * math.pi, m)
    err = np.where(spike[:, None], np.c_[far * np.sin(ang), far * np.cos(ang)], err)
    xs, ys = x[idx], y[idx]
    tlon, tlat, _ = GEOD.fwd(np.full(m, origin[0]), np.full(m, origin[1]), np.degrees(np.arctan2(xs, ys)),
                             np.hypot(xs, ys))
    lon, lat, _ = GEOD.fwd(tlon, tlat, np.degrees(np.arctan2(err[:, 0], err[:, 1])), np.hypot(err[:, 0], err[:, 1]))
    t0 = pd.Timestamp("2022-05-01", tz="UTC").value / 1e9
    ts = pd.to_datetime(t0 + idx * 60.0 + rng.uniform(5.0, 90.0, m), unit="s", utc=True)
    given = s.fix_type_column == "fix_type"
    sats = np.where(is2, 3, rng.integers(4, 12, m)) if given else None
    rows = movebank_rows(name, ts, lon, lat, hdop, failed, is2 if given else None, sats)
    truth = truth_rows(name, ts, failed, tlon, tlat, np.where(moving[idx], "moving", "resting"),
                       np.where(major, "moving", "resting"), spike, is2, hdop)
    return rows, truth


def simulate(s: Switch, n_animals: int = 4, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows (a Movebank CSV table) and truth of ``n_animals`` animals."""
    rng = np.random.default_rng(seed)
    parts = [_animal(rng, s, f"sw{k:02d}", (74.5 + 0.5 * k, 42.3 + 0.1 * k)) for k in range(n_animals)]
    return pd.concat([p[0] for p in parts], ignore_index=True), pd.concat([p[1] for p in parts], ignore_index=True)


def write(out: Path, s: Switch, n_animals: int = 4, seed: int = 0) -> tuple[Path, Path]:
    """Write ``collars.csv`` and ``truth.parquet`` into ``out``; returns their paths."""
    return write_study(out, *simulate(s, n_animals, seed), "scripts/switch_sim.py")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--animals", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    for f, v in asdict(Switch()).items():
        kind = (lambda x: x.lower() in ("1", "true", "yes")) if isinstance(v, bool) else type(v)
        ap.add_argument("--" + f.replace("_", "-"), type=kind, default=v)
    args = ap.parse_args(argv)
    s = Switch(**{f: getattr(args, f) for f in asdict(Switch())})
    csv, tp = write(args.out, s, args.animals, args.seed)
    print(f"wrote {csv} and {tp}")


if __name__ == "__main__":
    main()
