"""The fast stable sorts give exactly the orders of np.lexsort."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from telemetry.pipeline import _sorted
from telemetry.quality import _stable_order
from telemetry.trajectory._arrays import lexsort_small_keys


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
    from telemetry.trajectory._arrays import group_codes, time_ns

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
