"""The canonicalising layer shared by every parser.

Parsers find columns; this module converts them (numbers, times, fix types;
coordinates in the notations people write, Unix times, longitudes written
0..360, dates without times) leniently, flags what does not convert, and
assembles the canonical table of :mod:`telemetry.schema`. Conversions are vectorised with pyarrow compute;
only dirty columns fall back to pandas' slower parsers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from telemetry.errors import ParseError
from telemetry.parsers.table import RawTable
from telemetry.schema import (
    ARGOS_LC_DTYPE,
    CANONICAL_COLUMNS,
    CANONICAL_DTYPES,
    FIX_TYPE_DTYPE,
    FLAG_DTYPE,
    FLAGS,
)

MOSTLY_BAD = 0.5
"""If more than this share of a required column fails to convert, the file is
wrong (wrong layout or format), not a few bad rows: raise instead of flagging."""

Arrayish = pa.ChunkedArray | pa.Array | np.ndarray | pd.Series


@dataclass
class Parsed:
    """What a parser returns: the canonical frame and an account of the rows."""

    frame: pd.DataFrame
    format: str
    rows_read: int
    skipped: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    deployments: list[dict[str, str | None]] | None = None  # a deployment table's rows (animal_id, start, end)


@dataclass
class Converted:
    """A converted column and the rows whose cell did not convert."""

    values: np.ndarray
    bad: np.ndarray  # bool: non-empty cell that failed to convert

    @property
    def n_bad(self) -> int:
        return int(self.bad.sum())


def _as_arrow(values: Arrayish) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if isinstance(values, pa.Array):
        return values
    return pa.array(values, from_pandas=True)


def _present(arr: pa.Array) -> np.ndarray:
    """True where the cell is non-null and, for text, not blank."""
    valid = pc.is_valid(arr)
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        valid = pc.and_(valid, pc.not_equal(pc.utf8_trim_whitespace(arr), ""))
    return np.asarray(valid.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _check_mostly_good(bad: np.ndarray, present: np.ndarray, what: str, ctx: Context) -> None:
    n_present = int(present.sum())
    if n_present and bad.sum() > MOSTLY_BAD * n_present:
        i = int(np.flatnonzero(bad)[0])
        raise ParseError(
            f"cannot parse {what} '{ctx.cell(i)}'" + (f" ({ctx.hint})" if ctx.hint else ""),
            ctx.path,
            ctx.line(i),
            ctx.column,
        )


@dataclass
class Context:
    """Where a column came from, to name file, line and column in errors."""

    path: str
    raw: RawTable
    column: str | None
    hint: str = ""

    def line(self, i: int) -> int:
        return int(self.raw.lines[i])

    def cell(self, i: int) -> str:
        if self.column is None or self.column not in self.raw.names:
            return "?"
        return str(self.raw.table.column(self.column)[i].as_py())[:40]


def to_float(values: Arrayish, ctx: Context | None = None, *, required: bool = False) -> Converted:
    """Numbers from a column; decimal commas accepted; junk → NaN and marked bad.

    Raises :class:`ParseError` when ``required`` and most non-empty cells are junk.
    """
    if isinstance(values, pa.ChunkedArray) and pa.types.is_float64(values.type):
        # typed by the CSV reader: pyarrow joins the chunks and turns nulls into NaN
        # in one copy (combining the chunks first would allocate the column twice)
        return Converted(values.to_numpy(), np.zeros(len(values), dtype=bool))
    arr = _as_arrow(values)
    if pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type):
        out = pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)
        return Converted(np.asarray(out, dtype=np.float64), np.zeros(len(arr), dtype=bool))
    if pa.types.is_null(arr.type):
        return Converted(np.full(len(arr), np.nan), np.zeros(len(arr), dtype=bool))
    text = pc.utf8_trim_whitespace(pc.cast(arr, pa.string()))
    present = _present(text)
    try:
        out = pc.cast(text, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        s = pd.Series(text.to_pandas(), dtype=object).str.replace(",", ".", regex=False)
        out = pa.array(pd.to_numeric(s, errors="coerce"), type=pa.float64(), from_pandas=True)
    values_np = np.asarray(out.to_numpy(zero_copy_only=False), dtype=np.float64)
    bad = present & np.isnan(values_np)
    if required and ctx is not None:
        _check_mostly_good(bad, present, "number", ctx)
    return Converted(values_np, bad)


_NUM = r"\d+(?:[.,]\d+)?"
DEGREE_TEXT = (rf"^\s*(?P<h1>[NSEWnsew]?)\s*(?P<sign>[-+\x{{2212}}]?)\s*(?P<d>{_NUM})"
               rf"(?:(?:\s*[°º˚:]\s*|\s+)(?P<m>{_NUM})"
               rf"(?:(?:\s*['′’:]\s*|\s+)(?P<s>{_NUM})\s*(?:\"|″|''|’’)?)?\s*['′’]?)?"
               rf"\s*[°º˚]?\s*(?P<h2>[NSEWnsew]?)\s*$")
"""A coordinate written with a hemisphere letter (``43.21N``, ``W 110.5``) or in degrees and
minutes (and seconds): ``43°12.6'N``, ``43 12 36 N``, ``-110:30:00`` (pyarrow's RE2 syntax)."""


def degrees(values: Arrayish, ctx: Context | None, axis: str) -> tuple[Converted, int]:
    """Decimal degrees of a latitude (``axis`` ``"NS"``) or longitude (``"EW"``) column: numbers
    (decimal commas accepted), or text with a hemisphere letter of that axis (S and W negative)
    or in degrees-minutes(-seconds) (:data:`DEGREE_TEXT`); and how many cells were such text.

    Raises :class:`ParseError` when most present cells are neither, naming the first (with a
    ``ctx``; without one, they are only marked bad).

    >>> from telemetry.parsers.table import RawTable
    >>> cells = ["43.5", "43.25N", "S 43.25", "43°12.6'N", "43 12 36 S", "-43:30", "43.5E", "91 00 N"]
    >>> ctx = Context("f.csv", RawTable(pa.table({"lat": cells}), list(range(2, 10)), ["lat"], 1), "lat")
    >>> got, n_text = degrees(pa.array(cells), ctx, "NS")
    >>> [round(v, 4) for v in got.values.tolist()], got.bad.tolist(), n_text
    ([43.5, 43.25, -43.25, 43.21, -43.21, -43.5, nan, 91.0], [False, False, False, False, False, False, True, False], 6)
    """
    conv = to_float(values)
    if not conv.bad.any():
        return conv, 0
    text = pc.utf8_trim_whitespace(pc.cast(_as_arrow(values), pa.string()))
    present = _present(text)
    rows = np.flatnonzero(conv.bad)
    parts = pc.extract_regex(text.take(pa.array(rows)), DEGREE_TEXT)
    got = np.full(rows.size, np.nan)
    ok = np.asarray(parts.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    if ok.any():
        # (vectorised in arrow: a file written this way throughout has a million such cells)
        field = {k: pc.fill_null(parts.field(k), "") for k in ("h1", "sign", "d", "m", "s", "h2")}

        def num(k: str) -> np.ndarray:
            text = pc.if_else(pc.equal(field[k], ""), "0", pc.replace_substring(field[k], ",", "."))
            return np.asarray(pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False), dtype=float)

        def flag(arr: pa.Array) -> np.ndarray:
            return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=bool)

        d, m, sec = num("d"), num("m"), num("s")
        has_m, has_s = flag(pc.not_equal(field["m"], "")), flag(pc.not_equal(field["s"], ""))
        whole = ~flag(pc.match_substring_regex(field["d"], "[.,]"))
        whole_m = ~flag(pc.match_substring_regex(field["m"], "[.,]"))
        hemi = np.asarray(pc.utf8_upper(pc.binary_join_element_wise(field["h1"], field["h2"], "")).to_numpy(
            zero_copy_only=False), dtype=object)
        minus = flag(pc.is_in(field["sign"], pa.array(["-", "\u2212"])))
        south = hemi == axis[1]
        ok &= np.isin(hemi, ["", axis[0], axis[1]])
        # (60 itself: a writer's rounding of 59.9996)
        ok &= ~has_m | (whole & (m <= 60)) & (~has_s | (whole_m & (sec <= 60)))
        ok &= ~(minus & (hemi == axis[0]))  # "-43.2 N": which?
        value = d + m / 60.0 + sec / 3600.0
        got = np.where(ok, np.where(minus | south, -value, value), np.nan)
    values_np = conv.values.copy()
    values_np[rows] = got
    bad = conv.bad.copy()
    bad[rows] = ~ok
    if ctx is not None:
        _check_mostly_good(bad, present, "coordinate", ctx)
    return Converted(values_np, bad), int(ok.sum())


def join_date_time(date: Arrayish, time: Arrayish) -> pa.Array:
    """``date + ' ' + time`` element-wise (null if either is null)."""
    d = pc.utf8_trim_whitespace(pc.cast(_as_arrow(date), pa.string()))
    t = pc.utf8_trim_whitespace(pc.cast(_as_arrow(time), pa.string()))
    return pc.binary_join_element_wise(d, t, " ")


def _naive_ns(arr: pa.Array) -> pa.Array:
    """Cast a timestamp array to naive ns (UTC wall clock if it had a zone)."""
    if arr.type.tz is not None:
        arr = pc.cast(arr, pa.timestamp("ns", tz="UTC"))
        return pa.Array.from_buffers(pa.timestamp("ns"), len(arr), arr.buffers(), arr.null_count)
    return pc.cast(arr, pa.timestamp("ns"))


def _try_iso(text: pa.Array) -> tuple[pa.Array | None, bool]:
    """ISO-8601 via arrow's fast parser: (naive ns array, had_zone)."""
    for typ, zoned in ((pa.timestamp("ns"), False), (pa.timestamp("ns", tz="UTC"), True)):
        try:
            return _naive_ns(pc.cast(text, typ)), zoned
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    return None, False


