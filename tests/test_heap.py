"""telemetry.heap: large arrays come from the kept heap inside the scope, freed memory goes
back to the system after it, and the switch turns it off."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from telemetry import heap

_MB64 = 2**26


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                      "fsmblks", "uordblks", "fordblks", "keepcost")]


def _info():
    libc = heap._libc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        pytest.skip("glibc >= 2.33 only (mallinfo2)")
    libc.mallinfo2.restype = _MallInfo2
    return libc.mallinfo2()


def test_inside_the_scope_a_large_array_comes_from_the_heap_and_after_it_from_mmap() -> None:
    _info()
    with heap.reused_heap() as on:
        assert on
        before = _info()
        a = np.ones(_MB64 // 8)
        during = _info()
        assert during.hblkhd - before.hblkhd < _MB64  # not a fresh mapping ...
        assert during.uordblks - before.uordblks >= _MB64  # ... but heap memory, kept when freed
        del a
        kept = _info().fordblks
        assert kept >= _MB64
    after = _info()
    assert after.fordblks < kept  # the scope's end gave the free memory back (malloc_trim)
    b = np.ones(_MB64 // 8)
    assert _info().hblkhd - after.hblkhd >= _MB64  # glibc's default again: mapped, unmapped when freed
    del b


def test_nested_scopes_share_the_outermost_and_the_switch_turns_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    _info()
    with heap.reused_heap() as outer:
        with heap.reused_heap() as inner:
            assert outer and inner
        before = _info()
        a = np.ones(_MB64 // 8)
        assert _info().hblkhd - before.hblkhd < _MB64  # the inner scope's end restored nothing
        del a
    monkeypatch.setenv(heap.ENV_SWITCH, "0")
    assert heap.threshold_bytes() == 0
    with heap.reused_heap() as on:
        assert not on
        before = _info()
        a = np.ones(_MB64 // 8)
        assert _info().hblkhd - before.hblkhd >= _MB64
        del a
    monkeypatch.setenv(heap.ENV_SWITCH, "not a number")
    assert heap.threshold_bytes() == heap.HEAP_REUSE_BYTES


def test_process_runs_inside_the_scope() -> None:
    from telemetry import pipeline

    assert pipeline.process.__wrapped__ is not None and pipeline.run.__wrapped__ is not None
    seen = []
    import pandas as pd

    fixes = pd.DataFrame({"animal_id": "a", "time": pd.date_range("2024-01-01", periods=5, freq="4h", tz="UTC"),
                          "lon": 77.0 + np.arange(5) * 0.01, "lat": 43.0})
    pipeline.process(fixes, smooth=False, states=False, step=lambda name: seen.append(heap._depth))
    assert seen and min(seen) >= 1 and heap._depth == 0
