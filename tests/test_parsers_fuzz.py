"""Property tests: whatever bytes arrive, the reader raises only its own error type."""

from __future__ import annotations

import codecs
import os
import random

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import telemetry
from telemetry.errors import TelemetryError
from telemetry.schema import NULL_VALUES

from .conftest import DATA, assert_canonical_dtypes

SEEDS = [
    (DATA / "movebank" / "bats_subset.csv").read_bytes()[:6000],
    (DATA / "movebank" / "gulls_argos_subset.csv").read_bytes()[:6000],
]
CLEAN = DATA / "movebank" / "bats_subset.csv"
CLEAN_ROWS = len(telemetry.read(CLEAN))
# FUZZ_EXAMPLES=1500 to hunt locally: 60 per CI run found the "-" null marker only on one machine
SETTINGS = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "60")), deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def read_only_telemetry_errors(tmp_path, content: bytes) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_bytes(content)
    try:
        df = telemetry.read(path)
    except TelemetryError as err:
        assert "\n" not in str(err)
        return
    # nothing lost: every line after the header is a row, a skipped sensor row, or blank
    report = df.attrs["sources"][0]
    assert report["rows_kept"] == len(df)
    # canonical dtypes whatever was dropped or malformed, so the file joins any other file
    assert_canonical_dtypes(df)
    both = telemetry.read([path, CLEAN])
    assert_canonical_dtypes(both)
    assert len(both) == len(df) + CLEAN_ROWS


@SETTINGS
@given(content=st.binary(max_size=3000))
def test_random_bytes(tmp_path, content):
    read_only_telemetry_errors(tmp_path, content)


@SETTINGS
@given(seed=st.sampled_from(SEEDS), cut=st.integers(0, 6000))
def test_truncated(tmp_path, seed, cut):
    read_only_telemetry_errors(tmp_path, seed[:cut])


@SETTINGS
@given(seed=st.sampled_from(SEEDS), rnd=st.randoms(use_true_random=False))
def test_shuffled_columns(tmp_path, seed, rnd: random.Random):
    lines = seed.decode().splitlines()[:-1]
    rows = [line.split(",") for line in lines]
    width = len(rows[0])
    order = list(range(width))
    rnd.shuffle(order)
    out = [",".join(r[i] if i < len(r) else "" for i in order) for r in rows]
    read_only_telemetry_errors(tmp_path, ("\n".join(out) + "\n").encode())


@SETTINGS
@given(seed=st.sampled_from(SEEDS), junk=st.lists(st.tuples(st.integers(0, 6000), st.binary(min_size=1, max_size=8)),
                                                  max_size=20))
def test_junk_cells(tmp_path, seed, junk):
    data = bytearray(seed)
    for pos, blob in junk:
        data[pos:pos + len(blob)] = blob
    read_only_telemetry_errors(tmp_path, bytes(data))


@SETTINGS
@given(seed=st.sampled_from(SEEDS), encoding=st.sampled_from(["utf-16", "utf-16-le", "utf-16-be", "cp1252", "latin-1",
                                                              "utf-8-sig", "utf-32"]))
def test_wrong_encodings(tmp_path, seed, encoding):
    text = seed.decode("utf-8", errors="ignore")
    read_only_telemetry_errors(tmp_path, codecs.encode(text, encoding))


_CELL = st.one_of(st.just(""), st.sampled_from(["2024-01-01 02:00:00.000", "2023-12-31", "2024-02-30", "soon", "0",
                                                 "2024-01-01T00:00:00Z", " ", "-", "NA", "n/a"]),
                  st.text(alphabet="0123456789-: .TZ", max_size=12))


