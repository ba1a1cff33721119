#!/usr/bin/env python
"""Build the compiled kernels shipped in ``telemetry/data/kernels`` (see :mod:`telemetry.kernel_cache`).

Runs ``telemetry run`` on the bundled sample (and ``telemetry process`` on the real-study
subsets in ``tests/data/real``) in fresh processes with an empty numba cache and the shipped
kernels turned off, so that every kernel the pipeline uses is compiled for the portable target,
then replaces ``telemetry/data/kernels`` with the cache files of the package's modules.

Run it after changing any module that holds numba kernels (``tests/test_kernel_cache.py``
fails until you do)::

    python scripts/build_kernels.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUBPACKAGES = ("trajectory", "corridor")


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from numba.core.caching import UserProvidedCacheLocator

    from telemetry.kernel_cache import ENV_SWITCH, PACKAGE_DIR, SHIPPED_DIR

    with tempfile.TemporaryDirectory(prefix="telemetry-kernels-") as tmp:
        cache = Path(tmp) / "numba"
        # compiled for the portable target (kernel_cache.install sets it); nothing seeded
        env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), ENV_SWITCH: "build"}
        env.pop("NUMBA_CPU_NAME", None)
        env.pop("NUMBA_CPU_FEATURES", None)
        runs = [["run", "-q", str(ROOT / "sample_tracks"), "-o", str(Path(tmp) / "sample-run")]]
        real = sorted(p for p in (ROOT / "tests" / "data" / "real").rglob("*") if p.suffix in (".csv", ".gz"))
        runs += [["process", "--species", "auto", str(p), "-o", str(Path(tmp) / f"p{i}.parquet")]
                 for i, p in enumerate(real)]
        for args in runs:
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "telemetry", *args], check=True, env=env, cwd=tmp,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            print(f"telemetry {args[0]} {Path(args[-3]).name}: {time.perf_counter() - t:.0f} s")
        staged = Path(tmp) / "kernels"
        n = 0
        for sub in SUBPACKAGES:
            src = cache / UserProvidedCacheLocator.get_suitable_cache_subpath(str(PACKAGE_DIR / sub / "x.py"))
            out = staged / sub
            out.mkdir(parents=True)
            for f in sorted(src.glob("*.nb[ic]")) if src.is_dir() else []:
                shutil.copyfile(f, out / f.name)
                n += 1
        # compiled code is not byte-reproducible: keep the shipped files of every kernel whose
        # source, numba version and signatures are unchanged, so a rebuild only touches what changed
        kept = 0
        for index in sorted(staged.rglob("*.nbi")):
            old = SHIPPED_DIR / index.relative_to(staged)
            try:
                same = old.exists() and _keys(old) == _keys(index)
            except Exception:  # noqa: BLE001 - an unreadable old index is replaced
                same = False
            if same:
                base = index.name[: -len(".nbi")]
                for f in index.parent.glob(base + ".*.nbc"):
                    f.unlink()
                for f in old.parent.glob(base + ".*.nbc"):
                    shutil.copyfile(f, index.parent / f.name)
                shutil.copyfile(old, index)
                kept += 1
        print(f"{kept} kernels unchanged (their shipped files kept)")
        if SHIPPED_DIR.exists():
            shutil.rmtree(SHIPPED_DIR)
        shutil.copytree(staged, SHIPPED_DIR)
    size = sum(f.stat().st_size for f in SHIPPED_DIR.rglob("*") if f.is_file())
    print(f"{n} files, {size / 1e6:.1f} MB → {SHIPPED_DIR.relative_to(ROOT)}")
    return 0


def _keys(index: Path) -> tuple:
    """(numba version, source stamp, overload keys) of an index: equal means the same kernels."""
    from telemetry.kernel_cache import index_stamp

    version, stamp, overloads = index_stamp(index)
    return version, stamp, sorted(map(repr, overloads))


if __name__ == "__main__":
    sys.exit(main())