def parse_time(
    values: Arrayish,
    ctx: Context,
    *,
    formats: Sequence[str] = (),
    tz: str | None = None,
    naive_is_utc: bool = False,
    naive_offset_s: int | None = None,
) -> Converted:
    """Timestamps from text, as naive UTC ``datetime64[ns]`` with a bad-cell mask.

    Parameters
    ----------
    values : array of str or timestamps
    ctx : Context
        For errors: file, column and line of the first bad cell.
    formats : sequence of str
        ``strptime`` formats to try (in order) when the text is not ISO 8601.
    tz : str, optional
        IANA zone of naive times (``--tz``); ignored for times with an offset.
    naive_is_utc : bool
        The format documents its naive times as UTC/GMT (Movebank, vendor GMT columns).
    naive_offset_s : int, optional
        The file declares its naive times' offset from UTC (s east; e.g. a column named
        ``Date (UTC+6)``): they are read at that offset, before ``tz``.

    Raises
    ------
    ParseError
        When times have no zone and none was given, or most cells do not parse.
    """
    arr = _as_arrow(values)
    if pa.types.is_timestamp(arr.type):
        present = np.asarray(pc.is_valid(arr).to_numpy(zero_copy_only=False), dtype=bool)
        zoned = arr.type.tz is not None
        parsed = _naive_ns(arr)
    else:
        text = pc.utf8_trim_whitespace(pc.cast(arr, pa.string()))
        present = _present(text)
        text = pc.if_else(pa.array(present), text, pa.scalar(None, pa.string()))
        parsed, zoned = (None, False) if formats else _try_iso(text)
        if parsed is None:
            parsed, zoned = _parse_with_formats(text, formats)
    ns = np.asarray(parsed.to_numpy(zero_copy_only=False)).astype("datetime64[ns]")
    bad = present & np.isnat(ns)
    _check_mostly_good(bad, present, "date/time", ctx)
    if not zoned and naive_offset_s is not None:
        return Converted(ns - np.timedelta64(int(naive_offset_s), "s"), bad)
    if not zoned and not naive_is_utc:
        if tz is None:
            good = present & ~bad  # (the first local time, not a cell that is no time)
            i = int(np.flatnonzero(good)[0]) if good.any() else 0
            raise ParseError(
                "times are local with no time zone; pass --tz ZONE (e.g. --tz Asia/Almaty "
                "or --tz UTC) — a zone is never guessed",
                ctx.path,
                ctx.line(i) if len(ctx.raw.lines) else None,
                ctx.column,
            )
        ns = localise(ns, tz, ctx)
        bad = present & np.isnat(ns)
    return Converted(ns, bad)


