"""Error classes, calibration from stationary collars, and the calibration table round trip."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyproj
import pytest

from telemetry.errors import TelemetryError
from telemetry.trajectory.error_model import ERROR_CLASSES, ErrorModel, calibrate, error_classes


def stationary_collars(n_collars: int, n: int, uere: dict[str, float], seed: int, share_2d: float = 0.3,
                       tail_df: float | None = None) -> pd.DataFrame:
    """Fixes of collars left at fixed sites: σ = UERE × HDOP per axis (Student-t errors if ``tail_df``)."""
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(n_collars):
        lon0, lat0 = 70.0 + 3 * k, 40.0 + k
        is2 = rng.random(n) < share_2d
        hdop = np.exp(rng.normal(np.log(1.5), 0.4, n))
        sig = np.where(is2, uere["2D"], uere["3D"]) * hdop
        if tail_df is None:
            e = rng.normal(size=(n, 2))
        else:  # unit-variance Student t
            e = rng.standard_t(tail_df, size=(n, 2)) / math.sqrt(tail_df / (tail_df - 2))
        geod = pyproj.Geod(ellps="WGS84")
        dist = np.hypot(e[:, 0], e[:, 1]) * sig
        az = np.degrees(np.arctan2(e[:, 0], e[:, 1]))
        lon, lat, _ = geod.fwd(np.full(n, lon0), np.full(n, lat0), az, dist)
        frames.append(pd.DataFrame({"animal_id": f"test-{k}", "lon": lon, "lat": lat, "hdop": hdop,
                                    "fix_type": np.where(is2, "2D", "3D")}))
    return pd.concat(frames, ignore_index=True)


def test_error_classes_and_hdop_factor() -> None:
    df = pd.DataFrame({"fix_type": ["3D", "2D", None, "argos", "argos", "3D"],
                       "hdop": [1.5, np.nan, 2.0, np.nan, np.nan, 2.5],
                       "argos_lc": [None, None, None, "B", None, None]})
    codes, factor = error_classes(df)
    assert [ERROR_CLASSES[c] for c in codes] == ["3D", "2D", "unknown", "argos B", "argos Z", "3D"]
    # a 2D fix without HDOP: its class has none -> 1; Argos: 1
    np.testing.assert_allclose(factor, [1.5, 1.0, 2.0, 1.0, 1.0, 2.5])
    no_cols = error_classes(pd.DataFrame({"lon": [1.0, 2.0]}))
    assert [ERROR_CLASSES[c] for c in no_cols[0]] == ["unknown", "unknown"] and list(no_cols[1]) == [1.0, 1.0]


def test_calibration_recovers_uere_with_honest_intervals() -> None:
    truth = {"3D": 4.0, "2D": 11.0}
    inside = {"3D": 0, "2D": 0}
    runs = 60
    for seed in range(runs):
        m = calibrate(stationary_collars(3, 150, truth, seed))
        for c in truth:
            lo, hi = m.ci_m[c]
            inside[c] += lo <= truth[c] <= hi
            assert m.source[c] == "calibrated"
    for c in truth:  # nominal 95 %: 60 runs give 0.87-1.0 with probability > 0.99
        assert 0.87 <= inside[c] / runs <= 1.0, (c, inside[c])
    big = calibrate(stationary_collars(4, 3000, truth, 99))
    assert big.uere_m["3D"] == pytest.approx(4.0, rel=0.03)
    assert big.uere_m["2D"] == pytest.approx(11.0, rel=0.05)
    assert "unknown" not in big.uere_m  # no fixes of that class: not calibrated


def test_calibration_table_round_trip_and_bad_tables() -> None:
    m = calibrate(stationary_collars(2, 300, {"3D": 5.0, "2D": 15.0}, 1))
    table = m.to_frame()
    assert list(table.columns) == ["class", "uere_m", "ci_low_m", "ci_high_m", "source", "n_fixes"]
    back = ErrorModel.from_frame(table)
    for c in ("3D", "2D"):
        assert back.uere_m[c] == pytest.approx(m.uere_m[c], rel=1e-3)
        assert back.source[c] == "calibrated"
    with pytest.raises(TelemetryError, match="unknown error class 'GPS'"):
        ErrorModel.from_frame(pd.DataFrame({"class": ["GPS"], "uere_m": [5.0]}), "cal.csv")
    with pytest.raises(TelemetryError, match="positive number"):
        ErrorModel.from_frame(pd.DataFrame({"class": ["3D"], "uere_m": ["-3"]}), "cal.csv")
    with pytest.raises(TelemetryError, match="needs columns class and uere_m"):
        ErrorModel.from_frame(pd.DataFrame({"kind": ["3D"]}), "cal.csv")
    with pytest.raises(TelemetryError, match="at least 10 located fixes"):
        calibrate(stationary_collars(1, 5, {"3D": 5.0, "2D": 15.0}, 2))


def test_merged_keeps_own_classes_and_fills_the_rest() -> None:
    a = ErrorModel(uere_m={"3D": 4.0}, source={"3D": "calibrated"})
    b = ErrorModel(uere_m={"3D": 10.0, "2D": 30.0}, source={"3D": "default", "2D": "default"})
    m = a.merged(b)
    assert m.uere_m == {"3D": 4.0, "2D": 30.0}
    assert m.source == {"3D": "calibrated", "2D": "default"}
    sig = m.sigma_m(np.array([0, 1, 2]), np.array([2.0, 2.0, 2.0]))
    np.testing.assert_allclose(sig[:2], [8.0, 60.0])
    assert np.isnan(sig[2])  # a class the model lacks


def test_calibrate_command_and_process_calibration(tmp_path) -> None:
    from pathlib import Path

    from telemetry.cli.main import main

    df = stationary_collars(3, 300, {"3D": 4.0, "2D": 11.0}, 5)
    t = pd.date_range("2024-01-01", periods=len(df), freq="min", tz="UTC")
    pd.DataFrame({"timestamp": t.strftime("%Y-%m-%d %H:%M:%S"), "location-long": df.lon, "location-lat": df.lat,
                  "gps:hdop": df.hdop, "gps:fix-type-raw": df.fix_type.map({"3D": "3", "2D": "2"}),
                  "individual-local-identifier": df.animal_id, "tag-local-identifier": df.animal_id,
                  }).to_csv(tmp_path / "stationary.csv", index=False)
    cal = tmp_path / "cal.csv"
    assert main(["calibrate", str(tmp_path / "stationary.csv"), "--out", str(cal)]) == 0
    table = pd.read_csv(cal)
    # "-o" as for every other command that writes a file: the same table
    assert main(["calibrate", str(tmp_path / "stationary.csv"), "-o", str(tmp_path / "cal2.csv")]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "cal2.csv"), table)
    assert set(table["class"]) == {"3D", "2D"} and (table["source"] == "calibrated").all()
    assert table.set_index("class").loc["3D", "ci_low_m"] <= 4.0 <= table.set_index("class").loc["3D", "ci_high_m"]
    sample = Path(__file__).resolve().parents[1] / "sample_tracks" / "lotek_SYNTHETIC_SL04_device47113.CSV"
    import telemetry

    out = telemetry.process(sample, error_model=ErrorModel.from_frame(table), states=False)
    em = out.attrs["error_model"]
    assert em["3D"]["source"] == "calibrated" and em["3D"]["uere_m"] == pytest.approx(table.set_index("class").loc["3D", "uere_m"])
    # bad calibration files: one line, exit 2
    (tmp_path / "bad.csv").write_text("class,uere_m\nGPS,4\n")
    assert main(["process", str(sample), "--out", str(tmp_path / "t.parquet"), "--calibration",
                 str(tmp_path / "bad.csv")]) == 2
    assert main(["process", str(sample), "--out", str(tmp_path / "t.parquet"), "--calibration",
                 str(tmp_path / "missing.csv")]) == 2
    # a table with an error no collar makes (made from fixes that moved, or edited): file, line, column, exit 2
    (tmp_path / "wide.csv").write_text("class,uere_m\n2D,20\n3D,2324\n")
    for cmd in ("process", "inspect"):
        out = ["--out", str(tmp_path / "t.parquet")] if cmd == "process" else []
        assert main([cmd, str(sample), *out, "--calibration", str(tmp_path / "wide.csv")]) == 2
    with pytest.raises(TelemetryError, match=r"wide.csv, line 3, column 'uere_m': 3D uere_m 2324 m is more than the 30 m"):
        ErrorModel.from_frame(pd.read_csv(tmp_path / "wide.csv"), str(tmp_path / "wide.csv"), most_m={"3D": 30.0})


def test_calibration_refuses_collars_that_moved(tmp_path) -> None:
    """A calibration from fixes that were not taken at one place (an animal's track, a collar
    carried between sites under one name) would tell the smoother that every fix of the class
    errs by kilometres; it is refused, naming the collar, unless the bound is loosened."""
    most = {"3D": 30.0, "2D": 90.0}
    fixes = stationary_collars(3, 200, {"3D": 5.0, "2D": 15.0}, 7)
    assert calibrate(fixes, most_m=most).uere_m["3D"] < 6.0  # stationary: accepted
    moved = fixes.copy()
    walk = moved["animal_id"] == "test-1"
    moved.loc[walk, "lon"] += np.linspace(0.0, 0.05, int(walk.sum()))  # ~4 km east over the test
    with pytest.raises(TelemetryError, match=r"3D fixes scatter .* test-1 \(") as err:
        calibrate(moved, most_m=most)
    assert "test-0" not in str(err.value) and "test-2" not in str(err.value)
    assert calibrate(moved, most_m=None).uere_m["3D"] > 100.0  # (no bound: the old behaviour)
    # the command: one line, exit 2, nothing written; --set loosens the bound
    from telemetry.cli.main import main

    t = pd.date_range("2024-01-01", periods=len(moved), freq="min", tz="UTC")
    pd.DataFrame({"timestamp": t.strftime("%Y-%m-%d %H:%M:%S"), "location-long": moved.lon,
                  "location-lat": moved.lat, "gps:hdop": moved.hdop,
                  "gps:fix-type-raw": moved.fix_type.map({"3D": "3", "2D": "2"}),
                  "individual-local-identifier": moved.animal_id, "tag-local-identifier": moved.animal_id,
                  }).to_csv(tmp_path / "moved.csv", index=False)
    out = tmp_path / "cal.csv"
    assert main(["calibrate", str(tmp_path / "moved.csv"), "-o", str(out)]) == 2 and not out.exists()
    assert main(["calibrate", str(tmp_path / "moved.csv"), "-o", str(out), "--set",
                 "smooth.error_max_factor=1000"]) == 0 and out.exists()
