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
