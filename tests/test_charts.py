"""Summary charts: numbers behind them, byte-identical PNGs, no software stamp."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from telemetry.outputs import charts


def _tracks() -> pd.DataFrame:
    """Two animals, hourly schedule over two days in March–April; SL02 misses every 4th fix."""
    t = pd.date_range("2022-03-31T00:00Z", periods=48, freq="1h")
    rows = []
    for aid, miss in (("SL01", None), ("SL02", 4)):
        lon = 77.0 + np.arange(48) * 0.001
        lat = np.full(48, 43.0)
        if miss:
            lon[::miss] = np.nan
            lat[::miss] = np.nan
        rows.append(pd.DataFrame({"animal_id": aid, "time": t, "lon": lon, "lat": lat, "hdop": 1.0,
                                  "fix_type": np.where(np.isnan(lon), "none", "3D"),
                                  "flag": pd.Series([None if np.isfinite(x) else "no_fix" for x in lon],
                                                    dtype=object)}))
    return pd.concat(rows, ignore_index=True)


def test_monthly_fix_success_numbers():
    tab = charts.monthly_fix_success(_tracks())
    got = {(r.animal_id, r.month): round(r.fix_success_pct, 1) for r in tab.itertuples()}
    assert got[("SL01", "2022-03")] == 100.0 and got[("SL01", "2022-04")] == 100.0
    assert got[("SL02", "2022-04")] == 75.0  # 18 of 24 hourly attempts


def test_corrupt_time_opens_no_month():
    tr = _tracks()
    bad = tr.iloc[[5]].assign(time=pd.Timestamp("2003-02-01T00:00Z"), flag="clock_jump")
    tab = charts.monthly_fix_success(pd.concat([tr, bad], ignore_index=True))
    assert "2003-02" not in set(tab["month"])


def test_crossings_by_border_month():
    cx = pd.DataFrame({"animal_id": ["a", "b", "a", "a"], "kind": ["crossing", "crossing", "crossing", "excursion"],
                       "from_iso": ["KAZ", "KGZ", "KAZ", "KAZ"], "to_iso": ["KGZ", "KAZ", "CHN", "KGZ"],
                       "time": pd.to_datetime(["2022-03-01", "2022-03-20", "2022-05-02", "2022-03-03"], utc=True)})
    tab = charts.crossings_by_border_month(cx)
    assert tab.to_dict() == {"CHN–KAZ": {"2022-03": 0, "2022-05": 1}, "KAZ–KGZ": {"2022-03": 2, "2022-05": 0}}


def test_charts_are_deterministic_pngs(tmp_path):
    tr = _tracks()
    cx = pd.DataFrame({"animal_id": ["SL01"], "kind": ["crossing"], "from_iso": ["KAZ"], "to_iso": ["KGZ"],
                       "time": pd.to_datetime(["2022-03-31T05:00Z"], utc=True)})
    a = charts.write_charts(tmp_path / "a", tr, cx)
    b = charts.write_charts(tmp_path / "b", tr, cx)
    assert [p.name for p in a] == ["fix_success.png", "daily_distance.png", "crossings.png"]
    for pa, pb in zip(a, b, strict=True):
        data = pa.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and data == pb.read_bytes()
        assert b"Software" not in data and b"matplotlib" not in data.lower()


@pytest.mark.parametrize("cx", [None, pd.DataFrame({"animal_id": [], "kind": [], "from_iso": [], "to_iso": [],
                                                     "time": pd.to_datetime([], utc=True)})])
def test_empty_inputs_still_give_charts(tmp_path, cx):
    empty = _tracks().iloc[:0]
    out = charts.write_charts(tmp_path, empty, cx)
    assert len(out) == (2 if cx is None else 3) and all(p.stat().st_size > 1000 for p in out)


def test_fast_tables_match_the_reference_computations():
    """Daily distances and the vectorised 90th percentile give the very same floats."""
    from telemetry.trajectory.metrics import daily_distance, metrics
    from telemetry.trajectory.quality import group_quantile

    tr = metrics(_tracks().assign(animal_id=lambda d: d["animal_id"].astype("category")))
    ref = daily_distance(tr)
    got = charts._daily_km(tr)
    assert got["animal_id"].astype(str).tolist() == ref["animal_id"].astype(str).tolist()
    assert np.array_equal(got["distance_km"].to_numpy(), ref["distance_km"].to_numpy())
    rng = np.random.default_rng(0)
    v = np.where(rng.random(5000) < 0.1, np.nan, rng.gamma(2.0, size=5000))
    g = rng.integers(0, 300, 5000)
    want = pd.Series(v).groupby(g).agg(lambda s: s.quantile(0.9) if s.notna().any() else np.nan)
    got_q = group_quantile(v, g, 300, 0.9)
    assert np.array_equal(got_q[want.index.to_numpy()], want.to_numpy(), equal_nan=True)


def test_monthly_fix_success_same_for_object_and_categorical_ids():
    tr = _tracks()
    a = charts.monthly_fix_success(tr)
    b = charts.monthly_fix_success(tr.assign(animal_id=tr["animal_id"].astype("category"),
                                             fix_type=tr["fix_type"].astype("category")))
    pd.testing.assert_frame_equal(a, b)


def test_per_animal_charts_keep_at_most_max_animals(tmp_path):
    """Hundreds of animals: the heat map keeps the lowest fix success, the box plot a spread."""
    import matplotlib.image as mpimg

    from telemetry.outputs import charts

    rng = np.random.default_rng(4)
    n_animals, per = 120, 60
    animal = np.repeat([f"A{i:03d}" for i in range(n_animals)], per)
    t0 = pd.Timestamp("2022-01-01", tz="UTC")
    t = t0 + pd.to_timedelta(np.tile(np.arange(per) * 4, n_animals), unit="h")
    # animal i loses a share i/n of its fixes: A000 is the best collar, A119 the worst
    lost = rng.random(n_animals * per) < np.repeat(np.arange(n_animals) / n_animals, per)
    lon = np.where(lost, np.nan, 77 + rng.normal(0, 0.01, n_animals * per))
    df = pd.DataFrame({"animal_id": animal, "time": t, "lon": lon, "lat": np.where(lost, np.nan, 43.0)})
    df["flag"] = pd.Categorical([None] * len(df))
    tab = charts.monthly_fix_success(df)
    grid = tab.pivot(index="animal_id", columns="month", values="fix_success_pct")
    worst = set(grid.mean(axis=1).sort_values(kind="stable").index[:charts.MAX_ANIMALS])
    assert min(int(a[1:]) for a in worst) >= 60  # all from the lossy half
    png = charts.fix_success_chart(df, tmp_path / "fix.png")
    h = mpimg.imread(png).shape[0]
    assert h < (0.32 * charts.MAX_ANIMALS + 1.6) * 100 + 5  # rows for MAX_ANIMALS only
    df = __import__("telemetry").metrics(df)
    png = charts.daily_distance_chart(df, tmp_path / "dd.png")
    assert png.exists()


def _monthly_fix_success_via_group_stats(tracks: pd.DataFrame) -> pd.DataFrame:
    """The reference: telemetry.trajectory.quality.group_stats over (animal, month) of the rows inside
    each animal's span of usable fixes (what monthly_fix_success computed before)."""
    from telemetry.arrays import usable_mask
    from telemetry.trajectory.quality import group_stats

    tr = tracks.assign(animal_id=tracks["animal_id"].astype(object).where(tracks["animal_id"].notna(), None))
    ok = usable_mask(tr)
    span = tr[ok].groupby("animal_id")["time"].agg(["min", "max"])
    lo = tr["animal_id"].map(span["min"])
    hi = tr["animal_id"].map(span["max"])
    inside = tr["time"].notna() & (tr["time"] >= lo) & (tr["time"] <= hi)
    df = tr[inside & tr["animal_id"].notna()]
    lon, lat = df["lon"].astype(float), df["lat"].astype(float)
    good = np.isfinite(lon) & np.isfinite(lat)
    work = pd.DataFrame({"animal_id": df["animal_id"].astype(str), "month": df["time"].dt.strftime("%Y-%m"),
                         "time": df["time"], "lon": lon.where(good), "lat": lat.where(good),
                         "hdop": df["hdop"], "fix_type": df["fix_type"]})
    st = group_stats(work, ["animal_id", "month"]).astype({"animal_id": str, "month": str})
    cols = ["animal_id", "month", "rows", "fixes", "fix_success_pct"]
    return st[cols].sort_values(["animal_id", "month"], kind="stable").reset_index(drop=True)


