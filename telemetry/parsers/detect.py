"""Recognising a file's format from its content (never from its name).

Each format module registers a :class:`Format` with a ``sniff`` function that
looks at the first lines. :func:`detect` asks them in registry order, the most
specific layouts first, the generic CSV last.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from telemetry.errors import ParseError
from telemetry.parsers.source import Source


@dataclass(frozen=True)
class ReadOptions:
    """Options for reading collar files.

    Attributes
    ----------
    tz : str, optional
        IANA time zone of files that only have local times (never guessed).
    columns : dict, optional
        Generic CSV mapping, canonical name → file column, e.g.
        ``{"time": "DateTime", "lon": "X", "lat": "Y", "animal": "Name"}``.
    format : str, optional
        Force a parser by name instead of detecting it.
    animal_id : str, optional
        Animal id for files that carry none (default: tag id, else file name).
    """

    tz: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    format: str | None = None
    animal_id: str | None = None


def norm_name(name: str) -> str:
    """Normalise a column name for matching: lower case, ``_ . space`` → ``-``, units dropped."""
    name = name.strip().strip('"').lower()
    name = re.sub(r"[\s_.]+", "-", name)
    return name.strip("-")


@dataclass(frozen=True)
class Head:
    """The start of a file, for sniffing."""

    lines: list[str]

    def line(self, i: int) -> str:
        """Line ``i`` (0-based) or ''."""
        return self.lines[i] if i < len(self.lines) else ""

    def first_nonblank(self) -> int:
        for i, line in enumerate(self.lines):
            if line.strip(" ,;\t"):
                return i
        return 0

    def find_line(self, predicate: Callable[[str], bool], limit: int = 200) -> int | None:
        """Index of the first of the first ``limit`` lines satisfying ``predicate``."""
        for i, line in enumerate(self.lines[:limit]):
            if predicate(line):
                return i
        return None


@dataclass(frozen=True)
class Format:
    """A file format: how to recognise it and how to parse it.

    ``priority`` orders sniffing (lower first): vendor layouts with distinctive
    headers keep the default, broad formats (Movebank, GPX, generic CSV) go last.
    """

    name: str
    label: str
    sniff: Callable[[Head], bool]
    parse: Callable[[Source, Head, ReadOptions], object]
    priority: int = 50


REGISTRY: list[Format] = []


def register(fmt: Format) -> Format:
    """Add a format to the registry, keeping it in sniffing order (priority, then name)."""
    REGISTRY[:] = sorted(
        [f for f in REGISTRY if f.name != fmt.name] + [fmt], key=lambda f: (f.priority, f.name)
    )
    return fmt


def by_name(name: str) -> Format:
    for fmt in REGISTRY:
        if fmt.name == name:
            return fmt
    known = ", ".join(f.name for f in REGISTRY)
    raise ParseError(f"unknown format '{name}' (known: {known})")


def looks_binary(src: Source) -> bool:
    """True for content that is clearly not text (NUL bytes, many control chars)."""
    head = src.read_head(4096)
    if b"\x00" in head:
        return True
    ctrl = sum(1 for b in head if b < 9 or 13 < b < 32)
    return bool(head) and ctrl > 0.05 * len(head)
