#!/usr/bin/env python
"""Benchmarks that print numbers (performance goals live here, not in unit tests).

Stages (``--stages parse,process,crossings``, sized with ``--fixes N``, default 1,000,000):

* ``parse``: read an N-row Movebank CSV with :func:`telemetry.read` and with
  ``pyarrow.csv.read_csv`` alone, in the same run; prints both times, the ratio
  (goal ≤ 2×) and the peak memory of the telemetry read relative to the file
  size (goal < 3×), measured in a fresh subprocess from ``ru_maxrss``.
* ``process``: :func:`telemetry.process` on N realistic fixes of many animals
  (:func:`make_fixes`), whole and step by step (sort, clean, segment, clusters,
  smooth, metrics, states), against movingpandas doing the equivalent on the same
  rows in the same run (TrajectoryCollection, OutlierCleaner, ObservationGapSplitter,
  KalmanSmootherCV, add_distance/add_timedelta/add_speed/add_direction/
  add_angular_difference). Goal: whole ``process`` ≥ 100× faster. movingpandas takes
  ~15 min on 1M fixes, so ``--mpd-fixes M`` runs both libraries on the first M fixes
  (ratio on identical data) and extrapolates movingpandas linearly to N (labelled
  as extrapolated); ``--skip-movingpandas`` leaves it out.
* ``process --baseline DIR``: ``process()`` of this checkout and of another (``DIR``, e.g. a
  ``git worktree`` of an earlier commit) on the same N fixes of both generators, each in a fresh
  interpreter, alternating, two rounds of two calls: the ratio a speed goal relative to an
  earlier version is checked on (issue 14: within 1.25× of f164f09, the code it was filed on).
  The machine's speed drifts by tens of per cent over a day, so only runs back to back compare.
  It prints each side's CPU, system seconds and peak RSS; ``--baseline-env VAR=VALUE`` sets the
  baseline's environment (``--baseline . --baseline-env TELEMETRY_HEAP_REUSE_BYTES=0``: this
  checkout with and without :mod:`telemetry.heap`).
* ``crossings``: :func:`telemetry.crossings` + :func:`telemetry.hotspots` on the N
  processed tracks. Goal: < 10 s at 1M fixes.
* ``compile``: ``telemetry run`` on the bundled sample in a fresh process with an empty
  numba cache: as a new user's first run (the compiled kernels shipped in
  ``telemetry/data/kernels``; goal < 30 s), with every kernel compiled (shipped kernels
  off: another CPU architecture, numba or Python version), and warm.
* ``ranges``: movement models, resident periods, AKDE (with its lumpiness simulations), MCP/KDE
  and speeds (:func:`telemetry.trajectory.ranges.movement_ranges`) on 11 animals × 5,000 fixes
  (goal < 10 s) and on 100 animals × 10,000 fixes (1M; goal < 2 min), each on two generators:
  range-resident OUF animals (exact transitions, ``tests/ctsim.py``) and the alert tests'
  collar simulator (``tests/alertsim.py``: biased walks with kills and failed fixes).
* ``wide``: ``telemetry run`` on continent-scale migrants from the independent simulator
  (``scripts/collar_sim.py``: Germany → Morocco, hourly fixes), the wide-ranging
  counterpart of the resident snow leopards, and on a second generator, Arctic terns flying
  Greenland → Weddell Sea and back at 6-h fixes (:func:`tern_fixes`, ~17,000 km each way):
  cost must follow the fixes, not the extent (reported per 1,000 fixes for both).
* ``formats``: ``telemetry.read`` of the same N fixes written as people write them (generic CSV,
  degrees-minutes with hemisphere letters, N/S and E/W columns, UTM, Unix seconds, KML, an Excel
  workbook of at most 200,000 rows): seconds, µs a row, and how far each layout's positions and
  times lie from the CSV's.

Usage::

    python scripts/bench.py --stages parse,process,crossings --fixes 1000000 --mpd-fixes 100000
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

MOVEBANK_COLUMNS = (
    "event-id,visible,timestamp,location-long,location-lat,gps:hdop,gps:satellite-count,"
    "height-above-msl,sensor-type,individual-taxon-canonical-name,tag-local-identifier,"
    "individual-local-identifier,study-name"
)


def make_movebank_csv(path: Path, n_rows: int, n_animals: int = 50, seed: int = 1) -> Path:
    """Write a realistic N-row Movebank CSV (random walks, 4 h schedule, some failed fixes)."""
    rng = np.random.default_rng(seed)
    animal = np.sort(rng.integers(0, n_animals, n_rows))
    start = np.cumsum(np.r_[0, np.diff(animal) != 0])  # 0.. per animal block index
    first = np.r_[0, np.flatnonzero(np.diff(animal)) + 1]
    idx_in = np.arange(n_rows) - first[start]
    t0 = np.datetime64("2021-03-01T00:00:00", "s")
    jitter = rng.integers(0, 120, n_rows)
    times = t0 + (idx_in * 4 * 3600 + jitter).astype("timedelta64[s]")
    step = rng.normal(0, 0.01, (n_rows, 2))
    pos = np.cumsum(step, axis=0)
    pos -= pos[first[start]]
    lon = 77.0 + animal * 0.05 + pos[:, 0]
    lat = 43.0 + pos[:, 1]
    failed = rng.random(n_rows) < 0.1
    hdop = np.round(rng.lognormal(np.log(1.5), 0.5, n_rows), 1)
    sats = rng.integers(3, 12, n_rows)
    ts = pd.Series(times).dt.strftime("%Y-%m-%d %H:%M:%S.000")
    lon_s = pd.Series(np.round(lon, 7)).astype(str).where(~failed, "")
    lat_s = pd.Series(np.round(lat, 7)).astype(str).where(~failed, "")
    frame = pd.DataFrame(
        {
            "event-id": np.arange(n_rows) + 10_000_000,
            "visible": "true",
            "timestamp": ts,
            "location-long": lon_s,
            "location-lat": lat_s,
            "gps:hdop": hdop,
            "gps:satellite-count": sats,
            "height-above-msl": np.round(rng.normal(3000, 400, n_rows), 1),
            "sensor-type": "gps",
            "individual-taxon-canonical-name": "Panthera uncia",
            "tag-local-identifier": (animal + 1000).astype(str),
            "individual-local-identifier": np.char.add("SL", animal.astype(str)),
            "study-name": "SYNTHETIC benchmark",
        }
    )
    frame.to_csv(path, index=False)
    return path


def _measure_child(kind: str, path: str) -> dict:
    """Run one read in a fresh interpreter; time it and read its peak RSS (VmHWM)."""
    code = f"""
import json, time, sys
import pyarrow.csv, pyarrow, pandas, numpy
import telemetry
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
# a child inherits its parent's high-water mark: reset it (Linux clear_refs 5)
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")
base = status("VmRSS:")
t = time.perf_counter()
if {kind!r} == "telemetry":
    df = telemetry.read({path!r}); n = len(df)
else:
    tb = pyarrow.csv.read_csv({path!r}); n = tb.num_rows
