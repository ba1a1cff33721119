"""GeoParquet datasets partitioned by animal: one folder per animal, readable in parallel.

Layout (hive style, as pyarrow, Dask, DuckDB and Spark read it)::

    tracks_ds/
      _telemetry_dataset.json          manifest: columns, categories, animals, row counts, parameters
      animal_id=SL01/part-0.parquet    GeoParquet (point geometry, EPSG:4326) of one animal's rows
      animal_id=SL02/part-0.parquet
      animal_id=__HIVE_DEFAULT_PARTITION__/part-0.parquet   rows without an animal id, if any

Animal ids are percent-encoded in folder names (``/`` → ``%2F``, ``.`` → ``%2E``), which
is reversible and what hive readers decode. As in hive layouts the ``animal_id`` column is
not stored in the files (it is the folder). Each file has a ``__row__`` column (int64,
the row's position in the written table), so reading everything back gives the table in
its original row order. The manifest records every categorical column's categories, so a
subset of animals read on a Dask worker has exactly the dtypes of the whole table.

The dataset is written to a temporary folder beside the target and renamed into place
(an existing dataset there is replaced; any other existing folder is an error).

Examples
--------
>>> import telemetry, tempfile, os
>>> from telemetry.io.dataset import write_dataset, read_dataset
>>> fixes = telemetry.read("sample_tracks/")                       # doctest: +SKIP
>>> write_dataset(fixes, os.path.join(tempfile.mkdtemp(), "ds"))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import numpy as np
import pandas as pd

from telemetry.errors import ParseError, TelemetryError
from telemetry.parsers.source import DATASET_MANIFEST

__all__ = ["write_dataset", "read_dataset", "is_dataset", "dataset_animals", "animal_groups", "dataset_report",
           "single_dataset", "MANIFEST", "NULL_PARTITION"]

MANIFEST = DATASET_MANIFEST
"""The manifest file that marks a folder as a telemetry dataset."""

NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
"""Hive's folder value for rows with a missing partition key (no animal id)."""

FORMAT_NAME = "telemetry-geoparquet-dataset"
ROW_COLUMN = "__row__"
PART_FILE = "part-0.parquet"


def partition_name(animal_id: Any) -> str:
    """Folder name of an animal: ``animal_id=<percent-encoded id>`` (reversible, path-safe).

    >>> partition_name("SL/01.a")
    'animal_id=SL%2F01%2Ea'
    """
    if animal_id is None or (not isinstance(animal_id, str) and pd.isna(animal_id)):
        return f"animal_id={NULL_PARTITION}"
    return "animal_id=" + quote(str(animal_id), safe="").replace(".", "%2E")


def animal_from_partition(name: str) -> str | None:
    """The animal id of a folder name made by :func:`partition_name` (None for no id).

    >>> animal_from_partition("animal_id=SL%2F01%2Ea")
    'SL/01.a'
    """
    value = name.split("=", 1)[1]
    return None if value == NULL_PARTITION else unquote(value)


# --------------------------------------------------------------------------- writing


