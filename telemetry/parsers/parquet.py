"""GeoParquet input: a telemetry dataset partitioned by animal, or one (Geo)Parquet table.

Recognised from content, never from the name: a folder holding the manifest of
:mod:`telemetry.io.dataset`, or a file starting with the Parquet magic bytes ``PAR1``
(e.g. the ``tracks.parquet`` that ``telemetry process``/``run`` write). The point
``geometry`` column is dropped (``lon``/``lat`` carry the position).
"""

from __future__ import annotations

import io
from pathlib import Path

from telemetry.errors import ParseError
from telemetry.parsers.canonical import Parsed, conform
from telemetry.parsers.detect import Format, Head, ReadOptions, register
from telemetry.parsers.source import Source

PARQUET_MAGIC = b"PAR1"


CANONICAL_MARKERS = {"time", "lon", "lat", "flag", "source_row"}
"""Columns that mark a Parquet file written by this tool (read back exactly)."""


def is_parquet_source(src: Source) -> bool:
    """True for a dataset folder or a Parquet file with this tool's canonical columns.

    Other Parquet files are tables of fixes for :mod:`telemetry.parsers.columnar`.
    """
    import pyarrow.parquet as pq

    from telemetry.io.dataset import is_dataset

    if src.path is not None and Path(src.path).is_dir():
        return is_dataset(src.path)
    if src.read_head(4) != PARQUET_MAGIC:
        return False
    try:
        schema = pq.read_schema(src.path if src.path is not None else io.BytesIO(src.data))
    except (OSError, ValueError):
        return False  # the columnar reader reports what is wrong with it
    return CANONICAL_MARKERS <= set(schema.names)


def parse(src: Source, head: Head, options: ReadOptions) -> Parsed:
    """Read a dataset (exact dtypes, see :func:`telemetry.io.dataset.read_dataset`) or a Parquet file."""
    import pyarrow.parquet as pq

    from telemetry.io.dataset import read_dataset

    if src.path is not None and Path(src.path).is_dir():
        frame = read_dataset(src.path)
        frame.attrs = {}
        return Parsed(frame=frame, format="geoparquet", rows_read=len(frame))
    try:
        table = pq.read_table(src.path if src.path is not None else io.BytesIO(src.data))
    except (OSError, ValueError) as err:
        raise ParseError(f"cannot read as Parquet: {err}", src.name) from None
    frame = table.to_pandas().drop(columns=["geometry"], errors="ignore")
    missing = {"time", "lon", "lat"} - set(frame.columns)
    if missing:
        raise ParseError(f"Parquet file without the canonical column(s) {', '.join(sorted(missing))}", src.name)
    frame = conform(frame)
    frame.attrs = {}
    return Parsed(frame=frame, format="geoparquet", rows_read=len(frame))


FORMAT = register(Format(name="geoparquet", label="GeoParquet (telemetry dataset by animal, or tracks file)",
                         sniff=lambda head: False, parse=parse, priority=0))
