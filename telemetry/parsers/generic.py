"""Any delimited text file of fixes, with a column mapping or well-known column names.

The mapping (``--columns`` / ``ReadOptions.columns``) maps canonical keys to
the file's column names:

==========  ==============================================================
key         meaning
==========  ==============================================================
time        date and time in one column
date/clock  date and time of day in two columns (instead of ``time``)
lon, lat    WGS84 decimal degrees (decimal commas accepted)
animal      animal id;  ``tag``: collar/tag id
alt         altitude, metres;  ``hdop``: DOP as given;  ``sats``: satellites
fix_type    2D/3D/none (also 2/3, "3D fix", "no fix")
geometry    one column holding the point: WKT, GeoJSON, a lat/lon mapping or
            WKB (instead of ``lon``/``lat``; see :mod:`telemetry.parsers.points`)
easting,    UTM coordinates (m) and zone (``43``, ``43T``, ``43N``), with an
northing,   optional ``hemisphere`` column (instead of ``lon``/``lat``; see
utm_zone    :mod:`telemetry.parsers.utm`)
==========  ==============================================================

Keys not given are guessed from common names. Without any mapping the
sniffer claims a file only when it can confidently find time, longitude and
latitude (``timestamp``/``datetime``/``date_time``/``time`` or ``date`` +
``time``; ``longitude``/``lon``/``long``/``lng``; ``latitude``/``lat``; ``x``/``y``
only when their values are in degree range) and the first rows' coordinates
are numbers in range, or a point-geometry column instead of the two
coordinates (EarthRanger, ecoscope and GeoPandas exports: ``location``,
``geometry``); the guessed mapping is reported in ``Parsed.notes``.

:func:`parse_table` applies the same mapping to any Arrow table, so the
binary tables of :mod:`telemetry.parsers.columnar` share these rules.

Times: ISO 8601 with ``Z`` or an offset are converted to UTC; naive times
need ``--tz`` (never guessed). Non-ISO layouts are read with the one format
that fits every cell (``31.12.2020 23:00``, ``12/31/2020 23:00`` ...); when both
day-first and month-first fit, month-first is used and a note says so.
"""

from __future__ import annotations

import csv
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from telemetry.errors import ConfigError, ParseError
from telemetry.parsers.canonical import (
    DATES_ONLY_NOTE,
    Context,
    Parsed,
    build_frame,
    day_resolution,
    degrees,
    join_date_time,
    map_category,
    map_values,
    parse_time,
    to_float,
    unix_time,
)
from telemetry.parsers.detect import Format, Head, ReadOptions, norm_name, register
from telemetry.parsers.points import NAMES as POINT_NAMES
from telemetry.parsers.points import looks_like_points, point_coords
from telemetry.parsers.source import Source, source_stem
from telemetry.parsers.table import RawTable, read_delimited, sniff_delimiter, split_header
from telemetry.parsers.utm import parse_zones, utm_to_lonlat
from telemetry.schema import ARGOS_LC_DTYPE, NULL_VALUES

KEYS = ("time", "date", "clock", "lon", "lat", "geometry", "animal", "tag", "alt", "hdop", "sats", "fix_type",
        "easting", "northing", "utm_zone", "hemisphere", "argos_lc")
"""Mapping keys understood by ``--columns``."""