def test_monthly_fix_success_is_group_stats_exactly():
    """Irregular schedules, gaps, duplicate and sub-second times, Argos animals, rows without
    an animal, shuffled rows: the fast table gives group_stats' very floats."""
    rng = np.random.default_rng(7)
    n = 20_000
    animal = np.repeat([f"A{i:02d}" for i in range(10)], n // 10)
    # per animal: a 4 h schedule (1 h for A09) with gaps of up to 60 slots, sub-second jitter
    slot_s = np.where(animal == "A09", 3_600, 14_400)
    step_s = slot_s * np.where(rng.random(n) < 0.03, rng.integers(2, 60, n), 1)
    t_s = np.concatenate([np.cumsum(part) for part in np.split(step_s, 10)])
    t = pd.Timestamp("2022-01-03", tz="UTC") + pd.to_timedelta(t_s, unit="s") \
        + pd.to_timedelta(rng.integers(0, 10**9, n), unit="ns")
    dup = np.flatnonzero(rng.random(n) < 0.01)
    t = pd.Series(t).copy()
    t.iloc[dup[dup > 0]] = t.iloc[dup[dup > 0] - 1].to_numpy()  # duplicate times
    lon = np.where(rng.random(n) < 0.15, np.nan, 77 + rng.normal(0, 0.1, n))
    df = pd.DataFrame({"animal_id": animal, "time": t, "lon": lon, "lat": np.where(np.isnan(lon), np.nan, 43.0),
                       "hdop": 1.5, "fix_type": np.where(np.isin(animal, ["A00", "A01"]), "argos", "3D")})
    df.loc[rng.random(n) < 0.01, "animal_id"] = None
    df["flag"] = pd.Categorical(np.where(rng.random(n) < 0.05, "spike", None))
    df = df.iloc[rng.permutation(n)].reset_index(drop=True)
    want = _monthly_fix_success_via_group_stats(df)
    for table in (df, df.sort_values(["animal_id", "time"], kind="stable"),
                  df.assign(animal_id=df["animal_id"].astype("category"), fix_type=df["fix_type"].astype("category"))):
        got = charts.monthly_fix_success(table)
        pd.testing.assert_frame_equal(got, want, check_exact=True, check_dtype=False)
        assert got["fix_success_pct"].notna().sum() > 100 and got["fix_success_pct"].isna().any()
