"""Lotek parsers: Web Service CSV, GPS_3300 (download, text export, damaged header), Lifecycle.

Reference values are computed independently of the parser: Excel serials with
the standard library's ``datetime`` arithmetic, dates and coordinates read off
the fixture text (see tests/data/vendor/PROVENANCE.md).
"""

from __future__ import annotations

import gzip
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import telemetry
from telemetry.errors import ParseError, TelemetryError
from telemetry.parsers import lotek
from telemetry.parsers.detect import Head

from .conftest import rows_of, utc, write_rows
from .mutations import mutate

DATA = Path(__file__).parent / "data" / "vendor"
WEB = DATA / "lotek.CSV"
DOWNLOAD = DATA / "lotek_3300_download.csv"
TEXT = DATA / "lotek_3300_text.csv"
BROKEN = DATA / "lotek_3300_broken.csv"
LIFECYCLE = DATA / "lotek_lifecycle.csv"

FIXTURES = {
    WEB: "lotek-webservice",
    DOWNLOAD: "lotek-3300",
    TEXT: "lotek-3300-text",
    BROKEN: "lotek-3300-broken",
    LIFECYCLE: "lotek-lifecycle",
}
SNIFFERS = {
    "lotek-webservice": lotek.sniff_webservice,
    "lotek-3300": lotek.sniff_3300,
    "lotek-3300-text": lotek.sniff_3300_text,
    "lotek-3300-broken": lotek.sniff_3300_broken,
    "lotek-lifecycle": lotek.sniff_lifecycle,
}




# ---------------------------------------------------------------------------
# Web Service CSV (real sample from the R package collar)
# ---------------------------------------------------------------------------


def test_webservice_times_match_excel_serial_reference():
    df = telemetry.read(WEB)
    assert df.attrs["sources"][0]["format"] == "lotek-webservice"
    serials = [float(r[2]) for r in rows_of(WEB)[1:]]
    # independent reference: stdlib datetime, origin 1899-12-30, nearest second
    expected = [
        pd.Timestamp(datetime(1899, 12, 30, tzinfo=UTC) + timedelta(seconds=round(s * 86400)))
        for s in serials
    ]
    assert list(df["time"]) == expected
    assert df["time"].iloc[0] == utc(2018, 10, 1, 7, 0, 29)  # 43374.292
    assert df["time"].iloc[3] == utc(2018, 10, 1, 20, 0, 48)  # 43374.83389
    assert str(df["time"].dtype) == "datetime64[ns, UTC]"


def test_webservice_columns():
    df = telemetry.read(WEB)
    assert len(df) == 14
    assert list(df["source_row"]) == list(range(2, 16))
    first = df.iloc[0]
    assert (first["animal_id"], first["tag_id"]) == ("WHI-29", "43686")
    assert first["lat"] == pytest.approx(48.8839761) and first["lon"] == pytest.approx(-114.8124914)
    assert first["alt_m"] == pytest.approx(1481.51) and first["hdop"] == 2.0
    assert set(df["animal_id"]) == {"WHI-29", "WHI-07", "WHI-26", "WHI-12"}
    assert (df["fix_type"] == "3D").all()  # '3D-V Fix' and '3D Fix'
    assert df["flag"].isna().all()
    # vendor fix status and the local time are kept as extras, untouched
    assert df.loc[df["source_row"] == 13, "Fix Status"].item() == "3D Fix"
    assert "Date & Time [Local]" in df.columns and "Date & Time [GMT]" not in df.columns


def test_webservice_fix_status_variants_and_text_times(tmp_path):
    rows = rows_of(WEB)[:5]
    rows[1][7], rows[2][7], rows[3][7], rows[4][7] = "2D Fix", "Fix Failed", "2D-V Fix", "Bogus"
    rows[2][4] = rows[2][5] = ""
    for r, text in zip(rows[1:], ["2018-10-01 07:00:29", "2018-10-01 07:00:30", "2018-10-13 20:00:48",
                                  "2018-10-14 09:00:29"]):
        r[2] = text
    df = telemetry.read(write_rows(tmp_path / "ws.csv", rows))
    # an unrecognised status is 'unknown' (its own error class), never silently 2D
    assert list(df["fix_type"].astype(object).fillna("NA")) == ["2D", "none", "2D", "unknown"]
    assert list(df["flag"].astype(object).fillna("ok")) == ["ok", "no_fix", "ok", "ok"]
    assert df["time"].iloc[2] == utc(2018, 10, 13, 20, 0, 48)
    assert any("Bogus" in n for n in df.attrs["sources"][0]["notes"])


