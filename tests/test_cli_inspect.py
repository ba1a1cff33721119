"""`telemetry inspect` and the command line's error contract."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from telemetry.cli.main import main

from .conftest import DATA

MB = DATA / "movebank"


def run(args, capsys):
    code = main(list(map(str, args)))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_inspect_json_per_file_and_animal(capsys):
    code, out, _ = run(["inspect", MB / "bats_subset.csv", MB / "gulls_argos_subset.csv", "--json"], capsys)
    assert code == 0
    summary = json.loads(out)
    bats, gulls = summary["files"]
    assert bats["format"] == "movebank" and bats["rows_read"] == 300
    bat = bats["animals"][0]
    assert bat["median_interval_h"] == pytest.approx(30 / 3600, abs=2e-3)
    assert bat["first"].endswith("Z") and 0 < bat["fix_success_pct"] <= 100
    assert bat["hdop_median"] is not None
    assert gulls["animals"][0]["argos_lc"]  # Argos classes counted
    assert gulls["animals"][0]["fix_success_pct"] is None  # no schedule for Argos
    assert summary["totals"]["rows"] == 720


def test_inspect_table_names_format_and_skipped_files(capsys):
    code, out, _ = run(["inspect", DATA], capsys)
    assert code == 0
    assert "format: movebank" in out and "total:" in out


def test_fix_success_counts_failed_attempts(tmp_path, capsys):
    rows = ["timestamp,location-long,location-lat,individual-local-identifier,sensor-type"]
    for i in range(10):
        xy = ("", "") if i in (3, 4) else ("77.0", "43.0")
        rows.append(f"2021-01-01 {i:02d}:00:00.000,{xy[0]},{xy[1]},A,gps")
    # three attempts that were never written (06:00 -> 10:00 gap of 4 h)
    rows = rows[:8] + [r.replace(" 07:", " 10:").replace(" 08:", " 11:").replace(" 09:", " 12:") for r in rows[8:]]
    path = tmp_path / "a.csv"
    path.write_text("\n".join(rows) + "\n")
    code, out, _ = run(["inspect", path, "--json"], capsys)
    animal = json.loads(out)["files"][0]["animals"][0]
    assert animal["rows"] == 10 and animal["fixes"] == 8 and animal["no_fix_rows"] == 2
    assert animal["median_interval_h"] == 1.0
    assert animal["fix_success_pct"] == pytest.approx(100 * 8 / 13, abs=0.1)


@pytest.mark.parametrize(
    "content, expect",
    [
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        (b"name,colour\napple,red\n", "unknown layout"),
    ],
)
def test_bad_files_one_line_exit_2(tmp_path, capsys, content, expect):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    code, out, err = run(["inspect", path], capsys)
    assert code == 2
    line = err.strip()
    assert "\n" not in line and expect in line and "bad.csv" in line
    assert "Traceback" not in err


def test_a_header_without_fixes_is_no_fixes_not_an_unknown_layout(tmp_path, capsys):
    """A generic export of no fixes yet: inspect reads it (0 rows), process stops with one line
    naming the file and that it holds no fix, exit status 2."""
    path = tmp_path / "empty_export.csv"
    path.write_text("animal_id,timestamp,longitude,latitude\n")
    code, out, err = run(["inspect", path], capsys)
    assert code == 0 and "generic-csv" in out and "rows read: 0" in out
    code, out, err = run(["process", path, "--out", tmp_path / "t.parquet"], capsys)
    line = err.strip().splitlines()[-1]
    assert code == 2 and "no fixes" in line and "empty_export.csv" in line and "Traceback" not in err
    assert not (tmp_path / "t.parquet").exists()


def test_missing_file_and_bad_columns_option(capsys):
    code, _, err = run(["inspect", "/no/such/file.csv"], capsys)
    assert code == 2 and "no such file" in err
    code, _, err = run(["inspect", str(MB / "bats_subset.csv"), "--columns", "when"], capsys)
    assert code == 2 and "--columns" in err


def test_console_script_never_prints_a_traceback(tmp_path):
    bad = tmp_path / "x.csv"
    bad.write_text("a;b\n1;2\n")
    proc = subprocess.run([sys.executable, "-m", "telemetry", "inspect", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


def test_inspect_reports_the_location_error_process_uses(tmp_path, capsys):
    """Issue 14: the UERE used (estimated or calibrated, with its interval) is in `inspect` —
    the very model `process` records, not a second estimate that could disagree with it."""
    import pandas as pd

    import telemetry

    sample = DATA.parents[1] / "sample_tracks" / "lotek_SYNTHETIC_SL04_device47113.CSV"
    code, out, _ = run(["inspect", sample, "--json"], capsys)
    assert code == 0
    reported = json.loads(out)["location_error"]
    processed = telemetry.process(sample, states=False).attrs["error_model"]
    assert reported == json.loads(json.dumps(processed))  # (the JSON text: NaN intervals are null)
    assert reported["3D"]["source"] == "estimated" and reported["3D"]["ci_low_m"] < reported["3D"]["uere_m"]
    # the table says it in one line, as process does
    code, out, _ = run(["inspect", sample], capsys)
    assert f"3D {reported['3D']['uere_m']:g} m (95 % " in out
    # a calibration is taken as given and said so; the classes it lacks are still estimated
    cal = tmp_path / "cal.csv"
    pd.DataFrame({"class": ["3D"], "uere_m": [4.5], "ci_low_m": [4.2], "ci_high_m": [4.8], "source": ["calibrated"],
                  "n_fixes": [400]}).to_csv(cal, index=False)
    code, out, _ = run(["inspect", sample, "--calibration", cal, "--json"], capsys)
    em = json.loads(out)["location_error"]
    assert em["3D"]["uere_m"] == 4.5 and em["3D"]["source"] == "calibrated"
    assert em["2D"]["source"] == "estimated"
    code, _, err = run(["inspect", sample, "--calibration", tmp_path / "none.csv"], capsys)
    assert code == 2 and "none.csv" in err and "\n" not in err.strip()


def test_names_with_brackets_are_printed_as_written(tmp_path, capsys):
    """A file name, a column name ('Longitude [deg]') and an animal id ('[bold]A1') are text: the
    report prints them as written (the console took them for markup: 'Longitude ', 'A1')."""
    import pandas as pd

    t = pd.date_range("2024-03-01", periods=30, freq="4h", tz="UTC")
    path = tmp_path / "collars [v2].csv"
    pd.DataFrame({"id": "[bold]A1", "Date (UTC)": t.strftime("%Y-%m-%d"), "Time (UTC)": t.strftime("%H:%M:%S"),
                  "Latitude [deg]": 43.0, "Longitude [deg]": [77.0 + k / 1000 for k in range(30)]}).to_csv(path, index=False)
    code, out, _ = run(["inspect", path], capsys)
    assert code == 0
    assert "collars [v2].csv" in out and "lon=Longitude [deg], lat=Latitude [deg]" in out
    assert "[bold]A1" in out
    assert "read as UTC, as the column names say" in out
