#!/usr/bin/env python
"""Benchmarks that print numbers (performance goals live here, not in unit tests).

Stages so far:

* ``parse``: read an N-row Movebank CSV with :func:`telemetry.read` and with
  ``pyarrow.csv.read_csv`` alone, in the same run; prints both times, the ratio
  (goal ≤ 2×) and the peak memory of the telemetry read relative to the file
  size (goal < 3×), measured in a fresh subprocess from ``ru_maxrss``.

Usage::

    python scripts/bench.py --rows 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the generated Movebank CSV")
    parser.add_argument("--stages", default="parse", help="comma-separated stages (parse)")
    parser.add_argument("--workdir", default=None, help="where to keep generated inputs")
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    args = parser.parse_args(argv)
    workdir = Path(args.workdir or os.path.join(tempfile.gettempdir(), "telemetry-bench"))
    workdir.mkdir(parents=True, exist_ok=True)
    results = {}
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")
    if "parse" in args.stages.split(","):
        r = bench_parse(args.rows, workdir)
        results["parse"] = r
        print(
            f"parse  {r['rows']:>9,} rows  {r['file_mb']:.0f} MB  pyarrow.csv.read_csv {r['pyarrow_s']:.2f} s  "
            f"telemetry.read {r['telemetry_s']:.2f} s  ratio {r['ratio']:.2f}× (goal ≤ 2)  "
            f"peak memory {r['peak_mem_mb']:.0f} MB = {r['peak_mem_over_file']:.2f}× file (goal < 3; "
            f"pyarrow alone {r['pyarrow_peak_mem_over_file']:.2f}×)"
        )
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
