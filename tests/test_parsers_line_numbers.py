"""Dirty files: rows found by their text number exactly as a csv-module walk of the whole file numbers them.

A file with skipped rows (short, long, whitespace-only) and blank lines is numbered from
the line-feed positions and the places of the rows pyarrow skipped; a walk of the whole
text with the csv module (the reference, ~10x slower) must give the same line numbers,
the same malformed rows and the same text for each.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import telemetry
from telemetry.parsers import table
from telemetry.parsers.source import Source

FIELDS = ["1", "2.5", "x", "", " ", '"a,b"', '"q""q"', '"two\nlines"', '"quoted"', "é"]
LINE = st.one_of(
    st.lists(st.sampled_from(FIELDS), min_size=1, max_size=6).map(",".join),
    st.sampled_from(["", "   ", "\t", ",,", "1,2,3", "1,2", "1,2,3,4"]),
)


def numbered(text: str, *, located: bool, monkeypatch) -> table.RawTable:
    if not located:
        monkeypatch.setattr(table, "_located_line_numbers", lambda *args: None)
    try:
        return table.read_delimited(Source("t.csv", data=text.encode("utf-8")), delimiter=",")
    finally:
        monkeypatch.undo()


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(LINE, min_size=1, max_size=25), crlf=st.booleans(), last_newline=st.booleans())
def test_same_numbers_as_a_csv_walk(lines, crlf, last_newline):
    newline = "\r\n" if crlf else "\n"
    text = "a,b,c" + newline + newline.join(lines) + (newline if last_newline else "")
    with pytest.MonkeyPatch.context() as mp:
        fast = numbered(text, located=True, monkeypatch=mp)
    with pytest.MonkeyPatch.context() as mp:
        ref = numbered(text, located=False, monkeypatch=mp)
    assert fast.table.num_rows == ref.table.num_rows
    np.testing.assert_array_equal(fast.lines, ref.lines)
    assert fast.malformed == ref.malformed


def test_located_path_is_taken_and_right(tmp_path, monkeypatch):
    # a file like a cut download: blank lines, a short row, a long row, a truncated last line
    rows = [f"{i},2021-03-01 {i % 24:02d}:00:00,77.{i},43.{i}" for i in range(1, 2001)]
    rows[10] = "11,2021-03-01 11:00:00"           # short
    rows[500] = rows[500] + ",extra"             # long
    rows.insert(900, "")                         # blank line
    rows.insert(1500, "   ")                     # whitespace only
    text = "id,time,lon,lat\n" + "\n".join(rows) + "\n2002,2021-03-0"  # cut mid-row, no newline
    path = tmp_path / "cut.csv"
    path.write_text(text)
    calls = []
    located = table._located_line_numbers
    monkeypatch.setattr(table, "_located_line_numbers", lambda *a: calls.append(1) or located(*a))
    raw = table.read_delimited(Source(str(path), path=path), delimiter=",")
    assert calls and raw.table.num_rows == 2000 - 2
    assert [line for line, _ in raw.malformed] == [12, 502, 2004]
    assert raw.malformed[0][1] == "11,2021-03-01 11:00:00" and raw.malformed[2][1] == "2002,2021-03-0"
    lines = raw.lines.tolist()
    assert 12 not in lines and 902 not in lines and 1502 not in lines and lines[-1] == 2003
    assert len(lines) == len(set(lines)) == 2000 - 2
    df = telemetry.read(path, tz="UTC")
    assert len(df) == 2000 + 1 and (df["flag"] == "malformed_row").sum() == 3


def test_not_found_falls_back_to_the_csv_walk():
    # texts pyarrow reports in another encoding than the file's cannot be found: the csv walk numbers them
    text = b"a,b,c\n1,2,3\n4,5\n6,7,8\n"
    raw = table._located_line_numbers(text, 6, 2, 2, ["not in the file"], ",", 3)
    assert raw is None
    lines, malformed = table._csv_line_numbers(text, 6, 2, 2, ",", 3)
    assert lines.tolist() == [2, 4] and malformed == [(3, "4,5")]
