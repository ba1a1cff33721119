"""Lotek collar files: Web Service CSV, GPS_3300 downloads and exports, Lifecycle/LiteTrack.

Five layouts, each recognised from its header (never from the file name):

``lotek-webservice``
    Lotek Web Service CSV. ``Date & Time [GMT]`` holds Excel serial day
    numbers (origin 1899-12-30, UTC); ``Device Name`` (user-given, usually the
    animal) and ``Device ID`` (the collar serial); ``Fix Status`` such as
    ``3D-V Fix``, ``3D Fix``, ``2D Fix`` or a failure word.
``lotek-3300``
    GPS_3300 store-on-board download: ``Date (GMT)`` ``dd.mm.yyyy`` and
    ``Time (GMT)``, ``Navigation`` 3D/2D, ``Validated`` Yes/No, ECEF and 24
    mostly unnamed satellite columns (kept as ``col_<n>`` extras).
``lotek-3300-text``
    GPS_3300 text export: names row, a units row (``mm/dd/yyyy``,
    ``hh:mm:ss``, ...; the date order is taken from it) and a row of dashes.
    Failed fixes have ``N/A`` coordinates, DOP 48.6 and ``Nav`` ``No``.
``lotek-3300-broken``
    GPS_3300 file whose header was damaged to one or two rows where only the
    GMT and local times, ``Lat``, ``Long`` and ``Elev`` are labelled (57
    columns). The labels present are located across the header rows; the GMT
    date/time may be one cell, a labelled date cell followed by an unlabelled
    time cell, or a labelled time cell next to an unlabelled date cell (found
    by its content). An unlabelled first column holding one integer per file
    is the collar id.
``lotek-lifecycle``
    Lifecycle / LiteTrack download: optional ``Key: value`` preamble
    (``Product ID`` becomes the tag id), then ``GMT Time,Latitude,...`` with
    ``M/D/YYYY H:MM`` times. ``0,0`` fixes are kept as fixes (cleaning flags
    them ``zero_coords``).

Canonical mapping for every layout: time from the GMT columns (never LMT or
local ones), ``hdop`` is the vendor's DOP as given, ``fix_type`` is ``3D``/``2D``
from the vendor's fix column or ``none`` for failed, ``No``, ``1S`` and similar
attempts (such rows are flagged ``no_fix``); the vendor's fix column is kept
as an extra under its own name because the canonical mapping is lossy.

The helpers in the first section are shared with :mod:`telemetry.parsers.vectronic`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import PurePath

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from telemetry.errors import ParseError
from telemetry.parsers.canonical import (
    Context,
    Converted,
    Parsed,
    build_frame,
    excel_serial_time,
    join_date_time,
    parse_time,
    to_float,
)
from telemetry.parsers.detect import Format, Head, ReadOptions, register
from telemetry.parsers.source import Source, source_stem
from telemetry.parsers.table import RawTable, read_delimited, sniff_delimiter, split_header, unique_names

# ---------------------------------------------------------------------------
# helpers shared by the vendor parsers (Lotek, Vectronic)
# ---------------------------------------------------------------------------

SNIFF_LINES = 20
"""How many of the first lines a sniffer inspects for a header or preamble."""


def key(name: str) -> str:
    """Compact matching key of a column name: lower case, letters and digits only.

    ``Date & Time [GMT]`` → ``datetimegmt``, ``Latitude [°]`` → ``latitude``,
    ``Altitude (m)`` → ``altitudem``. Units stay in the key on purpose where
    they carry meaning (``GMT`` vs ``Local``).
    """
    return re.sub(r"[^a-z0-9]", "", name.lower())


def cells(line: str, delimiter: str | None = None) -> list[str]:
    """The fields of one line (CSV quoting honoured), stripped."""
    return split_header(line, delimiter or sniff_delimiter(line))


def keys_of(line: str) -> set[str]:
    """The set of compact keys of a header line's fields."""
    return {key(c) for c in cells(line)}