UNIX_TIME_UNITS: tuple[tuple[str, str, float], ...] = (
    ("seconds", r"^\d{9,10}(\.\d+)?$", 1e9),
    ("milliseconds", r"^\d{12,13}(\.\d+)?$", 1e6),
)
"""Unix times a time column may hold: (unit, the cells' pattern, ns per unit). Nine or ten
digits of seconds are 1973-2286, twelve or thirteen of milliseconds the same years; only
times from :data:`UNIX_TIME_YEARS` count."""

UNIX_TIME_YEARS = (1980, 2100)


def unix_time(values: Arrayish, ctx: Context) -> tuple[Converted, str] | None:
    """Unix times (seconds or milliseconds since 1970-01-01 UTC, which need no zone) as naive UTC
    ``datetime64[ns]``, and their unit; None unless most present cells are such numbers.

    >>> from telemetry.parsers.table import RawTable
    >>> ctx = Context("f.csv", RawTable(pa.table({"t": ["1709251200", "1709265600.5", "x"]}), [2, 3, 4], ["t"], 1), "t")
    >>> got, unit = unix_time(pa.array(["1709251200", "1709265600.5", "x"]), ctx)
    >>> unit, got.values[:2].astype(str).tolist(), got.bad.tolist()
    ('seconds', ['2024-03-01T00:00:00.000000000', '2024-03-01T04:00:00.500000000'], [False, False, True])
    >>> unix_time(pa.array(["2024-03-01", "12:00"]), ctx) is None
    True
    """
    arr = _as_arrow(values)
    if pa.types.is_timestamp(arr.type) or pa.types.is_null(arr.type):
        return None
    text = pc.utf8_trim_whitespace(pc.cast(arr, pa.string()))
    present = _present(text)
    if not present.any() or not str(text[int(np.argmax(present))].as_py()).replace(".", "", 1).isdigit():
        return None  # (a look at the first time: most columns are text, and a regex over all costs)
    lo, hi = (np.datetime64(f"{y}-01-01", "ns").astype(np.int64) for y in UNIX_TIME_YEARS)
    for unit, pattern, ns_per in UNIX_TIME_UNITS:
        match = np.asarray(pc.fill_null(pc.match_substring_regex(text, pattern), False).to_numpy(
            zero_copy_only=False), dtype=bool)
        if match.sum() <= MOSTLY_BAD * present.sum():
            continue
        number = to_float(pc.if_else(pa.array(match), text, pa.scalar(None, pa.string()))).values
        ns = np.round(number * ns_per)
        ok = match & (ns >= lo) & (ns < hi)
        out = np.full(ns.size, np.datetime64("NaT"), dtype="datetime64[ns]")
        out[ok] = ns[ok].astype(np.int64).astype("datetime64[ns]")
        bad = present & ~ok
        _check_mostly_good(bad, present, f"Unix time ({unit})", ctx)
        return Converted(out, bad), unit
    return None


