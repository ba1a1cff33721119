"""LaPoint corridor behaviour (move::corridor): fast parallel bundles vs slow tortuous clouds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely

from telemetry.corridor.behaviour import behaviour_polygons, corridor_steps
from telemetry.corridor.footprints import TrackArrays

MERC = pyproj.CRS.from_epsg(3857)


def _arrays(x: np.ndarray, y: np.ndarray, animal: np.ndarray, t: np.ndarray | None = None) -> TrackArrays:
    n = x.size
    t = np.arange(n) * 3600.0 if t is None else t
    return TrackArrays(animal=animal, labels=pd.Index([f"a{i}" for i in range(animal.max() + 1)]), t_s=t,
                       x=x, y=y, sigma_m=np.full(n, 10.0), step_ok=np.r_[False, animal[1:] == animal[:-1]],
                       month=np.ones(n, dtype=np.int64), crs=MERC)


def bundle_and_cloud(n_animals: int = 4, passes: int = 2, seed: int = 1) -> tuple[TrackArrays, np.ndarray]:
    """Each animal: a slow tortuous cloud (correlated random walk, ~150 m/h) around its own
    centre, then ``passes`` fast passes (2 km/h) back and forth along the shared line y≈0.

    Returns the arrays and, per step, True for steps on the bundle.
    """
    rng = np.random.default_rng(seed)
    xs, ys, animals, on = [], [], [], []
    for g in range(n_animals):
        centre = np.array([-3000.0 + 2000.0 * g, 6000.0])
        cloud = centre + np.cumsum(rng.normal(0.0, 150.0, (200, 2)), axis=0) * 0.3
        path = [cloud]
        flags = [np.zeros(200, bool)]
        for k in range(passes):
            a, b = (-10_000.0, 10_000.0) if k % 2 == 0 else (10_000.0, -10_000.0)
            xline = np.linspace(a, b, 11)
            yline = rng.normal(0.0, 40.0, 11) + 60.0 * g
            path.append(np.column_stack([xline, yline]))
            flags.append(np.ones(11, bool))
        p = np.concatenate(path)
        xs.append(p[:, 0])
        ys.append(p[:, 1])
        animals.append(np.full(len(p), g))
        on.append(np.concatenate(flags))
    x, y, animal, on_fix = np.concatenate(xs), np.concatenate(ys), np.concatenate(animals), np.concatenate(on)
    ta = _arrays(x, y, animal)
    end = np.flatnonzero(ta.step_ok)
    # a bundle step joins two bundle fixes of the same pass (not the transfer from the cloud,
    # not the short turn-around step between passes)
    on_step = on_fix[end] & on_fix[end - 1] & (np.abs(y[end] - y[end - 1]) < 500) & (np.abs(x[end] - x[end - 1]) > 500)
    return ta, on_step


def test_parallel_fast_bundle_is_corridor_and_cloud_is_not() -> None:
    ta, on = bundle_and_cloud()
    st = corridor_steps(ta, pooled=True)
    cloud = ~on & (st.length_m.to_numpy() < 1000)
    recall = st.corridor[on].mean()
    # steps touching a pass end share their circle with the turn-around: less parallel
    interior = on & (np.abs(st[["x0", "x1"]].to_numpy()).max(axis=1) < 9500)
    false = st.corridor[cloud].mean()
    print(f"\nbundle steps labelled corridor: {recall:.1%} ({on.sum()} steps), away from the pass ends "
          f"{st.corridor[interior].mean():.1%}; "
          f"cloud steps labelled corridor: {false:.1%} ({cloud.sum()} steps); "
          f"median circ var bundle {st.circ_var[on].median():.3f} vs cloud {st.circ_var[cloud].median():.3f}")
    assert recall >= 0.85
    assert st.corridor[interior].mean() >= 0.95
    # the method's quantile rules can let a rare cloud step through (1 in ~800 here), never many
    assert false <= 0.01
    assert st.fast[on].all()
    assert st.circ_var[on].median() < 0.05 < st.circ_var[cloud].median()


def test_own_steps_only_as_move_corridor() -> None:
    # one pass per animal: alone, no animal has parallel neighbours within ½ step of its midpoints;
    # pooled, the animals are each other's neighbours
    ta, on = bundle_and_cloud(passes=1)
    assert corridor_steps(ta, pooled=False).corridor[on].mean() == 0.0
    assert corridor_steps(ta, pooled=True).corridor[on].mean() >= 0.9


def test_opposite_directions_are_parallel_and_crossing_ones_are_not() -> None:
    # three steps with midpoints at the origin: east, west, east → axial variance 0;
    # east, north, east → doubled angles 180° apart for the odd one: R = 1/3
    def arrays(dirs: list[tuple[float, float]]) -> TrackArrays:
        n = len(dirs)
        x = np.ravel([[-d[0] / 2, d[0] / 2] for d in dirs])
        y = np.ravel([[-d[1] / 2, d[1] / 2] for d in dirs])
        animal = np.repeat(np.arange(n), 2)
        return _arrays(x, y, animal)

    st = corridor_steps(arrays([(1000, 0), (-1000, 0), (1000, 0)]), pooled=True)
    np.testing.assert_allclose(st.circ_var, 0.0, atol=1e-12)
    assert st.n_neighbours.tolist() == [3, 3, 3]
    st = corridor_steps(arrays([(1000, 0), (0, 1000), (1000, 0)]), pooled=True)
    np.testing.assert_allclose(st.circ_var, 1 - 1 / 3)


def test_neighbours_match_brute_force() -> None:
    rng = np.random.default_rng(5)
    n = 300
    x, y = rng.uniform(0, 5000, n), rng.uniform(0, 5000, n)
    animal = np.repeat(np.arange(3), 100)
    ta = _arrays(x, y, animal)
    st = corridor_steps(ta, pooled=True)
    mx, my = (st.x0 + st.x1).to_numpy() / 2, (st.y0 + st.y1).to_numpy() / 2
    d = np.hypot(mx[:, None] - mx[None, :], my[:, None] - my[None, :])   # O(n²) only in the test
    expected = (d <= 0.5 * st.length_m.to_numpy()[:, None]).sum(axis=1)
    assert st.n_neighbours.tolist() == expected.tolist()
    own = corridor_steps(ta, pooled=False)
    same = st.animal.to_numpy()[:, None] == st.animal.to_numpy()[None, :]
    expected_own = ((d <= 0.5 * st.length_m.to_numpy()[:, None]) & same).sum(axis=1)
    assert own.n_neighbours.tolist() == expected_own.tolist()


def test_speed_quantile_is_per_animal() -> None:
    # animal 1 moves 10× slower than animal 0 everywhere: it still has its own fast quarter
    ta0, _ = bundle_and_cloud(n_animals=1, seed=2)
    ta1, _ = bundle_and_cloud(n_animals=1, seed=3)
    x = np.r_[ta0.x, ta1.x]
    y = np.r_[ta0.y, ta1.y]
    t = np.r_[ta0.t_s, ta1.t_s * 10]
    ta = _arrays(x, y, np.r_[np.zeros(len(ta0), int), np.ones(len(ta1), int)], t)
    st = corridor_steps(ta)
    frac = st.groupby("animal")["fast"].mean()
    assert (frac > 0.2).all() and (frac < 0.3).all()


def test_behaviour_polygons_need_several_animals() -> None:
    ta, on = bundle_and_cloud()
    st = corridor_steps(ta, pooled=True)
    polys = behaviour_polygons(st, buffer_m=200.0, min_animals=2)
    assert len(polys) == 1
    assert polys.animal_codes.iloc[0] == (0, 1, 2, 3)
    route = shapely.LineString([(-10_000, 90), (10_000, 90)])
    g = polys.geometry.iloc[0]
    assert shapely.intersection(g, route.buffer(600)).area / g.area > 0.95
    assert shapely.intersection(route, g).length / route.length > 0.9
    # one animal alone makes no population corridor
    one = st[st.animal == 0]
    assert behaviour_polygons(one, min_animals=2).empty
    assert len(behaviour_polygons(one, min_animals=1)) >= 1


@pytest.mark.parametrize("dense", [True, False])
def test_grid_neighbour_search_matches_strtree_dwithin(dense: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    # variable radii (tiny to large), duplicated points, integer coordinates (points at
    # exactly the radius), groups: the numba grid scan must give the STRtree pairs exactly,
    # with per-cell tables for every cell (dense) or for the occupied cells only
    from telemetry.corridor import behaviour
    from telemetry.corridor.behaviour import neighbour_sums

    monkeypatch.setattr(behaviour, "DENSE_GRID_CELLS", 1 << 22 if dense else 0)

    rng = np.random.default_rng(11)
    n = 3000
    x = np.round(rng.uniform(0, 20_000, n))
    y = np.round(rng.uniform(0, 20_000, n))
    x[:300], y[:300] = x[300:600], y[300:600]               # exact duplicates
    x[600:700], y[600:700] = x[700:800] + 3.0, y[700:800] + 4.0   # at distance exactly 5
    r = np.exp(rng.uniform(np.log(0.5), np.log(3000.0), n))
    r[600:700] = 5.0
    r[:50] = 0.0
    group = rng.integers(0, 4, n)
    vals = rng.normal(size=(n, 2))
    qi, qj = shapely.STRtree(shapely.points(x, y)).query(shapely.points(x, y), predicate="dwithin", distance=r)
    # group codes: none, compact, with gaps (renumbered by a table) and far apart (by a sort)
    for g in (np.zeros(n, dtype=np.int64), group, group * 3 + 2, group * 10**12 - 7):
        keep = g[qi] == g[qj]
        cnt, sums = neighbour_sums(x, y, r, g, vals)
        assert cnt.tolist() == np.bincount(qi[keep], minlength=n).tolist()
        for k in range(2):
            np.testing.assert_allclose(sums[:, k], np.bincount(qi[keep], vals[qj[keep], k], minlength=n),
                                       rtol=1e-12, atol=1e-12)
        # a subset of points (the second pass of corridor_steps)
        sub = np.flatnonzero(rng.random(n) < 0.3)
        in_sub = np.isin(qj, sub) & keep
        cnt, _ = neighbour_sums(x, y, r, g, points=sub)
        assert cnt.tolist() == np.bincount(qi[in_sub], minlength=n).tolist()


def test_corridor_steps_matches_strtree_reference() -> None:
    # the former implementation (one STRtree dwithin query and bincounts) as the reference
    ta, _ = bundle_and_cloud(n_animals=5, passes=3, seed=4)
    for pooled in (True, False):
        st = corridor_steps(ta, pooled=pooled)
        mid = shapely.points((st.x0 + st.x1).to_numpy() / 2, (st.y0 + st.y1).to_numpy() / 2)
        qi, qj = shapely.STRtree(mid).query(mid, predicate="dwithin", distance=0.5 * st.length_m.to_numpy())
        if not pooled:
            same = st.animal.to_numpy()[qi] == st.animal.to_numpy()[qj]
            qi, qj = qi[same], qj[same]
        n = len(st)
        ang = np.radians(2.0 * st.azimuth_deg.to_numpy())
        w = (st.length_m.to_numpy() > 0).astype(float)
        m = np.bincount(qi, w[qj], minlength=n)
        c = np.bincount(qi, w[qj] * np.cos(ang[qj]), minlength=n)
        s = np.bincount(qi, w[qj] * np.sin(ang[qj]), minlength=n)
        circ = np.where(m >= 2, 1.0 - np.hypot(c, s) / np.maximum(m, 1), np.nan)
        assert st.n_neighbours.tolist() == np.bincount(qi, minlength=n).tolist()
        np.testing.assert_allclose(st.circ_var, circ, atol=1e-12)
        behav = (st.fast & st.parallel).to_numpy()
        nb = np.bincount(qi, minlength=n)
        nbh = np.bincount(qi, behav[qj].astype(float), minlength=n)
        assert st.corridor.tolist() == ((nb >= 3) & (nbh > nb - nbh)).tolist()
        q = st.groupby("animal")["speed_kmh"].transform(lambda v: v.quantile(0.75))
        assert st.fast.tolist() == (st.speed_kmh >= q).tolist()


def test_group_quantile_per_row_skips_non_finite_values() -> None:
    from telemetry.corridor.behaviour import _group_quantile

    rng = np.random.default_rng(5)
    v = rng.gamma(2.0, size=3000)
    v[rng.random(3000) < 0.1] = np.nan
    v[rng.random(3000) < 0.05] = np.inf
    g = rng.integers(0, 40, 3000)
    g[g == 7] = 8  # a group number without rows
    v[g == 9] = np.nan  # a group without a finite value
    got = _group_quantile(v, g, 0.75)
    for k in np.unique(g):
        finite = v[(g == k) & np.isfinite(v)]
        want = np.percentile(finite, 75.0) if finite.size else np.nan
        assert np.array_equal(got[g == k], np.full((g == k).sum(), want), equal_nan=True)


def test_identical_directions_are_exactly_parallel() -> None:
    # copies of one straight track (same azimuth, 33°, steps 1 km): every neighbourhood holds
    # identical directions, whose circular variance is 0 however the unit vectors are summed
    d = np.arange(12) * 1000.0
    az = np.radians(33.0)
    x = np.tile(d * np.sin(az), 5) + np.repeat(np.arange(5) * 7.0, 12)
    y = np.tile(d * np.cos(az), 5)
    ta = _arrays(x, y, np.repeat(np.arange(5), 12))
    st = corridor_steps(ta, pooled=True)
    assert (st.circ_var == 0.0).all() and st.parallel.all()