def find(names: Sequence[str], *candidates: str) -> str | None:
    """The first name (in candidate order) whose compact :func:`key` is a candidate."""
    lookup: dict[str, str] = {}
    for name in names:
        lookup.setdefault(key(name), name)
    for cand in candidates:
        if cand in lookup:
            return lookup[cand]
    return None


def require(names: Sequence[str], what: str, candidates: Sequence[str], src: Source, raw: RawTable) -> str:
    """Like :func:`find` but a missing column is a :class:`ParseError` naming it."""
    col = find(names, *candidates)
    if col is None:
        raise ParseError(f"required column '{what}' is missing from the header", src.name,
                         raw.header_line, what)
    return col


def safe_sniff(fn):
    """Wrap a sniffer so that garbage input means 'not mine', never an exception."""

    def sniff(head: Head) -> bool:
        try:
            return bool(fn(head))
        except Exception:  # a sniffer must never break detection of other formats
            return False

    sniff.__name__ = getattr(fn, "__name__", "sniff")
    sniff.__doc__ = fn.__doc__
    return sniff


def text_values(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A column as an object array of trimmed strings, ``None`` for blank or missing."""
    arr = pc.utf8_trim_whitespace(pc.cast(col, pa.string()))
    arr = pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=object)


def pick_format(text: pa.Array | pa.ChunkedArray, formats: Sequence[str]) -> list[str]:
    """The one ``strptime`` format that parses most cells (ties: the earlier one).

    Choosing one format for the whole column, rather than trying formats cell by
    cell, keeps ``dd/mm`` and ``mm/dd`` from being mixed within a file.
    """
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks() if text.num_chunks != 1 else text.chunk(0)
    text = pc.utf8_trim_whitespace(pc.cast(text, pa.string()))
    best, best_n = None, 0
    for fmt in formats:
        try:
            n = len(text) - pc.strptime(text, format=fmt, unit="s", error_is_null=True).null_count
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        if n > best_n:
            best, best_n = fmt, n
    return [best] if best else list(formats)


def round_seconds(ns: np.ndarray) -> np.ndarray:
    """Round naive ``datetime64[ns]`` to whole seconds (NaT stays NaT)."""
    return pd.DatetimeIndex(ns).round("s").to_numpy(dtype="datetime64[ns]")


_THREE_D = r"3\s*-?\s*d"
_TWO_D = r"2\s*-?\s*d"
_FAILED = (r"^(no|none|nofix|no fix|0|[0-9]\s*s|failed|fail|invalid|timeout|time out)$|fail|no\s*fix"
           r"|[0-9]\s*-?\s*sat|unresolved")  # 'Unresolved QFP' (Lotek Swift): no position


def fix_type_from_text(values: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, list[str]]:
    """Canonical ``fix_type`` from a vendor's fix text, and the values not understood.

    ``3D``, ``3D-V Fix``, ``val. GPS-3D`` → ``3D``; ``2D Fix``, ``GPS-2D`` → ``2D``;
    ``No``, ``1S``, ``Fix Failed``, ``No Fix``, ``GPS-1 Sat``, ``GPS-2 Sat`` → ``none``
    (a position from fewer than three satellites is not a fix). Anything else → NA.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    low = pc.utf8_lower(pc.utf8_trim_whitespace(pc.cast(values, pa.string())))

    def hit(pattern: str) -> np.ndarray:
        m = pc.match_substring_regex(low, pattern)
        return np.asarray(m.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)

    failed = hit(_FAILED)
    three = hit(_THREE_D) & ~failed
    two = hit(_TWO_D) & ~failed & ~three
    present = np.asarray(pc.and_(pc.is_valid(low), pc.not_equal(low, "")).fill_null(False)
                         .to_numpy(zero_copy_only=False), dtype=bool)
    out = np.full(len(low), None, dtype=object)
    out[failed & present] = "none"
    out[two] = "2D"
    out[three] = "3D"
    unknown = present & ~(failed | two | three)
    odd = sorted({str(v) for v in np.asarray(values.to_pandas(), dtype=object)[unknown]})[:10]
    return out, odd


def assemble(
    src: Source,
    raw: RawTable,
    options: ReadOptions,
    fmt: str,
    time: Converted,
    *,
    lat: str,
    lon: str,
    used: set[str],
    alt: str | None = None,
    dop: str | None = None,
    sats: str | None = None,
    fix: str | None = None,
    fix_types: np.ndarray | None = None,
    animal: str | None = None,
    tag: str | None = None,
    tag_value: str | None = None,
    extra_fields: dict[str, object] | None = None,
    notes: Sequence[str] = (),
) -> Parsed:
    """Convert the located columns and build the canonical frame (shared by all layouts).

    Parameters
    ----------
    time : Converted
        Naive UTC ``datetime64[ns]`` per row and its bad-cell mask.
    lat, lon : str
        Coordinate columns (decimal degrees WGS84); required, mostly numeric.
    used : set of str
        Raw columns represented by canonical columns (time columns; the fix
        column is deliberately *not* added so it is kept as an extra).
    alt, dop, sats : str, optional
        Altitude (metres), DOP (dimensionless, stored in ``hdop`` as given),
        satellite count.
    fix : str, optional
        Vendor fix-type text column (mapped with :func:`fix_type_from_text`),
        unless ``fix_types`` (already canonical) is given.
    animal, tag : str, optional
        Animal-name and device-id columns; ``tag_value`` is a file-level tag id
        (e.g. from a preamble). Animal id falls back, row by row, to
        ``options.animal_id``, then the tag id, then the file stem.
    """
    table = raw.table
    n = table.num_rows
    lat_c = to_float(table.column(lat), Context(src.name, raw, lat), required=True)
    lon_c = to_float(table.column(lon), Context(src.name, raw, lon), required=True)
    fields: dict[str, object] = {"time": time.values, "lat": lat_c.values, "lon": lon_c.values}
    used = set(used) | {lat, lon}
    for canon, col in (("alt_m", alt), ("hdop", dop), ("n_sats", sats)):
        if col is not None:
            fields[canon] = to_float(table.column(col)).values
            used.add(col)
    notes = list(notes)
    if fix_types is None and fix is not None:
        fix_types, odd = fix_type_from_text(table.column(fix))
        if odd:
            notes.append(f"fix types not recognised (fix_type left empty): {', '.join(odd)}")
    if fix_types is not None:
        fields["fix_type"] = fix_types

    tag_arr = text_values(table.column(tag)) if tag is not None else None
    if tag_arr is None and tag_value:
        tag_arr = np.full(n, tag_value, dtype=object)
    animal_arr = text_values(table.column(animal)) if animal is not None else np.full(n, None, dtype=object)
    stem = source_stem(src.name)
    if stem.lower().endswith((".csv", ".txt")):  # name.csv.gz
        stem = PurePath(stem).stem
    fallback = np.full(n, options.animal_id or stem, dtype=object)
    if tag_arr is not None and not options.animal_id:
        fallback = np.where(pd.isna(tag_arr), fallback, tag_arr)
    fields["animal_id"] = np.where(pd.isna(animal_arr), fallback, animal_arr)
    fields["tag_id"] = tag_arr
    used |= {c for c in (animal, tag) if c}
    fields.update(extra_fields or {})

    no_fix = np.asarray(pd.Series(fix_types, dtype=object) == "none") if fix_types is not None else np.zeros(n, bool)
    frame = build_frame(
        raw, src.name, fields,
        flags=[("bad_time", time.bad), ("bad_value", lat_c.bad | lon_c.bad), ("no_fix", no_fix)],
        used=used,
    )
    return Parsed(frame=frame, format=fmt, rows_read=n + len(raw.malformed), notes=notes)


def header_index(head: Head) -> int:
    """0-based index of the first non-blank line (the header of single-header layouts)."""
    return head.first_nonblank()


# ---------------------------------------------------------------------------
# Lotek Web Service CSV
# ---------------------------------------------------------------------------

WS_TIME = ("datetimegmt", "datetimeutc")
LAT = ("latitude", "lat", "latitudedeg")
LON = ("longitude", "long", "lon", "longitudedeg")
TEXT_TIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%d.%m.%Y %H:%M:%S", "%d/%m/%Y %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
)


