"""Parameters: profiles, TOML, --set overrides, echo into outputs; process() and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from telemetry.config import Config, load_config
from telemetry.errors import TelemetryError
from telemetry.pipeline import process
from telemetry.trajectory.summary import track_summary
from tests.trajsim import simulate


def test_profiles_and_overrides():
    snow = Config.for_species("snow_leopard")
    assert snow.clusters.radius_m == 200.0 and snow.clusters.window_h == 24.0
    assert snow.smooth.uere_3d_m == 10.0 and snow.smooth.uere_2d_m == 30.0
    assert Config.for_species("generic").clean.max_speed_kmh > snow.clean.max_speed_kmh
    cfg = snow.with_overrides(["clean.max_speed_kmh=12", 'clean.argos_reject_classes=["B","Z"]',
                               "smooth.tau_grid_s=[3600]", "segment.gap_multiple=6"])
    assert cfg.clean.max_speed_kmh == 12.0 and cfg.clean.argos_reject_classes == ("B", "Z")
    assert cfg.smooth.tau_grid_s == (3600.0,) and cfg.segment.gap_multiple == 6.0
    assert json.loads(cfg.to_json())["clean"]["max_speed_kmh"] == 12.0


def test_a_tuple_parameter_with_an_empty_default_takes_typed_items(tmp_path):
    """An empty default says nothing of its items' type; the annotation does (``--set`` once
    turned ``smooth.error_hdop_powers=1,1.5`` into strings and the smoother crashed)."""
    assert Config().smooth.error_hdop_powers == ()
    cfg = Config().with_overrides(["smooth.error_hdop_powers=1,1.5"])
    assert cfg.smooth.error_hdop_powers == (1.0, 1.5)
    assert all(type(v) is float for v in cfg.smooth.error_hdop_powers)
    f = tmp_path / "p.toml"
    f.write_text("[smooth]\nerror_hdop_powers = [1, 2.5]\n")
    assert load_config(f).smooth.error_hdop_powers == (1.0, 2.5)
    with pytest.raises(TelemetryError):
        Config().with_overrides(["smooth.error_hdop_powers=a,b"])


@pytest.mark.parametrize("bad", ["clean.nope=1", "nope.x=1", "clean.max_speed_kmh=fast", "noequals",
                                 "clean.max_iterations=2.5"])
def test_bad_overrides_are_clear_errors(bad):
    with pytest.raises(TelemetryError):
        Config().with_overrides([bad])
    with pytest.raises(TelemetryError):
        Config.for_species("dragon")


def test_toml_file_then_set(tmp_path):
    f = tmp_path / "p.toml"
    f.write_text('species = "generic"\n[clean]\nmax_speed_kmh = 40\n[clusters]\nradius_m = 300\n')
    cfg = load_config(f, overrides=["clusters.window_h=48"])
    assert cfg.species == "generic" and cfg.clean.max_speed_kmh == 40.0
    assert cfg.clusters.radius_m == 300.0 and cfg.clusters.window_h == 48.0
    (tmp_path / "bad.toml").write_text("[clean\n")
    with pytest.raises(TelemetryError):
        load_config(tmp_path / "bad.toml")
    with pytest.raises(TelemetryError):
        load_config(tmp_path / "missing.toml")


def test_process_runs_every_step_and_echoes_parameters():
    df = simulate(n_animals=2, n_fixes=150, seed=12)
    tracks = process(df.sample(frac=1.0, random_state=0), overrides=["clean.max_speed_kmh=12"],
                     smooth=False, states=False)
    assert len(tracks) == len(df)
    assert tracks.attrs["parameters"]["clean"]["max_speed_kmh"] == 12.0
    assert {"flag", "segment_id", "cluster_id", "step_m", "turn_deg", "nsd_km2"} <= set(tracks.columns)
    key = tracks["animal_id"].astype(str) + tracks["time"].astype(str)
    assert key.is_monotonic_increasing
    s = track_summary(tracks)
    assert s["rows"].tolist() == [150, 150] and (s["usable"] + s["flagged"] == s["rows"]).all()


def _cli(args):
    import telemetry.cli.main as m
    from telemetry.cli import process_cmd

    if "process" not in m.cli.commands:
        m.cli.add_command(process_cmd.process)
    return m.main(args)


def _movebank_csv(tmp_path, n_fixes: int):
    """Two simulated animals as a Movebank CSV (``tmp_path / "fixes.csv"``)."""
    src = tmp_path / "fixes.csv"
    simulate(n_animals=2, n_fixes=n_fixes, seed=13).drop(columns=["is_outlier", "true_lon", "true_lat", "flag"]).rename(
        columns={"animal_id": "individual-local-identifier", "lon": "location-long", "lat": "location-lat",
                 "time": "timestamp"}).to_csv(src, index=False)
    return src


def _file_metadata(out, ext: str) -> dict:
    """The ``telemetry`` metadata `process` wrote with a track file of format ``ext``."""
    if ext == "parquet":
        return json.loads(pq.read_schema(out).metadata[b"telemetry"])
    if ext == "gpkg":
        import pyogrio

        return json.loads(pyogrio.read_info(out)["layer_metadata"]["telemetry_parameters"])
    return json.loads(out.with_name(out.name + ".json").read_text())


@pytest.mark.parametrize("ext", ["parquet", "gpkg", "csv"])
def test_cli_writes_atomically_with_metadata(tmp_path, ext, capsys):
    src = _movebank_csv(tmp_path, 60)
    out = tmp_path / f"tracks.{ext}"
    rc = _cli(["process", str(src), "--out", str(out), "--set", "clean.max_speed_kmh=11",
               "--no-smooth", "--no-states"])
    assert rc == 0, capsys.readouterr()
    assert "A0" in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left
    if ext == "parquet":
        import geopandas as gpd

        assert len(gpd.read_parquet(out)) == 120
    elif ext == "csv":
        assert len(pd.read_csv(out)) == 120
    assert _file_metadata(out, ext)["parameters"]["clean"]["max_speed_kmh"] == 11.0


def test_cli_bad_input_exit_2(tmp_path):
    assert _cli(["process", str(tmp_path / "none.csv"), "--out", str(tmp_path / "t.parquet")]) == 2
    assert _cli(["process", str(tmp_path), "--out", str(tmp_path / "t.txt")]) == 2
    assert _cli(["process", str(tmp_path), "--out", str(tmp_path / "t.csv"), "--set", "clean.x=1"]) == 2


def test_config_show_prints_toml_that_reads_back_to_the_same_parameters(tmp_path):
    """`telemetry config show` for every profile: valid TOML, and --config of it gives the same Config."""
    import subprocess
    import sys
    import tomllib

    from telemetry.config import PROFILES, Config, load_config

    for species in PROFILES:
        proc = subprocess.run([sys.executable, "-m", "telemetry", "config", "show", "--species", species],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        doc = tomllib.loads(proc.stdout)
        assert doc["species"] == species and "clean" in doc and "smooth" in doc
        for section in ("crossings", "hotspots", "corridors", "public", "map", "charts"):
            assert section in doc, (species, section)
        path = tmp_path / f"{species}.toml"
        path.write_text(proc.stdout)
        assert load_config(path).to_dict() == Config.for_species(species).to_dict()
    proc = subprocess.run([sys.executable, "-m", "telemetry", "config", "show", "--set", "clean.max_speed_kmh=12"],
                          capture_output=True, text=True)
    assert "max_speed_kmh = 12.0" in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "telemetry", "config", "show", "--species", "dragon"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown species" in bad.stderr


def test_every_command_takes_species_config_and_set_with_the_same_meaning(tmp_path):
    """run, process, crossings, corridors and map: --species/--config/--set SECTION.NAME=VALUE, checked first."""
    import subprocess
    import sys

    from telemetry.cli.main import _register, cli

    _register()
    for name in ("run", "process", "crossings", "corridors", "map", "export"):
        opts = {o for p in cli.commands[name].params for o in getattr(p, "opts", [])}
        assert {"--species", "--config", "--set"} <= opts, name
    from .conftest import DATA

    data = str(DATA / "movebank" / "bats_subset.csv")
    for cmd, out in (("crossings", "c.geojson"), ("corridors", "corr"), ("map", "m.html"), ("export", "e.geojson")):
        bad = subprocess.run([sys.executable, "-m", "telemetry", cmd, data, "-o", str(tmp_path / out),
                              "--set", "clean.no_such=1"], capture_output=True, text=True)
        assert bad.returncode == 2 and "no_such" in bad.stderr, (cmd, bad.stderr)
        assert not (tmp_path / out).exists()
    # a bare name is not a parameter: every --set is SECTION.NAME=VALUE, in every command
    bare = subprocess.run([sys.executable, "-m", "telemetry", "corridors", data, "-o", str(tmp_path / "corr"),
                           "--set", "buffer_m=150"], capture_output=True, text=True)
    assert bare.returncode == 2 and "section.name=value" in bare.stderr, bare.stderr
    # corridors: its own parameters as corridors.NAME, the pipeline's as SECTION.NAME
    ok = subprocess.run([sys.executable, "-m", "telemetry", "corridors", data, "-o", str(tmp_path / "corr"),
                         "--set", "corridors.buffer_m=150", "--set", "clean.max_speed_kmh=40", "--species", "bat"],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    meta = __import__("json").loads((tmp_path / "corr" / "corridors.json").read_text())
    assert meta["parameters"]["buffer_m"] == 150.0


def test_every_step_has_its_section_with_units_and_validation():
    """Crossings, hotspots, corridors, generalisation, map and charts are config sections: set by
    --set with typed values (optional ones by their annotation), bad values refused at once."""
    from telemetry.config import SECTIONS

    assert {"crossings", "hotspots", "corridors", "public", "map", "charts"} <= set(SECTIONS)
    cfg = load_config(None, overrides=["crossings.outside_is_place=true", "crossings.border_error_m=250",
                                       "corridors.classes=[2, 3]", "corridors.methods=footprint",
                                       "hotspots.gap_km=2", "public.grid_deg=0.25", "map.max_points=100",
                                       "charts.max_animals=5"])
    assert cfg.crossings.outside_is_place is True and cfg.crossings.border_error_m == 250.0
    assert cfg.corridors.classes == (2, 3) and cfg.corridors.methods == ("footprint",)
    assert cfg.hotspots.gap_km == 2.0 and cfg.public.grid_deg == 0.25
    assert cfg.map.max_points == 100 and cfg.charts.max_animals == 5
    back = load_config(None, overrides=["crossings.outside_is_place=none"])
    assert back.crossings.outside_is_place is None
    for bad in ("public.grid_deg=0", "public.grid_deg=0.00000015", "corridors.methods=magic",
                "corridors.no_such=1", "map.max_points=many", "crossings.outside_is_place=maybe"):
        with pytest.raises(TelemetryError):
            load_config(None, overrides=[bad])


def test_run_takes_the_output_sections_from_the_config(tmp_path):
    """`run --set public.grid_deg=0.5 --set corridors.methods=footprint`: the public file is on the
    0.5° lattice, the corridors come from one method, and every output records the values."""
    import json

    from telemetry.outputs.generalise import on_lattice
    from telemetry.pipeline import run

    from .conftest import DATA

    data = DATA / "movebank" / "bats_subset.csv"
    result = run([data], tmp_path / "out", species="bat",
                 overrides=["public.grid_deg=0.5", "public.min_animals=1", "corridors.methods=footprint",
                            "charts.max_animals=3"])
    pub = json.loads((tmp_path / "out" / "public.geojson").read_text())
    coords = [c for f in pub["features"] if f["geometry"] for c in _coords(f["geometry"]["coordinates"])]
    assert coords and on_lattice(np.array(coords), 0.5).all()
    params = result.tracks.attrs["parameters"]
    assert params["public"]["grid_deg"] == 0.5 and params["corridors"]["methods"] == ["footprint"]
    assert pub["telemetry"]["parameters"]["process"]["charts"]["max_animals"] == 3
    methods = set(result.products.corridors["method"]) if len(result.products.corridors) else set()
    assert methods <= {"footprint"}


def _coords(c):
    if c and isinstance(c[0], (int, float)):
        yield c
    else:
        for x in c:
            yield from _coords(x)


@pytest.mark.parametrize("ext", ["parquet", "gpkg", "csv"])
def test_every_track_file_records_the_location_error_used(tmp_path, ext, capsys):
    """Issue 14: the UERE used (estimated or calibrated, with its interval) is in every output's
    metadata — the model the smoother used, as ``process`` reports it."""
    import telemetry

    src = _movebank_csv(tmp_path, 150)
    out = tmp_path / f"tracks.{ext}"
    assert _cli(["process", str(src), "--out", str(out), "--no-states"]) == 0, capsys.readouterr()
    meta = _file_metadata(out, ext)
    used = telemetry.process(src, states=False).attrs["error_model"]
    assert meta["error_model"] == json.loads(json.dumps(dict(used), default=str))
    assert {v["source"] for k, v in meta["error_model"].items() if k != "note"} <= {"estimated", "default"}
