"""Reading collar files of every format into the canonical fix table.

Use :func:`telemetry.read`. Format modules register themselves on import;
``Format.priority`` sets the sniffing order (most specific first).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from telemetry.errors import ParseError, TelemetryError
from telemetry.parsers import (  # noqa: F401  (importing registers each format)
    ats,
    generic,
    gpx,
    lotek,
    movebank,
    ornitela,
    parquet,
    telonics,
    vectronic,
)
from telemetry.parsers.canonical import Parsed, conform
from telemetry.parsers.detect import REGISTRY, ReadOptions, detect
from telemetry.parsers.source import Source, open_sources
from telemetry.schema import empty_frame

__all__ = ["read", "read_source", "ReadOptions", "formats"]


def formats() -> list[tuple[str, str]]:
    """Known formats as ``(name, label)`` in sniffing order."""
    return [(f.name, f.label) for f in REGISTRY]


def read_source(src: Source, options: ReadOptions) -> Parsed:
    """Detect and parse one logical file; every failure is a :class:`ParseError`."""
    fmt, head = detect(src, options)
    try:
        parsed = fmt.parse(src, head, options)
    except TelemetryError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, ArithmeticError, OverflowError) as err:
        # a layout we recognised but whose content breaks an assumption
        raise ParseError(f"cannot read as {fmt.label}: {type(err).__name__}: {err}", src.name) from None
    except Exception as err:  # pyarrow raises its own hierarchy
        raise ParseError(f"cannot read as {fmt.label}: {err}", src.name) from None
    parsed.frame.attrs = {}
    return parsed


def read(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    tz: str | None = None,
    columns: dict[str, str] | None = None,
    format: str | None = None,
    animal_id: str | None = None,
) -> pd.DataFrame:
    """Read collar files (any mix of formats, ``.gz``/``.zip``, directories).

    Parameters
    ----------
    paths : path or list of paths
        Files or directories (searched recursively; files there that are not
        telemetry, such as READMEs, are skipped and listed in the report).
    tz : str, optional
        IANA time zone for files that only have local times. Never guessed.
    columns : dict, optional
        Column mapping for generic CSV files, e.g.
        ``{"time": "date", "lon": "x", "lat": "y", "animal": "name"}``.
    format : str, optional
        Force one parser (see :func:`formats`) instead of detecting.
    animal_id : str, optional
        Animal id for files that name none.

    Returns
    -------
    pandas.DataFrame
        The canonical columns of :mod:`telemetry.schema` (time tz-aware UTC)
        plus vendor extras. ``df.attrs["sources"]`` lists one report per file:
        format, rows read, rows kept, rows skipped by reason, notes.

    Raises
    ------
    TelemetryError
        Unreadable or unrecognised input; the message names file, line and column.

    Examples
    --------
    >>> import telemetry
    >>> fixes = telemetry.read("sample_tracks/")          # doctest: +SKIP
    >>> fixes.groupby("animal_id", observed=True).size()  # doctest: +SKIP
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    options = ReadOptions(tz=tz, columns=dict(columns or {}), format=format, animal_id=animal_id)
    frames: list[pd.DataFrame] = []
    reports: list[dict[str, Any]] = []
    n_explicit_ok: dict[str, int] = {}
    for src in _sources(list(paths)):
        top = src.name.split("::")[0]
        try:
            parsed = read_source(src, options)
        except ParseError as err:
            if src.explicit:
                raise
            reports.append({"source": src.name, "format": None, "skipped_file": err.message})
            continue
        n_explicit_ok[top] = n_explicit_ok.get(top, 0) + 1
        frames.append(parsed.frame)
        reports.append(
            {
                "source": src.name,
                "format": parsed.format,
                "rows_read": parsed.rows_read,
                "rows_kept": len(parsed.frame),
                "skipped": parsed.skipped,
                "notes": parsed.notes,
            }
        )
    if not frames:
        raise ParseError("no telemetry found in the input", ", ".join(map(str, paths)))
    frame = concat(frames)
    frame.attrs["sources"] = reports
    return frame


def _sources(paths: list[str | os.PathLike[str]]) -> Iterable[Source]:
    """:func:`open_sources`, except that a dataset folder is one source (not its files)."""
    from pathlib import Path

    from telemetry.dataset import is_dataset

    for p in paths:
        if is_dataset(p):
            yield Source(name=str(Path(p)), explicit=True, path=Path(p))
        else:
            yield from open_sources([p])


def concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate canonical frames, uniting categories instead of falling back to object."""
    frames = [f for f in frames if len(f)] or frames[:1] or [empty_frame()]
    if len(frames) == 1:
        return frames[0].reset_index(drop=True)
    united = []
    for name in ("animal_id", "tag_id", "source"):
        cats = pd.Index(sorted({str(c) for f in frames for c in f[name].cat.categories}), dtype=object)
        united.append((name, cats))
    fixed = []
    for f in frames:
        f = f.copy(deep=False)
        for name, cats in united:
            lookup = np.append(cats.get_indexer(f[name].cat.categories.astype(str)), -1)
            f[name] = pd.Categorical.from_codes(lookup[f[name].cat.codes.to_numpy()], categories=cats)
        fixed.append(f)
    return conform(pd.concat(fixed, ignore_index=True, sort=False))
