"""Tests of the step-length / turning-angle HMM (behavioural states)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyproj
import pytest
from scipy.special import logsumexp
from scipy.stats import gamma as gamma_dist
from scipy.stats import vonmises

from telemetry.trajectory import states as hs
from telemetry.trajectory.states import label_states, step_observations

FLAG = pd.CategoricalDtype(["duplicate", "speed"])
MU = np.array([60.0, 900.0])  # mean step (m) resting / moving
SD = np.array([45.0, 500.0])
KAPPA = np.array([0.3, 2.0])
MDIR = np.array([math.pi, 0.0])
GAMMA = np.array([[0.9, 0.1], [0.15, 0.85]])


def simulate_two_state(
    n_animals: int = 3, n: int = 1200, interval_s: float = 3600.0, miss: float = 0.1, gps_sd_m: float = 8.0, seed: int = 2
) -> pd.DataFrame:
    """A 2-state switching walk: gamma steps, von Mises turns, Markov states; 10 % fixes missed.

    The true state of a fix is the state that generated the step leaving it.
    """
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(n_animals):
        s = np.zeros(n, dtype=int)
        u = rng.random(n)
        for i in range(1, n):  # test-side simulation: a loop is fine here
            s[i] = int(u[i] > GAMMA[s[i - 1], 0])
        step = rng.gamma((MU / SD)[s] ** 2, (SD**2 / MU)[s])
        head = np.cumsum(rng.vonmises(MDIR[s], KAPPA[s]))
        x = np.r_[0.0, np.cumsum(step * np.cos(head))][:n] + rng.normal(0, gps_sd_m, n)
        y = np.r_[0.0, np.cumsum(step * np.sin(head))][:n] + rng.normal(0, gps_sd_m, n)
        t = 1.7e9 + np.arange(n) * interval_s + rng.uniform(0, 60, n)
        crs = pyproj.CRS.from_proj4(f"+proj=aeqd +lat_0={42.5 + 0.3 * k} +lon_0={77 + 0.4 * k} +ellps=WGS84")
        lon, lat = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(x, y)
        d = pd.DataFrame(
            {
                "animal_id": f"H{k}",
                "time": pd.to_datetime(t, unit="s", utc=True),
                "lon": lon,
                "lat": lat,
                "true_state": np.where(s == 0, "resting", "moving"),
            }
        )
        frames.append(d[rng.random(n) > miss])
    df = pd.concat(frames, ignore_index=True)
    df["flag"] = pd.Categorical([None] * len(df), dtype=FLAG)
    return df.sample(frac=1.0, random_state=1).reset_index(drop=True)


def test_forward_matches_brute_force_enumeration() -> None:
    """The numba forward likelihood equals the sum over all state paths (scipy densities)."""
    rng = np.random.default_rng(0)
    n, m = 7, 2
    step = rng.gamma(2.0, 100.0, n)
    step[3] = np.nan  # a missing step
    ang = rng.uniform(-math.pi, math.pi, n)
    ang[0] = np.nan
    kidx = np.array([0, 1, 2, 1, 0, 1, 1])  # a skipped epoch (Γ²) and a second segment
    theta = np.array([math.log(80), math.log(300), math.log(60), math.log(250), -0.2, 1.5, 0.1, -0.3, -2.0, -1.5])
    c = hs._unpack(theta, m, 2)
    ll = -hs._nll(theta, step, ang, kidx, m, 2)
    # reference emissions with scipy.stats
    shape, scale = (c["mu"] / c["sd"]) ** 2, c["sd"] ** 2 / c["mu"]
    kap, mdir = np.hypot(c["va"], c["vb"]), np.arctan2(c["vb"], c["va"])
    logb = np.zeros((n, m))
    for s in range(m):
        ok = np.isfinite(step)
        logb[ok, s] += gamma_dist.logpdf(step[ok], shape[s], scale=scale[s])
        ok = np.isfinite(ang)
        logb[ok, s] += vonmises.logpdf(ang[ok], kap[s], loc=mdir[s])
    g = c["gamma"]
    delta = np.linalg.matrix_power(g, 200)[0]
    total = 0.0
    for seg in (range(0, 4), range(4, 7)):
        idx = list(seg)
        paths = np.array(np.meshgrid(*[range(m)] * len(idx))).reshape(len(idx), -1).T
        lp = []
        for p in paths:
            v = math.log(delta[p[0]]) + logb[idx[0], p[0]]
            for a in range(1, len(idx)):
                gk = np.linalg.matrix_power(g, kidx[idx[a]])
                v += math.log(gk[p[a - 1], p[a]]) + logb[idx[a], p[a]]
            lp.append(v)
        total += logsumexp(lp)
    assert ll == pytest.approx(total, rel=1e-6)


def test_step_observations_geodesic_and_schedule() -> None:
    geod = pyproj.Geod(ellps="WGS84")
    t = pd.to_datetime([0, 3600, 7200, 14400, 18000], unit="s", utc=True)  # one missed fix
    lon = np.array([77.0, 77.01, 77.01, 77.02, 77.02])
    lat = np.array([43.0, 43.0, 43.01, 43.01, 43.02])
    df = pd.DataFrame({"animal_id": "a", "time": t, "lon": lon, "lat": lat})
    rows, a, step, turn, kidx = step_observations(df)
    np.testing.assert_array_equal(kidx, [0, 1, 1, 2, 1])
    assert step[0] == pytest.approx(geod.inv(77.0, 43.0, 77.01, 43.0)[2], abs=1e-6)  # 1 µm of Karney
    assert np.isnan(step[2])  # 2-hour step on a 1-hour schedule: missing observation
    assert np.isnan(step[4])  # last fix
    assert turn[1] == pytest.approx(math.pi / 2, abs=0.01)  # east then north: left turn
    assert np.isnan(turn[0]) and np.isnan(turn[2]) and np.isnan(turn[3])


def test_two_state_accuracy_and_parameters() -> None:
    df = simulate_two_state()
    df.loc[[0, 1], "flag"] = "speed"
    out = label_states(df)
    assert list(out.index) == list(df.index)
    assert list(out["state"].cat.categories) == ["resting", "moving"]
    assert out.loc[[0, 1], "state"].isna().all()
    ok = out["state"].notna()
    acc = float((out.loc[ok, "state"].astype(str) == df.loc[ok, "true_state"]).mean())
    print(f"\nsimulated 2-state accuracy: {acc:.3f}")
    assert acc >= 0.9
    np.testing.assert_allclose(out.loc[ok, ["p_resting", "p_moving"]].sum(axis=1), 1.0, atol=1e-9)
    for fit in out.attrs["states"].values():
        np.testing.assert_allclose(fit["step_mean_m"], MU, rtol=0.15)
        np.testing.assert_allclose(np.diag(fit["transition"]), np.diag(GAMMA), atol=0.06)
        assert fit["turn_kappa"][1] == pytest.approx(2.0, rel=0.2)


def test_three_states_are_ordered_by_step() -> None:
    df = simulate_two_state(n_animals=1, n=800, seed=4)
    out = label_states(df, n_states=3, n_starts=1)
    fit = next(iter(out.attrs["states"].values()))
    assert list(out["state"].cat.categories) == ["resting", "moving", "travelling"]
    assert np.all(np.diff(fit["step_mean_m"]) > 0)
    # the resting state survives as the slowest state
    ok = out["state"].notna()
    rest = (out.loc[ok, "state"] == "resting") == (df.loc[ok, "true_state"] == "resting")
    assert rest.mean() > 0.85


def _fit_theta(fit: dict) -> np.ndarray:
    """Fitted parameters of ``attrs["states"]`` → the unconstrained vector of the reference likelihood."""
    arr = {k: np.asarray(fit[k], dtype=float) for k in ("step_mean_m", "step_sd_m", "turn_kappa", "turn_mean_rad")}
    return hs._theta(arr["step_mean_m"], arr["step_sd_m"], arr["turn_kappa"], arr["turn_mean_rad"],
                     np.asarray(fit["transition"]))  # fmt: skip


def test_em_reaches_the_direct_maximum_likelihood() -> None:
    """EM's log-likelihood is the exact (log-space forward) one at its parameters, and direct numerical
    maximisation (the former fitter: L-BFGS-B on the forward likelihood) neither beats it from the
    quantile start nor improves it from the EM solution; the track has missed fixes (Γ², Γ³ steps)."""
    import scipy.optimize

    df = simulate_two_state(n_animals=1, n=700, seed=5)
    out = label_states(df)
    fit = next(iter(out.attrs["states"].values()))
    _, _, step, turn, kidx = step_observations(df)
    assert kidx.max() >= 2
    kmax = int(kidx.max())
    theta = _fit_theta(fit)
    assert fit["loglik"] == pytest.approx(-hs._nll(theta, step, turn, kidx, 2, kmax), rel=1e-10)

    def nll(th: np.ndarray) -> float:
        return hs._nll(np.asarray(th, dtype=float), step, turn, kidx, 2, kmax)

    q = np.quantile(step[np.isfinite(step)], [0.25, 0.75])
    x0 = hs._theta(q, 0.8 * q, np.array([0.3, 1.5]), np.array([math.pi, 0.0]), np.array([[0.9, 0.1], [0.1, 0.9]]))
    direct = scipy.optimize.minimize(nll, x0, method="L-BFGS-B")
    polish = scipy.optimize.minimize(nll, theta, method="L-BFGS-B")
    print(f"\nlog-likelihood EM {fit['loglik']:.4f}, direct {-direct.fun:.4f}, EM then direct {-polish.fun:.4f}")
    assert fit["loglik"] >= -direct.fun - 0.01
    assert -polish.fun - fit["loglik"] < 0.01


def test_m_step_special_functions() -> None:
    from scipy.special import digamma, i0e, i1e, polygamma
    from scipy.stats import gamma as gamma_dist

    for v in (0.05, 0.7, 3.0, 40.0):
        assert hs._digamma(v) == pytest.approx(digamma(v), rel=1e-10)
        assert hs._trigamma(v) == pytest.approx(polygamma(1, v), rel=1e-10)
    x = np.random.default_rng(3).gamma(2.5, 100.0, 5000)
    shape = hs._gamma_shape(math.log(x.mean()) - np.log(x).mean(), 1e-3, 1e6)
    assert shape == pytest.approx(gamma_dist.fit(x, floc=0)[0], rel=1e-4)
    assert hs._gamma_shape(0.0, 1e-3, 50.0) == 50.0  # all steps equal: the s.d. bound holds
    for k in (0.1, 1.0, 5.0, 30.0):
        assert hs._kappa(i1e(k) / i0e(k), 50.0) == pytest.approx(k, rel=1e-4)
    assert hs._kappa(0.0, 50.0) == 0.0 and hs._kappa(0.9999999, 50.0) == 50.0


def test_animals_are_fitted_independently() -> None:
    """The parallel kernel over all animals gives each the fit it gets alone; short tracks get NA."""
    df = simulate_two_state(n_animals=4, n=400, seed=8)
    keep = (df["animal_id"] != "H3") | (df.groupby("animal_id").cumcount() < 20)
    df = df[keep].reset_index(drop=True)
    out = label_states(df)
    assert sorted(out.attrs["states"]) == ["H0", "H1", "H2"]
    assert out.loc[df["animal_id"] == "H3", "state"].isna().all()
    one = df["animal_id"] == "H1"
    alone = label_states(df[one])
    assert alone.attrs["states"]["H1"]["loglik"] == pytest.approx(out.attrs["states"]["H1"]["loglik"], rel=1e-12)
    assert (alone["state"] == out.loc[one, "state"]).all()
    np.testing.assert_allclose(alone["p_moving"], out.loc[one, "p_moving"], atol=1e-12)


SAMPLE = Path(__file__).resolve().parents[1] / "sample_tracks"


@pytest.mark.skipif(not (SAMPLE / "truth" / "fixes.csv").exists(), reason="sample truth not generated yet")
def test_sample_two_state_accuracy() -> None:
    from tests.test_smooth import load_sample_with_truth

    df = load_sample_with_truth()
    out = label_states(df)
    ok = out["state"].notna() & df["state"].notna()
    truth = np.where(df.loc[ok, "state"].astype(str) == "resting", "resting", "moving")
    acc = float((out.loc[ok, "state"].astype(str).to_numpy() == truth).mean())
    print(f"\nsample 2-state accuracy vs truth: {acc:.3f} on {int(ok.sum())} fixes")
    assert acc >= 0.8
