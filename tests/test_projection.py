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
    lat0, lon0 = crs.to_dict()["lat_0"], crs.to_dict()["lon_0"]
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
