"""Keep freed memory for reuse while the pipeline runs (glibc's allocator only).

The steps allocate and free large arrays many times: the Kalman likelihood's transition
tables alone are 72 MB per million fixes, made about 80 times in one ``process``. glibc
serves every allocation above its mmap threshold (128 KiB, rising to at most 32 MiB) with
a fresh ``mmap`` and unmaps it on free, so each is paid again in page faults and zeroing.
``python scripts/bench.py --stages process --fixes 1000000 --skip-movingpandas --baseline .
--baseline-env TELEMETRY_HEAP_REUSE_BYTES=0`` (this checkout with and without it, alternating,
2 cores, 2026-12-07): 0.91x the wall time on the bench's generator (CPU 16.8 s against 18.1 s,
of it the system's 0.9 s against 1.8 s) and 0.92x on alertsim (16.2 against 17.1 s; 1.2
against 2.3 s), the same peak RSS (1.35 GB). The system time left is the heap's first touch:
kept between calls it falls to ~0.05 s. :func:`reused_heap` raises the mmap and trim thresholds to
:data:`telemetry.config.HEAP_REUSE_BYTES` while it is open and, when the outermost scope
closes, gives the free memory back (``malloc_trim``) and restores glibc's documented
defaults (128 KiB), so a notebook holds no more memory after a run than before it.

Elsewhere (macOS, Windows, musl) it does nothing. ``TELEMETRY_HEAP_REUSE_BYTES=0`` in the
environment switches it off.

Core layer: imports only :mod:`telemetry.config`.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from telemetry.config import HEAP_REUSE_BYTES

ENV_SWITCH = "TELEMETRY_HEAP_REUSE_BYTES"
"""Environment variable: the threshold (bytes) instead of the configured one; 0 switches off."""

_M_TRIM_THRESHOLD = -1  # mallopt parameters, <malloc.h>
_M_MMAP_THRESHOLD = -3
_GLIBC_DEFAULT_BYTES = 128 * 1024  # both thresholds' documented defaults (mallopt(3))

_lock = threading.Lock()
_depth = 0


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """glibc's allocator interface, or None where there is none (not Linux, or not glibc); looked
    up once."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        return libc
    except (OSError, AttributeError):
        return None


def threshold_bytes() -> int:
    """The threshold in force: ``TELEMETRY_HEAP_REUSE_BYTES`` if set (an integer), else
    :data:`telemetry.config.HEAP_REUSE_BYTES`; at most 2**31 - 1 (``mallopt`` takes an int).

    >>> threshold_bytes() == min(int(os.environ.get(ENV_SWITCH, HEAP_REUSE_BYTES)), 2**31 - 1)
    True
    """
    raw = os.environ.get(ENV_SWITCH, "").strip()
    try:
        value = int(raw) if raw else int(HEAP_REUSE_BYTES)
    except ValueError:
        value = int(HEAP_REUSE_BYTES)
    return max(0, min(value, 2**31 - 1))


@contextmanager
def reused_heap() -> Iterator[bool]:
    """Within the block, freed memory stays with the process for reuse (see the module
    docstring); nested and concurrent scopes share the outermost one. Yields whether the
    setting is in force.

    >>> with reused_heap() as on:
    ...     isinstance(on, bool)
    True
    """
    global _depth
    libc = _libc()
    value = threshold_bytes()
    if libc is None or value <= 0:
        yield False
        return
    with _lock:
        if _depth == 0:
            libc.mallopt(_M_MMAP_THRESHOLD, value)
            libc.mallopt(_M_TRIM_THRESHOLD, value)
        _depth += 1
    try:
        yield True
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                libc.mallopt(_M_MMAP_THRESHOLD, _GLIBC_DEFAULT_BYTES)
                libc.mallopt(_M_TRIM_THRESHOLD, _GLIBC_DEFAULT_BYTES)
                libc.malloc_trim(0)
