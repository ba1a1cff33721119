"""Small simulated tracks with known truth for the trajectory tests (not the sample data)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from telemetry.schema import CANONICAL_DTYPES

M_PER_DEG_LAT = 111_320.0


def simulate(
    n_animals: int = 3,
    n_fixes: int = 600,
    interval_h: float = 1.0,
    outlier_frac: float = 0.03,
    seed: int = 0,
    lon0: float = 77.0,
    lat0: float = 43.0,
) -> pd.DataFrame:
    """Correlated random walks (mean step ~250 m/h) with GPS noise and injected outliers.

    Returns the canonical table plus ``is_outlier`` (truth) and ``true_lon``/``true_lat``.
    Outliers are displaced 3-30 km in a random direction, never two in a row.
    """
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(n_animals):
        steps = rng.gamma(2.0, 125.0, n_fixes) * (interval_h ** 0.5)
        heading = np.cumsum(rng.vonmises(0.0, 2.0, n_fixes))
        x = np.cumsum(steps * np.sin(heading))
        y = np.cumsum(steps * np.cos(heading))
        la0 = lat0 + 0.3 * k
        lat = la0 + y / M_PER_DEG_LAT
        lon = lon0 + 0.3 * k + x / (M_PER_DEG_LAT * np.cos(np.radians(la0)))
        noise = rng.normal(0, 10.0, (2, n_fixes)) / M_PER_DEG_LAT
        obs_lon, obs_lat = lon + noise[0] / np.cos(np.radians(la0)), lat + noise[1]
        out = np.zeros(n_fixes, dtype=bool)
        cand = rng.choice(np.arange(2, n_fixes - 2), int(outlier_frac * n_fixes), replace=False)
        cand = np.sort(cand)
        cand = cand[np.r_[True, np.diff(cand) > 1]] if cand.size else cand  # never two in a row
        out[cand] = True
        d = rng.uniform(3_000, 30_000, cand.size)
        ang = rng.uniform(0, 2 * np.pi, cand.size)
        obs_lat[cand] += d * np.cos(ang) / M_PER_DEG_LAT
        obs_lon[cand] += d * np.sin(ang) / (M_PER_DEG_LAT * np.cos(np.radians(la0)))
        t = pd.Timestamp("2024-03-01", tz="UTC") + pd.to_timedelta(np.arange(n_fixes) * interval_h, unit="h")
        frames.append(
            pd.DataFrame(
                {
                    "animal_id": f"A{k}",
                    "tag_id": f"T{k}",
                    "time": t,
                    "lon": obs_lon,
                    "lat": obs_lat,
                    "alt_m": np.nan,
                    "hdop": rng.uniform(0.8, 3.0, n_fixes),
                    "n_sats": 8.0,
                    "fix_type": "3D",
                    "argos_lc": None,
                    "source": f"sim_{k}.csv",
                    "source_row": np.arange(2, n_fixes + 2),
                    "flag": None,
                    "is_outlier": out,
                    "true_lon": lon,
                    "true_lat": lat,
                }
            )
        )
    df = pd.concat(frames, ignore_index=True)
    return conform(df)


def conform(df: pd.DataFrame) -> pd.DataFrame:
    """Cast the canonical columns to the schema dtypes."""
    for name, dtype in CANONICAL_DTYPES.items():
        if name in df.columns:
            df[name] = df[name].astype(dtype)
    return df