# ---------------------------------------------------------------------------
# GPS_3300 store-on-board download (synthetic)
# ---------------------------------------------------------------------------


def test_3300_download():
    df = telemetry.read(DOWNLOAD)
    assert df.attrs["sources"][0]["format"] == "lotek-3300"
    assert len(df) == 6 and list(df["source_row"]) == list(range(2, 8))
    assert df["time"].iloc[0] == utc(2018, 10, 1, 0, 0, 31)
    assert df["time"].iloc[4] == utc(2018, 10, 13, 12, 0, 40)  # dd.mm.yyyy: 13.10.2018
    assert list(df["fix_type"].astype(str)) == ["3D", "2D", "none", "3D", "3D", "2D"]
    assert (df["flag"] == "no_fix").sum() == 1 and df["flag"].iloc[2] == "no_fix"
    assert df["lat"].iloc[0] == pytest.approx(43.05012) and df["lon"].iloc[0] == pytest.approx(77.10234)
    assert list(df["n_sats"]) == [7, 3, 0, 8, 5, 3]
    assert df["hdop"].iloc[1] == pytest.approx(4.8) and df["alt_m"].iloc[3] == pytest.approx(3010.7)
    # vendor columns kept: navigation, validated, the unnamed satellite columns
    assert list(df["Navigation"])[:3] == ["3D", "2D", "No"] and "Validated" in df and "dbHz" in df
    assert "Date (LMT)" in df and "Date (GMT)" not in df
    assert (df["animal_id"] == "lotek_3300_download").all() and df["tag_id"].isna().all()


def test_3300_download_animal_id_option():
    df = telemetry.read(DOWNLOAD, animal_id="SL-07")
    assert (df["animal_id"] == "SL-07").all()


# ---------------------------------------------------------------------------
# GPS_3300 text export (synthetic)
# ---------------------------------------------------------------------------


def test_3300_text_export():
    df = telemetry.read(TEXT)
    assert df.attrs["sources"][0]["format"] == "lotek-3300-text"
    assert list(df["source_row"]) == list(range(4, 11))  # names, units, dashes rows skipped
    assert df["time"].iloc[0] == utc(2018, 10, 2, 0, 0, 12)
    assert df["time"].iloc[3] == utc(2018, 10, 13, 12, 0, 33)  # mm/dd/yyyy from the units row
    assert df["time"].iloc[5] == utc(2031, 7, 9, 3, 14, 2)  # collar clock jump kept as is
    assert list(df["fix_type"].astype(str)) == ["3D", "none", "none", "2D", "none", "3D", "3D"]
    assert list(df["Nav"]) == ["3D", "No", "1S", "2D", "No", "3D", "3D"]
    # N/A coordinates (2) and the 1S attempt are no-fix rows; kept, flagged
    assert (df["flag"] == "no_fix").sum() == 3
    assert df.loc[df["Nav"] == "No", "lat"].isna().all()
    assert (df.loc[df["Nav"] == "No", "hdop"] == 48.6).all()
    assert df["lat"].iloc[2] == pytest.approx(43.07311)


def test_3300_text_units_row_sets_day_first(tmp_path):
    rows = rows_of(TEXT)
    rows[1][1] = "dd/mm/yyyy"
    for r in rows[3:]:
        m, d, y = r[1].split("/")
        r[1] = f"{d}/{m}/{y}"
    df = telemetry.read(write_rows(tmp_path / "export.txt", rows))
    assert df["time"].iloc[0] == utc(2018, 10, 2, 0, 0, 12)  # 02/10/2018 read day first
    assert df["time"].iloc[3] == utc(2018, 10, 13, 12, 0, 33)


