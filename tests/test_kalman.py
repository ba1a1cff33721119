"""The Kalman kernels against independent references.

* exact transitions (F, Q) of the IOU and OUF processes against Van Loan's matrix-exponential
  method (scipy.linalg.expm) on the processes' stochastic differential equations;
* the numba filter, likelihood and RTS smoother (general F, the still regime, rows with nothing
  observed) against a plain dense-matrix Kalman filter + RTS smoother written here;
* every lane of a multi-lane likelihood pass against a pass of its own.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg

from telemetry.trajectory import kalman as kf


def van_loan(a: np.ndarray, g: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact F, Q of ds = A s dt + G dW over dt (Van Loan 1978)."""
    n = a.shape[0]
    blk = np.zeros((2 * n, 2 * n))
    blk[:n, :n] = -a
    blk[:n, n:] = g @ g.T
    blk[n:, n:] = a.T
    e = scipy.linalg.expm(blk * dt)
    f = e[n:, n:].T
    return f, f @ e[:n, n:]


@pytest.mark.parametrize("dt", [1e-3, 30.0, 600.0, 3600.0, 86400.0 * 3])
@pytest.mark.parametrize("tau", [60.0, 3600.0, 1e6])
def test_iou_transition_matches_van_loan(dt: float, tau: float) -> None:
    q = 0.04
    beta = 1.0 / tau
    tr = kf.transitions(np.array([dt]), np.array([0, 1]), np.array([kf.IOU]), np.array([np.inf]), np.array([tau]))[0]
    if dt / tau > 20:  # Van Loan's block exponential overflows: the large-dt limit
        np.testing.assert_allclose(tr[[1, 3, 4, 5, 6]] * [1, 1, q, q, q], [tau, 0, 2 * q * tau * (dt - 1.5 * tau), q * tau, q],
                                   rtol=1e-8, atol=1e-8)
        return
    f, qq = van_loan(np.array([[0.0, 1.0], [0.0, -beta]]), np.array([[0.0], [math.sqrt(2 * beta * q)]]), dt)
    np.testing.assert_allclose(tr[[0, 1, 2, 3]], f.ravel(), rtol=1e-9, atol=1e-10)
    scale = max(abs(qq).max(), 1e-300)
    np.testing.assert_allclose(q * tr[[4, 5, 6]], [qq[0, 0], qq[0, 1], qq[1, 1]], rtol=1e-6, atol=1e-9 * scale)
    assert tr[7] == dt and tr[8] == 1.0


@pytest.mark.parametrize("dt", [1.0, 600.0, 3600.0, 86400.0])
@pytest.mark.parametrize(("tau_p", "tau_v"), [(86400.0, 600.0), (7200.0, 3600.0), (5000.0, 4999.99999), (3600.0, 0.01)])
def test_ouf_transition_matches_van_loan(dt: float, tau_p: float, tau_v: float) -> None:
    sigma2 = 250_000.0  # range s.d. 500 m
    a, b = 1.0 / tau_p, 1.0 / tau_v
    tr = kf.transitions(np.array([dt]), np.array([0, 1]), np.array([kf.OUF]), np.array([tau_p]), np.array([tau_v]))[0]
    # x'' + (a + b) x' + a b x = noise; stationary var(x) = sigma2 needs noise intensity 2 a b (a + b) sigma2
    big_a = np.array([[0.0, 1.0], [-a * b, -(a + b)]])
    g = np.array([[0.0], [math.sqrt(2.0 * a * b * (a + b) * sigma2)]])
    f = scipy.linalg.expm(big_a * dt)
    np.testing.assert_allclose(tr[[0, 1, 2, 3]], f.ravel(), rtol=1e-7, atol=1e-12)
    if (a + b) * dt > 20:  # Van Loan's block exponential loses its accuracy (e^{+(a+b)dt} terms)
        expect = np.diag([1.0, a * b]) - f @ np.diag([1.0, a * b]) @ f.T
        np.testing.assert_allclose(tr[[4, 5, 6]], [expect[0, 0], expect[0, 1], expect[1, 1]], rtol=1e-9, atol=1e-15)
        return
    _, qq = van_loan(big_a, g, dt)
    np.testing.assert_allclose(sigma2 * tr[[4, 5, 6]], [qq[0, 0], qq[0, 1], qq[1, 1]], rtol=1e-5,
                               atol=1e-9 * max(abs(qq).max(), sigma2 * a * b))
    assert tr[8] == pytest.approx(a * b)