@safe_sniff
def sniff_webservice(head: Head) -> bool:
    names = keys_of(head.line(header_index(head)))
    return bool(names & set(WS_TIME)) and bool(names & {"deviceid", "fixstatus", "devicename"})


def parse_webservice(src: Source, head: Head, options: ReadOptions) -> Parsed:
    """Lotek Web Service CSV (Excel serial or text GMT times)."""
    raw = read_delimited(src, header_line=header_index(head) + 1, types={})
    names = raw.names
    t_col = require(names, "Date & Time [GMT]", WS_TIME, src, raw)
    lat = require(names, "Latitude", LAT, src, raw)
    lon = require(names, "Longitude", LON, src, raw)
    column = raw.table.column(t_col)
    ctx = Context(src.name, raw, t_col, "Lotek GMT times are Excel serial day numbers (origin 1899-12-30)")
    serial = to_float(column)
    present = int(np.count_nonzero(~np.isnan(serial.values) | serial.bad))
    if serial.n_bad <= 0.5 * max(present, 1):
        time = excel_serial_time(column, ctx)
        # Lotek fixes are on whole seconds; serials carry ~0.9 s resolution at best
        # (5 decimals), so rounding recovers the logged second.
        time = Converted(round_seconds(time.values), time.bad)
    else:
        time = parse_time(column, ctx, formats=pick_format(column, TEXT_TIME_FORMATS), naive_is_utc=True)
    return assemble(
        src, raw, options, "lotek-webservice", time, lat=lat, lon=lon, used={t_col},
        alt=find(names, "altitude", "altitudem", "height"), dop=find(names, "dop", "hdop", "pdop"),
        sats=find(names, "satellites", "sats", "nosatellites", "numsats"),
        fix=find(names, "fixstatus", "fixtype"),
        animal=find(names, "devicename", "animalname", "animal"), tag=find(names, "deviceid", "serialno"),
    )


