"""Excel workbooks (.xlsx): what field teams and vendor web portals hand over as often as CSV.

A worksheet is read as the CSV text Excel would save from it, so every format the tool knows
is known in a workbook too; errors name the row Excel shows.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

import telemetry
from telemetry.errors import TelemetryError

from .conftest import DATA

TEXT_FILES = sorted(p for p in (DATA / "vendor").iterdir() if p.suffix.lower() == ".csv") + [
    DATA / "movebank" / "bats_subset.csv", DATA / "movebank" / "gulls_argos_subset.csv"]


def _as_workbook(text: str, path: Path, delimiter: str = ",", sheets: tuple[str, ...] = ()) -> Path:
    """The text's rows cell by cell (as text) in the sheet "data" of a new workbook, after any
    other ``sheets`` (each holding a line of notes)."""
    book = openpyxl.Workbook()
    first = book.active
    for k, title in enumerate(sheets):
        sheet = first if k == 0 else book.create_sheet()
        sheet.title = title
        sheet.append(["notes of the field team", "not telemetry"])
    data = book.create_sheet("data") if sheets else first
    data.title = "data"
    for row in csv.reader(io.StringIO(text), delimiter=delimiter):
        data.append(row)
    book.save(path)
    return path


def _text(path: Path) -> str:
    raw = path.read_bytes()
    return (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode("utf-8", errors="replace")


@pytest.mark.parametrize("path", TEXT_FILES, ids=lambda p: p.name)
def test_a_file_pasted_into_a_workbook_reads_the_same_fixes(tmp_path, path):
    """Every vendor and Movebank test file, its cells copied into a worksheet, gives the same
    format, rows, times, positions, animals and flags as the file itself."""
    try:
        want = telemetry.read(path)
    except TelemetryError:
        pytest.skip("the text file itself is not read without options")
    text = _text(path)
    head = text.splitlines()[0] if text else ""
    delimiter = ";" if head.count(";") > head.count(",") else ("\t" if head.count("\t") > head.count(",") else ",")
    book = _as_workbook(text, tmp_path / (path.stem + ".xlsx"), delimiter)
    got = telemetry.read(book)
    assert got.attrs["sources"][0]["format"] == want.attrs["sources"][0]["format"]
    assert got.attrs["sources"][0]["source"] == f"{book}::data"
    assert len(got) == len(want)
    for col in ("time", "animal_id", "flag"):
        assert got[col].astype(str).tolist() == want[col].astype(str).tolist(), col
    for col in ("lon", "lat"):
        np.testing.assert_allclose(got[col].to_numpy(dtype=float), want[col].to_numpy(dtype=float), rtol=0, atol=1e-12)
    assert got["source_row"].tolist() == want["source_row"].tolist()  # the row Excel shows is the file's line


def test_typed_cells_and_other_sheets(tmp_path):
    """A sheet typed as Excel types it (date-time cells, numbers) beside a sheet of notes: the
    notes are skipped and named, the fixes read; times in a column named UTC need no --tz."""
    book = openpyxl.Workbook()
    book.active.title = "README"
    book.active.append(["collars deployed by the ranger team", None])
    sheet = book.create_sheet("fixes")
    sheet.append(["Collar", "Date & time (UTC)", "Latitude", "Longitude", "HDOP"])
    t0 = dt.datetime(2022, 5, 1, 6, 0, 0)
    for k in range(40):
        sheet.append(["SL07", t0 + dt.timedelta(hours=4 * k), 43.1 + k * 1e-4, 77.2 + k * 1e-4, 1.2])
    path = tmp_path / "field sheet.xlsx"
    book.save(path)
    got = telemetry.read(path)
    assert len(got) == 40 and got["flag"].isna().all()
    assert got["time"].iloc[1] == pd.Timestamp("2022-05-01 10:00", tz="UTC")
    np.testing.assert_allclose(got["lat"].to_numpy(dtype=float), 43.1 + np.arange(40) * 1e-4, atol=1e-12)
    reports = {r["source"]: r for r in got.attrs["sources"]}
    assert reports[f"{path}::README"]["format"] is None and f"{path}::fixes" in reports


def test_a_bad_cell_names_the_workbook_sheet_and_row(tmp_path):
    """Most times unreadable: one line naming the workbook, the sheet, the row Excel shows and the column."""
    lines = ["animal_id,timestamp,longitude,latitude"] + [f"A1,not a time {k},77.0,43.0" for k in range(5)]
    path = _as_workbook("\n".join(lines), tmp_path / "bad.xlsx", sheets=("cover",))
    with pytest.raises(TelemetryError) as err:
        telemetry.read(path)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{path}::data, line 2, column 'timestamp'"), msg


def test_damaged_and_old_workbooks_are_one_line_errors(tmp_path):
    good = _as_workbook("a,b\n1,2\n", tmp_path / "good.xlsx")
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(good.read_bytes()[:200])
    old = tmp_path / "old.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600)
    for path, words in ((broken, "damaged zip file"), (old, "Excel 97-2003")):
        with pytest.raises(TelemetryError) as err:
            telemetry.read(path)
        msg = str(err.value)
        assert "\n" not in msg and msg.startswith(str(path)) and words in msg, msg
