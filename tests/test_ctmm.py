"""Continuous-time movement models, AKDE, resident periods, speeds and range shares.

The truth comes from ``tests/ctsim.py`` (exact draws from each process's covariance, code apart
from the fitter); the likelihood is checked against a dense Gaussian likelihood written here.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from telemetry.trajectory.akde import akde, akde_bandwidth, chi2_area_ci, lag_histogram
from telemetry.trajectory.ctmm import (
    MovementFit,
    _Problem,
    fit_models,
    mean_speed,
    velocity_smoother,
)
from telemetry.trajectory.ranges import movement_ranges, population_range, speed_ci
from telemetry.trajectory.residency import periods
from tests import ctsim

DAY = 86400.0


def _dense_reml(model: str, t, z, r, var, tau_p, tau_v) -> float:
    """REML log-likelihood of one axis from the full covariance matrix (O(n³), independent code)."""
    if model == "bm":
        # condition on the first fix: increments' covariance of a Brownian motion plus error
        d = np.minimum.outer(t - t[0], t - t[0])[1:, 1:] * var
        e = np.diag(r[1:]) + r[0]
        cov = d + e
        v = z[1:] - z[0]
        _, logdet = np.linalg.slogdet(cov)
        return -0.5 * (logdet + v @ np.linalg.solve(cov, v) + v.size * math.log(2 * math.pi))
    cov = var * ctsim.true_acf(model, t[:, None] - t[None, :], tau_p, tau_v) + np.diag(r)
    ones = np.ones_like(z)
    ci = np.linalg.inv(cov)
    s11 = ones @ ci @ ones
    mu = (ones @ ci @ z) / s11
    res = z - mu
    _, logdet = np.linalg.slogdet(cov)
    n = z.size
    return -0.5 * (logdet + res @ ci @ res + (n - 1) * math.log(2 * math.pi) + math.log(s11))


@pytest.mark.parametrize("model", ["iid", "bm", "ou", "ouf"])
def test_kalman_likelihood_equals_the_dense_gaussian_likelihood(model):
    rng = np.random.default_rng(1)
    t = ctsim.irregular_times(120, 3600.0, rng)
    x, y = ctsim.simulate_cholesky(model if model != "bm" else "bm", t, 1e6 if model != "bm" else 1.0,
                                   2 * DAY, 1800.0, err_sd=rng.uniform(5, 40, t.size), rng=rng)
    r = rng.uniform(25, 1600, t.size)
    pb = _Problem(t, x, y, r)
    code = {"iid": 0, "bm": 1, "ou": 2, "ouf": 3}[model]
    var = 1e6 if model != "bm" else 1.3
    params = [math.log(var)] + ([math.log(2 * DAY)] if code >= 2 else []) + ([math.log(1800.0)] if code == 3 else [])
    got, _ = pb.loglik(code, True, np.array(params))
    want = sum(_dense_reml(model, pb.t, z, r, var, 2 * DAY, 1800.0) for z in (pb.x, pb.y))
    assert got == pytest.approx(want, rel=1e-8, abs=1e-6)


def test_model_selection_and_parameters_recover_the_truth():
    rng = np.random.default_rng(3)
    t = ctsim.irregular_times(1500, 3600.0, rng)
    x, y = ctsim.simulate_cholesky("ouf", t, 1e7, 2 * DAY, 3600.0, err_sd=20.0, rng=rng, ratio=3.0, theta=0.7)
    fits = fit_models(t, x, y, np.full(t.size, 400.0))
    best = fits[0]
    assert best.name == "OUF anisotropic"
    z = 1.96
    for name, truth in (("log_tau_p", 2 * DAY), ("log_tau_v", 3600.0), ("log_var", 1e7)):
        j = best.names.index(name)
        assert abs(best.params[j] - math.log(truth)) < z * best.sd(name) + 0.05, name
    assert math.exp(best.log_ratio) == pytest.approx(3.0, rel=0.35)
    assert abs((best.theta_rad - 0.7 + math.pi / 2) % math.pi - math.pi / 2) < 0.2
    # IID fixes: no autocorrelation selected, N_area is the number of fixes
    xi, yi = ctsim.simulate_cholesky("iid", t[:400], 1e7, rng=rng)
    iid = fit_models(t[:400], xi, yi, np.zeros(400))[0]
    assert iid.model == "iid"
    assert iid.n_area == pytest.approx(400, rel=0.05)
    # a Brownian walker has no range
    xb, yb = ctsim.simulate_cholesky("bm", t[:600], 2.0, rng=rng)
    assert fit_models(t[:600], xb, yb, np.zeros(600))[0].model == "bm"


def test_fit_survives_no_location_error_on_a_ridge():
    """Without error the OU likelihood has a long σ²–τ ridge; the fit must not stop on it."""
    rng = np.random.default_rng(5)
    t = ctsim.irregular_times(2000, 3600.0, rng)
    x, y = ctsim.simulate_cholesky("ouf", t, 2e7, 8 * DAY, 2400.0, rng=rng)
    fits = {f.name: f for f in fit_models(t, x, y, np.zeros(t.size), anisotropic=False)}
    assert fits["OUF isotropic"].loglik > fits["BM isotropic"].loglik + 100
    assert fits["OU isotropic"].loglik >= fits["BM isotropic"].loglik - 1.0  # OU nests BM as τ → ∞


def test_akde_bandwidth_widens_with_autocorrelation():
    t = np.arange(2000) * 3600.0
    iid = MovementFit("iid", True, 0, 0, 3, t.size, 1.0, 0, 0, math.nan, math.nan, (0, 0), np.zeros((0, 0)), (),
                      np.zeros(0))
    ou = MovementFit("ou", True, 0, 0, 4, t.size, 1.0, 0, 0, 5 * DAY, math.nan, (0, 0), np.zeros((0, 0)), (),
                     np.zeros(0))
    h_iid, rho_iid = akde_bandwidth(iid, t)
    h_ou, rho_ou = akde_bandwidth(ou, t)
    assert h_iid == pytest.approx((2000 ** (-1 / 6)) * 0.96, rel=0.15)  # near the Gaussian reference rule
    assert h_ou > 2 * h_iid and rho_ou > 10 * rho_iid


def test_lumpiness_is_the_figure_the_akde_docstring_gives():
    """akde.lumpiness: ~1 % smaller 95 % regions for 1,000 independent fixes, ~5 % at 20 crossings."""
    from telemetry.trajectory.akde import lumpiness

    t = np.arange(1000) * 3600.0
    out = {}
    for model, tau in (("iid", math.nan), ("ou", t[-1] / 20)):
        fit = MovementFit(model, True, 0, 0, 3, t.size, 1e6, 0, 0, tau, math.nan, (0, 0), np.zeros((0, 0)), (),
                          np.zeros(0))
        h, _ = akde_bandwidth(fit, t)
        out[model] = lumpiness(fit, t, np.zeros(t.size), h, (95.0,), 256, 32, seed=1)[95.0][0]
    assert 0.975 < out["iid"] < 1.0
    assert 0.92 < out["ou"] < out["iid"] - 0.02


def test_lag_histogram_counts_every_pair():
    rng = np.random.default_rng(2)
    t = np.sort(rng.uniform(0, 1e6, 500))
    lag, pairs, n = lag_histogram(t)
    assert pairs.sum() == n * (n - 1)  # ordered pairs of distinct fixes, both orders


def test_akde_area_unbiased_with_ci_coverage_on_simulated_tracks():
    """A small slice of scripts/validate.py --ctmm (that sweep: ≥ 200 tracks)."""
    rng = np.random.default_rng(11)
    ratios, covered = [], []
    for k in range(24):
        model = ("ou", "ouf", "iid")[k % 3]
        t = ctsim.irregular_times(600, 3600.0 * (1 + k % 2), rng)
        tau_p = (t[-1] - t[0]) / rng.choice([30.0, 60.0])
        x, y = ctsim.simulate_cholesky(model, t, 1e7, tau_p, 1800.0, err_sd=25.0, rng=rng, ratio=2.0)
        fit = fit_models(t, x, y, np.full(t.size, 625.0))[0]
        if not fit.resident:
            continue
        ud = akde(fit, t, x, y, np.full(t.size, 625.0), bootstrap=16, seed=k)
        true = ctsim.gaussian_area(1e7)
        ratios.append(ud.areas_m2[(95.0, "estimate")] / true)
        covered.append(ud.areas_m2[(95.0, "low")] <= true <= ud.areas_m2[(95.0, "high")])
        # the CI contours nest the estimate's
        est, lo, hi = (ud.polygons[(95.0, c)] for c in ("estimate", "low", "high"))
        assert lo.area < est.area < hi.area
        assert est.area == pytest.approx(ud.areas_m2[(95.0, "estimate")], rel=0.03)
    assert len(ratios) >= 20
    assert abs(np.mean(ratios) - 1.0) < 0.1
    assert np.mean(covered) >= 0.83


def test_chi2_ci_is_the_area_estimator_distribution():
    rng = np.random.default_rng(0)
    n_area = 12.0
    est = 100.0 * rng.chisquare(2 * n_area, 4000) / (2 * n_area)
    cover = np.mean([lo <= 100.0 <= hi for lo, hi in (chi2_area_ci(a, n_area) for a in est[:1000])])
    assert 0.93 < cover < 0.97


def test_speed_of_ouf_is_recovered_and_absent_without_velocity():
    rng = np.random.default_rng(4)
    t = ctsim.irregular_times(3000, 900.0, rng)
    sigma2, tp, tv = 1e7, 3 * DAY, 3600.0
    x, y = ctsim.simulate_ouf_steps(t, sigma2, tp, tv, rng)
    fit = fit_models(t, x + rng.normal(0, 10, t.size), y + rng.normal(0, 10, t.size), np.full(t.size, 100.0))[0]
    assert fit.model == "ouf"
    truth = math.sqrt(math.pi / 2) * math.sqrt(sigma2 / (tp * tv))
    v, lo, hi = speed_ci(fit)
    assert lo <= truth <= hi and v == pytest.approx(truth, rel=0.1)
    cond = velocity_smoother(fit, t, x, y, np.full(t.size, 100.0))
    assert np.mean(cond) == pytest.approx(truth, rel=0.15)
    assert mean_speed(fit) == pytest.approx(v)


def test_daily_speed_intervals_cover_the_true_daily_speed():
    rng = np.random.default_rng(21)
    t = ctsim.irregular_times(2400, 1800.0, rng)  # ~50 days at 30 min
    x, y, speed = ctsim.simulate_ouf_steps(t, 2e7, 4 * DAY, 2400.0, rng, velocity=True)
    err = 12.0
    tracks = _tracks(t, x + rng.normal(0, err, t.size), y + rng.normal(0, err, t.size))
    tracks["sigma_m"] = err
    r = movement_ranges(tracks)
    d = r.daily
    assert len(d) >= 45
    truth = pd.Series(speed).groupby(tracks["time"].dt.floor("D").dt.date.astype(str).to_numpy()).mean() * 3.6
    hit = [(lo <= truth[day] <= hi) for day, lo, hi in zip(d["date"], d["speed_low_kmh"], d["speed_high_kmh"])]
    assert np.mean(hit) >= 0.8
    assert np.corrcoef(d["speed_kmh"], truth[d["date"]].to_numpy())[0, 1] > 0.6  # days told apart


def _tracks(t_s, x, y, animal="A", lon0=77.0, lat0=43.0) -> pd.DataFrame:
    """A canonical-enough table from planar metres around (lon0, lat0)."""
    lat = lat0 + y / 111_320.0
    lon = lon0 + x / (111_320.0 * math.cos(math.radians(lat0)))
    return pd.DataFrame({"animal_id": pd.Categorical([animal] * len(t_s)),
                         "time": pd.Timestamp("2022-01-01", tz="UTC") + pd.to_timedelta(t_s, unit="s"),
                         "lon": lon, "lat": lat, "flag": pd.Categorical([None] * len(t_s)),
                         "sigma_m": np.full(len(t_s), 15.0)})


def test_migrant_gets_seasonal_ranges_not_one_range_of_its_journey():
    rng = np.random.default_rng(8)
    t = np.arange(0, 200 * DAY, 3 * 3600.0)
    x, y = ctsim.simulate_cholesky("ou", t, 4e6, 2 * DAY, rng=rng) if t.size < 3000 else (None, None)
    # 90 days at home, 10 days' flight 1,500 km south, 100 days there
    leg = np.clip((t - 90 * DAY) / (10 * DAY), 0, 1)
    y = y - 1.5e6 * leg
    per = periods(t, x, y)
    assert [p.kind for p in per] == ["resident", "transit", "resident"]
    r = movement_ranges(_tracks(t, x, y))
    res = r.table[r.table["resident"]]
    assert len(res) == 2
    assert (res["akde95_km2"] < 300).all()  # each season ~ 6 π σ² = 75 km², not the 1,500 km journey
    # the transit is said to be one, with no range
    tr = r.table[r.table["kind"] == "transit"]
    assert len(tr) == 1 and tr["note"].str.contains("transit").all()


def test_walker_is_said_not_range_resident():
    rng = np.random.default_rng(9)
    t = ctsim.irregular_times(800, 4 * 3600.0, rng)
    x, y = ctsim.simulate_cholesky("bm", t, 5.0, rng=rng)
    x = x + np.linspace(0, 3e5, t.size)  # steady drift: a long walk
    r = movement_ranges(_tracks(t, x, y))
    row = r.table.iloc[0]
    assert not row["resident"] and np.isnan(row["akde95_km2"])
    assert "not range-resident" in "; ".join(r.table["note"])
    assert len(r.polygons) == 0


def test_shares_of_a_range_across_a_border():
    from telemetry.corridor.range_share import range_shares, zone_sizes

    rng = np.random.default_rng(12)
    t = ctsim.irregular_times(1500, 3600.0, rng)
    x, y = ctsim.simulate_cholesky("ou", t, 2.5e7, DAY, rng=rng)
    tracks = _tracks(t, x, y)
    r = movement_ranges(tracks)
    lon_c = float(np.median(tracks["lon"]))
    zones = gpd.GeoDataFrame({"zone": ["W", "E"], "name": ["West", "East"]},
                             geometry=[shapely.box(lon_c - 5, 40, lon_c, 46), shapely.box(lon_c, 40, lon_c + 5, 46)],
                             crs="EPSG:4326")
    zones.attrs["outside"] = "outside"
    s = range_shares(r, zones, kind="zone")
    assert s["share"].sum() == pytest.approx(1.0, abs=1e-9)  # non-overlapping zones: every bit counted once
    by = s.set_index("zone")
    for z in ("W", "E"):
        assert 0.3 < by.loc[z, "share"] < 0.7
        assert by.loc[z, "share_low"] < by.loc[z, "share"] < by.loc[z, "share_high"]
    # a reserve inside the eastern zone holds part of the range as well, on its own
    nested = pd.concat([zones, gpd.GeoDataFrame({"zone": ["R"], "name": ["Reserve"]},
                                                geometry=[shapely.box(lon_c, 42.9, lon_c + 0.05, 43.1)],
                                                crs="EPSG:4326")], ignore_index=True)
    nested.attrs["outside"] = "outside"
    s2 = range_shares(r, nested, kind="zone").set_index("zone")
    assert s2.loc["E", "share"] == pytest.approx(by.loc["E", "share"])
    assert 0 < s2.loc["R", "share"] < s2.loc["E", "share"]
    sizes = zone_sizes(nested, r.table).set_index("zone")
    assert sizes.loc["R", "smaller_than_median_range"] and not sizes.loc["E", "smaller_than_median_range"]


def test_population_range_weights_by_information():
    t = pd.DataFrame({"animal_id": ["a", "b", "c"], "akde95_km2": [100.0, 100.0, 400.0],
                      "n_area": [200.0, 200.0, 2.0], "resident": [True, True, True]})
    p = population_range(t)
    assert p["n_ranges"] == 3
    assert 100 <= p["area_km2"] < 200  # the poorly known 400 km² range weighs little
    assert p["low_km2"] < p["area_km2"] < p["high_km2"]
    assert math.isnan(population_range(t.assign(resident=False))["area_km2"])
