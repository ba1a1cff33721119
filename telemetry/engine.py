"""Where the work runs: in-process (default) or on a Dask cluster.

Every per-animal step of the pipeline (cleaning, segmentation, smoothing, metrics,
states, crossings, home ranges, footprints) depends only on the fixes of one animal, so
the fix table can be split into partitions of *whole animals*, each processed anywhere,
and the results put back together. The population steps (hotspots, the footprint count)
are reductions over the gathered per-animal results, run on the driver.

Two engines:

- :class:`LocalEngine` (``"local"``, the default): everything in this process, the same
  code path as without an engine.
- :class:`DaskEngine` (``"dask"``): a ``dask.distributed`` cluster — a
  :class:`distributed.LocalCluster` of worker processes started here when no scheduler
  address is given, else the cluster at that address (``tcp://host:8786``).

Results are identical whichever engine runs: partitions are made of whole animals, and
the gathering code restores the in-process row order, categories and numbering.

Examples
--------
>>> from telemetry.engine import get_engine
>>> with get_engine("local") as engine:
...     engine.map(len, [[1, 2], [3]])
[2, 1]
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from telemetry.arrays import group_codes
from telemetry.errors import ConfigError, TelemetryError

__all__ = [
    "Engine", "LocalEngine", "DaskEngine", "get_engine", "ENGINES", "balanced_groups", "animal_partitions",
    "concat_parts", "CONNECT_TIMEOUT_S",
]

ENGINES = ("local", "dask")
"""Engine names accepted by :func:`get_engine` and the ``--engine`` option."""

CONNECT_TIMEOUT_S = 10.0
"""How long (s) to wait for a scheduler before giving up with a one-line error."""


class Engine:
    """Where work runs. Use as a context manager; it closes what it started.

    Subclasses implement :meth:`map`; :attr:`n_partitions` says how many animal
    partitions are worth making (0 = do not partition: run the in-process code path).
    """

    name = "engine"
    distributed = False

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release what this engine started (nothing for the in-process engine)."""

    @property
    def n_partitions(self) -> int:
        return 0

    def map(self, func: Callable[..., Any], items: Sequence[Any], *args: Any, **kwargs: Any) -> list[Any]:
        """``[func(item, *args, **kwargs) for item in items]``, in input order."""
        return [func(item, *args, **kwargs) for item in items]

    def submit_map(self, func: Callable[..., Any], items: Sequence[Any], *args: Any) -> list[Any]:
        """Start :meth:`map` and return handles for :meth:`gather` (here: the results)."""
        return self.map(func, items, *args)

    def gather(self, futures: list[Any]) -> list[Any]:
        """The results of :meth:`submit_map`."""
        return futures


class LocalEngine(Engine):
    """Everything in this process (the default): no partitioning, the plain code path."""

    name = "local"

    def __repr__(self) -> str:
        return "LocalEngine()"


