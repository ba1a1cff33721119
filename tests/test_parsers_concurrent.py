"""Reading several files at once: same frame, report and errors as reading them one by one."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

import telemetry
import telemetry.parsers as parsers
from telemetry.errors import ParseError
from telemetry.parsers import _memory, table
from telemetry.parsers.source import Source

SAMPLES = Path(__file__).resolve().parent.parent / "sample_tracks"
MOVEBANK = SAMPLES / "movebank_SYNTHETIC_snow_leopards_tien_shan.csv"
LOTEK = SAMPLES / "lotek_SYNTHETIC_SL04_device47113.CSV"
VECTRONIC = SAMPLES / "vectronic_SYNTHETIC_SL03_collar41935.csv"


@pytest.fixture
def mixed_dir(tmp_path: Path) -> Path:
    """Movebank files with different animals, other vendors, a README and a blank-line file."""
    lines = MOVEBANK.read_bytes().split(b"\n")
    header, body = lines[0], [line for line in lines[1:] if line]
    step = len(body) // 4
    for i in range(4):
        (tmp_path / f"part{i}.csv").write_bytes(b"\n".join([header, *body[i * step:(i + 1) * step]]) + b"\n")
    # a blank line takes the slow line-numbering path
    (tmp_path / "part9_dirty.csv").write_bytes(b"\n".join([header, *body[:30], b"", *body[30:60]]) + b"\n")
    shutil.copy(LOTEK, tmp_path / "lotek.csv")
    shutil.copy(VECTRONIC, tmp_path / "vectronic.csv")
    (tmp_path / "notes.txt").write_text("not telemetry\n")
    return tmp_path


def _read_with(monkeypatch: pytest.MonkeyPatch, n: int, paths) -> pd.DataFrame:
    monkeypatch.setattr(parsers, "PARALLEL_FILES", n)
    return telemetry.read(paths)


@pytest.mark.parametrize("n", [2, 3])
def test_concurrent_read_equals_one_by_one(monkeypatch, mixed_dir, n):
    one_by_one = _read_with(monkeypatch, 1, mixed_dir)
    together = _read_with(monkeypatch, n, mixed_dir)
    pd.testing.assert_frame_equal(together, one_by_one, check_exact=True)
    assert together.attrs == one_by_one.attrs
    formats = [s["format"] for s in together.attrs["sources"]]
    assert formats.count("movebank") == 5 and None in formats  # notes.txt skipped, in order


def test_concurrent_read_equals_concat_of_single_reads(mixed_dir):
    files = [mixed_dir / f"part{i}.csv" for i in range(4)]
    together = telemetry.read(files)
    single = [telemetry.read(f) for f in files]
    pd.testing.assert_frame_equal(together, parsers.concat(single), check_exact=True)
    assert together.attrs["sources"] == [s.attrs["sources"][0] for s in single]


def test_two_thread_concat_equals_pandas_concat(monkeypatch, mixed_dir):
    frames = [telemetry.read(mixed_dir / f"part{i}.csv") for i in range(4)]
    frames.append(frames[0][["lon", "lat"]].assign(extra=1))  # other columns: plain concat
    monkeypatch.setattr(parsers, "PARALLEL_CONCAT_ROWS", 0)
    for group in (frames[:4], frames):
        joined = parsers._concat_rows(group)
        expected = pd.concat(group, ignore_index=True, sort=False)
        pd.testing.assert_frame_equal(joined, expected, check_exact=True)
        assert type(joined.index) is type(expected.index)
    pd.testing.assert_frame_equal(parsers.concat(frames[:4]), telemetry.read(
        [mixed_dir / f"part{i}.csv" for i in range(4)]), check_exact=True)


def test_errors_are_those_of_the_first_failing_input(mixed_dir):
    good, readme, missing = mixed_dir / "part0.csv", SAMPLES / "README.md", mixed_dir / "missing.csv"
    with pytest.raises(ParseError, match="no such file"):
        telemetry.read([good, missing])  # good is read first, then the listing fails
    with pytest.raises(ParseError, match="README"):
        telemetry.read([readme, good])  # an explicit non-telemetry file fails the read
    with pytest.raises(ParseError, match="README"):
        telemetry.read([good, readme, missing])  # not the later missing path
    with pytest.raises(ParseError, match="README"):
        telemetry.read([good, mixed_dir / "part1.csv", readme, good])


def test_read_restores_process_state(mixed_dir):
    hook = sys.unraisablehook
    hint = _memory._get() if _memory._get is not None else None
    telemetry.read(mixed_dir)
    with pytest.raises(ParseError):
        telemetry.read([mixed_dir / "part0.csv", SAMPLES / "README.md"])
    assert sys.unraisablehook is hook
    if hint is not None:
        assert _memory._get() == hint


def test_quiet_hook_nests_across_readers():
    original = sys.unraisablehook
    first, second = table._quiet_undecodable_rows(), table._quiet_undecodable_rows()
    first.__enter__()
    second.__enter__()
    assert sys.unraisablehook is not original
    first.__exit__(None, None, None)  # the first reader leaves before the second
    assert sys.unraisablehook is not original
    second.__exit__(None, None, None)
    assert sys.unraisablehook is original


@pytest.mark.parametrize("block", [3, 7, 1 << 20])
def test_line_feed_count_on_disk_matches_bytes(monkeypatch, tmp_path, block):
    data = b"a,b\r\n1,2\n\n3,4\r\n" * 50 + b"5,6"
    path = tmp_path / "x.csv"
    path.write_bytes(data)
    monkeypatch.setattr("telemetry.parsers.source.COUNT_BLOCK_BYTES", block)
    on_disk = Source(str(path), path=path)
    for start in (0, 1, 5, len(data) - 1, len(data)):
        assert on_disk.count(b"\n", start) == data.count(b"\n", start)
        assert on_disk.count(b"\r\n", start) == data.count(b"\r\n", start)


def test_no_hugepage_hint_nests_and_restores():
    if _memory._get is None:
        pytest.skip("this numpy has no huge-page setting")
    before = _memory._get()
    with _memory.no_hugepage_hint():
        with _memory.no_hugepage_hint():
            assert not _memory._get()
        assert not _memory._get()
    assert _memory._get() == before