GUESS: dict[str, tuple[str, ...]] = {
    # (a zone word in a name, utc-date or datetime_gmt, is set aside when names are compared: _find)
    "time": ("timestamp", "datetime", "date-time", "date-and-time", "date-&-time", "recorded-at", "fixtime", "fix-time",
             "acquisition-time", "acq-time", "gps-time", "observation-time", "loc-date", "location-date", "time"),
    "date": ("date",),
    # (a bare UTC or GMT column: the clock beside a date column, else the time itself; in UTC)
    "clock": ("time", "time-of-day", "utc", "gmt"),
    "lon": ("longitude", "lon", "long", "lng", "x"),
    "lat": ("latitude", "lat", "y"),
    "animal": ("animal-id", "animal", "individual", "individual-id", "subject-name", "subject", "subject-id",
               "groupby-col", "name", "traj-id", "track-id", "deployid", "deploy-id", "id"),
    "tag": ("tag-id", "tag", "collar-id", "collar", "device-id", "device", "serial", "source-id",
            "manufacturer-id", "ptt", "platform-id", "platform-id-no", "platform"),
    "alt": ("altitude", "alt", "elevation", "ele", "height", "altitude-m"),
    "hdop": ("hdop", "dop", "pdop"),
    "sats": ("satellites", "sats", "sat", "n-sats", "nsats", "num-sats", "satellite-count"),
    "fix_type": ("fix-type", "fixtype", "fix"),
    "geometry": POINT_NAMES,
    # UTM instead of longitude/latitude (telemetry.parsers.utm)
    "easting": ("easting", "utm-easting", "utm-east", "utm-e", "e-utm", "x-utm", "utm-x", "east"),
    "northing": ("northing", "utm-northing", "utm-north", "utm-n", "n-utm", "y-utm", "utm-y", "north"),
    "utm_zone": ("utm-zone", "zone", "utm", "utm-zone-number", "zone-number", "grid-zone"),
    "hemisphere": ("hemisphere", "utm-hemisphere", "hemi"),
    # Argos location class (CLS 'Loc. quality', Wildlife Computers 'Quality'): only where the
    # cells are classes (ARGOS_LC_CODES)
    "argos_lc": ("argos-lc", "argos-location-class", "location-class", "lc", "loc-quality", "location-quality",
                 "argos-quality", "quality", "class", "lq"),
}
ARGOS_LC_CODES = {c.lower(): c for c in "3210ABZ"}
XY_ONLY_IF_DEGREES = {"x", "y"}

TIME_FORMATS: tuple[tuple[str, ...], ...] = (
    ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"),
    ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M"),
    ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M"),
    ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %I:%M %p"),
    ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M"),
    ("%d-%b-%Y %H:%M:%S", "%d-%b-%Y %H:%M", "%H:%M:%S %d-%b-%Y"),  # Wildlife Computers: 11-Jun-2019 08:12:34
    ("%Y-%m-%d", "%d.%m.%Y", "%m/%d/%Y", "%d/%m/%Y"),
)
"""Candidate layouts, tried as groups (a group may mix with/without seconds)."""

FIX_TYPES = {"3": "3D", "3d": "3D", "3d fix": "3D", "2": "2D", "2d": "2D", "2d fix": "2D",
             "0": "none", "1": "none", "none": "none", "no fix": "none", "nofix": "none"}


def _norm(name: str) -> str:
    """norm_name without units in brackets: ``Longitude [deg]`` → ``longitude``."""
    return norm_name(re.sub(r"[\[(][^\])]*[\])]", " ", name))


ZONE_WORD = re.compile(r"^(?:utc|gmt)-|-(?:utc|gmt)$")
"""A zone word at either end of a normalised name (``utc-date``, ``timestamp-gmt``)."""


def _find(names: list[str], cands: tuple[str, ...], exclude: set[str] = frozenset()) -> str | None:
    """The column called by the first of ``cands`` (normalised names), a zone word aside
    (``timestamp_utc``, ``GMT Date``, ``Time (UTC)`` are ``timestamp``, ``date``, ``time``; the zone
    is :func:`declared_offset_s`'s business); of two columns of one name, the first, unless a later
    one says it is UTC and the first does not (``Time`` and ``Time (UTC)``: the UTC one).

    >>> _find(["Time", "UTC_Time", "Lat"], ("time",)), _find(["timestamp_gmt"], ("timestamp",))
    ('UTC_Time', 'timestamp_gmt')
    """
    lookup: dict[str, str] = {}
    for name in names:
        if name in exclude:
            continue
        key = ZONE_WORD.sub("", _norm(name))
        held = lookup.get(key)
        if held is None or (declared_offset_s([name]) == 0 and declared_offset_s([held]) != 0):
            lookup[key] = name
    for cand in cands:
        if cand in lookup:
            return lookup[cand]
    return None


