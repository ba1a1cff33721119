"""Opening input files: directories, ``.gz``, ``.zip``, encodings, line endings.

A :class:`Source` is one logical file's bytes, decompressed, with CR-only line
endings turned into LF and UTF-16 turned into UTF-8, so that every parser
sees the same kind of input. Nothing here knows about collar formats.
"""

from __future__ import annotations

import codecs
import gzip
import io
import os
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from telemetry.errors import ParseError

HEAD_BYTES = 64 * 1024
"""How much of a file the format sniffers look at."""

DATA_SUFFIXES = {".csv", ".txt", ".tsv", ".dat", ".gpx", ".gz", ".zip", ".xml", ""}
"""File endings considered when a directory is expanded (case-insensitive)."""

SKIP_NAMES = {"readme", "license", "licence", "provenance", "changelog"}


@dataclass
class Source:
    """One logical input file, decompressed and normalised.

    Attributes
    ----------
    name : str
        Path as given, or ``archive.zip::member`` for archive members.
    data : bytes
        The file's bytes (UTF-8 or a single-byte encoding; LF or CRLF line ends).
    explicit : bool
        True when the user named this file; False when found in a directory or
        archive (such files are skipped, not fatal, if they are not telemetry).
    """

    name: str
    data: bytes
    explicit: bool = True
    notes: list[str] = field(default_factory=list)

    def head_text(self, nbytes: int = HEAD_BYTES) -> str:
        """The first ``nbytes`` decoded leniently (for sniffing only)."""
        return decode_lenient(self.data[:nbytes])

    def head_lines(self, nbytes: int = HEAD_BYTES) -> list[str]:
        """The first lines of the file, without line endings; last partial line dropped."""
        text = self.head_text(nbytes)
        lines = text.splitlines()
        if len(self.data) > nbytes and lines:
            lines = lines[:-1]
        return lines


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


def _looks_like_data_name(base: str) -> bool:
    stem, suffix = os.path.splitext(base.lower())
    if suffix == ".gz":
        stem, suffix = os.path.splitext(stem)
    if suffix not in DATA_SUFFIXES and suffix != ".gz":
        return False
    return stem.split("-")[0].split(".")[0] not in SKIP_NAMES


def _from_bytes(data: bytes, name: str, explicit: bool) -> Iterator[Source]:
    if _is_gzip(data):
        data = _decompress_gzip(data, name)
    if _is_zip(data):
        yield from _zip_members(data, name)
        return
    yield Source(name=name, data=normalise(data, name), explicit=explicit)


def expand_paths(paths: Iterable[str | os.PathLike[str]]) -> list[tuple[Path, bool]]:
    """Expand directories (recursively, sorted) into files.

    Returns ``(path, explicit)`` pairs; files found inside a directory are not
    explicit, so a non-telemetry file there is skipped instead of failing.
    """
    out: list[tuple[Path, bool]] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            found = sorted(
                f
                for f in path.rglob("*")
                if f.is_file()
                and not any(part.startswith(".") for part in f.relative_to(path).parts)
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
        try:
            data = path.read_bytes()
        except OSError as err:
            raise ParseError(f"cannot read file ({err.strerror})", str(path)) from None
        for src in _from_bytes(data, str(path), explicit):
            if not explicit or "::" in src.name:
                src.explicit = explicit and "::" not in src.name
            yield src
