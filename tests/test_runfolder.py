"""`telemetry run` writes a folder that is complete or untouched, and checkable (issue 16)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from telemetry.outputs.runfolder import check_folder
from telemetry.pipeline import RUN_STEPS, run

from .conftest import DATA

BATS = DATA / "movebank" / "bats_subset.csv"


def _listing(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


class Stop(KeyboardInterrupt):
    pass


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    out.mkdir()
    (out / "README.md").write_text("the team's notes\n")
    run([BATS], out)
    return out


def test_a_run_folder_is_complete_and_checkable(first, tmp_path):
    files = _listing(first)
    assert "manifest.json" in files and "README.md" in files  # a file no run wrote is kept
    manifest = json.loads(files["manifest.json"])
    listed = {o["path"] for o in manifest["outputs"]}
    assert listed == set(files) - {"manifest.json", "README.md"}
    assert manifest["inputs"][0]["bytes"] == BATS.stat().st_size and manifest["parameters"]["species"]
    # the location error the tracks were smoothed with, in every file that has metadata (issue 14)
    import pyarrow.parquet as pq
    import pyogrio

    used = json.loads(files["quality.json"])["processing"]["error_model"]
    assert used["3D"]["source"] in ("estimated", "default")
    assert json.loads(pq.read_schema(first / "tracks.parquet").metadata[b"telemetry"])["error_model"] == used
    for layer in pyogrio.list_layers(first / "internal.gpkg")[:, 0]:
        meta = pyogrio.read_info(first / "internal.gpkg", layer=layer)["layer_metadata"]
        assert json.loads(meta["telemetry"])["error_model"] == used, layer
    if "public.geojson" in files:
        assert json.loads(files["public.geojson"])["telemetry"]["error_model"] == used
    assert check_folder(first) == []
    proc = subprocess.run([sys.executable, "-m", "telemetry", "check", str(first)], capture_output=True, text=True)
    assert proc.returncode == 0 and "complete" in proc.stdout
    # damage: one file changed, one missing → named, exit 2
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(first), str(copy)], check=True)
    (copy / "track_summary.csv").write_text("x\n")
    (copy / "map.html").unlink()
    problems = check_folder(copy)
    assert any(p.startswith("map.html: missing") for p in problems)
    assert any(p.startswith("track_summary.csv:") for p in problems)
    proc = subprocess.run([sys.executable, "-m", "telemetry", "check", str(copy)], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


@pytest.mark.parametrize("at", ["read", "smooth", "crossings", "map", "exports"])
def test_an_interrupted_run_leaves_the_previous_folder_as_it_was(first, tmp_path, at):
    before = _listing(first)

    def step(name):
        if name == at:
            raise Stop()

    with pytest.raises(KeyboardInterrupt):
        run([BATS], first, overrides=["clean.max_speed_kmh=40"], step=step)
    assert _listing(first) == before  # nothing new beside the old run, nothing lost
    assert not [p for p in first.parent.iterdir() if p.name.startswith(f".{first.name}.")]  # no leftovers
    # and a first run interrupted leaves no folder at all
    fresh = tmp_path / "fresh"
    with pytest.raises(KeyboardInterrupt):
        run([BATS], fresh, step=step)
    assert not fresh.exists() and not list(tmp_path.glob(".fresh.*"))


def test_bad_options_and_unwritable_places_fail_before_any_work(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    cases = [
        (["--out", str(blocker / "out")], "not a folder"),
        (["--out", str(tmp_path / "o1"), "--species", "dragon"], "unknown species"),
        (["--out", str(tmp_path / "o2"), "--set", "clean.no_such=1"], "no_such"),
        (["--out", str(tmp_path / "o3"), "--config", str(tmp_path / "missing.toml")], "missing.toml"),
        (["--out", str(tmp_path / "o4"), str(tmp_path / "no_such_input.csv")], "no such file"),
    ]
    for args, expect in cases:
        proc = subprocess.run([sys.executable, "-m", "telemetry", "run", "-q", *args, str(BATS)],
                              capture_output=True, text=True)
        assert proc.returncode == 2, (args, proc.stderr)
        assert expect in proc.stderr and proc.stderr.count("\n") == 1 and "internal error" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]  # no folder left behind


def test_a_file_whose_every_fix_is_flagged_fails_with_the_flags_and_leaves_no_folder(tmp_path):
    """200 fixes all at 0°, 0° (a collar's "no position" written as zeros): the run stops with one
    line giving the flags, exit status 2, no folder (it failed inside the map: "render_map: no
    usable fixes to draw")."""
    src = tmp_path / "zeros.csv"
    src.write_text("timestamp,location-long,location-lat,individual-local-identifier\n"
                   + "".join(f"2022-01-{1 + k // 24:02d} {k % 24:02d}:00:00.000,0.0,0.0,a0\n" for k in range(200)))
    proc = subprocess.run([sys.executable, "-m", "telemetry", "run", "-q", str(src), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "no usable fixes" in proc.stderr and "zero_coords 200" in proc.stderr and proc.stderr.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_skipped_files_are_said_on_screen_in_quality_and_index(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "bats.csv").write_bytes(BATS.read_bytes())
    (inp / "collar.csv").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    (inp / "notes.txt").write_text("field notes, day 3\n")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "telemetry", "run", "-q", str(inp), "-o", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    quality = json.loads((out / "quality.json").read_text())
    skipped = {s["source"].rsplit("/", 1)[-1] for s in quality["skipped_files"]}
    assert skipped == {"collar.csv", "notes.txt"}
    html = (out / "index.html").read_text()
    assert "Files not read" in html and "collar.csv" in html and "notes.txt" in html
    loud = subprocess.run([sys.executable, "-m", "telemetry", "run", str(inp), "-o", str(out)],
                          capture_output=True, text=True)
    assert "skipped" in loud.stdout and "collar.csv" in loud.stdout


def test_run_steps_are_the_ones_interrupted():
    assert {"read", "smooth", "crossings", "map", "exports"} <= set(RUN_STEPS)


def test_manifest_inputs_are_the_files_the_reader_looks_at(tmp_path):
    """Not a folder marked as not telemetry (the sample's ground truth: the pipeline never
    reads it, so the manifest must not hash it as an input), nor hidden files."""
    from telemetry.outputs.runfolder import write_manifest
    from telemetry.parsers.source import IGNORE_MARKER

    data = tmp_path / "data"
    (data / "truth").mkdir(parents=True)
    (data / "bats.csv").write_bytes(BATS.read_bytes())
    (data / "truth" / IGNORE_MARKER).write_text("ground truth\n")
    (data / "truth" / "fixes.csv").write_text("t,x\n1,2\n")
    (data / ".hidden.csv").write_text("a\n")
    out = tmp_path / "out"
    out.mkdir()
    doc = json.loads(write_manifest(out, inputs=[data], parameters={}).read_text())
    assert [i["path"] for i in doc["inputs"]] == [str(data / "bats.csv")]