def guess_mapping(names: list[str]) -> dict[str, str]:
    """Canonical key → column for the keys that common names reveal (x/y unchecked).

    >>> guess_mapping(["UTC", "Lat", "Lon"]), guess_mapping(["Date", "GMT", "Lat", "Lon"])
    ({'time': 'UTC', 'lon': 'Lon', 'lat': 'Lat'}, {'date': 'Date', 'clock': 'GMT', 'lon': 'Lon', 'lat': 'Lat'})
    """
    out: dict[str, str] = {}
    date, clock = _find(names, GUESS["date"]), _find(names, GUESS["clock"])
    single = _find(names, GUESS["time"][:-1])
    if single is not None:
        out["time"] = single
    elif date is not None and clock is not None:
        out["date"], out["clock"] = date, clock
    elif clock is not None:
        out["time"] = clock
    elif date is not None:  # a 'Date' column holding date and time (Wildlife Computers: 11-Jun-2019 08:12:34)
        out["time"] = date
    taken = set(out.values())
    for key in ("lon", "lat", "animal", "tag", "alt", "hdop", "sats", "fix_type", "argos_lc", "geometry"):
        if key == "geometry" and "lon" in out and "lat" in out:
            break
        col = _find(names, GUESS[key], taken)
        if col is not None:
            out[key] = col
            taken.add(col)
    if not ("lon" in out and "lat" in out) and "geometry" not in out:
        utm = {k: _find(names, GUESS[k], taken) for k in ("easting", "northing", "utm_zone", "hemisphere")}
        if utm["easting"] and utm["northing"] and utm["utm_zone"]:
            out.pop("lon", None), out.pop("lat", None)
            out.update({k: v for k, v in utm.items() if v})
    return out


def _has_position(mapping: dict[str, str]) -> bool:
    """Whether column ``mapping`` names a position: lon and lat, a point geometry, or UTM
    easting, northing and zone.

    >>> _has_position({"lon": "x", "lat": "y"}), _has_position({"lon": "x"}), _has_position({"geometry": "g"})
    (True, False, True)
    >>> _has_position({"easting": "e", "northing": "n", "utm_zone": "z"}), _has_position({"easting": "e", "northing": "n"})
    (True, False)
    """
    return ({"lon", "lat"} <= mapping.keys() or "geometry" in mapping
            or {"easting", "northing", "utm_zone"} <= mapping.keys())


def _number(cell: str) -> float:
    try:
        return float(cell.strip().replace(",", "."))
    except ValueError:
        return float("nan")


def _coordinates(cells: list[str], axis: str) -> np.ndarray:
    """Degrees of a few cells of a latitude (``"NS"``) or longitude (``"EW"``) column: numbers, or
    text with a hemisphere letter or in degrees-minutes (NaN where neither)."""
    return degrees(pa.array(cells, pa.string()), None, axis)[0].values


HEMISPHERE_COLUMNS = {
    "NS": ("n/s", "n-s", "ns", "north/south", "lat-hemisphere", "latitude-hemisphere", "lat-dir", "lat-direction",
           "latitude-direction", "lat-ns", "hemisphere-ns"),
    "EW": ("e/w", "e-w", "ew", "east/west", "lon-hemisphere", "longitude-hemisphere", "lon-dir", "lon-direction",
           "longitude-direction", "long-dir", "lon-ew", "hemisphere-ew"),
}
"""Names of a column holding the hemisphere letter of unsigned latitudes (N/S) or longitudes
(E/W), as NMEA-derived logs write them."""


