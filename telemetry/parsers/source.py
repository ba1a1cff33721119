"""Opening input files: directories, ``.gz``, ``.zip``, Excel workbooks, encodings, line endings.

A :class:`Source` is one logical file's bytes, decompressed, with CR-only line
endings turned into LF and UTF-16 turned into UTF-8, so that every parser
sees the same kind of input. A workbook's worksheets become one source each (as
the CSV text Excel would save), and a zipped shapefile's parts one source per
layer. Nothing here knows about collar formats.
"""

from __future__ import annotations

import codecs
import gzip
import io
import os
import re
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from telemetry.errors import ParseError

HEAD_BYTES = 64 * 1024
"""How much of a file the format sniffers look at."""

DATA_SUFFIXES = {".csv", ".txt", ".tsv", ".dat", ".gpx", ".gz", ".zip", ".xml", "",
                 ".parquet", ".geoparquet", ".feather", ".arrow", ".ipc", ".gpkg", ".geojson", ".geojsonl",
                 ".xlsx", ".xlsm", ".xls", ".kml", ".kmz", ".shp"}
"""File endings considered when a directory is expanded (case-insensitive)."""

SKIP_NAMES = {"readme", "license", "licence", "provenance", "changelog"}

COUNT_BLOCK_BYTES = 8 << 20
"""Block size (bytes) for counting line feeds in a file on disk."""

IGNORE_MARKER = ".telemetry-ignore"
"""A file of this name makes directory expansion skip its folder (and subfolders)."""

DATASET_MANIFEST = "_telemetry_dataset.json"
"""Marker file of a folder written by :func:`telemetry.io.dataset.write_dataset`."""


class Source:
    """One logical input file, decompressed and normalised.

    A plain file on disk is not loaded: parsers stream it from ``path`` with
    :meth:`open_stream` (so a 1 GB CSV never sits in memory next to the table
    built from it). Compressed, archived or re-encoded input is held as bytes.

    Attributes
    ----------
    name : str
        Path as given, or ``archive.zip::member`` for archive members.
    explicit : bool
        True when the user named this file; False when found in a directory or
        archive (such files are skipped, not fatal, if they are not telemetry).
    """

    def __init__(self, name: str, data: bytes | None = None, explicit: bool = True,
                 path: Path | None = None) -> None:
        self.name = name
        self.explicit = explicit
        self.path = path
        self._data = data
        self.notes: list[str] = []

    def __repr__(self) -> str:
        return f"Source({self.name!r})"

    @property
    def data(self) -> bytes:
        """The whole (normalised) content; loads a path-backed file on first use."""
        if self._data is None:
            self._data = self.path.read_bytes() if self.path is not None else b""
        return self._data

    @data.setter
    def data(self, value: bytes) -> None:
        self._data = value

    @property
    def size(self) -> int:
        """Size in bytes of the (decompressed) content."""
        if self._data is None and self.path is not None:
            return self.path.stat().st_size
        return len(self.data)

    def read_head(self, nbytes: int = HEAD_BYTES) -> bytes:
        """The first ``nbytes`` bytes, without loading the whole file."""
        if self._data is None and self.path is not None:
            with open(self.path, "rb") as fh:
                return fh.read(nbytes)
        return self.data[:nbytes]

    def head_text(self, nbytes: int = HEAD_BYTES) -> str:
        """The first ``nbytes`` decoded leniently (for sniffing only)."""
        return decode_lenient(self.read_head(nbytes))

    def head_lines(self, nbytes: int = HEAD_BYTES) -> list[str]:
        """The first lines of the file, without line endings; last partial line dropped."""
        text = self.head_text(nbytes)
        lines = text.splitlines()
        if self.size > nbytes and lines:
            lines = lines[:-1]
        return lines

    def open_stream(self, offset: int = 0):
        """A pyarrow input stream positioned at byte ``offset``.

        A file on disk is read by pyarrow's own (native) file reader: no Python
        code runs per block, so the GIL stays free for a parser working on
        another file at the same time, and no block is copied through Python.
        """
        import pyarrow as pa

        if self._data is None and self.path is not None:
            with open(self.path, "rb"):  # a file gone since sniffing fails as Python's open() does
                pass
            stream = pa.OSFile(str(self.path), mode="r")
            stream.seek(offset)
            return stream
        return pa.BufferReader(pa.py_buffer(self.data)[offset:])

    def count(self, needle: bytes, start: int = 0) -> int:
        """Occurrences of ``needle`` from byte ``start`` (streams path-backed files).

        A one-byte needle (the line feed) in a file on disk is counted with
        numpy over 8 MiB blocks read into one reused buffer: about 5 GB/s from
        the page cache (3× reading with ``bytes.count``), and both the read and
        the count release the GIL, so other files are parsed meanwhile.
        """
        if self._data is not None or self.path is None:
            return self.data.count(needle, start)
        if len(needle) == 1:
            import numpy as np

            block = np.empty(COUNT_BLOCK_BYTES, dtype=np.uint8)
            match = np.empty(COUNT_BLOCK_BYTES, dtype=bool)  # reused: no temporary per block
            total = 0
            with open(self.path, "rb", buffering=0) as fh:
                fh.seek(start)
                while n := fh.readinto(block):
                    total += int(np.count_nonzero(np.equal(block[:n], needle[0], out=match[:n])))
            return total
        total = 0
        with open(self.path, "rb") as fh:
            fh.seek(start)
            while chunk := fh.read(16 << 20):
                total += chunk.count(needle)
        return total

    def endswith(self, suffix: bytes) -> bool:
        if self._data is not None or self.path is None:
            return self.data.endswith(suffix)
        with open(self.path, "rb") as fh:
            fh.seek(max(0, self.size - len(suffix)))
            return fh.read() == suffix

    def release(self) -> None:
        """Drop held bytes (a Source is parsed once)."""
        if self.path is None or self._data is not None:
            self._data = b""