dt = time.perf_counter() - t
peak = status("VmHWM:")
print(json.dumps({{"seconds": dt, "rows": n, "peak_extra_bytes": peak - base}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_parse(n_rows: int, workdir: Path, repeats: int = 3) -> dict:
    """Parse benchmark: telemetry.read vs pyarrow.csv.read_csv on the same file."""
    import pyarrow.csv as pacsv

    import telemetry

    path = workdir / f"movebank_{n_rows}.csv"
    if not path.exists():
        t = time.perf_counter()
        make_movebank_csv(path, n_rows)
        print(f"  generated {path.name} ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s")
    size = path.stat().st_size
    best = {"pyarrow": float("inf"), "telemetry": float("inf")}
    for _ in range(repeats):  # alternate so both see the same cache state
        t = time.perf_counter()
        pacsv.read_csv(path)
        best["pyarrow"] = min(best["pyarrow"], time.perf_counter() - t)
        t = time.perf_counter()
        df = telemetry.read(path)
        best["telemetry"] = min(best["telemetry"], time.perf_counter() - t)
    assert len(df) == n_rows, (len(df), n_rows)
    dirty = _dirty_copy(path)
    dirty_s, walk_s = _time_dirty_read(dirty, repeats)
    mem = _measure_child("telemetry", str(path))
    mem_pa = _measure_child("pyarrow", str(path))
    return {
        "rows": n_rows,
        "file_mb": size / 1e6,
        "pyarrow_s": best["pyarrow"],
        "telemetry_s": best["telemetry"],
        "ratio": best["telemetry"] / best["pyarrow"],
        "peak_mem_mb": mem["peak_extra_bytes"] / 1e6,
        "peak_mem_over_file": mem["peak_extra_bytes"] / size,
        "pyarrow_peak_mem_over_file": mem_pa["peak_extra_bytes"] / size,
        "dirty_s": dirty_s,
        "dirty_csv_walk_s": walk_s,
    }


DIRTY_EVERY = 100_000
"""In the dirty copy, every this many data lines gets two extra cells (a malformed row)."""


def _dirty_copy(path: Path) -> Path:
    """``path`` with a malformed row every :data:`DIRTY_EVERY` lines and its last line cut in
    half (as a download that broke off): the file a collar portal really hands out now and then."""
    dirty = path.with_name(path.stem + "_dirty.csv")
    if dirty.exists():
        return dirty
    with open(path, "rb") as src, open(dirty.with_suffix(".part"), "wb") as out:
        lines = src.readlines()
        for i in range(DIRTY_EVERY, len(lines) - 1, DIRTY_EVERY):
            lines[i] = lines[i].rstrip(b"\r\n") + b",extra,cells\n"
        lines[-1] = lines[-1][: len(lines[-1]) // 2]
        out.writelines(lines)
    dirty.with_suffix(".part").rename(dirty)
    return dirty


def _time_dirty_read(dirty: Path, repeats: int) -> tuple[float, float]:
    """Best seconds of telemetry.read on the dirty copy, and the same with its malformed rows
    numbered by re-walking the whole text with the csv module (the reference path)."""
    import telemetry
    from telemetry.parsers import table

    best = [float("inf"), float("inf")]
    located = table._located_line_numbers
    frames = []
    for k, numbering in enumerate((located, lambda *args: None)):
        table._located_line_numbers = numbering
        try:
            for _ in range(repeats):
                t = time.perf_counter()
                df = telemetry.read(dirty)
                best[k] = min(best[k], time.perf_counter() - t)
        finally:
            table._located_line_numbers = located
        frames.append(df)
    pd.testing.assert_frame_equal(frames[0], frames[1])  # both paths: the same rows, lines and flags
    return best[0], best[1]


ROOT = Path(__file__).resolve().parents[1]
SAMPLE_TRACKS = ROOT / "sample_tracks"

PROCESS_STEPS: tuple[str, ...] = ("sort", "clean", "segment", "clusters", "smooth", "metrics", "states")
"""The steps of :func:`telemetry.process`, in order, as timed separately."""

MPD_STEPS: dict[str, str] = {
    "sort": "build TrajectoryCollection",
    "clean": "OutlierCleaner.clean(v_max)",
    "segment": "ObservationGapSplitter.split",
    "clusters": "",
    "smooth": "KalmanSmootherCV.smooth",
    "metrics": "add_distance/timedelta/speed/direction/angular_difference",
    "states": "",
}
"""What movingpandas runs for each telemetry step ("" = movingpandas has no equivalent)."""


def make_fixes(n_fixes: int, seed: int = 20261124, sample: Path = SAMPLE_TRACKS,
               n_animals: int | None = None) -> pd.DataFrame:
    """N realistic fixes of many animals: shifted copies of the synthetic Tien Shan sample.

    The sample (``sample_tracks/``, 11 simulated snow leopards, ~31k records) already has
    what a benchmark needs and a hand-written random walk lacks: a 4 h schedule with a
    time-to-fix jitter, ~9 % failed fixes (no-fix rows, clustered in time), gaps, 0.5 %
    gross outliers, 0.3 % duplicates, lognormal HDOP, 2D/3D fixes, day beds, kill-site
    stays, travel bouts, border crossers and a GPS week-rollover clock jump. Each copy
    gets new animal/tag/source ids, a random start date and a random offset of its
    positions of up to ±0.25° lon / ±0.15° lat (per animal), so the copies stay in the
    Tien Shan and cross the KAZ/KGZ/CHN borders in different places. Above 100 output
    animals the offsets widen by √(animals / 100), so the population density stays that
    of the 100-animal (1M-fix) set instead of growing with N: without it, 1,000 animals
    would share the ranges of 11 (≈ 90 animals on each), and everything that counts
    animals or steps near each other (pooled corridor neighbourhoods, animals per
    footprint cell) would measure crowding rather than scale. Vectorised; the
    same ``seed`` gives the same table.

    With ``n_animals``, copies of one sampled animal are chained in time into longer
    deployments (same position offset, so the same home range; 30 days between
    copies, which the segmenter sees as a gap) until there are ``n_animals`` animals:
    10M fixes of 1,000 animals are ~10,000 fixes (~4.5 years at 6 fixes a day) each.

    Parameters
    ----------
    n_fixes : int
        Rows wanted (the last copy is cut to fit).
    seed : int
        Seed of the offsets.
    n_animals : int, optional
        Animals wanted (default: one per copy of each sampled animal, ~2,800 fixes each);
        at most one per copy, at least the sample's 11 (fewer if ``n_fixes`` is cut short).
    sample : Path
        Folder read with :func:`telemetry.read`.

    Returns
    -------
    pandas.DataFrame
        Canonical columns only (vendor extras dropped: they are not used by
        ``process`` and would only add copying), rows grouped by animal in file order.
    """
    import telemetry
    from telemetry.schema import CANONICAL_COLUMNS

    base = telemetry.read(sample)[list(CANONICAL_COLUMNS)]
    # group rows by animal (file order inside) so "the first M fixes" are whole animals
    base = base.iloc[np.lexsort((base["source_row"].to_numpy(), base["source"].cat.codes.to_numpy(),
                                 base["animal_id"].cat.codes.to_numpy()))].reset_index(drop=True)
    n_base = len(base)
    n_copies = max(1, -(-n_fixes // n_base))
    rng = np.random.default_rng(seed)
    copy = np.repeat(np.arange(n_copies), n_base)[:n_fixes]
    row = np.tile(np.arange(n_base), n_copies)[:n_fixes]

    animal = base["animal_id"].cat.codes.to_numpy().astype(np.int64)[row]
    n_sampled = len(base["animal_id"].cat.categories)
    # group[c, a]: which output animal copy c of sampled animal a belongs to; pos: its place in the chain
    wanted = n_copies * n_sampled if n_animals is None else min(max(n_animals, n_sampled), n_copies * n_sampled)
    per_sampled = np.full(n_sampled, wanted // n_sampled) + (np.arange(n_sampled) < wanted % n_sampled)
    c = np.arange(n_copies)[:, None]
    group = c * per_sampled[None, :] // n_copies                       # (copy, sampled) → 0..per_sampled-1
    first = -(-group * n_copies // per_sampled[None, :])                # first copy of that group
    pos = c - first                                                      # copies before this one in its chain
    out_id = np.cumsum(np.r_[0, per_sampled[:-1]])[None, :] + group     # global output animal number
    # each sampled animal's deployment length (days; twice the interquartile time range, as
    # the week-rollover rows sit ~20 years off) plus 30 days: the step between chained copies
    q = base.groupby("animal_id", observed=False)["time"].quantile([0.25, 0.75]).unstack()
    span_d = np.ceil(2 * (q[0.75] - q[0.25]).dt.total_seconds().fillna(0).to_numpy() / 86_400).astype(np.int64) + 30

    def tiled_category(name: str) -> pd.Categorical:
        """Copy k of category c becomes ``"<c>_c<k>"`` (codes arithmetic, no string ops per row)."""
        col = base[name].cat
        cats = col.categories.astype(str)
        codes = col.codes.to_numpy().astype(np.int64)[row]
        new_codes = np.where(codes >= 0, copy * len(cats) + codes, -1)
        names = [f"{c}_c{k:03d}" for k in range(n_copies) for c in cats]
        return pd.Categorical.from_codes(new_codes, categories=names)

    def chained_category(name: str) -> pd.Categorical:
        """Chained copies of sampled animal ``c`` become ``"<c>_c<k>"``, k = its output group."""
        col = base[name].cat
        cats = col.categories.astype(str)
        code = col.codes.to_numpy().astype(np.int64)[row]
        g = group[copy, animal]
        new_codes = np.where(code >= 0, g * len(cats) + code, -1)
        names = [f"{c}_c{k:03d}" for k in range(int(per_sampled.max())) for c in cats]
        cat = pd.Categorical.from_codes(new_codes, categories=names)
        return cat.remove_unused_categories()

    key = out_id[copy, animal]  # one position offset and start date per output animal
    n_out = int(per_sampled.sum())
    spread = max(1.0, math.sqrt(n_out / 100))
    dlon = rng.uniform(-0.25, 0.25, n_out)[key] * spread
    dlat = rng.uniform(-0.15, 0.15, n_out)[key] * spread
    # start dates moved by up to ±1.5 years (the first group of each sampled animal keeps the
    # sample's dates), then each chained copy one sample span later
    start_d = rng.integers(-540, 540, n_out)
    start_d[np.cumsum(np.r_[0, per_sampled[:-1]])] = 0
    shift_d = start_d[key] + pos[copy, animal] * span_d[animal]
    lon = base["lon"].to_numpy()[row]
    lat = base["lat"].to_numpy()[row]
    zero = (lon == 0) & (lat == 0)  # keep 0/0 placeholders as they are: cleaning must still see them
    t_ns = base["time"].dt.as_unit("ns").to_numpy(dtype="datetime64[ns]").view(np.int64)[row]
    nat = base["time"].isna().to_numpy()[row]
    t_ns = np.where(nat, t_ns, t_ns + shift_d * 86_400 * 10**9)
    out = pd.DataFrame({
        "animal_id": chained_category("animal_id"),
        "tag_id": chained_category("tag_id"),
        "time": pd.to_datetime(t_ns.view("datetime64[ns]"), utc=True),
        "lon": np.where(zero, lon, lon + dlon),
        "lat": np.where(zero, lat, lat + dlat),
    })
    for name in ("alt_m", "hdop", "n_sats", "fix_type", "argos_lc", "source_row", "flag"):
        col = base[name]
        out[name] = (pd.Categorical.from_codes(col.cat.codes.to_numpy()[row], dtype=col.dtype)
                     if isinstance(col.dtype, pd.CategoricalDtype) else col.to_numpy()[row])
    out["source"] = tiled_category("source")  # each copy is its own "file": source_row stays unique per source
    return out[list(CANONICAL_COLUMNS)]


def describe_fixes(fixes: pd.DataFrame) -> str:
    """One line: rows, animals, share of no-fix rows, 2D fixes, duplicates, time span."""
    n = len(fixes)
    nofix = fixes["lon"].isna() | fixes["time"].isna()
    dup = fixes.duplicated(["animal_id", "time"]) & ~nofix
    two_d = (fixes["fix_type"] == "2D").sum()
    per = fixes["animal_id"].value_counts()
    per = per[per > 0]
    return (f"{n:,} fixes, {len(per)} animals ({per.median():.0f} median, {per.max():,} max per animal), "
            f"no-fix {nofix.mean():.1%}, 2D {two_d / n:.1%}, duplicates {dup.mean():.2%}, "
            f"{fixes['time'].min():%Y-%m-%d}..{fixes['time'].max():%Y-%m-%d}")


def telemetry_steps(fixes: pd.DataFrame) -> tuple[dict[str, float], pd.DataFrame]:
    """Run the steps of :func:`telemetry.process` one by one, timing each.

    Mirrors ``process()`` (same functions, same default parameters, same order) so the
    sum can be checked against the whole call; only ``segment`` and ``clusters`` are
    split apart, which ``process()`` runs as one call.
    """
    from telemetry.config import load_config
    from telemetry.pipeline import _sorted
    from telemetry.trajectory.clean import clean
    from telemetry.trajectory.metrics import metrics
    from telemetry.trajectory.segment import clusters, segment
    from telemetry.trajectory.smooth import smooth
    from telemetry.trajectory.states import label_states

    cfg = load_config(None)
    steps: list[tuple[str, object]] = [
        ("sort", _sorted),
        ("clean", lambda x: clean(x, cfg.clean)),
        ("segment", lambda x: segment(x, cfg.segment, with_clusters=False)),
        ("clusters", lambda x: clusters(x, cfg.clusters)),
        ("smooth", lambda x: smooth(x, params=cfg.smooth)),
        ("metrics", metrics),
        ("states", lambda x: label_states(x, params=cfg.states)),
    ]
    x = fixes.copy(deep=False)
    x.attrs = {}
    seconds: dict[str, float] = {}
    for name, fn in steps:
        t = time.perf_counter()
        x = fn(x)
        seconds[name] = time.perf_counter() - t
    return seconds, x


def movingpandas_steps(fixes: pd.DataFrame, fix_interval_h: float = 4.0,
                       return_collection: bool = False) -> tuple[dict[str, float], Any]:
    """Do the equivalent of :func:`telemetry.process` with movingpandas, timing each step.

    Same thresholds as telemetry's defaults: ``OutlierCleaner`` at ``max_speed_kmh``,
    ``ObservationGapSplitter`` at ``gap_multiple`` × the 4 h schedule, Kalman measurement
    noise of a typical fix (UERE 10 m × HDOP 1.5, ×1.37 for World Mercator at 43° N, which
    movingpandas filters in). movingpandas cannot hold rows without a position nor two
    fixes at one time in a trajectory, so those are dropped first (telemetry flags them in
    ``clean``); that preparation is counted in the "build" time. Clusters and behavioural
    states have no movingpandas counterpart and are not run.

    Returns
    -------
    dict, int
        Seconds per step (keys of :data:`MPD_STEPS` that movingpandas has) and the number of
        trajectories after splitting (the split TrajectoryCollection itself with
        ``return_collection``).
    """
    import warnings
    from datetime import timedelta

    import geopandas as gpd
    import movingpandas as mpd

    from telemetry.config import load_config

    cfg = load_config(None)
    seconds: dict[str, float] = {}
    with warnings.catch_warnings():
        # movingpandas 0.23 warns per trajectory (pandas deprecations, invalid cleaned trajectories)
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        ok = fixes["time"].notna() & fixes["lon"].notna() & fixes["lat"].notna()
        df = fixes.loc[ok, ["animal_id", "time", "lon", "lat", "hdop"]]
        df = df.drop_duplicates(["animal_id", "time"])
        df = df.assign(animal_id=df["animal_id"].astype(str), time=df["time"].dt.tz_localize(None))
        gdf = gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df["lon"], df["lat"]), crs="EPSG:4326")
        tc = mpd.TrajectoryCollection(gdf, traj_id_col="animal_id", t="time")
        seconds["sort"] = time.perf_counter() - t

        t = time.perf_counter()
        tc = mpd.OutlierCleaner(tc).clean(v_max=cfg.clean.max_speed_kmh, units=("km", "h"))
        seconds["clean"] = time.perf_counter() - t

        t = time.perf_counter()
        gap = timedelta(hours=cfg.segment.gap_multiple * fix_interval_h)
        tc = mpd.ObservationGapSplitter(tc).split(gap=gap)
        seconds["segment"] = time.perf_counter() - t

        t = time.perf_counter()
        mpd.KalmanSmootherCV(tc).smooth(process_noise_std=0.05, measurement_noise_std=10.0 * 1.5 * 1.37)
        seconds["smooth"] = time.perf_counter() - t

        t = time.perf_counter()
        tc.add_distance(units="m")
        tc.add_timedelta()
        tc.add_speed(units=("km", "h"))
        tc.add_direction()
        tc.add_angular_difference()
        seconds["metrics"] = time.perf_counter() - t
    return seconds, (tc if return_collection else len(tc))


def _best_of(run, repeats: int, budget_s: float) -> tuple[dict[str, float], dict[str, float], object]:
    """Per-key minimum over up to ``repeats`` runs, stopping once ``budget_s`` is spent.

    Other people's tests share the machine, so the minimum is the least noisy estimate;
    repeats are cut short on big inputs where one run already takes minutes. The first
    run's times are returned too: later runs reuse in-process caches (e.g. the per-animal
    pyproj transformers of ``trajectory/projection.py``), which a user calling
    ``process()`` once on new data does not have.

    Returns
    -------
    best, first, result
    """
    best: dict[str, float] = {}
    first: dict[str, float] = {}
    result = None
    spent = 0.0
    for _ in range(max(1, repeats)):
        t = time.perf_counter()
        seconds, result = run()
        spent += time.perf_counter() - t
        first = first or dict(seconds)
        best = {k: min(v, best.get(k, float("inf"))) for k, v in seconds.items()}
        if spent >= budget_s:
            break
    return best, first, result


def _fmt_s(x: float | None) -> str:
    """Seconds for a table cell ("—" when not measured)."""
    if x is None or not np.isfinite(x):
        return "—"
    return f"{x:.3f}" if x < 10 else f"{x:.1f}"


def _fmt_ratio(num: float | None, den: float | None) -> str:
    """movingpandas / telemetry as "123×" ("—" when either is missing)."""
    if num is None or den is None or not den > 0:
        return "—"
    return f"{num / den:.0f}×" if num / den >= 10 else f"{num / den:.1f}×"


def _telemetry_run(fixes: pd.DataFrame) -> tuple[dict[str, float], pd.DataFrame]:
    """One round: the whole ``process()`` call, then the same steps one by one."""
    import telemetry

    t = time.perf_counter()
    telemetry.process(fixes)
    whole = time.perf_counter() - t
    seconds, tracks = telemetry_steps(fixes)
    return {"process": whole, **seconds}, tracks


def bench_process(fixes: pd.DataFrame, mpd_fixes: int | None, skip_mpd: bool,
                  repeats: int = 3, budget_s: float = 60.0) -> dict:
    """Process benchmark: telemetry.process (whole and per step) vs movingpandas.

    telemetry runs on all N fixes and, when ``mpd_fixes`` < N, also on the first M;
    movingpandas runs on the first M (or all N), once (it is the slow side: its noise does
    not move a ≥ 100× ratio), and is extrapolated linearly to N when M < N.
    """
    import telemetry

    n = len(fixes)
    m = n if mpd_fixes is None else min(mpd_fixes, n)
    # first call pays numba compilation and lazy imports: keep it out of the timings
    t = time.perf_counter()
    telemetry.process(fixes.iloc[:3000])
    warmup = time.perf_counter() - t
    print(f"  warm-up (numba JIT + imports) on 3,000 fixes: {warmup:.1f} s")

    tel_n, first_n, tracks = _best_of(lambda: _telemetry_run(fixes), repeats, budget_s)
    out: dict = {"fixes": n, "mpd_fixes": None if skip_mpd else m, "telemetry_n": tel_n,
                 "telemetry_n_first": first_n, "warmup_s": warmup,
                 "steps_sum_n": sum(tel_n[s] for s in PROCESS_STEPS)}
    out["tracks"] = tracks
    if skip_mpd:
        return out
    sub = fixes.iloc[:m]
    tel_m, first_m = (tel_n, first_n) if m == n else _best_of(lambda: _telemetry_run(sub), repeats, budget_s)[:2]
    movingpandas_steps(sub.iloc[:500])  # warm-up: stonesoup/movingpandas imports
    t = time.perf_counter()
    mpd_m, n_traj = movingpandas_steps(sub)
    mpd_wall = time.perf_counter() - t
    mpd_m["process"] = sum(mpd_m.values())
    out.update({"telemetry_m": tel_m, "telemetry_m_first": first_m, "mpd_m": mpd_m, "mpd_wall_s": mpd_wall, "mpd_trajectories": n_traj})
    out["mpd_n"] = {k: v * n / m for k, v in mpd_m.items()}
    out["mpd_extrapolated"] = m < n
    return out


def print_process(r: dict) -> None:
    """Print the step table(s) of :func:`bench_process`."""
    n, m = r["fixes"], r["mpd_fixes"]
    comparable = [s for s in PROCESS_STEPS if MPD_STEPS[s]]

    def table(title: str, tel: dict, mp: dict | None, label: str, first: dict) -> None:
        print(f"  {title}")
        print(f"    {'step':<10} {'telemetry s':>12} {label:>24} {'ratio':>8}  movingpandas does")
        for s in PROCESS_STEPS:
            mv = mp.get(s) if mp else None
            print(f"    {s:<10} {_fmt_s(tel[s]):>12} {_fmt_s(mv):>24} {_fmt_ratio(mv, tel[s]):>8}  "
                  f"{MPD_STEPS[s] or '(no equivalent)'}")
        steps_sum = sum(tel[s] for s in PROCESS_STEPS)
        comp = sum(tel[s] for s in comparable)
        mp_total = mp.get("process") if mp else None
        print(f"    {'(steps Σ)':<10} {_fmt_s(steps_sum):>12}")
        print(f"    {'(compar. Σ)':<10} {_fmt_s(comp):>11} {_fmt_s(mp_total):>24} {_fmt_ratio(mp_total, comp):>8}"
              f"  steps both libraries run ({', '.join(comparable)})")
        print(f"    {'process()':<10} {_fmt_s(tel['process']):>12} {_fmt_s(mp_total):>24} "
              f"{_fmt_ratio(mp_total, tel['process']):>8}  whole telemetry.process vs all movingpandas "
              "steps (goal ≥ 100×)")
        print(f"    {'first call':<10} {_fmt_s(first['process']):>12} {_fmt_s(mp_total):>24} "
              f"{_fmt_ratio(mp_total, first['process']):>8}  first process() on this data (cold caches); "
              "the rows above are best-of")

    if m is None:
        table(f"process on {n:,} fixes (movingpandas skipped)", r["telemetry_n"], None, "movingpandas s",
              r["telemetry_n_first"])
        return
    print(f"  movingpandas: {r['mpd_trajectories']:,} trajectories after splitting, "
          f"{r['mpd_wall_s']:.1f} s wall on {m:,} fixes")
    if m < n:
        table(f"identical data: first {m:,} fixes (both measured)", r["telemetry_m"], r["mpd_m"],
              "movingpandas s", r["telemetry_m_first"])
        table(f"all {n:,} fixes: telemetry measured, movingpandas EXTRAPOLATED linearly ×{n / m:.1f}",
              r["telemetry_n"], r["mpd_n"], "mpd s (extrapolated)", r["telemetry_n_first"])
    else:
        table(f"{n:,} fixes (both measured)", r["telemetry_n"], r["mpd_m"], "movingpandas s", r["telemetry_n_first"])


def bench_crossings(tracks: pd.DataFrame, repeats: int = 3, budget_s: float = 60.0) -> dict:
    """Crossings benchmark: telemetry.crossings + telemetry.hotspots on processed tracks."""
    import telemetry

    telemetry.hotspots(telemetry.crossings(tracks.iloc[:3000]))  # warm-up: imports, border layer

    def run() -> tuple[dict[str, float], tuple]:
        t = time.perf_counter()
        c = telemetry.crossings(tracks)
        t1 = time.perf_counter()
        h = telemetry.hotspots(c)
        t2 = time.perf_counter()
        return {"crossings": t1 - t, "hotspots": t2 - t1, "total": t2 - t}, (c, h)

    best, _, (c, h) = _best_of(run, repeats, budget_s)
    kinds = c["kind"].value_counts() if len(c) else pd.Series(dtype=int)
    return {
        "fixes": len(tracks), **{f"{k}_s": v for k, v in best.items()},
        "events": len(c), "crossings": int(kinds.get("crossing", 0)), "excursions": int(kinds.get("excursion", 0)),
        "animals_crossing": int(c["animal_id"].nunique()) if len(c) else 0, "hotspots": len(h),
    }


# --------------------------------------------------------------------------- the whole `telemetry run`

RUN_MPD: dict[str, str] = {
    "clean": "OutlierCleaner.clean(v_max)",
    "segment": "ObservationGapSplitter.split",
    "smooth": "KalmanSmootherCV.smooth",
    "metrics": "add_distance/timedelta/speed/direction/angular_difference",
    "map": "TrajectoryCollection.explore() + save",
}
"""Stages of ``telemetry run`` that movingpandas can do, and what it runs for each (the
comparable steps the issue names). Building its TrajectoryCollection is printed apart: its
telemetry counterpart is part of reading."""


def _rss(key: str) -> int:
    """``VmRSS``/``VmHWM`` of this process in bytes (Linux /proc)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    return 0


def _ram_gb() -> float:
    """Physical memory of the machine (GB)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    except (ValueError, OSError, AttributeError):
        return float("nan")


def _reset_peak() -> None:
    """Reset this process's RSS high-water mark (Linux ``clear_refs`` 5), so the next
    ``VmHWM`` is the peak of what runs from here on."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:  # not Linux / not permitted: peaks become cumulative
        pass


class StageClock:
    """The ``step`` callback of :func:`telemetry.run`: wall time and peak RSS of every stage.

    ``telemetry.run`` announces each stage as it starts; a stage ends when the next one is
    announced (or at :meth:`stop`). Peak memory is the process's whole resident set at its
    highest during the stage (bytes), not an increment.
    """

    def __init__(self) -> None:
        self.stages: list[dict] = []
        self._name: str | None = None
        self._t = 0.0

    def __call__(self, name: str) -> None:
        self.stop()
        self._name = name
        _reset_peak()
        self._t = time.perf_counter()

    def stop(self) -> None:
        if self._name is not None:
            self.stages.append({"stage": self._name, "seconds": time.perf_counter() - self._t,
                                "peak_rss_bytes": _rss("VmHWM:")})
        self._name = None


def write_movebank(fixes: pd.DataFrame, folder: Path, animals_per_file: int = 100) -> list[Path]:
    """Write a canonical fix table as Movebank CSV files (one per ``animals_per_file`` animals).

    Written with pyarrow (a 10M-row table in seconds); rows without a position get empty
    coordinates, as Movebank exports failed fixes. Every file is marked SYNTHETIC.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    folder.mkdir(parents=True, exist_ok=True)
    codes = fixes["animal_id"].cat.codes.to_numpy()
    n_files = max(1, -(-len(fixes["animal_id"].cat.categories) // animals_per_file))
    paths = []
    for k in range(n_files):
        part = fixes[(codes // animals_per_file) == k]
        if part.empty:
            continue
        t = pa.array(part["time"].dt.tz_convert(None), type=pa.timestamp("s"))
        table = pa.table({
            "event-id": pa.array(part.index.to_numpy() + 10_000_000),
            "visible": pa.array(np.full(len(part), "true")),
            "timestamp": pc.strftime(t, format="%Y-%m-%d %H:%M:%S.000"),
            "location-long": pa.array(part["lon"].to_numpy(), from_pandas=True),
            "location-lat": pa.array(part["lat"].to_numpy(), from_pandas=True),
            "gps:hdop": pa.array(part["hdop"].to_numpy(), from_pandas=True),
            "gps:satellite-count": pa.array(part["n_sats"].to_numpy(dtype=float), from_pandas=True),
            "gps:fix-type": pa.array(part["fix_type"].astype(object).where(part["fix_type"].notna(), None)
                                     .replace({"3D": "3", "2D": "2", "none": "1"}).to_numpy(dtype=object)),
            "height-above-msl": pa.array(part["alt_m"].to_numpy(), from_pandas=True),
            "sensor-type": pa.array(np.full(len(part), "gps")),
            "individual-taxon-canonical-name": pa.array(np.full(len(part), "Panthera uncia")),
            "tag-local-identifier": pa.array(part["tag_id"].astype(str).to_numpy()),
            "individual-local-identifier": pa.array(part["animal_id"].astype(str).to_numpy()),
            "study-name": pa.array(np.full(len(part), "SYNTHETIC benchmark (simulated, not real animals)")),
        })
        path = folder / f"movebank_SYNTHETIC_part{k:03d}.csv"
        pacsv.write_csv(table, path, pacsv.WriteOptions(quoting_style="needed"))
        paths.append(path)
    return paths


GENERATOR_VERSION = "v2"  # v2: offsets widen above 100 animals (see make_fixes)


def run_animals(n_fixes: int) -> int:
    """Animals of the run benchmark: ~10,000 fixes each (10M fixes → 1,000 animals), at least 11."""
    return max(11, n_fixes // 10_000)


def run_inputs(n_fixes: int, workdir: Path, seed: int = 20261124) -> tuple[Path, str]:
    """Folder of Movebank CSVs holding :func:`make_fixes` (``n_fixes``, :func:`run_animals`),
    generated once per size (and per version of the generator)."""
    folder = workdir / f"run_{n_fixes}_{seed}_{GENERATOR_VERSION}"
    done = folder.with_name(folder.name + ".done")  # beside, not inside: the folder is the input
    if not done.exists():
        fixes = make_fixes(n_fixes, seed=seed, n_animals=run_animals(n_fixes))
        write_movebank(fixes, folder)
        done.write_text(describe_fixes(fixes) + "\n")
    return folder, done.read_text().strip()


def _child_run(inputs: str, out: str, result: str, warm: str, engine: str, scheduler: str | None) -> None:
    """In a fresh interpreter: warm up on a small input, then time ``telemetry.run`` stage by stage."""
    t = time.perf_counter()
    import telemetry
    from telemetry.engine import get_engine
    from telemetry.pipeline import run

    kwargs: dict = {}
    if engine != "local":
        # started once, before the warm-up: the cluster start-up is not a stage of the run
        kwargs["engine"] = get_engine(engine, scheduler=scheduler)
    run([warm], Path(out) / "warm-up", **kwargs)  # imports, numba cache, border layer
    warm_s = time.perf_counter() - t
    clock = StageClock()
    rss_before = _rss("VmRSS:")
    t = time.perf_counter()
    res = run([inputs], out, step=clock, **kwargs)
    total = time.perf_counter() - t
    clock.stop()
    map_html = Path(out) / "map.html"
    Path(result).write_text(json.dumps({
        "stages": clock.stages, "total_s": total, "warmup_s": warm_s, "rss_before_bytes": rss_before,
        "rows": int(len(res.tracks)), "animals": int(res.tracks["animal_id"].nunique()),
        "map_bytes": map_html.stat().st_size if map_html.exists() else None,
        "crossings": int(len(res.products.crossings)) if res.products else None,
        "corridors": int(len(res.products.corridors)) if res.products and res.products.corridors is not None else None,
        "version": telemetry.__version__,
    }))


def movingpandas_run(fixes: pd.DataFrame, out_html: Path, fix_interval_h: float = 4.0) -> dict[str, float]:
    """movingpandas doing what ``telemetry run`` does where it can, timed per stage (s).

    :func:`movingpandas_steps` (build, OutlierCleaner, ObservationGapSplitter,
    KalmanSmootherCV, add_* metrics) plus ``TrajectoryCollection.explore()`` saved to HTML
    for the map.
    """
    import warnings

    seconds, tc = movingpandas_steps(fixes, fix_interval_h, return_collection=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # explore() cannot serialise the Timedelta column add_timedelta made: seconds (untimed)
        for traj in tc.trajectories:
            if "timedelta" in traj.df.columns:
                traj.df["timedelta"] = traj.df["timedelta"].dt.total_seconds()
        t = time.perf_counter()
        tc.explore().save(str(out_html))
        seconds["map"] = time.perf_counter() - t
    return seconds


def bench_run(n: int, workdir: Path, mpd_fixes: int | None, skip_mpd: bool, engine: str = "local",
              scheduler: str | None = None) -> dict:
    """The whole ``telemetry run`` on N generated fixes (fresh process), and movingpandas on M of them."""
    t = time.perf_counter()
    folder, described = run_inputs(n, workdir)
    size = sum(p.stat().st_size for p in folder.glob("*.csv"))
    print(f"inputs  {described}; {len(list(folder.glob('*.csv')))} Movebank CSV files, {size / 1e6:,.0f} MB "
          f"(ready in {time.perf_counter() - t:.1f} s)")
    warm = workdir / "run_warm"
    if not warm.with_name("run_warm.done").exists():
        write_movebank(make_fixes(3000, seed=7), warm)
        warm.with_name("run_warm.done").write_text("warm-up input\n")
    out = workdir / f"out_{n}"
    result = workdir / f"run_{n}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_child-run", str(folder), str(out), str(result),
           str(warm), engine, scheduler or ""]
    subprocess.run(cmd, check=True)
    r = json.loads(result.read_text())
    r["fixes"] = n
    r["input_mb"] = size / 1e6
    if skip_mpd or (mpd_fixes is None and n > 1_000_000):
        r["mpd"] = None
        return r
    m = n if mpd_fixes is None else min(mpd_fixes, n)
    fixes = make_fixes(n, n_animals=run_animals(n))
    sub = fixes.iloc[:m]
    del fixes
    movingpandas_steps(sub.iloc[:500])  # warm-up: imports
    mpd_m = movingpandas_run(sub, workdir / f"mpd_{m}.html")
    r["mpd_fixes"] = m
    r["mpd"] = {k: v * n / m for k, v in mpd_m.items()}
    r["mpd_measured"] = mpd_m
    return r


def print_run(r: dict) -> None:
    """Print the stage table of :func:`bench_run`: seconds, peak RSS, movingpandas, ratio."""
    n, mp = r["fixes"], r.get("mpd")
    extrap = mp is not None and r.get("mpd_fixes", n) < n
    label = "mpd s (extrapolated)" if extrap else "movingpandas s"
    print(f"run  {n:,} fixes, {r['animals']:,} animals: telemetry.run in a fresh process "
          f"(warm-up {r['warmup_s']:.1f} s excluded)")
    print(f"    {'stage':<14} {'seconds':>9} {'peak RSS GB':>12} {label:>22} {'ratio':>8}  movingpandas does")
    for st in r["stages"]:
        name = st["stage"]
        mv = mp.get(name) if mp and name in RUN_MPD else None
        print(f"    {name:<14} {_fmt_s(st['seconds']):>9} {st['peak_rss_bytes'] / 1e9:>12.2f} {_fmt_s(mv):>22} "
              f"{_fmt_ratio(mv, st['seconds']):>8}  {RUN_MPD.get(name, '(no equivalent)')}")
    if {"quality", "home ranges"} & {s["stage"] for s in r["stages"]}:
        print("    (quality runs on a thread from sort on, home ranges from crossings on: their rows are the "
              "wait left for them)")
    no_map = [s for s in r["stages"] if s["stage"] != "map"]
    t_no_map = sum(s["seconds"] for s in no_map)
    peak = max(s["peak_rss_bytes"] for s in r["stages"])
    peak_no_map = max(s["peak_rss_bytes"] for s in no_map)
    goal = "≤ 15 s at 1M" if n <= 1_000_000 else "≤ 120 s at 10M"
    print(f"    {'all but map':<14} {_fmt_s(t_no_map):>9} {peak_no_map / 1e9:>12.2f}  (goal {goal}; "
          f"peak goal ≤ 8 GB at 10M)")
    print(f"    {'total':<14} {_fmt_s(r['total_s']):>9} {peak / 1e9:>12.2f}  "
          f"map.html {r['map_bytes'] / 1e6:.1f} MB (goal ≤ 20 MB)" if r.get("map_bytes") else "")
    if mp:
        comp = [s for s in r["stages"] if s["stage"] in mp and s["stage"] in RUN_MPD]
        worst = min((mp[s["stage"]] / s["seconds"], s["stage"]) for s in comp) if comp else None
        if "sort" in mp:
            print(f"    movingpandas also spends {_fmt_s(mp['sort'])} s building its TrajectoryCollection "
                  "(dropping rows without a position or with a repeated time, which telemetry flags)")
        if worst:
            print(f"    slowest ratio: {worst[0]:.0f}× ({worst[1]}); goal ≥ 100× on every comparable stage"
                  + (f" — movingpandas measured on {r['mpd_fixes']:,} fixes, scaled ×{n / r['mpd_fixes']:.1f}"
                     if extrap else ""))


FORMATS_XLSX_MAX_ROWS = 200_000
"""The formats stage writes at most this many rows into its workbook (openpyxl writes ~20,000
rows a second; a sheet holds 1,048,576)."""


def _formats_files(fixes: pd.DataFrame, folder: Path) -> dict[str, tuple[Path, dict]]:
    """The same fixes written as people write them (name → file, read options): the generic CSV
    the others are compared with, coordinates in degrees-minutes with hemisphere letters,
    unsigned degrees with N/S and E/W columns, UTM easting/northing/zone, Unix seconds, a KML of
    timed points, an Excel workbook (its first :data:`FORMATS_XLSX_MAX_ROWS` rows)."""
    import pyproj

    folder.mkdir(parents=True, exist_ok=True)
    f = fixes[fixes["lon"].notna() & fixes["time"].notna()].reset_index(drop=True)
    lon, lat = f["lon"].to_numpy(), f["lat"].to_numpy()
    iso = f["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ").to_numpy()
    ids = f["animal_id"].astype(str).to_numpy()
    out: dict[str, tuple[Path, dict]] = {}

    def write(name: str, frame: pd.DataFrame, options: dict | None = None) -> None:
        path = folder / name
        if not path.exists():
            frame.to_csv(path, index=False)
        out[name.split(".")[0]] = (path, options or {})

    write("csv.csv", pd.DataFrame({"animal_id": ids, "timestamp": iso, "longitude": lon, "latitude": lat}))

    def dm(v: np.ndarray, pos: str, neg: str) -> np.ndarray:
        a = np.abs(v)
        d = np.floor(a).astype(int)
        m = (a - d) * 60
        return np.char.add(np.char.add(np.char.add(d.astype(str), "°"), np.char.mod("%.6f'", m)), np.where(v >= 0, pos, neg))

    write("dms.csv", pd.DataFrame({"animal_id": ids, "timestamp": iso, "longitude": dm(lon, "E", "W"),
                                   "latitude": dm(lat, "N", "S")}))
    write("hemisphere_columns.csv", pd.DataFrame({"animal_id": ids, "timestamp": iso, "Latitude": np.abs(lat),
                                                  "N/S": np.where(lat < 0, "S", "N"), "Longitude": np.abs(lon),
                                                  "E/W": np.where(lon < 0, "W", "E")}))
    zone = np.clip(np.floor((lon + 180) / 6).astype(int) + 1, 1, 60)
    east, north = np.zeros(lon.size), np.zeros(lon.size)
    for z in np.unique(zone):
        rows = zone == z
        east[rows], north[rows] = pyproj.Transformer.from_crs(4326, 32600 + int(z), always_xy=True).transform(
            lon[rows], lat[rows])
    write("utm.csv", pd.DataFrame({"animal_id": ids, "timestamp": iso, "UTM zone": np.char.add(zone.astype(str), "N"),
                                   "Easting": np.round(east, 3), "Northing": np.round(north, 3)}))
    seconds = (f["time"] - pd.Timestamp("1970-01-01", tz="UTC")) // pd.Timedelta("1s")
    write("unix.csv", pd.DataFrame({"animal_id": ids, "timestamp": seconds, "longitude": lon, "latitude": lat}))
    kml = folder / "points.kml"
    if not kml.exists():
        lines = ['<?xml version="1.0"?>', '<kml xmlns="http://www.opengis.net/kml/2.2"><Document>']
        for a, grp in pd.DataFrame({"a": ids, "t": iso, "x": lon, "y": lat}).groupby("a", sort=False):
            lines.append(f"<Folder><name>{a}</name>")
            lines += [f"<Placemark><TimeStamp><when>{t}</when></TimeStamp><Point><coordinates>{x!r},{y!r}"
                      f"</coordinates></Point></Placemark>" for t, x, y in zip(grp["t"], grp["x"], grp["y"])]
            lines.append("</Folder>")
        lines.append("</Document></kml>")
        kml.write_text("\n".join(lines))
    out["kml"] = (kml, {})
    book = folder / "workbook.xlsx"
    if not book.exists():
        pd.read_csv(folder / "csv.csv", nrows=FORMATS_XLSX_MAX_ROWS, dtype=str).to_excel(book, index=False)
    out["xlsx"] = (book, {})
    return out


def bench_formats(n: int, workdir: Path, repeats: int = 3, budget_s: float = 60.0) -> list[dict]:
    """``telemetry.read`` of the same ``n`` fixes (of :func:`make_fixes`) in each layout of
    :func:`_formats_files`: seconds, microseconds per row, rows read, and the largest difference
    of a position from the generic CSV's reading (deg; a UTM round trip through pyproj stays
    within 1e-8, text written with 6 decimals of a minute within 2e-8)."""
    import telemetry

    files = _formats_files(make_fixes(n), workdir / f"formats-{n}")
    ref = telemetry.read(files["csv"][0])
    rows: list[dict] = []
    for name, (path, options) in files.items():
        def run(path=path, options=options):
            t = time.perf_counter()
            got = telemetry.read(path, **options)
            return {"read": time.perf_counter() - t}, got

        best, _, got = _best_of(run, repeats, budget_s)
        k = len(got)
        diff = max(float(np.nanmax(np.abs(got[c].to_numpy(dtype=float) - ref[c].to_numpy(dtype=float)[:k])))
                   for c in ("lon", "lat"))
        rows.append({"layout": name, "rows": k, "seconds": best["read"], "us_per_row": 1e6 * best["read"] / max(k, 1),
                     "max_position_diff_deg": diff, "same_times": bool((got["time"].to_numpy()
                                                                        == ref["time"].to_numpy()[:k]).all())})
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the selected stages and print their numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", default="run",
                        help="comma-separated stages: run (the whole telemetry run, default), parse, process, "
                             "crossings, compile, wide, update, ranges, formats")
    parser.add_argument("--fixes", type=int, default=1_000_000, help="N: rows/fixes every stage runs on")
    parser.add_argument("--rows", type=int, default=None, help="old name of --fixes (parse stage)")
    parser.add_argument("--mpd-fixes", type=int, default=None,
                        help="run movingpandas (and telemetry again) on the first M fixes; extrapolate to N")
    parser.add_argument("--skip-movingpandas", action="store_true", help="process stage: telemetry only")
    parser.add_argument("--repeats", type=int, default=3, help="best of up to this many runs per stage")
    parser.add_argument("--budget", type=float, default=60.0,
                        help="stop repeating a stage once this many seconds are spent on it")
    parser.add_argument("--workdir", default=None, help="where to keep generated inputs")
    parser.add_argument("--engine", default="local", choices=("local", "dask"),
                        help="run stage: where the per-animal stages run")
    parser.add_argument("--scheduler", default=None, help="run stage, --engine dask: scheduler address")
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    parser.add_argument("--baseline", default=None,
                        help="process stage: also time process() of this other checkout, back to back")
    parser.add_argument("--baseline-env", action="append", default=[], metavar="VAR=VALUE",
                        help="environment of the baseline's runs only (repeatable), e.g. --baseline . "
                             "--baseline-env TELEMETRY_HEAP_REUSE_BYTES=0: this checkout without the heap's reuse")
    parser.add_argument("--_child-run", nargs=6, help=argparse.SUPPRESS)
    parser.add_argument("--_child-process", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._child_process:
        _child_process(*args._child_process)
        return 0
    if args._child_run:
        inputs, out, result, warm, engine, scheduler = args._child_run
        _child_run(inputs, out, result, warm, engine, scheduler or None)
        return 0
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = set(stages) - {"run", "parse", "process", "crossings", "compile", "wide", "update", "ranges", "formats"}
    if unknown:
        parser.error(f"unknown stage(s): {', '.join(sorted(unknown))}")
    n = args.rows if args.rows is not None else args.fixes
    workdir = Path(args.workdir or os.path.join(tempfile.gettempdir(), "telemetry-bench"))
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict = {}
    print(f"machine: {os.cpu_count()} cores, {_ram_gb():.0f} GB RAM, python {sys.version.split()[0]}")
    if "run" in stages:
        r = bench_run(n, workdir, args.mpd_fixes, args.skip_movingpandas, args.engine, args.scheduler)
        results["run"] = r
        print_run(r)
    if "parse" in stages:
        r = bench_parse(n, workdir, repeats=args.repeats)
        results["parse"] = r
        print(
            f"parse  {r['rows']:>9,} rows  {r['file_mb']:.0f} MB  pyarrow.csv.read_csv {r['pyarrow_s']:.2f} s  "
            f"telemetry.read {r['telemetry_s']:.2f} s  ratio {r['ratio']:.2f}× (goal ≤ 2)  "
            f"peak memory {r['peak_mem_mb']:.0f} MB = {r['peak_mem_over_file']:.2f}× file (goal < 3; "
            f"pyarrow alone {r['pyarrow_peak_mem_over_file']:.2f}×)"
        )
        print(f"parse  dirty copy (a malformed row every {DIRTY_EVERY:,} lines, last line cut): "
              f"telemetry.read {r['dirty_s']:.2f} s (re-walking it with the csv module: "
              f"{r['dirty_csv_walk_s']:.2f} s)")
    tracks = None
    if "process" in stages or "crossings" in stages:
        t = time.perf_counter()
        fixes = make_fixes(n)
        print(f"fixes  generated in {time.perf_counter() - t:.1f} s: {describe_fixes(fixes)}")
    if "process" in stages:
        r = bench_process(fixes, args.mpd_fixes, args.skip_movingpandas, args.repeats, args.budget)
        tracks = r.pop("tracks")
        results["process"] = r
        print(f"process  {n:,} fixes")
        print_process(r)
        alert = alertsim_table(n)
        r2 = bench_process_alertsim(alert, args.repeats, args.budget)
        results["process_alertsim"] = r2
        print(f"process  [alertsim: biased walks with kills, 4 h] {r2['fixes']:,} fixes of {r2['animals']} animals: "
              f"process() {r2['telemetry']['process']:.1f} s (first call {r2['first']['process']:.1f} s); "
              + ", ".join(f"{k} {r2['telemetry'][k]:.2f} s" for k in PROCESS_STEPS))
        if args.baseline:
            benv = dict(e.split("=", 1) for e in args.baseline_env)
            r3 = bench_baseline({"bench": fixes, "alertsim": alert}, workdir, args.baseline, baseline_env=benv)
            results["process_baseline"] = r3
            for gen in ("bench", "alertsim"):
                b = r3[gen]
                print(f"process  [{gen}] back to back with {args.baseline}"
                      + "".join(f" ({k}={v})" for k, v in benv.items()) + ": this checkout "
                      f"{', '.join(f'{x:.1f}' for x in b['this_s'])} s, baseline "
                      f"{', '.join(f'{x:.1f}' for x in b['baseline_s'])} s: {b['ratio']:.2f}× "
                      + ("" if benv else "(issue 14's goal vs f164f09: ≤ 1.25×)") + f"; CPU {np.median(b['this_cpu_s']):.1f} s against "
                      f"{np.median(b['baseline_cpu_s']):.1f} s: on {r3['cores']} cores perfectly used at best "
                      f"{b['cpu_floor_ratio']:.2f}×; of the CPU the system's {np.median(b['this_system_s']):.1f} s "
                      f"against {np.median(b['baseline_system_s']):.1f} s; peak RSS {b['this_peak_rss_gb']:.2f} GB "
                      f"against {b['baseline_peak_rss_gb']:.2f} GB")
    if "crossings" in stages:
        if tracks is None:
            t = time.perf_counter()
            tracks = __import__("telemetry").process(fixes)
            print(f"  (processed {n:,} fixes for the crossings stage in {time.perf_counter() - t:.1f} s, untimed)")
        r = bench_crossings(tracks, args.repeats, args.budget)
        results["crossings"] = r
        print(
            f"crossings  {r['fixes']:>9,} fixes  telemetry.crossings {r['crossings_s']:.2f} s  "
            f"telemetry.hotspots {r['hotspots_s']:.2f} s  total {r['total_s']:.2f} s (goal < 10 s at 1M)  "
            f"{r['crossings']} crossings + {r['excursions']} excursions by {r['animals_crossing']} animals, "
            f"{r['hotspots']} hotspots"
        )
    if "compile" in stages:
        results["compile"] = r = bench_compile(workdir)
        print(f"compile  telemetry run on the sample in a fresh process: first run on a new machine (empty numba "
              f"cache, shipped kernels) {r['first_s']:.1f} s (goal < 30 s); compiling every kernel (shipped "
              f"kernels off) {r['cold_s']:.1f} s; warm {r['warm_s']:.1f} s")
    if "wide" in stages:
        results["wide"] = rows = bench_wide(workdir, n_animals=max(1, n // 10_000) if args.fixes != 1_000_000 else 20)
        for r in rows:
            print(f"wide  [{r['generator']}] {r['animals']} animals, {r['fixes']:,} fixes over {r['extent_km']:,.0f} km: "
                  f"telemetry run {r['run_s']:.1f} s ({1000 * r['run_s'] / r['fixes']:.2f} s per 1,000 fixes)")
    if "update" in stages:
        results["update"] = rows = bench_update(workdir)
        for r in rows:
            print(f"update  [{r['generator']}] one day of {r['animals']} collars ({r['day_fixes']} fixes) on a store "
                  f"of {r['fixes']:,} fixes (3 years at 4 h): telemetry update {r['day_s']:.1f} s (goal < 5 s), the "
                  f"same day again {r['again_s']:.1f} s; building the store {r['build_s']:.1f} s")
    if "ranges" in stages:
        results["ranges"] = rows = bench_ranges()
        for r in rows:
            print(f"ranges  [{r['generator']}] {r['animals']} animals × {r['per_animal']:,} fixes: movement_ranges "
                  f"{r['seconds']:.1f} s (goal < {r['goal_s']:.0f} s); {r['resident_periods']} range-resident "
                  f"periods, {r['periods']} periods")
    if "formats" in stages:
        results["formats"] = rows = bench_formats(n, workdir, args.repeats, args.budget)
        for r in rows:
            print(f"formats  [{r['layout']}] {r['rows']:,} rows: telemetry.read {r['seconds']:.2f} s "
                  f"({r['us_per_row']:.1f} µs a row); positions within {r['max_position_diff_deg']:.1e} deg of the CSV's, "
                  f"times {'the same' if r['same_times'] else 'DIFFERENT'}")
    if args.json:
        print(json.dumps(results, indent=2, default=float))
    return 0


def _ouf_animals(n_animals: int, per_animal: int, seed: int = 7) -> pd.DataFrame:
    """Range-resident OUF animals (τ_p 3-10 days, τ_v 30-90 min, 2-20 km² ranges) at 1-h fixes with
    10 % failed, by the exact transitions of ``tests/ctsim.py``, 15 m error."""
    sys.path.insert(0, str(ROOT))
    from tests import ctsim

    rng = np.random.default_rng(seed)
    frames = []
    for a in range(n_animals):
        t = ctsim.irregular_times(per_animal, 3600.0, rng)
        tp, tv = rng.uniform(3, 10) * 86400, rng.uniform(1800, 5400)
        x, y = ctsim.simulate_ouf_steps(t, rng.uniform(2e6, 2e7), tp, tv, rng)
        lat0, lon0 = 42.5 + rng.uniform(-1, 1), 77.0 + rng.uniform(-2, 2)
        frames.append(pd.DataFrame({
            "animal_id": f"A{a:03d}", "time": pd.Timestamp("2021-01-01", tz="UTC") + pd.to_timedelta(t, unit="s"),
            "lon": lon0 + (x + rng.normal(0, 15, t.size)) / (111_320 * np.cos(np.radians(lat0))),
            "lat": lat0 + (y + rng.normal(0, 15, t.size)) / 111_320, "sigma_m": 15.0}))
    df = pd.concat(frames, ignore_index=True)
    df["animal_id"] = df["animal_id"].astype("category")
    df["flag"] = pd.Categorical([None] * len(df))
    return df


def _child_process(repo: str, fixes_path: str, calls: str) -> None:
    """In a fresh interpreter: ``telemetry.process`` of the checkout ``repo`` on the pickled
    fixes, after a warm-up; prints the wall and the CPU seconds (all threads) of each call as JSON."""
    sys.path.insert(0, repo)
    import telemetry

    where = Path(telemetry.__file__).resolve()
    if not where.is_relative_to(Path(repo).resolve()):
        raise SystemExit(f"telemetry imported from {where}, not from {repo}")
    import resource

    fixes = pd.read_pickle(fixes_path)
    telemetry.process(fixes.iloc[:3000])
    out = []
    for _ in range(int(calls)):
        t, c, r = time.perf_counter(), time.process_time(), resource.getrusage(resource.RUSAGE_SELF)
        telemetry.process(fixes)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        # wall, CPU (all threads), of it the kernel's (page faults, mappings), peak RSS (GB, Linux: kB)
        out.append([time.perf_counter() - t, time.process_time() - c, r1.ru_stime - r.ru_stime, r1.ru_maxrss / 1e6])
    print(json.dumps(out))


def bench_baseline(tables: dict[str, pd.DataFrame], workdir: Path, baseline: str, rounds: int = 2,
                   calls: int = 2, baseline_env: dict[str, str] | None = None) -> dict:
    """``process()`` per generator (``tables``: name → fixes): this checkout's and ``baseline``'s
    seconds (each call), the ratio of their medians, from fresh interpreters alternating on
    the same fixes, and their CPU seconds (all threads): ``cpu_floor_ratio``, this checkout's
    median CPU time over the cores available against the baseline's median wall time, is the
    ratio it could not beat however well it used the cores. Also each side's system seconds
    and peak RSS. ``baseline_env``: environment variables of the baseline's interpreters only
    (``--baseline . --baseline-env TELEMETRY_HEAP_REUSE_BYTES=0``: this checkout without
    :mod:`telemetry.heap`)."""
    out: dict = {"baseline": str(baseline), "cores": os.cpu_count() or 1, "baseline_env": baseline_env or {}}
    for name, fixes in tables.items():
        path = workdir / f"baseline-{name}-{len(fixes)}.pkl"
        fixes.to_pickle(path)
        times: dict[str, list[float]] = {"this": [], "baseline": []}
        cpu: dict[str, list[float]] = {"this": [], "baseline": []}
        sys_s: dict[str, list[float]] = {"this": [], "baseline": []}
        rss: dict[str, float] = {"this": 0.0, "baseline": 0.0}
        for _ in range(rounds):
            for who, repo in (("baseline", baseline), ("this", str(ROOT))):
                cmd = [sys.executable, str(Path(__file__).resolve()), "--_child-process", repo, str(path), str(calls)]
                env = {**os.environ, **(baseline_env or {})} if who == "baseline" else None
                res = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
                if res.returncode != 0:
                    raise SystemExit(f"{who} ({repo}) failed: {res.stderr.strip().splitlines()[-1:]}")
                calls_s = json.loads(res.stdout.strip().splitlines()[-1])
                times[who] += [c[0] for c in calls_s]
                cpu[who] += [c[1] for c in calls_s]
                sys_s[who] += [c[2] for c in calls_s]
                rss[who] = max(rss[who], *(c[3] for c in calls_s))
        path.unlink()
        mid = {k: float(np.median(v)) for k, v in times.items()}
        mid_cpu = {k: float(np.median(v)) for k, v in cpu.items()}
        out[name] = {**{f"{k}_s": v for k, v in times.items()}, **{f"{k}_cpu_s": v for k, v in cpu.items()},
                     **{f"{k}_system_s": v for k, v in sys_s.items()}, **{f"{k}_peak_rss_gb": v for k, v in rss.items()},
                     "ratio": mid["this"] / mid["baseline"],
                     "cpu_floor_ratio": mid_cpu["this"] / out["cores"] / mid["baseline"]}
    return out


def alertsim_fixes(animals: int, per: int) -> pd.DataFrame:
    """``animals`` collars × ``per`` fixes from the alert tests' simulator (``tests/alertsim.py``:
    biased walks with kills and failed fixes, 4-h schedule): a generator unlike :func:`make_fixes`."""
    sys.path.insert(0, str(ROOT / "tests"))
    from alertsim import simulate_collars

    # the simulator stacks its collars northwards: batches of ≤ 20 side by side stay on Earth
    batches = []
    for b in range(0, animals, 20):
        part, _ = simulate_collars(n_alive=min(20, animals - b), death_day=None, days=per / 6, interval_h=4.0,
                                   seed=5 + b, lon0=70.0 + b / 4, lat0=40.0)
        part["animal_id"] = f"B{b // 20}-" + part["animal_id"].astype(str)
        batches.append(part)
    sim = pd.concat(batches, ignore_index=True)
    sim["animal_id"] = sim["animal_id"].astype("category")
    sim["flag"] = pd.Categorical([None] * len(sim))
    return sim


def alertsim_table(n: int) -> pd.DataFrame:
    """``n`` fixes of the second generator (:func:`alertsim_fixes`): 100 animals (10 below 100,000 fixes)."""
    animals = 100 if n >= 100_000 else 10
    return alertsim_fixes(animals, max(n // animals, 100))


def bench_process_alertsim(fixes: pd.DataFrame, repeats: int = 2, budget_s: float = 120.0) -> dict:
    """``process`` (whole and per step) on the second generator's fixes (:func:`alertsim_table`):
    the smoother and the HMM must not cost more on tracks unlike the bench's own."""
    __import__("telemetry").process(fixes.iloc[:3000])  # warm-up
    tel, first, _ = _best_of(lambda: _telemetry_run(fixes), repeats, budget_s)
    return {"generator": "alertsim", "fixes": len(fixes), "animals": int(fixes["animal_id"].nunique()),
            "telemetry": tel, "first": first}


def bench_ranges() -> list[dict]:
    """:func:`telemetry.trajectory.ranges.movement_ranges` at the issue's two sizes, two generators each."""
    from telemetry.trajectory.ranges import movement_ranges

    out = []
    for animals, per, goal in ((11, 5000, 10.0), (100, 10_000, 120.0)):
        sim = alertsim_fixes(animals, per)
        for name, fixes in (("ctsim OUF", _ouf_animals(animals, per)), ("alertsim", sim)):
            movement_ranges(fixes.iloc[:2000])  # load the kernels, not timed
            t = time.perf_counter()
            r = movement_ranges(fixes)
            sec = time.perf_counter() - t
            out.append({"generator": name, "animals": animals, "per_animal": int(len(fixes) / animals),
                        "seconds": sec, "goal_s": goal, "periods": int(len(r.table)),
                        "resident_periods": int(r.table["resident"].sum())})
    return out


def bench_update(workdir: Path, years: float = 3.0, n_animals: int = 11) -> list[dict]:
    """`telemetry update` of one day of ``n_animals`` collars on a store of ``years`` of them (4 h
    schedule): the whole command in a fresh process (goal < 5 s), on two generators — the
    sample-based :func:`make_fixes` and the alert tests' collar simulator (tests/alertsim.py,
    every collar active to the last day)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from alertsim import simulate_collars

    n = int(n_animals * 6 * 365 * years)
    sim, _ = simulate_collars(n_alive=n_animals, death_day=None, days=365 * years, interval_h=4.0, seed=4)
    for col, dtype in (("animal_id", "category"), ("tag_id", "category"), ("fix_type", "category")):
        sim[col] = sim[col].astype(dtype)
    out = []
    for name, fixes in (("make_fixes", make_fixes(n, n_animals=n_animals)), ("alertsim", sim)):
        last_day = fixes["time"].max().normalize()
        folder = workdir / f"update_{name}_{n}"
        if folder.exists():
            shutil.rmtree(folder)
        old = write_movebank(fixes[fixes["time"] < last_day].reset_index(drop=True), folder / "bulk")
        day = write_movebank(fixes[fixes["time"] >= last_day].reset_index(drop=True), folder / "day")
        store = folder / "store"
        build = _timed_cli(["update", str(store), *map(str, old), "--no-alerts"])
        day_s = _timed_cli(["update", str(store), *map(str, day)])
        again_s = _timed_cli(["update", str(store), *map(str, day)])
        out.append({"generator": name, "fixes": len(fixes), "animals": n_animals,
                    "day_fixes": int((fixes["time"] >= last_day).sum()), "build_s": build, "day_s": day_s,
                    "again_s": again_s})
    return out


def _timed_cli(args: list[str], env: dict[str, str] | None = None) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "telemetry", *args], check=True, capture_output=True,
                   env={**os.environ, **(env or {})})
    return time.perf_counter() - t


def bench_compile(workdir: Path) -> dict:
    """``telemetry run`` on the sample in fresh processes with an empty numba cache: as a new user
    gets it (the shipped kernels of telemetry.kernel_cache), compiling everything, and warm."""
    out = workdir / "compile-run"
    root = Path(__file__).resolve().parent.parent
    args = ["run", "-q", str(root / "sample_tracks"), "-o", str(out)]
    env = {"NUMBA_CACHE_DIR": tempfile.mkdtemp(prefix="numba-first-", dir=workdir)}
    first = _timed_cli(args, env)
    warm = _timed_cli(args, env)
    cold = _timed_cli(args, {"NUMBA_CACHE_DIR": tempfile.mkdtemp(prefix="numba-cold-", dir=workdir),
                             "TELEMETRY_SHIPPED_KERNELS": "0"})
    return {"first_s": first, "cold_s": cold, "warm_s": warm}


def bench_wide(workdir: Path, n_animals: int = 20) -> list[dict]:
    """``telemetry run`` on hourly migrants flying Germany → Morocco (scripts/collar_sim.py) and on
    terns flying from Greenland to the Weddell Sea and back (:func:`tern_fixes`, a quarter as many)."""
    import pyproj

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import collar_sim

    rows, _ = collar_sim.simulate("migrant", collar_sim.Collar(schedule_s=3600.0, days=60), n_animals=n_animals,
                                  seed=11)
    rows["study-name"] = "SYNTHETIC wide-ranging migrants (scripts/collar_sim.py)"
    out = []
    geod = pyproj.Geod(ellps="WGS84")
    for name, table in (("collar_sim migrants", rows), ("terns", tern_fixes(max(1, n_animals // 4)))):
        path = workdir / f"wide_{name.split()[-1]}_{n_animals}.csv"
        table.to_csv(path, index=False)
        lon, lat = table["location-long"].dropna(), table["location-lat"].dropna()
        _, _, d = geod.inv(lon.min(), lat.min(), lon.max(), lat.max())
        t = _timed_cli(["run", "-q", "--species", "auto", str(path), "-o", str(workdir / "wide-run")])
        out.append({"generator": name, "animals": int(table["individual-local-identifier"].nunique()),
                    "fixes": int(lon.size), "extent_km": d / 1000.0, "run_s": t})
    return out


def tern_fixes(n_animals: int, seed: int = 5) -> pd.DataFrame:
    """Arctic terns at 6-h fixes (Movebank columns, 15 m GPS error): from the Greenland coast south
    over the Atlantic to the Weddell Sea and back, 250-400 km a day with slow meanders and
    a month's stay at each end (Egevang et al. 2010 give ~70,000 km a year)."""
    import pyproj

    geod = pyproj.Geod(ellps="WGS84")
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(n_animals):
        legs = [(-22.0 + rng.normal(0, 2), 72.0 + rng.normal(0, 1)), (-30.0 + rng.normal(0, 5), -68.0 + rng.normal(0, 1)),
                (-22.0 + rng.normal(0, 2), 72.0 + rng.normal(0, 1))]
        lon, lat = [legs[0][0]], [legs[0][1]]
        for b in legs[1:]:
            # a month's stay (small moves), then the flight
            for _ in range(120):
                x, y, _ = geod.fwd(lon[-1], lat[-1], rng.uniform(0, 360), rng.exponential(3000.0))
                lon.append(x)
                lat.append(y)
            while True:
                az, _, dist = geod.inv(lon[-1], lat[-1], *b)
                if dist < 100_000:
                    break
                x, y, _ = geod.fwd(lon[-1], lat[-1], az + rng.normal(0, 25), min(dist, rng.uniform(60_000, 100_000)))
                lon.append(x)
                lat.append(y)
        lon, lat = np.asarray(lon), np.asarray(lat)
        e, n_ = rng.normal(0, 15.0, (2, lon.size))
        lon = lon + e / (111_320.0 * np.cos(np.radians(lat)))
        lat = lat + n_ / 110_574.0
        t = pd.Timestamp("2022-06-01", tz="UTC") + pd.to_timedelta(np.arange(lon.size) * 6, unit="h")
        frames.append(pd.DataFrame({"event-id": np.arange(lon.size) + 100_000 * k, "timestamp": t.strftime("%Y-%m-%d %H:%M:%S.000"),
                                    "location-long": lon.round(7), "location-lat": lat.round(7),
                                    "individual-local-identifier": f"tern{k + 1:02d}", "tag-local-identifier": 5000 + k,
                                    "sensor-type": "gps", "individual-taxon-canonical-name": "Sterna paradisaea",
                                    "study-name": "SYNTHETIC Arctic terns (scripts/bench.py tern_fixes)"}))
    return pd.concat(frames, ignore_index=True)


if __name__ == "__main__":
    sys.exit(main())