@SETTINGS
@given(rows=st.lists(st.tuples(st.sampled_from(["a", "b", "", "80150"]), _CELL, _CELL), min_size=1, max_size=8))
@example(rows=[("a", "", "-")])  # CI's find: "-" is a null marker, an open end
@example(rows=[("a", "--", " - ")])
@example(rows=[("a", "", "01000")])  # a full run's find: inferred as a number, it came back as "1000"
def test_reference_data_is_deployments_or_one_line_naming_its_cell(tmp_path, rows):
    """Movebank reference data with any deployment cells: read with fixes, its rows with an animal
    are the deployment table, exactly as written (a null marker such as "-" is an empty cell); or
    one error naming the file, a line of the table and a date column."""
    import pandas as pd

    ref = tmp_path / "study-reference-data.csv"
    pd.DataFrame(rows, columns=["animal-id", "deploy-on-date", "deploy-off-date"]).assign(**{"tag-id": "t"}).to_csv(
        ref, index=False)
    try:
        df = telemetry.read([ref, CLEAN])
    except TelemetryError as err:
        msg = str(err)
        assert "\n" not in msg and msg.startswith(f"{ref}, line ") and "column 'deploy-o" in msg, msg
        line = int(msg.split(", line ")[1].split(",")[0])
        assert 2 <= line <= len(rows) + 1
        return
    got = df.attrs["sources"][0]["deployments"]
    def cell(v):  # as written, or None where the reader's null markers ("", "-", "NA", ...) stand
        return None if v.strip() in NULL_VALUES else v.strip()

    want = [{"animal_id": a, "start": cell(s), "end": cell(e)} for a, s, e in rows if a.strip()]
    assert got == want
    assert len(df) == CLEAN_ROWS


@SETTINGS
@given(failed=st.integers(0, 3000), fixes=st.integers(1, 30), null=st.sampled_from(["", "NA", "N/A", "nan", "-"]),
       delim=st.sampled_from([",", ";", "\t"]))
def test_a_generic_file_that_starts_with_failed_fixes_is_read_whole(tmp_path, failed, fixes, null, delim):
    """A collar switched on before deployment fails its first fixes: however many blank (or
    null-marked) positions come first, even the whole head of the file or every row, a CSV with
    named time and coordinate columns is read as such, every row kept, the failed ones without
    a position (it was "unknown layout" when the first 50 rows had no coordinate)."""
    t = (pd.Timestamp("2022-05-01", tz="UTC") + pd.to_timedelta(np.arange(failed + fixes), unit="min")).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    lines = [f"animal_id{delim}timestamp{delim}longitude{delim}latitude"]
    lines += [delim.join(["A1", t[k], null, null]) for k in range(failed)]
    lines += [delim.join(["A1", t[failed + k], f"{77 + k / 1000:.4f}", f"{43 + k / 1000:.4f}"]) for k in range(fixes)]
    path = tmp_path / "starts_blank.csv"
    path.write_text("\n".join(lines) + "\n")
    df = telemetry.read(path)
    assert df.attrs["sources"][0]["format"] == "generic-csv"
    assert len(df) == failed + fixes
    assert int(df["lon"].notna().sum()) == fixes and int(df["lat"].isna().sum()) == failed


@SETTINGS
@given(names=st.sampled_from([("animal_id", "timestamp", "longitude", "latitude"), ("Date", "Time", "Lat", "Lon"),
                              ("tag", "datetime_utc", "geometry"), ("id", "time", "easting", "northing", "utm_zone")]),
       delim=st.sampled_from([",", ";", "\t"]), blank=st.integers(0, 5), crlf=st.booleans())
def test_a_generic_header_without_rows_is_read_as_no_fixes(tmp_path, names, delim, blank, crlf):
    """An export of no fixes yet (a header, then nothing or blank lines) is recognised from its
    named columns, as a Movebank header alone is: 0 rows read and processed (it was "unknown
    layout", which told the user to name columns the tool had already found). A header of other
    columns stays unknown."""
    nl = "\r\n" if crlf else "\n"
    path = tmp_path / "no_fixes_yet.csv"
    path.write_text(delim.join(names) + nl + nl * blank, newline="")
    df = telemetry.read(path)
    assert df.attrs["sources"][0]["format"] == "generic-csv" and len(df) == 0
    assert len(telemetry.process(path)) == 0  # (rows in = rows out; the CLI says there was nothing to process)
    other = tmp_path / "other.csv"
    other.write_text(delim.join(("name", "colour", "time")) + nl)
    with pytest.raises(TelemetryError, match="unknown layout"):
        telemetry.read(other)


@SETTINGS
@given(lons=st.lists(st.floats(-200.0, 400.0, allow_nan=False), min_size=1, max_size=40),
       fmt=st.sampled_from(["generic", "movebank"]))
