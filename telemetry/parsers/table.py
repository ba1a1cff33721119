"""Fast delimited-text reading with pyarrow, keeping every line traceable.

:func:`read_delimited` is the one place that turns a :class:`Source` into a
:class:`RawTable`: a pyarrow table of the data rows, the 1-based line number of
each row in the file, and the rows that did not fit the header (kept, to be
flagged ``malformed_row`` by the canonical layer, never dropped).
"""

from __future__ import annotations

import contextlib
import csv
import io
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from telemetry.errors import ParseError
from telemetry.parsers.source import Source, decode_lenient
from telemetry.schema import NULL_VALUES

ENCODINGS = ("utf8", "cp1252", "latin-1")


@dataclass
class RawTable:
    """Data rows of one delimited file.

    Attributes
    ----------
    table : pyarrow.Table
        One column per header name (names made unique: blanks become ``col_<n>``).
    lines : numpy.ndarray
        int64, 1-based line number of each row of ``table`` in the file.
    header : list[str]
        Column names exactly as written in the file (before de-duplication).
    header_line : int
        1-based line number of the header.
    malformed : list[tuple[int, str]]
        ``(line, text)`` of rows whose field count differs from the header.
    """

    table: pa.Table
    lines: np.ndarray
    header: list[str]
    header_line: int
    malformed: list[tuple[int, str]] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return self.table.column_names


def split_header(line: str, delimiter: str = ",") -> list[str]:
    """Split one header line into stripped names (CSV quoting honoured)."""
    row = next(csv.reader([line], delimiter=delimiter), [])
    return [c.strip().strip("\ufeff") for c in row]


def unique_names(names: list[str]) -> list[str]:
    """Make column names unique and non-empty (``col_<1-based index>``, ``name.2``)."""
    seen: dict[str, int] = {}
    out = []
    for i, name in enumerate(names):
        name = name or f"col_{i + 1}"
        if name in seen:
            seen[name] += 1
            name = f"{name}.{seen[name]}"
        else:
            seen[name] = 1
        out.append(name)
    return out


