"""Movebank CSV: real subsets and the real-world variants (quoting, line ends, sensors, archives)."""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import telemetry
from telemetry.errors import ParseError

from .conftest import DATA, assert_canonical_dtypes

MB = DATA / "movebank"

HEADER = ("event-id,visible,timestamp,location-long,location-lat,gps:hdop,gps:satellite-count,"
          "sensor-type,individual-local-identifier,tag-local-identifier")
ROWS = [
    "1,true,2021-03-01 00:00:00.000,77.1,43.1,1.2,7,gps,Irbis,T1",
    "2,true,2021-03-01 04:00:00.000,77.2,43.2,2.5,5,gps,Irbis,T1",
    "3,true,2021-03-01 04:05:00.000,,,,,acceleration,Irbis,T1",
    "4,true,2021-03-01 08:00:00.000,,,,,gps,Irbis,T1",
    "5,false,2021-03-01 12:00:00.000,77.3,43.3,9.9,3,gps,Irbis,T1",
]


def write(tmp_path: Path, text: str, name: str = "f.csv", newline: str = "\n") -> Path:
    path = tmp_path / name
    path.write_bytes(text.replace("\n", newline).encode())
    return path


def test_canonical_columns_and_dtypes():
    df = telemetry.read(MB / "bats_subset.csv")
    assert_canonical_dtypes(df)
    # vendor extras kept under their own names
    assert {"event-id", "ground-speed", "gps:maximum-signal-strength", "study-name"} <= set(df.columns)


def test_bats_values_and_line_numbers():
    df = telemetry.read(MB / "bats_subset.csv")
    assert len(df) == 300
    first = df.iloc[0]
    assert first["animal_id"] == "Bat4_3D6001852B980"
    assert first["tag_id"] == "48"
    assert first["time"] == pd.Timestamp("2017-08-08 20:24:01", tz="UTC")
    assert first["lon"] == pytest.approx(-7.047997) and first["lat"] == pytest.approx(41.338743)
    assert first["hdop"] == pytest.approx(1.02) and first["n_sats"] == 6
    assert first["alt_m"] == pytest.approx(464.0)
    assert df["source_row"].tolist() == list(range(2, 302))
    assert df["flag"].isna().all()
    assert df.attrs["sources"][0]["format"] == "movebank"


def test_argos_classes_visible_and_outlier_columns_kept():
    df = telemetry.read(MB / "gulls_argos_subset.csv")
    assert len(df) == 420
    assert (df["fix_type"] == "argos").all()
    assert set(df["argos_lc"].dropna().astype(str)) <= set("3210AB")
    assert df["argos_lc"].notna().all()
    # visible=false rows are kept (cleaning flags them), with the source columns for it
    assert (~df["visible"]).sum() >= 20
    assert "algorithm-marked-outlier" in df and "manually-marked-outlier" in df
    assert df["lat"].min() == pytest.approx(-15.884)


def test_reference_data_is_recognised_not_fixes(tmp_path):
    df = telemetry.read([MB / "gulls_reference_data.csv", MB / "gulls_gps_subset.csv"])
    formats = [r["format"] for r in df.attrs["sources"]]
    assert formats == ["movebank-reference", "movebank"]
    assert len(df) == 200


def test_gzip_and_exact_duplicates_kept():
    df = telemetry.read(MB / "buffalo_subset.csv.gz")
    assert len(df) == 200
    dup = df.duplicated(["animal_id", "time", "lon", "lat"], keep=False)
    assert dup.sum() >= 2  # exact duplicate fixes stay rows; cleaning flags them
    assert "study-local-timestamp" in df and "utm-easting" in df


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_line_endings(tmp_path, newline):
    path = write(tmp_path, HEADER + "\n" + "\n".join(ROWS) + "\n", newline=newline)
    df = telemetry.read(path)
    assert len(df) == 4  # acceleration row counted, not kept
    assert df["source_row"].tolist() == [2, 3, 5, 6]
    assert df.attrs["sources"][0]["skipped"] == {"acceleration": 1}


def test_all_quoted_fields(tmp_path):
    quoted = "\n".join(",".join(f'"{c}"' for c in line.split(",")) for line in [HEADER, *ROWS])
    df = telemetry.read(write(tmp_path, quoted + "\n"))
    assert len(df) == 4
    assert df["lon"].iloc[0] == pytest.approx(77.1)
    assert df["time"].iloc[1] == pd.Timestamp("2021-03-01 04:00", tz="UTC")


def test_no_fix_rows_kept_and_flagged(tmp_path):
    df = telemetry.read(write(tmp_path, HEADER + "\n" + "\n".join(ROWS) + "\n"))
    no_fix = df[df["flag"] == "no_fix"]
    assert no_fix["source_row"].tolist() == [5]
    assert df.loc[df["source_row"] == 6, "visible"].item() is False or not df.loc[df["source_row"] == 6, "visible"].item()