# ---------------------------------------------------------------------------
# GPS_3300 store-on-board download and text export
# ---------------------------------------------------------------------------

DATE_FORMATS = ("%d.%m.%Y", "%m/%d/%Y", "%Y-%m-%d", "%d/%m/%Y", "%Y/%m/%d", "%d-%m-%Y")
CLOCK_FORMATS = ("%H:%M:%S", "%H:%M")


def _date_time_formats(dates: Sequence[str], clocks: Sequence[str] = CLOCK_FORMATS) -> list[str]:
    return [f"{d} {t}" for d in dates for t in clocks]


def _date_time(src: Source, raw: RawTable, date_col: str, time_col: str, dates: Sequence[str],
               clocks: Sequence[str] = CLOCK_FORMATS) -> Converted:
    table = raw.table
    joined = join_date_time(table.column(date_col), table.column(time_col))
    ctx = Context(src.name, raw, date_col, "GMT date and time columns")
    formats = pick_format(joined, _date_time_formats(dates, clocks))
    return parse_time(joined, ctx, formats=formats, naive_is_utc=True)


@safe_sniff
def sniff_3300(head: Head) -> bool:
    names = keys_of(head.line(header_index(head)))
    return {"dategmt", "timegmt"} <= names and bool(names & set(LAT))