def test_3300_text_without_units_and_dashes(tmp_path):
    rows = rows_of(TEXT)
    df = telemetry.read(write_rows(tmp_path / "plain.csv", [rows[0]] + rows[3:]))
    assert df.attrs["sources"][0]["format"] == "lotek-3300-text"
    assert list(df["source_row"]) == list(range(2, 9))
    assert df["time"].iloc[3] == utc(2018, 10, 13, 12, 0, 33)


# ---------------------------------------------------------------------------
# GPS_3300 with a damaged two-row header (synthetic)
# ---------------------------------------------------------------------------


def test_3300_broken_header():
    df = telemetry.read(BROKEN)
    assert df.attrs["sources"][0]["format"] == "lotek-3300-broken"
    assert list(df["source_row"]) == [3, 4, 5, 6]
    assert list(df["time"]) == [utc(2018, 10, 3, 0, 0, 44), utc(2018, 10, 3, 4, 1, 2),
                                utc(2018, 10, 15, 8, 0, 29), utc(2018, 10, 15, 12, 0, 51)]
    assert df["lat"].iloc[2] == pytest.approx(43.09311) and df["lon"].iloc[2] == pytest.approx(77.23519)
    assert df["alt_m"].iloc[3] == pytest.approx(3270.0)
    assert (df["flag"] == "no_fix").sum() == 1 and pd.isna(df["lat"].iloc[1])
    # navigation found by its values, DOP and satellites by the 3300 column order
    assert list(df["fix_type"].astype(str)) == ["3D", "none", "2D", "3D"]
    assert list(df["hdop"]) == [2.2, 48.6, 5.4, 1.4] and list(df["n_sats"]) == [6, 0, 3, 9]
    # all 57 columns accounted for: 13 canonical + extras up to col_57
    assert "col_57" in df and "LMT" in df and "LMT time" in df


def test_3300_broken_header_labels_on_second_row_one_cell_datetime(tmp_path):
    rows = rows_of(BROKEN)
    head2 = [""] * 56
    head2[0], head2[1], head2[5], head2[6], head2[7] = "GMT", "LMT", "Lat", "Long", "Elev"
    data = []
    for r in rows[2:]:
        data.append([f"{r[0]} {r[1]}", f"{r[2]} {r[3]}"] + r[4:10] + [""] * 48)
    df = telemetry.read(write_rows(tmp_path / "odd.csv", [[""] * 56, head2] + data))
    assert df.attrs["sources"][0]["format"] == "lotek-3300-broken"
    assert df["time"].iloc[2] == utc(2018, 10, 15, 8, 0, 29)
    assert df["lat"].iloc[0] == pytest.approx(43.09001)
    # no navigation column to recognise: located fixes are 'unknown', never 2D
    assert list(df["fix_type"].astype(object).fillna("NA")) == ["unknown", "NA", "unknown", "unknown"]
    assert "no navigation column" in df.attrs["sources"][0]["notes"][0]


# ---------------------------------------------------------------------------
# Lifecycle / LiteTrack (synthetic)
# ---------------------------------------------------------------------------


def test_lifecycle_with_preamble():
    df = telemetry.read(LIFECYCLE)
    src = df.attrs["sources"][0]
    assert src["format"] == "lotek-lifecycle"
    assert "Product ID: 54321" in src["notes"]
    assert list(df["source_row"]) == list(range(6, 11))
    assert list(df["time"]) == [utc(2018, 10, 1, 7), utc(2018, 10, 1, 13), utc(2018, 10, 1, 19),
                                utc(2018, 10, 2, 1), utc(2018, 10, 13, 7)]
    assert (df["tag_id"] == "54321").all() and (df["animal_id"] == "54321").all()
    # the 0,0 fix is kept as a fix: cleaning, not parsing, flags zero coordinates
    zero = df.iloc[2]
    assert zero["lat"] == 0 and zero["lon"] == 0 and pd.isna(zero["flag"])
    assert df["flag"].isna().all()
    assert list(df["n_sats"]) == [8, 6, 0, 5, 9] and df["hdop"].iloc[0] == pytest.approx(1.8)
    assert list(df["Duration"]) == [45, 61, 180, 38, 52]


