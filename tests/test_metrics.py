"""Step metrics against an independent pyproj.Geod reference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyproj

from telemetry.trajectory.metrics import daily_distance, metrics
from tests.trajsim import simulate

GEOD = pyproj.Geod(ellps="WGS84")


def test_step_lengths_match_geod_inv_per_row():
    df = simulate(n_animals=3, n_fixes=120, seed=2, outlier_frac=0.0)
    df["segment_id"] = pd.array((np.arange(len(df)) % 120 >= 60).astype(int), dtype="Int64")
    out = metrics(df.sample(frac=1.0, random_state=1)).sort_index()
    for (_, _), g in out.groupby(["animal_id", "segment_id"], observed=True):
        g = g.sort_values("time")
        lon, lat = g["lon"].to_numpy(), g["lat"].to_numpy()
        ref = np.array([GEOD.inv(lon[i - 1], lat[i - 1], lon[i], lat[i])[2] for i in range(1, len(g))])
        np.testing.assert_allclose(g["step_m"].to_numpy()[1:], ref, rtol=1e-6)
        assert np.isnan(g["step_m"].iloc[0])
        dt = np.diff(g["time"].to_numpy()).astype("timedelta64[ns]").astype(float) / 1e9
        np.testing.assert_allclose(g["dt_s"].to_numpy()[1:], dt)
        np.testing.assert_allclose(g["speed_kmh"].to_numpy()[1:], ref / dt * 3.6, rtol=1e-6)
        az = np.array([GEOD.inv(lon[i - 1], lat[i - 1], lon[i], lat[i])[0] % 360 for i in range(1, len(g))])
        np.testing.assert_allclose(g["azimuth_deg"].to_numpy()[1:], az, atol=1e-9)
    # nsd from the animal's first fix (not the segment's)
    a0 = out[out["animal_id"] == "A0"].sort_values("time")
    d = GEOD.inv(np.full(len(a0), a0["lon"].iloc[0]), np.full(len(a0), a0["lat"].iloc[0]),
                 a0["lon"].to_numpy(), a0["lat"].to_numpy())[2]
    np.testing.assert_allclose(a0["nsd_km2"].to_numpy(), (d / 1000) ** 2, rtol=1e-6, atol=1e-12)


def test_turning_angle_sign_and_value():
    t = pd.date_range("2024-01-01", periods=4, freq="h", tz="UTC")
    # north, then east (right turn +90), then north again (left turn -90)
    df = pd.DataFrame({"animal_id": "a", "time": t, "lon": [0.0, 0.0, 0.01, 0.01], "lat": [0.0, 0.01, 0.01, 0.02]})
    out = metrics(df)
    np.testing.assert_allclose(out["turn_deg"].to_numpy()[2:], [90.0, -90.0], atol=1e-4)
    assert np.isnan(out["turn_deg"].iloc[1])


def test_flagged_rows_get_nan_and_are_skipped():
    t = pd.date_range("2024-01-01", periods=3, freq="h", tz="UTC")
    df = pd.DataFrame({"animal_id": "a", "time": t, "lon": [0.0, 5.0, 0.01], "lat": 0.0,
                       "flag": pd.Categorical([None, "speed", None])})
    out = metrics(df)
    assert out.loc[1, ["step_m", "speed_kmh", "nsd_km2"]].isna().all()
    np.testing.assert_allclose(out.loc[2, "step_m"], GEOD.inv(0.0, 0.0, 0.01, 0.0)[2], rtol=1e-9)
    np.testing.assert_allclose(out.loc[2, "dt_s"], 7200.0)


def test_daily_distance_sums_steps():
    df = simulate(n_animals=2, n_fixes=100, seed=4, outlier_frac=0.0)
    m = metrics(df)
    tab = daily_distance(m)
    assert np.isclose(tab["distance_km"].sum(), np.nansum(m["step_m"]) / 1000)
    assert tab.groupby("animal_id", observed=True)["n_fixes"].sum().tolist() == [100, 100]
    assert len(tab) == 2 * 5  # 100 hourly fixes span 5 UTC days
