"""Collars for the alert tests, with known truth: live animals that rest, kill and stay at kills
for days, and an animal that dies and whose collar keeps reporting from the carcass.

Independent of the pipeline's models: movement is a biased random walk in metres, kills are stays
where the animal shuttles between the carcass and bed sites tens of metres away, GPS error is
Gaussian × HDOP with a heavy-tailed share of 2D fixes, and fix attempts fail at random.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

M_PER_DEG = 111_320.0


def simulate_collars(*, n_alive: int = 4, days: float = 60.0, interval_h: float = 2.0, uere_m: float = 5.0,
                     share_2d: float = 0.15, death_day: float | None = 30.0, kill_stay_days: tuple[float, float] = (2.0, 6.0),
                     fail_share: float = 0.1, seed: int = 0, lon0: float = 77.0, lat0: float = 43.6) -> tuple[pd.DataFrame, dict]:
    """Canonical fixes of ``n_alive`` live animals and (with ``death_day``) one that dies.

    Returns the fixes and the truth: ``{"death": {animal: time}, "kills": {animal: [(start, end), ...]}}``.
    """
    rng = np.random.default_rng(seed)
    frames, truth = [], {"death": {}, "kills": {}}
    n_fix = int(days * 24 / interval_h)
    t = pd.Timestamp("2023-01-01", tz="UTC") + pd.to_timedelta(np.arange(n_fix) * interval_h, unit="h")
    ids = [f"L{k}" for k in range(n_alive)] + (["DEAD"] if death_day is not None else [])
    for k, animal in enumerate(ids):
        x = np.zeros(n_fix)
        y = np.zeros(n_fix)
        kills = []
        pos = np.array([rng.uniform(-20e3, 20e3), rng.uniform(-20e3, 20e3)])
        heading = rng.uniform(0, 2 * np.pi)
        i = 0
        while i < n_fix:
            # travel for 2-8 days, then a kill
            travel = int(rng.uniform(2, 8) * 24 / interval_h)
            for j in range(i, min(i + travel, n_fix)):
                heading += rng.vonmises(0, 1.5)
                resting = rng.random() < 0.4
                step = 0.0 if resting else rng.gamma(2.0, 600.0) * interval_h ** 0.5
                pos = pos + step * np.array([np.sin(heading), np.cos(heading)])
                x[j], y[j] = pos
            i += travel
            if i >= n_fix:
                break
            stay = int(rng.uniform(*kill_stay_days) * 24 / interval_h)
            carcass = pos.copy()
            beds = carcass + rng.normal(0, 60.0, (3, 2))
            for j in range(i, min(i + stay, n_fix)):
                spot = carcass if rng.random() < 0.4 else beds[rng.integers(3)]
                x[j], y[j] = spot + rng.normal(0, 5.0, 2)  # the animal lies and feeds: metres, not the fix error
            kills.append((t[i], t[min(i + stay, n_fix) - 1]))
            i += stay
        if animal == "DEAD":
            d = int(death_day * 24 / interval_h)
            # dies while travelling (not at a kill, where no collar could tell the moment): the collar
            # stays where it fell
            # not at a kill now nor in the last 12 h
            while any(s0 <= t[d] and t[d] - pd.Timedelta(hours=12) <= e0 for s0, e0 in kills) and d < n_fix - 1:
                d += 1
            x[d:], y[d:] = x[d - 1], y[d - 1]
            truth["death"][animal] = t[d]
            kills = [kv for kv in kills if kv[0] < t[d]]
        truth["kills"][animal] = kills
        is_2d = rng.random(n_fix) < share_2d
        hdop = np.where(is_2d, rng.uniform(2.0, 6.0, n_fix), rng.uniform(0.8, 2.5, n_fix))
        err = rng.normal(0, 1.0, (n_fix, 2)) * (uere_m * hdop)[:, None]
        tails = is_2d & (rng.random(n_fix) < 0.3)
        err[tails] *= rng.uniform(2, 6, (tails.sum(), 1))
        la0 = lat0 + 0.5 * k
        lat = la0 + (y + err[:, 1]) / M_PER_DEG
        lon = lon0 + (x + err[:, 0]) / (M_PER_DEG * np.cos(np.radians(la0)))
        fail = rng.random(n_fix) < fail_share
        frames.append(pd.DataFrame({
            "animal_id": animal, "tag_id": f"T{k}", "time": t,
            "lon": np.where(fail, np.nan, lon), "lat": np.where(fail, np.nan, lat), "alt_m": np.nan,
            "hdop": np.where(fail, np.nan, hdop), "n_sats": np.where(is_2d, 3.0, 8.0),
            "fix_type": np.where(fail, "none", np.where(is_2d, "2D", "3D")), "argos_lc": None,
            "source": f"SYNTHETIC_{animal}.csv", "source_row": np.arange(n_fix) + 2}))
    return pd.concat(frames, ignore_index=True), truth
