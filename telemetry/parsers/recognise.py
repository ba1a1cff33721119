"""Which parser reads a file, from its content: binary tables first (Parquet, Feather,
GeoPackage), then each registered text format's sniffer in registry order.

Sits above the format modules (it asks :mod:`telemetry.parsers.columnar` and
:mod:`telemetry.parsers.parquet`), so :mod:`telemetry.parsers.detect` (the registry they
register into) imports none of them.
"""

from __future__ import annotations

import re

from telemetry.errors import NotTelemetry
from telemetry.parsers.columnar import kind
from telemetry.parsers.detect import REGISTRY, Format, Head, ReadOptions, by_name, looks_binary
from telemetry.parsers.parquet import is_parquet_source
from telemetry.parsers.source import Source


def detect(src: Source, options: ReadOptions) -> tuple[Format, Head]:
    """Pick the parser for a file from its content.

    Raises
    ------
    ParseError
        Empty, binary or unrecognised content (with a hint at ``--columns``).
    """
    if is_parquet_source(src):  # binary, so recognised before the text sniffers
        return by_name("geoparquet"), Head([])
    table_kind = kind(src)
    if table_kind is not None:
        return by_name(table_kind), Head([])
    head_bytes = src.read_head()
    if re.search(rb"\S", head_bytes) is None and (src.size <= len(head_bytes) or re.search(rb"\S", src.data) is None):
        raise NotTelemetry("file is empty", src.name)
    if looks_binary(src):
        raise NotTelemetry("not a text file (binary content); not telemetry", src.name, 1)
    head = Head(src.head_lines())
    if options.format:
        return by_name(options.format), head
    for fmt in REGISTRY:
        try:
            if fmt.sniff(head):
                return fmt, head
        except (IndexError, ValueError):
            continue
    if options.columns:
        # an explicit column mapping is for files no vendor parser claims
        return by_name("generic-csv"), head
    first = head.line(head.first_nonblank())[:60]
    raise NotTelemetry(
        f"unknown layout, not a collar format this tool knows (header starts '{first}'); "
        "for another CSV pass --columns time=...,lon=...,lat=...,animal=...",
        src.name,
        head.first_nonblank() + 1,
    )
