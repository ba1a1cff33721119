"""Telonics TDC (Telonics Data Converter) condensed reports.

Two layouts of the same report are recognised from their content:

* with the metadata block: first cell ``Telonics Data Report``, then key rows
  (``Report Format``, ``Headers Row,N``, ``Data Source``, ``CTN``, ``Iridium IMEI``,
  report period, units ...); the column header is on line ``N``;
* with the metadata block stripped: the header (``Acquisition Time, ...,
  GPS Fix Attempt, GPS Latitude, GPS Longitude, ...``) is the first line.

Decisions (Telonics does not document all of them in the file):

* Times ``YYYY.MM.DD HH:MM:SS`` are UTC (TDC writes UTC unless a local-time
  report is requested, in which case the column names say so). ``time`` is
  ``Acquisition Time``, falling back to ``GPS Fix Time`` when it is empty.
* Positions are ``GPS Latitude`` / ``GPS Longitude`` (WGS84 degrees).
  ``GPS Fix Attempt`` = ``Succeeded`` or ``Resolved QFP...`` (quick-fix
  pseudoranging, a real GPS solution) is a fix; any other word (``Failed``,
  ``Unresolved QFP``, ``Battery Low`` ...) is a failed attempt: the row is kept
  with ``fix_type`` = ``none`` and flag ``no_fix``. Telonics does not say
  whether a fix was 2D or 3D, so successful fixes have ``fix_type`` NA.
* There is no DOP: ``hdop`` is NA and ``GPS Horizontal Error`` (metres, the
  receiver's estimate) stays as a vendor column.
* Iridium-only positions (``Iridium Latitude/Longitude`` with ``Iridium CEP
  Radius``, km-scale error) are not GPS fixes: such a row has NA ``lon``/``lat``,
  ``fix_type`` ``none`` and flag ``no_fix``; the Iridium columns are kept as
  vendor extras so a user can still use them.
* ``tag_id`` is the ``CTN`` metadata value when present; ``animal_id`` is
  ``--animal-id`` when given, else the CTN, else the file name stem.
"""

from __future__ import annotations

import csv

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from telemetry.errors import ParseError
from telemetry.parsers.canonical import Context, Parsed, build_frame, parse_time, to_float
from telemetry.parsers.detect import Format, Head, ReadOptions, norm_name, register
from telemetry.parsers.source import Source, source_stem
from telemetry.parsers.table import find_column, read_delimited

TIME_FORMATS = ("%Y.%m.%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S")
"""TDC writes ``2018.07.18 18:01:18``; the others appear after re-saving in a spreadsheet."""

FIX_OK_PREFIXES = ("succeeded", "resolved qfp")
"""``GPS Fix Attempt`` values (lower case prefixes) that mean a GPS position was computed."""

REQUIRED = ("acquisition-time", "gps-fix-attempt", "gps-latitude", "gps-longitude")


def _cells(line: str) -> list[str]:
    row = next(csv.reader([line]), [])
    return [c.strip().strip("\ufeff") for c in row]


def _is_header(line: str) -> bool:
    names = {norm_name(c) for c in _cells(line)}
    return set(REQUIRED) <= names


def _metadata(head: Head) -> dict[str, str]:
    """Key → first value of the metadata rows above the header (lower-case keys)."""
    meta: dict[str, str] = {}
    for line in head.lines[:200]:
        if _is_header(line):
            break
        cells = _cells(line)
        if cells and cells[0]:
            meta.setdefault(cells[0].lower(), cells[1] if len(cells) > 1 else "")
    return meta


def sniff(head: Head) -> bool:
    """A TDC report: the ``Telonics Data Report`` banner, or the TDC header on line 1."""
    first = head.line(head.first_nonblank())
    if _cells(first)[:1] == ["Telonics Data Report"]:
        return True
    return _is_header(first)


