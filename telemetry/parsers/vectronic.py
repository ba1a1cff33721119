"""Vectronic Aerospace collar files: GPS Plus X data table and Web Service / Inventa API positions.

``vectronic-gpsplusx``
    GPS Plus X data table: ``No,CollarID,AnimalID,UTC_Date,UTC_Time,...,FixType,...``
    with ``M/D/YYYY`` + ``H:MM:SS`` UTC; ``AnimalID`` may be ``N/A`` (then the
    collar id is the animal id); rows come newest first and are kept in file
    order (``source_row`` is the line). ``FixType`` text (``val. GPS-3D``,
    ``GPS-3D``, ``GPS-2D``, ``GPS-1 Sat``, ``No Fix``...) maps to 3D/2D/none.
``vectronic-api``
    Web Service / Inventa API positions (``idposition,idcollar,acquisitiontime,...``):
    ISO-8601 UTC times, ``NA`` for missing, numeric ``idfixtype``. Failed
    attempts have ``idfixtype`` 0 and a placeholder time on 2000-01-01: their
    ``time`` is NaT (flag ``no_fix``); the original ``acquisitiontime`` text is
    kept as an extra column, as is ``idfixtype``.

Vectronic ``idfixtype`` codes (:data:`API_FIX_CODES`). The code list stored
with Vectronic data in a public database schema (bcgov/biohubbc migration
comment on ``telemetry_vectronic.idfixtype``) reads: 0 No Fix, 10 GPS-1 Sat,
11 GPS-2 Sat, 12 GPS-2D, 13 GPS-3D, 14 val. GPS-3D, and 1..7 Argos-Z, B, A,
0, 1, 2, 3. It matches the GPS Plus X ``FixType`` texts one for one, so it is
the mapping used: 0/10/11 → ``none`` (fewer than 3 satellites is no
position), 12 → ``2D``, 13/14 → ``3D``, 1..7 → ``argos`` with ``argos_lc``.
One user script elsewhere reads codes 3/4/5 as 2D/3D/validated 3D; since
Argos Doppler locations never carry a DOP or satellite count, a row coded
1..7 that *has* a DOP or satellites is taken to be GPS in that reading
(3 → 2D, 4/5 → 3D, others unknown) and the file gets a note.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from telemetry.parsers.canonical import Context, Converted, Parsed, join_date_time, parse_time, to_float
from telemetry.parsers.detect import Format, Head, ReadOptions, register
from telemetry.parsers.lotek import (
    LAT,
    LON,
    assemble,
    find,
    header_index,
    keys_of,
    pick_format,
    require,
    safe_sniff,
)
from telemetry.parsers.source import Source
from telemetry.parsers.table import read_delimited

# ---------------------------------------------------------------------------
# GPS Plus X data table
# ---------------------------------------------------------------------------

GPSPLUSX_DATES = ("%m/%d/%Y", "%d.%m.%Y", "%Y-%m-%d", "%d/%m/%Y")
"""Date orders GPS Plus X writes depending on the Windows locale (US first, as in its samples)."""


@safe_sniff
def sniff_gpsplusx(head: Head) -> bool:
    names = keys_of(head.line(header_index(head)))
    return "collarid" in names and {"utcdate", "utctime"} <= names and bool(names & set(LAT))


def parse_gpsplusx(src: Source, head: Head, options: ReadOptions) -> Parsed:
    """Vectronic GPS Plus X data table (UTC date + time columns)."""
    raw = read_delimited(src, header_line=header_index(head) + 1, types={})
    names = raw.names
    d_col = require(names, "UTC_Date", ("utcdate",), src, raw)
    t_col = require(names, "UTC_Time", ("utctime",), src, raw)
    lat = require(names, "Latitude", LAT, src, raw)
    lon = require(names, "Longitude", LON, src, raw)
    joined = join_date_time(raw.table.column(d_col), raw.table.column(t_col))
    formats = pick_format(joined, [f"{d} {t}" for d in GPSPLUSX_DATES for t in ("%H:%M:%S", "%H:%M")])
    time = parse_time(joined, Context(src.name, raw, d_col, "GPS Plus X UTC_Date + UTC_Time"),
                      formats=formats, naive_is_utc=True)
    return assemble(
        src, raw, options, "vectronic-gpsplusx", time, lat=lat, lon=lon, used={d_col, t_col},
        alt=find(names, "height", "heightm", "altitude"), dop=find(names, "dop", "hdop", "pdop"),
        sats=find(names, "sats", "satellites", "satcount"), fix=find(names, "fixtype"),
        animal=find(names, "animalid", "animal"), tag=require(names, "CollarID", ("collarid",), src, raw),
    )


# ---------------------------------------------------------------------------
# Web Service / Inventa API positions
# ---------------------------------------------------------------------------

API_FIX_CODES: dict[int, str] = {0: "none", 10: "none", 11: "none", 12: "2D", 13: "3D", 14: "3D",
                                 1: "argos", 2: "argos", 3: "argos", 4: "argos", 5: "argos", 6: "argos",
                                 7: "argos"}
"""``idfixtype`` → canonical fix type (see the module docstring for the source)."""

API_ARGOS_LC: dict[int, str] = {1: "Z", 2: "B", 3: "A", 4: "0", 5: "1", 6: "2", 7: "3"}
"""``idfixtype`` 1..7 → Argos location class."""

ALT_GPS_CODES: dict[int, str] = {3: "2D", 4: "3D", 5: "3D"}
"""The alternative reading of codes 3..5 for rows that carry GPS quality fields."""

PLACEHOLDER_DAY = np.datetime64("2000-01-01", "D")
"""The date the API writes as ``acquisitiontime`` for failed attempts."""


@safe_sniff
def sniff_api(head: Head) -> bool:
    names = keys_of(head.line(header_index(head)))
    return {"idcollar", "acquisitiontime"} <= names and bool(names & {"idposition", "idfixtype"})


def _lookup(codes: np.ndarray, mapping: dict[int, str]) -> np.ndarray:
    """Vectorised dict lookup of float codes (NaN or unknown → None)."""
    table = np.full(256, None, dtype=object)
    for k, v in mapping.items():
        table[k] = v
    ok = np.isfinite(codes) & (codes >= 0) & (codes < 256) & (codes == np.round(codes))
    out = np.full(len(codes), None, dtype=object)
    out[ok] = table[codes[ok].astype(np.int64)]
    return out


def parse_api(src: Source, head: Head, options: ReadOptions) -> Parsed:
    """Vectronic Web Service / Inventa API positions table."""
    # times read as text so the original (including the placeholder) survives as an extra
    raw = read_delimited(src, header_line=header_index(head) + 1,
                         types={"acquisitiontime": pa.string(), "scts": pa.string()})
    names = raw.names
    t_col = require(names, "acquisitiontime", ("acquisitiontime",), src, raw)
    lat = require(names, "latitude", LAT, src, raw)
    lon = require(names, "longitude", LON, src, raw)
    tag = require(names, "idcollar", ("idcollar",), src, raw)
    table = raw.table
    n = table.num_rows
    time = parse_time(table.column(t_col), Context(src.name, raw, t_col, "ISO-8601 UTC"), naive_is_utc=True)

    fix_col = find(names, "idfixtype")
    dop_col, sats_col = find(names, "dop", "hdop"), find(names, "satcount", "sats")
    codes = to_float(table.column(fix_col)).values if fix_col else np.full(n, np.nan)
    dop = to_float(table.column(dop_col)).values if dop_col else np.full(n, np.nan)
    sats = to_float(table.column(sats_col)).values if sats_col else np.full(n, np.nan)
    fix_types = _lookup(codes, API_FIX_CODES)
    lc = _lookup(codes, API_ARGOS_LC)
    gps_like = (fix_types == "argos") & ((np.isfinite(dop) & (dop > 0)) | (np.isfinite(sats) & (sats > 0)))
    notes = []
    if gps_like.any():
        fix_types = np.where(gps_like, _lookup(codes, ALT_GPS_CODES), fix_types)
        lc = np.where(gps_like, None, lc)
        notes.append(f"{int(gps_like.sum())} rows coded 1..7 (Argos classes) carry DOP/satellites; "
                     "read as GPS (3 → 2D, 4/5 → 3D)")

    lat_v = to_float(table.column(lat)).values
    lon_v = to_float(table.column(lon)).values
    on_day = time.values.astype("datetime64[D]") == PLACEHOLDER_DAY
    placeholder = on_day & ((fix_types == "none") | np.isnan(lat_v) | np.isnan(lon_v))
    values = time.values.copy()
    values[placeholder] = np.datetime64("NaT")
    if placeholder.any():
        notes.append(f"{int(placeholder.sum())} failed attempts with the 2000-01-01 placeholder time: "
                     f"time left empty, original kept in '{t_col}'")

    return assemble(
        src, raw, options, "vectronic-api", Converted(values, time.bad), lat=lat, lon=lon,
        used=set(),  # acquisitiontime and idfixtype stay as extras (originals)
        alt=find(names, "height", "altitude"), dop=dop_col, sats=sats_col,
        fix_types=fix_types, tag=tag, animal=find(names, "animalid", "animalname"),
        extra_fields={"argos_lc": lc} if any(v is not None for v in lc) else None, notes=notes,
    )


register(Format("vectronic-gpsplusx", "Vectronic GPS Plus X data table", sniff_gpsplusx, parse_gpsplusx))
register(Format("vectronic-api", "Vectronic Web Service / Inventa API positions", sniff_api, parse_api))

__all__ = ["API_FIX_CODES", "API_ARGOS_LC"]