@example(lons=[179.9, 180.1, 185.0, 200.0], fmt="generic")  # a track across the antimeridian, written 0..360
@example(lons=[77.0, 77.1, 250.0, 77.2], fmt="movebank")  # one typo among eastern longitudes
def test_longitudes_written_0_to_360_are_read_as_the_same_meridians(tmp_path, lons, fmt):
    """A file whose longitudes run 0..360 (NetCDF-derived tracks, some Argos and marine exports)
    is recognised and read with every longitude east of 180 moved by -360, the same meridian,
    and a note saying so (it was "unknown layout" for a generic CSV, and every fix of a Movebank
    file flagged out_of_range). A file with longitudes below 0 or above 360, or fewer than three
    east of 180 among others (typing errors), is read unchanged: the cleaning flags those."""
    n = len(lons)
    t = (pd.Timestamp("2023-01-01", tz="UTC") + pd.to_timedelta(np.arange(n), unit="h")).strftime("%Y-%m-%d %H:%M:%S")
    if fmt == "generic":
        t = t + "Z"  # (a generic file's times say their zone; Movebank's are UTC)
    cols = (["individual-local-identifier", "timestamp", "location-long", "location-lat"] if fmt == "movebank"
            else ["animal_id", "timestamp", "longitude", "latitude"])
    path = tmp_path / f"{fmt}.csv"
    pd.DataFrame({cols[0]: "A1", cols[1]: t, cols[2]: [f"{v:.6f}" for v in lons], cols[3]: 45.0}).to_csv(
        path, index=False)
    given_lon = np.array([float(f"{v:.6f}") for v in lons])
    in_band = bool(np.all((given_lon >= -180) & (given_lon <= 360)))
    try:
        df = telemetry.read(path)
    except TelemetryError as err:
        # only a generic file most of whose longitudes are no longitudes at all may go unrecognised
        assert fmt == "generic" and not in_band and "unknown layout" in str(err), str(err)
        return
    assert len(df) == n
    lon = df["lon"].to_numpy(dtype=float)
    east = given_lon > 180
    wrapped = bool(np.all((given_lon >= 0) & (given_lon <= 360))) and east.sum() >= min(3, n)
    notes = df.attrs["sources"][0]["notes"]
    assert any("0..360" in s for s in notes) == wrapped
    want = np.where(east, given_lon - 360, given_lon) if wrapped else given_lon
    np.testing.assert_allclose(lon, want, rtol=0, atol=1e-9)
    if wrapped:
        assert np.all((lon >= -180) & (lon <= 180))
        # the same meridians: sines and cosines of every longitude unchanged
        np.testing.assert_allclose(np.cos(np.radians(lon)), np.cos(np.radians(given_lon)), atol=1e-12)
        np.testing.assert_allclose(np.sin(np.radians(lon)), np.sin(np.radians(given_lon)), atol=1e-12)


def _written(value: float, axis: str, style: int) -> str:
    """``value`` degrees as people write them: with a hemisphere letter after or before, or in
    degrees and decimal minutes, or degrees, minutes and seconds (5 styles)."""
    letter = axis[0] if value >= 0 else axis[1]
    v = abs(value)
    d = int(v)
    m = (v - d) * 60
    s = (m - int(m)) * 60
    return [f"{v:.7f}{letter}", f"{letter} {v:.7f}", f"{d}°{m:.5f}'{letter}", f"{d} {int(m)} {s:.3f} {letter}",
            f"{'-' if value < 0 else ''}{d}:{int(m):02d}:{s:06.3f}"][style]