def hemisphere_signs(table: pa.Table, names: list[str], axis: str) -> tuple[str | None, np.ndarray]:
    """The column of ``table`` that gives the hemisphere of each row's latitude (``axis``
    ``"NS"``) or longitude (``"EW"``), and -1 (S, W) / +1 (N, E, or no letter) per row; the
    column is taken only when most of its present cells are one of the two letters.

    >>> signs = hemisphere_signs(pa.table({"N/S": ["N", "S", "s", None]}), ["N/S"], "NS")
    >>> signs[0], signs[1].tolist()
    ('N/S', [1.0, -1.0, -1.0, 1.0])
    """
    col = _find(names, HEMISPHERE_COLUMNS[axis])
    ones = np.ones(table.num_rows)
    if col is None:
        return None, ones
    text = pc.utf8_upper(pc.utf8_trim_whitespace(pc.cast(table.column(col), pa.string())))
    cells = np.asarray(pc.fill_null(text, "").to_numpy(zero_copy_only=False), dtype=object)
    present = cells != ""
    letter = np.isin(cells, list(axis))
    if not present.any() or letter.sum() <= 0.5 * present.sum():
        return None, ones
    return col, np.where(cells == axis[1], -1.0, 1.0)


ZONE_IN_NAME = re.compile(r"(?<![a-z])(?:utc|gmt)(?:\s*([+-])\s*(\d{1,2})(?::?(\d\d))?)?(?![a-z0-9])")
"""A time column's name that says its zone: ``UTC_Date``, ``Date (UTC)``, ``timestamp_gmt``,
``Local time (UTC+6)``, ``Time GMT-03:30``."""

LOCAL_IN_NAME = re.compile(r"(?<![a-z])(?:local|lmt)(?![a-z])")


def declared_offset_s(names: list[str]) -> int | None:
    """The offset from UTC (s east) that the time columns' names declare for their naive times,
    or None where they declare none (or disagree: one says UTC, another local time).

    >>> declared_offset_s(["UTC_Date", "UTC_Time"]), declared_offset_s(["Date (UTC)"])
    (0, 0)
    >>> declared_offset_s(["Local time (UTC+6)"]), declared_offset_s(["time GMT-03:30"])
    (21600, -12600)
    >>> declared_offset_s(["timestamp"]), declared_offset_s(["UTC_Date", "LMT_Time"]), declared_offset_s(["computer"])
    (None, None, None)
    """
    found: set[int | None] = set()
    for name in names:
        low = name.lower()
        m = ZONE_IN_NAME.search(low)
        if m is not None:
            sign, hours, minutes = m.groups()
            off = 0 if not sign else (1 if sign == "+" else -1) * (int(hours) * 3600 + int(minutes or 0) * 60)
            found.add(off if abs(off) <= 14 * 3600 else None)
        elif LOCAL_IN_NAME.search(low):
            found.add(None)
    return found.pop() if len(found) == 1 else None


PREAMBLE_MAX_LINES = 30
"""Lines of a preamble (an export's title, ``#`` comments, a blank line) the header may follow."""


def header_index(head: Head) -> int | None:
    """Index of the header line of a generic file: the first non-blank line, or after a preamble
    of up to :data:`PREAMBLE_MAX_LINES` lines, the first that :func:`sniff` recognises; None if none."""
    first = head.first_nonblank()
    for i in range(first, min(first + PREAMBLE_MAX_LINES + 1, len(head.lines))):
        if head.lines[i].strip(" ,;\t") and _sniff_at(head, i):
            return i
    return None


def sniff(head: Head) -> bool:
    """A delimited file with confidently recognisable time and position (lon/lat or point geometry)
    columns, its header the first line or after a short preamble."""
    return header_index(head) is not None