def dense_reference(tr, zx, zy, r, start, w, sc, om, ds):
    """Textbook 4-state Kalman filter + RTS smoother with explicit matrices, the still regime
    written as its own F and Q, rows with r = inf propagated only."""
    n = len(zx)
    hmat = np.zeros((2, 4))
    hmat[0, 0] = hmat[1, 2] = 1.0
    mf, pf = np.zeros((n, 4)), np.zeros((n, 4, 4))
    mp, pp, fs = np.zeros((n, 4)), np.zeros((n, 4, 4)), np.zeros((n, 4, 4))
    first = np.zeros(n, bool)
    ll, on = 0.0, False
    for i in range(n):
        if start[i] or i == 0:
            on = False
        if not on:
            first[i] = True
            if not np.isfinite(r[i]):
                mf[i] = np.nan
                pf[i] = np.nan
                continue
            on = True
            mf[i] = [zx[i], 0, zy[i], 0]
            pf[i] = np.diag([r[i], sc * tr[i, 8], r[i], sc * tr[i, 8]])
            continue
        ww = om * w[i]
        f_act = tr[i, :4].reshape(2, 2)
        q_act = sc * np.array([[tr[i, 4], tr[i, 5]], [tr[i, 5], tr[i, 6]]])
        f_still = np.array([[1.0, 0.0], [0.0, 0.0]])
        q_still = np.array([[ds * tr[i, 7], 0.0], [0.0, sc * tr[i, 8]]])
        f1 = ww * f_still + (1 - ww) * f_act
        q1 = ww * q_still + (1 - ww) * q_act
        f = scipy.linalg.block_diag(f1, f1)
        qq = scipy.linalg.block_diag(q1, q1)
        fs[i] = f
        mp[i] = f @ mf[i - 1]
        pp[i] = f @ pf[i - 1] @ f.T + qq
        if not np.isfinite(r[i]):
            mf[i], pf[i] = mp[i], pp[i]
            continue
        s = hmat @ pp[i] @ hmat.T + r[i] * np.eye(2)
        k = pp[i] @ hmat.T @ np.linalg.inv(s)
        nu = np.array([zx[i], zy[i]]) - hmat @ mp[i]
        ll += -0.5 * (np.log(np.linalg.det(2 * np.pi * s)) + nu @ np.linalg.solve(s, nu))
        mf[i] = mp[i] + k @ nu
        pf[i] = (np.eye(4) - k @ hmat) @ pp[i]
    ms, ps = mf.copy(), pf.copy()
    for i in range(n - 2, -1, -1):
        if first[i + 1]:
            continue
        g = pf[i] @ fs[i + 1].T @ np.linalg.inv(pp[i + 1])
        ms[i] = mf[i] + g @ (ms[i + 1] - mp[i + 1])
        ps[i] = pf[i] + g @ (ps[i + 1] - pp[i + 1]) @ g.T
    return ms[:, 0], ms[:, 2], ps[:, 0, 0], ll


