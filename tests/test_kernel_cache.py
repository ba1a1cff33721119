"""Shipped compiled kernels (telemetry.kernel_cache): fresh for the current sources, used by a first run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numba
import pytest

import telemetry.trajectory  # noqa: F401 - installs the portable target and seeds the cache
from telemetry import kernel_cache as kc

ROOT = Path(__file__).resolve().parents[1]
REBUILD = "run `python scripts/build_kernels.py` after changing a module with numba kernels"


def _shipped_numba_version() -> str | None:
    idx = kc.shipped_indexes()
    return kc.index_stamp(idx[0])[0] if idx else None


needs_same_numba = pytest.mark.skipif(
    _shipped_numba_version() not in (None, numba.__version__),
    reason=f"kernels shipped for numba {_shipped_numba_version()}, this is {numba.__version__}: they compile",
)


def test_every_kernel_module_has_shipped_kernels() -> None:
    with_kernels = {p.relative_to(kc.PACKAGE_DIR).as_posix() for p in kc.PACKAGE_DIR.rglob("*.py")
                    if p.name != "kernel_cache.py" and "numba.njit" in p.read_text()}
    shipped = {kc.source_of(i).relative_to(kc.PACKAGE_DIR).as_posix() for i in kc.shipped_indexes()}
    assert with_kernels and with_kernels <= shipped, f"no shipped kernels for {sorted(with_kernels - shipped)}: {REBUILD}"


@needs_same_numba
def test_shipped_kernels_match_their_sources() -> None:
    stale = [i.name for i in kc.shipped_indexes() if kc.index_stamp(i)[1] != kc.source_hash(kc.source_of(i))]
    assert not stale, f"shipped kernels older than their source ({', '.join(stale[:5])}…): {REBUILD}"
    # built for the portable target only (a host-specific build would crash on an older CPU)
    for i in kc.shipped_indexes():
        for key in kc.index_stamp(i)[2]:
            assert key[1][1:] == (kc.CPU_NAME, ""), (i.name, key[1])


def test_the_package_compiles_for_the_portable_target() -> None:
    from numba.core import config

    if os.environ.get("NUMBA_CPU_NAME") or os.environ.get(kc.ENV_SWITCH) == "0":
        pytest.skip("the target was chosen by the environment")
    assert (config.CPU_NAME, config.CPU_FEATURES) == (kc.CPU_NAME, "")


@needs_same_numba
def test_first_run_on_a_new_machine_compiles_nothing(tmp_path) -> None:
    """`telemetry run` on the sample with an empty numba cache loads every kernel from the shipped files."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba"), "NUMBA_DEBUG_CACHE": "1"}
    for k in ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES", kc.ENV_SWITCH):
        env.pop(k, None)
    r = subprocess.run([sys.executable, "-m", "telemetry", "run", "-q", "-o", str(tmp_path / "out")],
                       capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    log = r.stdout + r.stderr
    saved = re.findall(r"\[cache\] data saved to '([^']+)'", log)
    assert not saved, f"compiled on the first run: {[Path(s).name for s in saved][:5]}: {REBUILD}"
    assert len(re.findall(r"\[cache\] data loaded", log)) >= 10
    assert "compiling the numerical kernels" not in log  # the first-run notice is for a real compile only


def test_seeding_keeps_a_fresh_cache_and_skips_stale_shipped_files(tmp_path, monkeypatch) -> None:
    idx = kc.shipped_indexes()
    if not idx:
        pytest.skip("no shipped kernels")
    index = next(i for i in idx if i.name.startswith("states."))
    dest = tmp_path / "cache"
    dest.mkdir()
    monkeypatch.setattr(kc, "numba_cache_dir", lambda src: dest)
    if kc.index_stamp(index)[0] != numba.__version__:
        assert kc._seed(index) == 0
        return
    assert kc._seed(index) == 1  # empty cache: index and data copied
    names = sorted(p.name for p in dest.iterdir())
    assert index.name in names and any(n.endswith(".nbc") for n in names)
    assert kc._seed(index) == 0  # fresh index already there: left alone
    # a shipped index whose source changed is never copied
    monkeypatch.setattr(kc, "source_hash", lambda p: b"edited")
    (dest / index.name).unlink()
    assert kc._seed(index) == 0 and not (dest / index.name).exists()