def _categories(df: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Every categorical column's categories, order flag and category dtype (JSON-able)."""
    out = {}
    for col in df.columns:
        dtype = df[col].dtype
        if isinstance(dtype, pd.CategoricalDtype):
            cats = dtype.categories
            out[str(col)] = {"values": [v.item() if isinstance(v, np.generic) else v for v in cats.tolist()],
                             "ordered": bool(dtype.ordered), "dtype": str(cats.dtype)}
    return out


def write_dataset(tracks: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a fix or track table as a GeoParquet dataset partitioned by animal (atomically).

    Parameters
    ----------
    tracks : pandas.DataFrame
        Canonical fixes or processed tracks (any row order; ``attrs`` parameters and steps
        are kept in the manifest and in each file's ``telemetry`` metadata).
    path : path
        Dataset folder (created; an existing dataset there is replaced).

    Returns
    -------
    pathlib.Path
        The dataset folder.
    """
    from telemetry.io.points import track_metadata, write_point_parquet

    root = Path(path)
    if root.exists() and not is_dataset(root) and (not root.is_dir() or any(root.iterdir())):
        raise TelemetryError("exists and is not a telemetry dataset; not overwriting it", str(root))
    if "animal_id" not in tracks.columns:
        raise TelemetryError("the table has no animal_id column to partition by", str(root))
    meta = track_metadata(tracks)
    if tracks.attrs.get("error_fit"):
        # the error-model fit, by the digest of its inputs: `telemetry update` reuses it when a
        # new day leaves those inputs as they were (telemetry.trajectory.error_estimate.FitMemo)
        meta["error_fit"] = tracks.attrs["error_fit"]
    meta_bytes = json.dumps(meta, sort_keys=True, separators=(",", ":"), default=str).encode()
    # imported here: telemetry.trajectory brings numba, scipy and geopandas, which
    # telemetry.read (it asks is_dataset of every input) must not pay for (~0.9 s, +1× file in memory)
    from telemetry.arrays import group_codes

    df = tracks.copy(deep=False)
    df.attrs = {}
    codes, labels = group_codes(df)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(labels) + 1))
    body = df.drop(columns=["animal_id"])
    animals: list[dict[str, Any]] = []
    parent = root.parent if str(root.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=parent))
        tmp.chmod(0o777 & ~_umask())  # mkdtemp makes 0700; the dataset gets the user's usual mode
    except OSError as err:
        raise TelemetryError(f"cannot create the output folder: {err.strerror or err}", str(parent)) from None
    try:
        # one file per animal: a loop over animals (tens to thousands), not rows
        for k, label in enumerate(labels):
            rows = order[bounds[k]:bounds[k + 1]]
            if rows.size == 0:
                continue
            label = None if pd.isna(label) else str(label)
            rel = f"{partition_name(label)}/{PART_FILE}"
            (tmp / rel).parent.mkdir()
            part = body.iloc[rows]
            part.insert(len(part.columns), ROW_COLUMN, rows.astype(np.int64))
            write_point_parquet(part, str(tmp / rel), {b"telemetry": meta_bytes})
            animals.append({"animal_id": label, "path": rel, "rows": int(rows.size)})
        manifest = {"format": FORMAT_NAME, "version": 1, "partitioning": "hive", "partition_column": "animal_id",
                    "row_column": ROW_COLUMN, "rows": len(df), "columns": [str(c) for c in df.columns],
                    "categories": _categories(df), "animals": animals, "telemetry": meta,
                    # Parquet types object columns from their values (all-bool → bool, all-None →
                    # null): record them, so that every file reads back as object
                    "object_columns": [str(c) for c in df.columns if df[c].dtype == object]}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, default=str) + "\n", encoding="utf-8")
        _replace_dir(tmp, root)
    except OSError as err:
        raise TelemetryError(f"cannot write the dataset: {err.strerror or err}", str(root)) from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return root


def _replace_dir(tmp: Path, root: Path) -> None:
    """Move the finished folder ``tmp`` onto ``root``; an old dataset is moved aside, then deleted."""
    old = None
    if root.exists():
        old = root.with_name(f".{root.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(root, old)
    try:
        os.replace(tmp, root)
    except OSError:
        if old is not None:
            os.replace(old, root)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# --------------------------------------------------------------------------- reading


def is_dataset(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` is a folder written by :func:`write_dataset` (it holds the manifest)."""
    try:
        return (Path(path) / MANIFEST).is_file()
    except (OSError, TypeError, ValueError):
        return False


def single_dataset(data: object) -> Path | None:
    """The dataset folder if ``data`` names exactly one dataset (a path or a one-item list), else None."""
    if isinstance(data, (str, os.PathLike)):
        items: list[object] = [data]
    elif isinstance(data, (list, tuple)) and len(data) == 1:
        items = list(data)
    else:
        return None
    item = items[0]
    if isinstance(item, (str, os.PathLike)) and is_dataset(item):
        return Path(item)
    return None


def _manifest(root: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ParseError(f"cannot read the dataset manifest: {err}", str(root / MANIFEST)) from None
    if manifest.get("format") != FORMAT_NAME:
        raise ParseError("not a telemetry dataset manifest", str(root / MANIFEST))
    return manifest


def dataset_animals(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The animals of a dataset: ``animal_id`` (None for rows without one), ``path``, ``rows``."""
    animals = _manifest(Path(path))["animals"]
    return pd.DataFrame({"animal_id": pd.Series([a["animal_id"] for a in animals], dtype=object),
                         "path": [a["path"] for a in animals],
                         "rows": np.array([a["rows"] for a in animals], dtype=np.int64)})


def animal_groups(path: str | os.PathLike[str], n_parts: int) -> list[list[str | None]]:
    """The dataset's animals in at most ``n_parts`` groups balanced by rows (for parallel reads)."""
    from telemetry.engine import balanced_groups

    animals = dataset_animals(path)
    bins = balanced_groups(animals["rows"].to_numpy(dtype=np.int64), n_parts)
    ids = animals["animal_id"].tolist()
    return [[ids[i] for i in b] for b in bins]


def dataset_report(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``attrs["sources"]`` entry :func:`telemetry.read` makes for a dataset (from the manifest)."""
    n = int(_manifest(Path(path))["rows"])
    return {"source": str(Path(path)), "format": "geoparquet", "rows_read": n, "rows_kept": n, "skipped": {},
            "notes": []}


def _category_dtype(spec: dict[str, Any]) -> pd.CategoricalDtype:
    values = spec["values"]
    try:
        cats = pd.Index(values, dtype=spec.get("dtype", "object"))
    except (TypeError, ValueError):
        cats = pd.Index(values)
    return pd.CategoricalDtype(cats, ordered=bool(spec.get("ordered", False)))


def read_dataset(path: str | os.PathLike[str], animals: Iterable[str | None] | None = None) -> pd.DataFrame:
    """Read a dataset written by :func:`write_dataset` (all animals, or some).

    Parameters
    ----------
    path : path
        The dataset folder.
    animals : iterable of str, optional
        Animal ids to read (None in the list: rows without an id); default all. Ids not
        in the dataset are an error.

    Returns
    -------
    pandas.DataFrame
        The table as written: same columns, dtypes and categories (all of them, also for a
        subset), rows in their written order; ``attrs["parameters"]``/``["steps"]`` from the
        manifest. Reading every animal gives back the written table exactly.
    """
    import pyarrow.parquet as pq

    root = Path(path)
    manifest = _manifest(root)
    entries = manifest["animals"]
    if animals is not None:
        want = {None if a is None or (not isinstance(a, str) and pd.isna(a)) else str(a) for a in animals}
        missing = sorted(map(str, want - {e["animal_id"] for e in entries}))
        if missing:
            raise TelemetryError(f"animal(s) not in the dataset: {', '.join(missing)}", str(root))
        entries = [e for e in entries if e["animal_id"] in want]
    dtypes = {col: _category_dtype(spec) for col, spec in manifest["categories"].items()}
    frames = []
    for animal_id, rel in ((e["animal_id"], e["path"]) for e in entries):
        try:
            part = pq.read_table(root / rel).to_pandas()
        except (OSError, ValueError) as err:
            raise ParseError(f"cannot read dataset part: {err}", str(root / rel)) from None
        part = part.drop(columns=["geometry"], errors="ignore")
        part["animal_id"] = pd.Categorical.from_codes(
            np.full(len(part), -1 if animal_id is None else dtypes["animal_id"].categories.get_loc(animal_id)),
            dtype=dtypes["animal_id"]) if "animal_id" in dtypes else animal_id
        frames.append(part)
    columns = [*manifest["columns"], ROW_COLUMN]
    objects = list(manifest.get("object_columns", []))
    if frames:
        df = pd.concat([_restore(f, dtypes, columns, objects) for f in frames], ignore_index=True, sort=False)
    else:
        df = _restore(pd.DataFrame({c: [] for c in columns}), dtypes, columns, objects)
    rows = df.pop(ROW_COLUMN).to_numpy(dtype=np.int64)
    order = np.argsort(rows, kind="stable")
    if not np.array_equal(order, np.arange(len(order))):
        df = df.iloc[order].reset_index(drop=True)
    df.attrs = dict(manifest.get("telemetry") or {})
    return df


def _restore(part: pd.DataFrame, dtypes: dict[str, pd.CategoricalDtype], columns: Sequence[str],
             objects: Sequence[str] = ()) -> pd.DataFrame:
    """Columns in manifest order, categoricals with the manifest's categories (remapped by value),
    object columns as object."""
    for col in objects:
        if col in part.columns and part[col].dtype != object:
            part[col] = part[col].astype(object)
    for col, dtype in dtypes.items():
        if col in part.columns and part[col].dtype != dtype:
            s = part[col]
            if isinstance(s.dtype, pd.CategoricalDtype):
                # each file holds only the categories its rows use: remap codes by value
                lookup = np.append(dtype.categories.get_indexer(s.cat.categories.astype(dtype.categories.dtype)),
                                   -1)
                part[col] = pd.Categorical.from_codes(lookup[s.cat.codes.to_numpy()], dtype=dtype)
            else:
                part[col] = pd.Categorical(s, dtype=dtype)
    return part[list(columns)]