def localise(ns: np.ndarray, tz: str, ctx: Context) -> np.ndarray:
    """Naive local wall-clock times in zone ``tz`` → naive UTC (DST gaps → NaT)."""
    try:
        idx = pd.DatetimeIndex(ns).tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    except Exception as err:  # zoneinfo raises several types for unknown zones
        raise ParseError(f"unknown time zone '{tz}' ({err})", ctx.path) from None
    return idx.tz_convert("UTC").tz_localize(None).to_numpy()


def _parse_with_formats(text: pa.Array, formats: Sequence[str]) -> tuple[pa.Array, bool]:
    result = None
    for fmt in formats:
        try:
            got = pc.strptime(text, format=fmt, unit="ns", error_is_null=True)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        got = _naive_ns(got)
        result = got if result is None else pc.coalesce(result, got)
        if result.null_count == text.null_count:
            return result, "%z" in fmt
    # last resort: pandas' flexible parser (slow, only for odd layouts)
    series = pd.Series(text.to_pandas(), dtype=object)
    with_zone = series.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True, na=False)
    parsed = pd.to_datetime(series, errors="coerce", format="mixed", utc=True)
    naive = parsed.dt.tz_localize(None)
    fallback = pa.array(naive.to_numpy(dtype="datetime64[ns]"), type=pa.timestamp("ns"))
    result = fallback if result is None else pc.coalesce(result, fallback)
    # (zoned when every cell that is a time has a zone: a cell that is no time at all is flagged
    # bad, not taken for a local time that asks for --tz)
    times = parsed.notna().to_numpy()
    return result, bool(with_zone[times].any()) and bool(with_zone[times].all())


def excel_serial_time(values: Arrayish, ctx: Context) -> Converted:
    """Excel serial day numbers (origin 1899-12-30, days and fractions) → naive UTC ns."""
    days = to_float(values, ctx, required=True)
    ok = np.isfinite(days.values) & (days.values > 0) & (days.values < 2_958_466)
    ns = np.full(len(days.values), np.datetime64("NaT"), dtype="datetime64[ns]")
    origin = np.datetime64("1899-12-30T00:00:00", "ns")
    ns[ok] = origin + np.round(days.values[ok] * 86_400_000).astype("int64").astype("timedelta64[ms]")
    return Converted(ns, days.bad | (~ok & ~np.isnan(days.values)))


