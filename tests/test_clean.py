"""Cleaning: every rule on hand-made rows, outlier detection on simulated truth and on the sample."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import telemetry
from telemetry.config import CleanParams
from telemetry.errors import TelemetryError
from telemetry.schema import FLAGS
from telemetry.trajectory.clean import clean, flag_summary
from tests.trajsim import conform, simulate

SAMPLE_TRUTH = Path("sample_tracks/truth/fixes.csv")


def _track(n: int = 20, **cols) -> pd.DataFrame:
    t = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    base = {
        "animal_id": "a", "time": t, "lon": 77.0 + np.arange(n) * 0.001, "lat": 43.0,
        "hdop": 1.0, "n_sats": 8.0, "fix_type": "3D", "source": "f.csv",
        "source_row": np.arange(2, n + 2), "flag": None,
    }
    base.update(cols)
    return conform(pd.DataFrame(base))


def test_outliers_found_on_simulated_truth():
    df = simulate(n_animals=4, n_fixes=1500, seed=7)
    out = clean(df)
    found = out["flag"].isin(["speed", "spike"]).to_numpy()
    truth = df["is_outlier"].to_numpy()
    recall = (found & truth).sum() / truth.sum()
    precision = (found & truth).sum() / found.sum()
    assert recall >= 0.95, recall
    assert precision >= 0.95, precision
    # one outlier never condemns its neighbours
    nbr = np.zeros_like(truth)
    nbr[1:] |= truth[:-1]
    nbr[:-1] |= truth[1:]
    assert (found & nbr & ~truth).sum() == 0


def test_rows_never_dropped_and_order_kept():
    df = simulate(n_animals=2, n_fixes=200, seed=1).sample(frac=1.0, random_state=0)
    out = clean(df)
    assert len(out) == len(df)
    assert out.index.equals(df.index)
    assert out["source_row"].equals(df["source_row"])
    assert out["flag"].dtype == df["flag"].dtype
    s = flag_summary(out)
    assert (s["rows"] == s["usable"] + s[list(FLAGS)].sum(axis=1)).all()
    assert s["rows"].sum() == len(df)


def test_basic_reasons_and_parser_flags_kept():
    df = _track(10)
    df.loc[1, ["lon", "lat"]] = 0.0
    df.loc[2, "lat"] = 95.0
    df.loc[3, "lon"] = np.nan
    df.loc[4, "flag"] = "malformed_row"
    df.loc[5, "fix_type"] = "none"
    df.loc[6, "fix_type"] = "2D"
    df.loc[6, "hdop"] = 9.0
    out = clean(df)
    assert out["flag"].astype(object).tolist()[1:7] == [
        "zero_coords", "out_of_range", "no_fix", "malformed_row", "no_fix", "low_quality"]
    assert out["flag"].isna().sum() == 4


def test_marked_outliers_from_movebank_columns():
    df = _track(6)
    df["visible"] = [True, False, True, True, True, True]
    df["manually-marked-outlier"] = [None, None, "true", None, None, None]
    df["algorithm-marked-outlier"] = pd.Series([None, None, None, True, None, None], dtype=object)
    out = clean(df)
    assert out["flag"].astype(object).tolist()[1:4] == ["marked_outlier"] * 3
    assert out["flag"].isna().sum() == 3


def test_duplicate_keeps_the_better_fix():
    df = _track(4)
    dup = df.iloc[[1, 2]].copy()
    dup["fix_type"] = pd.Categorical(["2D", "3D"], dtype=df["fix_type"].dtype)
    dup["hdop"] = [1.0, 0.5]  # row 2's copy: same type, better DOP → the original is flagged
    dup["source_row"] = [100, 101]
    df = pd.concat([df, dup], ignore_index=True)
    out = clean(df)
    assert out.loc[4, "flag"] == "duplicate"  # 2D copy of row 1
    assert pd.isna(out.loc[1, "flag"])
    assert out.loc[2, "flag"] == "duplicate"  # worse DOP than its copy
    assert pd.isna(out.loc[5, "flag"])
    # exact duplicates: the first in file order is kept
    exact = pd.concat([_track(3), _track(3)], ignore_index=True)
    got = clean(exact)["flag"].astype(object).tolist()
    assert got == [np.nan] * 3 + ["duplicate"] * 3 or got[3:] == ["duplicate"] * 3


@pytest.mark.skipif(not SAMPLE_TRUTH.exists(), reason="sample_tracks not generated yet")
def test_sample_clock_jumps_and_duplicates():
    out = clean(telemetry.read("sample_tracks/"))
    truth = pd.read_csv(SAMPLE_TRUTH)
    out = out.assign(source=out["source"].astype(str).map(lambda s: Path(s.split("::")[-1]).name))
    m = out.merge(truth, on=["source", "source_row"], how="inner")
    jumped = m["clock_jump"].astype(str).str.lower() == "true"
    assert (m.loc[jumped, "flag"].notna()).all()
    assert (m.loc[~jumped, "flag"] != "clock_jump").all()
    dup = m["is_duplicate"].astype(str).str.lower() == "true"
    assert (m["flag"] == "duplicate").sum() == dup.sum()


def test_clock_jumps_in_file_order_and_outside_span():
    df = _track(200)
    df.loc[50, "time"] = pd.Timestamp("2000-01-01", tz="UTC")  # collar reset: far before everything
    df.loc[120, "time"] = df.loc[120, "time"] - pd.Timedelta(days=30)  # jumps back, inside the span? no:
    df.loc[199, "time"] = pd.Timestamp("2031-06-01", tz="UTC")
    out = clean(df)
    assert out.loc[[50, 120, 199], "flag"].tolist() == ["clock_jump"] * 3
    assert out["flag"].isna().sum() == 197


def test_shuffled_file_is_not_a_clock_problem():
    df = _track(100).sample(frac=1.0, random_state=3)
    df["source_row"] = np.arange(2, 102)
    assert clean(df)["flag"].isna().all()


def test_deployment_table():
    df = _track(10)
    dep = pd.DataFrame({"animal_id": ["a"], "start": ["2024-01-01T02:00:00Z"], "end": ["2024-01-01 07:00"]})
    out = clean(df, deployments=dep)
    assert out["flag"].isna().to_numpy().nonzero()[0].tolist() == [2, 3, 4, 5, 6, 7]
    assert set(out["flag"].dropna()) == {"outside_deployment"}
    with pytest.raises(TelemetryError):
        clean(df, deployments=pd.DataFrame({"animal": ["a"]}))


def test_movebank_reference_data_is_a_deployment_table(tmp_path):
    """Movebank ships deployments as "reference data" (animal-id, deploy-on-date, deploy-off-date,
    the off date often empty): it is accepted as it comes, by ``clean`` and by ``--deployments``."""
    df = _track(10)
    ref = pd.DataFrame({"tag-id": ["t1", "t2"], "animal-id": ["a", "zz"],
                        "deploy-on-date": ["2024-01-01 02:00:00.000", "2020-01-01 00:00:00.000"],
                        "deploy-off-date": ["2024-01-01 07:00:00.000", ""], "attachment-type": ["collar"] * 2})
    out = clean(df, deployments=ref)
    assert out["flag"].isna().to_numpy().nonzero()[0].tolist() == [2, 3, 4, 5, 6, 7]
    # an empty off date is an open end
    ref.loc[0, "deploy-off-date"] = None
    assert clean(df, deployments=ref)["flag"].isna().to_numpy().nonzero()[0].tolist() == list(range(2, 10))
    # on the command line: the reference file itself, and a table with neither naming is one line, exit 2
    from telemetry.cli.main import main

    fixes = tmp_path / "fixes.csv"
    pd.DataFrame({"animal_id": "a", "time": df["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"), "lon": df["lon"],
                  "lat": df["lat"]}).to_csv(fixes, index=False)
    ref_csv = tmp_path / "study-reference-data.csv"
    ref.assign(**{"deploy-off-date": ["2024-01-01 07:00:00.000", ""]}).to_csv(ref_csv, index=False)
    assert main(["process", str(fixes), "-o", str(tmp_path / "o.csv"), "--no-smooth", "--no-states",
                 "--deployments", str(ref_csv)]) == 0
    flags = pd.read_csv(tmp_path / "o.csv")["flag"]
    assert flags.isna().sum() == 6 and set(flags.dropna()) == {"outside_deployment"}
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"who": ["a"], "when": ["2024-01-01"]}).to_csv(bad, index=False)
    assert main(["process", str(fixes), "-o", str(tmp_path / "o2.csv"), "--deployments", str(bad)]) == 2


def test_movebank_reference_data_among_the_inputs_is_the_deployment_table(tmp_path):
    """A Movebank study downloaded whole comes with its reference data: read with the fixes, it is
    their deployment table without ``--deployments`` (said in the run's notes), in ``process``
    and ``run``; ``--deployments`` overrides it; alone it is one line naming it, exit 2, before
    any work."""
    import telemetry
    from telemetry.cli.main import main

    df = _track(10)
    fixes = tmp_path / "study.csv"
    pd.DataFrame({"event-id": np.arange(10), "timestamp": df["time"].dt.strftime("%Y-%m-%d %H:%M:%S.000"),
                  "location-long": df["lon"], "location-lat": df["lat"], "sensor-type": "gps",
                  "individual-local-identifier": "a", "tag-local-identifier": "t1"}).to_csv(fixes, index=False)
    ref = tmp_path / "study-reference-data.csv"
    pd.DataFrame({"tag-id": ["t1", "t9"], "animal-id": ["a", "zz"],
                  "deploy-on-date": ["2024-01-01 02:00:00.000", "2020-01-01 00:00:00.000"],
                  "deploy-off-date": ["2024-01-01 07:00:00.000", ""]}).to_csv(ref, index=False)
    read = telemetry.read([fixes, ref])
    assert [r["format"] for r in read.attrs["sources"]] == ["movebank", "movebank-reference"]
    out = telemetry.process(read, species="generic", smooth=False, states=False)
    assert out["flag"].isna().to_numpy().nonzero()[0].tolist() == [2, 3, 4, 5, 6, 7]
    assert set(out["flag"].dropna()) == {"outside_deployment"}
    assert out.attrs["deployments_from"] == [str(ref)]
    # paths given to process are read there, with the same effect
    out = telemetry.process([fixes, ref], species="generic", smooth=False, states=False)
    assert out["flag"].notna().sum() == 4
    # an explicit table wins (here: the whole day)
    whole = pd.DataFrame({"animal_id": ["a"], "start": ["2024-01-01"], "end": ["2024-01-02"]})
    assert telemetry.process(read, deployments=whole, smooth=False, states=False)["flag"].isna().all()
    # the command line: process notes it; run takes --deployments too
    assert main(["process", str(fixes), str(ref), "-o", str(tmp_path / "o.csv"), "--no-smooth", "--no-states"]) == 0
    assert pd.read_csv(tmp_path / "o.csv")["flag"].notna().sum() == 4
    whole_csv = tmp_path / "whole.csv"
    whole.to_csv(whole_csv, index=False)
    assert main(["process", str(fixes), str(ref), "-o", str(tmp_path / "o2.csv"), "--no-smooth", "--no-states",
                 "--deployments", str(whole_csv)]) == 0
    assert pd.read_csv(tmp_path / "o2.csv")["flag"].isna().all()


def test_a_deployment_date_that_is_not_a_time_is_one_line_naming_its_cell(tmp_path, capsys):
    """A deployment window that cannot be read cannot be applied: file, line and column, exit 2,
    whether the table came among the inputs (Movebank reference data) or with --deployments."""
    from telemetry.cli.main import main

    df = _track(5)
    fixes = tmp_path / "fixes.csv"
    pd.DataFrame({"animal_id": "a", "time": df["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"), "lon": df["lon"],
                  "lat": df["lat"]}).to_csv(fixes, index=False)
    ref = tmp_path / "study-reference-data.csv"
    pd.DataFrame({"tag-id": ["t1", "t2"], "animal-id": ["a", "b"], "deploy-on-date": ["2024-01-01 02:00", "2024-01-01"],
                  "deploy-off-date": ["", "next week"]}).to_csv(ref, index=False)
    for cmd in (["process", str(fixes), str(ref), "-o", str(tmp_path / "o.csv")],
                ["process", str(fixes), "--deployments", str(ref), "-o", str(tmp_path / "o.csv")],
                ["run", str(fixes), "--deployments", str(ref), "--out", str(tmp_path / "maps"), "--quiet"]):
        assert main(cmd) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"telemetry: error: {ref}, line 3, column 'deploy-off-date': cannot read 'next week' as a time"], err
    assert not (tmp_path / "o.csv").exists() and not (tmp_path / "maps").exists()


def test_a_null_marker_is_an_open_bound_however_the_table_comes(tmp_path):
    """One reading of an empty deployment cell: ``-`` (a null marker the readers know) is an open
    end among the inputs, with ``--deployments`` and in a DataFrame alike (``--deployments`` had
    said "cannot read '-' as a time", exit 2, where the same file among the inputs was read)."""
    import telemetry
    from telemetry.cli.main import main

    df = _track(10)
    fixes = tmp_path / "fixes.csv"
    pd.DataFrame({"animal_id": "a", "time": df["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"), "lon": df["lon"],
                  "lat": df["lat"]}).to_csv(fixes, index=False)
    ref = pd.DataFrame({"tag-id": ["t1"], "animal-id": ["a"], "deploy-on-date": ["2024-01-01 02:00:00.000"],
                        "deploy-off-date": ["-"]})
    ref_csv = tmp_path / "study-reference-data.csv"
    ref.to_csv(ref_csv, index=False)
    want = list(range(2, 10))  # from the start on, no end
    assert clean(df, deployments=ref)["flag"].isna().to_numpy().nonzero()[0].tolist() == want
    assert telemetry.process([fixes, ref_csv], smooth=False, states=False)["flag"].isna().to_numpy().nonzero()[0].tolist() \
        == want
    assert main(["process", str(fixes), "-o", str(tmp_path / "o.csv"), "--no-smooth", "--no-states",
                 "--deployments", str(ref_csv)]) == 0
    assert pd.read_csv(tmp_path / "o.csv")["flag"].isna().to_numpy().nonzero()[0].tolist() == want


def test_input_without_fixes_is_one_line_naming_it(tmp_path, capsys):
    from telemetry.cli.main import main

    ref = tmp_path / "study-reference-data.csv"
    pd.DataFrame({"tag-id": ["t1"], "animal-id": ["a"], "deploy-on-date": ["2024-01-01 02:00:00.000"],
                  "deploy-off-date": [""]}).to_csv(ref, index=False)
    for cmd in (["run", str(ref), "--out", str(tmp_path / "maps"), "--quiet"],
                ["process", str(ref), "-o", str(tmp_path / "o.csv")]):
        assert main(cmd) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "Traceback" not in err[0], err
        assert str(ref) in err[0] and "1 deployments" in err[0] and "no fixes" in err[0]
    assert not (tmp_path / "maps").exists() and not (tmp_path / "o.csv").exists()
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"who": ["a"]}).to_csv(bad, index=False)
    assert main(["run", "--deployments", str(bad), "--out", str(tmp_path / "maps"), "--quiet"]) == 2
    assert str(bad) in capsys.readouterr().err


def test_argos_classes_and_params():
    df = _track(5, fix_type="argos", argos_lc=["3", "Z", "B", "1", "2"])
    assert clean(df)["flag"].astype(object).tolist()[1] == "low_quality"
    strict = clean(df, CleanParams(argos_reject_classes=("B", "Z")))
    assert strict["flag"].notna().sum() == 2


def test_speed_threshold_is_a_parameter():
    df = _track(10)
    df.loc[5, "lon"] += 0.3  # ~24 km away and back in 1 h
    assert clean(df)["flag"].iloc[5] in ("speed", "spike")
    lax = clean(df, CleanParams(max_speed_kmh=100, spike_speed_kmh=100, out_and_back_ratio=np.inf))
    assert lax["flag"].isna().all()


def _resting_cat(n: int = 60, interval_h: float = 4.0, seed: int = 0) -> pd.DataFrame:
    """A cat at a bed/kill: fixes within ~30 m of one spot, every ``interval_h`` hours."""
    rng = np.random.default_rng(seed)
    t = pd.date_range("2024-01-01", periods=n, freq=pd.Timedelta(hours=interval_h), tz="UTC")
    return _track(n, time=t, lon=77.0 + rng.normal(0, 2e-4, n), lat=43.0 + rng.normal(0, 2e-4, n))


def test_out_and_back_outlier_at_rest_is_a_spike_and_neighbours_stay():
    df = _resting_cat()
    df.loc[30, "lat"] += 1_500 / 111_320  # 1.5 km off: too slow for the speed rule at 4 h
    out = clean(df)
    assert out["flag"].iloc[30] == "spike"
    assert out["flag"].isna().sum() == len(df) - 1
    off = clean(df, CleanParams(out_and_back_ratio=np.inf))
    assert off["flag"].isna().all()


def test_out_and_back_spares_the_fix_between_two_outliers():
    df = _resting_cat()
    df.loc[20, "lon"] += 2_000 / 81_400
    df.loc[22, "lat"] -= 3_000 / 111_320
    out = clean(df)
    # fix 21 is ~2-3 km from both its neighbours too, but only until they are flagged
    assert out["flag"].iloc[[20, 22]].eq("spike").all()
    assert out["flag"].isna().sum() == len(df) - 2


def test_out_and_back_keeps_a_travelling_track():
    # directed travel at ~2 km/h with a wide zig-zag (500 m off the line): real movement
    n = 60
    zig = np.where(np.arange(n) % 2 == 0, 1.0, -1.0) * 500 / 111_320
    df = _track(n, time=pd.date_range("2024-01-01", periods=n, freq="4h", tz="UTC"),
                lon=77.0 + np.arange(n) * 8_000 / 81_400, lat=43.0 + zig)
    assert clean(df)["flag"].isna().all()


def test_outliers_found_on_simulated_truth_at_4h():
    # steps of ~500 m per 4 h, outliers 3-30 km: the Bjørneraas rule alone finds ~60 %
    df = simulate(n_animals=4, n_fixes=1500, interval_h=4.0, seed=7)
    found = clean(df)["flag"].isin(["speed", "spike"]).to_numpy()
    truth = df["is_outlier"].to_numpy()
    assert (found & truth).sum() / truth.sum() >= 0.95
    assert (found & truth).sum() / found.sum() >= 0.95


def test_bad_input_is_an_error_not_a_traceback():
    with pytest.raises(TelemetryError):
        clean(pd.DataFrame({"x": [1]}))
    empty = telemetry.schema.empty_frame()
    assert len(clean(empty)) == 0
    assert flag_summary(clean(empty)).empty


def test_package_api():
    import telemetry.trajectory as tt

    assert tt.clean is clean



@pytest.mark.skipif(not SAMPLE_TRUTH.exists(), reason="sample_tracks not generated yet")
# Issue 4 asked for recall >= 0.95 at precision >= 0.9. That is not reachable from positions
# alone: at a 4-5 h schedule many 1-2 km outliers are geometrically identical to real night
# excursions from a kill or bed (neighbours 10-100 m apart, fix 1-2 km away), and the best
# statistic found (out-and-back score with a diel movement scale) reaches 0.61 at precision 0.9
# with an oracle-tuned threshold (see the issue 4 report). The default threshold gives recall
# 0.553 at precision 0.963; this asserts that floor.
def test_sample_outliers_recall_and_precision():
    fixes = telemetry.read("sample_tracks/")
    out = clean(fixes)
    truth = pd.read_csv(SAMPLE_TRUTH)
    out = out.assign(source=out["source"].astype(str).map(lambda s: Path(s.split("::")[-1]).name))
    truth["source"] = truth["source"].map(lambda s: Path(str(s)).name)
    m = out.merge(truth[["source", "source_row", "is_outlier"]], on=["source", "source_row"], how="inner")
    assert len(m) > 0.9 * len(truth)
    is_out = m["is_outlier"].astype(str).str.lower().isin(["true", "1"]).to_numpy()
    flagged = m["flag"].notna().to_numpy()
    by_filter = m["flag"].isin(["speed", "spike"]).to_numpy()
    recall = (flagged & is_out).sum() / max(is_out.sum(), 1)
    precision = (by_filter & is_out).sum() / max(by_filter.sum(), 1)
    assert recall >= 0.55, recall
    assert precision >= 0.9, precision


def test_flags_do_not_depend_on_row_order():
    # sorted input skips the (animal, time) sort; shuffled input takes it: same flags per row
    df = simulate(n_animals=3, n_fixes=400, seed=3)
    by_time = df.sort_values(["animal_id", "time"], kind="stable")
    shuffled = df.sample(frac=1.0, random_state=1)
    a = clean(by_time)["flag"].sort_index()
    b = clean(shuffled)["flag"].sort_index()
    assert a.astype(object).fillna("").equals(b.astype(object).fillna(""))
    assert a.isin(["speed", "spike"]).any()


def test_iterated_rounds_judge_each_animal_on_its_own():
    # the same outlier stretch in two animals, one of them with extra rounds of work:
    # each animal's flags equal those it gets when cleaned alone
    one = _resting_cat(seed=4, interval_h=1.0)
    lon = one["lon"].to_numpy().copy()
    lon[[20, 21, 22, 40]] += [0.3, 0.35, 0.3, 0.3]  # a run of three outliers (3 rounds), then one
    two = one.assign(lon=lon, animal_id="b")
    both = conform(pd.concat([one, two], ignore_index=True))
    out = clean(both)
    for name, alone in (("a", one), ("b", two)):
        got = out.loc[out["animal_id"] == name, "flag"].astype(object).fillna("").to_numpy()
        want = clean(conform(alone.reset_index(drop=True)))["flag"].astype(object).fillna("").to_numpy()
        assert (got == want).all()
    flagged = out.loc[out["animal_id"] == "b", "flag"].notna().to_numpy()
    assert flagged[[20, 21, 22, 40]].all()


def test_select_and_small_sort_kernels():
    from telemetry.trajectory._arrays import select_kth as _select
    from telemetry.trajectory._clean_kernels import _insertion_sort

    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 7, 50, 501):
        values = rng.integers(0, 5, n).astype(float)  # many ties
        for k in {0, n // 2, n - 1}:
            assert _select(values.copy(), k) == np.sort(values)[k]
        a = values.copy()
        _insertion_sort(a, n)
        assert (a == np.sort(values)).all()


# ---------------------------------------------------------------- issue 13: profiles that speak up


def _migrant(seed: int = 0) -> pd.DataFrame:
    """10 days at a stopover (hourly fixes, ~20 m jitter), a 36-hour leg south at 50 km/h, a new stop."""
    import pyproj

    geod = pyproj.Geod(ellps="WGS84")
    t = pd.date_range("2024-08-01", periods=24 * 16, freq="h", tz="UTC")
    n = len(t)
    leg = (np.arange(n) >= 240) & (np.arange(n) < 276)
    lon, lat, _ = geod.fwd(np.full(n, 16.0), np.full(n, 52.0), np.full(n, 170.0), np.cumsum(np.where(leg, 50_000.0, 0.0)))
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"animal_id": "cuckoo", "time": t, "lon": lon + rng.normal(0, 3e-4, n),
                         "lat": lat + rng.normal(0, 2e-4, n)})


def test_a_fast_leg_is_not_blamed_on_the_last_resting_fix_and_the_profile_speaks_up() -> None:
    from telemetry.config import Config

    df = _migrant()
    out = clean(df)  # snow-leopard limits: 15 km/h
    assert out["flag"].isna().all()  # neither the last stopover fix nor the leg is "out of place"
    check = out.attrs["profile_check"]["cuckoo"]
    assert not check["fits"] and check["suggested_profile"] == "migratory_bird"
    assert "sustained directional movement faster than the limit of 15 km/h" in check["message"]
    # a real gross error in the stopover is still flagged, and only it
    bad = df.copy()
    bad.loc[100, "lon"] += 0.2  # ~14 km east for one hour
    flagged = clean(bad)["flag"]
    assert flagged.notna().sum() == 1 and flagged.loc[100] in ("speed", "spike")
    fitting = clean(df, Config.for_species("migratory_bird").clean)
    assert fitting.attrs["profile_check"]["cuckoo"]["fits"]


def test_auto_profile_derives_each_animals_limit() -> None:
    from telemetry.config import PROFILES, Config

    cfg = Config.for_species("auto").clean
    assert cfg.speed_limit_from_data
    slow = _migrant()
    slow["animal_id"] = "slow"
    slow["lon"] = 16.0 + np.cumsum(np.full(len(slow), 0.001))  # ~70 m/h eastwards
    slow["lat"] = 52.0
    both = pd.concat([_migrant(), slow], ignore_index=True)
    out = clean(both, cfg)
    chk = out.attrs["profile_check"]
    assert chk["cuckoo"]["max_speed_kmh"] == pytest.approx(150.0, rel=0.05)  # 3 x its 95th percentile (50 km/h)
    assert chk["slow"]["max_speed_kmh"] == cfg.speed_limit_floor_kmh
    assert chk["cuckoo"]["fits"] and chk["slow"]["fits"]
    for name in ("large_carnivore", "ungulate", "migratory_bird", "bat", "marine_turtle", "generic", "auto"):
        assert name in PROFILES


def test_an_argos_animals_own_limit_is_read_from_its_better_classes() -> None:
    """A herring gull tracked by Argos (the bundled subset of the real study: 420 fixes, half of
    class 0, a third A or B): the steps between its fixes of classes 0, A and B are the error's
    (kilometres in minutes), so read from every step the ``auto`` limit was over 1,000 km/h and
    the speed rules caught nothing a gull could not do. From classes 3, 2 and 1 it is a bird's,
    and the profile check suggests the migratory-bird profile."""
    from telemetry.config import Config
    from telemetry.schema import ARGOS_CLASSES

    fixes = telemetry.read([Path(__file__).parent / "data" / "movebank" / "gulls_argos_subset.csv"])
    cfg = Config.for_species("auto").clean
    chk = clean(fixes, cfg).attrs["profile_check"]["33067"]
    assert 20.0 < chk["max_speed_kmh"] < 150.0 and chk["suggested_profile"] == "migratory_bird"
    every = clean(fixes, replace(cfg, speed_limit_argos_classes=tuple(ARGOS_CLASSES))).attrs["profile_check"]["33067"]
    assert every["max_speed_kmh"] > 500.0  # what the limit was before (the check above can fail)
    # and the profile is judged by the better fixes' flags: under the migratory-bird profile a tenth of
    # all its fixes are flagged (classes 0, A, B), none of the better ones: the profile fits
    bird = clean(fixes, Config.for_species("migratory_bird").clean).attrs["profile_check"]["33067"]
    assert bird["flagged_share"] > 3 * cfg.expected_flag_share and bird["flagged_share_better_fixes"] < 0.01
    assert bird["fits"] and bird["suggested_profile"] is None
    # the class filter touches Argos fixes only: a GPS track's limit is the same either way
    gps = _migrant()
    assert (clean(gps, cfg).attrs["profile_check"]["cuckoo"]
            == clean(gps, replace(cfg, speed_limit_argos_classes=())).attrs["profile_check"]["cuckoo"])


def test_many_gross_errors_under_a_profile_that_holds_the_speeds_blame_the_fixes() -> None:
    """A walker at ~1 km/h with 8 % of its fixes thrown 3-8 km: the ungulate profile (40 km/h)
    holds its speeds, so the flags are the fixes' errors, not a strict profile; the check says so, and suggests
    no profile (it used to suggest the slowest one whose limit held the speeds: a stricter one)."""
    from telemetry.config import Config

    rng = np.random.default_rng(4)
    n = 600
    t = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    lon = 30.0 + np.cumsum(rng.normal(0, 1000.0, n)) / 71_700.0
    lat = np.full(n, 50.0) + np.cumsum(rng.normal(0, 1000.0, n)) / 111_200.0
    bad = rng.random(n) < 0.08
    ang = rng.uniform(0, 2 * np.pi, n)
    dist = rng.uniform(3000, 8000, n)
    lon = np.where(bad, lon + dist * np.cos(ang) / 71_700.0, lon)
    lat = np.where(bad, lat + dist * np.sin(ang) / 111_200.0, lat)
    df = pd.DataFrame({"animal_id": "walker", "time": t, "lon": lon, "lat": lat})
    chk = clean(df, Config.for_species("ungulate").clean).attrs["profile_check"]["walker"]
    assert not chk["fits"] and chk["suggested_profile"] is None, chk
    assert "the fixes themselves err" in chk["message"] and "try --species" not in chk["message"]


def test_run_process_and_inspect_say_when_the_profile_does_not_fit(tmp_path) -> None:
    """One line per misfit animal in `run`/`inspect` output, and the run summary records it."""
    import json
    import subprocess
    import sys

    df = _migrant()
    path = tmp_path / "cuckoo.csv"
    df.assign(time=df["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).rename(
        columns={"animal_id": "individual", "time": "timestamp", "lon": "longitude", "lat": "latitude"}
    ).to_csv(path, index=False)
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "telemetry", "run", str(path), "--out", str(out)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    lines = [ln for ln in run.stdout.splitlines() if ln.startswith("profile: cuckoo")]
    assert len(lines) == 1 and "--species migratory_bird" in lines[0]
    summary = pd.read_csv(out / "track_summary.csv", index_col="animal_id")
    assert not summary.loc["cuckoo", "profile_fits"]
    assert summary.loc["cuckoo", "suggested_profile"] == "migratory_bird"
    assert summary.loc["cuckoo", "speed_limit_kmh"] == 15.0
    quality = json.loads((out / "quality.json").read_text())
    entry = quality["processing"]["animals"]["cuckoo"]
    assert entry["profile"]["fits"] is False and quality["processing"]["species"] == "snow_leopard"
    assert any(n.startswith("profile: cuckoo") for n in quality["processing"]["notes"])
    insp = subprocess.run([sys.executable, "-m", "telemetry", "inspect", str(path)], capture_output=True, text=True)
    assert insp.returncode == 0 and sum("cuckoo" in ln and "try --species migratory_bird" in ln
                                        for ln in insp.stdout.splitlines()) == 1
    fits = subprocess.run([sys.executable, "-m", "telemetry", "inspect", str(path), "--species", "migratory_bird",
                           "--json"], capture_output=True, text=True)
    assert json.loads(fits.stdout)["profile"]["animals"]["cuckoo"]["fits"] is True


def test_a_gross_error_at_either_end_of_a_track_is_beyond_the_animals_reach():
    """The first and last fixes have one neighbour: no out-and-back to see. An error 10 km off
    after 15 min of an animal that walks ~150 m per 15 min is beyond its own speed limit (the
    generic profile's fixed limit, 200 km/h, is not); an end step at the animal's usual pace,
    and the same error with the check off, stay."""
    rng = np.random.default_rng(4)
    n = 200
    t = pd.date_range("2024-01-01", periods=n, freq="15min", tz="UTC")
    step = rng.normal(0, 100, (n, 2)).cumsum(axis=0)  # a random walk, ~140 m per step
    lon = 77.0 + step[:, 0] / 81_000.0
    lat = 43.0 + step[:, 1] / 111_000.0
    df = pd.DataFrame({"animal_id": "a", "time": t, "lon": lon, "lat": lat})
    bad = df.copy()
    bad.loc[n - 1, "lon"] = bad.loc[n - 2, "lon"] + 10_000 / 81_000.0  # 10 km after 15 min
    bad.loc[0, "lat"] = bad.loc[1, "lat"] - 10_000 / 111_000.0        # ... and before the first step
    p = replace(CleanParams(), **telemetry.config.PROFILES["generic"]["clean"])
    flags = clean(bad, p)["flag"]
    assert flags.iloc[[0, n - 1]].tolist() == ["speed", "speed"] and flags.iloc[1:n - 1].isna().all()
    assert clean(df, p)["flag"].isna().all()  # the animal's own pace at the ends
    assert clean(bad, replace(p, end_reach_check=False))["flag"].isna().all()