@SETTINGS
@given(lat=st.lists(st.floats(-89.9, 89.9), min_size=1, max_size=30), data=st.data())
def test_coordinates_with_hemisphere_letters_or_minutes_read_as_degrees(tmp_path, lat, data):
    """Coordinates written 43.21N / N 43.21 / 43°12.6'N / 43 12 36 N / -43:12:36 (GPS handsets,
    spreadsheets, some vendor exports) are recognised and read as decimal degrees, every row kept,
    with a note (the file was "unknown layout")."""
    n = len(lat)
    lon = data.draw(st.lists(st.floats(-179.9, 179.9), min_size=n, max_size=n))
    styles = data.draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))
    t = (pd.Timestamp("2023-01-01", tz="UTC") + pd.to_timedelta(np.arange(n), unit="h")).strftime("%Y-%m-%dT%H:%M:%SZ")
    path = tmp_path / "letters.csv"
    pd.DataFrame({"animal_id": "A1", "timestamp": t, "latitude": [_written(v, "NS", k) for v, k in zip(lat, styles)],
                  "longitude": [_written(v, "EW", k) for v, k in zip(lon, styles)]}).to_csv(path, index=False)
    df = telemetry.read(path)
    assert len(df) == n and df["flag"].isna().all()
    np.testing.assert_allclose(df["lat"].to_numpy(dtype=float), lat, atol=2e-6)  # (3 decimals of seconds: 3e-7 deg)
    np.testing.assert_allclose(df["lon"].to_numpy(dtype=float), lon, atol=2e-6)
    assert any("hemisphere letter" in s for s in df.attrs["sources"][0]["notes"])


@SETTINGS
@given(seconds=st.lists(st.floats(315532800.0, 4102444799.0), min_size=1, max_size=30),
       unit=st.sampled_from(["s", "ms"]), whole=st.booleans())
def test_unix_times_are_read_as_utc(tmp_path, seconds, unit, whole):
    """A time column of Unix seconds or milliseconds (1980-2099; exports of loggers and databases)
    is read as those instants in UTC, which need no --tz, with a note (it was an error)."""
    sec = np.floor(seconds) if whole else np.round(np.asarray(seconds), 3)
    cells = [f"{int(v)}" if whole else f"{v:.3f}" for v in sec] if unit == "s" else [f"{int(round(v * 1000))}" for v in sec]
    n = len(cells)
    path = tmp_path / "unix.csv"
    pd.DataFrame({"id": "A1", "timestamp": cells, "lon": np.linspace(77.0, 77.1, n), "lat": 43.0}).to_csv(path, index=False)
    df = telemetry.read(path)
    assert len(df) == n and df["flag"].isna().all()
    want = pd.to_datetime(np.round(sec * 1000).astype("int64"), unit="ms", utc=True)
    got = df["time"].to_numpy()
    assert (np.abs(got - want.to_numpy()) <= np.timedelta64(1, "ms")).all()
    assert any("Unix" in s for s in df.attrs["sources"][0]["notes"])


@pytest.mark.parametrize(("date", "clock", "offset_h"), [
    ("UTC_Date", "UTC_Time", 0), ("Date (UTC)", "Time (UTC)", 0), ("GMT date", "GMT time", 0), ("Date_UTC", "Time_UTC", 0),
    ("Date (UTC+6)", "Time (UTC+6)", 6), ("date", "time (GMT-03:30)", -3.5)])
def test_a_zone_the_column_names_state_is_used(tmp_path, date, clock, offset_h):
    """Times in columns whose names state the zone (``UTC_Date``, ``Date (UTC)``, ``Local time
    (UTC+6)``) are read in that zone without --tz (they were "times are local with no time zone")."""
    t = pd.date_range("2024-03-01 10:00", periods=5, freq="4h")
    path = tmp_path / "named_zone.csv"
    pd.DataFrame({"id": "A1", date: t.strftime("%Y-%m-%d"), clock: t.strftime("%H:%M:%S"),
                  "lat": 43.0, "lon": np.linspace(77.0, 77.1, 5)}).to_csv(path, index=False)
    df = telemetry.read(path)
    want = (t - pd.Timedelta(hours=offset_h)).tz_localize("UTC")
    assert df["time"].tolist() == list(want)
    assert any("as the column names say" in s for s in df.attrs["sources"][0]["notes"])


def test_local_times_the_names_do_not_place_still_need_a_zone(tmp_path):
    """``Date`` / ``Time (LMT)`` state no zone, nor does a UTC date beside a local time: one line
    naming file, line and column, as before."""
    t = pd.date_range("2024-03-01 10:00", periods=5, freq="4h")
    for date, clock in (("Date", "Time (LMT)"), ("Date (UTC)", "Time (local)"), ("Date", "Time")):
        path = tmp_path / "lmt.csv"
        pd.DataFrame({"id": "A1", date: t.strftime("%Y-%m-%d"), clock: t.strftime("%H:%M:%S"),
                      "lat": 43.0, "lon": 77.0}).to_csv(path, index=False)
        with pytest.raises(TelemetryError) as err:
            telemetry.read(path)
        msg = str(err.value)
        assert "\n" not in msg and msg.startswith(f"{path}, line 2, column '{date}'") and "--tz" in msg


