"""Ordered maps on threads, for work whose heavy parts release the GIL (numba ``nogil``
kernels, GEOS through shapely, PROJ, numpy sorts).

Core layer: imports nothing from the package.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def cpu_count() -> int:
    """Cores this process may use (its CPU affinity where the OS tells it, else the CPU count).

    >>> cpu_count() >= 1
    True
    """
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def thread_map(fn: Callable[[T], R], items: Iterable[T], *, max_workers: int | None = None) -> list[R]:
    """``[fn(x) for x in items]`` on up to ``max_workers`` threads (default: :func:`cpu_count`),
    results in the items' order (so they do not depend on the number of threads); serial for
    one item or one worker.

    >>> thread_map(lambda x: x * x, range(5))
    [0, 1, 4, 9, 16]
    """
    items = list(items)
    workers = max(1, min(max_workers or cpu_count(), len(items)))
    if workers == 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))