def dictionary_codes(values: Arrayish) -> tuple[np.ndarray, list[str]]:
    """Encode a column as integer codes (-1 = missing) and its distinct texts.

    Work on the few distinct values instead of the million cells: callers
    clean, map or look up ``uniques`` and index the result with ``codes``.
    """
    if isinstance(values, pa.ChunkedArray) and pa.types.is_dictionary(values.type):
        # read as dictionary by the CSV reader: unify the chunks' dictionaries, no re-encoding
        unified = values.unify_dictionaries()
        if unified.num_chunks == 0:
            return np.zeros(0, dtype=np.int32), []
        indices = pa.chunked_array([c.indices for c in unified.chunks], type=values.type.index_type)
        # nulls filled chunk by chunk, then one copy into numpy (not combine + fill + cast: three)
        codes = indices.fill_null(-1).to_numpy().astype(np.int32, copy=False)
        return codes, [str(v) for v in unified.chunk(0).dictionary.to_pylist()]
    arr = _as_arrow(values)
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    if pa.types.is_integer(arr.type):
        # integer codes (e.g. a fix type column of 3s and 2s): encode the numbers and
        # format only the few distinct ones; int → text is one-to-one, so the codes
        # and their order (first appearance) are those of encoding the text
        enc = pc.dictionary_encode(arr)
        codes = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
        return codes, pc.cast(enc.dictionary, pa.string()).to_pylist()
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = pc.cast(arr, pa.string())
    enc = pc.dictionary_encode(arr)
    codes = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
    return codes, enc.dictionary.to_pylist()


def map_values(
    values: Arrayish, mapping: Mapping[str, str | None], *, default: str | None = None
) -> np.ndarray:
    """Map text codes case-insensitively (e.g. vendor fix types → canonical) to an object array."""
    codes, uniques = dictionary_codes(values)
    lower = {k.lower(): v for k, v in mapping.items()}
    lookup = np.array([lower.get(u.strip().lower(), default) for u in uniques] + [None], dtype=object)
    return lookup[codes]


def map_category(
    values: Arrayish, mapping: Mapping[str, str | None], dtype: pd.CategoricalDtype,
    *, default: str | None = None,
) -> pd.Categorical:
    """Like :func:`map_values` but straight to a Categorical of ``dtype`` (fast)."""
    codes, uniques = dictionary_codes(values)
    lower = {k.lower(): v for k, v in mapping.items()}
    cats = list(dtype.categories)
    targets = [lower.get(u.strip().lower(), default) for u in uniques]
    lookup = np.array([cats.index(t) if t in cats else -1 for t in targets] + [-1], dtype=np.int32)
    return pd.Categorical.from_codes(lookup[codes], dtype=dtype)


def text_category(values: Arrayish, fallback: Arrayish | str | None = None) -> pd.Categorical:
    """A text column as a pandas Categorical (surrounding blanks trimmed, blank → missing).

    ``fallback`` (another column, or one string) fills the missing cells, e.g.
    the tag id where the animal id is blank.
    """
    codes, uniques = dictionary_codes(values)
    cleaned = [u.strip() for u in uniques]
    cats = pd.Index(sorted({c for c in cleaned if c}), dtype=object)
    lookup = np.append(cats.get_indexer(cleaned), -1).astype(np.int32)  # blank → -1
    result = pd.Categorical.from_codes(lookup[codes], categories=cats)
    if fallback is not None and (lookup[codes] < 0).any():
        missing = lookup[codes] < 0
        other = (pd.Categorical.from_codes(np.zeros(len(codes), np.int8), categories=[fallback])
                 if isinstance(fallback, str) else text_category(fallback))
        union = pd.api.types.union_categoricals([result, other]).categories
        result = result.set_categories(union)
        filled = result.codes.copy()
        filled[missing] = other.set_categories(union).codes[missing]
        result = pd.Categorical.from_codes(filled, categories=union)
    return result


