"""Public generalisation: the grid, the lattice guarantee, adversarial inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely

from telemetry.outputs import generalise as gen
from telemetry.outputs.layers import public_layers


def test_cells_are_half_open_and_exact():
    i, j = gen.cell_index(np.array([77.1, 77.0999, -0.05, 180.0]), np.array([43.0, 42.9999, -0.05, 90.0]), 0.1)
    assert i.tolist() == [771, 770, -1, 1800]  # a position on a cell line belongs to the cell above/right
    assert j.tolist() == [430, 429, -1, 900]
    x, y = gen.cell_centres(i[:1], j[:1], 0.1)
    assert (x[0], y[0]) == (77.15, 43.05)
    poly = gen.cell_polygons(i[:1], j[:1], 0.1)[0]
    assert poly.exterior.is_ccw and poly.bounds == (77.1, 43.0, 77.2, 43.1)


@pytest.mark.parametrize("bad", [0, -0.1, 11, 1e-7, float("nan")])
def test_bad_grid_rejected(bad):
    with pytest.raises(ValueError):
        gen.check_grid_deg(bad)


def test_tiny_home_range_becomes_one_whole_cell():
    # three fixes within 10 m: a precise polygon would pin the den; the public one is the cell
    tiny = shapely.Polygon([(77.12345, 43.05678), (77.12355, 43.05678), (77.12350, 43.05687)])
    out = gen.generalise_polygons(np.array([tiny]), 0.1)[0]
    assert shapely.equals(out, shapely.box(77.1, 43.0, 77.2, 43.1))
    gen.check_generalised([out], 0.1)
    assert out.covers(tiny)


def test_polygon_is_union_of_touched_cells_and_never_shrinks():
    poly = shapely.Polygon([(77.05, 43.05), (77.25, 43.05), (77.25, 43.2), (77.05, 43.15)])  # ends on a cell line
    ring = shapely.box(76.0, 42.0, 76.5, 42.5).difference(shapely.box(76.2, 42.2, 76.3, 42.3))  # a hole of one cell
    out = gen.generalise_polygons(np.array([poly, ring, None, shapely.Polygon()]), 0.1)
    assert out[2] is None and out[3] is None
    assert shapely.equals(out[0], shapely.box(77.0, 43.0, 77.3, 43.2))  # no extra row above 43.2
    assert len(out[1].interiors) == 1 and shapely.equals(shapely.Polygon(out[1].interiors[0]),
                                                         shapely.box(76.2, 42.2, 76.3, 42.3))
    assert out[1].exterior.is_ccw and not out[1].interiors[0].is_ccw
    for o, p in ((out[0], poly), (out[1], ring)):
        assert o.covers(p) and o.is_valid
    gen.check_generalised(out[:2], 0.1)


def test_output_depends_only_on_the_cells_touched():
    rng = np.random.default_rng(1)
    base = shapely.Point(77.1234, 43.0567).buffer(0.03)
    moved = shapely.affinity.translate(base, 0.004, -0.003)  # touches the same cells
    a, b = gen.generalise_polygons(np.array([base, moved]), 0.1)
    assert shapely.to_wkb(a) == shapely.to_wkb(b)
    # points: any position inside a cell gives the same cell and centre
    lon = 77.1 + rng.uniform(0, 0.0999, 50)
    lat = 43.0 + rng.uniform(0, 0.0999, 50)
    cells = gen.snap_points(lon, lat, 0.1)
    assert len(set(shapely.to_wkb(cells))) == 1
    centres = gen.snap_points(lon, lat, 0.1, as_cells=False)
    assert {(p.x, p.y) for p in centres} == {(77.15, 43.05)}


def test_on_lattice_and_finer_grids():
    assert gen.on_lattice(np.array([[77.1, 43.0], [77.15, 43.05], [77.15, 43.0], [77.123, 43.0]]),
                          0.1).tolist() == [True, True, False, False]
    out = gen.generalise_polygons(np.array([shapely.Point(7.12345, 46.5).buffer(0.0004)]), 0.001)[0]
    assert out.bounds == pytest.approx((7.123, 46.499, 7.124, 46.501))
    gen.check_generalised([out], 0.001)
    with pytest.raises(ValueError, match="not on the 0.1"):
        gen.check_generalised([shapely.Point(77.123, 43.0)], 0.1)


def test_month_generalises_times():
    t = pd.Series(pd.to_datetime(["2022-03-31T23:59:59Z", None], utc=True))
    assert gen.month(t).tolist() == ["2022-03", None]


def test_single_crossing_and_single_hotspot_reveal_only_a_cell_and_a_month():
    import geopandas as gpd

    cx = gpd.GeoDataFrame({"animal_id": ["SL99"], "kind": ["crossing"], "from_iso": ["KGZ"], "to_iso": ["KAZ"],
                           "time": pd.to_datetime(["2022-05-17T03:12:45Z"], utc=True), "lon": [77.14321],
                           "lat": [42.96789]}, geometry=[shapely.MultiPoint([(77.14321, 42.96789)])], crs=4326)
    hs = gpd.GeoDataFrame({"name": ["KAZ–KGZ #1"], "zone_a": ["KAZ"], "zone_b": ["KGZ"], "n_crossings": [1],
                           "n_animals": [1], "animals": ["SL99"], "n_a_to_b": [0], "n_b_to_a": [1], "months": ["5"],
                           "first": cx["time"], "last": cx["time"], "position_km": [12.345]},
                          geometry=[shapely.Point(77.14321, 42.96789)], crs=4326)
    pub = public_layers(crossings=cx, hotspots=hs, grid_deg=0.1, min_animals=1, min_confidence=0.0)
    counts = pub["crossing_counts"]
    assert counts.drop(columns="geometry").to_dict("records") == [
        {"border": "KAZ–KGZ", "month": "2022-05", "from_iso": "KGZ", "to_iso": "KAZ", "kind": "crossing",
         "n_events": 1, "n_animals": 1}]
    assert counts.geometry.isna().all()
    h = pub["hotspots"]
    assert shapely.equals(h.geometry.iloc[0], shapely.box(77.1, 42.9, 77.2, 43.0))
    assert "position_km" not in h.columns and h["first_month"].iloc[0] == "2022-05"


def _brute_cells(geom, grid_deg):
    """Reference: every cell of the bounding box tested for interior overlap (cost ∝ bbox)."""
    b = shapely.bounds(geom)
    i0, j0 = gen.cell_index(np.array([b[0]]), np.array([b[1]]), grid_deg)
    i1, j1 = gen.cell_index(np.array([b[2]]), np.array([b[3]]), grid_deg)
    ii, jj = np.meshgrid(np.arange(i0[0], i1[0] + 1), np.arange(j0[0], j1[0] + 1))
    ii, jj = ii.ravel(), jj.ravel()
    cells = gen.cell_polygons(ii, jj, grid_deg)
    hit = shapely.intersects(cells, geom) & ~shapely.touches(cells, geom)
    return set(zip(ii[hit].tolist(), jj[hit].tolist()))


def test_rasterised_cells_equal_the_cell_by_cell_reference():
    """Row-band rasterisation gives exactly the cells of the brute-force test, on polygons of every shape."""
    rng = np.random.default_rng(7)
    for k in range(60):
        grid = [0.1, 0.05, 0.01][k % 3]
        cx, cy = rng.uniform(-170, 170), rng.uniform(-70, 70)
        n = int(rng.integers(5, 40))
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        r = rng.uniform(0.02, 0.6, n)  # star-shaped, non-convex
        poly = shapely.Polygon(np.column_stack([cx + r * np.cos(ang), cy + r * np.sin(ang)])).buffer(0)
        if k % 4 == 0:  # a hole
            poly = poly.difference(shapely.Point(cx, cy).buffer(0.01))
        if k % 5 == 0:  # vertices exactly on cell lines
            x0, y0 = round(cx, 1), round(cy, 1)
            poly = shapely.box(x0, y0, round(x0 + 3 * grid, 6), round(y0 + 2 * grid, 6))
        got = set(zip(*(a.tolist() for a in gen.cells_of(poly, grid))))
        assert got == _brute_cells(poly, grid), (k, grid)
        out = gen.generalise_polygons(np.array([poly]), grid)[0]
        assert out.covers(poly) and gen.check_generalised(np.array([out]), grid) is None


def test_runs_polygon_equals_the_union_of_its_squares():
    """One rectangle per row run, unioned, is the same polygon as the coverage union of every
    cell square (the same point set, every vertex a lattice point, no more vertices), on random
    cell sets with holes, several parts and cells that touch only at a corner."""
    rng = np.random.default_rng(11)
    for k in range(80):
        grid = [0.1, 0.05, 0.000003][k % 3]
        i0, j0 = int(rng.integers(-2000, 2000)), int(rng.integers(-600, 600))
        w, h = int(rng.integers(1, 30)), int(rng.integers(1, 30))
        mask = rng.random((h, w)) < rng.uniform(0.2, 0.95)
        jj, ii = np.nonzero(mask)  # row-major: sorted by row, then column
        if not jj.size:
            continue
        ci, cj = ii + i0, jj + j0
        ref = shapely.simplify(shapely.coverage_union_all(gen.cell_polygons(ci, cj, grid)), 0.0)
        got = gen.runs_polygon(*gen.merge_runs(cj, ci, ci), grid)
        assert got.is_valid and shapely.equals(got, ref), k
        assert shapely.get_num_coordinates(got) <= shapely.get_num_coordinates(ref), k
        assert gen.check_generalised(np.array([got]), grid) is None, k
        # (the squares' union kept a collinear corner where its ring started; the runs' drops it)


def test_ranges_shared_by_k_animals_equal_the_cell_by_cell_count():
    """The public ranges of k or more animals, counted by a sweep over runs of cells, hold exactly
    the cells that a per-cell count of distinct animals gives, class by class; an animal with
    two overlapping polygons counts once."""
    import geopandas as gpd

    from telemetry.outputs.layers import _public_ranges

    rng = np.random.default_rng(4)
    for trial in range(6):
        grid = [0.1, 0.05, 0.02][trial % 3]
        polys, animals = [], []
        for a in range(int(rng.integers(3, 9))):
            for _ in range(1 + (a % 3 == 0)):  # every third animal has two polygons
                cx, cy = rng.uniform(76.0, 78.0), rng.uniform(42.0, 43.5)
                ang = np.sort(rng.uniform(0, 2 * np.pi, 12))
                r = rng.uniform(0.1, 0.8, 12)
                polys.append(shapely.Polygon(np.column_stack([cx + r * np.cos(ang), cy + r * np.sin(ang)])).buffer(0))
                animals.append(f"a{a}")
        hr = gpd.GeoDataFrame({"animal_id": animals, "method": "kde", "level_pct": 95.0}, geometry=polys, crs=4326)
        # reference: the set of animals on every cell
        owners: dict[tuple[int, int], set[str]] = {}
        for g, a in zip(polys, animals, strict=True):
            for c in zip(*(v.tolist() for v in gen.cells_of(g, grid))):
                owners.setdefault(c, set()).add(a)
        for k in (2, 3):
            out = _public_ranges(hr, grid, k)
            want = {}
            for c, who in owners.items():
                if len(who) >= k:
                    want.setdefault(len(who), set()).add(c)
            assert out["n_animals"].tolist() == sorted(want), (trial, k)
            for n, cells, shape in zip(out["n_animals"], out["cells"], out.geometry, strict=True):
                assert cells == len(want[n]), (trial, k, n)
                i, j = zip(*sorted(want[n], key=lambda c: (c[1], c[0])))
                ref = gen.runs_polygon(*gen.merge_runs(np.array(j), np.array(i), np.array(i)), grid)
                assert shape.is_valid and shapely.equals(shape, ref), (trial, k, n)
