"""Memory tuning while files are read.

numpy asks Linux for transparent huge pages (``madvise(MADV_HUGEPAGE)``) on
every array of 4 MiB or more. With the kernel's THP ``defrag`` setting at its
default (``madvise``), the first touch of such memory may wait while the kernel
compacts RAM to find a free 2 MiB page. On the 2-core benchmark machine
(a VM shared with other jobs) that made page faults the largest cost of
:func:`telemetry.read` after CSV parsing: joining 10 files into an 800 MB table
took 1.6-2.1 s with the hint and 0.4 s without; only when huge pages happened to
be free already was the hint faster (0.1 s), which a fresh process cannot count
on. The read writes each large array once and moves on, so it gains little
from huge pages: the hint is switched off for its duration (whole read of the
10 M-row benchmark: about 0.7 s less wall time).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

try:  # numpy >= 2
    from numpy._core.multiarray import _get_madvise_hugepage, _set_madvise_hugepage
except ImportError:  # pragma: no cover - numpy 1.x keeps them in numpy.core
    try:
        from numpy.core.multiarray import _get_madvise_hugepage, _set_madvise_hugepage
    except ImportError:
        _get_madvise_hugepage = _set_madvise_hugepage = None

_get: Callable[[], bool] | None = _get_madvise_hugepage
_set: Callable[[bool], bool] | None = _set_madvise_hugepage

_LOCK = threading.Lock()
_depth = 0
_previous = False


@contextlib.contextmanager
def no_hugepage_hint() -> Iterator[None]:
    """Turn numpy's huge-page hint off inside the block, then restore it.

    The setting is process-wide and reads may run on several threads at once:
    the first block to enter saves and clears it, the last to leave restores
    it. Other code running meanwhile only loses a performance hint. A no-op
    when this numpy has no such setting.
    """
    global _depth, _previous
    if _get is None or _set is None:
        yield
        return
    with _LOCK:
        if _depth == 0:
            _previous = bool(_get())
            _set(False)
        _depth += 1
    try:
        yield
    finally:
        with _LOCK:
            _depth -= 1
            if _depth == 0:
                _set(_previous)
