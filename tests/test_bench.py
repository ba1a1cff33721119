"""Smoke test of scripts/bench.py: every stage runs on a few thousand fixes and prints numbers.

No timing assertions: performance goals are printed by the benchmark, not tested here.
"""

from __future__ import annotations

import importlib.util
import re
import sys

import pytest

from .conftest import ROOT

NUMBER = r"\d+(?:\.\d+)?"


@pytest.fixture(scope="module")
def bench():
    """scripts/bench.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("telemetry_bench", ROOT / "scripts" / "bench.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses/annotations resolve through sys.modules
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_make_fixes_is_deterministic_and_realistic(bench):
    a = bench.make_fixes(40_000, seed=3)
    b = bench.make_fixes(40_000, seed=3)
    assert len(a) == 40_000
    assert a.equals(b)
    # more rows than the sample: copies get their own animals
    assert a["animal_id"].nunique() > 11
    nofix = a["lon"].isna().mean()
    assert 0.03 < nofix < 0.2
    assert set(a["fix_type"].dropna().unique()) >= {"2D", "3D"}
    # still in the Tien Shan (KAZ/KGZ/CHN)
    lon, lat = a["lon"].dropna(), a["lat"].dropna()
    assert lon.between(70, 90).mean() > 0.99 and lat.between(38, 48).mean() > 0.99


def test_parse_stage_prints_numbers(bench, tmp_path, capsys):
    assert bench.main(["--stages", "parse", "--fixes", "3000", "--repeats", "1", "--workdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"telemetry\.read {NUMBER} s .*ratio {NUMBER}×", out), out


def test_process_and_crossings_stages_print_numbers(bench, tmp_path, capsys):
    argv = ["--stages", "process,crossings", "--fixes", "3000", "--mpd-fixes", "1000", "--repeats", "1",
            "--workdir", str(tmp_path)]
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    for step in bench.PROCESS_STEPS:
        assert re.search(rf"^\s+{step}\s+{NUMBER}\s", out, re.M), (step, out)
    # the whole-process row has telemetry seconds, movingpandas seconds and a ratio, on M and extrapolated to N
    rows = re.findall(rf"process\(\)\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}×", out)
    assert len(rows) == 2, out
    assert "EXTRAPOLATED" in out
    assert re.search(rf"telemetry\.crossings {NUMBER} s\s+telemetry\.hotspots {NUMBER} s", out), out


def test_process_stage_can_skip_movingpandas(bench, tmp_path, capsys):
    argv = ["--stages", "process", "--fixes", "2000", "--skip-movingpandas", "--repeats", "1",
            "--workdir", str(tmp_path)]
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    assert "movingpandas skipped" in out
    assert re.search(rf"process\(\)\s+{NUMBER}\s+—", out), out


def test_make_fixes_chains_copies_into_longer_deployments(bench):
    fixes = bench.make_fixes(120_000, seed=5, n_animals=11)
    per = fixes.groupby("animal_id", observed=True).size()
    assert len(per) == 11
    assert per.sum() == 120_000
    # one animal's chained copies do not overlap in time: its fixes stay unique per time
    usable = fixes.dropna(subset=["time", "lon"])
    dup = usable.duplicated(["animal_id", "time"]).mean()
    assert dup < 0.01
    # and stay in one home range (same offset for all copies): 95 % of positions within ~1°
    spread = usable.groupby("animal_id", observed=True)["lon"].quantile(0.975) - \
        usable.groupby("animal_id", observed=True)["lon"].quantile(0.025)
    assert (spread < 1.0).mean() >= 10 / 11


def test_run_stage_times_every_stage_of_telemetry_run(bench, tmp_path, capsys):
    argv = ["--fixes", "4000", "--mpd-fixes", "1500", "--workdir", str(tmp_path)]
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    for stage in ("read", "clean", "smooth", "crossings", "corridors", "map", "exports"):
        assert re.search(rf"^\s+{stage}\w*\s+{NUMBER}\s+{NUMBER}\s", out, re.M), (stage, out)
    # comparable stages carry movingpandas seconds (scaled from 1,500 fixes) and a ratio
    assert re.search(rf"^\s+smooth\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}×", out, re.M), out
    assert re.search(rf"^\s+map\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}×", out, re.M), out
    assert re.search(rf"all but map\s+{NUMBER}\s+{NUMBER}", out), out
    assert "map.html" in out and (tmp_path / "out_4000" / "public.geojson").exists()


def test_run_stage_on_a_local_dask_cluster(bench, tmp_path, capsys):
    pytest.importorskip("distributed")
    argv = ["--fixes", "3000", "--skip-movingpandas", "--engine", "dask", "--workdir", str(tmp_path)]
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    assert re.search(rf"process on the cluster\s+{NUMBER}\s+{NUMBER}", out), out
    assert re.search(rf"all but map\s+{NUMBER}", out), out


def test_formats_stage_reads_every_layout_to_the_same_fixes(bench, tmp_path):
    """Every layout of the formats stage reads back every fix, at the CSV's times, within 1e-7 deg."""
    rows = bench.bench_formats(3000, tmp_path, repeats=1)
    assert {r["layout"] for r in rows} == {"csv", "dms", "hemisphere_columns", "utm", "unix", "kml", "xlsx"}
    n = next(r["rows"] for r in rows if r["layout"] == "csv")
    for r in rows:
        assert r["rows"] == n and r["same_times"] and r["max_position_diff_deg"] < 1e-7, r


