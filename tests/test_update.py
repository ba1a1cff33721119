"""`telemetry update`: a store fed with daily downloads, in any order and batches, with overlaps,
a file given twice and a day delivered under two names, is byte for byte the store of processing
every file at once."""

from __future__ import annotations

import csv
import hashlib
import random
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from telemetry.errors import TelemetryError
from telemetry.io.dataset import write_dataset
from telemetry.pipeline import PROCESS_COLUMNS, process, stored_fixes, update

ROOT = Path(__file__).resolve().parent.parent
MOVEBANK = ROOT / "sample_tracks" / "movebank_SYNTHETIC_snow_leopards_tien_shan.csv"


def _digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def downloads(tmp_path_factory) -> tuple[Path, list[str], list[str]]:
    """The sample's Movebank file as one file up to 25 days before its end, then one file per day
    (each also holding the last 3 h of the day before: overlapping downloads)."""
    root = tmp_path_factory.mktemp("downloads")
    lines = MOVEBANK.read_text(encoding="utf-8").splitlines()
    head, body = lines[0], lines[1:]
    ti = next(csv.reader([head])).index("timestamp")
    times = pd.to_datetime([next(csv.reader([ln]))[ti] for ln in body])
    cut = times.max() - pd.Timedelta(days=25)
    (root / "in").mkdir()
    (root / "in" / "bulk.csv").write_text("\n".join([head, *[ln for ln, t in zip(body, times) if t < cut]]) + "\n")
    days = []
    for d in sorted({t.normalize() for t in times if t >= cut}):
        rows = [ln for ln, t in zip(body, times) if t >= cut and d - pd.Timedelta(hours=3) <= t < d + pd.Timedelta(days=1)]
        name = f"in/day_{d:%Y%m%d}.csv"
        (root / name).write_text("\n".join([head, *rows]) + "\n")
        days.append(name)
    # the same day delivered again under another name (a second download): its fixes are duplicates
    again = days[3].replace(".csv", "_again.csv")
    (root / again).write_text((root / days[3]).read_text())
    return root, days, [again]


def test_store_fed_in_any_order_equals_one_run_of_all_files(downloads, monkeypatch) -> None:
    root, days, again = downloads
    monkeypatch.chdir(root)  # `source` holds the paths as given: the same relative paths both ways
    every = ["in/bulk.csv", *days, *again]
    whole = process(every)
    write_dataset(whole, "scratch")
    rng = random.Random(3)
    order = days + again
    rng.shuffle(order)
    first = update("store", ["in/bulk.csv"])
    assert first.added > 20_000 and first.skipped == 0
    batches = [order[:4], order[4:5], [order[0], order[1]], order[5:11], order[11:]]
    results = [update("store", b) for b in batches]
    assert results[2].added == 0 and results[2].skipped > 0  # files given twice add nothing
    assert _digest(root / "store") == _digest(root / "scratch")
    tracks = results[-1].tracks
    assert len(tracks) == len(whole)  # rows in = rows out: duplicates kept, flagged
    assert (tracks["flag"] == "duplicate").sum() > 0


def test_a_stored_error_fit_is_reused_only_when_its_inputs_are_unchanged(downloads, monkeypatch) -> None:
    """With the error model fitted on each animal's first 300 fixes, a new day leaves those rows as
    they were: the store's fit is reused (no maximum-likelihood search), and the store is still
    byte for byte a fresh run of all files."""
    import telemetry.trajectory.error_estimate as ee

    root, days, _ = downloads
    monkeypatch.chdir(root)
    small = ["smooth.model_fit_fixes=300", "smooth.error_fit_max_fixes=1000"]
    write_dataset(process(["in/bulk.csv", *days[:6]], overrides=small), "scratch_small")
    update("store_small", ["in/bulk.csv", *days[:3]], overrides=small)
    calls = []
    real = ee._estimate_error
    monkeypatch.setattr(ee, "_estimate_error", lambda *a, **k: calls.append(1) or real(*a, **k))
    update("store_small", days[3:6], overrides=small)
    assert calls == []  # taken from the store
    assert _digest(root / "store_small") == _digest(root / "scratch_small")
    # a change of what the fit reads (another parameter) fits again
    update("store_small", days[6:7], overrides=[*small, "smooth.error_min_fixes=31"])
    assert calls == [1]


def test_stored_fixes_are_the_fixes_as_read() -> None:
    import telemetry

    raw = telemetry.read(ROOT / "sample_tracks" / "vectronic_SYNTHETIC_SL03_collar41935.csv")
    tracks = process(raw)
    assert set(tracks.columns) - set(raw.columns) == set(PROCESS_COLUMNS)
    back = stored_fixes(tracks)
    again = process(back)
    pd.testing.assert_frame_equal(again.drop(columns="geometry", errors="ignore"),
                                  tracks.drop(columns="geometry", errors="ignore"))


def test_a_folder_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "x.txt").write_text("mine")
    with pytest.raises(TelemetryError, match="not a track store"):
        update(tmp_path / "notes", [str(MOVEBANK)])
    assert (tmp_path / "notes" / "x.txt").read_text() == "mine"


def test_cli_prints_the_new_alerts(downloads, tmp_path: Path) -> None:
    root, days, _ = downloads

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "telemetry", "update", str(tmp_path / "st"), *args],
                              capture_output=True, text=True, timeout=300, cwd=root)

    first = cli("in/bulk.csv", "--no-alerts")
    assert first.returncode == 0 and "added" in first.stderr and first.stdout == ""
    nxt = cli(*days[:3])
    assert nxt.returncode == 0, nxt.stderr
    lines = nxt.stdout.splitlines()
    assert all(ln.split()[0] in ("CRITICAL", "WARNING", "INFO") for ln in lines)
    bad = cli("in/missing.csv")
    assert bad.returncode == 2 and "missing.csv" in bad.stderr and "Traceback" not in bad.stderr
