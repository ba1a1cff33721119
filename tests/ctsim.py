"""Simulated tracks from continuous-time movement models, written apart from the fitter.

No code of :mod:`telemetry.trajectory.ctmm` is used: positions are drawn exactly at
irregular times, either from the full covariance matrix of the process (Cholesky; exact for
any model with a closed-form autocovariance) or, for long tracks, from the OU/OUF
processes' exact one-step transitions written out here from their stochastic differential
equations (Gardiner, Handbook of Stochastic Methods, §4.4 — the velocity of an OUF is an OU
process and the position its integral pulled back to the mean).

Used by ``tests/test_ctmm.py`` and ``scripts/validate.py --ctmm`` to check that the
fitted parameters and the 95 % area CIs cover the truth.
"""

from __future__ import annotations

import math

import numpy as np


def irregular_times(n: int, dt_s: float, rng: np.random.Generator, jitter: float = 0.3,
                    miss: float = 0.1) -> np.ndarray:
    """``n`` fix times (s): a schedule of ``dt_s`` with jitter and ~``miss`` failed fixes."""
    k = np.arange(int(n / (1 - miss)) + 10)
    keep = rng.random(k.size) > miss
    t = (k[keep] + rng.uniform(-jitter / 2, jitter / 2, keep.sum())) * dt_s
    return np.sort(t[:n])


def true_acf(model: str, lag: np.ndarray, tau_p: float, tau_v: float) -> np.ndarray:
    """Autocorrelation of the position (dimensionless) at ``lag`` (s)."""
    lag = np.abs(lag)
    if model == "iid":
        return (lag == 0).astype(float)
    if model == "ou":
        return np.exp(-lag / tau_p)
    if model == "ouf":
        return (tau_p * np.exp(-lag / tau_p) - tau_v * np.exp(-lag / tau_v)) / (tau_p - tau_v)
    raise ValueError(model)


def simulate_cholesky(model: str, t: np.ndarray, sigma2: float, tau_p: float = math.nan,
                      tau_v: float = math.nan, err_sd: np.ndarray | float = 0.0,
                      rng: np.random.Generator | None = None, ratio: float = 1.0,
                      theta: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Positions (m) at times ``t`` from the stationary process's covariance, mean 0.

    ``sigma2`` is ``√det Σ`` (m²); ``ratio`` the major/minor variance ratio; ``theta`` the
    major axis's angle. Error ``N(0, err_sd²)`` per axis is added. Exact (O(n³)): n ≲ 3000.
    """
    rng = rng or np.random.default_rng()
    if model == "bm":
        dt = np.diff(t, prepend=t[0])
        steps = rng.normal(size=(2, t.size)) * np.sqrt(sigma2 * dt)
        u, w = np.cumsum(steps, axis=1)
    else:
        c = true_acf(model, t[:, None] - t[None, :], tau_p, tau_v)
        chol = np.linalg.cholesky(c + 1e-10 * np.eye(t.size))
        g = chol @ rng.normal(size=(t.size, 2))
        u = g[:, 0] * math.sqrt(sigma2 * math.sqrt(ratio))
        w = g[:, 1] * math.sqrt(sigma2 / math.sqrt(ratio))
    x = math.cos(theta) * u - math.sin(theta) * w
    y = math.sin(theta) * u + math.cos(theta) * w
    e = np.broadcast_to(np.asarray(err_sd, dtype=float), t.shape)
    return x + rng.normal(size=t.size) * e, y + rng.normal(size=t.size) * e


def simulate_ouf_steps(t: np.ndarray, sigma2: float, tau_p: float, tau_v: float,
                       rng: np.random.Generator, velocity: bool = False) -> tuple[np.ndarray, ...]:
    """Isotropic OUF positions (m) at times ``t`` by exact transitions (any length); with
    ``velocity`` also the true speed (m/s) at each time."""
    # the pair (x, v) obeys dx = v dt, dv = -(x/(τp τv) + v (1/τp + 1/τv)) dt + noise; its
    # transition over Δt is exp(AΔt), its noise S - Φ S Φᵀ with S the stationary covariance;
    # both once per distinct interval (schedules repeat a few intervals)
    a = np.array([[0.0, 1.0], [-1.0 / (tau_p * tau_v), -(1.0 / tau_p + 1.0 / tau_v)]])
    s = np.diag([sigma2, sigma2 / (tau_p * tau_v)])
    ev, vec = np.linalg.eig(a)
    inv = np.linalg.inv(vec)
    dts, which = np.unique(np.diff(t), return_inverse=True)
    phis = np.real(np.einsum("ij,kj,jl->kil", vec, np.exp(np.outer(dts, ev)), inv))
    qs = s[None] - phis @ s @ np.transpose(phis, (0, 2, 1))
    chol = np.linalg.cholesky((qs + np.transpose(qs, (0, 2, 1))) / 2 + 1e-12 * sigma2 * np.eye(2))
    g = rng.standard_normal((t.size, 2, 2))
    state = rng.multivariate_normal([0, 0], s, size=2)  # (axis, [x, v])
    out = np.empty((t.size, 2, 2))
    out[0] = state
    for i in range(1, t.size):
        k = which[i - 1]
        state = state @ phis[k].T + g[i] @ chol[k].T
        out[i] = state
    if velocity:
        return out[:, 0, 0], out[:, 1, 0], np.hypot(out[:, 0, 1], out[:, 1, 1])
    return out[:, 0, 0], out[:, 1, 0]


def gaussian_area(sigma2: float, level: float = 0.95) -> float:
    """True area (m²) of the ``level`` ellipse of a Gaussian range with ``√det Σ = sigma2``."""
    return -2.0 * math.log(1.0 - level) * math.pi * sigma2
