#!/usr/bin/env python
"""Random odd datasets through the whole ``telemetry run``: a crash finder, not a test.

Each seed writes one file of 1-7 animals with 1-1,500 fixes each, on schedules from 1 s to a
week (regular or jittered), walking, scattered or still, at the poles, on the antimeridian, at
0°/0° or anywhere, with or without HDOP (0 to 50) and satellite counts, some fixes missing,
some rows duplicated, the rows shuffled; laid out as a Movebank GPS file, a Movebank Argos file
(location classes, error ellipses), a generic CSV (a ``UTC`` column, fix-type words, altitude,
a few latitude spikes) or one with a split date and clock. It then runs the pipeline on it in
this process, under a 10 GB address-space limit (the machine has 24), and prints one line per
seed: ``ok`` (with the rows), ``error`` (a :class:`~telemetry.errors.TelemetryError`: a message
for the user, which is what bad input must get) or ``CRASH`` (anything else, a MemoryError
included). A crash's file and traceback are kept in ``--keep`` to be turned into a test.

Stop 61 found its crashes with this generator's first drafts (Movebank files, then the other
layouts; the generic and snow leopard profiles; their seeds do not reproduce here), mended them
(each now a test or doctest: a footprint grid of 6e9 cells, a one-cell KDE grid, an animal without a track
line between two others, a range covering no public cell, a run whose every fix was flagged
failing inside the map), then ran this script: ``--seed 300 --count 100 --layouts
movebank,argos`` (when it drew the generic and snow leopard profiles only) and, with every
profile, ``--seed 400 --count 100``, ``--seed 500 --count 200``, ``--seed 700 --count 200`` and
``--seed 900 --count 200``: 800 seeds, none crashing, 7 stopped with the all-flagged message.

Usage::

    python scripts/odd_inputs.py --seed 1 --count 100 --keep /tmp/odd
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import traceback
from pathlib import Path

import numpy as np
import pandas as pd

LAYOUTS = ("movebank", "argos", "generic", "split")
SPECIES = ("generic", "snow_leopard", "auto", "migratory_bird", "bat", "ungulate", "marine_turtle", "large_carnivore")
"""The profiles a seed runs with (``auto``: chosen from the speeds)."""


def animal_fixes(rng: np.random.Generator, name: str) -> pd.DataFrame:
    """One animal's fixes (Movebank column names): sizes, schedules, places and movements that
    no study would pick, the edge cases a study can still hold."""
    n = int(rng.choice([1, 2, 3, 5, 30, 200, 1500]))
    step_s = float(rng.choice([1, 30, 600, 3600, 4 * 3600, 86400, 7 * 86400]))
    jitter = float(rng.choice([0.0, 0.1, 0.5]))
    start = pd.Timestamp("2022-01-01", tz="UTC") + pd.Timedelta(days=int(rng.integers(0, 400)))
    t = start + pd.to_timedelta(np.cumsum(np.abs(step_s * (1 + jitter * rng.normal(size=n)))), unit="s")
    lon0 = float(rng.choice([76.0, 179.9, -179.9, 0.0, 10.0, -70.0, rng.uniform(-180, 180)]))
    lat0 = float(rng.choice([43.0, 89.5, -89.5, 0.0, -33.0, rng.uniform(-80, 80)]))
    sd = float(rng.choice([0.0, 1e-6, 1e-4, 1e-2, 0.5, 5.0]))  # degrees a step
    move = rng.choice(["walk", "scatter", "still"])
    if move == "walk":
        lon, lat = lon0 + np.cumsum(rng.normal(0, sd, n)), lat0 + np.cumsum(rng.normal(0, sd, n))
    elif move == "scatter":
        lon, lat = lon0 + rng.normal(0, sd, n), lat0 + rng.normal(0, sd, n)
    else:
        lon, lat = np.full(n, lon0), np.full(n, lat0)
    d = pd.DataFrame({"timestamp": t.strftime("%Y-%m-%d %H:%M:%S.000"),
                      "location-long": (lon + 180) % 360 - 180, "location-lat": np.clip(lat, -90, 90),
                      "individual-local-identifier": name})
    if rng.random() < 0.5:
        d["gps:hdop"] = rng.choice([np.nan, 0.0, 1.0, 2.5, 9.9, 50.0], n)
    if rng.random() < 0.4:
        d["gps:satellite-count"] = rng.integers(0, 13, n)
    if rng.random() < 0.3:
        d.loc[rng.random(n) < 0.2, ["location-long", "location-lat"]] = np.nan
    if rng.random() < 0.2 and n > 3:
        d = pd.concat([d, d.iloc[: n // 3]])  # duplicated rows
    return d


def odd_file(rng: np.random.Generator, folder: Path, layout: str) -> tuple[Path, dict[str, str]]:
    """One seed's file in ``layout``, and the ``--columns`` mapping it needs (empty: recognised)."""
    d = pd.concat([animal_fixes(rng, f"a{k}") for k in range(int(rng.choice([1, 2, 3, 7])))], ignore_index=True)
    if rng.random() < 0.2:
        d = d.sample(frac=1, random_state=int(rng.integers(1000)))
    n = len(d)
    d.insert(0, "event-id", np.arange(n))
    d["sensor-type"] = "gps"
    cols: dict[str, str] = {}
    if layout == "argos":
        d["sensor-type"] = "argos-doppler-shift"
        d["argos:lc"] = rng.choice(["3", "2", "1", "0", "A", "B", "Z", ""], n)
        if rng.random() < 0.5:
            d["argos:semi-major"], d["argos:semi-minor"] = rng.uniform(50, 5000, n), rng.uniform(20, 500, n)
            d["argos:orientation"] = rng.uniform(0, 180, n)
    elif layout in ("generic", "split"):
        t = pd.to_datetime(d["timestamp"])
        g = pd.DataFrame({"Animal": d["individual-local-identifier"], "Latitude": d["location-lat"],
                          "Longitude": d["location-long"]})
        if layout == "split":
            g.insert(0, "Time", t.dt.strftime("%H:%M:%S"))
            g.insert(0, "Date", t.dt.strftime("%d.%m.%Y"))
            cols = {"date": "Date", "clock": "Time", "animal": "Animal", "lat": "Latitude", "lon": "Longitude"}
        else:
            g.insert(0, "UTC", t.dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
        if rng.random() < 0.6:
            g["Fix Type"] = rng.choice(["3D", "2D", "No Fix", "GPS-3D", "3D Validated", ""], n)
        if "gps:hdop" in d and rng.random() < 0.7:
            g["HDOP"] = d["gps:hdop"].to_numpy()
        if rng.random() < 0.3:
            g["Altitude"] = rng.normal(2000, 500, n)
        spike = rng.random(n) < float(rng.choice([0.0, 0.01, 0.05]))
        g.loc[spike, "Latitude"] = g.loc[spike, "Latitude"] + rng.normal(0, 0.2, int(spike.sum()))
        d = g
    path = folder / f"odd_{layout}.csv"
    d.to_csv(path, index=False)
    return path, cols


def one(seed: int, layouts: tuple[str, ...], keep: Path | None) -> str:
    """Run one seed; its line of output."""
    import telemetry
    from telemetry.errors import TelemetryError
    from telemetry.pipeline import run

    rng = np.random.default_rng(seed)
    layout = str(rng.choice(layouts))
    species = str(rng.choice(SPECIES))
    tmp = Path(tempfile.mkdtemp(prefix="odd_"))
    try:
        path, cols = odd_file(rng, tmp, layout)
        if cols:
            run(None, tmp / "out", None, fixes=telemetry.read([path], columns=cols, tz="UTC"), species=species)
        else:
            run([path], tmp / "out", None, species=species)
        return f"{seed} {layout} ok"
    except TelemetryError as e:
        return f"{seed} {layout} error {str(e)[:200]}"
    except Exception as e:  # noqa: BLE001 - the point: anything but a TelemetryError is a crash
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, keep / f"seed{seed}_{path.name}")
            (keep / f"seed{seed}_traceback.txt").write_text(traceback.format_exc())
        return f"{seed} {layout} CRASH {type(e).__name__}: {str(e)[:200]}"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=1, help="first seed")
    ap.add_argument("--count", type=int, default=50, help="seeds to run")
    ap.add_argument("--layouts", default=",".join(LAYOUTS), help=f"comma-separated, of {', '.join(LAYOUTS)}")
    ap.add_argument("--keep", type=Path, default=None, help="folder for the files and tracebacks of crashes")
    ap.add_argument("--memory-gb", type=float, default=10.0, help="address-space limit of this process")
    args = ap.parse_args(argv)
    layouts = tuple(x.strip() for x in args.layouts.split(",") if x.strip())
    if not layouts or any(x not in LAYOUTS for x in layouts):
        ap.error(f"--layouts: of {', '.join(LAYOUTS)}")
    limit = int(args.memory_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    crashes = 0
    for seed in range(args.seed, args.seed + args.count):
        line = one(seed, layouts, args.keep)
        crashes += " CRASH " in line
        print(line, flush=True)
    print(f"{args.count} seeds, {crashes} crashes", flush=True)
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