@SETTINGS
@given(lat=st.lists(st.floats(-89.9, 89.9), min_size=1, max_size=30), data=st.data(),
       names=st.sampled_from([("N/S", "E/W"), ("NS", "EW"), ("Lat_Dir", "Lon_Dir")]))
def test_unsigned_degrees_with_hemisphere_columns_are_signed(tmp_path, lat, data, names):
    """Unsigned degrees with the hemisphere in columns of their own (NMEA-derived logs: Latitude,
    N/S, Longitude, E/W) are read signed; south and west were read as north and east."""
    n = len(lat)
    lon = data.draw(st.lists(st.floats(-179.9, 179.9), min_size=n, max_size=n))
    t = (pd.Timestamp("2023-01-01", tz="UTC") + pd.to_timedelta(np.arange(n), unit="h")).strftime("%Y-%m-%dT%H:%M:%SZ")
    path = tmp_path / "nmea.csv"
    pd.DataFrame({"id": "A1", "time": t, "Latitude": np.abs(lat), names[0]: np.where(np.asarray(lat) < 0, "S", "N"),
                  "Longitude": np.abs(lon), names[1]: np.where(np.asarray(lon) < 0, "W", "E")}).to_csv(path, index=False)
    df = telemetry.read(path)
    assert len(df) == n
    np.testing.assert_allclose(df["lat"].to_numpy(dtype=float), lat, atol=1e-9)
    np.testing.assert_allclose(df["lon"].to_numpy(dtype=float), lon, atol=1e-9)


def test_of_local_and_utc_columns_the_utc_ones_are_read(tmp_path):
    """A file with local and UTC times side by side (Date, Time, UTC_Date, UTC_Time; timestamp,
    timestamp_utc) is read from the UTC ones, without --tz."""
    utc = pd.date_range("2024-03-01 22:00", periods=5, freq="4h")
    local = utc + pd.Timedelta(hours=6)
    for cols in ({"Date": local.strftime("%Y-%m-%d"), "Time": local.strftime("%H:%M:%S"),
                  "UTC_Date": utc.strftime("%Y-%m-%d"), "UTC_Time": utc.strftime("%H:%M:%S")},
                 {"timestamp": local.strftime("%Y-%m-%d %H:%M:%S"), "timestamp_utc": utc.strftime("%Y-%m-%d %H:%M:%S")}):
        path = tmp_path / "both.csv"
        pd.DataFrame({"id": "A1", **cols, "lat": 43.0, "lon": np.linspace(77.0, 77.1, 5)}).to_csv(path, index=False)
        df = telemetry.read(path)
        assert df["time"].tolist() == list(utc.tz_localize("UTC"))


@SETTINGS
@given(preamble=st.lists(st.sampled_from(["# exported by CollarPortal v2", "Collar data export", "",
                                          "Generated 2024-05-01 10:00", "station;Almaty", "# units: degrees"]),
                         max_size=10),
       n=st.integers(1, 20))
def test_a_generic_file_after_a_preamble_is_read_from_its_header(tmp_path, preamble, n):
    """An export that starts with a title, comments or blank lines before its header is read from
    the header on, every fix kept, each row citing its own line (it was "unknown layout")."""
    t = (pd.Timestamp("2023-01-01", tz="UTC") + pd.to_timedelta(np.arange(n), unit="h")).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [*preamble, "animal_id,timestamp,longitude,latitude"]
    lines += [f"A1,{t[k]},{77 + k / 1000:.4f},{43 + k / 1000:.4f}" for k in range(n)]
    path = tmp_path / "preamble.csv"
    path.write_text("\n".join(lines) + "\n")
    df = telemetry.read(path)
    assert len(df) == n and df["flag"].isna().all()
    header_line = len(preamble) + 1
    assert df["source_row"].tolist() == list(range(header_line + 1, header_line + 1 + n))
    np.testing.assert_allclose(df["lon"].to_numpy(dtype=float), 77 + np.arange(n) / 1000, atol=1e-9)


