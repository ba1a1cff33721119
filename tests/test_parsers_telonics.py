"""Telonics TDC condensed report: real fixture (collar package) and synthetic variants."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import telemetry
from telemetry.errors import ParseError

DATA = Path(__file__).parent / "data" / "vendor"
REAL = DATA / "telonics.csv"
STRIPPED = DATA / "telonics_stripped.csv"


def test_real_report_with_metadata_block():
    df = telemetry.read(REAL)
    src = df.attrs["sources"][0]
    assert src["format"] == "telonics-tdc"
    assert src["rows_read"] == 5 and len(df) == 5
    # header on line 24 ("Headers Row,24"), first data row on line 25
    assert df["source_row"].tolist() == [25, 26, 27, 28, 29]
    assert df["time"].iloc[0] == pd.Timestamp("2018-07-18 18:01:18", tz="UTC")
    assert df["time"].iloc[4] == pd.Timestamp("2018-07-19 08:00:54", tz="UTC")
    assert df["lat"].iloc[0] == pytest.approx(47.509673, abs=1e-9)
    assert df["lon"].iloc[0] == pytest.approx(-113.939043, abs=1e-9)
    assert df["lon"].iloc[3] == pytest.approx(-113.953151, abs=1e-9)
    # CTN from the metadata block
    assert set(df["tag_id"].astype(str)) == {"701520A"}
    assert set(df["animal_id"].astype(str)) == {"701520A"}
    # no DOP in Telonics data: hdop NA, horizontal error (m) kept as extra
    assert df["hdop"].isna().all()
    assert df["GPS Horizontal Error"].tolist() == [6.5, 7.5, 13.5, 43.5, 19.5]
    assert df["flag"].isna().all()


def test_metadata_stripped_failed_and_iridium_rows():
    df = telemetry.read(STRIPPED)
    assert df.attrs["sources"][0]["format"] == "telonics-tdc"
    assert len(df) == 6  # nothing dropped
    assert df["source_row"].tolist() == [2, 3, 4, 5, 6, 7]
    assert df["fix_type"].astype(object).where(df["fix_type"].notna(), None).tolist() == [
        "unknown", "none", "unknown", "none", "none", "unknown"]  # no fix type, no satellites
    assert (df["flag"] == "no_fix").sum() == 3
    # Resolved QFP is a real GPS solution
    assert df["lat"].iloc[2] == pytest.approx(42.513001)
    # Iridium-only row: no GPS position, Iridium kept as extras
    assert np.isnan(df["lon"].iloc[3])
    assert df["Iridium Latitude"].iloc[3] == pytest.approx(42.55)
    assert df["time"].iloc[3] == pd.Timestamp("2021-03-01 10:15:00", tz="UTC")
    # no CTN: animal id from the file name, or --animal-id
    assert set(df["animal_id"].astype(str)) == {"telonics_stripped"}
    df2 = telemetry.read(STRIPPED, animal_id="F1")
    assert set(df2["animal_id"].astype(str)) == {"F1"}
    assert any("Iridium-only" in n for n in df.attrs["sources"][0]["notes"])


def test_gzip(tmp_path):
    gz = tmp_path / "collar.csv.gz"
    with open(REAL, "rb") as f, gzip.open(gz, "wb") as g:
        shutil.copyfileobj(f, g)
    df = telemetry.read(gz)
    assert df.attrs["sources"][0]["format"] == "telonics-tdc"
    assert df["source_row"].tolist() == [25, 26, 27, 28, 29]


def test_headers_row_wrong_is_searched(tmp_path):
    text = REAL.read_text().replace("Headers Row,24", "Headers Row,20")
    p = tmp_path / "t.csv"
    p.write_text(text)
    df = telemetry.read(p)
    assert df["source_row"].tolist() == [25, 26, 27, 28, 29]


def test_banner_without_header_is_parse_error(tmp_path):
    lines = REAL.read_text().splitlines()
    p = tmp_path / "t.csv"
    p.write_text("\n".join(lines[:23]) + "\n")
    with pytest.raises(ParseError, match="column header"):
        telemetry.read(p)


def test_junk_time_cell_is_flagged_not_dropped(tmp_path):
    text = STRIPPED.read_text().replace("2021.03.01 16:00:52,2021.03.01 16:00:00", "garbage,2021.03.01 16:00:00")
    p = tmp_path / "t.csv"
    p.write_text(text)
    df = telemetry.read(p)
    assert len(df) == 6
    assert df["flag"].iloc[5] == "bad_time"
