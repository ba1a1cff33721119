"""Vectronic parsers: GPS Plus X data table and Web Service / Inventa API positions.

Reference times are computed with the standard library from the fixture text.
"""

from __future__ import annotations

import gzip
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import telemetry
from telemetry.errors import ParseError, TelemetryError
from telemetry.parsers import lotek, vectronic
from telemetry.parsers.detect import Head

from .conftest import rows_of, utc, write_rows
from .mutations import mutate

DATA = Path(__file__).parent / "data" / "vendor"
GPX = DATA / "vectronics.csv"
API = DATA / "vectronic_api.csv"
FIXTURES = {GPX: "vectronic-gpsplusx", API: "vectronic-api"}
SNIFFERS = {
    "vectronic-gpsplusx": vectronic.sniff_gpsplusx,
    "vectronic-api": vectronic.sniff_api,
    # the Lotek sniffers run first in name order; they must leave Vectronic alone
    "lotek-webservice": lotek.sniff_webservice,
    "lotek-3300": lotek.sniff_3300,
    "lotek-3300-text": lotek.sniff_3300_text,
    "lotek-3300-broken": lotek.sniff_3300_broken,
    "lotek-lifecycle": lotek.sniff_lifecycle,
}




# ---------------------------------------------------------------------------
# GPS Plus X (real sample from the R package collar)
# ---------------------------------------------------------------------------


def test_gpsplusx_sample():
    df = telemetry.read(GPX)
    assert df.attrs["sources"][0]["format"] == "vectronic-gpsplusx"
    rows = rows_of(GPX)[1:]
    assert len(df) == len(rows) == 21
    expected = [pd.Timestamp(datetime.strptime(f"{r[3]} {r[4]}", "%m/%d/%Y %H:%M:%S").replace(tzinfo=UTC))
                for r in rows]
    assert list(df["time"]) == expected  # UTC columns, never LMT
    assert df["time"].iloc[0] == utc(2018, 1, 29, 6, 1, 2)
    # newest first in the file, and kept in file order
    assert df["time"].is_monotonic_decreasing and list(df["source_row"]) == list(range(2, 23))
    assert (df["animal_id"] == "17989").all() and (df["tag_id"] == "17989").all()  # AnimalID N/A
    assert df["lat"].iloc[0] == pytest.approx(47.2628) and df["lon"].iloc[0] == pytest.approx(-115.80881)
    assert df["alt_m"].iloc[0] == 1128 and df["hdop"].iloc[1] == pytest.approx(1.4)
    assert (df["fix_type"] == "3D").all() and df["flag"].isna().all()
    assert df.loc[df["source_row"] == 11, "FixType"].item() == "GPS-3D"  # original kept
    assert "LMT_Time" in df and "UTC_Time" not in df


def test_gpsplusx_variants(tmp_path):
    rows = rows_of(GPX)[:7]
    rows[1][2] = "Irbis"  # animal name on one row; the others fall back to CollarID
    rows[2][14] = "GPS-2D"
    rows[3][14], rows[3][10], rows[3][11] = "No Fix", "", ""
    rows[4][14] = "GPS-1 Sat"
    rows[5][14] = "val. GPS-2D"
    rows[6][14] = "Argos-A"
    df = telemetry.read(write_rows(tmp_path / "gpsplusx.csv", rows))
    assert list(df["animal_id"].astype(str)) == ["Irbis"] + ["17989"] * 5
    assert list(df["fix_type"].astype(object).fillna("NA")) == ["3D", "2D", "none", "none", "2D", "unknown"]
    assert list(df["flag"].astype(object).fillna("ok")) == ["ok", "ok", "no_fix", "no_fix", "ok", "ok"]
    assert any("Argos-A" in n for n in df.attrs["sources"][0]["notes"])


def test_gpsplusx_day_first_locale(tmp_path):
    rows = rows_of(GPX)
    for r in rows[1:]:
        for k in (3, 5, 8):
            m, d, y = r[k].split("/")
            r[k] = f"{int(d):02d}.{int(m):02d}.{y}"
    df = telemetry.read(write_rows(tmp_path / "de.csv", rows))
    assert df["time"].iloc[0] == utc(2018, 1, 29, 6, 1, 2)
    assert df["time"].iloc[20] == utc(2018, 1, 15, 4, 1, 1)


