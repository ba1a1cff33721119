"""GPX 1.0 / 1.1 files: track points (``trk/trkseg/trkpt``), route points and waypoints.

Read with the expat streaming parser of the standard library (C speed, and it
knows the line and column of every element and of any syntax error; no
extra dependency). Per point, Python only collects attribute and child text;
conversion is vectorised afterwards in the shared canonical layer.

* ``lon``/``lat`` are the point's attributes (WGS84 degrees); ``alt_m`` is
  ``ele`` (metres); ``hdop``; ``n_sats`` is ``sat``; ``fix_type`` from ``fix``
  (``2d``/``3d``/``none``; ``dgps``/``pps`` are GPS solutions of unstated
  dimension, NA; the raw value stays in ``fix``).
* ``time``: with ``Z`` or an offset it is converted to UTC; naive times need
  ``--tz`` (never guessed).
* ``animal_id``: ``--animal-id``, else the point's track (or route) ``name``,
  else the file name stem. Waypoints take the first track's name when there
  is one. ``source_row`` is the line of the point's start tag.
* Namespaces are ignored (GPX 1.0, 1.1 and vendor extensions all work).
* Malformed XML is a :class:`~telemetry.errors.ParseError` with line and column.
"""

from __future__ import annotations

import re
from xml.parsers import expat

import numpy as np
import pyarrow as pa

from telemetry.parsers.canonical import Context, Parsed, build_frame, map_values, parse_time, to_float
from telemetry.parsers.detect import Format, Head, ReadOptions, register
from telemetry.parsers.source import Source, source_stem
from telemetry.parsers.table import RawTable
from telemetry.parsers.xmlread import ElementCollector, collect, local_name

POINTS = ("trkpt", "rtept", "wpt")
FIELDS = ("time", "ele", "hdop", "sat", "fix", "name")
FIX_TYPES = {"3d": "3D", "2d": "2D", "none": "none"}

_GPX_TAG = re.compile(r"<(?:[A-Za-z_][\w.-]*:)?gpx[\s>]")


def sniff(head: Head) -> bool:
    """An XML document whose root element is ``gpx``."""
    text = "\n".join(head.lines[:50])
    return bool(_GPX_TAG.search(text))


class _Collector(ElementCollector):
    """expat callbacks that collect one list per column (text only, no conversion)."""

    root = "gpx"

    def __init__(self, parser: expat.XMLParserType) -> None:
        super().__init__(parser)
        self.cols: dict[str, list] = {k: [] for k in ("lat", "lon", "line", "kind", "track", "segment", *FIELDS)}
        self.point: dict[str, str] | None = None
        self.track_names: list[str | None] = []
        self.track = -1
        self.segment = -1

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        name, _ = self.open(tag)
        if name in ("trk", "rte") and self.point is None:
            self.track_names.append(None)
            self.track = len(self.track_names) - 1
        elif name == "trkseg":
            self.segment += 1
        elif name in POINTS and self.point is None:
            lat = lon = None
            for key, value in attrs.items():
                local = local_name(key)
                if local == "lat":
                    lat = value
                elif local == "lon":
                    lon = value
            self.point = {"lat": lat, "lon": lon, "kind": name, "line": self.p.CurrentLineNumber}

    def end(self, tag: str) -> None:
        name, text, parent = self.close(tag)
        if self.point is not None:
            if name in POINTS and name == self.point["kind"]:
                pt = self.point
                c = self.cols
                c["lat"].append(pt["lat"])
                c["lon"].append(pt["lon"])
                c["line"].append(pt["line"])
                c["kind"].append(name)
                in_track = name != "wpt" and self.track >= 0
                c["track"].append(self.track if in_track else -1)
                c["segment"].append(self.segment if name == "trkpt" else -1)
                for f in FIELDS:
                    c[f].append(pt.get(f))
                self.point = None
            elif parent == self.point["kind"] and name in FIELDS:
                self.point[name] = text or None
        elif name == "name" and parent in ("trk", "rte") and self.track >= 0:
            self.track_names[self.track] = text or None


def parse(src: Source, head: Head, options: ReadOptions) -> Parsed:
    """Read the points of a GPX file into the canonical table."""
    got = collect(src, _Collector)
    c = got.cols
    n = len(c["line"])
    names = np.array(got.track_names + [None], dtype=object)
    track_idx = np.asarray(c["track"], dtype=np.int64)
    first_track = next((t for t in got.track_names if t), None)
    track_name = names[track_idx] if n else np.array([], dtype=object)  # -1 → trailing None
    table = pa.table({
        "lat": pa.array(c["lat"], pa.string()),
        "lon": pa.array(c["lon"], pa.string()),
        "time": pa.array(c["time"], pa.string()),
        "ele": pa.array(c["ele"], pa.string()),
        "hdop": pa.array(c["hdop"], pa.string()),
        "sat": pa.array(c["sat"], pa.string()),
        "fix": pa.array(c["fix"], pa.string()),
        "name": pa.array(c["name"], pa.string()),
        "kind": pa.array(c["kind"], pa.string()),
        "track": pa.array(track_name.tolist(), pa.string()),
        "segment": pa.array(np.where(np.asarray(c["segment"], dtype=np.int64) >= 0,
                                     np.asarray(c["segment"], dtype=np.int64), -1), pa.int64()),
    })
    raw = RawTable(table=table, lines=np.asarray(c["line"], dtype=np.int64), header=table.column_names,
                   header_line=1)
    if n == 0:
        frame = build_frame(raw, src.name, {}, used=set(table.column_names))
        return Parsed(frame=frame, format="gpx", rows_read=0, notes=["GPX file without points"])
    ctx = Context(src.name, raw, "time", "GPX times are ISO 8601, e.g. 2020-05-01T10:00:00Z")
    # a file without any time (a planned route) is not a reason to ask for --tz
    untimed = table.column("time").null_count == n
    time = parse_time(table.column("time"), ctx, tz=options.tz, naive_is_utc=untimed)
    lon = to_float(table.column("lon"), Context(src.name, raw, "lon"), required=True)
    lat = to_float(table.column("lat"), Context(src.name, raw, "lat"), required=True)
    stem = source_stem(src.name)
    if options.animal_id:
        animal: object = options.animal_id
    else:
        fallback = first_track or stem
        animal = np.where(track_name == None, fallback, track_name)  # noqa: E711
    fields: dict[str, object] = {
        "time": time.values, "lon": lon.values, "lat": lat.values, "animal_id": animal,
        "alt_m": to_float(table.column("ele")).values,
        "hdop": to_float(table.column("hdop")).values,
        "n_sats": to_float(table.column("sat")).values,
        "fix_type": map_values(table.column("fix"), FIX_TYPES),
    }
    frame = build_frame(raw, src.name, fields,
                        flags=[("bad_time", time.bad), ("bad_value", lon.bad | lat.bad)],
                        used={"lat", "lon", "time", "ele", "hdop", "sat"})
    kinds = dict(zip(*np.unique(np.asarray(c["kind"], dtype=object).astype(str), return_counts=True)))
    notes = ["GPX points: " + ", ".join(f"{k} {int(v)}" for k, v in sorted(kinds.items()))]
    return Parsed(frame=frame, format="gpx", rows_read=n, notes=notes)


FORMAT = register(Format("gpx", "GPX 1.0/1.1", sniff, parse, priority=80))