@SETTINGS
@given(points=st.lists(st.tuples(st.floats(-179.5, 179.5), st.floats(-79.5, 83.5)), min_size=1, max_size=25),
       notation=st.sampled_from(["band", "hemisphere letter", "hemisphere column", "number"]))
def test_utm_easting_northing_and_zone_read_as_longitude_latitude(tmp_path, points, notation):
    """Field sheets in UTM (easting, northing, zone written 43T, 43N/43S, or 43 with a hemisphere
    column) are read as WGS84 longitude/latitude within 1e-6 deg of pyproj's, every row kept, with a
    note (they were "unknown layout"). Each point in its own zone, as a GPS shows it."""
    import pyproj

    lon = np.array([p[0] for p in points])
    lat = np.array([p[1] for p in points])
    if notation == "hemisphere letter":  # (southern 50-59 deg also fit band S, 32-40 N: not this notation's case)
        lat = np.where((lat < -49) & (lat > -60), -45.0, lat)
    if notation == "number":  # a zone alone: the northern hemisphere unless the northings say otherwise
        lat = np.abs(lat)
    zone = np.clip(np.floor((lon + 180) / 6).astype(int) + 1, 1, 60)
    south = lat < 0
    east, north = np.zeros(lon.size), np.zeros(lon.size)
    for z in set(zone.tolist()):
        for s in (False, True):
            rows = (zone == z) & (south == s)
            if rows.any():
                tr = pyproj.Transformer.from_crs(4326, (32700 if s else 32600) + z, always_xy=True)
                east[rows], north[rows] = tr.transform(lon[rows], lat[rows])
    bands = "CDEFGHJKLMNPQRSTUVWX"
    band = [bands[min(int((b + 80) // 8), 9 if b < 0 else 19)] for b in lat]  # (-1e-300 is in band M)
    cells = {"band": [f"{z}{b}" for z, b in zip(zone, band)],
             "hemisphere letter": [f"{z}{'S' if s else 'N'}" for z, s in zip(zone, south)],
             "hemisphere column": [str(z) for z in zone], "number": [str(z) for z in zone]}[notation]
    frame = {"animal": "SL05", "timestamp": (pd.Timestamp("2023-01-01", tz="UTC") + pd.to_timedelta(
        np.arange(lon.size), unit="h")).strftime("%Y-%m-%dT%H:%M:%SZ"), "UTM zone": cells,
        "Easting": np.round(east, 3), "Northing": np.round(north, 3)}
    if notation == "hemisphere column":
        frame["Hemisphere"] = np.where(south, "South", "North")
    path = tmp_path / "utm.csv"
    pd.DataFrame(frame).to_csv(path, index=False)
    df = telemetry.read(path)
    assert len(df) == lon.size and df["flag"].isna().all()
    np.testing.assert_allclose(df["lat"].to_numpy(dtype=float), lat, atol=1e-6)
    got = df["lon"].to_numpy(dtype=float)
    np.testing.assert_allclose(np.cos(np.radians(got - lon)), 1.0, atol=1e-12)
    assert any("UTM" in s for s in df.attrs["sources"][0]["notes"])


def _kml(animals: list[tuple[str, bool, list[tuple[float, float, int]]]]) -> str:
    """A KML document: per animal either a Folder of timed Point placemarks or a gx:Track placemark."""
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           '<kml xmlns="http://www.opengis.net/kml/2.2" xmlns:gx="http://www.google.com/kml/ext/2.2"><Document>',
           "<name>collars</name>", "<Placemark><name>camp</name><Point><coordinates>77,43</coordinates></Point></Placemark>"]
    for name, track, fixes in animals:
        when = [(pd.Timestamp("2023-01-01", tz="UTC") + pd.Timedelta(minutes=m)).strftime("%Y-%m-%dT%H:%M:%SZ")
                for _, _, m in fixes]
        if track:
            out.append(f"<Placemark><name>{name}</name><gx:Track>")
            out += [f"<when>{w}</when>" for w in when]
            out += [f"<gx:coord>{lo!r} {la!r} 1500</gx:coord>" for lo, la, _ in fixes]
            out.append("</gx:Track></Placemark>")
        else:
            out.append(f"<Folder><name>{name}</name>")
            out += [f"<Placemark><name>fix {k}</name><TimeStamp><when>{w}</when></TimeStamp>"
                    f"<Point><coordinates>{lo!r},{la!r},1500</coordinates></Point></Placemark>"
                    for k, ((lo, la, _), w) in enumerate(zip(fixes, when))]
            out.append("</Folder>")
    out.append("</Document></kml>")
    return "\n".join(out)


@SETTINGS
@given(animals=st.lists(st.tuples(st.sampled_from(["SL03", "SL04", "bird 7"]), st.booleans(),
                                  st.lists(st.tuples(st.floats(-180, 180), st.floats(-90, 90), st.integers(0, 10**6)),
                                           min_size=1, max_size=15)), min_size=1, max_size=3),
       kmz=st.booleans())
def test_kml_points_and_tracks_are_read_as_fixes(tmp_path, animals, kmz):
    """KML as collar portals and Google Earth write it (a Folder of timed points per animal, or
    a gx:Track per animal; KMZ zipped): every fix read with its animal, time and position, the
    untimed camp placemark counted, not read."""
    text = _kml(animals)
    if kmz:
        import zipfile

        path = tmp_path / "collars.kmz"
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("doc.kml", text)
    else:
        path = tmp_path / "collars.kml"
        path.write_text(text)
    df = telemetry.read(path)
    want = [(name, lo, la, m) for name, _, fixes in animals for lo, la, m in fixes]
    assert len(df) == len(want) and df["flag"].isna().all()
    assert df["animal_id"].astype(str).tolist() == [w[0] for w in want]
    np.testing.assert_allclose(df["lon"].to_numpy(dtype=float), [w[1] for w in want], rtol=0, atol=0)
    np.testing.assert_allclose(df["lat"].to_numpy(dtype=float), [w[2] for w in want], rtol=0, atol=0)
    t0 = pd.Timestamp("2023-01-01", tz="UTC")
    assert df["time"].tolist() == [t0 + pd.Timedelta(minutes=w[3]) for w in want]
    assert df.attrs["sources"][0]["format"] == "kml"
    assert any("1 placemarks without a time" in s for s in df.attrs["sources"][0]["notes"])


def test_malformed_kml_names_its_line(tmp_path):
    path = tmp_path / "broken.kml"
    path.write_text('<?xml version="1.0"?>\n<kml><Document>\n<Placemark><name>x</name>\n</Document></kml>\n')
    with pytest.raises(TelemetryError) as err:
        telemetry.read(path)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{path}, line 4") and "malformed XML" in msg, msg


WILDLIFE_COMPUTERS = """DeployID,Ptt,Instr,Date,Type,Quality,Latitude,Longitude,Error radius,Error Semi-major axis,Error Semi-minor axis,Error Ellipse orientation,Offset,Offset orientation,GPE MSD,GPE U,Count,Comment
T01,160421,Mk10,11-Jun-2019 08:12:34,Argos,2,-33.9,151.3,330,1200,150,85,,,,,,
T01,160421,Mk10,11-Jun-2019 10:40:02,Argos,B,-33.95,151.28,2500,9800,300,70,,,,,,
T01,160421,Mk10,11-Jun-2019 13:02:11,FastGPS,,-33.97,151.27,,,,,,,,,,
T01,160421,Mk10,11-Jun-2019 15:30:00,Argos,a,-34.0,151.25,1600,5000,250,90,,,,,,
"""
CLS_ARGOS = """Platform ID No.;Prog. No.;Latitude;Longitude;Loc. quality;Loc. date;Loc. type;Altitude;Pass;Satellite;Msg Date
160421;12345;43.25;76.95;1;2019-06-11 08:12:34;Argos doppler;0;600;MB;2019-06-11 08:12:00
160421;12345;43.27;76.97;A;2019-06-11 10:40:02;Argos doppler;0;540;NN;2019-06-11 10:39:50
160421;12345;43.29;76.99;Z;2019-06-11 13:02:11;Argos doppler;0;610;MC;2019-06-11 13:02:00
"""


@pytest.mark.parametrize(("text", "animal", "classes", "first"), [
    (WILDLIFE_COMPUTERS, "T01", ["2", "B", None, "A"], "2019-06-11 08:12:34"),
    (CLS_ARGOS, "160421", ["1", "A", "Z"], "2019-06-11 08:12:34")], ids=["wildlife-computers", "cls"])
def test_argos_exports_keep_their_location_classes(tmp_path, text, animal, classes, first):
    """Argos locations as the Wildlife Computers portal (-Locations.csv) and CLS write them: the
    location class of each row (which the error model and the cleaning use) and the UTC times of
    the Argos system (no --tz needed); a row without a class (a FastGPS fix) is not Argos."""
    path = tmp_path / "argos.csv"
    path.write_text(text)
    df = telemetry.read(path)
    assert df["argos_lc"].astype(object).where(df["argos_lc"].notna(), None).tolist() == classes
    assert (df["fix_type"].astype(str) == "argos").tolist() == [c is not None for c in classes]
    assert df["animal_id"].astype(str).unique().tolist() == [animal]
    assert df["time"].iloc[0] == pd.Timestamp(first, tz="UTC")
    assert any("Argos" in s for s in df.attrs["sources"][0]["notes"])


def test_a_quality_column_that_holds_no_argos_classes_is_not_one(tmp_path):
    """'Quality' or 'class' of another table (good/poor) is not read as an Argos class, and its
    local times still need a zone."""
    path = tmp_path / "survey.csv"
    path.write_text("id,timestamp,quality,lon,lat\nA1,2024-01-01 10:00,good,77.0,43.0\nA1,2024-01-01 14:00,poor,77.1,43.1\n")
    with pytest.raises(TelemetryError) as err:
        telemetry.read(path)
    assert "--tz" in str(err.value)
    df = telemetry.read(path, tz="Asia/Almaty")
    assert df["argos_lc"].isna().all() and "quality" in df.columns


def test_a_generic_file_of_dates_only_keeps_every_fix_of_a_day(tmp_path):
    """A field sheet with a date per fix and no time (two fixes on 1 March): the fixes of a day are
    not duplicates (the second was flagged 'duplicate'), as in a Movebank study of dates only."""
    path = tmp_path / "dates.csv"
    path.write_text("id,Date,lat,lon\nA,2024-03-01,43.0,77.0\nA,2024-03-01,43.01,77.01\n"
                    "A,2024-03-02,43.02,77.02\nA,2024-03-03,43.03,77.03\n")
    tracks = telemetry.process(telemetry.read(path, tz="UTC"), states=False)
    assert tracks["flag"].isna().all()
    assert any("dates only" in s for s in tracks.attrs["sources"][0]["notes"])


def test_a_folder_without_fixes_names_its_broken_file_not_its_notes(tmp_path):
    """Of a folder whose files give no fixes, the error is that of the file in a known format that
    failed (its line and column), never that of a README or a binary file, which are no telemetry;
    a folder of those alone has none."""
    (tmp_path / "notes.txt").write_text("collars deployed by the ranger team\n")
    (tmp_path / "photo.dat").write_bytes(bytes(range(256)) * 4)
    with pytest.raises(TelemetryError) as err:
        telemetry.read(tmp_path)
    assert "no telemetry found" in str(err.value)
    (tmp_path / "fixes.csv").write_text("animal_id,timestamp,longitude,latitude\n"
                                        + "".join(f"A1,not a time {k},77.0,43.0\n" for k in range(5)))
    with pytest.raises(TelemetryError) as err:
        telemetry.read(tmp_path)
    assert str(err.value).startswith(f"{tmp_path / 'fixes.csv'}, line 2, column 'timestamp'"), str(err.value)


def test_a_column_the_user_names_is_that_column_whatever_its_case(tmp_path):
    """--columns time=date with Date and Date_UTC in the file: the user's Date, not the UTC one the
    guesses would prefer."""
    path = tmp_path / "two_dates.csv"
    path.write_text("id,Date,Date_UTC,lat,lon\nA1,2024-03-01 16:00,2024-03-01 10:00,43.0,77.0\n")
    df = telemetry.read(path, columns={"time": "date"}, tz="Asia/Tashkent")
    assert df["time"].iloc[0] == pd.Timestamp("2024-03-01 11:00", tz="UTC")  # 16:00 at UTC+5
