"""Shared test helpers and paths."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
SHARED = ROOT.parent / "shared" / "data"


@pytest.fixture
def data_dir() -> Path:
    return DATA


def shared_or_skip(rel: str) -> Path:
    """A file from ../shared/data (the team's reference data), or skip if absent."""
    path = SHARED / rel
    if not path.exists():
        pytest.skip(f"reference data not available: {path}")
    return path


def utc(*args: int):
    """A UTC pandas Timestamp from datetime fields."""
    from datetime import UTC, datetime

    import pandas as pd

    return pd.Timestamp(datetime(*args, tzinfo=UTC))


def rows_of(path: Path) -> list[list[str]]:
    """The CSV rows of a fixture, as lists of cells."""
    import csv
    import io

    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


def write_rows(path: Path, rows: list[list[str]]) -> Path:
    """Write CSV rows (LF line ends) and return the path."""
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    return path


def assert_canonical_dtypes(df) -> None:
    """The canonical columns come first, each in its canonical dtype (ids and sources categorical)."""
    import pandas as pd

    from telemetry.schema import CANONICAL_COLUMNS, CANONICAL_DTYPES

    assert list(df.columns[: len(CANONICAL_COLUMNS)]) == list(CANONICAL_COLUMNS)
    for name, dtype in CANONICAL_DTYPES.items():
        if isinstance(dtype, str) and dtype == "category":
            assert isinstance(df[name].dtype, pd.CategoricalDtype), (name, df[name].dtype)
        else:
            assert df[name].dtype == dtype, (name, df[name].dtype)
    assert str(df["time"].dt.tz) == "UTC"