def test_date_only_timestamps(tmp_path):
    text = "timestamp,location-long,location-lat,argos:lc,individual-local-identifier\n" \
           "2008-11-07,-70.1,42.1,A,g1\n2008-11-08,-70.2,42.2,B,g1\n"
    df = telemetry.read(write(tmp_path, text))
    assert df["time"].tolist() == [pd.Timestamp("2008-11-07", tz="UTC"), pd.Timestamp("2008-11-08", tz="UTC")]
    assert df["argos_lc"].astype(str).tolist() == ["A", "B"]


def test_r_style_names_and_semicolons(tmp_path):
    text = "individual_local_identifier;timestamp;location_long;location_lat\nA;2020-01-01 00:00:00;10,5;50,25\n"
    df = telemetry.read(write(tmp_path, text))
    assert df["lon"].item() == pytest.approx(10.5) and df["lat"].item() == pytest.approx(50.25)


def test_bad_rows_kept_with_reason(tmp_path):
    rows = ROWS[:2] + [
        "6,true,not-a-date,77.4,43.4,1,5,gps,Irbis,T1",
        "7,true,2021-03-02 00:00:00.000,east,43.4,1,5,gps,Irbis,T1",
        "8,true,2021-03-02 04:00:00.000,77.5",  # too few fields
        "",  # blank line
        "9,true,2021-03-02 08:00:00.000,77.6,43.6,1,5,gps,Irbis,T1",
    ]
    df = telemetry.read(write(tmp_path, HEADER + "\n" + "\n".join(rows) + "\n"))
    by_line = dict(zip(df["source_row"], df["flag"].astype(object)))
    assert by_line[4] == "bad_time"
    assert by_line[5] == "bad_value"
    assert by_line[6] == "malformed_row"
    assert pd.isna(by_line[8]) and pd.isna(by_line[2])
    assert len(df) == 6  # every data line accounted for
    assert_canonical_dtypes(df)


def test_file_with_malformed_lines_reads_like_one_without(tmp_path):
    # the malformed_row rows take the file's dtypes: ids stay categorical, integer and
    # boolean extras become nullable, and the file joins other files (it used to fall
    # back to object ids and fail there)
    clean = telemetry.read(write(tmp_path, HEADER + "\n" + "\n".join(ROWS) + "\n", "clean.csv"))
    bad_rows = ROWS[:2] + ["8,true,2021-03-02 04:00:00.000,77.5"] + ROWS[2:4] + [ROWS[4] + ",extra,fields"]
    other = [r.replace("Irbis", "Barys").replace("T1", "T2") for r in ROWS]
    bad = write(tmp_path, HEADER + "\n" + "\n".join(bad_rows) + "\n", "bad.csv")
    df = telemetry.read(bad)
    assert_canonical_dtypes(df)
    malformed = (df["flag"] == "malformed_row").to_numpy()
    assert df.loc[malformed, "source_row"].tolist() == [4, 7] and len(df) == len(clean) + 1  # row 5 turned malformed
    for name in ("animal_id", "tag_id"):
        assert df[name].dtype == clean[name].dtype, name
    assert isinstance(df["sensor-type"].dtype, pd.CategoricalDtype)
    assert df["event-id"].dtype == "Int64" and df["visible"].dtype == "boolean"
    assert df["event-id"].isna().tolist() == malformed.tolist()
    assert df.loc[~malformed, "event-id"].tolist() == [1, 2, 4]
    both = telemetry.read([bad, write(tmp_path, HEADER + "\n" + "\n".join(other) + "\n", "other.csv")])
    assert_canonical_dtypes(both)
    assert len(both) == len(df) + len(clean)
    assert both["animal_id"].value_counts().to_dict() == {"Irbis": 3, "Barys": len(clean)}
    tracks = telemetry.process(both)
    assert len(tracks) == len(both)


