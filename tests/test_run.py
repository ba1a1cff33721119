"""`telemetry run`: the whole job on the bundled sample, reproducible to the byte."""

from __future__ import annotations

import hashlib
import json
import os

import pandas as pd
import pytest

from telemetry.cli.main import main

from .conftest import ROOT

SAMPLE = ROOT / "sample_tracks"


@pytest.mark.skipif(not SAMPLE.is_dir(), reason="sample not generated")
def test_run_without_arguments_on_the_sample(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    out1, out2 = tmp_path / "a", tmp_path / "b"
    assert main(["run", "--out", str(out1)]) == 0
    printed = capsys.readouterr().out
    assert "SL01" in printed and "tracks.parquet" in printed
    assert main(["run", "--quiet", "--out", str(out2)]) == 0
    names = sorted(os.listdir(out1))
    assert names == ["flag_summary.csv", "quality.json", "track_summary.csv", "tracks.parquet"]
    for name in names:
        h1 = hashlib.sha256((out1 / name).read_bytes()).hexdigest()
        h2 = hashlib.sha256((out2 / name).read_bytes()).hexdigest()
        assert h1 == h2, f"{name} differs between identical runs"
    tracks = pd.read_parquet(out1 / "tracks.parquet")
    quality = json.loads((out1 / "quality.json").read_text())
    assert quality["totals"]["animals"] == 11
    assert len(tracks) == quality["totals"]["rows"]  # every row kept, flagged or not
    assert {"flag", "segment_id", "lon_s", "lat_s", "se_m", "step_m", "state"} <= set(tracks.columns)
