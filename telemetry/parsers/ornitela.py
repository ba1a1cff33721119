"""Ornitela GPS-GSM loggers (OrniTrack), CSV export of the Ornitela web portal.

Header ``device_id, UTC_datetime, UTC_date, UTC_time, datatype, satcount,
U_bat_mV, bat_soc_pct, solar_I_mA, hdop, Latitude, Longitude, Altitude_m,
speed_km_h, direction_deg, ...``; newer firmware adds ``device_name``,
``MSL_altitude_m`` and more sensor columns.

* ``datatype`` interleaves position records (``GPS``, ``GPSS``, ``GPSD`` ...)
  with sensor-only records (``SENSORS``, ``ODBA`` ...). Only datatypes that
  contain ``GPS`` are kept as fixes; the others are counted by datatype in
  ``Parsed.skipped`` (they are not collar fixes, like Movebank's accelerometer
  rows). A file without a ``datatype`` column is all fixes.
* Times are UTC (the columns say so): ``UTC_datetime``, or ``UTC_date`` +
  ``UTC_time``.
* ``alt_m`` is ``MSL_altitude_m`` (height above mean sea level) when present,
  else ``Altitude_m`` (the GPS height; Ornitela documents it as above the
  ellipsoid on newer firmware). ``hdop`` and ``satcount`` are stored as given.
* ``fix_type`` is ``none`` for GPS records without coordinates, otherwise NA
  (Ornitela does not report 2D/3D).
* ``tag_id`` is ``device_id``; ``animal_id`` is ``--animal-id``, else
  ``device_name``, else ``device_id``, else the file name stem.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from telemetry.errors import ParseError
from telemetry.parsers.canonical import Context, Parsed, build_frame, join_date_time, parse_time, to_float
from telemetry.parsers.detect import Format, Head, ReadOptions, norm_name, register
from telemetry.parsers.source import Source, source_stem
from telemetry.parsers.table import filter_rows, find_column, read_delimited, sniff_delimiter, split_header

FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S", "%d.%m.%Y %H:%M:%S", "%d/%m/%Y %H:%M:%S",
           "%Y-%m-%d %H:%M")


def _names(head: Head) -> list[str]:
    line = head.line(head.first_nonblank())
    return [norm_name(n) for n in split_header(line, sniff_delimiter(line))]


def sniff(head: Head) -> bool:
    """``device_id`` + ``UTC_datetime`` (or ``UTC_date``/``UTC_time``) + Latitude/Longitude."""
    names = set(_names(head))
    has_time = "utc-datetime" in names or {"utc-date", "utc-time"} <= names
    return has_time and {"device-id", "latitude", "longitude"} <= names


def _col(names: list[str], *cands: str) -> str | None:
    return find_column(names, *cands, normalise=norm_name)


def _text(col: pa.ChunkedArray) -> np.ndarray:
    arr = pc.utf8_trim_whitespace(pc.cast(col, pa.string()))
    arr = pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=object)


def _gps_rows(datatype: pa.ChunkedArray) -> tuple[np.ndarray, dict[str, int]]:
    """Rows whose datatype names a GPS record; counts of the other datatypes."""
    enc = pc.dictionary_encode(pc.utf8_upper(pc.utf8_trim_whitespace(pc.cast(datatype, pa.string()))))
    enc = enc.combine_chunks() if isinstance(enc, pa.ChunkedArray) else enc
    kinds = enc.dictionary.to_pylist()
    codes = enc.indices.fill_null(len(kinds)).to_numpy(zero_copy_only=False)
    # blank datatype: keep (never lose a row whose kind we cannot tell)
    is_gps = np.array(["GPS" in k for k in kinds] + [True])
    keep = is_gps[codes]
    counts = np.bincount(codes[~keep], minlength=len(kinds) + 1)
    return keep, {kinds[i]: int(c) for i, c in enumerate(counts[:-1]) if c}


def parse(src: Source, head: Head, options: ReadOptions) -> Parsed:
    """Read an Ornitela CSV export into the canonical table (GPS records only)."""
    line = head.line(head.first_nonblank())
    header = split_header(line, sniff_delimiter(line))
    ids = [c for c in (_col(header, "device_id"), _col(header, "device_name")) if c]
    # ids are labels, not numbers (leading zeros, long integers)
    raw = read_delimited(src, header_line=head.first_nonblank() + 1, types={c: pa.string() for c in ids})
    names = raw.names
    rows_read = raw.table.num_rows + len(raw.malformed)
    dt_col = _col(names, "UTC_datetime")
    date_col, clock_col = _col(names, "UTC_date"), _col(names, "UTC_time")
    lat_col, lon_col = _col(names, "Latitude"), _col(names, "Longitude")
    if lat_col is None or lon_col is None or (dt_col is None and (date_col is None or clock_col is None)):
        raise ParseError("Ornitela file without UTC_datetime, Latitude or Longitude", src.name, raw.header_line)

    skipped: dict[str, int] = {}
    type_col = _col(names, "datatype")
    if type_col is not None and raw.table.num_rows:
        keep, skipped = _gps_rows(raw.table.column(type_col))
        raw = filter_rows(raw, keep)
    table = raw.table

    if dt_col is not None:
        when, t_col = table.column(dt_col), dt_col
        if date_col is not None and clock_col is not None:
            when = pc.coalesce(pc.cast(when, pa.string()), join_date_time(table.column(date_col), table.column(clock_col)))
    else:
        when, t_col = join_date_time(table.column(date_col), table.column(clock_col)), date_col
    if not pa.types.is_timestamp(when.type):
        when = pc.cast(when, pa.string())
    ctx = Context(src.name, raw, t_col, "Ornitela times are 'YYYY-MM-DD HH:MM:SS' UTC")
    sample = [s for s in when.slice(0, 50).drop_null().to_pylist() if isinstance(s, str)]
    iso = all(len(s) >= 10 and s[4] == "-" and s[7] == "-" for s in sample)
    time = parse_time(when, ctx, formats=() if iso else FORMATS, naive_is_utc=True)
    lon = to_float(table.column(lon_col), Context(src.name, raw, lon_col), required=True)
    lat = to_float(table.column(lat_col), Context(src.name, raw, lat_col), required=True)
    used = {c for c in (dt_col, lon_col, lat_col) if c}

    dev_col, name_col = _col(names, "device_id"), _col(names, "device_name")
    device = _text(table.column(dev_col)) if dev_col else None
    label = _text(table.column(name_col)) if name_col else None
    stem = source_stem(src.name)
    animal: object = options.animal_id
    if animal is None:
        animal = label if label is not None else device
        if animal is not None and device is not None:
            animal = np.where(animal == None, device, animal)  # noqa: E711
        animal = stem if animal is None else np.where(animal == None, stem, animal)  # noqa: E711
    fields: dict[str, object] = {"time": time.values, "lon": lon.values, "lat": lat.values,
                                 "animal_id": animal, "tag_id": device}
    used |= {c for c in (dev_col, name_col) if c}
    alt_col = _col(names, "MSL_altitude_m", "Altitude_m")
    for canon, col in (("alt_m", alt_col), ("hdop", _col(names, "hdop")), ("n_sats", _col(names, "satcount"))):
        if col is not None:
            fields[canon] = to_float(table.column(col)).values
            used.add(col)
    no_xy = ~(np.isfinite(lon.values) & np.isfinite(lat.values))
    fields["fix_type"] = np.where(no_xy, "none", None).astype(object)

    frame = build_frame(raw, src.name, fields,
                        flags=[("bad_time", time.bad), ("bad_value", lon.bad | lat.bad)], used=used)
    notes = []
    if skipped:
        notes.append("non-GPS records not kept: " + ", ".join(f"{k} {v}" for k, v in skipped.items()))
    return Parsed(frame=frame, format="ornitela", rows_read=rows_read, skipped=skipped, notes=notes)


FORMAT = register(Format("ornitela", "Ornitela GPS-GSM logger CSV", sniff, parse))
