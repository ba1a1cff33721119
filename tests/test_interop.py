"""movingpandas round trip: values, dtypes, time zone."""

from __future__ import annotations

import numpy as np
import pandas as pd

from telemetry.trajectory.clean import clean
from telemetry.trajectory.interop import from_movingpandas, to_movingpandas
from telemetry.trajectory.metrics import metrics
from telemetry.trajectory.segment import segment
from tests.trajsim import simulate


def _tracks():
    df = simulate(n_animals=2, n_fixes=80, seed=8)
    t = df["time"].copy()
    t[df.index % 80 >= 40] += pd.Timedelta(days=3)  # a gap → two segments per animal
    df["time"] = t
    return metrics(segment(clean(df)))


def test_one_trajectory_per_animal_segment():
    tracks = _tracks()
    tc = to_movingpandas(tracks)
    assert len(tc) == 4
    ids = sorted(tr.id for tr in tc.trajectories)
    assert ids == ["A0_0", "A0_1", "A1_0", "A1_1"]
    tr = tc.trajectories[0]
    assert tr.obj_id == "A0" and tr.df.index.tz is None and tr.crs.to_epsg() == 4326
    # movingpandas' own geodesic length agrees with our steps
    ours = tracks[(tracks["animal_id"] == "A0") & (tracks["segment_id"] == 0)]["step_m"].sum()
    np.testing.assert_allclose(tr.get_length(), ours, rtol=1e-3)


def test_round_trip_values_dtypes_tz():
    tracks = _tracks()
    back = from_movingpandas(to_movingpandas(tracks))
    expected = tracks[tracks["flag"].isna()].reset_index(drop=True)
    pd.testing.assert_frame_equal(back, expected)
    assert str(back["time"].dt.tz) == "UTC"


def test_without_segments_one_trajectory_per_animal():
    df = simulate(n_animals=2, n_fixes=30, seed=9, outlier_frac=0.0)
    tc = to_movingpandas(df)
    assert len(tc) == 2
    back = from_movingpandas(tc)
    assert len(back) == 60 and back["segment_id"].tolist() == [0] * 30 + [1] * 30
