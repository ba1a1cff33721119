"""Segmentation at gaps (schedule measured per animal) and the 200 m / 24 h cluster rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyproj

from telemetry.config import ClusterParams, SegmentParams
from telemetry.trajectory.segment import cluster_table, clusters, fix_schedule, segment
from tests.trajsim import conform

GEOD = pyproj.Geod(ellps="WGS84")


def _frame(animal, hours, lon, lat):
    t = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(np.asarray(hours, float), unit="h")
    return pd.DataFrame({"animal_id": animal, "time": t, "lon": lon, "lat": lat, "flag": None})


def test_gaps_split_by_each_animals_own_schedule():
    # a: hourly, gap of 5 h (> 4 x 1 h); b: 4-hourly, a 12 h gap is normal (< 4 x 4 h), 20 h is not
    a = _frame("a", [0, 1, 2, 3, 8, 9, 10], 77.0, 43.0)
    b = _frame("b", [0, 4, 8, 12, 24, 28, 48, 52], 78.0, 43.0)
    df = conform(pd.concat([b, a], ignore_index=True))
    out = segment(df, with_clusters=False)
    assert out["segment_id"].tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 1, 1, 1]
    sched = fix_schedule(df)
    assert sched.loc["a", "schedule_s"] == 3600 and sched.loc["b", "schedule_s"] == 4 * 3600
    assert segment(df, SegmentParams(gap_multiple=10), with_clusters=False)["segment_id"].max() == 0


def test_flagged_rows_have_no_segment_and_do_not_count():
    df = conform(_frame("a", [0, 1, 2, 3, 4], 77.0, 43.0))
    df.loc[2, "flag"] = "speed"
    out = segment(df)
    assert out["segment_id"].isna().tolist() == [False, False, True, False, False]
    assert out["segment_id"].dtype == "Int64"
    assert out.loc[2, "cluster_id"] is pd.NA


def _offset(lon, lat, east_m, north_m):
    lo, la, _ = GEOD.fwd(np.full(len(east_m), lon), np.full(len(east_m), lat),
                         np.degrees(np.arctan2(east_m, north_m)), np.hypot(east_m, north_m))
    return lo, la


def test_cluster_rule_radius_and_window():
    # 0-3: within 150 m over 6 h → cluster; 4: 5 km away; 5-6: back at the site 40 h later → new cluster
    lo, la = _offset(77.0, 43.0, np.array([0, 100, -50, 30, 5000, 20, 0]), np.array([0, 50, 100, -80, 0, 0, 30]))
    df = conform(_frame("a", [0, 2, 4, 6, 8, 46, 48], lo, la))
    out = clusters(df)
    ids = out["cluster_id"].astype("float").tolist()
    assert ids[:4] == [0, 0, 0, 0] and np.isnan(ids[4]) and ids[5:] == [1, 1]
    tab = cluster_table(out)
    assert tab["n_fixes"].tolist() == [4, 2]
    assert tab["duration_h"].tolist() == [6.0, 2.0]
    assert np.allclose(tab.loc[0, ["lon", "lat"]].astype(float), [lo[:4].mean(), la[:4].mean()])
    # a smaller radius breaks the first cluster up
    small = clusters(df, ClusterParams(radius_m=60))
    assert small["cluster_id"].notna().sum() < 6


def test_clusters_never_span_animals_and_ids_are_unique():
    a = _frame("a", [0, 1], 77.0, 43.0)
    b = _frame("b", [0, 1], 77.0, 43.0)
    out = clusters(conform(pd.concat([a, b], ignore_index=True)))
    assert out["cluster_id"].tolist() == [0, 0, 1, 1]


def test_empty_table():
    from telemetry.schema import empty_frame

    out = segment(empty_frame())
    assert len(out) == 0 and "segment_id" in out and "cluster_id" in out
    assert len(cluster_table(out)) == 0