def test_zip_package_reads_every_csv_member(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.write(MB / "gulls_gps_subset.csv", "study/gulls-gps.csv")
        z.write(MB / "gulls_reference_data.csv", "study/gulls-reference-data.csv")
        z.writestr("study/README.txt", "This data file is published by the Movebank Data Repository.\n")
    path = tmp_path / "package.zip"
    path.write_bytes(buf.getvalue())
    df = telemetry.read(path)
    assert len(df) == 200
    assert df["source"].iloc[0].endswith("package.zip::study/gulls-gps.csv")


def test_gz_by_content_not_name(tmp_path):
    path = tmp_path / "fixes.data"
    path.write_bytes(gzip.compress((MB / "bats_subset.csv").read_bytes()))
    assert len(telemetry.read(path)) == 300


def test_missing_coordinate_column_is_an_error(tmp_path):
    text = "timestamp,location-long,individual-local-identifier,sensor-type\n2020-01-01,1,a,gps\n"
    with pytest.raises(ParseError) as err:
        telemetry.read(write(tmp_path, text))
    assert "location-lat" in str(err.value) and "f.csv" in str(err.value)


def test_mostly_unparseable_dates_is_an_error_naming_line_and_column(tmp_path):
    rows = "\n".join(f"{i},true,31/12/20 x{i},1,2,gps,a" for i in range(5))
    text = "event-id,visible,timestamp,location-long,location-lat,sensor-type,individual-local-identifier\n" + rows
    with pytest.raises(ParseError) as err:
        telemetry.read(write(tmp_path, text))
    msg = str(err.value)
    assert "line 2" in msg and "'timestamp'" in msg and "\n" not in msg


def test_utf16_and_cp1252(tmp_path):
    text = HEADER + "\n" + ROWS[0].replace("Irbis", "Barsé") + "\n"
    p16 = tmp_path / "u16.csv"
    p16.write_bytes(text.encode("utf-16"))
    p1252 = tmp_path / "cp.csv"
    p1252.write_bytes(text.encode("cp1252"))
    for p in (p16, p1252):
        df = telemetry.read(p)
        assert df["animal_id"].item() == "Barsé"


def test_all_real_movebank_files_read(tmp_path):
    from .conftest import SHARED

    if not SHARED.exists():
        pytest.skip("no reference data")
    df = telemetry.read(SHARED / "real")
    counts = {r["source"]: r.get("rows_kept") for r in df.attrs["sources"]}
    assert sum(v for v in counts.values() if v) == 9873 + 13094 + 11787 + 28410
    assert np.isfinite(df["lon"]).all()


def test_reading_does_not_load_the_analysis_stack():
    # telemetry.read asks every input whether it is a dataset folder; that check once
    # imported telemetry.trajectory (numba, scipy, geopandas): +0.9 s and +1x the file in
    # peak memory on the first read of a fresh process
    import subprocess
    import sys

    code = ("import sys, telemetry; telemetry.read(sys.argv[1]); "
            "print(sorted(m for m in ('numba', 'scipy', 'geopandas', 'telemetry.trajectory') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(MB / "bats_subset.csv")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_fix_type_from_satellites_or_unknown_never_2d(tmp_path) -> None:
    """Issue 13: a file without gps:fix-type gets its fix types from the satellite count, and with
    neither they are 'unknown' (their own error class), never silently 2D; the rule is reported."""
    import telemetry

    rows = ["timestamp,location-long,location-lat,gps:satellite-count,individual-local-identifier",
            "2024-01-01 00:00:00,10.0,50.0,3,a", "2024-01-01 01:00:00,10.1,50.0,7,a",
            "2024-01-01 02:00:00,,,0,a", "2024-01-01 03:00:00,10.2,50.0,,a"]
    (tmp_path / "sats.csv").write_text("\n".join(rows) + "\n")
    f = telemetry.read(tmp_path / "sats.csv")
    assert f["fix_type"].astype(object).tolist()[:2] == ["2D", "3D"]
    assert f["fix_type"].astype(object).tolist()[3] == "unknown" and pd.isna(f["fix_type"].iloc[2])
    assert "2 from the satellite count" in f.attrs["sources"][0]["fix_type_rule"]
    (tmp_path / "none.csv").write_text("timestamp,location-long,location-lat,individual-local-identifier\n"
                                       "2024-01-01 00:00:00,10.0,50.0,a\n2024-01-01 01:00:00,10.1,50.0,a\n")
    g = telemetry.read(tmp_path / "none.csv")
    assert (g["fix_type"] == "unknown").all()
    assert g.attrs["sources"][0]["fix_type_rule"] == "fix type: 2 unknown (neither given)"
    # the real bats (gps:satellite-count, no fix type): mostly 3D, a few 2D
    bats = telemetry.read(MB / "bats_subset.csv")
    assert set(bats["fix_type"].dropna().astype(str)) <= {"3D", "2D"} and (bats["fix_type"] == "3D").mean() > 0.9
    from telemetry.trajectory.smooth import measurement_sigma_m

    # unknown fixes take their own default (20 m), not the 2D one (30 m)
    assert measurement_sigma_m(g.assign(hdop=1.0)).tolist() == [20.0, 20.0]


def test_date_only_timestamps_are_not_duplicates(tmp_path) -> None:
    import telemetry

    lines = ["event-id,timestamp,location-long,location-lat,argos:lc,individual-local-identifier"]
    for d in range(5):
        for k in range(4):  # four Argos fixes a day, moving east, dated only
            lines.append(f"{d * 4 + k},2019-05-{d + 1:02d},{10 + 0.05 * (d * 4 + k)},50.0,2,turtle")
    (tmp_path / "dates.csv").write_text("\n".join(lines) + "\n")
    f = telemetry.read(tmp_path / "dates.csv")
    assert (f["time_resolution_s"] == 86400).all()
    assert any("dates only" in n for n in f.attrs["sources"][0]["notes"])
    t = telemetry.process(f, species="marine_turtle", smooth=False, states=False)
    assert t["flag"].isna().all()  # neither duplicates nor impossible speeds
    assert t["event-id"].tolist() == list(range(20))  # the file's order within each day
