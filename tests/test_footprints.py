"""Brownian bridge UDs (Horne et al. 2007) and footprint stacking: known answers."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely

from telemetry.corridor.footprints import (
    Grid,
    TrackArrays,
    brownian_variance,
    count_polygons,
    footprint_mask,
    location_error_m,
    make_grid,
    mask_polygons,
    stack_footprints,
    track_arrays,
    utilisation,
)

MERC = pyproj.CRS.from_epsg(3857)  # only a label here: the tests work in plain metres


def _arrays(x: np.ndarray, y: np.ndarray, t: np.ndarray, sigma: float | np.ndarray = 10.0,
            animal: np.ndarray | None = None) -> TrackArrays:
    n = x.size
    animal = np.zeros(n, dtype=np.int64) if animal is None else animal
    step_ok = np.r_[False, animal[1:] == animal[:-1]]
    return TrackArrays(animal=animal, labels=pd.Index([f"a{i}" for i in range(animal.max() + 1)]), t_s=t,
                       x=x, y=y, sigma_m=np.broadcast_to(np.asarray(sigma, float), (n,)).copy(), step_ok=step_ok,
                       month=np.ones(n, dtype=np.int64), crs=MERC)


def _simulate_bm(rng: np.random.Generator, n: int, var_m2_s: float, sigma_m: float,
                 irregular: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    dt = rng.uniform(1800.0, 7200.0, n) if irregular else np.full(n, 3600.0)
    dt[0] = 0.0
    t = np.cumsum(dt)
    x = np.cumsum(rng.normal(0.0, np.sqrt(var_m2_s * dt))) + rng.normal(0.0, sigma_m, n)
    y = np.cumsum(rng.normal(0.0, np.sqrt(var_m2_s * dt))) + rng.normal(0.0, sigma_m, n)
    return x, y, t


def test_single_bridge_integrates_to_one_and_follows_the_line() -> None:
    grid = make_grid(np.array([0.0, 10_000.0]), np.array([0.0, 0.0]), MERC, cell_m=100.0, pad_m=3000.0)
    t = time.perf_counter()
    ud = utilisation(np.array([0.0]), np.array([0.0]), np.array([10_000.0]), np.array([0.0]), np.array([3600.0]),
                     np.array([10.0]), np.array([10.0]), 20.0, grid)
    dt = time.perf_counter() - t
    yc = grid.y0 + (np.arange(grid.ny) + 0.5) * grid.cell_m
    xc = grid.x0 + (np.arange(grid.nx) + 0.5) * grid.cell_m
    near = ud[np.abs(yc) < 500.0].sum()
    along = ud.sum(axis=0)[(xc > 0) & (xc < 10_000)]
    print(f"\nsingle bridge: sum {ud.sum():.7f}, {near:.5f} within 500 m of the line, "
          f"per-column mass {along.min():.5f}..{along.max():.5f} (uniform 0.01), {dt * 1e3:.1f} ms")
    assert abs(ud.sum() - 1.0) < 1e-3
    # σ(t) ≤ sqrt(3600/4 · 20) ≈ 134 m: nearly everything within 500 m of the line
    assert near > 0.999
    # constant speed → equal time (mass) per 100 m column
    np.testing.assert_allclose(along, 0.01, rtol=0.03)


@pytest.mark.parametrize("cell_m", [25.0, 1000.0])
def test_cell_integration_is_exact_for_any_cell_size(cell_m: float) -> None:
    # σ (10 m) far below a 1 km cell or comparable to 25 m: the exact cell integral still sums to 1
    grid = make_grid(np.array([0.0, 2000.0]), np.array([0.0, 1000.0]), MERC, cell_m=cell_m, pad_m=2000.0)
    ud = utilisation(np.array([0.0, 2000.0]), np.array([0.0, 0.0]), np.array([2000.0, 2000.0]),
                     np.array([0.0, 1000.0]), np.array([600.0, 1200.0]), np.full(2, 10.0), np.full(2, 10.0),
                     0.5, grid)
    assert abs(ud.sum() - 1.0) < 1e-6
    # time weighting: the second bridge lasts twice as long → holds 2/3 of the mass
    xc = grid.x0 + (np.arange(grid.nx) + 0.5) * grid.cell_m
    assert ud[:, xc > 2000.0 + cell_m].sum() < 0.02
    yc = grid.y0 + (np.arange(grid.ny) + 0.5) * grid.cell_m
    upper = ud[yc > cell_m, :].sum()
    assert abs(upper - 2 / 3 * (1000.0 - cell_m) / 1000.0) < 0.05


def test_tabulated_normal_cdf_matches_scipy() -> None:
    from scipy.special import ndtr

    from telemetry.corridor.footprints import _PHI_TABLE, _phi

    z = np.linspace(-12.0, 12.0, 200_001)
    err = np.abs(np.array([_phi(v, _PHI_TABLE) for v in z]) - ndtr(z)).max()
    print(f"\ntabulated normal CDF: max |error| {err:.1e} on [-12, 12]")
    assert err < 3e-8


def test_cell_probabilities_equal_the_exact_normal_integral() -> None:
    from scipy.special import ndtr

    # a bridge that does not move and has no Brownian term: time sample k (of 8, midpoint rule) is
    # N(μ, σ_k²) with σ_k² = (1-α)² δ² + α² δ², and its cell probabilities are products of two
    # differences of the exact normal CDF at the cell edges
    grid = make_grid(np.array([0.0, 100.0]), np.array([0.0, 100.0]), MERC, cell_m=50.0, pad_m=500.0)
    mu, delta = np.array([37.0]), 60.0
    ud = utilisation(mu, mu, mu, mu, np.array([600.0]), np.array([delta]), np.array([delta]), 0.0, grid,
                     k_sigma=8.0)
    expected = np.zeros_like(ud)
    for a in (np.arange(8) + 0.5) / 8:
        sd = delta * np.hypot(1 - a, a)
        ex = np.diff(ndtr((grid.x0 + np.arange(grid.nx + 1) * grid.cell_m - mu[0]) / sd))
        ey = np.diff(ndtr((grid.y0 + np.arange(grid.ny + 1) * grid.cell_m - mu[0]) / sd))
        expected += np.outer(ey, ex) / 8
    np.testing.assert_allclose(ud, expected, rtol=0, atol=1e-7)


@pytest.mark.parametrize(("var_m2_s", "sigma_m", "irregular"), [(15.0, 10.0, True), (2.0, 30.0, False),
                                                               (50.0, 5.0, True)])
def test_brownian_variance_ml_recovers_simulated_value(var_m2_s: float, sigma_m: float, irregular: bool) -> None:
    rng = np.random.default_rng(int(var_m2_s * 10))
    x, y, t = _simulate_bm(rng, 3000, var_m2_s, sigma_m, irregular)
    ta = _arrays(x, y, t, sigma_m)
    est = brownian_variance(ta)[0]
    horne = brownian_variance(ta, mid_error=False)[0]
    print(f"\nσ²_m simulated {var_m2_s} m²/s (δ {sigma_m} m): ML estimate {est:.3f} ({est / var_m2_s - 1:+.1%}); "
          f"without the odd fix's error (BBMM R package) {horne:.3f} ({horne / var_m2_s - 1:+.1%})")
    assert est == pytest.approx(var_m2_s, rel=0.3)
    assert horne == pytest.approx(var_m2_s, rel=0.3)


def test_brownian_variance_per_animal_and_fallback() -> None:
    rng = np.random.default_rng(3)
    xa, ya, ta_ = _simulate_bm(rng, 1500, 5.0, 10.0)
    xb, yb, tb = _simulate_bm(rng, 1500, 40.0, 10.0)
    x, y, t = np.r_[xa, xb, [0.0, 100.0]], np.r_[ya, yb, [0.0, 0.0]], np.r_[ta_, tb, [0.0, 10.0]]
    animal = np.r_[np.zeros(1500, int), np.ones(1500, int), [2, 2]]
    est = brownian_variance(_arrays(x, y, t, 10.0, animal))
    assert est[0] == pytest.approx(5.0, rel=0.3)
    assert est[1] == pytest.approx(40.0, rel=0.3)
    # one step only: moment estimate |d|² / (2 dt)
    assert est[2] == pytest.approx(100.0**2 / 20.0)


def test_footprint_mask_takes_highest_cells_to_the_level() -> None:
    ud = np.array([[0.4, 0.3], [0.2, 0.1]])
    assert footprint_mask(ud, 0.69).tolist() == [[True, True], [False, False]]
    assert footprint_mask(ud, 0.7).tolist() == [[True, True], [False, False]]
    assert footprint_mask(ud, 0.71).tolist() == [[True, True], [True, False]]
    assert footprint_mask(ud, 0.99).sum() == 4
    assert not footprint_mask(np.zeros((2, 2))).any()


def test_location_error_and_track_arrays() -> None:
    t = pd.date_range("2023-05-01", periods=6, freq="4h", tz="UTC")
    df = pd.DataFrame({
        "animal_id": pd.Categorical(["a"] * 6), "time": t,
        "lon": [78.0, 78.01, 78.02, np.nan, 78.03, 78.04], "lat": [43.0] * 6,
        "hdop": [1.0, np.nan, 2.0, 1.0, 1.0, 1.0], "fix_type": ["3D", "3D", "2D", "3D", "3D", "3D"],
        "flag": pd.Categorical([None, None, None, "no_fix", "spike", None], categories=["no_fix", "spike"]),
        "segment_id": [0, 0, 0, 0, 1, 1],
    })
    # defaults (10 m 3D, 30 m 2D x HDOP; a 3D fix without HDOP takes its class's median, 1)
    np.testing.assert_allclose(location_error_m(df), [10, 10, 60, 10, 10, 10])
    df["sigma_m"] = [4.0, 4.0, 12.0, np.nan, 4.0, 4.0]  # the error model a smoother estimated
    np.testing.assert_allclose(location_error_m(df), [4, 4, 12, 10, 4, 4])
    df["se_m"] = [5.0, np.nan, 7.0, np.nan, 8.0, 9.0]
    np.testing.assert_allclose(location_error_m(df), [5, 4, 7, 10, 8, 9])
    ta = track_arrays(df)
    assert len(ta) == 4                                   # the no_fix and spike rows are out
    assert ta.step_ok.tolist() == [False, True, True, False]   # new segment at the 4th usable fix
    np.testing.assert_allclose(ta.sigma_m, [5, 4, 7, 9])
    # smoothed positions win where present
    df["lon_s"] = df["lon"] + 0.01
    df["lat_s"] = df["lat"]
    ta2 = track_arrays(df, crs=ta.crs)
    assert np.all(ta2.x - ta.x > 700)                      # 0.01° of longitude ≈ 813 m at 43° N
    # gaps beyond max_gap_h cut the track
    assert track_arrays(df, max_gap_h=3.0).step_ok.sum() == 0


def test_a_wide_grid_is_sparse_not_coarsened() -> None:
    x, y = np.array([0.0, 100_000.0]), np.array([0.0, 100_000.0])
    g = make_grid(x, y, MERC, cell_m=100.0, pad_m=0.0, max_cells=10_000)
    assert g.cell_m == 100.0 and g.nx * g.ny > 10_000 and g.sparse
    assert not make_grid(x, y, MERC, cell_m=100.0, pad_m=0.0).sparse


def _three_animals() -> TrackArrays:
    """Two animals sharing a valley, one crossing it, one far away (a wide, mostly empty extent)."""
    rng = np.random.default_rng(21)
    parts = [_simulate_bm(rng, 150, v, 15.0) for v in (5.0, 20.0, 10.0, 8.0)]
    off = [(0.0, 0.0), (800.0, 300.0), (-500.0, 200.0), (40_000.0, 25_000.0)]
    x = np.concatenate([p[0] + o[0] for p, o in zip(parts, off, strict=True)])
    y = np.concatenate([p[1] + o[1] for p, o in zip(parts, off, strict=True)])
    t = np.concatenate([p[2] for p in parts])
    t = 1.6e9 + 30.0 * t  # fixes ~1.5 days apart: the tracks span several months
    ta = _arrays(x, y, t, 15.0, np.repeat(np.arange(4), 150))
    month = pd.to_datetime(t, unit="s").month.to_numpy().astype(np.int64)
    return TrackArrays(ta.animal, ta.labels, t, x, y, ta.sigma_m, ta.step_ok, month, MERC)


def test_tiled_footprints_equal_the_dense_window(monkeypatch) -> None:
    """An animal wider than the tile budget is computed tile by tile: the same cells as one window."""
    import telemetry.corridor.footprints as fmod

    ta = _three_animals()
    dense = stack_footprints(ta, cell_m=50.0)
    assert not dense.grid.sparse
    monkeypatch.setattr(fmod, "TILE_SIDE", 8)  # every animal's window is now many tiles
    tiled = stack_footprints(ta, cell_m=50.0)
    for a, b in zip(dense.cells, tiled.cells, strict=True):
        # same cells but for ties at the 99 % threshold (values differ in the last bits)
        assert np.setxor1d(a, b).size <= max(2, a.size // 1000), (a.size, b.size)
        assert a.size > 50


def test_sparse_grid_gives_the_dense_polygons_and_months() -> None:
    """Counting, polygons, animals and months from sorted cell lists equal the dense rasters, row for row."""
    from dataclasses import replace

    from telemetry.corridor.corridors import _footprint_months
    from telemetry.corridor.footprints import stack_cells

    ta = _three_animals()
    dense = stack_footprints(ta, cell_m=50.0)
    grid = replace(dense.grid, sparse=True)
    sp = stack_cells(grid, [[(g, c, v) for g, (c, v) in enumerate(zip(dense.cells, dense.var_m2_s, strict=True))]],
                     dense.var_m2_s)
    assert sp.count is None
    occ, n = sp.occupied()
    np.testing.assert_array_equal(occ, np.flatnonzero(dense.count.ravel()))
    np.testing.assert_array_equal(n, dense.count.ravel()[occ])
    a, b = count_polygons(dense), count_polygons(sp)
    assert len(a) == len(b) > 3 and a.n_animals.max() >= 2
    assert a.n_animals.tolist() == b.n_animals.tolist() and a.animal_codes.tolist() == b.animal_codes.tolist()
    for ca, cb in zip(a.cells, b.cells, strict=True):
        np.testing.assert_array_equal(ca, cb)
    assert all(shapely.equals(pa, pb) for pa, pb in zip(a.geometry, b.geometry, strict=True))
    assert _footprint_months(ta, dense.grid, a.cells) == _footprint_months(ta, grid, b.cells)
    assert len({m for ms in _footprint_months(ta, grid, b.cells) for m in ms}) > 3


def test_sparse_label_matches_ndimage() -> None:
    from scipy import ndimage

    from telemetry.corridor.footprints import sparse_label

    rng = np.random.default_rng(3)
    for _ in range(20):
        mask = rng.random((30, 41)) < rng.uniform(0.2, 0.7)
        lab, n = ndimage.label(mask)
        cells = np.flatnonzero(mask)
        slab, sn = sparse_label(cells, 41)
        assert sn == n and np.array_equal(slab, lab.ravel()[cells])


def test_mask_polygons_area_and_holes() -> None:
    g = Grid(0.0, 0.0, 10.0, 5, 5, MERC)
    ring = np.ones((5, 5), dtype=bool)
    ring[2, 2] = False
    ring[4, 4] = False
    corner = np.zeros((5, 5), dtype=bool)
    corner[0, 0] = corner[1, 1] = True   # diagonal neighbours: two polygons (4-connectivity)
    polys, labels, n = mask_polygons(ring, g)
    assert n == 1 and polys[0].area == pytest.approx(23 * 100.0) and len(polys[0].interiors) == 1
    assert shapely.is_valid(polys).all()
    polys, labels, n = mask_polygons(corner, g)
    assert n == 2 and [p.area for p in polys] == [100.0, 100.0]


def test_stacked_count_of_crossing_animals() -> None:
    # animal 0 walks west→east, animal 1 south→north: they share the cells around the crossing
    n = 21
    s = np.linspace(-5000.0, 5000.0, n)
    t = np.arange(n) * 3600.0
    x = np.r_[s, np.full(n, 30.0)]     # cross at (30, -40), inside a cell, not on a cell corner
    y = np.r_[np.full(n, -40.0), s]
    ta = _arrays(x, y, np.r_[t, t], 10.0, np.r_[np.zeros(n, int), np.ones(n, int)])
    fp = stack_footprints(ta, cell_m=100.0, var_m2_s=np.array([5.0, 5.0]))
    assert fp.count.max() == 2
    poly = count_polygons(fp, classes=(1, 2))
    two = poly[poly.n_animals == 2]
    assert len(two) == 1 and two.animal_codes.iloc[0] == (0, 1)
    c = two.geometry.iloc[0].centroid
    assert abs(c.x - 30) < 100 and abs(c.y + 40) < 100 and two.geometry.iloc[0].area < 1e6
    one = poly[poly.n_animals == 1]
    assert len(one) == 1 and one.animal_codes.iloc[0] == (0, 1)   # the cross is one connected polygon
    assert one.geometry.iloc[0].area == pytest.approx(len(one.cells.iloc[0]) * 100.0**2)


def test_footprint_cells_are_independent_per_animal() -> None:
    # the map step of stack_footprints: any split of the animals (and any thread count)
    # gives the same cells; the stacked count is the bincount of all cells
    from telemetry.corridor.footprints import footprint_cells

    rng = np.random.default_rng(8)
    parts = [_simulate_bm(rng, 200, v, 15.0) for v in (5.0, 20.0, 60.0, 10.0)]
    x = np.concatenate([p[0] + 3000.0 * g for g, p in enumerate(parts)])
    y = np.concatenate([p[1] for p in parts])
    t = np.concatenate([p[2] for p in parts])
    animal = np.repeat(np.arange(4), 200)
    ta = _arrays(x, y, t, 15.0, animal)
    fp = stack_footprints(ta, cell_m=100.0)
    together = footprint_cells(ta, fp.grid, n_threads=1)
    threaded = footprint_cells(ta, fp.grid, n_threads=3)
    assert [c for c, _, _ in together] == [0, 1, 2, 3]
    for g in range(4):
        alone = footprint_cells(ta, fp.grid, np.array([g]))
        keep = animal == g   # only the animal's own fixes
        own = footprint_cells(TrackArrays(animal[keep], ta.labels, t[keep], x[keep], y[keep], ta.sigma_m[keep],
                                          ta.step_ok[keep], ta.month[keep], MERC), fp.grid)
        for other in (threaded[g], alone[0], own[0]):
            assert other[0] == g and np.array_equal(other[1], together[g][1]) and other[2] == together[g][2]
        assert np.array_equal(fp.cells[g], together[g][1])
        assert together[g][2] == fp.var_m2_s[g]
    flat = np.concatenate([c for _, c, _ in together])
    assert np.array_equal(fp.count.ravel(), np.bincount(flat, minlength=fp.grid.nx * fp.grid.ny))


def test_footprint_mask_equals_the_full_sort_in_any_cell_order() -> None:
    """The binned cut (only the crossing bin sorted) takes the same cells as sorting every value,
    ties in key order, whatever order the cells come in; values span 300 octaves and repeat."""
    rng = np.random.default_rng(7)
    for trial in range(60):
        n = int(rng.integers(1, 3000))
        vals = np.exp(rng.normal(0, 1 + 60 * rng.random(), n))
        vals[rng.random(n) < 0.3] = vals[0]  # ties
        key = rng.permutation(n) * 3
        level = float(rng.choice([0.5, 0.9, 0.99, 0.999999, 1.0]))
        order = np.lexsort((key, -vals))
        csum = np.cumsum(vals[order])
        last = min(int(np.searchsorted(csum, level * vals.sum(), side="left")), n - 1)
        want = np.zeros(n, dtype=bool)
        want[order[: last + 1]] = True
        if level == 1.0:  # the whole mass is every cell, whatever the rounding of the sums
            want[:] = True
        got = footprint_mask(vals, level, key=key)
        assert got.sum() == want.sum(), trial
        # equal up to the sums' rounding: the same count and the same values taken
        assert np.allclose(np.sort(vals[got]), np.sort(vals[want])), trial
        shuffle = rng.permutation(n)
        assert (footprint_mask(vals[shuffle], level, key=key[shuffle]) == got[shuffle]).all(), trial


def test_footprint_cell_follows_the_bridges_so_a_wider_animal_costs_no_more_cells() -> None:
    """The default cell is half the bridges' median width at mid-step (no finer than 250 m): the
    same walk scaled by 100 in space (a tern against a leopard) gets a 100× wider cell and about
    the same number of footprint cells, where a fixed 250-m grid would need ~10,000× more."""
    from telemetry.corridor.footprints import bridge_cell_m

    rng = np.random.default_rng(5)
    x, y, t = _simulate_bm(rng, 300, 5.0, 10.0, irregular=False)
    small = _arrays(x, y, t, 10.0)
    var = brownian_variance(small)
    # the cell is read from the bridges: σ² = T σ²_m / 4 + δ² at α = ½
    sigma_mid = np.sqrt(3600.0 * var[0] / 4 + 10.0**2)
    assert bridge_cell_m(small, var, min_cell_m=1.0) == pytest.approx(sigma_mid / 2, rel=1e-9)
    a = stack_footprints(small, min_cell_m=1.0)
    assert a.grid.cell_m == pytest.approx(sigma_mid / 2, rel=1e-9)
    # the floor: a slow animal keeps 250 m; a given cell is used as is
    assert stack_footprints(small).grid.cell_m == 250.0 > sigma_mid / 2
    assert stack_footprints(small, cell_m=40.0).grid.cell_m == 40.0
    assert (a.grid.cell_source, stack_footprints(small, cell_m=40.0).grid.cell_source) == ("bridges", "given")
    wide = _arrays(100 * x, 100 * y, t, 1000.0)
    b = stack_footprints(wide, min_cell_m=1.0)
    assert b.grid.cell_m == pytest.approx(100 * a.grid.cell_m, rel=0.02)
    assert 0.8 < b.cells[0].size / a.cells[0].size < 1.25, (a.cells[0].size, b.cells[0].size)


def test_one_animal_far_wider_than_the_rest_coarsens_the_cell_within_the_cost_budget() -> None:
    """Three animals near rest and one stepping ~100 km between fixes: the median bridge says
    250 m, on which the wide animal's 59 bridges would cover 2.4e8 cells (a file of 344 fixes with
    steps of 50-500 km: 6e9, memory past 24 GB); the cell is coarsened until the bridges' boxes
    hold at most 5,000 cells a bridge (or 5e7 in all), and the footprints come out. A study within
    the budget keeps its cell."""
    from telemetry.corridor.footprints import box_cells, bridge_cell_m, budget_cell_m

    rng = np.random.default_rng(6)
    xs, ys, ts, an = [], [], [], []
    for k in range(4):
        x, y, t = _simulate_bm(rng, 60 if k == 3 else 300, 2e6 if k == 3 else 0.05, 10.0, irregular=False)
        xs.append(x + 1e6 * k), ys.append(y), ts.append(t), an.append(np.full(x.size, k))
    ta = _arrays(np.concatenate(xs), np.concatenate(ys), np.concatenate(ts), 10.0, np.concatenate(an))
    var = brownian_variance(ta)
    assert bridge_cell_m(ta, var) == 250.0
    fp = stack_footprints(ta, var_m2_s=var)
    cell = fp.grid.cell_m
    assert cell > 500.0  # (2.4e8 cells at 250 m; 5e7 here)
    st = np.flatnonzero(ta.step_ok)
    # (the boxes counted here from the bridges' σ at mid-step; box_cells counts them the same way)
    reach = 5.0 * np.sqrt(3600.0 * 0.25 * var[ta.animal[st]] + 100.0) + 2 * cell
    boxes = ((np.abs(np.diff(ta.x))[st - 1] + 2 * reach) * (np.abs(np.diff(ta.y))[st - 1] + 2 * reach)).sum() / cell**2
    assert boxes <= max(5e7, 5000 * st.size) * 1.01
    assert box_cells(ta, var, cell) == pytest.approx(boxes, rel=1e-9)
    assert box_cells(ta, var, 250.0) > 2e8  # (the median rule's cell)
    assert all(c.size for c in fp.cells)  # every animal has its footprint
    assert fp.grid.cell_source == "cost budget"
    # within the budget nothing changes: the resting animals alone keep the median rule's cell
    rest = _arrays(np.concatenate(xs[:3]), np.concatenate(ys[:3]), np.concatenate(ts[:3]), 10.0,
                   np.concatenate(an[:3]))
    assert budget_cell_m(rest, var[:3], 250.0) == 250.0 == stack_footprints(rest).grid.cell_m
    assert stack_footprints(rest).grid.cell_source == "min_cell_m"


def test_brownian_variance_beyond_its_search_interval_is_still_found() -> None:
    """A seabird at daily fixes wanders faster than the search interval's 1e5 m²/s: the estimate
    goes on past it rather than stopping at the bound (bridges half as wide as the data say)."""
    rng = np.random.default_rng(8)
    x, y, t = _simulate_bm(rng, 400, 5e5, 100.0, irregular=False)
    t = t * 24.0  # daily fixes
    x, y = x * np.sqrt(24.0), y * np.sqrt(24.0)  # the same σ²_m over 24× longer steps
    est = brownian_variance(_arrays(x, y, t, 100.0))[0]
    assert est == pytest.approx(5e5, rel=0.2)