def decode_lenient(data: bytes) -> str:
    """Decode bytes as UTF-8, falling back to cp1252 then latin-1."""
    for enc in ("utf-8", "cp1252"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError as err:
            # a multibyte character cut at the end of a sniffing window is fine
            if enc == "utf-8" and err.start >= len(data) - 3:
                return data[: err.start].decode("utf-8", errors="replace")
    return data.decode("latin-1")


def normalise(data: bytes, name: str) -> bytes:
    """Strip BOMs, convert UTF-16/32 to UTF-8 and CR-only line endings to LF."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            data = data.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError as err:
            raise ParseError(f"broken UTF-16 text at byte {err.start}", name) from None
    elif len(data) >= 4 and data[1:4:2] == b"\x00\x00" and data[0:3:2] != b"\x00\x00":
        # UTF-16-LE without BOM (every other byte NUL in ASCII text)
        try:
            data = data.decode("utf-16-le").encode("utf-8")
        except UnicodeDecodeError:
            pass
    head = data[:HEAD_BYTES]
    if b"\r" in head and b"\n" not in head:
        data = data.replace(b"\r", b"\n")  # old Mac / old Movebank exports
    return data


def _is_gzip(data: bytes) -> bool:
    return data[:2] == b"\x1f\x8b"


def _is_zip(data: bytes) -> bool:
    return data[:4] == b"PK\x03\x04"


def _decompress_gzip(data: bytes, name: str) -> bytes:
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise ParseError(f"damaged gzip file ({err})", name) from None


def _zip_members(data: bytes, name: str) -> Iterator[Source]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = [i for i in archive.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise ParseError(f"damaged zip file ({err})", name) from None
    if _is_workbook(archive):  # an .xlsx is a zip of XML parts: its sheets are the data
        yield from _workbook_sheets(data, name)
        return
    # a shapefile's parts (.shp, .dbf, .shx, .prj, ...) are one layer, read by GDAL from the zip
    shp = {os.path.splitext(i.filename)[0] for i in infos if i.filename.lower().endswith(".shp")}
    for stem in sorted(shp):
        yield Source(name=f"{name}::{stem}.shp", data=data, explicit=False)
    infos = [i for i in infos if os.path.splitext(i.filename)[0] not in shp]
    for info in sorted(infos, key=lambda i: i.filename):
        member = f"{name}::{info.filename}"
        base = os.path.basename(info.filename)
        if base.startswith((".", "__MACOSX")) or "__MACOSX" in info.filename:
            continue
        if not _looks_like_data_name(base):
            continue
        try:
            raw = archive.read(info)
        except (zipfile.BadZipFile, OSError, ValueError, RuntimeError) as err:
            raise ParseError(f"damaged zip member ({err})", member) from None
        yield from _from_bytes(raw, member, explicit=False)


OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
"""Start of an OLE2 compound file: an Excel 97-2003 ``.xls`` workbook among others."""


def _is_workbook(archive: zipfile.ZipFile) -> bool:
    return "xl/workbook.xml" in archive.namelist()


def _cell_text(value: object) -> str:
    """A workbook cell as the CSV text a spreadsheet would export: dates and times in ISO 8601
    (as written: a time zone is the sheet's business, see the parsers), numbers in full."""
    import datetime as dt

    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _workbook_sheets(data: bytes, name: str) -> Iterator[Source]:
    """Each worksheet of an Excel ``.xlsx``/``.xlsm`` workbook as the CSV text Excel would save,
    ``book.xlsx::Sheet``: every row as wide as the sheet's used columns; its row ``n`` is line
    ``n``, so errors name the row Excel shows."""
    import csv

    try:
        import openpyxl

        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as err:  # openpyxl raises many types for a damaged workbook
        raise ParseError(f"damaged Excel workbook ({type(err).__name__}: {err})", name) from None
    try:
        for sheet in book.worksheets:
            rows = [[_cell_text(v) for v in row] for row in sheet.iter_rows(values_only=True)]
            # (a cell formatted but empty widens the sheet's dimension, not its used columns)
            width = max((max((i + 1 for i, c in enumerate(r) if c != ""), default=0) for r in rows), default=0)
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            for row in rows:
                cells = (row + [""] * width)[:width]
                if any(cells):
                    writer.writerow(cells)
                else:
                    out.write("," * (width - 1) + "\n")
            yield Source(name=f"{name}::{sheet.title}", data=out.getvalue().encode("utf-8"), explicit=False)
    finally:
        book.close()


WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")

DEFAULT_SHEET = re.compile(r"(?i)^(sheet|data|fixes|gps|лист|feuil|hoja|tabelle|foglio|planilha|blad|arkusz|"
                           r"工作表|парақ|барак)\s*\d*$")
"""Sheet titles a spreadsheet gives by itself ("Sheet1", "Лист1", "Feuil1") or that name no animal."""


def source_stem(name: str) -> str:
    """The name a source without animal ids gives its animal: the file's stem (``collar41935``
    of ``data/collar41935.csv`` or ``pack.zip::collar41935.csv``), or a worksheet's title
    (``SL03`` of ``collars.xlsx::SL03``) unless the title is one a spreadsheet gives by itself
    (then the workbook's stem: ``collars`` of ``collars.xlsx::Sheet1``).

    >>> source_stem("a/b/collar41935.csv"), source_stem("pack.zip::x/SL04.CSV"), source_stem("gulls.csv.gz")
    ('collar41935', 'SL04', 'gulls')
    >>> source_stem("collars.xlsx::SL03"), source_stem("collars.xlsx::Sheet1"), source_stem("c.xlsx::Лист1")
    ('SL03', 'collars', 'c')
    """
    parts = name.split("::")
    if len(parts) > 1 and parts[-2].lower().endswith(WORKBOOK_SUFFIXES):
        return Path(parts[-2]).stem if DEFAULT_SHEET.match(parts[-1].strip()) else parts[-1].strip()
    stem = Path(parts[-1]).stem
    return Path(stem).stem if stem.lower().endswith((".csv", ".txt", ".tsv", ".dat")) else stem  # (name.csv.gz)


def _looks_like_data_name(base: str) -> bool:
    stem, suffix = os.path.splitext(base.lower())
    if suffix == ".gz":
        stem, suffix = os.path.splitext(stem)
    if suffix not in DATA_SUFFIXES and suffix != ".gz":
        return False
    return stem.split("-")[0].split(".")[0] not in SKIP_NAMES


BINARY_TABLE_MAGIC = (b"PAR1", b"ARROW1", b"FEA1", b"SQLite format 3\x00", b"\xff\xff\xff\xff")
"""Starts of binary table files (Parquet, Arrow/Feather, SQLite/GeoPackage): never rewritten as text."""


def _needs_normalising(head: bytes) -> bool:
    """True if the content must be rewritten before parsing (BOM, UTF-16, CR-only)."""
    if head.startswith(BINARY_TABLE_MAGIC):
        return False
    if head.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return True
    if len(head) >= 4 and head[1:4:2] == b"\x00\x00":
        return True
    return b"\r" in head and b"\n" not in head


def _from_bytes(data: bytes, name: str, explicit: bool) -> Iterator[Source]:
    if _is_gzip(data):
        data = _decompress_gzip(data, name)
    if _is_zip(data):
        yield from _zip_members(data, name)
        return
    if data.startswith(OLE_MAGIC) and name.lower().endswith(".xls"):
        raise ParseError("an Excel 97-2003 workbook (.xls): save it as .xlsx or CSV", name)
    if not data.startswith(BINARY_TABLE_MAGIC):
        data = normalise(data, name)
    src = Source(name=name, data=data, explicit=explicit)
    data = b""  # only the Source holds the bytes, so the parser can release them
    yield src


def expand_paths(paths: Iterable[str | os.PathLike[str]]) -> list[tuple[Path, bool]]:
    """Expand directories (recursively, sorted) into files.

    Returns ``(path, explicit)`` pairs; files found inside a directory are not
    explicit, so a non-telemetry file there is skipped instead of failing.
    """
    out: list[tuple[Path, bool]] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            # folders marked with IGNORE_MARKER (e.g. sample_tracks/truth) are not telemetry
            ignored = {m.parent for m in path.rglob(IGNORE_MARKER)}
            # a telemetry dataset inside is one input, not its part files
            datasets = sorted(m.parent for m in path.rglob(DATASET_MANIFEST))
            ignored |= set(datasets)
            out.extend((d, False) for d in datasets)
            found = sorted(
                f
                for f in path.rglob("*")
                if f.is_file()
                and not any(part.startswith(".") for part in f.relative_to(path).parts)
                and not any(parent in ignored for parent in f.parents)
                and _looks_like_data_name(f.name)
            )
            out.extend((f, False) for f in found)
        elif path.exists():
            out.append((path, True))
        else:
            raise ParseError("no such file or directory", str(path))
    return out


def open_sources(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Source]:
    """Yield every logical input file under ``paths`` (see :func:`expand_paths`)."""
    for path, explicit in expand_paths(paths):
        if path.is_dir():  # a dataset folder (see expand_paths)
            yield Source(name=str(path), explicit=explicit, path=path)
            continue
        try:
            with open(path, "rb") as fh:
                head = fh.read(HEAD_BYTES)
            if not (_is_gzip(head) or _is_zip(head) or _needs_normalising(head) or head.startswith(OLE_MAGIC)):
                yield Source(name=str(path), explicit=explicit, path=path)
                continue
            data = path.read_bytes()
        except OSError as err:
            raise ParseError(f"cannot read file ({err.strerror})", str(path)) from None
        sources = _from_bytes(data, str(path), explicit)
        del data
        for src in sources:
            if not explicit or "::" in src.name:
                src.explicit = explicit and "::" not in src.name
            yield src
