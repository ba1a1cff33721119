"""Local projections: the fast PROJ pipeline equals PROJ's own CRS-to-CRS operation."""

from __future__ import annotations

import numpy as np
import pyproj

from telemetry.trajectory.projection import from_local, local_crs, project_by_group, to_local


def test_pipeline_matches_from_crs_and_round_trips():
    rng = np.random.default_rng(3)
    for lon0, lat0 in ((77.0, 43.0), (-7.0, 41.3), (179.5, -16.0), (20.0, 69.0)):
        lon = lon0 + rng.uniform(-1, 1, 500)
        lat = lat0 + rng.uniform(-1, 1, 500)
        crs = local_crs(lon, lat)
        x, y = to_local(lon, lat, crs)
        ref = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
        np.testing.assert_allclose(x, ref[0], atol=1e-6)
        np.testing.assert_allclose(y, ref[1], atol=1e-6)
        back_lon, back_lat = from_local(x, y, crs)
        np.testing.assert_allclose(((back_lon - lon + 180) % 360) - 180, 0, atol=1e-9)
        np.testing.assert_allclose(back_lat, lat, atol=1e-9)


def test_distances_from_centre_are_geodesic():
    lon = np.array([77.0, 77.5, 78.2])
    lat = np.array([43.0, 43.4, 42.6])
    crs = local_crs(lon, lat)
    x, y = to_local(lon, lat, crs)
    params = {p.name: p.value for p in crs.coordinate_operation.params}
    lat0, lon0 = params["Latitude of natural origin"], params["Longitude of natural origin"]
    _, _, d = pyproj.Geod(ellps="WGS84").inv(np.full(3, lon0), np.full(3, lat0), lon, lat)
    np.testing.assert_allclose(np.hypot(x, y), d, rtol=1e-9)


def test_group_projection_with_many_groups_is_fast_and_exact():
    rng = np.random.default_rng(4)
    codes = np.repeat(np.arange(600), 5)
    lon = 60 + codes * 0.05 + rng.uniform(-0.01, 0.01, codes.size)
    lat = 40 + rng.uniform(-0.01, 0.01, codes.size)
    x, y, proj = project_by_group(lon, lat, codes)
    back_lon, back_lat = proj.inverse(x, y)
    np.testing.assert_allclose(back_lon, lon, atol=1e-9)
    np.testing.assert_allclose(back_lat, lat, atol=1e-9)
    assert np.nanmax(np.hypot(x, y)) < 2_000  # each animal in its own frame: metres, not km


def test_group_projection_far_points_and_rows_without_a_group():
    # nearly antipodal to the centre (Vincenty does not converge: Karney via pyproj), a row of
    # no group (-1) and one whose code has no centre: PROJ's answer or NaN, never a crash
    from telemetry.trajectory.projection import GroupProjection

    crs = pyproj.CRS.from_proj4("+proj=aeqd +lat_0=0.5 +lon_0=10 +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs")
    lon = np.array([10.3, -169.9, -170.2, 11.0, 11.0])
    lat = np.array([0.6, -0.45, -0.5, 0.5, 0.5])
    codes = np.array([0, 0, 0, -1, 1])
    proj = GroupProjection(codes, (crs,), lon0=np.array([10.0]), lat0=np.array([0.5]))
    x, y = proj.forward(lon, lat)
    ref = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon[:3], lat[:3])
    np.testing.assert_allclose(x[:3], ref[0], atol=1e-3)
    np.testing.assert_allclose(y[:3], ref[1], atol=1e-3)
    assert np.isnan(x[3:]).all() and np.isnan(y[3:]).all()
    back_lon, back_lat = proj.inverse(x, y)
    np.testing.assert_allclose(((back_lon[:3] - lon[:3] + 180) % 360) - 180, 0, atol=1e-8)
    np.testing.assert_allclose(back_lat[:3], lat[:3], atol=1e-8)


def test_reused_projections_give_the_same_result_and_keep_nothing_after() -> None:
    """Inside ``reused_projections`` an equal call returns the first call's result (copies, to
    the bit); different inputs (one coordinate, a group, ``n_groups``) are projected afresh; the
    kept arrays go when the outermost block ends."""
    import telemetry.trajectory.projection as pj

    rng = np.random.default_rng(5)
    lon, lat = rng.uniform(76, 80, 300), rng.uniform(42, 44, 300)
    lon[7] = np.nan
    codes = rng.integers(0, 3, 300)
    x0, y0, _ = project_by_group(lon, lat, codes, 3)
    with pj.reused_projections():
        a = project_by_group(lon, lat, codes, 3)
        with pj.reused_projections():
            b = project_by_group(lon.copy(), lat.copy(), codes.copy(), 3)
        assert b[0] is not a[0] and b[2] is a[2]
        b[0][:] = 0.0  # the caller's copy: the kept result is not changed
        c = project_by_group(lon, lat, codes, 3)
        lon2 = lon.copy()
        lon2[0] += 1e-9
        d = project_by_group(lon2, lat, codes, 3)
        e = project_by_group(lon, lat, codes, 4)
        assert len(pj._reuse) == 3
    assert pj._reuse is None
    for got in (a, c):
        assert np.array_equal(got[0], x0, equal_nan=True) and np.array_equal(got[1], y0, equal_nan=True)
    assert d[2] is not a[2] and e[2] is not a[2]
    assert not np.array_equal(d[0], x0, equal_nan=True)


def test_reused_projections_from_several_threads() -> None:
    """Blocks entered from several threads at once (a threaded engine's partitions) share the kept
    results: each thread gets its own inputs' projection, the same as outside any block, and
    nothing is kept once every block has ended."""
    import threading

    import telemetry.trajectory.projection as pj

    rng = np.random.default_rng(8)
    inputs = [(rng.uniform(-170, 170, 500), rng.uniform(-60, 60, 500), rng.integers(0, 4, 500)) for _ in range(6)]
    want = [project_by_group(lon, lat, g, 4)[:2] for lon, lat, g in inputs]
    bad: list[int] = []
    gate = threading.Barrier(len(inputs))

    def run(k: int) -> None:
        lon, lat, g = inputs[k]
        with pj.reused_projections():
            gate.wait()  # every thread inside a block before any projects
            for _ in range(5):
                for j in (k, (k + 1) % len(inputs)):  # its own and a neighbour's, kept or not
                    x, y, _ = project_by_group(*inputs[j][:2], inputs[j][2], 4)
                    if not (np.array_equal(x, want[j][0], equal_nan=True) and np.array_equal(y, want[j][1], equal_nan=True)):
                        bad.append(j)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(inputs))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not bad and pj._reuse is None and pj._reuse_depth == 0