# ---------------------------------------------------------------------------
# Web Service / Inventa API positions (synthetic)
# ---------------------------------------------------------------------------


def test_api_positions():
    df = telemetry.read(API)
    src = df.attrs["sources"][0]
    assert src["format"] == "vectronic-api"
    assert len(df) == 7 and list(df["source_row"]) == list(range(2, 9))
    assert df["time"].iloc[0] == utc(2023, 3, 1, 0, 0, 43)
    assert df["time"].iloc[6] == utc(2023, 3, 2, 0, 0, 36)
    # placeholder 2000-01-01 times of failed attempts: NaT, no_fix, original kept
    placeholder = df["idfixtype"] == 0
    assert placeholder.sum() == 2 and df.loc[placeholder, "time"].isna().all()
    assert (df.loc[placeholder, "acquisitiontime"] == "2000-01-01T00:00:00").all()
    assert (df.loc[placeholder, "flag"] == "no_fix").all()
    assert any("placeholder" in n for n in src["notes"])
    # codes 14/13 → 3D, 12 → 2D, 11 (2 satellites) and 0 → none
    assert list(df["fix_type"].astype(str)) == ["3D", "3D", "none", "2D", "none", "none", "3D"]
    assert (df["flag"] == "no_fix").sum() == 3
    assert (df["tag_id"] == "45321").all() and (df["animal_id"] == "45321").all()
    assert df["lat"].iloc[3] == pytest.approx(42.95533) and df["hdop"].iloc[3] == pytest.approx(5.8)
    assert list(df["n_sats"]) == [9, 6, 0, 3, 2, 0, 10]
    assert df["alt_m"].iloc[0] == pytest.approx(3050.0)
    assert "scts" in df and "idposition" in df


def test_api_argos_codes_and_zone_suffix(tmp_path):
    rows = rows_of(API)[:5]
    header = rows[0]
    fix, dop, sats, t = (header.index(c) for c in ("idfixtype", "dop", "satcount", "acquisitiontime"))
    rows[1][fix], rows[1][dop], rows[1][sats] = "7", "NA", "NA"  # Argos class 3
    rows[2][fix], rows[2][t] = "1", "2023-03-01T05:00:00Z"  # Argos Z, placeholder fields NA
    rows[2][header.index("latitude")], rows[2][header.index("longitude")] = "42.9", "79.4"
    rows[2][dop] = rows[2][sats] = "NA"
    # rows[3] is a failed attempt (code 0, placeholder time)
    rows[4][fix] = "4"  # coded '4' but with DOP and satellites: GPS 3D in the other reading
    rows[4][t] = "2023-03-01T12:00:31+06:00"
    df = telemetry.read(write_rows(tmp_path / "api.csv", rows))
    assert list(df["fix_type"].astype(str)) == ["argos", "argos", "none", "3D"]
    assert list(df["argos_lc"].astype(object).fillna("NA")) == ["3", "Z", "NA", "NA"]
    assert df["time"].iloc[1] == utc(2023, 3, 1, 5, 0, 0)
    assert df["time"].iloc[3] == utc(2023, 3, 1, 6, 0, 31)  # +06:00 converted to UTC
    assert any("read as GPS" in n for n in df.attrs["sources"][0]["notes"])


# ---------------------------------------------------------------------------
# detection, compression, errors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("path,name", FIXTURES.items(), ids=[p.name for p in FIXTURES])
def test_detected_by_content_and_gz(path, name, tmp_path):
    plain = telemetry.read(path)
    neutral = tmp_path / "export.dat"
    shutil.copy(path, neutral)
    assert telemetry.read(neutral).attrs["sources"][0]["format"] == name
    gz = tmp_path / "export.csv.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    zipped = telemetry.read(gz)
    assert zipped.attrs["sources"][0]["format"] == name
    cols = ["time", "lon", "lat", "fix_type", "source_row", "flag"]
    pd.testing.assert_frame_equal(plain[cols], zipped[cols])