def _header_line(head: Head, path: str) -> int:
    """1-based line of the column header: ``Headers Row`` if it points at it, else searched."""
    meta = _metadata(head)
    stated = meta.get("headers row", "")
    if stated.isdigit() and _is_header(head.line(int(stated) - 1)):
        return int(stated)
    found = head.find_line(_is_header)
    if found is None:
        raise ParseError(
            "Telonics report without its column header (expected 'Acquisition Time, ..., "
            "GPS Fix Attempt, GPS Latitude, GPS Longitude')"
            + (f"; 'Headers Row' says line {stated}" if stated else ""),
            path,
            int(stated) if stated.isdigit() else None,
        )
    return found + 1


def _col(names: list[str], *cands: str) -> str | None:
    return find_column(names, *cands, normalise=norm_name)


def parse(src: Source, head: Head, options: ReadOptions) -> Parsed:
    """Read a Telonics TDC condensed report into the canonical table."""
    header_line = _header_line(head, src.name)
    raw = read_delimited(src, header_line=header_line, delimiter=",")
    names = raw.names
    t_col = _col(names, "Acquisition Time")
    fix_time_col = _col(names, "GPS Fix Time")
    attempt_col = _col(names, "GPS Fix Attempt")
    lat_col, lon_col = _col(names, "GPS Latitude"), _col(names, "GPS Longitude")
    for what, col in (("Acquisition Time", t_col), ("GPS Fix Attempt", attempt_col),
                      ("GPS Latitude", lat_col), ("GPS Longitude", lon_col)):
        if col is None:
            raise ParseError(f"Telonics report without a '{what}' column", src.name, header_line)
    table = raw.table
    rows_read = table.num_rows + len(raw.malformed)

    when = table.column(t_col)
    if fix_time_col is not None:
        # a record without an acquisition time may still carry the fix time
        when = pc.coalesce(pc.cast(when, pa.string()), pc.cast(table.column(fix_time_col), pa.string()))
    hint = "Telonics times are 'YYYY.MM.DD HH:MM:SS' UTC"
    time = parse_time(when, Context(src.name, raw, t_col, hint), formats=TIME_FORMATS, naive_is_utc=True)
    lon = to_float(table.column(lon_col), Context(src.name, raw, lon_col))
    lat = to_float(table.column(lat_col), Context(src.name, raw, lat_col))

    attempt = pc.utf8_lower(pc.utf8_trim_whitespace(pc.cast(table.column(attempt_col), pa.string())))
    ok = np.zeros(table.num_rows, dtype=bool)
    for prefix in FIX_OK_PREFIXES:
        ok |= np.asarray(pc.starts_with(attempt, prefix).fill_null(False).to_numpy(zero_copy_only=False), bool)
    has_xy = np.isfinite(lon.values) & np.isfinite(lat.values)
    failed = ~ok | ~has_xy  # failure word, blank attempt or Iridium-only row
    fix_type = np.where(failed, "none", None).astype(object)

    meta = _metadata(head) if _cells(head.line(head.first_nonblank()))[:1] == ["Telonics Data Report"] else {}
    ctn = meta.get("ctn") or None
    stem = source_stem(src.name)
    fields: dict[str, object] = {
        "time": time.values,
        "lon": lon.values,
        "lat": lat.values,
        "fix_type": fix_type,
        "animal_id": options.animal_id or ctn or stem,
        "tag_id": ctn,
    }
    frame = build_frame(
        raw, src.name, fields,
        flags=[("bad_time", time.bad), ("bad_value", lon.bad | lat.bad), ("no_fix", failed)],
        used={t_col, lon_col, lat_col},
    )
    notes = []
    if meta:
        kept = {k: meta[k] for k in ("data source", "iridium imei", "tdc version") if meta.get(k)}
        if kept:
            notes.append("Telonics report: " + ", ".join(f"{k} {v}" for k, v in kept.items()))
    n_iridium = 0
    ir_lat = _col(names, "Iridium Latitude")
    if ir_lat is not None:
        n_iridium = int((~has_xy & np.asarray(pc.is_valid(table.column(ir_lat)).to_numpy(zero_copy_only=False), bool)).sum())
    if n_iridium:
        notes.append(f"{n_iridium} Iridium-only positions kept as vendor columns, not as GPS fixes")
    return Parsed(frame=frame, format="telonics-tdc", rows_read=rows_read, notes=notes)


FORMAT = register(Format("telonics-tdc", "Telonics TDC condensed report", sniff, parse))