def test_baseline_comparison_reports_wall_and_cpu_seconds(bench, tmp_path):
    """``--baseline``: process() of two checkouts (here this one twice) in fresh interpreters, each
    call's wall and CPU seconds, the ratio of the walls and the ratio the CPU time puts a floor
    under (this checkout's CPU over the cores, against the baseline's wall)."""
    fixes = bench.make_fixes(3_000, seed=5)
    out = bench.bench_baseline({"small": fixes}, tmp_path, str(ROOT), rounds=1, calls=1)
    r = out["small"]
    assert out["cores"] >= 1
    assert len(r["this_s"]) == len(r["baseline_s"]) == len(r["this_cpu_s"]) == len(r["baseline_cpu_s"]) == 1
    assert all(x > 0 for x in r["this_s"] + r["baseline_s"] + r["this_cpu_s"] + r["baseline_cpu_s"])
    assert r["ratio"] > 0 and r["cpu_floor_ratio"] == pytest.approx(
        r["this_cpu_s"][0] / out["cores"] / r["baseline_s"][0])


def test_baseline_comparison_takes_an_environment_for_the_baseline_only(bench, tmp_path):
    """``--baseline . --baseline-env TELEMETRY_HEAP_REUSE_BYTES=0``: this checkout with and without
    the heap's reuse; each side's system seconds and peak RSS are reported, and the environment
    reaches the baseline's interpreters (one that cannot start fails as the baseline's)."""
    fixes = bench.make_fixes(3_000, seed=5)
    out = bench.bench_baseline({"small": fixes}, tmp_path, str(ROOT), rounds=1, calls=1,
                               baseline_env={"TELEMETRY_HEAP_REUSE_BYTES": "0"})
    r = out["small"]
    assert out["baseline_env"] == {"TELEMETRY_HEAP_REUSE_BYTES": "0"}
    assert all(x >= 0 for x in r["this_system_s"] + r["baseline_system_s"])
    assert r["this_peak_rss_gb"] > 0.05 and r["baseline_peak_rss_gb"] > 0.05
    with pytest.raises(SystemExit, match="^baseline"):
        bench.bench_baseline({"small": fixes}, tmp_path, str(ROOT), rounds=1, calls=1,
                             baseline_env={"PYTHONHOME": str(tmp_path / "no-python-here")})