@pytest.mark.parametrize("kind", [kf.IOU, kf.OUF])
@pytest.mark.parametrize("still", [False, True])
def test_kernels_match_dense_reference(kind: int, still: bool) -> None:
    rng = np.random.default_rng(5 + kind + 2 * still)
    n = 70
    t = np.cumsum(rng.uniform(60, 7200, n))
    dt = np.r_[0.0, np.diff(t)]
    zx = np.cumsum(rng.normal(0, 200, n))
    zy = np.cumsum(rng.normal(0, 200, n))
    r = rng.uniform(5, 60, n) ** 2
    r[[10, 11, 40]] = np.inf  # times without a fix (prediction rows)
    r[26] = np.inf  # a segment that starts with one
    start = np.zeros(n, bool)
    start[[0, 25, 26, 50]] = True  # a one-fix segment too
    w = (rng.random(n) < 0.4).astype(float) if still else np.zeros(n)
    sc, ds = (0.05, 0.02) if kind == kf.IOU else (4e5, 0.02)
    tr = kf.transitions(dt, np.array([0, n]), np.array([kind]), np.array([30_000.0]), np.array([1800.0]))
    x, y, var = kf.smooth_all(tr, zx, zy, r, start, w, np.array([0, n]), np.array([sc]), np.array([1.0]),
                              np.array([ds]))
    ll = kf.loglik_lanes(tr, zx, zy, r, start, w, np.array([0, n]), np.array([[sc]]), np.array([[1.0]]),
                         np.array([[ds]]))[0, 0]
    rx, ry, rvar, rll = dense_reference(tr, zx, zy, r, start, w, sc, 1.0, ds)
    np.testing.assert_allclose(x, rx, rtol=0, atol=1e-6)
    np.testing.assert_allclose(y, ry, rtol=0, atol=1e-6)
    np.testing.assert_allclose(var, rvar, rtol=1e-7)
    assert ll == pytest.approx(rll, rel=1e-10)
    if still:  # a still step with no drift holds the position exactly
        held = np.flatnonzero((w > 0) & ~start & np.isfinite(r) & np.r_[False, np.isfinite(r[:-1])])
        x0, _, _ = kf.smooth_all(tr, zx, zy, r, start, w, np.array([0, n]), np.array([sc]), np.array([1.0]),
                                 np.array([0.0]))
        np.testing.assert_allclose(x0[held], x0[held - 1], atol=1e-6)


def test_lanes_equal_single_passes() -> None:
    rng = np.random.default_rng(11)
    sizes = [1, 2, 40, 300]
    bounds = np.r_[0, np.cumsum(sizes)]
    n = bounds[-1]
    dt = rng.uniform(60, 7200, n)
    zx = np.cumsum(rng.normal(0, 200, n))
    zy = np.cumsum(rng.normal(0, 200, n))
    r = rng.uniform(5, 60, n) ** 2
    start = np.zeros(n, bool)
    start[bounds[:-1]] = True
    w = (rng.random(n) < 0.3).astype(float)
    sel = rng.random(n) < 0.5
    k = len(sizes)
    tr = kf.transitions(dt, bounds, np.array([kf.IOU, kf.OUF, kf.IOU, kf.OUF]), np.full(k, 40_000.0), np.full(k, 900.0))
    lanes = 7
    sc = np.exp(rng.uniform(-8, 12, (k, lanes)))
    om = (rng.random((k, lanes)) < 0.5).astype(float)
    ds = np.exp(rng.uniform(-8, 1, (k, lanes)))
    rs = np.exp(rng.uniform(-1, 1, (k, lanes)))
    many = kf.loglik_lanes(tr, zx, zy, r, start, w, bounds, sc, om, ds, rs, sel)
    for j in range(lanes):
        one = kf.loglik_lanes(tr, zx, zy, r, start, w, bounds, sc[:, [j]], om[:, [j]], ds[:, [j]], rs[:, [j]], sel)
        np.testing.assert_array_equal(many[:, j], one[:, 0])
        # the error scale lane equals scaling those rows' variance directly
        direct = kf.loglik_lanes(tr, zx, zy, np.where(sel, r * rs[:, [j]].repeat(sizes, axis=0)[:, 0], r), start, w,
                                 bounds, sc[:, [j]], om[:, [j]], ds[:, [j]])
        np.testing.assert_allclose(one[:, 0], direct[:, 0], rtol=1e-12)