def parse_3300(src: Source, head: Head, options: ReadOptions) -> Parsed:
    """GPS_3300 store-on-board download (``dd.mm.yyyy`` GMT dates)."""
    raw = read_delimited(src, header_line=header_index(head) + 1, types={})
    names = raw.names
    d_col = require(names, "Date (GMT)", ("dategmt",), src, raw)
    t_col = require(names, "Time (GMT)", ("timegmt",), src, raw)
    lat = require(names, "Latitude", LAT, src, raw)
    lon = require(names, "Longitude", LON, src, raw)
    time = _date_time(src, raw, d_col, t_col, DATE_FORMATS)
    return assemble(
        src, raw, options, "lotek-3300", time, lat=lat, lon=lon, used={d_col, t_col},
        alt=find(names, "altitudem", "altitude", "heightm", "height"), dop=find(names, "dop", "hdop"),
        sats=find(names, "nosatellites", "satellites", "sats"), fix=find(names, "navigation", "nav"),
        animal=None, tag=find(names, "serialno", "deviceid"),
    )


def _is_units_line(line: str) -> bool:
    low = line.lower()
    return "yyyy" in low or "hh:mm" in low or "mm/dd" in low or "dd.mm" in low


def _is_dashes_line(line: str) -> bool:
    return "-" in line and not line.strip(" \t,;|-=")


def _units_format(unit: str, kind: str) -> str | None:
    """``mm/dd/yyyy`` → ``%m/%d/%Y``; ``hh:mm:ss`` → ``%H:%M:%S`` (None if not a pattern)."""
    u = unit.strip().lower()
    if kind == "date":
        if not re.fullmatch(r"(yyyy|yy|mm|dd|m|d)([./-](yyyy|yy|mm|dd|m|d)){2}", u):
            return None
        tokens = {"yyyy": "%Y", "yy": "%y", "mm": "%m", "m": "%m", "dd": "%d", "d": "%d"}
    else:
        if not re.fullmatch(r"(hh|h)(:(mm|ss|m|s)){1,2}", u):
            return None
        tokens = {"hh": "%H", "h": "%H", "mm": "%M", "m": "%M", "ss": "%S", "s": "%S"}
    return re.sub(r"yyyy|yy|mm|dd|hh|ss|m|d|h|s", lambda m: tokens[m.group(0)], u)


@safe_sniff
def sniff_3300_text(head: Head) -> bool:
    i = header_index(head)
    names = keys_of(head.line(i))
    if not ({"gmtdate", "gmttime"} <= names and bool(names & set(LAT))):
        return False
    nxt = head.line(i + 1)
    return bool(names & {"nav", "validated", "navigation"}) or _is_units_line(nxt) or _is_dashes_line(nxt)


def parse_3300_text(src: Source, head: Head, options: ReadOptions) -> Parsed:
    """GPS_3300 text export: names, units and dashes rows; date order from the units row."""
    i = header_index(head)
    header = cells(head.line(i))
    skip = 0
    units: list[str] = []
    for line in head.lines[i + 1:i + 3]:
        if _is_units_line(line) and not units:
            units = cells(line, sniff_delimiter(head.line(i)))
        elif not _is_dashes_line(line):
            break
        skip += 1
    raw = read_delimited(src, header_line=i + 1, skip_after_header=skip, types={})
    names = raw.names
    d_col = require(names, "GMT Date", ("gmtdate",), src, raw)
    t_col = require(names, "GMT Time", ("gmttime",), src, raw)
    lat = require(names, "Latitude", LAT, src, raw)
    lon = require(names, "Longitude", LON, src, raw)
    dates, clocks = list(DATE_FORMATS), list(CLOCK_FORMATS)
    notes = []
    if units:
        pos = {key(h): k for k, h in enumerate(header)}
        d_unit = units[pos["gmtdate"]] if pos.get("gmtdate", 99_999) < len(units) else ""
        t_unit = units[pos["gmttime"]] if pos.get("gmttime", 99_999) < len(units) else ""
        d_fmt, t_fmt = _units_format(d_unit, "date"), _units_format(t_unit, "time")
        if d_fmt:
            # the units row states the order: try it first, and drop the other
            # slash order so 01/02 cannot be read the other way round
            dates = [d_fmt] + [f for f in dates if f != d_fmt and not (("/" in f) and ("/" in d_fmt))]
            notes.append(f"GMT date format from the units row: {d_unit}")
        if t_fmt:
            clocks = [t_fmt] + [f for f in clocks if f != t_fmt]
    time = _date_time(src, raw, d_col, t_col, dates, clocks)
    return assemble(
        src, raw, options, "lotek-3300-text", time, lat=lat, lon=lon, used={d_col, t_col},
        alt=find(names, "height", "heightm", "altitude", "altitudem"), dop=find(names, "dop", "hdop"),
        sats=find(names, "sats", "satellites", "nosatellites"), fix=find(names, "nav", "navigation"),
        tag=find(names, "serialno", "deviceid"), notes=notes,
    )