def test_lifecycle_without_preamble(tmp_path):
    lines = LIFECYCLE.read_text().splitlines()[4:]
    path = tmp_path / "LT_collar.csv"
    path.write_text("\n".join(lines) + "\n")
    df = telemetry.read(path)
    assert df.attrs["sources"][0]["format"] == "lotek-lifecycle"
    assert list(df["source_row"]) == list(range(2, 7))
    assert (df["animal_id"] == "LT_collar").all() and df["tag_id"].isna().all()
    assert df["time"].iloc[4] == utc(2018, 10, 13, 7)


# ---------------------------------------------------------------------------
# detection, compression, errors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("path,name", FIXTURES.items(), ids=[p.name for p in FIXTURES])
def test_detected_by_content_and_gz(path, name, tmp_path):
    plain = telemetry.read(path)
    assert plain.attrs["sources"][0]["format"] == name
    # a neutral name: detection must not rely on the file name
    neutral = tmp_path / "download.txt"
    shutil.copy(path, neutral)
    assert telemetry.read(neutral).attrs["sources"][0]["format"] == name
    gz = tmp_path / "download.txt.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    zipped = telemetry.read(gz)
    assert zipped.attrs["sources"][0]["format"] == name
    cols = ["time", "lon", "lat", "fix_type", "source_row", "flag"]
    pd.testing.assert_frame_equal(plain[cols], zipped[cols])


def test_each_sniffer_claims_only_its_layout():
    for path, name in FIXTURES.items():
        head = Head(path.read_text(encoding="utf-8").splitlines())
        claimed = {n for n, sniff in SNIFFERS.items() if sniff(head)}
        assert claimed == {name}, path.name


OTHER_HEADERS = [
    "event-id,visible,timestamp,location-long,location-lat,gps:hdop,sensor-type,individual-local-identifier",
    "device_id,UTC_datetime,UTC_date,UTC_time,datatype,satcount,U_bat_mV,hdop,Latitude,Longitude,Altitude_m",
    "collarserialnumber,date,numberfixes,battvoltage,mortality,latitude,longitude,hdop,numsats",
    "Acquisition Time,Acquisition Start Time,GPS Fix Time,GPS Fix Attempt,GPS Latitude,GPS Longitude",
    "No,CollarID,AnimalID,UTC_Date,UTC_Time,LMT_Date,LMT_Time,Latitude,Longitude,Height,DOP,FixType",
    "idposition,idcollar,acquisitiontime,scts,latitude,longitude,height,dop,idfixtype",
    "date,time,lat,lon,name",
    "GMT,Lat,Long,Note",
]


@pytest.mark.parametrize("header", OTHER_HEADERS)
def test_sniffers_ignore_other_vendors(header):
    body = ["2018-10-01,07:00:00,43.1,77.2,x"] * 3
    head = Head([header, *body])
    assert not any(sniff(head) for sniff in SNIFFERS.values())


@pytest.mark.parametrize("garbage", [[], [""], ["\x00\x01"], ['"unterminated,'], [",,,,"], ["Product Type:"]])
def test_sniffers_never_raise(garbage):
    head = Head(garbage)
    assert not any(sniff(head) for sniff in SNIFFERS.values())


@pytest.mark.parametrize(
    "path,column,fmt",
    [(WEB, "Latitude", None), (DOWNLOAD, "Longitude", None), (TEXT, "Longitude", None),
     (LIFECYCLE, "Longitude", None), (BROKEN, "Long", None), (DOWNLOAD, "Time (GMT)", "lotek-3300"),
     (WEB, "Date & Time [GMT]", "lotek-webservice")],
)
def test_missing_required_column_names_it(path, column, fmt, tmp_path):
    rows = rows_of(path)
    idx = next(k for r in rows for k, c in enumerate(r) if c == column)
    rows = [r[:idx] + r[idx + 1:] if len(r) > idx else r for r in rows]
    with pytest.raises(ParseError) as err:
        telemetry.read(write_rows(tmp_path / "cut.csv", rows), format=fmt)
    assert err.value.column == column
    assert f"column '{column}'" in str(err.value) and "cut.csv" in str(err.value)