def test_each_sniffer_claims_only_its_layout():
    for path, name in FIXTURES.items():
        head = Head(path.read_text(encoding="utf-8").splitlines())
        assert {n for n, sniff in SNIFFERS.items() if sniff(head)} == {name}, path.name


@pytest.mark.parametrize("header", [
    "event-id,visible,timestamp,location-long,location-lat,gps:hdop,individual-local-identifier",
    "device_id,UTC_datetime,UTC_date,UTC_time,datatype,satcount,hdop,Latitude,Longitude,Altitude_m",
    "collarserialnumber,date,numberfixes,latitude,longitude,hdop,numsats",
    "Device Name,Device ID,Date & Time [GMT],Date & Time [Local],Latitude,Longitude,Fix Status,DOP",
    "Acquisition Time,GPS Fix Time,GPS Fix Attempt,GPS Latitude,GPS Longitude",
])
def test_sniffers_ignore_other_vendors(header):
    head = Head([header, "2018-10-01,07:00:00,43.1,77.2,x"])
    assert not vectronic.sniff_gpsplusx(head) and not vectronic.sniff_api(head)


@pytest.mark.parametrize("garbage", [[], [""], ["\x00"], ['"a,'], [",,,"], ["idcollar"]])
def test_sniffers_never_raise(garbage):
    head = Head(garbage)
    assert not vectronic.sniff_gpsplusx(head) and not vectronic.sniff_api(head)


@pytest.mark.parametrize("path,column,fmt", [
    (GPX, "Longitude", None), (GPX, "UTC_Time", "vectronic-gpsplusx"), (API, "latitude", None),
    (API, "acquisitiontime", "vectronic-api"), (GPX, "CollarID", "vectronic-gpsplusx"),
])
def test_missing_required_column_names_it(path, column, fmt, tmp_path):
    rows = rows_of(path)
    idx = rows[0].index(column)
    rows = [r[:idx] + r[idx + 1:] for r in rows]
    with pytest.raises(ParseError) as err:
        telemetry.read(write_rows(tmp_path / "cut.csv", rows), format=fmt)
    assert err.value.column == column and f"column '{column}'" in str(err.value)


def test_bad_rows_flagged_not_dropped(tmp_path):
    rows = rows_of(GPX)
    rows[3][3] = "13/45/2018"
    rows[5][10] = "forty-seven"
    df = telemetry.read(write_rows(tmp_path / "dirty.csv", rows))
    assert len(df) == 21
    assert df.loc[df["source_row"] == 4, "flag"].item() == "bad_time"
    assert df.loc[df["source_row"] == 6, "flag"].item() == "bad_value"


# ---------------------------------------------------------------------------
# property-based robustness
# ---------------------------------------------------------------------------

JUNK = ["", "N/A", "NA", "-", "x", "1e400", "2000-01-01T00:00:00", "99", "-1", "0", "14", "val. GPS-3D",
        "\u00fc", '"', "12:99:99", "2/30/2018"]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(sorted(FIXTURES)), kind=st.sampled_from(["truncate", "bytes", "shuffle", "junk"]),
       seed=st.integers(0, 2**32 - 1))
def test_mutated_fixtures_raise_only_telemetry_errors(path, kind, seed, tmp_path):
    target = tmp_path / f"m{seed}.csv"
    target.write_bytes(mutate(path.read_bytes(), kind, seed, JUNK))
    try:
        df = telemetry.read(target)
    except TelemetryError:
        return
    assert str(df["time"].dtype) == "datetime64[ns, UTC]"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(sorted(FIXTURES)), seed=st.integers(0, 2**32 - 1))
def test_column_order_does_not_matter(path, seed, tmp_path):
    target = tmp_path / path.name
    target.write_bytes(mutate(path.read_bytes(), "shuffle", seed, JUNK))
    got, want = telemetry.read(target), telemetry.read(path)
    for c in ["animal_id", "tag_id", "time", "lon", "lat", "alt_m", "hdop", "n_sats", "fix_type", "source_row", "flag"]:
        a, b = got[c].astype(object).to_numpy(), want[c].astype(object).to_numpy()
        assert np.array_equal(pd.isna(a), pd.isna(b)) and (a[~pd.isna(a)] == b[~pd.isna(b)]).all(), c