class DaskEngine(Engine):
    """Run per-animal partitions on a ``dask.distributed`` cluster.

    Parameters
    ----------
    scheduler : str, optional
        Scheduler address (``tcp://host:8786``, or a ``dask scheduler --scheduler-file``
        JSON path). None starts a :class:`distributed.LocalCluster` on this machine.
    n_workers : int, optional
        Workers of the LocalCluster (default: CPU count); ignored with ``scheduler``.
    threads_per_worker : int
        Threads per LocalCluster worker. 1 (default): the numba kernels are
        single-threaded per worker process, so workers × threads ≤ cores.
    partitions_per_worker : int
        Partitions per worker thread (default 2: a slow animal does not idle the rest).
    timeout_s : float, optional
        Connection timeout (s) for ``scheduler`` (default :data:`CONNECT_TIMEOUT_S`).
    dashboard : bool
        Serve the Dask dashboard of the LocalCluster (off by default).

    Raises
    ------
    TelemetryError
        When Dask is not installed or the scheduler cannot be reached (one line).
    """

    name = "dask"
    distributed = True

    def __init__(self, scheduler: str | None = None, n_workers: int | None = None, *, threads_per_worker: int = 1,
                 partitions_per_worker: int = 2, timeout_s: float | None = None, dashboard: bool = False) -> None:
        if n_workers is not None and n_workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {n_workers}")
        self.scheduler = scheduler
        self.n_workers = n_workers
        self.threads_per_worker = threads_per_worker
        self.partitions_per_worker = partitions_per_worker
        self.timeout_s = CONNECT_TIMEOUT_S if timeout_s is None else float(timeout_s)
        self.dashboard = dashboard
        self._client: Any = None
        self._cluster: Any = None

    def __repr__(self) -> str:
        where = self.scheduler or f"LocalCluster(n_workers={self.n_workers})"
        return f"DaskEngine({where})"

    def __enter__(self) -> DaskEngine:
        self.start()
        return self

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> DaskEngine:
        """Start the LocalCluster or connect to the scheduler (idempotent)."""
        if self._client is not None:
            return self
        try:
            import distributed
        except ImportError:
            raise TelemetryError("--engine dask needs dask.distributed: pip install 'collar-telemetry[dask]'") \
                from None
        if self.scheduler:
            self._client = self._connect(distributed)
        else:
            n = self.n_workers or os.cpu_count() or 1
            # numba/BLAS threads per worker = dask threads, so workers do not fight over cores
            env = {k: str(self.threads_per_worker) for k in
                   ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
            try:
                self._cluster = distributed.LocalCluster(
                    n_workers=n, threads_per_worker=self.threads_per_worker, processes=True,
                    dashboard_address=":0" if self.dashboard else None, silence_logs=40, env=env)
                self._client = _new_client(distributed, self._cluster, timeout_s=self.timeout_s)
            except Exception as err:  # ports, spawn failures: one line, not a traceback
                self.close()
                raise TelemetryError(f"cannot start a local Dask cluster: {type(err).__name__}: {err}") from None
        return self

    def _connect(self, distributed: Any) -> Any:
        address = str(self.scheduler)
        kwargs: dict[str, Any] = {"timeout": f"{self.timeout_s}s"}
        if address.endswith(".json") and os.path.isfile(address):
            kwargs["scheduler_file"] = address
        else:
            kwargs["address"] = address
        where = f"cannot connect to the Dask scheduler at {address}"
        start = time.monotonic()
        for attempt in (1, 2):
            try:
                return self._checked(_new_client(distributed, timeout_s=self.timeout_s, **kwargs), address)
            except TelemetryError:  # no workers, another version: the scheduler did answer
                raise
            except ValueError as err:  # bad address syntax: no point in trying again
                raise TelemetryError(f"{where}: {_one_line(err)}") from None
            except Exception as err:  # OSError, TimeoutError; once, under load, a bare AssertionError
                waited = time.monotonic() - start
                # one retry, only for a handshake that failed fast (a timeout is not retried:
                # the message must tell the wait the user really had)
                if attempt == 2 or waited >= self.timeout_s / 2:
                    raise TelemetryError(f"{where} (no answer after {waited:.0f} s; timeout {self.timeout_s:g} s): "
                                         f"{_one_line(err)}") from None
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _checked(self, client: Any, address: str) -> Any:
        """``client``, once its workers are checked (closed, and the error raised, if they fail)."""
        try:
            self._check_workers(client, address)
        except BaseException:
            client.close()
            raise
        return client

    def _check_workers(self, client: Any, address: str) -> None:
        """At least one worker, each running this version of the package (else results could differ)."""
        try:
            client.wait_for_workers(1, timeout=self.timeout_s)
        except Exception:
            raise TelemetryError(f"the Dask scheduler at {address} has no workers "
                                 f"(waited {self.timeout_s:g} s); start some with `dask worker {address}`") from None
        from telemetry.version import __version__

        try:
            versions = client.run(_package_version)
        except Exception as err:  # e.g. the package is not installed on a worker
            raise TelemetryError(f"the Dask workers at {address} cannot run telemetry: {_one_line(err)} "
                                 "(pip install collar-telemetry on every worker)") from None
        wrong = sorted(f"{w} has {v}" for w, v in versions.items() if v != __version__)
        if wrong:
            raise TelemetryError(f"Dask workers run another collar-telemetry version than this process "
                                 f"({__version__}): {'; '.join(wrong[:3])}")

    def close(self) -> None:
        """Close the client, and the LocalCluster if this engine started it."""
        client, cluster = self._client, self._cluster
        self._client = self._cluster = None
        # bounded waits: a worker stuck in a task must not keep the command from exiting
        if client is not None:
            try:
                client.close(timeout=self.timeout_s)
            except Exception:  # already gone, or timed out: nothing left to do
                pass
        if cluster is not None:
            try:
                cluster.close(timeout=self.timeout_s)
            except Exception:
                pass

    @property
    def client(self) -> Any:
        """The :class:`distributed.Client` (started on first use)."""
        return self.start()._client

    # ---------------------------------------------------------------- work

    @property
    def n_threads(self) -> int:
        """Worker threads in the cluster (at least 1)."""
        info = self.client.scheduler_info(n_workers=-1) if _takes_n_workers(self.client) \
            else self.client.scheduler_info()
        return max(1, sum(int(w.get("nthreads", 1)) for w in info.get("workers", {}).values()))

    @property
    def n_partitions(self) -> int:
        return self.n_threads * self.partitions_per_worker

    def map(self, func: Callable[..., Any], items: Sequence[Any], *args: Any, **kwargs: Any) -> list[Any]:
        """Run ``func(item, *args, **kwargs)`` on the workers, one task per item, in input order.

        Items (the partitions) are scattered once each, so every task ships its own
        partition only; ``args``/``kwargs`` are small (parameters) or scattered by the caller.
        """
        client = self.client
        if not items:
            return []
        futures = client.scatter(list(items))
        tasks = client.map(func, futures, *[[a] * len(futures) for a in args], pure=False, **kwargs)
        try:
            return client.gather(tasks)
        finally:
            client.cancel(tasks + futures)

    def submit_map(self, func: Callable[..., Any], items: Sequence[Any], *args: Any) -> list[Any]:
        """Like :meth:`map` but return at once: the futures, for :meth:`gather` later."""
        client = self.client
        futures = client.scatter(list(items)) if items else []
        return client.map(func, futures, *[[a] * len(futures) for a in args], pure=False)

    def gather(self, futures: list[Any]) -> list[Any]:
        """The results of :meth:`submit_map` futures, in order."""
        return self.client.gather(futures) if futures else []

    def scatter(self, obj: Any) -> Any:
        """Ship ``obj`` (e.g. a grid shared by all tasks) to every worker once; pass the result to :meth:`map`."""
        return self.client.scatter(obj, broadcast=True)


def _package_version() -> str:
    """The telemetry version a worker imports (run on each worker)."""
    from telemetry.version import __version__

    return __version__


def _new_client(distributed: Any, *args: Any, timeout_s: float, **kwargs: Any) -> Any:
    """``distributed.Client(*args, **kwargs)``; if starting it fails, it is closed before the error goes on.

    distributed leaves a Client whose handshake failed with anything but OSError open
    (status "connecting"; seen as a bare AssertionError under load), reachable only
    through reference cycles. Were the garbage collector to find it while another Client
    starts, its ``__del__`` would wait for the lock that the starting Client holds
    (LoopRunner's class-wide lock) and the process would hang for good. So the Client
    records itself before it starts, and a failed one is closed here, outside any lock.
    """
    made: list[Any] = []

    class RecordedClient(distributed.Client):  # type: ignore[misc, name-defined]
        def __init__(self, *a: Any, **k: Any) -> None:
            made.append(self)
            super().__init__(*a, **k)

    try:
        return RecordedClient(*args, **kwargs)
    except BaseException:
        for client in made:
            try:
                client.close(timeout=timeout_s)
            except Exception:  # closed already, or its loop is gone: nothing left to do
                pass
        raise


def _one_line(err: BaseException, limit: int = 160) -> str:
    reason = " ".join(str(err).split()) or type(err).__name__
    return reason if len(reason) <= limit else reason[: limit - 3] + "..."


def _takes_n_workers(client: Any) -> bool:
    import inspect

    return "n_workers" in inspect.signature(client.scheduler_info).parameters


def get_engine(engine: str | Engine | None = None, *, scheduler: str | None = None,
               n_workers: int | None = None) -> Engine:
    """An engine from a name (``"local"``, ``"dask"``), an Engine (returned as is) or None (local).

    ``scheduler``/``n_workers`` only apply to ``"dask"`` (a scheduler address implies it).
    """
    if isinstance(engine, Engine):
        return engine
    name = (engine or ("dask" if scheduler else "local")).lower()
    if name == "local":
        if scheduler:
            raise ConfigError("--scheduler needs --engine dask")
        return LocalEngine()
    if name == "dask":
        return DaskEngine(scheduler=scheduler, n_workers=n_workers)
    raise ConfigError(f"unknown engine '{engine}' (use {', '.join(ENGINES)})")


# --------------------------------------------------------------------------- partitions


def balanced_groups(sizes: np.ndarray, n_parts: int) -> list[np.ndarray]:
    """Split groups (animals) into at most ``n_parts`` bins of similar total size.

    Greedy longest-processing-time: the largest group goes to the lightest bin (ties: the
    lower group code, the lower bin), which is deterministic and within 4/3 of the best
    balance. Empty groups are left out.

    Parameters
    ----------
    sizes : ndarray of int
        Rows per group code.
    n_parts : int
        Bins wanted.

    Returns
    -------
    list of ndarray of int
        Group codes of each non-empty bin, ascending within a bin; bins ordered by their
        first code.

    Examples
    --------
    >>> [b.tolist() for b in balanced_groups(np.array([5, 1, 4, 2, 0]), 2)]
    [[0, 1], [2, 3]]
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    codes = np.flatnonzero(sizes > 0)
    n_parts = max(1, min(int(n_parts), codes.size))
    order = codes[np.lexsort((codes, -sizes[codes]))]
    load = np.zeros(n_parts, dtype=np.int64)
    owner = np.empty(order.size, dtype=np.int64)
    # n_animals iterations of an argmin over n_parts bins: cheap (animals, not rows)
    for i, code in enumerate(order):
        b = int(np.argmin(load))
        owner[i] = b
        load[b] += sizes[code]
    bins = [np.sort(order[owner == b]) for b in range(n_parts)]
    bins = [b for b in bins if b.size]
    return sorted(bins, key=lambda b: int(b[0]))


def animal_partitions(df: pd.DataFrame, n_parts: int) -> list[pd.DataFrame]:
    """The rows of ``df`` in at most ``n_parts`` partitions of whole animals, balanced by rows.

    Rows keep their relative order and every column keeps its dtype (categoricals keep
    all their categories), so each partition is a valid table on its own. Rows without
    an ``animal_id`` form one group of their own.
    """
    codes, labels = group_codes(df)
    sizes = np.bincount(codes, minlength=len(labels))
    bins = balanced_groups(sizes, n_parts)
    if len(bins) <= 1:
        return [df]
    member = np.empty(len(labels), dtype=np.int64)
    for b, group in enumerate(bins):
        member[group] = b
    part = member[codes]
    order = np.argsort(part, kind="stable")
    bounds = np.searchsorted(part[order], np.arange(len(bins) + 1))
    out = []
    for b in range(len(bins)):
        piece = df.iloc[order[bounds[b]:bounds[b + 1]]]
        piece.attrs = {}
        out.append(piece)
    return out


def concat_parts(parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate partition results, uniting categories instead of falling back to object.

    Categoricals whose dtype differs between parts (categories found in the data of each
    part) get the union of categories in order of first appearance over the parts, then
    sorted if every part had sorted categories (as ``astype('category')`` gives).
    """
    parts = [p for p in parts if p is not None]
    if not parts:
        return pd.DataFrame()
    if len(parts) == 1:
        return parts[0].reset_index(drop=True)
    fixed = [p.copy(deep=False) for p in parts]
    for p in fixed:
        p.attrs = {}
    for col in parts[0].columns:
        dtypes = [p[col].dtype for p in parts if col in p.columns]
        if not all(isinstance(d, pd.CategoricalDtype) for d in dtypes) or all(d == dtypes[0] for d in dtypes):
            continue
        cats = pd.Index(pd.unique(np.concatenate([np.asarray(d.categories, dtype=object) for d in dtypes])))
        if all(d.categories.is_monotonic_increasing for d in dtypes):
            cats = cats.sort_values()
        want = pd.CategoricalDtype(cats.astype(dtypes[0].categories.dtype), ordered=dtypes[0].ordered)
        for p in fixed:
            if col in p.columns:
                p[col] = p[col].astype(want)
    return pd.concat(fixed, ignore_index=True, sort=False)
