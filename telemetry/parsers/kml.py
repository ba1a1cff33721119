"""KML / KMZ (Google Earth) files: timed points and ``gx:Track`` tracks.

Collar portals (Vectronic GPS Plus X, Movebank) and field teams share tracks as KML. Read with
expat, as :mod:`telemetry.parsers.gpx` is (line numbers of every element; no dependency):

* a ``Placemark`` with a ``Point`` and a ``TimeStamp`` (``when``; or a ``TimeSpan``'s ``begin``)
  is one fix; ``coordinates`` are ``lon,lat[,alt]`` (WGS84 degrees, metres);
* a ``gx:Track`` holds one fix per ``when``, paired in order with its ``gx:coord`` (``lon lat
  [alt]``); a ``gx:MultiTrack`` several tracks;
* ``animal_id``: ``--animal-id``, else a track's ``Placemark`` name, else the name of the
  innermost ``Folder`` holding the fix (an animal's folder, as the portals write them), else the
  file name stem; ``source_row`` is the line of the point's ``Placemark`` or of the track's ``when``;
* placemarks without a time (a drawn line, a camp) are not fixes: they are counted in a note;
* times with ``Z`` or an offset are UTC; naive times need ``--tz``, as in GPX. KMZ archives are
  read through their ``.kml`` members (:mod:`telemetry.parsers.source`).

Malformed XML is a :class:`~telemetry.errors.ParseError` with line and column.
"""

from __future__ import annotations

import re
from xml.parsers import expat

import numpy as np
import pyarrow as pa

from telemetry.parsers.canonical import Context, Parsed, build_frame, parse_time, to_float
from telemetry.parsers.detect import Format, Head, ReadOptions, register
from telemetry.parsers.source import Source, source_stem
from telemetry.parsers.table import RawTable
from telemetry.parsers.xmlread import ElementCollector, collect

_KML_TAG = re.compile(r"<(?:[A-Za-z_][\w.-]*:)?kml[\s>]")


def sniff(head: Head) -> bool:
    """An XML document whose root element is ``kml``."""
    return bool(_KML_TAG.search("\n".join(head.lines[:50])))


class _Collector(ElementCollector):
    """expat callbacks: one list per column (text only), per fix."""

    root = "kml"

    def __init__(self, parser: expat.XMLParserType) -> None:
        super().__init__(parser)
        self.cols: dict[str, list] = {k: [] for k in ("time", "lon", "lat", "alt", "line", "animal")}
        self.folders: list[str | None] = []  # names of the open Folders (innermost last)
        self.mark: dict | None = None  # the open Placemark
        self.untimed = 0

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        name, _ = self.open(tag)
        if name == "Folder":
            self.folders.append(None)
        elif name == "Placemark" and self.mark is None:
            self.mark = {"line": self.p.CurrentLineNumber, "name": None, "when": None, "coords": None,
                         "track": [], "coord": [], "has_geometry": False}
        elif name == "when" and self.mark is not None and self._in_track():
            self.mark["track"].append([None, self.p.CurrentLineNumber])

    def _in_track(self) -> bool:
        """Within a ``gx:Track`` (the element being read aside, which never is one itself here)."""
        return "Track" in self.stack

    def end(self, tag: str) -> None:
        name, text, parent = self.close(tag)
        mark = self.mark
        if name == "name" and parent == "Folder" and self.folders:
            self.folders[-1] = text or None
        elif name == "Folder" and self.folders:
            self.folders.pop()
        elif mark is None:
            return
        elif name == "name" and parent == "Placemark":
            mark["name"] = text or None
        elif name == "when" and self._in_track():
            mark["track"][-1][0] = text or None
        elif name == "coord" and self._in_track():
            mark["coord"].append(text)
        elif (name == "when" and parent == "TimeStamp") or (name == "begin" and parent == "TimeSpan"):
            mark["when"] = mark["when"] or text or None
        elif name == "coordinates" and parent == "Point":
            mark["coords"] = text
        elif name in ("Point", "Track", "LineString", "Polygon", "MultiGeometry", "LinearRing"):
            mark["has_geometry"] = True
        elif name == "Placemark":
            self._emit(mark)
            self.mark = None

    def _emit(self, mark: dict) -> None:
        folder = next((f for f in reversed(self.folders) if f), None)
        if mark["track"]:
            for k, (when, line) in enumerate(mark["track"]):
                coord = mark["coord"][k] if k < len(mark["coord"]) else ""
                self._fix(when, coord.split(), line, mark["name"] or folder)
        elif mark["when"] is not None and mark["coords"] is not None:
            self._fix(mark["when"], mark["coords"].replace(" ", "").split(","), mark["line"], folder)
        elif mark["has_geometry"] or mark["coords"] is not None:
            self.untimed += 1

    def _fix(self, when: str | None, parts: list[str], line: int, animal: str | None) -> None:
        """One row: ``parts`` are lon, lat[, alt] as written (missing or empty ones None)."""
        c = self.cols
        c["time"].append(when)
        for k, col in enumerate(("lon", "lat", "alt")):
            c[col].append(parts[k] if k < len(parts) and parts[k] else None)
        c["line"].append(line)
        c["animal"].append(animal)


def parse(src: Source, head: Head, options: ReadOptions) -> Parsed:
    """Read the timed points and tracks of a KML file into the canonical table."""
    got = collect(src, _Collector)
    c = got.cols
    n = len(c["line"])
    table = pa.table({k: pa.array(c[k], pa.string()) for k in ("time", "lon", "lat", "alt", "animal")})
    raw = RawTable(table=table, lines=np.asarray(c["line"], dtype=np.int64), header=table.column_names, header_line=1)
    notes = [f"{got.untimed} placemarks without a time (drawn lines, places) are not fixes"] if got.untimed else []
    if n == 0:
        frame = build_frame(raw, src.name, {}, used=set(table.column_names))
        return Parsed(frame=frame, format="kml", rows_read=0, notes=["KML file without timed points", *notes])
    ctx = Context(src.name, raw, "time", "KML times are ISO 8601, e.g. 2020-05-01T10:00:00Z")
    time = parse_time(table.column("time"), ctx, tz=options.tz)
    lon = to_float(table.column("lon"), Context(src.name, raw, "lon"), required=True)
    lat = to_float(table.column("lat"), Context(src.name, raw, "lat"), required=True)
    animal = np.asarray(c["animal"], dtype=object)
    fields: dict[str, object] = {
        "time": time.values, "lon": lon.values, "lat": lat.values,
        "animal_id": options.animal_id or np.where(animal == None, source_stem(src.name), animal),  # noqa: E711
        "alt_m": to_float(table.column("alt")).values,
    }
    frame = build_frame(raw, src.name, fields, flags=[("bad_time", time.bad), ("bad_value", lon.bad | lat.bad)],
                        used=set(table.column_names))
    return Parsed(frame=frame, format="kml", rows_read=n, notes=notes)


FORMAT = register(Format("kml", "KML / KMZ (Google Earth): timed placemarks and gx:Track", sniff, parse,
                         priority=80))
