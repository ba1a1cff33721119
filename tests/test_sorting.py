"""The fast stable sorts give exactly the orders of np.lexsort."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry.arrays import is_sorted_by, lexsort_small_keys, sorted_usable, unique_ints
from telemetry.pipeline import _sorted
from telemetry.trajectory.quality import _stable_order


@pytest.mark.parametrize("n_keys", [100, 70_000])
def test_lexsort_small_keys_equals_np_lexsort(n_keys: int) -> None:
    rng = np.random.default_rng(n_keys)
    n = 50_000
    t = np.sort(rng.integers(0, 10**6, n))          # long sorted runs, as fix times are
    t[rng.random(n) < 0.05] = rng.integers(0, 10**6)  # plus ties and disorder
    a = rng.integers(0, n_keys, n)
    b = rng.integers(0, 2, n)
    assert np.array_equal(lexsort_small_keys(t, b, a), np.lexsort((t, b, a)))
    assert np.array_equal(lexsort_small_keys(t), np.lexsort((t,)))


def test_sorted_tracks_same_order_as_full_lexsort() -> None:
    rng = np.random.default_rng(1)
    n = 20_000
    src = np.sort(rng.integers(0, 3, n))
    row = np.concatenate([np.arange((src == s).sum()) for s in range(3)])
    row[::50] = row[1::50][: row[::50].size]  # repeated row numbers (ties)
    time = pd.to_datetime(rng.integers(0, 10**6, n), unit="s", utc=True).to_series().reset_index(drop=True)
    time[rng.random(n) < 0.03] = pd.NaT
    df = pd.DataFrame({"animal_id": pd.Categorical(rng.choice(["b", "a", "c", None], n)),
                       "time": time, "source": pd.Categorical(np.array(["f0", "f1", "f2"])[src]),
                       "source_row": row, "lon": np.arange(n, dtype=float)})
    from telemetry.arrays import group_codes, time_ns

    # as read (the fast path) and reversed (not in file order: the full lexsort)
    for frame in (df, df.iloc[::-1].reset_index(drop=True)):
        want = np.lexsort((frame["source_row"].to_numpy(), group_codes(frame, "source")[0], time_ns(frame),
                           frame["time"].isna().to_numpy(), group_codes(frame)[0]))
        assert np.array_equal(_sorted(frame)["lon"].to_numpy(), frame["lon"].to_numpy()[want])


def test_quality_order_equals_sort_values() -> None:
    rng = np.random.default_rng(2)
    n = 10_000
    df = pd.DataFrame({"animal_id": pd.Categorical(rng.choice(["x", "y", None], n)),
                       "month": rng.integers(0, 30, n),
                       "time": pd.to_datetime(rng.integers(0, 10**5, n), unit="s", utc=True)})
    df.loc[rng.random(n) < 0.02, "time"] = pd.NaT
    order = _stable_order([df["animal_id"], df["month"], df["time"]])
    want = df.sort_values(["animal_id", "month", "time"], kind="stable", na_position="last").index.to_numpy()
    assert np.array_equal(order, want)


@settings(max_examples=200, deadline=None)
@given(major=st.lists(st.integers(-3, 3), max_size=30), data=st.data())
def test_is_sorted_by_agrees_with_a_stable_sort(major: list[int], data: st.DataObject) -> None:
    minor = data.draw(st.lists(st.integers(-2, 2), min_size=len(major), max_size=len(major)))
    a, b = np.array(major, dtype=np.int64), np.array(minor, dtype=np.int64)
    assert is_sorted_by(a, b) == np.array_equal(np.lexsort((b, a)), np.arange(a.size))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-10**15, 10**15), max_size=40) | st.lists(st.integers(-5, 40), max_size=40))
def test_unique_ints_equals_np_unique(values: list[int]) -> None:
    v = np.array(values, dtype=np.int64)
    uniq, inverse = unique_ints(v)
    ref_u, ref_i = np.unique(v, return_inverse=True)
    assert np.array_equal(uniq, ref_u) and np.array_equal(inverse, ref_i.reshape(v.shape))


def test_sorted_usable_same_rows_in_any_row_order() -> None:
    # the fast path (rows already in (animal, time) order) and the sort give the same rows
    rng = np.random.default_rng(5)
    n = 5_000
    df = pd.DataFrame({"animal_id": rng.choice(["a", "b", "c"], n),
                       "time": pd.to_datetime(rng.integers(0, 10**6, n), unit="s", utc=True),
                       "lon": rng.uniform(70, 80, n), "lat": rng.uniform(40, 45, n)})
    df.loc[rng.random(n) < 0.1, "lon"] = np.nan
    pos, codes, t = sorted_usable(df)
    in_order = df.iloc[pos].reset_index(drop=True)
    pos2, codes2, t2 = sorted_usable(in_order)
    assert np.array_equal(pos2, np.arange(pos.size))
    assert np.array_equal(codes2, codes) and np.array_equal(t2, t)


def test_segments_and_clusters_do_not_depend_on_row_order() -> None:
    # clusters are labelled per animal in parallel and offset afterwards: ids must be those of
    # one pass over (animal, time), whatever the input order
    from telemetry.trajectory.segment import clusters, segment

    rng = np.random.default_rng(9)
    frames = []
    for k in range(6):
        m = 400
        t = pd.Timestamp("2022-01-01", tz="UTC") + pd.to_timedelta(np.cumsum(rng.exponential(4, m)), unit="h")
        stay = np.repeat(rng.uniform(-0.01, 0.01, (m // 8, 2)), 8, axis=0) + rng.normal(0, 5e-4, (m, 2))
        frames.append(pd.DataFrame({"animal_id": f"L{k}", "time": t,
                                    "lon": 77 + k * 0.1 + stay[:, 0], "lat": 43 + stay[:, 1]}))
    df = pd.concat(frames, ignore_index=True)
    ref = clusters(segment(df, with_clusters=False))
    assert ref["cluster_id"].notna().sum() > 100
    # numbered 0..k-1 by animal then first time, one animal per cluster
    c = ref.dropna(subset=["cluster_id"])
    first = c.groupby("cluster_id").agg(animal=("animal_id", "nunique"), a=("animal_id", "first"), t=("time", "min"))
    assert (first["animal"] == 1).all()
    assert first.index.tolist() == list(range(len(first)))
    assert first.sort_values(["a", "t"]).index.tolist() == list(range(len(first)))
    shuffled = df.sample(frac=1, random_state=3)
    got = clusters(segment(shuffled, with_clusters=False)).loc[df.index]
    assert got["segment_id"].equals(ref["segment_id"]) and got["cluster_id"].equals(ref["cluster_id"])