# ---------------------------------------------------------------------------
# GPS_3300 with a broken two-row header
# ---------------------------------------------------------------------------

_DATE_CELL = re.compile(r"^\d{1,4}[./-]\d{1,2}[./-]\d{1,4}")
_CLOCK_CELL = re.compile(r"^\d{1,2}:\d{2}(:\d{2})?$")
BROKEN_LABELS = {"gmt", "lmt", "lat", "long", "elev", "latitude", "longitude", "lon", "elevation", "elevm",
                 "date", "time", "gmtdate", "gmttime", "lmtdate", "lmttime", "localtime", "localdate",
                 "gmtdatetime", "lmtdatetime", "localdatetime"}
GMT_LABELS = ("gmt", "gmtdatetime", "gmtdate", "gmttime")
LOCAL_LABELS = {"lmt", "lmtdate", "lmttime", "localtime", "localdate", "lmtdatetime", "localdatetime"}


def _first_data_line(lines: list[str], limit: int = SNIFF_LINES) -> int | None:
    """Index of the first line with a date-like cell (the first record)."""
    for k, line in enumerate(lines[:limit]):
        if any(_DATE_CELL.match(c) for c in cells(line)):
            return k
    return None


def _broken_labels(head: Head) -> tuple[int, list[str], str] | None:
    """``(data line index, one label per data field, delimiter)`` or None if not this layout."""
    start = head.first_nonblank()
    d = _first_data_line(head.lines[start:])
    if d is None or d == 0:
        return None
    d += start
    delim = sniff_delimiter(head.line(d))
    n_fields = len(cells(head.line(d), delim))
    labels = [""] * n_fields
    for line in head.lines[start:d]:
        for k, c in enumerate(cells(line, delim)[:n_fields]):
            if c:
                labels[k] = f"{labels[k]} {c}".strip()
    return d, labels, delim


