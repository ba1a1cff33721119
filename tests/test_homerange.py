"""Home ranges: MCP against shapely/Geod areas, KDE against the analytic normal isopleth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyproj
import shapely

from telemetry.config import HomeRangeParams
from telemetry.trajectory.homerange import home_ranges, kde, mcp
from tests.trajsim import simulate

GEOD = pyproj.Geod(ellps="WGS84")


def test_mcp_100_matches_geodesic_area_of_the_hull():
    df = simulate(n_animals=2, n_fixes=300, seed=5, outlier_frac=0.0)
    hr = home_ranges(df)
    assert set(hr["method"]) == {"mcp", "kde"} and len(hr) == 8
    assert hr.crs.to_epsg() == 4326 and hr.is_valid.all()
    for animal, g in df.groupby("animal_id", observed=True):
        hull = shapely.convex_hull(shapely.multipoints(g[["lon", "lat"]].to_numpy()))
        ref = abs(GEOD.geometry_area_perimeter(hull)[0]) / 1e6
        row = hr[(hr["animal_id"] == animal) & (hr["method"] == "mcp") & (hr["level_pct"] == 100)]
        np.testing.assert_allclose(row["area_km2"].iloc[0], ref, rtol=2e-3)
        m95 = hr[(hr["animal_id"] == animal) & (hr["method"] == "mcp") & (hr["level_pct"] == 95)]
        assert m95["area_km2"].iloc[0] < row["area_km2"].iloc[0]


def test_mcp_level_drops_farthest_points():
    x = np.array([0.0, 1.0, 0.0, 1.0, 50.0])
    y = np.array([0.0, 0.0, 1.0, 1.0, 50.0])
    assert mcp(x, y, 80).area == 1.0
    assert mcp(x, y, 100).area > 1.0


def test_kde_isopleths_match_a_normal_distribution():
    rng = np.random.default_rng(11)
    sigma = 1000.0
    x, y = rng.normal(0, sigma, 3000), rng.normal(0, sigma, 3000)
    polys, h = kde(x, y, (50.0, 95.0))
    var = (x.var(ddof=1) + y.var(ddof=1)) / 2 + h[0] ** 2  # data ⊛ kernel
    for p, level in zip(polys, (0.5, 0.95)):
        expected = 2 * np.pi * var * -np.log(1 - level)
        np.testing.assert_allclose(p.area, expected, rtol=0.03)
    np.testing.assert_allclose(h[0], np.sqrt((x.var(ddof=1) + y.var(ddof=1)) / 2) * 3000 ** (-1 / 6))


def test_fixes_all_at_one_place_give_a_tiny_range_whatever_the_projection_rounds():
    """1,500 fixes at one place: the projected coordinates may spread by ~1e-9 m, whose kernel
    made a density grid one cell wide and crashed the contouring (contourpy's TypeError); the
    bandwidth is at least 1 m, and the range is a small disc round the place."""
    x = np.full(1500, 20.0) + np.r_[0.0, 1e-9, np.zeros(1498)]
    y = np.full(1500, 5.0)
    polys, h = kde(x, y, (50.0, 95.0))
    assert h == [1.0, 1.0]
    assert all(p.is_valid and 0 < p.area < 100 and p.contains(shapely.Point(20.0, 5.0)) for p in polys)
    df = pd.DataFrame({"animal_id": "a", "time": pd.date_range("2023-01-01", periods=300, freq="4h", tz="UTC"),
                       "lon": 179.9, "lat": 20.345345})
    hr = home_ranges(df)
    assert len(hr) and hr.is_valid.all()


def test_flagged_fixes_excluded_and_small_animals_skipped():
    df = simulate(n_animals=1, n_fixes=200, seed=6, outlier_frac=0.0)
    far = df.copy()
    far.loc[0, "lon"] += 5.0
    far["flag"] = pd.Categorical([ "speed"] + [None] * 199, dtype=df["flag"].dtype)
    a = home_ranges(df, HomeRangeParams(kde_levels_pct=()))
    b = home_ranges(far, HomeRangeParams(kde_levels_pct=()))
    np.testing.assert_allclose(a["area_km2"].to_numpy()[1:], b["area_km2"].to_numpy()[1:], rtol=0.05)
    assert home_ranges(df.iloc[:2]).empty


def test_fast_paths_match_the_plain_computation():
    """The hull pre-filter and the partial sort of the KDE grid change no bit of the result."""
    from telemetry.trajectory.homerange import _hull_candidates, _top_mass

    rng = np.random.default_rng(3)
    for x, y in ((rng.normal(0, 1000, 5000), rng.normal(0, 300, 5000)),  # a cloud
                 (np.cos(np.linspace(0, 6.28, 400)) * 50.0, np.sin(np.linspace(0, 6.28, 400)) * 50.0),  # all on the hull
                 (np.arange(100.0), np.arange(100.0) * 2.0)):  # collinear
        keep = _hull_candidates(x, y)
        full = shapely.convex_hull(shapely.multipoints(np.column_stack([x, y])))
        part = shapely.convex_hull(shapely.multipoints(np.column_stack([x[keep], y[keep]])))
        assert shapely.to_wkb(full) == shapely.to_wkb(part)
    dens = rng.gamma(0.3, size=40_000) * (rng.random(40_000) < 0.3)
    dens /= dens.sum()
    flat = np.sort(dens)[::-1]
    cum = np.cumsum(flat)
    top, top_cum = _top_mass(dens, 0.95)
    for level in (0.5, 0.95):
        i = int(np.searchsorted(cum, level))
        assert int(np.searchsorted(top_cum, level)) == i and top[i] == flat[i]
    whole, whole_cum = _top_mass(dens, 2.0)  # never reached: everything, sorted
    assert np.array_equal(whole, flat) and np.array_equal(whole_cum, cum)


def test_mcp_matches_sorting_all_points():
    """The partition / tie-break / LineString path of mcp() gives the hull of the plain computation."""
    rng = np.random.default_rng(4)
    cases = [(rng.normal(0, 1000, 3000), rng.normal(0, 300, 3000)),
             (np.round(rng.normal(0, 5, 2000)), np.round(rng.normal(0, 5, 2000)))]  # many ties, duplicates
    for x, y in cases:
        for level in (50.0, 95.0, 99.9, 100.0):
            d2 = (x - x.mean()) ** 2 + (y - y.mean()) ** 2
            k = max(int(np.ceil(level / 100.0 * x.size - 1e-9)), 1)
            keep = np.argsort(d2, kind="stable")[:k]
            plain = shapely.convex_hull(shapely.multipoints(np.column_stack([x[keep], y[keep]])))
            assert shapely.to_wkb(mcp(x, y, level)) == shapely.to_wkb(plain)
