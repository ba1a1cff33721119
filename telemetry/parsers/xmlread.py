"""Streaming XML for the XML formats (GPX, KML): expat, the standard library's C parser, which
knows the line and column of every element and of any syntax error (no extra dependency).

A format supplies a collector class whose ``start``, ``end`` and ``chars`` methods take expat's
events; :func:`collect` runs it over a source and turns every failure into one
:class:`~telemetry.errors.ParseError` naming the file and line.

Layer: parsers; imports the core and :mod:`telemetry.parsers.source`.
"""

from __future__ import annotations

from typing import Any, Protocol
from xml.parsers import expat

from telemetry.errors import ParseError
from telemetry.parsers.source import Source


class Collector(Protocol):
    def start(self, tag: str, attrs: dict[str, str]) -> None: ...

    def end(self, tag: str) -> None: ...

    def chars(self, data: str) -> None: ...


class ElementCollector:
    """What every format's collector keeps the same way: the names of the open elements
    (``stack``, innermost last), the text of the element being read, and the root element the
    format requires (``root``). A subclass calls :meth:`open` first in its ``start`` and
    :meth:`close` first in its ``end``."""

    root = ""

    def __init__(self, parser: expat.XMLParserType) -> None:
        self.p = parser
        self.stack: list[str] = []
        self.text: list[str] = []

    def open(self, tag: str) -> tuple[str, str]:
        """The element's name and its parent's (``""`` for the root, which must be :attr:`root`)."""
        name = local_name(tag)
        parent = self.stack[-1] if self.stack else ""
        if not parent and name != self.root:
            raise ParseError(f"XML root element is <{name}>, not <{self.root}>", None, self.p.CurrentLineNumber)
        self.stack.append(name)
        self.text = []
        return name, parent

    def close(self, tag: str) -> tuple[str, str, str]:
        """The element's name, its text (stripped) and its parent's name."""
        name = self.stack.pop() if self.stack else local_name(tag)
        text = "".join(self.text).strip()
        self.text = []
        return name, text, (self.stack[-1] if self.stack else "")

    def chars(self, data: str) -> None:
        self.text.append(data)


def local_name(tag: str) -> str:
    """An element's name without its namespace (expat runs with namespace processing: tags look
    like ``'uri name'``; a prefix left in place, ``gx:Track``, is dropped too).

    >>> local_name("http://www.google.com/kml/ext/2.2 Track"), local_name("gx:coord"), local_name("trkpt")
    ('Track', 'coord', 'trkpt')
    """
    return tag.rsplit(" ", 1)[-1].rsplit(":", 1)[-1]


def collect(src: Source, make: Any) -> Any:
    """Run ``make(parser)`` (a :class:`Collector`) over the whole of ``src`` and return it; a
    syntax error, a collector's own :class:`ParseError` (its line, ``src``'s name) or nesting
    too deep for Python is one ``ParseError``."""
    parser = expat.ParserCreate(namespace_separator=" ")
    collector = make(parser)
    parser.StartElementHandler = collector.start
    parser.EndElementHandler = collector.end
    parser.CharacterDataHandler = collector.chars
    parser.buffer_text = True
    try:
        parser.Parse(src.data, True)
    except expat.ExpatError as err:
        raise ParseError(
            f"malformed XML at column {err.offset + 1}: {expat.ErrorString(err.code)}", src.name, err.lineno
        ) from None
    except ParseError as err:
        raise ParseError(err.message, src.name, err.line) from None
    except RecursionError:
        raise ParseError("XML nested too deeply", src.name) from None
    return collector
