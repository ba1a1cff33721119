"""ATS, Ornitela, GPX and generic CSV parsers (synthetic fixtures), plus a fuzz test over all of them."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import telemetry
from telemetry.errors import ParseError, TelemetryError

DATA = Path(__file__).parent / "data" / "vendor"
UTC = "UTC"


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=UTC)


def fix_types(df: pd.DataFrame) -> list:
    return [None if pd.isna(v) else v for v in df["fix_type"].astype(object)]


# --- ATS ---------------------------------------------------------------------------------

def test_ats_combined():
    df = telemetry.read(DATA / "ats.csv")
    src = df.attrs["sources"][0]
    assert src["format"] == "ats" and len(df) == 5
    assert df["source_row"].tolist() == [2, 3, 4, 5, 6]
    assert df["tag_id"].astype(str).tolist()[:2] == ["045123", "045123"]  # leading zero kept
    assert df["time"].iloc[0] == ts("2022-06-01 06:00:00")  # gmtoffset 0 → as written
    # gmtoffset -6, ATS sign convention UTC = date + gmtoffset h
    assert df["time"].iloc[3] == ts("2022-06-01 01:30:00")
    assert df["time"].iloc[4] == ts("2022-06-01 07:30:00")
    assert df["lat"].iloc[3] == pytest.approx(42.900001)
    assert df["lon"].iloc[3] == pytest.approx(76.950002)
    assert df["hdop"].iloc[0] == pytest.approx(1.2) and df["n_sats"].iloc[2] == 9
    # no fix-type column: inferred from the satellite count (all have >= 4)
    assert fix_types(df) == ["3D", "none", "3D", "3D", "3D"]
    assert "satellite count" in src["fix_type_rule"]
    assert (df["flag"] == "no_fix").sum() == 1
    assert "cepradius_km" in df.columns
    assert any("gmtoffset" in n for n in src["notes"])


def test_ats_positions_need_tz():
    with pytest.raises(ParseError, match="--tz"):
        telemetry.read(DATA / "ats_positions.csv")
    df = telemetry.read(DATA / "ats_positions.csv", tz="Asia/Almaty")  # UTC+5 since 2024, +6 in 2022
    assert df["time"].iloc[0] == ts("2022-06-01 00:00:00")  # day 152 of 2022 = 1 June
    assert fix_types(df) == ["3D", "2D", "none"]


# --- Ornitela ----------------------------------------------------------------------------

def test_ornitela_keeps_gps_rows_and_counts_sensor_rows():
    df = telemetry.read(DATA / "ornitela.csv")
    src = df.attrs["sources"][0]
    assert src["format"] == "ornitela"
    assert src["rows_read"] == 5 and len(df) == 3
    assert src["skipped"] == {"SENSORS": 2}
    assert df["source_row"].tolist() == [2, 4, 6]
    assert df["time"].tolist() == [ts("2023-04-10 00:00:12"), ts("2023-04-10 00:20:05"), ts("2023-04-10 01:00:03")]
    assert df["lat"].iloc[1] == pytest.approx(42.6022345)
    assert df["lon"].iloc[1] == pytest.approx(77.5022345)
    assert df["alt_m"].iloc[0] == 2450 and df["n_sats"].iloc[1] == 8
    assert fix_types(df) == ["3D", "3D", "none"]  # from the satellite count
    assert set(df["animal_id"].astype(str)) == {"201234"}


def test_ornitela_new_firmware():
    df = telemetry.read(DATA / "ornitela_new.csv")
    assert df.attrs["sources"][0]["format"] == "ornitela"
    assert set(df["animal_id"].astype(str)) == {"Aisulu"}
    assert set(df["tag_id"].astype(str)) == {"223344"}
    assert df["alt_m"].tolist() == [3080.0, 3092.0]  # MSL altitude preferred


# --- GPX ---------------------------------------------------------------------------------

def test_gpx_11():
    df = telemetry.read(DATA / "track11.gpx")
    src = df.attrs["sources"][0]
    assert src["format"] == "gpx" and len(df) == 4
    assert df["source_row"].tolist() == [3, 10, 17, 26]
    assert df["time"].iloc[1] == ts("2021-07-01 06:00:00")
    assert df["time"].iloc[2] == ts("2021-07-01 04:00:00.5")  # +06:00 offset converted
    assert df["lat"].iloc[1] == pytest.approx(42.712345) and df["lon"].iloc[1] == pytest.approx(77.812345)
    assert df["alt_m"].iloc[1] == pytest.approx(3105.5)
    assert df["hdop"].iloc[2] == pytest.approx(4.5) and df["n_sats"].iloc[2] == 4
    assert fix_types(df) == ["unknown", "3D", "2D", "none"]  # neither <fix> nor <sat>: unknown, not 2D
    assert set(df["animal_id"].astype(str)) == {"Irbis-F3"}
    assert df["kind"].tolist() == ["wpt", "trkpt", "trkpt", "trkpt"]
    assert df["segment"].tolist() == [-1, 0, 0, 1]


def test_gpx_10_naive_times_need_tz():
    with pytest.raises(ParseError, match="--tz"):
        telemetry.read(DATA / "track10.gpx")
    df = telemetry.read(DATA / "track10.gpx", tz="Asia/Bishkek")  # UTC+6
    assert df["time"].tolist() == [ts("2021-01-15 02:00"), ts("2021-01-15 06:00")]
    assert set(df["animal_id"].astype(str)) == {"track10"}
    assert df["source_row"].tolist() == [4, 5]


def test_gpx_malformed_xml_has_line(tmp_path):
    p = tmp_path / "bad.gpx"
    p.write_text('<?xml version="1.0"?>\n<gpx version="1.1">\n<trk><trkseg>\n<trkpt lat="1" lon="2"></trk>\n</gpx>\n')
    with pytest.raises(ParseError) as err:
        telemetry.read(p)
    assert err.value.line == 4 and "malformed XML" in str(err.value) and "column" in str(err.value)


def test_gpx_gz(tmp_path):
    p = tmp_path / "t.gpx.gz"
    p.write_bytes(gzip.compress((DATA / "track11.gpx").read_bytes()))
    df = telemetry.read(p)
    assert df.attrs["sources"][0]["format"] == "gpx" and len(df) == 4


# --- generic CSV -------------------------------------------------------------------------

def test_generic_guessed_iso_with_offsets():
    df = telemetry.read(DATA / "generic_iso.csv")
    src = df.attrs["sources"][0]
    assert src["format"] == "generic-csv"
    assert any("time=timestamp" in n and "lon=lon" in n for n in src["notes"])
    assert df["time"].iloc[1] == ts("2021-07-31 22:00:00")  # +06:00 → UTC
    assert df["flag"].iloc[2] == "bad_value" and len(df) == 4  # junk cell flagged, row kept
    assert df["n_sats"].tolist() == [7, 5, 8, 9]
    assert set(df["animal_id"].astype(str)) == {"Shyn"}


def test_generic_semicolon_decimal_comma_split_date():
    with pytest.raises(ParseError):  # no time column it can guess
        telemetry.read(DATA / "generic_semicolon.csv")
    cols = {"date": "Datum", "clock": "Uhrzeit", "animal": "Name"}
    with pytest.raises(ParseError, match="--tz"):
        telemetry.read(DATA / "generic_semicolon.csv", columns=cols)
    df = telemetry.read(DATA / "generic_semicolon.csv", columns=cols, tz="Asia/Bishkek")
    assert df.attrs["sources"][0]["format"] == "generic-csv"
    assert df["time"].iloc[0] == ts("2021-05-31 16:00:00")
    assert df["time"].iloc[2] == ts("2021-05-31 19:00:00")  # 01.06 01:00 local
    assert df["lat"].iloc[0] == pytest.approx(42.50123) and df["lon"].iloc[0] == pytest.approx(78.40123)
    assert df["alt_m"].iloc[0] == pytest.approx(3012.5)
    assert df["flag"].iloc[2] == "no_fix"
    assert df["source_row"].tolist() == [2, 3, 4]


def test_generic_mapping_and_missing_column():
    cols = {"time": "Zeit", "lon": "Ost", "lat": "Nord", "animal": "Tier"}
    df = telemetry.read(DATA / "generic_mapped.csv", columns=cols, tz="UTC")
    assert df["time"].tolist() == [ts("2021-09-01 06:00"), ts("2021-09-01 10:00")]
    assert df["lon"].tolist() == [80.01, 80.02]
    with pytest.raises(ParseError) as err:
        telemetry.read(DATA / "generic_mapped.csv", columns={**cols, "lon": "East"}, tz="UTC")
    assert err.value.column == "East" and err.value.line == 1 and "East" in str(err.value)
    with pytest.raises(TelemetryError, match="unknown --columns key"):
        telemetry.read(DATA / "generic_mapped.csv", columns={**cols, "speed": "Tier"}, tz="UTC")


def test_generic_xy_only_in_degree_range(tmp_path):
    p = tmp_path / "utm.csv"
    p.write_text("datetime,x,y\n2021-01-01T00:00:00Z,532895,4706710\n2021-01-01T01:00:00Z,532900,4706720\n")
    with pytest.raises(ParseError):
        telemetry.read(p)
    p.write_text("datetime,x,y\n2021-01-01T00:00:00Z,78.1,42.2\n2021-01-01T01:00:00Z,78.2,42.3\n")
    df = telemetry.read(p)
    assert df["lon"].tolist() == [78.1, 78.2]


def test_generic_day_first_dates(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("timestamp,longitude,latitude\n31.12.2020 23:00,78.1,42.2\n01.01.2021 03:00,78.2,42.3\n")
    df = telemetry.read(p, tz="UTC")
    assert df["time"].tolist() == [ts("2020-12-31 23:00"), ts("2021-01-01 03:00")]


def test_sniffers_do_not_claim_movebank(tmp_path):
    p = tmp_path / "mb.csv"
    p.write_text("event-id,timestamp,location-long,location-lat,individual-local-identifier\n"
                 "1,2021-01-01 00:00:00.000,78.1,42.2,A\n")
    assert telemetry.read(p).attrs["sources"][0]["format"] == "movebank"


# --- fuzz --------------------------------------------------------------------------------

FIXTURES = ["telonics.csv", "telonics_stripped.csv", "ats.csv", "ats_positions.csv", "ornitela.csv",
            "ornitela_new.csv", "track11.gpx", "track10.gpx", "generic_iso.csv", "generic_semicolon.csv"]
BLOBS = {name: (DATA / name).read_bytes() for name in FIXTURES}


def _shuffle_columns(data: bytes, seed: int) -> bytes:
    lines = data.decode("utf-8").split("\n")
    width = max(len(line.split(",")) for line in lines)
    order = np.random.default_rng(seed).permutation(width)
    out = []
    for line in lines:
        cells = line.split(",")
        if len(cells) == width:
            cells = [cells[i] for i in order]
        out.append(",".join(cells))
    return "\n".join(out).encode()


@st.composite
def mutated(draw):
    name = draw(st.sampled_from(FIXTURES))
    data = BLOBS[name]
    kind = draw(st.sampled_from(["truncate", "shuffle", "junk", "bytes", "utf16", "cp1252"]))
    if kind == "truncate":
        data = data[: draw(st.integers(0, len(data)))]
    elif kind == "shuffle" and not name.endswith(".gpx"):
        data = _shuffle_columns(data, draw(st.integers(0, 2**16)))
    elif kind == "junk":
        text = data.decode("utf-8")
        for _ in range(draw(st.integers(1, 5))):
            at = draw(st.integers(0, max(len(text) - 1, 0)))
            junk = draw(st.sampled_from(["x", ",", ";", '"', "\n", "NaN", "é", "<", "-1e999", ""]))
            text = text[:at] + junk + text[at + draw(st.integers(0, 8)):]
        data = text.encode("utf-8")
    elif kind == "bytes":
        for _ in range(draw(st.integers(1, 5))):
            at = draw(st.integers(0, max(len(data) - 1, 0)))
            data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at + 1:]
    elif kind == "utf16":
        data = data.decode("utf-8").replace("Latitude", "Latitüde").encode("utf-16")
    elif kind == "cp1252":
        data = data.decode("utf-8").replace("Tumar", "Tümar").encode("cp1252")
    return name, data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=mutated(), tz=st.sampled_from([None, "UTC"]))
def test_fuzz_only_telemetry_errors(tmp_path, case, tz):
    name, data = case
    p = tmp_path / name
    p.write_bytes(data)
    try:
        df = telemetry.read(p, tz=tz)
    except TelemetryError:
        return
    assert len(df) >= 0 and "source_row" in df


def test_a_cell_that_is_no_time_is_flagged_not_taken_for_a_local_time(tmp_path: Path):
    """Zoned times with one cell that is no time at all: read without --tz, that row flagged
    ``bad_time``. Naive times with such a cell: the --tz error names the first local time's line,
    not the cell that is no time (it named line 2, "not a time", as a local time)."""
    zoned = tmp_path / "zoned.csv"
    zoned.write_text("time,lon,lat,id\nnot a time,76,43,A\n2021-01-01T04:00:00Z,76,43,A\n"
                     "2021-01-01T08:00:00+06:00,76.01,43,A\n")
    df = telemetry.read(zoned)
    assert df["flag"].astype(object).tolist()[0] == "bad_time" and df["flag"].iloc[1:].isna().all()
    assert df["time"].iloc[2] == ts("2021-01-01 02:00:00")
    naive = tmp_path / "naive.csv"
    naive.write_text("time,lon,lat,id\nnot a time,76,43,A\n2021-01-01 04:00:00,76,43,A\n2021-01-01 08:00:00,76.01,43,A\n")
    with pytest.raises(ParseError, match="--tz") as e:
        telemetry.read(naive)
    assert "line 3" in str(e.value)


def test_a_bare_utc_or_gmt_column_is_the_time_in_utc(tmp_path: Path):
    """A time column called just ``UTC`` (or ``GMT``): the time itself, or the clock beside a
    ``Date`` column; naive times there are UTC (the name says so). It was "unknown layout"."""
    one = tmp_path / "one.csv"
    one.write_text("UTC,Animal,Latitude,Longitude\n2021-01-01 00:00:00,A,43.0,76.0\n2021-01-01 04:00:00,A,43.01,76.0\n")
    two = tmp_path / "two.csv"
    two.write_text("Date,GMT,Animal,Latitude,Longitude\n2021-01-01,00:00:00,A,43.0,76.0\n2021-01-01,04:00:00,A,43.01,76.0\n")
    for f in (one, two):
        df = telemetry.read(f)
        assert df["time"].tolist() == [ts("2021-01-01 00:00"), ts("2021-01-01 04:00")], f.name
        assert df["lat"].tolist() == [43.0, 43.01] and (df["animal_id"] == "A").all()
