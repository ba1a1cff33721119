"""Movebank CSV: the lingua franca of animal tracking.

Handles the real variants: optional columns, interleaved non-location sensor
rows (kept out of the fix table, counted by sensor type), ``visible`` and
outlier columns (kept as extras for cleaning), all-quoted fields, CR-only or
CRLF line ends, date-only timestamps, Argos files with ``argos:lc`` and error
ellipses, R/move2-style names (``location_long``, ``location.long``).
Movebank timestamps are UTC by definition.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from telemetry.deployments import check_times, deployment_rows
from telemetry.errors import ParseError
from telemetry.parsers.canonical import (
    DATES_ONLY_NOTE,
    Context,
    Parsed,
    build_frame,
    day_resolution,
    dictionary_codes,
    map_category,
    parse_time,
    text_category,
    to_float,
)
from telemetry.parsers.detect import Format, Head, ReadOptions, norm_name, register
from telemetry.parsers.source import Source, source_stem
from telemetry.parsers.table import (
    filter_rows,
    find_column,
    read_delimited,
    sniff_delimiter,
    split_header,
    unique_names,
)
from telemetry.schema import ARGOS_LC_DTYPE, FIX_TYPE_DTYPE

LOCATION_SENSORS = {
    "gps", "argos-doppler-shift", "radio-transmitter", "solar-geolocator", "sigfox-geolocation",
    "natural-mark", "bird-ring", "geolocation-api", "gnss", "gps-xy", "acoustic-telemetry",
    "solar-geolocator-raw", "solar-geolocator-twilight", "derived",
}
"""Movebank sensor types that give positions; other sensor rows are counted, not kept."""

FIX_TYPES = {"3": "3D", "3d": "3D", "2": "2D", "2d": "2D", "0": "none", "1": "none", "no fix": "none",
             "3d-v": "3D", "2d-v": "2D", "gps-3d": "3D", "gps-2d": "2D", "val. gps-3d": "3D",
             "val. gps-2d": "2D"}

TIME = ("timestamp", "event-timestamp", "time")
LON = ("location-long", "location-lon", "long", "lon")
LAT = ("location-lat", "lat")
ANIMAL = ("individual-local-identifier", "individual-id", "animal-id", "deployment-id")
TAG = ("tag-local-identifier", "tag-id", "tag-serial-no")
ALT = ("height-above-msl", "height-above-ellipsoid", "height-raw", "gps:height", "altitude")
DOP = ("gps:hdop", "gps:dop", "gps:pdop", "gps:gdop")
SATS = ("gps:satellite-count", "gps:sat-count", "satellites-used")
FIXTYPE = ("gps:fix-type", "gps:fix-type-raw")
ARGOS_LC = ("argos:lc",)
SENSOR = ("sensor-type",)
REPEATED = ("individual-taxon-canonical-name", "study-name")


def _header(head: Head) -> list[str]:
    line = head.line(head.first_nonblank())
    return [norm_name(n) for n in split_header(line, sniff_delimiter(line))]


def sniff(head: Head) -> bool:
    names = set(_header(head))
    has_coords = {"location-long", "location-lat"} <= names
    has_ids = bool(names & {"individual-local-identifier", "tag-local-identifier", "sensor-type",
                            "event-id", "individual-id"})
    return (has_coords and ("timestamp" in names or has_ids)) or ("timestamp" in names and has_ids and
                                                                  "sensor-type" in names)


def _col(names: list[str], cands: tuple[str, ...]) -> str | None:
    return find_column(names, *cands, normalise=norm_name)


def parse(src: Source, head: Head, options: ReadOptions) -> Parsed:
    header_line = head.first_nonblank() + 1
    line = head.line(header_line - 1)
    names = unique_names(split_header(line, sniff_delimiter(line)))
    # typed columns are converted inside the CSV reader (fast); a dirty cell
    # makes read_delimited fall back to text and the lenient converters below
    types = {c: pa.float64() for c in (_col(names, LON), _col(names, LAT), _col(names, DOP),
                                       _col(names, SATS), _col(names, ALT)) if c}
    if _col(names, TIME):
        types[_col(names, TIME)] = pa.timestamp("ns")
    # identifiers and repeated labels are dictionary-encoded while parsing (in parallel):
    # they become categoricals without a second pass over a million strings
    for cands in (ANIMAL, TAG, SENSOR, *((r,) for r in REPEATED)):
        col = _col(names, cands)
        if col:
            types[col] = pa.dictionary(pa.int32(), pa.string())
    raw = read_delimited(src, header_line=header_line, types=types)
    names = raw.names
    t_col, lon_col, lat_col = _col(names, TIME), _col(names, LON), _col(names, LAT)
    for what, col in (("timestamp", t_col), ("location-long", lon_col), ("location-lat", lat_col)):
        if col is None:
            raise ParseError(f"Movebank file without a '{what}' column", src.name, raw.header_line)
    rows_read = raw.table.num_rows + len(raw.malformed)

    skipped: dict[str, int] = {}
    sensor_col = _col(names, SENSOR)
    # the sensor type of each row, encoded once: it picks the rows to keep and the Argos fixes
    sensor = dictionary_codes(raw.table.column(sensor_col)) if sensor_col is not None else None
    if sensor is not None and raw.table.num_rows:
        keep, skipped = _location_rows(sensor, raw.table.column(lon_col), raw.table.column(lat_col))
        raw = filter_rows(raw, keep)
        if not keep.all():
            sensor = (sensor[0][keep], sensor[1])

    table = raw.table
    ctx = Context(src.name, raw, t_col, "Movebank timestamps are 'YYYY-MM-DD HH:MM:SS.sss' UTC")
    time = parse_time(table.column(t_col), ctx, naive_is_utc=True)
    lon = to_float(table.column(lon_col), Context(src.name, raw, lon_col), required=True)
    lat = to_float(table.column(lat_col), Context(src.name, raw, lat_col), required=True)

    used = {t_col, lon_col, lat_col}
    fields: dict[str, object] = {"time": time.values, "lon": lon.values, "lat": lat.values}

    animal_col, tag_col = _col(names, ANIMAL), _col(names, TAG)
    fallback = options.animal_id or source_stem(src.name)
    if options.animal_id or (animal_col is None and tag_col is None):
        fields["animal_id"] = fallback
    elif animal_col is not None:
        tag_or_name = table.column(tag_col) if tag_col else None
        animal = text_category(table.column(animal_col), tag_or_name)
        fields["animal_id"] = animal if not animal.isna().any() else text_category(animal.astype(object), fallback)
    else:
        fields["animal_id"] = text_category(table.column(tag_col), fallback)
    fields["tag_id"] = text_category(table.column(tag_col)) if tag_col else None
    used |= {c for c in (animal_col, tag_col) if c}

    for canon, cands in (("alt_m", ALT), ("hdop", DOP), ("n_sats", SATS)):
        col = _col(names, cands)
        if col is not None:
            fields[canon] = to_float(table.column(col)).values
            used.add(col)
    lc_col = _col(names, ARGOS_LC)
    if lc_col is not None:
        lc = map_category(table.column(lc_col), {c.lower(): c for c in "3210ABZ"}, ARGOS_LC_DTYPE)
        fields["argos_lc"] = lc
        used.add(lc_col)
    fields["fix_type"] = _fix_types(table, names, sensor, lc_col)
    notes = []
    resolution = day_resolution(time.values, fields["animal_id"])
    if resolution is not None:
        notes.append(DATES_ONLY_NOTE)

    frame = build_frame(
        raw, src.name, fields,
        flags=[("bad_time", time.bad), ("bad_value", lon.bad | lat.bad)],
        used=used,
    )
    if resolution is not None:
        frame["time_resolution_s"] = resolution
    if skipped:
        notes.append("non-location sensor rows not kept: " + ", ".join(f"{k} {v}" for k, v in skipped.items()))
    return Parsed(frame=frame, format="movebank", rows_read=rows_read, skipped=skipped, notes=notes)


def _location_rows(sensor: tuple[np.ndarray, list[str]], lon: pa.ChunkedArray,
                   lat: pa.ChunkedArray) -> tuple[np.ndarray, dict[str, int]]:
    """Which rows come from a location sensor; counts of the others by sensor type.

    ``sensor`` is the sensor-type column as :func:`dictionary_codes` gives it.
    A sensor type is a location sensor if Movebank says so or, for a type we do
    not know, if any of its rows has coordinates (so nothing is lost silently).
    """
    codes, kinds = sensor
    kinds = [k.strip().lower() for k in kinds]
    codes = np.where(codes < 0, len(kinds), codes)
    has_xy = np.asarray(pc.and_(pc.is_valid(lon), pc.is_valid(lat)).to_numpy(zero_copy_only=False), dtype=bool)
    with_xy = np.bincount(codes[has_xy], minlength=len(kinds) + 1)
    is_loc = np.array([k in LOCATION_SENSORS or with_xy[i] > 0 for i, k in enumerate(kinds)] + [True])
    keep = is_loc[codes]
    counts = np.bincount(codes[~keep], minlength=len(kinds) + 1)
    skipped: dict[str, int] = {}
    for i, c in enumerate(counts[:-1]):
        if c:
            skipped[kinds[i]] = skipped.get(kinds[i], 0) + int(c)
    return keep, skipped


def _fix_types(table: pa.Table, names: list[str], sensor: tuple[np.ndarray, list[str]] | None,
               lc_col: str | None) -> pd.Categorical:
    """Canonical fix types; Argos rows (by sensor type ``sensor``, as :func:`dictionary_codes`
    gives it, or by an ``argos:lc`` value) become ``argos``."""
    col = _col(names, FIXTYPE)
    if col:
        out = map_category(table.column(col), FIX_TYPES, FIX_TYPE_DTYPE)
    else:
        out = pd.Categorical.from_codes(np.full(table.num_rows, -1, np.int8), dtype=FIX_TYPE_DTYPE)
    if sensor is not None:
        codes, kinds = sensor
        is_argos = np.array([k.strip().lower() == "argos-doppler-shift" for k in kinds] + [False])[codes]
    elif lc_col is not None:
        is_argos = np.asarray(table.column(lc_col).is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    else:
        return out
    codes = out.codes.copy()
    codes[is_argos] = list(FIX_TYPE_DTYPE.categories).index("argos")
    return pd.Categorical.from_codes(codes, dtype=FIX_TYPE_DTYPE)


def sniff_reference(head: Head) -> bool:
    names = set(_header(head))
    return "deploy-on-date" in names and bool(names & {"tag-id", "animal-id"})


def parse_reference(src: Source, head: Head, options: ReadOptions) -> Parsed:
    """Movebank reference (deployment) table: no fixes; its deployments (``Parsed.deployments``)
    become the deployment table of the fixes read with it (:func:`telemetry.process`)."""
    # every column as text, as written: a date cell "01000" inferred as a number came back as "1000"
    line = head.line(head.first_nonblank())
    raw = read_delimited(src, header_line=head.first_nonblank() + 1,
                         types={n: pa.string() for n in split_header(line, sniff_delimiter(line))})
    frame = build_frame(filter_rows(raw, np.zeros(raw.table.num_rows, bool)), src.name, {}, used=set(raw.names))
    n = raw.table.num_rows
    # as text, as written (a numeric id column with a gap would come back as floats: 80150.0)
    text = pa.table({name: pc.cast(col, pa.string()) for name, col in zip(raw.table.column_names, raw.table.columns)})
    table = text.to_pandas()
    check_times(table, src.name, raw.lines)  # a bad date: file, line and column now, not a bare error later
    deployments = deployment_rows(table)
    return Parsed(frame=frame, format="movebank-reference", rows_read=n, skipped={"deployment rows": n},
                  notes=[f"Movebank reference data: {n} deployments, no fixes; the deployment table of the fixes "
                         "read with it (fixes outside their animal's deployment are flagged outside_deployment; "
                         "--deployments overrides it)"],
                  deployments=deployments)


register(Format("movebank-reference", "Movebank reference (deployment) data", sniff_reference, parse_reference,
                priority=60))
FORMAT = register(Format("movebank", "Movebank CSV", sniff, parse, priority=70))
