"""The output folder of ``telemetry run``: complete or untouched, and checkable.

:func:`staged_folder` builds every output in a hidden sibling folder and, only when all
of them are written, puts it in place of the target in one rename (the previous result is
kept until then, and restored if the swap fails). An interrupted or failed run therefore
leaves either the previous complete folder or nothing, never a mix. Files in the target
that no run wrote (a ``README.md`` beside the outputs) are carried over.

:func:`write_manifest` records what the folder holds (``manifest.json``: tool version,
parameters, every input file with its size and SHA-256, every output with its size and
SHA-256), and :func:`check_folder` (``telemetry check DIR``) verifies a folder against it.

Examples
--------
>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> with staged_folder(root / "out") as tmp:
...     _ = (tmp / "a.txt").write_text("hello")
...     _ = write_manifest(tmp, inputs=[], parameters={"x": 1})
>>> check_folder(root / "out")
[]
>>> _ = (root / "out" / "a.txt").write_text("HELLO")
>>> check_folder(root / "out")
['a.txt: content differs from the manifest (SHA-256)']
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from telemetry.errors import TelemetryError

MANIFEST_NAME = "manifest.json"
"""The manifest file of an output folder."""

HASH_BLOCK_BYTES = 8 << 20
"""Read size (bytes) when hashing files."""


def check_writable(folder: str | os.PathLike[str]) -> Path:
    """Fail early (a one-line :class:`TelemetryError`) if ``folder`` cannot be created or replaced.

    Checks, without creating anything, that the nearest existing ancestor is a writable
    folder (the outputs are built in a sibling of ``folder``, so its parent must be
    writable) and that ``folder`` itself, if it exists, is a folder.
    """
    path = Path(folder).absolute()
    if path.exists() and not path.is_dir():
        raise TelemetryError("the output path exists and is not a folder", str(folder))
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise TelemetryError(f"cannot create the output folder: {parent} is not a folder", str(folder))
    if not os.access(parent, os.W_OK | os.X_OK):
        raise TelemetryError(f"cannot write the output folder: no write permission in {parent}", str(folder))
    if path.exists() and not os.access(path, os.W_OK | os.X_OK):
        raise TelemetryError("cannot replace the output folder: no write permission", str(folder))
    return path


@contextlib.contextmanager
def staged_folder(final: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty sibling folder to write into; on success it replaces ``final`` atomically.

    On an exception (including ``KeyboardInterrupt``) the staging folder is removed and
    ``final`` is left as it was.
    """
    final = check_writable(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:8]
    tmp = final.parent / f".{final.name}.partial-{token}"
    try:
        tmp.mkdir()
    except OSError as err:
        raise TelemetryError(f"cannot create the output folder: {err.strerror or err}", str(final)) from None
    try:
        yield tmp
        _carry_over(final, tmp)
        old = final.parent / f".{final.name}.previous-{token}"
        if final.exists():
            os.replace(final, old)
        try:
            os.replace(tmp, final)
        except OSError:
            if old.exists():
                os.replace(old, final)  # put the previous result back
            raise
        shutil.rmtree(old, ignore_errors=True)
    except OSError as err:
        raise TelemetryError(f"cannot write the output folder: {err.strerror or err}", str(final)) from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _carry_over(final: Path, tmp: Path) -> None:
    """Copy into ``tmp`` the files of ``final`` that no run wrote (not in its manifest, not made now)."""
    if not final.is_dir():
        return
    listed: set[str] = {MANIFEST_NAME}
    manifest = final / MANIFEST_NAME
    if manifest.is_file():
        try:
            listed |= {f["path"] for f in json.loads(manifest.read_text(encoding="utf-8")).get("outputs", [])}
        except (OSError, ValueError, TypeError, KeyError):
            pass
    for path in sorted(final.rglob("*")):
        rel = path.relative_to(final).as_posix()
        if path.is_file() and rel not in listed and not (tmp / rel).exists():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, tmp / rel)


def file_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(HASH_BLOCK_BYTES):
            h.update(block)
    return h.hexdigest()


def _input_files(inputs: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The files the reader looks at under ``inputs`` (:func:`telemetry.parsers.source.expand_paths`:
    not the folders marked as not telemetry, such as ``sample_tracks/truth``, nor hidden files;
    a dataset folder's part files)."""
    from telemetry.parsers.source import expand_paths

    out: list[Path] = []
    for p, _ in expand_paths(inputs):
        out.extend(sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p])
    return out


def write_manifest(folder: str | os.PathLike[str], *, inputs: Iterable[str | os.PathLike[str]],
                   parameters: dict[str, Any] | None, extra: dict[str, Any] | None = None) -> Path:
    """Write ``manifest.json`` listing the folder's files (size, SHA-256), the inputs and the parameters.

    Call it last: every file present in ``folder`` (but the manifest) is listed.
    """
    from telemetry.version import __version__

    folder = Path(folder)
    outputs = [{"path": f.relative_to(folder).as_posix(), "bytes": f.stat().st_size, "sha256": file_digest(f)}
               for f in sorted(folder.rglob("*")) if f.is_file() and f.name != MANIFEST_NAME]
    ins = [{"path": str(f), "bytes": f.stat().st_size, "sha256": file_digest(f)}
           for f in _input_files(inputs) if f.is_file()]
    doc = {"tool": "collar-telemetry", "version": __version__, "inputs": ins, "parameters": parameters or {},
           "outputs": outputs, **(extra or {})}
    path = folder / MANIFEST_NAME
    path.write_text(json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def check_folder(folder: str | os.PathLike[str]) -> list[str]:
    """Problems of an output folder against its manifest (empty list: complete and unchanged)."""
    folder = Path(folder)
    manifest = folder / MANIFEST_NAME
    if not folder.is_dir():
        return [f"{folder}: not a folder"]
    if not manifest.is_file():
        return [f"{MANIFEST_NAME}: missing (not a complete telemetry run folder)"]
    try:
        doc = json.loads(manifest.read_text(encoding="utf-8"))
        outputs = {o["path"]: o for o in doc["outputs"]}
    except (OSError, ValueError, TypeError, KeyError) as err:
        return [f"{MANIFEST_NAME}: unreadable ({err})"]
    problems = []
    for rel, entry in sorted(outputs.items()):
        path = folder / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
        elif path.stat().st_size != entry.get("bytes"):
            problems.append(f"{rel}: size differs from the manifest")
        elif file_digest(path) != entry.get("sha256"):
            problems.append(f"{rel}: content differs from the manifest (SHA-256)")
    return problems
