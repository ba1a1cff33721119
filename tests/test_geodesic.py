"""telemetry.trajectory.geodesic against pyproj.Geod (Karney), the independent reference."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest

from telemetry.trajectory.geodesic import direct, distance_m, inverse

GEOD = pyproj.Geod(ellps="WGS84")


def _pairs(rng, n, max_deg):
    lon1 = rng.uniform(-180, 180, n)
    lat1 = rng.uniform(-89.9, 89.9, n)
    lon2 = lon1 + rng.uniform(-max_deg, max_deg, n)
    lat2 = np.clip(lat1 + rng.uniform(-max_deg, max_deg, n), -89.9, 89.9)
    return lon1, lat1, lon2, lat2


def _angle_diff(a, b):
    return np.abs((a - b + 180.0) % 360.0 - 180.0)


@pytest.mark.parametrize("max_deg", [1e-4, 0.05, 2.0, 60.0])
def test_matches_pyproj_geod(max_deg):
    rng = np.random.default_rng(int(max_deg * 1e4) + 1)
    lon1, lat1, lon2, lat2 = _pairs(rng, 20_000, max_deg)
    az12, az21, d = inverse(lon1, lat1, lon2, lat2)
    raz12, raz21, rd = GEOD.inv(lon1, lat1, lon2, lat2)
    assert np.max(np.abs(d - rd)) < 1e-4  # 0.1 mm
    # azimuths: the sideways offset they make at the far end is below 0.1 mm too
    lateral = lambda a, b: rd * np.radians(_angle_diff(a, b))  # noqa: E731
    assert np.max(lateral(az12, raz12)) < 1e-4
    assert np.max(lateral(az21, raz21)) < 1e-4
    assert np.max(_angle_diff(az12, raz12)[rd > 1000], initial=0.0) < 1e-6


@pytest.mark.parametrize("max_km", [0.01, 50.0, 2_000.0, 15_000.0])
def test_direct_matches_pyproj_geod_fwd(max_km):
    rng = np.random.default_rng(int(max_km) + 7)
    n = 20_000
    lon1, lat1 = rng.uniform(-180, 180, n), rng.uniform(-89.9, 89.9, n)
    az, dist = rng.uniform(-180, 180, n), rng.uniform(0, max_km * 1000, n)
    dist[:10] = 0.0  # the start point itself
    lon2, lat2 = direct(lon1, lat1, az, dist)
    rlon, rlat, _ = GEOD.fwd(lon1, lat1, az, dist)
    # the end points are within 0.1 mm of Karney's: their distance, measured by pyproj
    _, _, miss = GEOD.inv(lon2, lat2, rlon, rlat)
    assert np.max(miss) < 1e-4
    assert np.all(np.abs(lon2) <= 180.0)
    assert np.array_equal(lon2[:10], lon1[:10]) and np.array_equal(lat2[:10], lat1[:10])
    assert np.isnan(direct(np.array([np.nan]), np.array([0.0]), np.array([0.0]), np.array([1.0]))[0]).all()


def test_nearly_antipodal_and_edge_cases_fall_back_exactly():
    lon1 = np.array([0.0, 0.0, 10.0, 77.0, np.nan, 179.9])
    lat1 = np.array([0.0, 0.0, 0.0, 43.0, 43.0, 10.0])
    lon2 = np.array([179.7, 0.0, 10.0, 77.0, 77.0, -179.9])
    lat2 = np.array([0.1, 0.0, 0.0, 43.0, 43.0, 10.0])
    az12, az21, d = inverse(lon1, lat1, lon2, lat2)
    _, _, rd = GEOD.inv(lon1[:4], lat1[:4], lon2[:4], lat2[:4])
    assert np.allclose(d[:4], rd, atol=1e-4, rtol=0)
    assert d[1] == 0.0 and d[3] == 0.0
    assert np.isnan(d[4]) and np.isnan(az12[4])
    assert d[5] == pytest.approx(GEOD.inv(179.9, 10.0, -179.9, 10.0)[2], abs=1e-4)  # across the antimeridian


def test_broadcasts_and_keeps_shape():
    d = distance_m(77.0, 43.0, np.array([[77.0, 77.01], [77.02, 77.03]]), 43.0)
    assert d.shape == (2, 2)
    assert d[0, 0] == 0.0
    assert d[0, 1] == pytest.approx(GEOD.inv(77.0, 43.0, 77.01, 43.0)[2], abs=1e-4)