@safe_sniff
def sniff_3300_broken(head: Head) -> bool:
    found = _broken_labels(head)
    if found is None:
        return False
    _, labels, _ = found
    ks = {key(lab) for lab in labels if lab}
    # only a handful of labels in a wide table, among them GMT and coordinates
    return (bool(ks & set(GMT_LABELS)) and bool(ks & {"lat", "latitude", "long", "longitude", "lon"})
            and bool(ks & (LOCAL_LABELS | {"elev", "elevm", "elevation"}))
            and ks <= BROKEN_LABELS
            and sum(1 for lab in labels if not lab) >= len(labels) // 3)  # mostly unlabelled


def parse_3300_broken(src: Source, head: Head, options: ReadOptions) -> Parsed:
    """GPS_3300 with a damaged header: locate GMT/Lat/Long/Elev by the labels present."""
    found = _broken_labels(head)
    if found is None:
        raise ParseError("no header rows before the first record", src.name, head.first_nonblank() + 1)
    d, labels, delim = found
    first = cells(head.line(d), delim)
    names = list(labels)
    for k, lab in enumerate(labels):
        kk = key(lab)
        if kk not in GMT_LABELS and kk not in LOCAL_LABELS:
            continue
        # a time label over a date cell followed by an unlabelled time cell ...
        if k + 1 < len(labels) and not labels[k + 1] and _DATE_CELL.match(first[k]) \
                and _CLOCK_CELL.match(first[k + 1]):
            names[k + 1] = f"{lab} time"
        # ... or over a time cell after an unlabelled date cell (the single-row header)
        elif k >= 1 and not labels[k - 1] and _CLOCK_CELL.match(first[k]) and _DATE_CELL.match(first[k - 1]):
            names[k - 1] = f"{lab.split()[0]} date"
    if not labels[0] and re.fullmatch(r"\d{3,}", first[0] or ""):
        names[0] = "collar id"
    names = unique_names(names)
    raw = read_delimited(src, header_line=d, names=names, delimiter=delim, types={"collar id": pa.string()}
                         if "collar id" in names else {})
    raw.header_line = d
    g_col = require(names, "GMT", GMT_LABELS, src, raw)
    lat = require(names, "Lat", ("lat", "latitude"), src, raw)
    lon = require(names, "Long", ("long", "longitude", "lon"), src, raw)
    dates = ("%m/%d/%Y", "%d.%m.%Y", "%Y-%m-%d", "%d/%m/%Y")
    g_date = find(names, "gmtdate") if key(g_col) == "gmttime" else None
    g_clock = find(names, "gmttime") if key(g_col) in ("gmt", "gmtdate") else None
    if g_date is not None:
        time = _date_time(src, raw, g_date, g_col, dates)
        used = {g_date, g_col}
    elif g_clock is not None:
        time = _date_time(src, raw, g_col, g_clock, dates)
        used = {g_col, g_clock}
    else:
        column = raw.table.column(g_col)
        ctx = Context(src.name, raw, g_col, "GMT date (and time)")
        time = parse_time(column, ctx, formats=pick_format(column, _date_time_formats(dates)), naive_is_utc=True)
        used = {g_col}
    nav, dop, sats = _locate_nav_by_content(raw, labels)
    if nav is None:
        note = ("damaged GPS_3300 header: only GMT/LMT/Lat/Long/Elev are labelled; no navigation "
                "column recognised, so fix_type, DOP and satellites are unknown (kept as col_<n>)")
    else:
        note = (f"damaged GPS_3300 header: navigation column {nav} recognised by its values "
                f"(3D/2D/No/1S), then DOP {dop} and satellites {sats} by the GPS_3300 column order")
    return assemble(
        src, raw, options, "lotek-3300-broken", time, lat=lat, lon=lon, used=used,
        alt=find(names, "elev", "elevm", "elevation"), fix=nav, dop=dop, sats=sats, notes=[note],
        tag="collar id" if "collar id" in names else None,
    )


NAV_VALUES = {"3d", "2d", "no", "1s", "2s", "3d-v", "2d-v", "3dv", "2dv"}


def _distinct_lower(raw: RawTable, name: str) -> set[str]:
    col = raw.table.column(name)
    if not pa.types.is_string(col.type):
        return {"<not text>"}
    low = pc.utf8_lower(pc.utf8_trim_whitespace(col.combine_chunks()))
    return {v for v in pc.unique(low.drop_null()).to_pylist() if v}


def _locate_nav_by_content(raw: RawTable, labels: list[str]) -> tuple[str | None, str | None, str | None]:
    """Find the unlabelled Navigation column from its values, then DOP/Validated/Sats around it.

    In every GPS_3300 layout the order is ``DOP, Nav, Validated, Sats``; the
    neighbours are used only when ``Validated`` (Yes/No values) confirms that order.
    """
    names = raw.names
    for k, name in enumerate(names):
        if k >= len(labels) or labels[k]:
            continue
        values = _distinct_lower(raw, name)
        if values and values <= NAV_VALUES and values & {"3d", "2d", "3d-v", "2d-v", "3dv", "2dv"}:
            if k + 1 < len(names) and _distinct_lower(raw, names[k + 1]) <= {"yes", "no"}:
                dop = names[k - 1] if k >= 1 and not labels[k - 1] else None
                sats = names[k + 2] if k + 2 < len(names) and not labels[k + 2] else None
                return name, dop, sats
            return name, None, None
    return None, None, None


# ---------------------------------------------------------------------------
# Lifecycle / LiteTrack
# ---------------------------------------------------------------------------

_PREAMBLE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9 ._/-]{0,40}):\s*(.*?)[\s,;]*$")
LIFECYCLE_FORMATS = ("%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M",
                     "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M")