def _sniff_at(head: Head, i: int) -> bool:
    """:func:`sniff` with the header at line index ``i``."""
    try:
        line = head.line(i)
        delim = sniff_delimiter(line)
        names = split_header(line, delim)
        if len(names) < 2:
            return False
        mapping = guess_mapping(names)
        if not ("time" in mapping or "date" in mapping):
            return False
        # every row of the head: a collar switched on before deployment may fail its first fixes
        rows = [r for r in csv.reader(head.lines[i + 1:], delimiter=delim) if len(r) == len(names)]
        if not rows:
            # a header and nothing after it (an export of no fixes yet): the named columns
            # decide, as a Movebank header alone does; with rows, the rows must agree
            return not any(line.strip(" ,;\t") for line in head.lines[i + 1:]) and _has_position(mapping)
        if "easting" in mapping:
            ie, i_n, iz = (names.index(mapping[k]) for k in ("easting", "northing", "utm_zone"))
            east = np.array([_number(r[ie]) for r in rows])
            north = np.array([_number(r[i_n]) for r in rows])
            zone = parse_zones(np.array([r[iz] for r in rows], dtype=object))[0]
            filled = np.isfinite(east) | np.isfinite(north)
            ok = (zone > 0) & (east > 100_000) & (east < 900_000) & (north >= 0) & (north <= 10_000_000)
            return bool(filled.any()) and ok.sum() >= 0.5 * filled.sum()
        if "lon" not in mapping or "lat" not in mapping:
            if "geometry" not in mapping:
                return False
            k = names.index(mapping["geometry"])
            return looks_like_points(pa.array([r[k] for r in rows], pa.string()))
        if len(names) < 3:
            return False
        ilon, ilat = names.index(mapping["lon"]), names.index(mapping["lat"])
        lon = _coordinates([r[ilon] for r in rows], "EW")
        lat = _coordinates([r[ilat] for r in rows], "NS")
        # (longitudes 0..360 too: wrap_longitudes reads them)
        ok = np.isfinite(lon) & np.isfinite(lat) & (lon >= -180) & (lon <= 360) & (np.abs(lat) <= 90)
        # coordinates must be degrees in most rows (failed fixes may be blank, a few cells junk)
        filled = np.isfinite(lon) | np.isfinite(lat)
        if not filled.any():  # only failed fixes so far: the named columns decide, with times in the rows
            k = names.index(mapping.get("time") or mapping["date"])
            return sum(bool(r[k].strip()) for r in rows) >= 0.5 * len(rows) and all(
                r[ilon].strip() in NULL_VALUES and r[ilat].strip() in NULL_VALUES for r in rows)
        return ok.sum() >= 0.5 * filled.sum()
    except Exception:  # a sniffer never fails on garbage
        return False


def _resolve(names: list[str], mapping: dict[str, str], raw: RawTable, path: str) -> dict[str, str]:
    """Mapping values → actual column names (exact, then case/spacing-insensitive)."""
    out: dict[str, str] = {}
    for key, want in mapping.items():
        if key not in KEYS:
            raise ConfigError(f"unknown --columns key '{key}' (known: {', '.join(KEYS)})", path)
        # (the user's name as written, then case and spacing aside: never another column's zone word)
        col = want if want in names else next((n for n in names if _norm(n) == _norm(want)), None)
        if col is None:
            shown = ", ".join(raw.header[:30])
            raise ParseError(
                f"column '{want}' given for --columns {key}={want} is not in the file "
                f"(header has: {shown})", path, raw.header_line, want,
            )
        out[key] = col
    return out