def build_frame(
    raw: RawTable,
    source: str,
    fields: Mapping[str, object],
    *,
    flags: Sequence[tuple[str, np.ndarray]] = (),
    used: set[str] | frozenset[str] = frozenset(),
) -> pd.DataFrame:
    """Assemble the canonical table for one file.

    Parameters
    ----------
    raw : RawTable
        The file's rows (gives ``source_row`` and the vendor extras).
    source : str
        File name stored in ``source``.
    fields : mapping
        Canonical column → values (arrays of length ``raw.table.num_rows``, or
        a scalar). ``time`` must be naive UTC datetime64[ns]. Missing → NA.
    flags : sequence of (reason, mask)
        Parse-level flags in priority order: a row takes the first that applies.
        Rows without time or coordinates get ``no_fix`` if nothing else applies.
    used : set of str
        Raw column names represented by canonical columns (not kept as extras).
    """
    n = raw.table.num_rows
    columns: dict[str, object] = {}
    for name in CANONICAL_COLUMNS:
        if name not in ("source", "source_row", "flag"):
            columns[name] = _typed(name, fields.get(name), n)
    time_ok = ~np.asarray(columns["time"].isna(), dtype=bool)
    no_fix = ~time_ok | np.isnan(columns["lon"]) | np.isnan(columns["lat"])
    codes = np.full(n, -1, dtype=np.int16)
    order = list(FLAGS)
    for reason, mask in flags:
        codes[(codes < 0) & np.asarray(mask, dtype=bool)] = order.index(reason)
    codes[(codes < 0) & no_fix] = order.index("no_fix")
    columns["source"] = pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), categories=[source])
    columns["source_row"] = np.asarray(raw.lines, dtype=np.int64)
    columns["flag"] = pd.Categorical.from_codes(codes, dtype=FLAG_DTYPE)
    extras = [c for c in raw.names if c not in used]
    if extras:
        extra = raw.table.select(extras).to_pandas()
        for c in extra.columns:
            columns[c if c not in CANONICAL_DTYPES else f"{c} (source)"] = extra[c].to_numpy() \
                if extra[c].dtype.kind in "biufM" else extra[c].array
    frame = pd.DataFrame(columns, index=pd.RangeIndex(n), copy=False)
    if raw.malformed:
        frame = _with_malformed(frame, raw, source)
    return frame


def _typed(name: str, values: object, n: int) -> object:
    """One canonical column in its canonical dtype (values: array, scalar or None)."""
    dtype = CANONICAL_DTYPES[name]
    if name == "time":
        if values is None:
            values = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
        return pd.DatetimeIndex(np.asarray(values, dtype="datetime64[ns]")).tz_localize("UTC").array
    if isinstance(dtype, pd.CategoricalDtype) or (isinstance(dtype, str) and dtype == "category"):
        plain = isinstance(dtype, str)  # "category": categories come from the data
        if isinstance(values, pd.Categorical):
            cat = values
        elif values is None:
            cat = pd.Categorical.from_codes(np.full(n, -1, np.int8),
                                            dtype=pd.CategoricalDtype([]) if plain else dtype)
        elif isinstance(values, str):
            cat = pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), categories=[values])
        else:
            arr = pd.Series(values, dtype=object)
            arr = arr.where(arr.notna(), None)
            cat = pd.Categorical(arr, dtype=None if plain else dtype)
            if plain and len(cat.categories):
                cat = cat.rename_categories(cat.categories.astype(str).astype(object))
        if not plain and cat.dtype != dtype:
            cat = pd.Categorical(np.asarray(cat.astype(object)), dtype=dtype)
        return cat
    if values is None:
        return np.full(n, np.nan, dtype=dtype)
    if np.isscalar(values):
        return np.full(n, values, dtype=dtype)
    return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=dtype, na_value=np.nan) \
        if not isinstance(values, np.ndarray) or values.dtype.kind not in "biuf" else values.astype(dtype, copy=False)


def _with_malformed(frame: pd.DataFrame, raw: RawTable, source: str) -> pd.DataFrame:
    """``frame`` with one ``malformed_row`` row per unparsable line, in line order.

    The new rows take the dtypes of ``frame``'s columns, so a file with malformed lines
    reads into exactly the dtypes of one without (ids stay categorical; integer and
    boolean columns become their nullable kinds, which can hold the missing values).
    """
    bad = conform(pd.DataFrame(
        {
            "source_row": np.array([line for line, _ in raw.malformed], dtype=np.int64),
            "source": source,
            "flag": pd.Categorical(["malformed_row"] * len(raw.malformed), dtype=FLAG_DTYPE),
            "raw_line": [text for _, text in raw.malformed],
        }
    ))
    frame = frame.copy(deep=False)
    for name in frame.columns:
        frame[name], bad[name] = _same_dtype(frame[name], bad[name] if name in bad else None, len(bad))
    out = pd.concat([frame, bad], ignore_index=True)
    return out.sort_values("source_row", kind="stable", ignore_index=True)


