"""ATS (Advanced Telemetry Systems) Iridium / Globalstar collar downloads.

Two layouts, recognised from their header:

* **combined fixes** ``collarserialnumber, date, numberfixes, battvoltage,
  mortality, breakoff, gpsontime, satontime, saterrors, gmtoffset, lowbatt,
  event, latitude, longitude, cepradius_km, temperature, hdop, numsats,
  fixtime, activity`` (any case / order);
* **position download** ``CollarSerialNumber, Year, Julianday, Hour, Minute,
  Activity, Temperature, Latitude, Longitude, HDOP, NumSats, FixTime, 2D/3D``
  (two-digit year and day of year, collar clock).

Time zone of ``date`` — what we could establish and what we assume
--------------------------------------------------------------------
ATS documents no time zone in the file. The R package ``collar`` (MIT,
Huh/collar, ``R/fetch_ats.R``), written against ATS downloads, states that
ATS writes ``GmtOffset`` with the *opposite* of the usual sign ("GmtOffset is
multiplied by -1 to correct for ATS using non-standard syntax") and derives
``DateUTC = collar time - (-GmtOffset) h``, i.e. ``UTC = local + gmtoffset``.
We therefore read ``date`` as the collar's clock and convert with

    time_utc = date + gmtoffset hours

which is the identity when ``gmtoffset`` is 0 (collars set to GMT, the
common configuration). A row with an empty ``gmtoffset`` is converted with
``--tz`` if given, otherwise its time is NA and it is flagged ``bad_time``.
Times written with an explicit offset or ``Z`` are taken as they are. The
applied convention is repeated in the file's notes so it is visible in the
read report. The position download has no offset column: its times need
``--tz`` (``--tz UTC`` for collars set to GMT).

Fix quality: ``hdop`` and ``numsats`` are stored as given; rows without
coordinates have ``fix_type`` ``none``; the position download's ``2D/3D``
column (2 or 3) gives ``2D``/``3D``. ``cepradius_km`` (Iridium/Globalstar
error radius) and the other columns stay as vendor extras.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from telemetry.errors import ParseError
from telemetry.parsers.canonical import (
    Context,
    Converted,
    Parsed,
    build_frame,
    localise,
    map_values,
    parse_time,
    to_float,
)
from telemetry.parsers.detect import Format, Head, ReadOptions, norm_name, register
from telemetry.parsers.source import Source, source_stem
from telemetry.parsers.table import find_column, read_delimited, sniff_delimiter, split_header

DATE_FORMATS = (
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
)
"""ATS web downloads write US-style ``M/D/YYYY h:mm:ss AM``; spreadsheets re-save as ISO."""

COMBINED = {"collarserialnumber", "date", "gmtoffset", "latitude", "longitude"}
POSITIONS = {"collarserialnumber", "year", "julianday", "hour", "minute", "latitude", "longitude"}
NS_PER_HOUR = 3_600_000_000_000


def _names(head: Head) -> list[str]:
    line = head.line(head.first_nonblank())
    return [norm_name(n) for n in split_header(line, sniff_delimiter(line))]


def sniff(head: Head) -> bool:
    """The ATS combined or position header (``collarserialnumber`` plus time and coordinates)."""
    names = set(_names(head))
    return COMBINED <= names or POSITIONS <= names


def _col(names: list[str], *cands: str) -> str | None:
    return find_column(names, *cands, normalise=norm_name)


def _iso_like(col: pa.ChunkedArray) -> bool:
    sample = [s for s in col.slice(0, 50).drop_null().to_pylist() if isinstance(s, str)]
    return bool(sample) and all(len(s) >= 10 and s[4] == "-" and s[7] == "-" for s in sample)


def _combined_time(src: Source, raw, names: list[str], options: ReadOptions) -> tuple[Converted, str, list[str]]:
    table = raw.table
    d_col, off_col = _col(names, "date"), _col(names, "gmtoffset")
    col = table.column(d_col)
    if pa.types.is_timestamp(col.type):
        col = pc.cast(col, pa.string())
    ctx = Context(src.name, raw, d_col, "ATS dates are 'M/D/YYYY h:mm:ss AM' or 'YYYY-MM-DD HH:MM:SS'")
    formats = () if _iso_like(col) else DATE_FORMATS
    # parse as wall clock first (naive_is_utc), then shift by each row's offset
    text = pc.utf8_trim_whitespace(pc.cast(col, pa.string()))
    zoned = pc.match_substring_regex(text, r"(?:Z|[+-]\d\d:?\d\d)$").fill_null(False)
    clock = parse_time(col, ctx, formats=formats, naive_is_utc=True)
    offset = to_float(table.column(off_col), Context(src.name, raw, off_col))
    hours = offset.values
    ns = clock.values.copy()
    zoned_np = np.asarray(zoned.to_numpy(zero_copy_only=False), dtype=bool)
    have = np.isfinite(hours) & ~zoned_np
    # ATS sign convention (see module docstring): UTC = collar clock + gmtoffset
    ns[have] = ns[have] + np.round(hours[have] * NS_PER_HOUR).astype("int64").astype("timedelta64[ns]")
    missing = ~np.isfinite(hours) & ~zoned_np & ~np.isnat(clock.values)
    notes = []
    if missing.any():
        if options.tz:
            ns[missing] = localise(clock.values[missing], options.tz, ctx)
            notes.append(f"{int(missing.sum())} rows without gmtoffset read in --tz {options.tz}")
        else:
            ns[missing] = np.datetime64("NaT")
            notes.append(f"{int(missing.sum())} rows without gmtoffset: time unknown (pass --tz)")
    bad = clock.bad | offset.bad | (missing & np.isnat(ns))
    used_offsets = np.unique(hours[have & (hours != 0)])
    if used_offsets.size:
        shown = ", ".join(f"{h:+g}" for h in used_offsets[:5])
        notes.append(f"ATS gmtoffset applied as UTC = date + gmtoffset hours ({shown})")
    return Converted(ns, bad), d_col, notes


def _positions_time(src: Source, raw, names: list[str], options: ReadOptions) -> tuple[Converted, str]:
    """Year (2 or 4 digits), day of year, hour, minute → naive UTC via ``--tz``."""
    table = raw.table
    cols = [_col(names, c) for c in ("year", "julianday", "hour", "minute")]
    parts = [to_float(table.column(c), Context(src.name, raw, c), required=True) for c in cols]
    year, jday, hour, minute = (p.values for p in parts)
    year = np.where(year < 100, year + 2000, year)
    ok = (np.isfinite(year) & np.isfinite(jday) & np.isfinite(hour) & np.isfinite(minute)
          & (year >= 1970) & (year < 2100) & (jday >= 1) & (jday <= 366)
          & (hour >= 0) & (hour < 24) & (minute >= 0) & (minute < 60))
    ns = np.full(len(year), np.datetime64("NaT"), dtype="datetime64[ns]")
    y = year[ok].astype("int64") - 1970
    start = y.astype("datetime64[Y]").astype("datetime64[D]")
    mins = (jday[ok].astype("int64") - 1) * 1440 + hour[ok].astype("int64") * 60 + minute[ok].astype("int64")
    ns[ok] = (start + mins.astype("timedelta64[m]")).astype("datetime64[ns]")
    ctx = Context(src.name, raw, cols[0])
    if options.tz is None:
        raise ParseError(
            "ATS position download has collar-clock times with no time zone; pass --tz ZONE "
            "(--tz UTC for collars set to GMT) — a zone is never guessed",
            src.name, raw.header_line, cols[0],
        )
    ns = localise(ns, options.tz, ctx)
    present = np.zeros(len(ok), bool)
    for p in parts:
        present |= p.bad
    bad = (~ok & np.isfinite(year)) | present
    return Converted(ns, bad), cols[0]


def parse(src: Source, head: Head, options: ReadOptions) -> Parsed:
    """Read an ATS Iridium/Globalstar download into the canonical table."""
    line = head.line(head.first_nonblank())
    header = split_header(line, sniff_delimiter(line))
    serial = find_column(header, "collarserialnumber", normalise=norm_name)
    # serial numbers have leading zeros ("045123"): keep them as text
    raw = read_delimited(src, header_line=head.first_nonblank() + 1,
                         types={serial: pa.string()} if serial else None)
    names = raw.names
    normed = {norm_name(n) for n in names}
    table = raw.table
    rows_read = table.num_rows + len(raw.malformed)
    notes: list[str] = []
    if COMBINED <= normed:
        time, t_col, notes = _combined_time(src, raw, names, options)
        used = {t_col}
    elif POSITIONS <= normed:
        time, t_col = _positions_time(src, raw, names, options)
        used = set()
    else:
        raise ParseError("ATS file without 'date'/'gmtoffset' or 'Year'/'Julianday' columns", src.name,
                         raw.header_line)
    lat_col, lon_col = _col(names, "latitude"), _col(names, "longitude")
    lon = to_float(table.column(lon_col), Context(src.name, raw, lon_col))
    lat = to_float(table.column(lat_col), Context(src.name, raw, lat_col))
    used |= {lat_col, lon_col}

    serial_col = _col(names, "collarserialnumber")
    serial = pc.utf8_trim_whitespace(pc.cast(table.column(serial_col), pa.string()))
    serial = pc.if_else(pc.equal(serial, ""), pa.scalar(None, pa.string()), serial)
    serial_np = np.asarray(serial.to_numpy(zero_copy_only=False), dtype=object)
    stem = source_stem(src.name)
    animal = options.animal_id or np.where(serial_np == None, stem, serial_np)  # noqa: E711
    fields: dict[str, object] = {"time": time.values, "lon": lon.values, "lat": lat.values,
                                 "animal_id": animal, "tag_id": serial_np}
    used.add(serial_col)
    for canon, cand in (("hdop", "hdop"), ("n_sats", "numsats")):
        col = _col(names, cand)
        if col is not None:
            fields[canon] = to_float(table.column(col)).values
            used.add(col)
    dim_col = _col(names, "2D/3D", "2d-3d", "dimension")
    fix = np.full(table.num_rows, None, dtype=object)
    if dim_col is not None:
        fix = map_values(table.column(dim_col), {"3": "3D", "2": "2D", "3d": "3D", "2d": "2D", "0": "none"})
    no_xy = ~(np.isfinite(lon.values) & np.isfinite(lat.values))
    fix = np.where(no_xy, "none", fix)
    fields["fix_type"] = fix
    frame = build_frame(raw, src.name, fields, flags=[("bad_time", time.bad), ("bad_value", lon.bad | lat.bad)],
                        used=used)
    return Parsed(frame=frame, format="ats", rows_read=rows_read, notes=notes)


FORMAT = register(Format("ats", "ATS Iridium/Globalstar download", sniff, parse))