def _time_text(arr: pa.Array) -> tuple[tuple[str, ...], str | None]:
    """The format group that parses every present cell, and a note if day/month order was ambiguous."""
    text = pc.utf8_trim_whitespace(pc.cast(arr, pa.string()))
    text = text.filter(pc.not_equal(text, "").fill_null(False))
    if len(text) == 0:
        return (), None
    iso = pc.match_substring_regex(text, r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?$")
    if pc.all(iso).as_py():
        return (), None
    fits = []
    for group in TIME_FORMATS:
        parsed = None
        for fmt in group:
            got = pc.strptime(text, format=fmt, unit="ns", error_is_null=True)
            parsed = got if parsed is None else pc.coalesce(parsed, got)
        if parsed.null_count == 0:
            fits.append(group)
    if not fits:
        return (), None
    note = None
    if fits[0][0].startswith("%m/%d") and any(g[0].startswith("%d/%m") for g in fits):
        note = "day/month order is ambiguous in every time; read as month/day/year"
    return fits[0], note


def parse(src: Source, head: Head, options: ReadOptions) -> Parsed:
    """Read a generic delimited file of fixes using ``options.columns`` and/or guessed columns."""
    at = header_index(head)
    at = head.first_nonblank() if at is None or options.columns else at  # (--columns: the first line, as always)
    line = head.line(at)
    header = split_header(line, sniff_delimiter(line))
    ids = [options.columns.get(k) or guess_mapping(header).get(k) for k in ("animal", "tag")]
    # ids are labels, not numbers (leading zeros)
    raw = read_delimited(src, header_line=at + 1, types={c: pa.string() for c in ids if c})
    before = sum(1 for x in head.lines[:at] if x.strip(" ,;\t"))
    notes = [f"{before} lines before the header (line {at + 1}) not read: a preamble"] if before else []
    return parse_table(raw, src.name, options, "generic-csv", notes)


def _mapping(raw: RawTable, path: str, options: ReadOptions) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """(mapping, guessed part, notes): the user's columns first, then guesses that do not clash."""
    names = raw.names
    table = raw.table
    given = _resolve(names, dict(options.columns), raw, path)
    guessed = {k: v for k, v in guess_mapping(names).items() if k not in given}
    if "time" in given or "date" in given:
        guessed = {k: v for k, v in guessed.items() if k not in ("time", "date", "clock")}
    if "time" not in given and "date" not in given and "time" not in guessed and "date" not in guessed:
        # typed tables (Parquet, Feather, GeoPackage) may name their one timestamp column anything ('t')
        stamps = [c for c in names if pa.types.is_timestamp(table.column(c).type) and c not in given.values()]
        if len(stamps) == 1:
            guessed["time"] = stamps[0]
    if "lon" in given and "lat" in given:
        guessed.pop("geometry", None)
    taken = set(given.values())
    guessed = {k: v for k, v in guessed.items() if v not in taken}
    mapping = {**guessed, **given}
    notes: list[str] = []
    for key in ("lon", "lat"):
        col = guessed.get(key)
        if col is not None and _norm(col) in XY_ONLY_IF_DEGREES:
            vals = to_float(table.column(col)).values
            low, high = (-180, 360) if key == "lon" else (-90, 90)  # (longitudes 0..360: wrap_longitudes)
            if np.nanmin(vals, initial=0) < low or np.nanmax(vals, initial=0) > high:
                del mapping[key]
                notes.append(f"column '{col}' is not in degrees; not used as {key}")
    if "geometry" in guessed and "lon" in mapping and "lat" in mapping:
        del mapping["geometry"]
    col = guessed.get("argos_lc")
    if col is not None:
        cells = pc.utf8_lower(pc.utf8_trim_whitespace(pc.cast(table.column(col), pa.string())))
        present = pc.fill_null(pc.not_equal(cells, ""), False)
        is_lc = pc.fill_null(pc.is_in(cells, pa.array(list(ARGOS_LC_CODES))), False)
        n_present = pc.sum(present).as_py() or 0
        if not n_present or (pc.sum(is_lc).as_py() or 0) < 0.9 * n_present:
            del mapping["argos_lc"]  # ('quality', 'class': words other tables use for other things)
    for key in ("animal", "tag"):
        col = guessed.get(key)
        # a row id ('id' of an EarthRanger observation) is not an animal: one value per row
        if col is not None and _norm(col) == "id" and table.num_rows >= 20:
            distinct = pc.count_distinct(table.column(col)).as_py()
            if distinct > 0.5 * table.num_rows:
                del mapping[key]
                notes.append(f"column '{col}' has a different value on most rows; not used as {key}")
    return mapping, guessed, notes


def parse_table(raw: RawTable, path: str, options: ReadOptions, fmt: str, notes: list[str] | None = None) -> Parsed:
    """Fixes from any table (delimited text or a typed Arrow table) by column mapping and guesses.

    Parameters
    ----------
    raw : RawTable
        The rows; ``raw.lines`` are what errors and ``source_row`` cite (file
        lines for text, 1-based record numbers for binary tables).
    path : str
        File name for messages and ``source``.
    fmt : str
        Format name recorded in the read report.
    notes : list of str, optional
        Notes from the reader (CRS conversion, ...), reported first.
    """
    table = raw.table
    mapping, guessed, guess_notes = _mapping(raw, path, options)
    notes = list(notes or []) + guess_notes
    missing = [] if _has_position(mapping) else [k for k in ("lon", "lat") if k not in mapping]
    if "time" not in mapping and not ("date" in mapping and "clock" in mapping):
        missing.insert(0, "time")
    if missing:
        raise ParseError(
            f"cannot tell which column is {' / '.join(missing)}; pass --columns "
            "time=...,lon=...,lat=... (e.g. --columns time=DateTime,lon=X,lat=Y; UTM: easting=...,northing=...,utm_zone=...)",
            path, raw.header_line,
        )
    if guessed:
        notes.insert(0, "columns guessed: " + ", ".join(f"{k}={mapping[k]}" for k in guessed if k in mapping))
    rows_read = table.num_rows + len(raw.malformed)

    if "time" in mapping:
        t_col = mapping["time"]
        when = table.column(t_col)
    else:
        t_col = mapping["date"]
        when = join_date_time(table.column(mapping["date"]), table.column(mapping["clock"]))
    when = when if pa.types.is_timestamp(when.type) else pc.cast(when, pa.string())
    arr = when.combine_chunks() if isinstance(when, pa.ChunkedArray) else when
    formats, note = ((), None) if pa.types.is_timestamp(arr.type) else _time_text(arr)
    if note:
        notes.append(note)
    ctx = Context(path, raw, t_col, "use ISO 8601 times, e.g. 2020-05-01T10:00:00Z")
    untimed = arr.null_count == len(arr)
    # a zone the time columns' names state is no guess (a --tz is for times that state none)
    offset = declared_offset_s([mapping[k] for k in ("time", "date", "clock") if k in mapping])
    zone_from = "as the column names say"
    if offset is None and "argos_lc" in mapping and options.tz is None:
        offset = 0  # Argos locations carry the Argos system's UTC times (CLS, Wildlife Computers portals)
        zone_from = "as Argos locations (a location class column) are timed by the Argos system"
    epoch = unix_time(arr, ctx) if "time" in mapping else None
    if epoch is not None:
        time = epoch[0]
        notes.append(f"times read as Unix {epoch[1]} (since 1970-01-01 UTC) from column '{t_col}'")
    else:
        time = parse_time(when, ctx, formats=formats, tz=options.tz, naive_is_utc=untimed, naive_offset_s=offset)
        if offset is not None and not pa.types.is_timestamp(arr.type):
            zone = "UTC" if offset == 0 else f"UTC{'+' if offset > 0 else '-'}{abs(offset) // 3600:02d}:{abs(offset) % 3600 // 60:02d}"
            notes.append(f"times without a zone of their own read as {zone}, {zone_from}")
    if "lon" in mapping and "lat" in mapping:
        lon, n_lon_text = degrees(table.column(mapping["lon"]), Context(path, raw, mapping["lon"]), "EW")
        lat, n_lat_text = degrees(table.column(mapping["lat"]), Context(path, raw, mapping["lat"]), "NS")
        if n_lon_text or n_lat_text:
            notes.append(f"coordinates written with a hemisphere letter or in degrees and minutes read as decimal "
                         f"degrees ({max(n_lon_text, n_lat_text)} rows)")
        lon_v, lat_v, bad_pos = lon.values, lat.values, lon.bad | lat.bad
        used = {mapping["lon"], mapping["lat"]}
        # unsigned degrees with the hemisphere in a column of its own (N/S, E/W)
        degrees_of = {"lat": lat_v, "lon": lon_v}
        for axis, key in (("NS", "lat"), ("EW", "lon")):
            col, sign = hemisphere_signs(table, raw.names, axis)
            if col is not None:
                degrees_of[key] = np.where(sign < 0, -np.abs(degrees_of[key]), degrees_of[key])
                used.add(col)
                notes.append(f"{key} signed by the hemisphere column '{col}' ({int((sign < 0).sum())} rows "
                             f"{axis[1]})")
        lat_v, lon_v = degrees_of["lat"], degrees_of["lon"]
    elif "easting" in mapping:
        cols = [mapping[k] for k in ("easting", "northing", "utm_zone", "hemisphere") if k in mapping]
        east = to_float(table.column(cols[0]), Context(path, raw, cols[0]), required=True)
        north = to_float(table.column(cols[1]), Context(path, raw, cols[1]), required=True)

        def cells(col: str) -> np.ndarray:
            return np.asarray(pc.cast(table.column(col), pa.string()).to_numpy(zero_copy_only=False), dtype=object)

        lon_v, lat_v, off, note = utm_to_lonlat(east.values, north.values, cells(cols[2]),
                                                cells(cols[3]) if len(cols) > 3 else None)
        located = np.isfinite(east.values) | np.isfinite(north.values)
        bad_pos = east.bad | north.bad | (off & located)
        lon_v, lat_v = np.where(bad_pos, np.nan, lon_v), np.where(bad_pos, np.nan, lat_v)
        notes.append(note)
        used = set(cols)
    else:
        g_col = mapping["geometry"]
        lon_v, lat_v, bad_pos = point_coords(table.column(g_col))
        present = np.asarray(pc.is_valid(table.column(g_col)).to_numpy(zero_copy_only=False), dtype=bool)
        if present.any() and bad_pos[present].mean() > 0.5:
            i = int(np.flatnonzero(bad_pos)[0])
            raise ParseError("most cells are not point geometries (WKT 'POINT (lon lat)', GeoJSON or WKB)",
                             path, int(raw.lines[i]), g_col)
        used = {g_col}
    fields: dict[str, object] = {"time": time.values, "lon": lon_v, "lat": lat_v}
    used |= {mapping[k] for k in ("time", "date", "clock") if k in mapping}

    def text(col: str) -> np.ndarray:
        a = pc.utf8_trim_whitespace(pc.cast(table.column(col), pa.string()))
        a = pc.if_else(pc.equal(a, ""), pa.scalar(None, pa.string()), a)
        return np.asarray(a.to_numpy(zero_copy_only=False), dtype=object)

    tag = text(mapping["tag"]) if "tag" in mapping else None
    animal = text(mapping["animal"]) if "animal" in mapping else None
    stem = source_stem(path)
    if options.animal_id:
        fields["animal_id"] = options.animal_id
    else:
        base = animal if animal is not None else tag
        if base is not None and tag is not None:
            base = np.where(base == None, tag, base)  # noqa: E711
        fields["animal_id"] = stem if base is None else np.where(base == None, stem, base)  # noqa: E711
    fields["tag_id"] = tag
    used |= {mapping[k] for k in ("animal", "tag") if k in mapping}
    for key, canon in (("alt", "alt_m"), ("hdop", "hdop"), ("sats", "n_sats")):
        if key in mapping:
            fields[canon] = to_float(table.column(mapping[key])).values
            used.add(mapping[key])
    if "fix_type" in mapping:
        fields["fix_type"] = map_values(table.column(mapping["fix_type"]), FIX_TYPES)
        used.add(mapping["fix_type"])
    if "argos_lc" in mapping:
        lc = map_category(table.column(mapping["argos_lc"]), ARGOS_LC_CODES, ARGOS_LC_DTYPE)
        fields["argos_lc"] = lc
        if "fix_type" not in mapping:  # a row with a class is an Argos location
            fields["fix_type"] = np.where(lc.codes >= 0, "argos", None)
        used.add(mapping["argos_lc"])

    frame = build_frame(raw, path, fields,
                        flags=[("bad_time", time.bad), ("bad_value", bad_pos)], used=used)
    resolution = day_resolution(time.values, fields["animal_id"])
    if resolution is not None:
        frame["time_resolution_s"] = resolution
        notes.append(DATES_ONLY_NOTE)
    return Parsed(frame=frame, format=fmt, rows_read=rows_read, notes=notes)


FORMAT = register(Format("generic-csv", "Generic delimited text with a column mapping", sniff, parse,
                           priority=90))