def _same_dtype(col: pd.Series, other: pd.Series | None, n: int) -> tuple[pd.Series, pd.Series]:
    """``col`` and ``other`` (None: ``n`` missing values) in one dtype that keeps ``col``'s values.

    Categories of ``other`` not in ``col`` are appended (``col``'s codes do not change);
    numpy integer and boolean columns that must take missing values become nullable.
    """
    dtype = col.dtype
    if other is not None and other.dtype == dtype:
        return col, other
    if isinstance(dtype, pd.CategoricalDtype):
        if other is None:
            return col, pd.Series(pd.Categorical.from_codes(np.full(n, -1, np.int8), dtype=dtype))
        values = other.astype(object)
        extra = pd.Index(pd.unique(values[values.notna()]), dtype=object).difference(dtype.categories, sort=False)
        if len(extra):
            dtype = pd.CategoricalDtype(dtype.categories.append(extra.astype(dtype.categories.dtype)),
                                        ordered=dtype.ordered)
            col = col.cat.set_categories(dtype.categories)
        return col, values.astype(dtype)
    if isinstance(dtype, np.dtype) and dtype.kind in "iub":
        nullable = "boolean" if dtype.kind == "b" else f"{'U' if dtype.kind == 'u' else ''}Int{dtype.itemsize * 8}"
        dtype = pd.api.types.pandas_dtype(nullable)
        col = col.astype(dtype)
    if other is None:
        return col, pd.Series([None] * n, dtype=object).astype(dtype)
    return col, other.astype(dtype)


def conform(frame: pd.DataFrame) -> pd.DataFrame:
    """Add missing canonical columns and set canonical dtypes; canonical columns first."""
    n = len(frame)
    for name, dtype in CANONICAL_DTYPES.items():
        if name not in frame:
            frame[name] = pd.Series(pd.NA if name != "source_row" else 0, index=frame.index, dtype=object)
        col = frame[name]
        if name in ("animal_id", "tag_id", "source"):
            if not isinstance(col.dtype, pd.CategoricalDtype):
                frame[name] = col.astype("string").astype("category") if n else col.astype("category")
            elif not col.cat.categories.empty and col.cat.categories.dtype != object:
                frame[name] = col.cat.rename_categories(col.cat.categories.astype(str).astype(object))
        elif name in ("fix_type", "argos_lc"):
            want = FIX_TYPE_DTYPE if name == "fix_type" else ARGOS_LC_DTYPE
            if col.dtype != want:
                frame[name] = pd.Categorical(col.astype(object).where(col.notna(), None), dtype=want)
        elif name == "flag":
            frame[name] = col if isinstance(col.dtype, pd.CategoricalDtype) and col.dtype == FLAG_DTYPE else pd.Categorical(col, dtype=FLAG_DTYPE)
        elif name == "time":
            if not isinstance(col.dtype, pd.DatetimeTZDtype):
                col = pd.to_datetime(col, utc=True)
            frame[name] = col.astype(CANONICAL_DTYPES["time"])
        elif col.dtype != dtype:
            frame[name] = pd.to_numeric(col, errors="coerce").astype(dtype)
    rest = [c for c in frame.columns if c not in CANONICAL_DTYPES]
    return frame[list(CANONICAL_COLUMNS) + rest]