def test_bad_cells_are_flagged_not_dropped(tmp_path):
    rows = rows_of(DOWNLOAD)
    rows[2][1] = "99.99.2018"  # impossible date
    rows[4][8] = "north"  # junk latitude
    df = telemetry.read(write_rows(tmp_path / "dirty.csv", rows))
    assert len(df) == 6
    assert df.loc[df["source_row"] == 3, "flag"].item() == "bad_time"
    assert df.loc[df["source_row"] == 5, "flag"].item() == "bad_value"


def test_malformed_row_kept(tmp_path):
    text = LIFECYCLE.read_text().splitlines()
    text.insert(7, "10/1/2018 9:00,43.1")
    path = tmp_path / "short.csv"
    path.write_text("\n".join(text) + "\n")
    df = telemetry.read(path)
    assert len(df) == 6 and df.loc[df["source_row"] == 8, "flag"].item() == "malformed_row"


# ---------------------------------------------------------------------------
# property-based robustness: only TelemetryError, never a traceback
# ---------------------------------------------------------------------------

JUNK = ["", "N/A", "-", "NaN", "abc", "1e999", "-0", "99/99/9999", "25:61:61", "\u00e9\u00e8", '"', "0x1F",
        "3D", "2000-01-01T00:00:00", "9" * 30, ";", "\t"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(sorted(FIXTURES)), kind=st.sampled_from(["truncate", "bytes", "shuffle", "junk"]),
       seed=st.integers(0, 2**32 - 1))
def test_mutated_fixtures_raise_only_telemetry_errors(path, kind, seed, tmp_path):
    target = tmp_path / f"m{seed}.csv"
    target.write_bytes(mutate(path.read_bytes(), kind, seed, JUNK))
    try:
        df = telemetry.read(target)
    except TelemetryError:
        return
    assert len(df) >= 0 and str(df["time"].dtype) == "datetime64[ns, UTC]"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from([WEB, DOWNLOAD, TEXT, LIFECYCLE]), seed=st.integers(0, 2**32 - 1))
def test_column_order_does_not_matter(path, seed, tmp_path):
    """Named-column layouts give the same fixes whatever the column order."""
    target = tmp_path / path.name  # same stem: the animal id falls back to it
    target.write_bytes(mutate(path.read_bytes(), "shuffle", seed, JUNK))
    got, want = telemetry.read(target), telemetry.read(path)
    cols = ["animal_id", "tag_id", "time", "lon", "lat", "alt_m", "hdop", "n_sats", "fix_type", "source_row", "flag"]
    for c in cols:
        a, b = got[c].astype(object).to_numpy(), want[c].astype(object).to_numpy()
        assert np.array_equal(pd.isna(a), pd.isna(b)) and (a[~pd.isna(a)] == b[~pd.isna(b)]).all(), c


def test_3300_single_broken_header_row():
    """One header row labelling only GMT Time, LMT Time, Lat, Long, Elev (m); collar id and GMT date unlabelled."""
    df = telemetry.read(DATA / "lotek_3300_single_header.csv")
    assert df.attrs["sources"][0]["format"] == "lotek-3300-broken"
    assert list(df["source_row"]) == [2, 3, 4, 5]
    assert list(df["time"]) == [utc(2018, 10, 3, 0, 0, 44), utc(2018, 10, 3, 4, 1, 2),
                                utc(2018, 10, 15, 8, 0, 29), utc(2018, 10, 15, 12, 0, 51)]
    assert set(df["tag_id"].astype(str)) == {"33452"} and set(df["animal_id"].astype(str)) == {"33452"}
    assert df["lat"].iloc[2] == pytest.approx(43.09311) and df["alt_m"].iloc[3] == pytest.approx(3270.0)
    assert (df["flag"] == "no_fix").sum() == 1 and pd.isna(df["lat"].iloc[1])  # N/A coordinates
    assert list(df["fix_type"].astype(str)) == ["3D", "none", "2D", "3D"]
    assert list(df["hdop"]) == [2.2, 48.6, 5.4, 1.4]
