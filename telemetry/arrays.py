"""Array helpers shared by every step: group codes, one sort, neighbours, distinct values.

Every step works the same way: sort the rows once by ``(animal, time)``, take numpy
arrays, and express "previous/next fix of the same animal" as index shifts guarded by
group boundaries. Nothing here loops in Python over rows or animals.

Core layer: imports only :mod:`telemetry.schema`. The compiled distance and order-statistic
kernels are in :mod:`telemetry.trajectory._arrays`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import pandas as pd

from telemetry.schema import FLAG_DTYPE, FLAGS

FLAG_CODE = {name: i for i, name in enumerate(FLAGS)}


def with_columns(df: pd.DataFrame, columns: Mapping[str, object]) -> pd.DataFrame:
    """``df`` (not modified) with ``columns`` set (name → values of ``len(df)``, positional):
    existing ones replaced where they stand, new ones appended in one step; ``attrs`` kept.
    A new column's array is not copied: the caller hands it over and does not change it after.

    One step, not one insert per column: a frame read from many formats holds a block per
    column (string and categorical columns never merge; ``tests/data``: 225 columns, 90 blocks
    after a copy), and pandas slows down and warns (``PerformanceWarning``) inserting into a
    frame of more than 100 blocks; the steps of ``process`` add 18 columns.

    >>> df = pd.DataFrame({"a": [1, 2]}); df.attrs["x"] = 1
    >>> out = with_columns(df, {"b": np.array([3.0, 4.0]), "a": [5, 6]})
    >>> out.columns.tolist(), out["a"].tolist(), out["b"].tolist(), out.attrs, df["a"].tolist()
    (['a', 'b'], [5, 6], [3.0, 4.0], {'x': 1}, [1, 2])
    """
    out = df.copy(deep=False)
    new = {}
    for name, values in columns.items():
        if name in out.columns:
            out[name] = values
        else:
            new[name] = values.to_numpy() if isinstance(values, pd.Series) else values
    if new:
        attrs = out.attrs
        # one frame per column: ``pd.DataFrame(new)`` would stack same-dtype columns into one
        # new 2-D block, a copy that cost 0.45 s for the smoother's six columns of 1M fixes
        # (fresh pages); a column frame wraps its array as it is (hence: the caller hands it over)
        parts = [pd.Series(v, index=out.index, name=k, copy=False).to_frame() for k, v in new.items()]
        out = pd.concat([out, *parts], axis=1)
        out.attrs = attrs
    return out


def over_groups(kernel: Callable[..., None], bounds: np.ndarray, *args: object) -> None:
    """Call ``kernel(*args, g0, g1)`` for chunks ``[g0, g1)`` of the groups on threads.

    ``bounds`` holds the groups' row boundaries (group ``g`` is rows ``bounds[g]:bounds[g+1]``);
    the chunks are contiguous, balanced by rows, about four per thread (``numba.get_num_threads``)
    and taken in turn by the threads, so one long animal does not hold the others back. The
    kernel must be ``nogil`` and write only its own groups' outputs, so the result does not
    depend on the split.

    Why not ``numba.prange``: a ``parallel=True`` kernel costs numba's parfor passes when it
    compiles, about twice the time of the plain loop (the states' EM fit: 48 s vs 24 s on the
    first run of a new machine), for the same speed at run time over whole animals.

    >>> out = np.zeros(3)
    >>> def k(b, o, g0, g1):
    ...     for g in range(g0, g1):
    ...         o[g] = b[g + 1] - b[g]
    >>> over_groups(k, np.array([0, 2, 7, 9]), np.array([0, 2, 7, 9]), out); out.tolist()
    [2.0, 5.0, 2.0]
    """
    n = int(bounds.size) - 1
    if n <= 0:
        return
    threads = max(1, min(numba.get_num_threads(), n))
    if threads == 1:
        kernel(*args, 0, n)
        return
    # cut points at equal shares of the rows (each group counts at least one row)
    work = np.cumsum(np.maximum(np.diff(np.asarray(bounds, dtype=np.int64)), 1))
    target = np.linspace(0, work[-1], 4 * threads + 1)[1:-1]
    cuts = np.unique(np.r_[0, np.searchsorted(work, target, side="right"), n])
    list(_pool(threads).map(lambda i: kernel(*args, int(cuts[i]), int(cuts[i + 1])), range(cuts.size - 1)))


_POOL: list = [None, None]  # the pool and its (process id, threads)
_POOL_LOCK = threading.Lock()


def _pool(threads: int) -> ThreadPoolExecutor:
    """One thread pool per process for :func:`over_groups`, kept between calls.

    Why kept: a pool made per call cost ~1 ms (its threads started and joined), and the
    rests' jump EM calls ``over_groups`` three times per iteration: 400 calls, ~0.4 s of
    ``process`` on the bench's 1M fixes. A forked child (multiprocessing, Dask's process
    workers) inherits the pool object but not its threads, hence the process id; a change of
    ``numba.set_num_threads`` gets a pool of the new size. Several callers may share it at once:
    the kernels never call ``over_groups`` themselves, so no task waits on another.
    """
    key = (os.getpid(), threads)
    with _POOL_LOCK:
        if _POOL[1] != key:
            old = _POOL[0]
            if old is not None and _POOL[1][0] == key[0]:
                old.shutdown(wait=False)
            _POOL[0] = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="telemetry-groups")
            _POOL[1] = key
        return _POOL[0]


def group_codes(df: pd.DataFrame, column: str = "animal_id") -> tuple[np.ndarray, pd.Index]:
    """Integer code per row for ``column`` (missing values get their own last code).

    Returns
    -------
    codes : ndarray of int64
        ``0..k-1``; rows with a missing id share code ``k-1`` (after the named groups).
    labels : pandas.Index
        The label of each code (``NA`` for the missing-id group).
    """
    if column not in df.columns:
        return np.zeros(len(df), dtype=np.int64), pd.Index([pd.NA], dtype=object)
    col = df[column]
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes = col.cat.codes.to_numpy().astype(np.int64)
        labels = pd.Index(col.cat.categories)
    else:
        codes, uniques = pd.factorize(col, sort=True)
        codes = codes.astype(np.int64)
        labels = pd.Index(uniques)
    missing = codes < 0
    if missing.any():
        codes = np.where(missing, len(labels), codes)
        labels = labels.astype(object).append(pd.Index([pd.NA], dtype=object))
    return codes, labels


def time_ns(df: pd.DataFrame) -> np.ndarray:
    """``time`` as int64 nanoseconds since the epoch (NaT → int64 min)."""
    t = df["time"]
    if not isinstance(t.dtype, pd.DatetimeTZDtype) and not pd.api.types.is_datetime64_dtype(t.dtype):
        t = pd.to_datetime(t, utc=True, errors="coerce")
    return t.dt.as_unit("ns").to_numpy(dtype="datetime64[ns]").view(np.int64)


def flag_codes(df: pd.DataFrame) -> np.ndarray:
    """Codes of the ``flag`` column in :data:`FLAG_DTYPE` (``-1`` = usable; so is a value that
    names no flag reason).

    >>> flag = pd.Categorical(["speed", None, "not a reason"], categories=["not a reason", "speed"])
    >>> flag_codes(pd.DataFrame({"flag": flag})).tolist() == [FLAG_CODE["speed"], -1, -1]
    True
    >>> flag_codes(pd.DataFrame({"flag": ["speed", None, "not a reason"]})).tolist() == [FLAG_CODE["speed"], -1, -1]
    True
    """
    if "flag" not in df.columns:
        return np.full(len(df), -1, dtype=np.int8)
    flag = df["flag"]
    if isinstance(flag.dtype, pd.CategoricalDtype) and flag.dtype == FLAG_DTYPE:
        return flag.cat.codes.to_numpy().astype(np.int8).copy()
    # any other column (other categories, say none; strings): each distinct value to its
    # reason's code, -1 if it names none (a categorical's own codes, or one factorize: not a
    # Categorical built from 1M values, which pandas 4 will refuse for values it does not know)
    if isinstance(flag.dtype, pd.CategoricalDtype):
        codes, values = flag.cat.codes.to_numpy(), flag.cat.categories
    else:
        codes, values = pd.factorize(flag)
    lut = np.array([FLAG_CODE.get(v, -1) if isinstance(v, str) else -1 for v in values] + [-1], dtype=np.int8)
    return lut[codes]  # (code -1, a missing flag, picks the trailing -1)


def flags_to_series(codes: np.ndarray, index: pd.Index) -> pd.Series:
    """Flag codes back to the categorical ``flag`` column."""
    return pd.Series(pd.Categorical.from_codes(codes.astype(np.int8), dtype=FLAG_DTYPE), index=index, name="flag")


def usable_mask(df: pd.DataFrame) -> np.ndarray:
    """True where the row is unflagged and has time, lon and lat."""
    ok = flag_codes(df) < 0
    ok &= df["time"].notna().to_numpy() & np.isfinite(df["lon"].to_numpy(dtype=float, na_value=np.nan))
    ok &= np.isfinite(df["lat"].to_numpy(dtype=float, na_value=np.nan))
    return ok


def sorted_usable(df: pd.DataFrame, usable: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row positions of usable fixes sorted by ``(animal, time)``.

    Returns
    -------
    pos : ndarray of int64
        Positions into ``df`` (``iloc``), sorted by animal code then time (stable).
    codes : ndarray of int64
        Animal code of each sorted row.
    t_ns : ndarray of int64
        Time (ns) of each sorted row.
    """
    if usable is None:
        usable = usable_mask(df)
    codes_all, _ = group_codes(df)
    t_all = time_ns(df)
    pos = np.flatnonzero(usable)
    codes, t = codes_all[pos], t_all[pos]
    order = group_time_order(codes, t)
    if order is not None:
        pos, codes, t = pos[order], codes[order], t[order]
    return pos, codes, t