def _lifecycle_header(head: Head) -> int | None:
    """Index of the ``GMT Time,Latitude,...`` header, after an optional preamble.

    The preamble is usually ``Key: value`` lines, but any short preamble is
    accepted: the header itself is distinctive enough.
    """
    for k, line in enumerate(head.lines[:SNIFF_LINES]):
        if not line.strip(" ,;\t"):
            continue
        names = keys_of(line)
        # GMT Time, a coordinate and a LiteTrack quality column (a missing one is
        # then reported by the parser, naming it, instead of 'unknown layout')
        # ('GMT Time' holds date and time here; a 'GMT Date' column means a GPS_3300 export)
        if ("gmttime" in names and "gmtdate" not in names and names & {"latitude", "longitude"}
                and names & {"duration", "satellites", "dop"}):
            return k
    return None


@safe_sniff
def sniff_lifecycle(head: Head) -> bool:
    return _lifecycle_header(head) is not None


def parse_lifecycle(src: Source, head: Head, options: ReadOptions) -> Parsed:
    """Lotek Lifecycle / LiteTrack download; ``Product ID`` in the preamble is the tag id."""
    h = _lifecycle_header(head)
    if h is None:
        raise ParseError("no 'GMT Time,Latitude,Longitude' header in the first lines", src.name, 1)
    meta = {}
    for line in head.lines[:h]:
        m = _PREAMBLE.match(line)
        if m:
            meta[m.group(1).strip()] = m.group(2).strip()
    raw = read_delimited(src, header_line=h + 1, types={})
    names = raw.names
    t_col = require(names, "GMT Time", ("gmttime",), src, raw)
    lat = require(names, "Latitude", LAT, src, raw)
    lon = require(names, "Longitude", LON, src, raw)
    column = raw.table.column(t_col)
    ctx = Context(src.name, raw, t_col, "Lifecycle times are M/D/YYYY H:MM GMT")
    time = parse_time(column, ctx, formats=pick_format(column, LIFECYCLE_FORMATS), naive_is_utc=True)
    notes = [f"{k}: {v}" for k, v in meta.items()]
    return assemble(
        src, raw, options, "lotek-lifecycle", time, lat=lat, lon=lon, used={t_col},
        alt=find(names, "altitude", "altitudem", "height"), dop=find(names, "dop", "hdop"),
        sats=find(names, "satellites", "sats"), tag_value=next((v for k, v in meta.items() if key(k) in ("productid", "serialno", "deviceid")), None), notes=notes,
    )


register(Format("lotek-webservice", "Lotek Web Service CSV", sniff_webservice, parse_webservice))
register(Format("lotek-3300", "Lotek GPS_3300 download", sniff_3300, parse_3300))
register(Format("lotek-3300-text", "Lotek GPS_3300 text export", sniff_3300_text, parse_3300_text))
register(Format("lotek-lifecycle", "Lotek Lifecycle/LiteTrack download", sniff_lifecycle, parse_lifecycle))
register(Format("lotek-3300-broken", "Lotek GPS_3300 (damaged header)", sniff_3300_broken, parse_3300_broken,
                priority=55))  # after the intact layouts: its sniffer is the loosest