def sniff_delimiter(line: str) -> str:
    """The most frequent of ``, ; TAB |`` in a header line (comma on ties)."""
    counts = {d: line.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else ","


def _line_offsets(data: bytes, count: int) -> list[int]:
    """Byte offsets of the starts of the first ``count + 1`` lines."""
    offsets = [0]
    pos = 0
    for _ in range(count):
        nl = data.find(b"\n", pos)
        if nl < 0:
            offsets.append(len(data))
            break
        pos = nl + 1
        offsets.append(pos)
    return offsets


def read_delimited(
    src: Source,
    *,
    header_line: int = 1,
    skip_after_header: int = 0,
    delimiter: str | None = None,
    types: dict[str, pa.DataType] | None = None,
    names: list[str] | None = None,
) -> RawTable:
    """Read the delimited table whose header is on ``header_line``.

    Parameters
    ----------
    src : Source
        The input file.
    header_line : int
        1-based line number of the header (preamble lines above it are ignored).
    skip_after_header : int
        Lines between header and data to skip (units row, dashes row).
    delimiter : str, optional
        Field separator; sniffed from the header line when not given.
    types : dict, optional
        pyarrow types for columns by (unique) name. Columns whose values do not
        convert are read as strings instead (the canonical layer then converts
        them leniently and flags bad cells), so a dirty cell never fails the read.
    names : list[str], optional
        Column names to use instead of the header's (header line still skipped).
    """
    head = src.read_head()
    offsets = _line_offsets(head, header_line + skip_after_header)
    if offsets[-1] >= len(head) and src.size > len(head):
        head = src.data  # preamble longer than the sniffing window
        offsets = _line_offsets(head, header_line + skip_after_header)
    if len(offsets) <= header_line:
        raise ParseError("file ends before the header line", src.name, header_line)
    header_text = decode_lenient(head[offsets[header_line - 1]:offsets[header_line]]).rstrip("\r\n")
    delimiter = delimiter or sniff_delimiter(header_text)
    header = split_header(header_text, delimiter)
    columns = unique_names(names or header)
    start = offsets[-1] if len(offsets) > header_line + skip_after_header else src.size
    first_line = header_line + skip_after_header + 1

    bad: list[str | None] = []  # the text of each row pyarrow skipped (None: not known)

    def on_invalid(row: pacsv.InvalidRow) -> str:
        # _line_numbers finds these rows in the file to number them and keep their text
        try:
            bad.append(row.text)
        except (UnicodeDecodeError, ValueError):  # text not in this attempt's encoding
            bad.append(None)
        return "skip"

    types = {k: v for k, v in (types or {}).items() if k in columns}
    with _quiet_undecodable_rows():
        table = _read_any_encoding(src, start, columns, delimiter, types, on_invalid, bad)
    table = infer_types(table, keep=set(types))
    lines, malformed = _line_numbers(src, start, table.num_rows, first_line, bad, delimiter, len(columns))
    src.release()  # a Source is parsed once; free held bytes before the frame is built
    return RawTable(table=table, lines=lines, header=header, header_line=header_line, malformed=malformed)


_QUIET_LOCK = threading.Lock()
_quiet_depth = 0
_quiet_previous = None


@contextlib.contextmanager
def _quiet_undecodable_rows() -> Iterator[None]:
    """Silence pyarrow's 'exception ignored' report for a malformed row that is not
    UTF-8: that attempt fails anyway and the read is retried in the next encoding.

    ``sys.unraisablehook`` is process-wide and files may be read on several
    threads at once, so the hook is installed by the first reader to enter and
    restored by the last to leave (a plain save/restore per reader could leave
    another reader's hook installed for good).
    """
    global _quiet_depth, _quiet_previous
    with _QUIET_LOCK:
        if _quiet_depth == 0:
            previous = _quiet_previous = sys.unraisablehook

            def hook(unraisable):  # pragma: no cover - depends on pyarrow internals
                if not isinstance(unraisable.exc_value, UnicodeDecodeError):
                    previous(unraisable)

            sys.unraisablehook = hook
        _quiet_depth += 1
    try:
        yield
    finally:
        with _QUIET_LOCK:
            _quiet_depth -= 1
            if _quiet_depth == 0:
                sys.unraisablehook = _quiet_previous
                _quiet_previous = None


def _read_any_encoding(src, start, columns, delimiter, types, on_invalid, bad) -> pa.Table:
    """Try UTF-8, then cp1252, then latin-1; a typed column with a dirty cell → text."""
    table = None
    for encoding in ENCODINGS:
        for attempt_types in (types, {}):
            bad.clear()
            try:
                table = _stream_table(src, start, columns, delimiter, encoding, attempt_types, on_invalid)
                break
            except pa.ArrowInvalid as err:
                table = None
                msg = str(err)
                if "UTF8" in msg or "utf8" in msg or "decode" in msg.lower():
                    break  # try the next encoding
                if attempt_types:
                    continue  # a typed column had a dirty cell: read all as text
                raise ParseError(f"cannot read table: {msg.splitlines()[0]}", src.name) from None
            except (pa.ArrowException, UnicodeDecodeError, LookupError) as err:
                table = None
                if encoding == ENCODINGS[-1]:
                    raise ParseError(f"cannot read table: {err}", src.name) from None
                break
        if table is not None:
            break
    if table is None:
        raise ParseError("cannot decode the text in any known encoding", src.name)
    return table


def _stream_table(
    src: Source, start: int, columns: list[str], delimiter: str, encoding: str,
    types: dict[str, pa.DataType], on_invalid,
) -> pa.Table:
    """Read the data rows (from byte ``start``) into a table with every column typed.

    Columns the parser did not type are read as text and typed afterwards on the
    whole column (:func:`infer_types`): pyarrow infers types from the first block
    only and would fail on a column that is empty for the first rows. Explicit
    types also keep pyarrow's memory peak near the output size (its inference
    holds ~3× the file). The file is read by pyarrow's native reader and
    threads, without the GIL.
    """
    if start >= src.size:  # a header and no data rows: an empty table, not an error
        return pa.table({c: pa.array([], type=types.get(c, pa.string())) for c in columns})
    stream = src.open_stream(start)
    try:
        table = pacsv.read_csv(
            stream,
            read_options=pacsv.ReadOptions(column_names=columns, encoding=encoding),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={**{c: pa.string() for c in columns}, **types},
                null_values=NULL_VALUES,
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    finally:
        stream.close()
    return table


_BOOL_TEXT = {"true", "false", "TRUE", "FALSE", "True", "False"}


def infer_types(table: pa.Table, keep: set[str] = frozenset()) -> pa.Table:
    """Give text columns a better type where every value converts (int, float, bool);
    repetitive text (study name, sensor type) becomes dictionary-encoded.

    Decided on the whole column (not a first block), so one odd cell keeps the
    column as text rather than failing the read.
    """
    arrays = []
    for name, col in zip(table.column_names, table.columns):
        if name in keep or not pa.types.is_string(col.type) or col.null_count == len(col):
            arrays.append(col)
            continue
        better = _better_type(col)
        if pa.types.is_string(better.type) and len(better) > 1000:
            encoded = pc.dictionary_encode(better)
            distinct = len(encoded.chunk(0).dictionary) if encoded.num_chunks == 1 else len(
                pc.unique(better))
            if distinct <= 0.05 * len(better):
                better = encoded.unify_dictionaries() if encoded.num_chunks > 1 else encoded
        arrays.append(better)
    return pa.Table.from_arrays(arrays, names=table.column_names)


def _better_type(col: pa.ChunkedArray) -> pa.ChunkedArray:
    sample = col.slice(0, 2000).drop_null()
    if len(sample) == 0:
        sample = col.drop_null().slice(0, 2000)
    values = sample.to_pylist()
    if values and all(v in _BOOL_TEXT for v in values):
        candidates = [pa.bool_()]
    else:
        candidates = [pa.int64(), pa.float64()]
    for typ in candidates:
        try:
            pc.cast(sample, typ)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        try:
            if typ == pa.bool_():
                lowered = pc.utf8_lower(col)
                if not pc.all(pc.is_in(lowered.drop_null(), pa.array(["true", "false"]))).as_py():
                    return col
                return pc.equal(lowered, "true")
            return pc.cast(col, typ)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    return col


def _line_numbers(
    src: Source, start: int, n_rows: int, first_line: int, bad: list[str | None], delimiter: str, n_cols: int,
) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Line number of every kept row, and ``(line, text)`` of malformed rows.

    Fast path: no blank lines, no malformed rows and one record per line, so
    row i is on line ``first_line + i``. Counting the line feeds is one
    GIL-free pass over the file in the page cache (~0.05 s per 190 MB).
    Otherwise the rows pyarrow skipped are found in the text by their content
    (:func:`_located_line_numbers`); where that is not certain, the whole text
    is re-walked with the csv module (:func:`_csv_line_numbers`).
    """
    n_newlines = src.count(b"\n", start)
    n_physical = n_newlines + (1 if src.size > start and not src.endswith(b"\n") else 0)
    if not bad and n_physical == n_rows:
        return np.arange(first_line, first_line + n_rows, dtype=np.int64), []
    located = _located_line_numbers(src.data, start, n_rows, first_line, bad, delimiter, n_cols)
    if located is not None:
        return located
    return _csv_line_numbers(src.data, start, n_rows, first_line, delimiter, n_cols)


MAX_LOCATED_ROWS = 2000
"""Above this many skipped rows, a file is re-walked with the csv module instead."""

_ROW, _BLANK, _MALFORMED, _COVERED = 0, 1, 2, 3  # what a line holds, for _located_line_numbers


def _located_line_numbers(
    data: bytes, start: int, n_rows: int, first_line: int, bad: list[str | None], delimiter: str, n_cols: int,
) -> tuple[np.ndarray, list[tuple[int, str]]] | None:
    """Line numbers from the line feeds and the places of the rows pyarrow skipped.

    A dirty file (a truncated last line, a few short rows, blank lines) is
    numbered in ~0.2 s per million lines instead of the csv module's ~2 s: the
    empty lines come from the line-feed positions, and each skipped row is found
    by its text, anchored at a line start and ending at a line end. Its text is
    then parsed alone by the csv module, as :func:`_csv_line_numbers` would,
    and judged blank (skipped) or malformed the same way. Returns None when any
    of it is not certain (a lone CR, a row's text not found, more than
    :data:`MAX_LOCATED_ROWS` skipped rows, a line count that does not add up),
    and the caller falls back to the csv module. A kept record over several
    lines always shows in the count (its extra lines stay rows, wherever a
    skipped row's text was placed), so numbers are only returned for files
    where every kept row is one line.
    """
    if len(bad) > MAX_LOCATED_ROWS or any(text is None for text in bad):
        return None
    buf = np.frombuffer(data, dtype=np.uint8)[start:]
    if data.find(b"\r", start) >= 0:
        returns = np.flatnonzero(buf == 13) + 1
        if returns[-1] == buf.size or (buf[returns[returns < buf.size]] != 10).any():
            return None  # a lone CR ends a line for the csv module, not for pyarrow
    feeds = np.flatnonzero(buf == 10)
    line_end = feeds if buf.size == 0 or buf[-1] == 10 else np.append(feeds, buf.size)
    line_start = np.concatenate(([0], feeds + 1))[: line_end.size]
    content_end = line_end - ((line_end > line_start) & (buf[np.maximum(line_end - 1, 0)] == 13))
    kind = np.where(content_end == line_start, _BLANK, _ROW).astype(np.int8)
    malformed: list[tuple[int, str]] = []
    after = 0  # pyarrow reports skipped rows in file order, so each search starts at the last one
    for text in bad:
        raw = text.encode("utf-8")
        line = _find_line(data, start, raw, line_start, content_end, kind, after)
        if line is None and after:
            line = _find_line(data, start, raw, line_start, content_end, kind, 0)
        if line is None:
            return None
        records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
        if len(records) != 1:
            return None
        record = records[0]
        spanned = text.count("\n") + 1
        kind[line:line + spanned] = _COVERED
        if len(record) == 1 and not record[0].strip():
            kind[line] = _BLANK
        elif len(record) != n_cols:
            kind[line] = _MALFORMED
            malformed.append((first_line + line, delimiter.join(record)[:200]))
        else:
            return None  # pyarrow and csv disagree on this row
        after = line + spanned
    rows = np.flatnonzero(kind == _ROW)
    if rows.size != n_rows:
        return None  # records over several lines, or a count that does not add up
    malformed.sort()
    return rows.astype(np.int64) + first_line, malformed


def _find_line(data: bytes, start: int, raw: bytes, line_start: np.ndarray, content_end: np.ndarray,
               kind: np.ndarray, after: int) -> int | None:
    """Index of the first line from ``after`` that holds exactly ``raw`` and is not yet claimed."""
    pos = start + int(line_start[after]) if after < line_start.size else len(data)
    while True:
        if pos == start and data.startswith(raw, pos):  # the first line has no line feed before it
            hit = pos
        else:
            found = data.find(b"\n" + raw, max(pos - 1, start))
            if found < 0:
                return None
            hit = found + 1
        line = int(np.searchsorted(line_start, hit - start))
        if line < line_start.size and line_start[line] == hit - start and kind[line] == _ROW:
            last = line + raw.count(b"\n")
            if last < content_end.size and start + int(content_end[last]) == hit + len(raw):
                return line
        pos = hit + 1


def _csv_line_numbers(
    data: bytes, start: int, n_rows: int, first_line: int, delimiter: str, n_cols: int,
) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Line numbers by re-walking the whole text with the csv module (any file; ~2 s per million lines)."""
    lines: list[int] = []
    malformed: list[tuple[int, str]] = []
    reader = csv.reader(io.StringIO(decode_lenient(data[start:]), newline=""), delimiter=delimiter)
    start = first_line
    for record in reader:
        end = reader.line_num + first_line - 1
        if not record or (len(record) == 1 and not record[0].strip()):
            pass
        elif len(record) != n_cols:
            malformed.append((start, delimiter.join(record)[:200]))
        else:
            lines.append(start)
        start = end + 1
    if len(lines) != n_rows:
        # pyarrow and csv disagree (exotic quoting): fall back to row order
        lines = list(range(first_line, first_line + n_rows))
    return np.asarray(lines, dtype=np.int64), malformed


def filter_rows(raw: RawTable, keep: np.ndarray) -> RawTable:
    """The rows of ``raw`` where ``keep`` is True (malformed rows kept as they are)."""
    keep = np.asarray(keep, dtype=bool)
    if keep.all():
        return raw
    return RawTable(
        table=raw.table.filter(pa.array(keep)),
        lines=raw.lines[keep],
        header=raw.header,
        header_line=raw.header_line,
        malformed=raw.malformed,
    )


def find_column(names: list[str], *candidates: str, normalise=None) -> str | None:
    """The first column of ``names`` whose normalised form is one of ``candidates``.

    Candidates are tried in order of preference; returns the name as in ``names``.
    """
    norm = normalise or (lambda s: s.strip().lower())
    lookup: dict[str, str] = {}
    for name in names:
        lookup.setdefault(norm(name), name)
    for cand in candidates:
        if norm(cand) in lookup:
            return lookup[norm(cand)]
    return None
