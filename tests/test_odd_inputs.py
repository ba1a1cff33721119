"""scripts/odd_inputs.py (the crash finder): its files are read in every layout, and a seed runs."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

import telemetry

from .conftest import ROOT


@pytest.fixture(scope="module")
def odd():
    spec = importlib.util.spec_from_file_location("telemetry_odd_inputs", ROOT / "scripts" / "odd_inputs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("layout", ["movebank", "argos", "generic", "split"])
def test_every_layout_is_read_with_every_row_kept(odd, tmp_path, layout):
    for seed in range(3):
        path, cols = odd.odd_file(np.random.default_rng(seed), tmp_path, layout)
        rows = sum(1 for _ in path.open()) - 1
        df = telemetry.read([path], columns=cols or None, tz="UTC" if cols else None)
        assert len(df) == rows, (layout, seed)


def test_a_seed_runs_and_says_ok(odd, tmp_path):
    line = odd.one(5, ("generic",), tmp_path / "keep")
    assert line == "5 generic ok" and not (tmp_path / "keep").exists()