def infer_fix_type(frame: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Fill the fix type of located GPS rows whose file did not give one; say which rule ran.

    A fix type given by the file (or its vendor field) is kept. Otherwise a GPS fix computed
    from 3 satellites or fewer is 2D and from 4 or more 3D (a 3D position needs four
    pseudoranges; Langley 1999, "Dilution of precision", GPS World). Rows with neither become
    ``unknown``: a class of its own, with its own error scale, never silently 2D.

    Returns the frame (a shallow copy when changed) and the rule as one sentence for the read
    report.

    Examples
    --------
    >>> df = pd.DataFrame({"lon": [1.0, 1.0, 1.0, None], "lat": 1.0, "n_sats": [3, 7, None, None],
    ...                    "fix_type": pd.Categorical([None] * 4, categories=["3D", "2D", "argos", "none", "unknown"])})
    >>> out, rule = infer_fix_type(df)
    >>> out["fix_type"].tolist(), rule
    (['2D', '3D', 'unknown', nan], 'fix type: 2 from the satellite count (<= 3: 2D, >= 4: 3D); 1 unknown (neither given)')
    """
    if not len(frame) or "fix_type" not in frame:
        return frame, "fix type: no rows"
    ft = frame["fix_type"]
    missing = ft.isna().to_numpy()
    located = frame["lon"].notna().to_numpy() & frame["lat"].notna().to_numpy()
    todo = missing & located
    given = int((~missing & located).sum())
    if not todo.any():
        return frame, "fix type: from the file" if given else "fix type: no located rows"
    sats = (pd.to_numeric(frame["n_sats"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            if "n_sats" in frame else np.full(len(frame), np.nan))
    by_sats = todo & np.isfinite(sats) & (sats > 0)
    values = ft.astype(object).to_numpy(copy=True)
    values[by_sats] = np.where(sats[by_sats] <= 3, "2D", "3D")
    unknown = todo & ~by_sats
    values[unknown] = "unknown"
    out = frame.copy(deep=False)
    out["fix_type"] = pd.Categorical(values, dtype=ft.dtype if isinstance(ft.dtype, pd.CategoricalDtype)
                                     and "unknown" in ft.dtype.categories else FIX_TYPE_DTYPE)
    parts = []
    if given:
        parts.append(f"{given} from the file")
    if by_sats.any():
        parts.append(f"{int(by_sats.sum())} from the satellite count (<= 3: 2D, >= 4: 3D)")
    if unknown.any():
        parts.append(f"{int(unknown.sum())} unknown (neither given)")
    return out, "fix type: " + "; ".join(parts)


EAST_OF_180_MIN_ROWS = 3
"""A file's longitudes are read as 0..360 (and wrapped) only with at least this many of them
east of 180 (or all its located rows, if fewer): one or two such values among longitudes
that are otherwise -180..180 are typing errors, flagged ``out_of_range`` by the cleaning,
not a convention."""


def wrap_longitudes(frame: pd.DataFrame) -> tuple[pd.DataFrame, str | None]:
    """Longitudes given 0..360 (degrees east, as NetCDF-derived and some Argos and marine
    exports write them) as -180..180, and a note for the read report (None where unchanged).

    The convention belongs to the file: it is read as 0..360 when every located longitude lies
    within 0..360 and at least :data:`EAST_OF_180_MIN_ROWS` of them (or all, in a smaller file)
    lie east of 180. Those become ``lon - 360`` (the same meridian); the others are unchanged.
    Otherwise nothing changes, and a longitude outside -180..180 is flagged ``out_of_range``
    when the fixes are cleaned.

    >>> df = pd.DataFrame({"lon": [179.5, 180.5, 250.0, 359.0, None], "lat": 10.0})
    >>> out, note = wrap_longitudes(df)
    >>> out["lon"].tolist(), note
    ([179.5, -179.5, -110.0, -1.0, nan], 'longitudes given 0..360: 3 of 4 east of 180 read as -180..180')
    >>> wrap_longitudes(pd.DataFrame({"lon": [77.0, 77.1, 250.0, 77.2], "lat": 43.0}))[1] is None  # a typo
    True
    """
    if not len(frame) or "lon" not in frame:
        return frame, None
    lon = frame["lon"].to_numpy(dtype=float, na_value=np.nan)
    located = np.isfinite(lon)
    east = located & (lon > 180.0)
    n_east = int(east.sum())
    if not n_east or n_east < min(EAST_OF_180_MIN_ROWS, int(located.sum())):
        return frame, None
    if np.any((lon[located] < 0.0) | (lon[located] > 360.0)):
        return frame, None
    out = frame.copy(deep=False)
    out["lon"] = np.where(east, lon - 360.0, lon)
    return out, f"longitudes given 0..360: {n_east} of {int(located.sum())} east of 180 read as -180..180"


DATES_ONLY_NOTE = ("timestamps are dates only (day resolution): the fixes of a day keep the file's order "
                   "and are not duplicates; speeds between them are not judged")


def day_resolution(time: np.ndarray, animal: object) -> np.ndarray | None:
    """``time_resolution_s`` per row (86,400; NaN without a time) where a file's times are dates
    without times, else None: every time at midnight and at least a tenth of the rows sharing an
    animal's date with another row (a midnight schedule has one fix a day). The fixes of a day
    then share one time; they are not duplicates, their order is the file's, and their time is
    known to the day (the cleaning reads the column).

    >>> t = pd.to_datetime(["2024-03-01", "2024-03-01", "2024-03-02"]).to_numpy()
    >>> day_resolution(t, "A").tolist(), day_resolution(t[[0, 2]], "A")
    ([86400.0, 86400.0, 86400.0], None)
    """
    t = pd.to_datetime(pd.Series(time)).to_numpy(dtype="datetime64[ns]").view(np.int64)
    ok = t != np.iinfo(np.int64).min
    if ok.sum() < 2 or (t[ok] % (86_400 * 10**9)).any():
        return None
    a = pd.Series(animal).astype(str).to_numpy() if not isinstance(animal, str) else np.full(t.size, animal)
    key = pd.DataFrame({"a": a[ok], "t": t[ok]})
    if key.duplicated(keep=False).mean() < 0.1:
        return None
    return np.where(ok, 86400.0, np.nan)
