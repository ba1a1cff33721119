"""`telemetry run`: the whole job on the bundled sample, reproducible to the byte."""

from __future__ import annotations

import hashlib
import json

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
    assert "SL01" in printed and "map.html" in printed and "public.geojson" in printed
    assert main(["run", "--quiet", "--out", str(out2)]) == 0
    names = sorted(str(p.relative_to(out1)) for p in out1.rglob("*") if p.is_file())
    assert {"map.html", "public.geojson", "internal.gpkg", "index.html", "tracks.parquet", "quality.json",
            "track_summary.csv", "flag_summary.csv", "crossings_by_month.csv", "charts/fix_success.png",
            "charts/daily_distance.png", "charts/crossings.png"} <= set(names)
    for name in names:
        h1 = hashlib.sha256((out1 / name).read_bytes()).hexdigest()
        h2 = hashlib.sha256((out2 / name).read_bytes()).hexdigest()
        assert h1 == h2, f"{name} differs between identical runs"
    tracks = pd.read_parquet(out1 / "tracks.parquet")
    quality = json.loads((out1 / "quality.json").read_text())
    assert quality["totals"]["animals"] == 11
    assert len(tracks) == quality["totals"]["rows"]  # every row kept, flagged or not
    assert {"flag", "segment_id", "lon_s", "lat_s", "se_m", "step_m", "state"} <= set(tracks.columns)
