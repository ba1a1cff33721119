"""Deployment tables: when each collar was on its animal (``animal_id``, ``start``, ``end``).

Read from a user's table (``--deployments``) or from Movebank's reference data among the input
files (:mod:`telemetry.parsers.movebank`); :func:`telemetry.trajectory.clean.clean` flags the
fixes outside their animal's deployments ``outside_deployment``. Low in the import order:
parsers and the cleaning steps both use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from telemetry.errors import TelemetryError
from telemetry.schema import NULL_VALUES

#: other names of the deployment table's columns (Movebank's reference data first), matched
#: after lower-casing and stripping; the first present wins
DEPLOYMENT_ALIASES: dict[str, tuple[str, ...]] = {
    "animal_id": ("animal_id", "animal-id", "individual-local-identifier", "individual_id", "animal", "tag-id",
                  "tag_id"),
    "start": ("start", "deploy-on-date", "deploy_on_date", "deploy-on-timestamp", "deploy_on_timestamp"),
    "end": ("end", "deploy-off-date", "deploy_off_date", "deploy-off-timestamp", "deploy_off_timestamp"),
}


def deployment_columns(deployments: pd.DataFrame) -> dict[str, Any]:
    """The column of ``deployments`` that holds each of ``animal_id``, ``start``, ``end``
    (:data:`DEPLOYMENT_ALIASES`; None where there is none).

    >>> deployment_columns(pd.DataFrame(columns=["Animal-ID", "deploy-on-date"]))
    {'animal_id': 'Animal-ID', 'start': 'deploy-on-date', 'end': None}
    """
    cols = {str(c).strip().lower(): c for c in deployments.columns}
    return {want: next((cols[a] for a in names if a in cols), None) for want, names in DEPLOYMENT_ALIASES.items()}


def check_times(deployments: pd.DataFrame, path: str | None = None, lines: Sequence[int] | None = None) -> None:
    """Raise a :class:`TelemetryError` naming ``path``, the line and the column of the first
    start or end cell that is neither empty nor a time (``lines``: each row's line in the
    file; default a header on line 1 and a row per line).

    >>> dep = pd.DataFrame({"animal-id": ["a", "b"], "deploy-on-date": ["2024-01-01", "soon"]})
    >>> check_times(dep, "ref.csv")
    Traceback (most recent call last):
    telemetry.errors.TelemetryError: ref.csv, line 3, column 'deploy-on-date': cannot read 'soon' as a time
    """
    pick = deployment_columns(deployments)
    for want in ("start", "end"):
        col = pick[want]
        if col is None:
            continue
        cells = deployments[col]
        _, bad = deployment_times(cells)
        if bad.any():
            i = int(bad.argmax())
            line = int(lines[i]) if lines is not None else i + 2
            raise TelemetryError(f"cannot read {str(cells.iloc[i])!r} as a time", path, line, str(col))


def deployment_times(cells: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """A start or end column as UTC times (NaT where empty: an open bound) and which of its
    non-empty cells are not times (bool per row): the one reading of deployment times, for
    :func:`check_times` and the cleaning step. Empty is what the readers call missing
    (:data:`~telemetry.schema.NULL_VALUES`, e.g. ``-``), so a table says the same whether it came
    as Movebank reference data, with ``--deployments`` or as a DataFrame.

    >>> t, bad = deployment_times(pd.Series(["2024-01-01 02:00", "", None, " - ", "soon"]))
    >>> t.isna().tolist(), bad.tolist()
    ([False, True, True, True, True], [False, False, False, False, True])
    """
    given = cells.notna() & ~cells.astype(str).str.strip().isin(NULL_VALUES)
    times = pd.to_datetime(cells.where(given), utc=True, errors="coerce", format="mixed")
    return times, (given & times.isna()).to_numpy()


def deployment_table(deployments: pd.DataFrame) -> pd.DataFrame:
    """``animal_id``, ``start``, ``end`` of a deployment table, by those names or Movebank's
    reference data's (``animal-id``, ``deploy-on-date``, ``deploy-off-date``). A table with an
    animal and a start but no end column is open-ended (an empty start or end is an open bound).

    >>> ref = pd.DataFrame({"tag-id": ["80150"], "animal-id": ["80150"],
    ...                     "deploy-on-date": ["2008-02-12 14:00:00.000"], "deploy-off-date": [None]})
    >>> deployment_table(ref).to_dict("records")
    [{'animal_id': '80150', 'start': '2008-02-12 14:00:00.000', 'end': None}]
    """
    pick = deployment_columns(deployments)
    if pick["animal_id"] is None or pick["start"] is None:
        raise TelemetryError(
            "the deployment table needs columns animal_id, start, end (or Movebank's animal-id, deploy-on-date, "
            f"deploy-off-date); it has {', '.join(map(str, deployments.columns))}"
        )
    out = pd.DataFrame({want: deployments[c] if c is not None else None for want, c in pick.items()})
    return out.reset_index(drop=True)


def deployment_rows(deployments: pd.DataFrame) -> list[dict[str, str | None]]:
    """A deployment table as plain rows (``animal_id``, ``start``, ``end``: the cells' text,
    None where empty or a null marker such as ``-``), rows without an animal left out; ``[]``
    for a table without an animal or a start column. Plain rows travel in a read report (``attrs``), which pandas copies.

    >>> deployment_rows(pd.DataFrame({"animal-id": ["a", " "], "deploy-on-date": ["2024-01-01", "2024-02-01"],
    ...                               "deploy-off-date": [None, ""]}))
    [{'animal_id': 'a', 'start': '2024-01-01', 'end': None}]
    """
    try:
        dep = deployment_table(deployments)
    except TelemetryError:
        return []

    def text(v: Any) -> str | None:
        cell = None if v is None or pd.isna(v) else str(v).strip()
        return None if cell in NULL_VALUES else cell  # (as deployment_times reads it)

    rows = [{k: text(v) for k, v in r.items()} for r in dep.to_dict("records")]
    return [r for r in rows if r["animal_id"] is not None]


def deployments_read(sources: Iterable[Mapping[str, Any]] | None) -> tuple[pd.DataFrame | None, list[str]]:
    """The deployment table that came with the input files (the ``deployments`` of
    :func:`telemetry.read`'s per-file reports: Movebank reference data), and the files it
    came from; ``(None, [])`` when none did.

    >>> dep, files = deployments_read([{"source": "ref.csv", "deployments": [
    ...     {"animal_id": "a", "start": "2024-01-01", "end": None}]}, {"source": "gps.csv"}])
    >>> files, dep.to_dict("records")
    (['ref.csv'], [{'animal_id': 'a', 'start': '2024-01-01', 'end': None}])
    """
    rows: list[dict[str, str | None]] = []
    files: list[str] = []
    for report in sources or []:
        if report.get("deployments"):
            rows += list(report["deployments"])
            files.append(str(report.get("source")))
    if not files:
        return None, []
    return pd.DataFrame(rows, columns=["animal_id", "start", "end"]), files
