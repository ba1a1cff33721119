"""Compiled kernels shipped with the package, so that a new machine's first run does not compile.

numba compiles the package's ~60 kernels (cleaning, error model, smoother, states, corridors)
the first time they run on a machine: about 100 s on 2 cores for ``telemetry run`` on the
sample, every time a user installs the tool. numba's own cache can be reused on another
machine when three things agree (numba ≥ 0.59 keys it so):

* the *source*: each index records the SHA-256 of the module's file, not its mtime;
* the *numba version* and the Python version (in the file names);
* the *target CPU*: the index key holds the CPU name and features the code was built for.

So the package compiles its kernels for LLVM's portable ``generic`` x86-64 target
(:data:`CPU_NAME`; measured as fast as the host's own, znver3 here: ``process`` on the 1M-fix
bench 15.3–16.9 s vs 17.7 s), ``scripts/build_kernels.py`` fills :data:`SHIPPED_DIR` from a
run on the sample, and :func:`install` copies those files into the cache folder numba uses for
each module (its ``__pycache__``, or ``NUMBA_CACHE_DIR``) when that folder holds nothing fresher.
Whatever does not match (another CPU architecture, numba or Python version, an edited module)
is simply compiled as before; a stale shipped file is never used, since numba checks the
source hash. ``tests/test_kernel_cache.py`` fails when a shipped kernel no longer matches its
source, and checks that a run on the sample compiles nothing.

Set ``TELEMETRY_SHIPPED_KERNELS=0`` to compile everything (what ``scripts/bench.py --stages
compile`` measures as "cold"), or ``NUMBA_CPU_NAME`` to choose the target yourself (e.g.
``host``; the shipped kernels are then not used). The generic target applies to every numba
function compiled in the process after ``telemetry.trajectory`` or ``telemetry.corridor`` is
imported, unless numba had already compiled something (then the host target stays).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import sys
import uuid
from functools import cache
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
"""The ``telemetry`` package folder (kernel modules are found relative to it)."""

SHIPPED_DIR = PACKAGE_DIR / "data" / "kernels"
"""Shipped numba cache files, by package subfolder (``trajectory/``, ``corridor/``)."""

CPU_NAME = "generic"
"""LLVM target the package's kernels are compiled for (portable across x86-64 machines)."""

ENV_SWITCH = "TELEMETRY_SHIPPED_KERNELS"
"""Environment variable: ``0`` turns off the generic target and the shipped kernels; ``build``
keeps the target and seeds nothing (``scripts/build_kernels.py``)."""

_PY_TAG = f"py{sys.version_info.major}{sys.version_info.minor}"
_done = False


def install() -> int:
    """Use the portable CPU target and seed numba's cache from :data:`SHIPPED_DIR` (once per process).

    Must run before the first ``numba.njit`` of the package is decorated (the target is fixed
    when numba creates its CPU context). Never raises: a cache that cannot be seeded only
    means the kernels are compiled.

    Returns
    -------
    int
        Number of kernel indexes copied into numba's cache in this call.
    """
    global _done
    if _done:
        return 0
    _done = True
    mode = os.environ.get(ENV_SWITCH, "1").strip()
    if mode == "0":
        return 0
    try:
        from numba.core import config, registry

        if config.CPU_NAME is None and config.CPU_FEATURES is None:
            if "_toplevel_target_context" in vars(registry.cpu_target):
                return 0  # numba already compiled for the host: keep one target per process
            config.CPU_NAME = CPU_NAME
            config.CPU_FEATURES = ""
        if config.CPU_NAME != CPU_NAME or not SHIPPED_DIR.is_dir() or mode == "build":
            return 0  # "build": compile for the portable target, seed nothing (scripts/build_kernels.py)
        return sum(_seed(index) for index in sorted(SHIPPED_DIR.rglob(f"*.{_PY_TAG}.nbi")))
    except Exception:  # noqa: BLE001 - seeding is an optimisation; compiling is always correct
        return 0


def shipped_indexes() -> list[Path]:
    """The shipped index files of this Python version."""
    return sorted(SHIPPED_DIR.rglob(f"*.{_PY_TAG}.nbi")) if SHIPPED_DIR.is_dir() else []


def source_of(index: Path) -> Path:
    """The module an index belongs to: ``trajectory/states._fit_range-790.py311.nbi`` → ``trajectory/states.py``.

    >>> source_of(SHIPPED_DIR / "trajectory" / "states._fit_range-790.py311.nbi").relative_to(PACKAGE_DIR).as_posix()
    'trajectory/states.py'
    """
    rel = index.parent.relative_to(SHIPPED_DIR)
    return PACKAGE_DIR / rel / (index.name.split(".", 1)[0] + ".py")


def index_stamp(index: Path) -> tuple[str, object, dict]:
    """(numba version, source stamp, overloads) of a numba index file."""
    with open(index, "rb") as f:
        version = pickle.load(f)
        stamp, overloads = pickle.loads(f.read())
    return version, stamp, overloads


def source_hash(path: Path) -> bytes:
    """SHA-256 of a source file, as numba stamps its cache indexes."""
    st = path.stat()
    return _hash(path, st.st_mtime_ns, st.st_size)


@cache
def _hash(path: Path, mtime_ns: int, size: int) -> bytes:  # the stat in the key: an edited file is re-read
    return hashlib.sha256(path.read_bytes()).digest()


def numba_cache_dir(py_file: Path) -> Path | None:
    """The folder numba's cache uses for the kernels of ``py_file`` (its first usable locator)."""
    from numba.core import caching

    def probe() -> None:  # only its line number is read by the locators
        return None

    for cls in caching.CacheImpl._locator_classes:
        loc = cls.from_function(probe, str(py_file))
        if loc is not None:
            return Path(loc.get_cache_path())
    return None


def has_fresh_kernels(module: str = "trajectory/states.py") -> bool:
    """True if numba's cache holds kernels compiled from the current source of ``module``
    (relative to the package), i.e. the run will not compile them."""
    src = PACKAGE_DIR / module
    try:
        dest = numba_cache_dir(src)
        if dest is None or not dest.is_dir():
            return False
        want = source_hash(src)
        return any(index_stamp(p)[1] == want for p in dest.glob(f"{src.stem}.*.{_PY_TAG}.nbi"))
    except Exception:  # noqa: BLE001 - unreadable cache: it will be compiled
        return False


def _seed(index: Path) -> int:
    """Copy one shipped index and its data files into numba's cache unless it holds a fresh one."""
    import numba

    src = source_of(index)
    if not src.is_file():
        return 0
    version, stamp, _ = index_stamp(index)
    if version != numba.__version__ or stamp != source_hash(src):
        return 0  # shipped for another numba, or the module changed since: numba compiles
    dest = numba_cache_dir(src)
    if dest is None:
        return 0
    target = dest / index.name
    if target.exists():
        try:
            v, s, _ = index_stamp(target)
            if v == version and s == stamp:
                return 0  # numba's own index is fresh (it may hold more overloads)
        except Exception:  # noqa: BLE001 - an unreadable index is replaced
            pass
    base = index.name[: -len(".nbi")]
    for data in sorted(index.parent.glob(base + ".*.nbc")):
        _copy(data, dest / data.name)
    _copy(index, target)  # the index last: it only points at files already in place
    return 1


def _copy(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f"{dst.name}.tmp.{uuid.uuid4().hex[:12]}")
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    finally:
        if tmp.exists():
            tmp.unlink()