def group_time_order(codes: np.ndarray, t: np.ndarray) -> np.ndarray | None:
    """The stable order of rows by ``(codes, t)``, i.e. ``np.lexsort((t, codes))``, or None
    where the rows are in it already (an O(n) check: tables from ``process()`` are).

    Rows in runs of a group, in time within each, but with the groups in another order (a
    table sorted by a categorical's category order, read with codes of the sorted names) need
    only a stable sort of the codes, which merges the runs, and the check that the times are in
    order within each (else lexsort): 1M rows in 100 runs 26 ms against lexsort's 60 ms (best of 15).

    >>> group_time_order(np.array([1, 1, 0, 0]), np.array([5, 6, 1, 2])).tolist()
    [2, 3, 0, 1]
    >>> group_time_order(np.array([1, 0, 1]), np.array([6, 1, 5])).tolist()
    [1, 2, 0]
    >>> group_time_order(np.array([0, 0, 1]), np.array([1, 2, 0])) is None
    True
    """
    if is_sorted_by(codes, t):
        return None
    order = np.argsort(codes, kind="stable")
    if is_sorted_by(codes[order], t[order]):
        return order
    return np.lexsort((t, codes))


def distinct(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values of a 1-D array, by one sort and a mask.

    numpy 2.3+ answers a plain ``np.unique`` with a hash table, which is up to 60× slower
    than sorting on millions of scattered int64 cell indices (7.7 s vs 0.13 s for 7M).

    >>> distinct(np.array([5, 1, 5, 3, 1])).tolist()
    [1, 3, 5]
    """
    s = np.sort(np.asarray(values).ravel())
    if s.size < 2:
        return s
    keep = np.empty(s.size, dtype=bool)
    keep[0] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    return s[keep]


def unique_ints(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(values, return_inverse=True)`` for an int64 array: the sorted distinct
    values and each row's index among them. A presence table over ``min..max`` when that
    range is not much larger than the array (group codes, months), O(n) with no sort;
    ``np.unique`` otherwise."""
    values = np.asarray(values, dtype=np.int64)
    if values.size == 0:
        return values.copy(), np.zeros(0, dtype=np.int64)
    lo, hi = int(values.min()), int(values.max())
    if hi - lo > 4 * values.size:  # sparse values: a sort is cheaper than a table
        uniq, inverse = np.unique(values, return_inverse=True)
        return uniq, inverse.astype(np.int64).reshape(values.shape)
    present = np.bincount(values - lo) > 0
    return np.flatnonzero(present) + lo, (np.cumsum(present) - 1)[values - lo]


def is_sorted_by(major: np.ndarray, minor: np.ndarray) -> bool:
    """True when rows are in non-decreasing ``(major, minor)`` order (a stable sort by them is
    then the identity); a NaN ``minor`` is not out of order.

    >>> is_sorted_by(np.array([0, 0, 1]), np.array([2.0, np.nan, 1.0])), is_sorted_by(np.array([0, 0]), np.array([2, 1]))
    (True, False)
    """
    if major.size < 2:
        return True
    dm = np.diff(major)
    if (dm < 0).any():
        return False
    # one elementwise pass, no gather of the ties (5 ms against 8 on 1M rows)
    return not ((dm == 0) & (minor[1:] < minor[:-1])).any()


def same_group_as_previous(codes: np.ndarray) -> np.ndarray:
    """``out[i]`` is True when sorted row ``i`` has the same group as row ``i-1``."""
    out = np.zeros(codes.shape, dtype=bool)
    out[1:] = codes[1:] == codes[:-1]
    return out


def group_starts(codes: np.ndarray) -> np.ndarray:
    """Index of the first row of each row's run of equal ``codes`` (sorted input)."""
    n = codes.size
    start = np.ones(n, dtype=bool)
    start[1:] = codes[1:] != codes[:-1]
    return np.maximum.accumulate(np.where(start, np.arange(n), 0)) if n else np.zeros(0, dtype=np.int64)


def group_ends(codes: np.ndarray) -> np.ndarray:
    """Index one past the last row of each row's run of equal ``codes`` (sorted input)."""
    n = codes.size
    if not n:
        return np.zeros(0, dtype=np.int64)
    rev = group_starts(codes[::-1])[::-1]
    return n - rev


def lexsort_small_keys(first: np.ndarray, *small: np.ndarray) -> np.ndarray:
    """``np.lexsort((first, *small))`` (last key primary), faster when the ``small`` keys are few.

    ``small`` are non-negative integer keys; while their combined range fits in 16 bits the
    rows are sorted stably by ``first`` (timsort: fast on the long sorted runs of fix times)
    and then by the combined key with numpy's radix sort; otherwise plain ``np.lexsort``.
    Both sorts are stable, so ties keep their order exactly as in ``np.lexsort``.
    """
    combined = np.zeros(first.size, dtype=np.int64)
    span = 1
    for key in reversed(small):  # most significant first
        k = np.asarray(key, dtype=np.int64)
        size = int(k.max()) + 1 if k.size else 1
        if (k.size and k.min() < 0) or span * size > 1 << 16:
            return np.lexsort((first, *small))
        combined = combined * size + k
        span *= size
    by_first = np.argsort(first, kind="stable")
    return by_first[np.argsort(combined[by_first].astype(np.uint16), kind="stable")]
