"""What the validation simulators write: a Movebank table of fixes and the truth table that
``scripts/validate.py`` scores (SYNTHETIC data, and labelled so).

Shared by ``scripts/collar_sim.py`` and ``scripts/switch_sim.py`` so that their movement and error
models stay independent while the file format and the truth columns (the contract with the
validator) are written in one place. Nothing here imports the package.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

TRUTH_COLUMNS = ("animal_id", "event_id", "time", "located", "true_lon", "true_lat", "state_at_fix",
                 "state_interval", "is_spike", "fix_class", "hdop")
"""The truth per fix: ``state_*`` are ``resting`` / ``moving`` / ``travelling``; ``fix_class`` 3D / 2D."""


def movebank_rows(animal: str, ts: pd.DatetimeIndex, lon: np.ndarray, lat: np.ndarray, hdop: np.ndarray,
                  failed: np.ndarray, is_2d: np.ndarray | None = None, sats: np.ndarray | None = None) -> pd.DataFrame:
    """One animal's fixes as Movebank columns (failed fixes without position or HDOP); a fix-type
    column when ``is_2d`` is given, a satellite count when ``sats`` is."""
    m = ts.size
    rows = pd.DataFrame({
        "event-id": np.arange(m),
        "timestamp": ts.strftime("%Y-%m-%d %H:%M:%S.000"),
        "location-long": np.where(failed, np.nan, np.round(lon, 7)),
        "location-lat": np.where(failed, np.nan, np.round(lat, 7)),
        "gps:hdop": np.where(failed, np.nan, np.round(hdop, 1)),
        "individual-local-identifier": animal,
        "tag-local-identifier": f"tag-{animal}",
    })
    if is_2d is not None:
        rows["gps:fix-type-raw"] = np.where(failed, "", np.where(is_2d, "2", "3"))
    if sats is not None:
        rows["gps:satellite-count"] = np.where(failed, 0, sats)
    return rows


def truth_rows(animal: str, ts: pd.DatetimeIndex, failed: np.ndarray, true_lon: np.ndarray, true_lat: np.ndarray,
               state_at_fix: np.ndarray, state_interval: np.ndarray, spike: np.ndarray, is_2d: np.ndarray,
               hdop: np.ndarray) -> pd.DataFrame:
    """One animal's truth table (:data:`TRUTH_COLUMNS`)."""
    return pd.DataFrame({
        "animal_id": animal, "event_id": np.arange(ts.size), "time": ts, "located": ~failed,
        "true_lon": true_lon, "true_lat": true_lat, "state_at_fix": state_at_fix, "state_interval": state_interval,
        "is_spike": spike, "fix_class": np.where(is_2d, "2D", "3D"), "hdop": hdop,
    })


def write_study(out: Path, rows: pd.DataFrame, truth: pd.DataFrame, simulator: str) -> tuple[Path, Path]:
    """Write ``collars.csv`` (labelled synthetic, naming ``simulator``) and ``truth.parquet`` into
    ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    rows = rows.assign(**{"study-name": f"SYNTHETIC validation collars ({simulator}): not observations"})
    csv, tp = out / "collars.csv", out / "truth.parquet"
    rows.to_csv(csv, index=False)
    truth.to_parquet(tp, index=False)
    return csv, tp
