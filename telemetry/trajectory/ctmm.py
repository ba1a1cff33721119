"""Continuous-time movement models fitted to one animal's fixes: IID, BM, OU and OUF.

The models of Fleming et al. (2014, 2015) and the R package ctmm, for the 2-D position
``x(t)`` of an animal observed at irregular times with location error:

* **IID**: independent draws from a bivariate Gaussian range (no autocorrelation);
* **BM**: Brownian motion, diffusion ``σ`` (m²/s per axis) — no range;
* **OU**: Ornstein–Uhlenbeck position, range covariance ``Σ`` and range-crossing time ``τ_p``;
* **OUF**: OU position with an autocorrelated (OU) velocity, ``τ_p`` and ``τ_v``; the
  only model with a finite speed.

Each fix ``i`` observes ``x(t_i)`` plus an error ``N(0, r_i I₂)`` whose variance ``r_i``
(m² per axis) comes from the error model of :mod:`telemetry.trajectory.error_model`
(``sigma_m``), so error and movement are not confounded (Fleming et al. 2020).

The likelihood is exact (a Kalman filter on the models' exact discretisation at the fix
times, :func:`_kalman_sums`), with the mean location concentrated out by generalised
least squares and the REML correction for it (the variance's small-sample bias is that of
the mean's estimation; Fleming et al. 2019's perturbative correction is not applied). The
range covariance ``Σ`` is isotropic (``σ² I``) or anisotropic (axes rotated by ``θ``,
variances ``σ²·e^{±ε}``); with isotropic error both cases split into two independent 1-D
filters. Models are compared by AICc (the selection of ``ctmm.select``). Parameter CIs come
from the observed information (numerical Hessian of the log-likelihood in log parameters).

The effective sample size for area, ``N_area``, is the information about the range's
variance: ``N_area = 1 / Var(log σ̂²_area)`` (``σ²_area = √det Σ``), which is ``n`` for
IID fixes; the area's CI is the scaled χ² with ``2 N_area`` degrees of freedom, as in ctmm.

References
----------
Fleming, C. H. et al. (2014). From fine-scale foraging to home ranges: a semivariance
approach to identifying movement modes across spatiotemporal scales. Am. Nat. 183:E154.
Fleming, C. H. et al. (2015). Rigorous home range estimation with movement data: a new
autocorrelated kernel density estimator. Ecology 96:1182–1188.
Fleming, C. H. et al. (2020). A comprehensive framework for handling location error in
animal tracking data. bioRxiv 2020.06.12.130195.
Calabrese, J. M., Fleming, C. H. & Gurarie, E. (2016). ctmm: an R package for analyzing
animal relocation data as a continuous-time stochastic process. Methods Ecol. Evol. 7:1124.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np

from telemetry.trajectory.kalman import chol2, phi_apply, rts_cov, rts_gain

__all__ = ["MODELS", "MovementFit", "fit_models", "refit", "select_model", "simulate", "velocity_smoother", "autocorrelation", "mean_speed"]

MODELS: tuple[str, ...] = ("iid", "bm", "ou", "ouf")
_CODE = {"iid": 0, "bm": 1, "ou": 2, "ouf": 3}
_LOG_2PI = math.log(2.0 * math.pi)


@numba.njit(cache=True, nogil=True, inline="always")
def _ouf_transition(l1: float, l2: float, dt: float) -> tuple[float, float, float, float]:
    """Exact OUF transition ``Φ = exp(A Δt)``, ``A = [[0, 1], [−λ₁λ₂, λ₁ + λ₂]]`` with the eigenvalues
    ``λ₁ = −1/τ_p`` and ``λ₂ = −1/τ_v`` (distinct): its entries ``(Φ00, Φ01, Φ10, Φ11)``."""
    e1 = math.exp(l1 * dt)
    e2 = math.exp(l2 * dt)
    d = l1 - l2
    return (l1 * e2 - l2 * e1) / d, (e1 - e2) / d, l1 * l2 * (e2 - e1) / d, (l1 * e1 - l2 * e2) / d


@numba.njit(cache=True, nogil=True, inline="always")
def _ouf_predict(f00: float, f01: float, f10: float, f11: float, p00: float, p01: float, p11: float,
                 var: float, sv: float) -> tuple[float, float, float]:
    """Predicted state covariance ``Φ (P − S) Φᵀ + S`` of a stationary process with stationary
    covariance ``S = diag(var, sv)`` (so the noise is ``S − Φ S Φᵀ``)."""
    q00 = p00 - var
    q11 = p11 - sv
    b00 = f00 * q00 + f01 * p01
    b01 = f00 * p01 + f01 * q11
    b10 = f10 * q00 + f11 * p01
    b11 = f10 * p01 + f11 * q11
    return b00 * f00 + b01 * f01 + var, b00 * f10 + b01 * f11, b10 * f10 + b11 * f11 + sv


@numba.njit(cache=True, nogil=True, inline="always")
def _ouf_correct(p00: float, p01: float, p11: float, f: float) -> tuple[float, float, float, float, float]:
    """Kalman gains ``(k0, k1)`` of a position fix with innovation variance ``f`` and the
    corrected state covariance ``(P00, P01, P11)``."""
    k0 = p00 / f
    k1 = p01 / f
    return k0, k1, p00 - k0 * p00, p01 - k0 * p01, p11 - k1 * p01


@numba.njit(cache=True, nogil=True)
def _kalman_sums(code: int, t: np.ndarray, z: np.ndarray, r: np.ndarray, var: float, tau_p: float,
                 tau_v: float) -> tuple[float, float, float, float, int]:
    """Innovation sums of one axis under one model, for the mean concentrated out.

    ``z`` are the coordinates (m), ``t`` the times (s, non-decreasing), ``r`` the error
    variances (m²). Two filters share their covariances: one on ``z`` and one on a column of
    ones (the mean's regressor), so the innovations for a mean ``μ`` are ``v_z - μ v_1``.
    Returns ``(Σ log F, Σ v_z²/F, Σ v_1 v_z/F, Σ v_1²/F, m)`` over the ``m`` innovations used
    (BM conditions on its first fix instead of a mean: its ``v_1`` sums are 0).
    """
    n = z.size
    logdet = 0.0
    szz = 0.0
    s1z = 0.0
    s11 = 0.0
    m = 0
    tiny = 1e-12 * var + 1e-12
    if code == 0:  # IID
        for i in range(n):
            f = var + r[i] + tiny
            logdet += math.log(f)
            szz += z[i] * z[i] / f
            s1z += z[i] / f
            s11 += 1.0 / f
            m += 1
        return logdet, szz, s1z, s11, m
    if code == 1:  # BM, diffuse start: condition on the first fix
        xz = z[0]
        p = r[0] + tiny
        for i in range(1, n):
            p += var * (t[i] - t[i - 1])
            f = p + r[i] + tiny
            v = z[i] - xz
            logdet += math.log(f)
            szz += v * v / f
            k = p / f
            xz += k * v
            p = p * (1.0 - k)
            m += 1
        return logdet, szz, 0.0, 0.0, m
    if code == 2:  # OU
        xz = 0.0
        x1 = 0.0
        p = var
        for i in range(n):
            if i > 0:
                a = math.exp(-(t[i] - t[i - 1]) / tau_p)
                xz *= a
                x1 *= a
                p = a * a * p + var * (1.0 - a * a)
            f = p + r[i] + tiny
            vz = z[i] - xz
            v1 = 1.0 - x1
            logdet += math.log(f)
            szz += vz * vz / f
            s1z += v1 * vz / f
            s11 += v1 * v1 / f
            k = p / f
            xz += k * vz
            x1 += k * v1
            p = p * (1.0 - k)
            m += 1
        return logdet, szz, s1z, s11, m
    # OUF: state (position, velocity), stationary covariance S = diag(var, var / (tau_p tau_v));
    # exact transition Φ = exp(A Δt) for A = [[0, 1], [-1/(τp τv), -(1/τp + 1/τv)]], Q = S - Φ S Φᵀ
    l1 = -1.0 / tau_p
    l2 = -1.0 / tau_v
    sv = var / (tau_p * tau_v)
    xz0 = 0.0
    xz1 = 0.0
    x10 = 0.0
    x11 = 0.0
    p00 = var
    p01 = 0.0
    p11 = sv
    for i in range(n):
        if i > 0:
            dt = t[i] - t[i - 1]
            f00, f01, f10, f11 = _ouf_transition(l1, l2, dt)
            xz0, xz1 = phi_apply(f00, f01, f10, f11, xz0, xz1)
            x10, x11 = phi_apply(f00, f01, f10, f11, x10, x11)
            p00, p01, p11 = _ouf_predict(f00, f01, f10, f11, p00, p01, p11, var, sv)
        if p00 < 0.0:
            p00 = 0.0
        f = p00 + r[i] + tiny
        vz = z[i] - xz0
        v1 = 1.0 - x10
        logdet += math.log(f)
        szz += vz * vz / f
        s1z += v1 * vz / f
        s11 += v1 * v1 / f
        k0, k1, p00, p01, p11 = _ouf_correct(p00, p01, p11, f)
        xz0 += k0 * vz
        xz1 += k1 * vz
        x10 += k0 * v1
        x11 += k1 * v1
        m += 1
    return logdet, szz, s1z, s11, m


@numba.njit(cache=True, nogil=True)
def _simulate_axis(code: int, t: np.ndarray, var: float, tau_p: float, tau_v: float, g: np.ndarray) -> np.ndarray:
    """One axis of the process at times ``t`` (s) from standard normals ``g`` (shape ``(n, 2)``),
    by the exact transitions the filter uses; stationary start (BM starts at 0)."""
    n = t.size
    out = np.empty(n)
    if code == 0:
        for i in range(n):
            out[i] = math.sqrt(var) * g[i, 0]
        return out
    if code == 1:
        x = 0.0
        for i in range(n):
            if i > 0:
                x += math.sqrt(var * (t[i] - t[i - 1])) * g[i, 0]
            out[i] = x
        return out
    if code == 2:
        x = math.sqrt(var) * g[0, 0]
        out[0] = x
        for i in range(1, n):
            a = math.exp(-(t[i] - t[i - 1]) / tau_p)
            x = a * x + math.sqrt(var * (1.0 - a * a)) * g[i, 0]
            out[i] = x
        return out
    l1 = -1.0 / tau_p
    l2 = -1.0 / tau_v
    sv = var / (tau_p * tau_v)
    x = math.sqrt(var) * g[0, 0]
    v = math.sqrt(sv) * g[0, 1]
    out[0] = x
    for i in range(1, n):
        dt = t[i] - t[i - 1]
        f00, f01, f10, f11 = _ouf_transition(l1, l2, dt)
        # noise covariance Q = S - Φ S Φᵀ (the prediction from a known state), drawn through its
        # Cholesky factor
        q00, q01, q11 = _ouf_predict(f00, f01, f10, f11, 0.0, 0.0, 0.0, var, sv)
        (c00, c10), c11 = chol2(q00, q01, q11)
        x, v = phi_apply(f00, f01, f10, f11, x, v)
        x += c00 * g[i, 0]
        v += c10 * g[i, 0] + c11 * g[i, 1]
        out[i] = x
    return out


@numba.njit(cache=True, nogil=True)
def _ouf_rts(t: np.ndarray, z: np.ndarray, r: np.ndarray, var: float, tau_p: float,
             tau_v: float, g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Smoothed velocity mean (m/s) and variance ((m/s)²) at each fix of one axis of an OUF
    process with known mean 0 (Kalman filter, then Rauch–Tung–Striebel backwards), and
    velocity paths drawn from the smoothing distribution (forward filtering, backward
    sampling; Carter & Kohn 1994), one per slice ``g[k]`` of standard normals ``(K, n, 2)``."""
    n = z.size
    l1 = -1.0 / tau_p
    l2 = -1.0 / tau_v
    sv = var / (tau_p * tau_v)
    fm = np.empty((n, 2))   # filtered mean
    fp = np.empty((n, 3))   # filtered covariance (00, 01, 11)
    pm = np.empty((n, 2))   # predicted mean
    pp = np.empty((n, 3))   # predicted covariance
    ph = np.empty((n, 4))   # transition into fix i
    x0 = 0.0
    x1 = 0.0
    p00 = var
    p01 = 0.0
    p11 = sv
    for i in range(n):
        if i > 0:
            dt = t[i] - t[i - 1]
            f00, f01, f10, f11 = _ouf_transition(l1, l2, dt)
            x0, x1 = phi_apply(f00, f01, f10, f11, x0, x1)
            p00, p01, p11 = _ouf_predict(f00, f01, f10, f11, p00, p01, p11, var, sv)
        else:
            f00, f01, f10, f11 = 1.0, 0.0, 0.0, 1.0
        ph[i, 0], ph[i, 1], ph[i, 2], ph[i, 3] = f00, f01, f10, f11
        pm[i, 0], pm[i, 1] = x0, x1
        pp[i, 0], pp[i, 1], pp[i, 2] = p00, p01, p11
        f = p00 + r[i] + 1e-12 * var + 1e-12
        v = z[i] - x0
        k0, k1, p00, p01, p11 = _ouf_correct(p00, p01, p11, f)
        x0 += k0 * v
        x1 += k1 * v
        fm[i, 0], fm[i, 1] = x0, x1
        fp[i, 0], fp[i, 1], fp[i, 2] = p00, p01, p11
    vm = np.empty(n)
    vv = np.empty(n)
    kk = g.shape[0]
    draw = np.empty((kk, n, 2))
    for k in range(kk):
        a, b = chol2(fp[n - 1, 0], fp[n - 1, 1], fp[n - 1, 2])
        draw[k, n - 1, 0] = fm[n - 1, 0] + a[0] * g[k, n - 1, 0]
        draw[k, n - 1, 1] = fm[n - 1, 1] + a[1] * g[k, n - 1, 0] + b * g[k, n - 1, 1]
    s0, s1 = fm[n - 1, 0], fm[n - 1, 1]
    c00, c01, c11 = fp[n - 1, 0], fp[n - 1, 1], fp[n - 1, 2]
    vm[n - 1], vv[n - 1] = s1, c11
    for i in range(n - 2, -1, -1):
        f00, f01, f10, f11 = ph[i + 1, 0], ph[i + 1, 1], ph[i + 1, 2], ph[i + 1, 3]
        a00, a01, a11 = fp[i, 0], fp[i, 1], fp[i, 2]
        q00, q01, q11 = pp[i + 1, 0], pp[i + 1, 1], pp[i + 1, 2]
        g00, g01, g10, g11 = rts_gain(a00, a01, a11, f00, f01, f10, f11, q00, q01, q11)
        d0, d1 = phi_apply(g00, g01, g10, g11, s0 - pm[i + 1, 0], s1 - pm[i + 1, 1])
        s0, s1 = fm[i, 0] + d0, fm[i, 1] + d1
        # P_s = P_i + G (Ps_{i+1} - P⁻_{i+1}) Gᵀ
        c00, c01, c11 = rts_cov(a00, a01, a11, g00, g01, g10, g11, c00 - q00, c01 - q01, c11 - q11)
        vm[i], vv[i] = s1, max(c11, 0.0)
        # backward sampling: x_i | x_{i+1} ~ N(m_i + G (x_{i+1} - m⁻_{i+1}), P_i - G P⁻_{i+1} Gᵀ)
        w00, w01, w11 = rts_cov(a00, a01, a11, g00, g01, g10, g11, -q00, -q01, -q11)
        a, b = chol2(w00, w01, w11)
        for k in range(kk):
            d0, d1 = phi_apply(g00, g01, g10, g11, draw[k, i + 1, 0] - pm[i + 1, 0], draw[k, i + 1, 1] - pm[i + 1, 1])
            draw[k, i, 0] = fm[i, 0] + d0 + a[0] * g[k, i, 0]
            draw[k, i, 1] = fm[i, 1] + d1 + a[1] * g[k, i, 0] + b * g[k, i, 1]
    return vm, vv, draw[:, :, 1].copy()




def _axis_loglik(code: int, t: np.ndarray, z: np.ndarray, r: np.ndarray, var: float, tau_p: float,
                 tau_v: float) -> tuple[float, float]:
    """REML log-likelihood of one axis and the GLS mean (m) of that axis (NaN for BM)."""
    logdet, szz, s1z, s11, m = _kalman_sums(code, t, z, r, var, tau_p, tau_v)
    if code == 1:
        return -0.5 * (logdet + szz + m * _LOG_2PI), math.nan
    mu = s1z / s11
    quad = szz - s1z * mu
    # REML: the mean's information enters as -½ log Σ v₁²/F; the mean costs one observation
    return -0.5 * (logdet + quad + (m - 1) * _LOG_2PI + math.log(s11)), mu


@dataclass
class MovementFit:
    """One fitted movement model of one animal (or one resident period).

    Attributes
    ----------
    model : str
        ``"iid"``, ``"bm"``, ``"ou"`` or ``"ouf"``.
    isotropic : bool
        Circular range covariance (else elliptical, rotated by ``theta_rad``).
    loglik, aicc : float
        REML log-likelihood and its AICc.
    k : int
        Number of estimated parameters (means included).
    n : int
        Number of fixes.
    var_m2 : float
        ``σ²_area = √det Σ`` (m²): range variance (OU/OUF/IID) or diffusion (m²/s, BM).
    log_ratio, theta_rad : float
        Anisotropy: axis variances ``var_m2·e^{±log_ratio/2}``, major axis at ``theta_rad``
        from the x axis (0, 0 when isotropic).
    tau_p_s, tau_v_s : float
        Range-crossing and velocity autocorrelation times (s); NaN where the model has none.
    mean_xy : tuple of float
        GLS mean position (m, projected), NaN for BM.
    cov : ndarray
        Covariance of the estimated log parameters (``theta`` in radians), from the Hessian.
    names : tuple of str
        Names of those parameters: ``log_var``, ``log_ratio``, ``theta``, ``log_tau_p``, ``log_tau_v``.
    params : ndarray
        The estimated parameters in that order.
    at_bound : bool
        A time scale ended on the search's bound (the data do not resolve it).
    """

    model: str
    isotropic: bool
    loglik: float
    aicc: float
    k: int
    n: int
    var_m2: float
    log_ratio: float
    theta_rad: float
    tau_p_s: float
    tau_v_s: float
    mean_xy: tuple[float, float]
    cov: np.ndarray
    names: tuple[str, ...]
    params: np.ndarray
    at_bound: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """Model label as ctmm prints it, e.g. ``"OUF anisotropic"``."""
        return f"{self.model.upper()} {'isotropic' if self.isotropic else 'anisotropic'}"

    @property
    def resident(self) -> bool:
        """A model with a finite range (IID, OU, OUF), i.e. a range-resident animal."""
        return self.model != "bm"

    def sd(self, name: str) -> float:
        """Standard error of the log parameter ``name`` (NaN if absent or not estimable)."""
        if name not in self.names:
            return math.nan
        j = self.names.index(name)
        v = self.cov[j, j] if self.cov.size else math.nan
        return math.sqrt(v) if np.isfinite(v) and v > 0 else math.nan

    @property
    def n_area(self) -> float:
        """Effective sample size for area, ``1 / Var(log σ̂²_area)`` (``n`` for IID fixes)."""
        s = self.sd("log_var")
        return 1.0 / (s * s) if np.isfinite(s) and s > 0 else math.nan

    def axis_vars(self) -> tuple[float, float]:
        """Variances (m²) along the major and minor axes of the range."""
        return self.var_m2 * math.exp(self.log_ratio / 2.0), self.var_m2 * math.exp(-self.log_ratio / 2.0)

    def gaussian_area_m2(self, level_pct: float = 95.0) -> float:
        """Area (m²) of the ``level_pct`` % ellipse of the fitted Gaussian range (NaN for BM)."""
        if not self.resident:
            return math.nan
        return -2.0 * math.log(1.0 - level_pct / 100.0) * math.pi * self.var_m2


def autocorrelation(fit: MovementFit, lag_s: np.ndarray) -> np.ndarray:
    """Position autocorrelation ``ρ(lag)`` of a range-resident model (1 at lag 0).

    >>> f = MovementFit("ou", True, 0, 0, 2, 10, 1.0, 0, 0, 100.0, math.nan, (0, 0), np.zeros((0, 0)), (), np.zeros(0))
    >>> round(float(autocorrelation(f, np.array([100.0]))[0]), 4)
    0.3679
    """
    lag = np.abs(np.asarray(lag_s, dtype=float))
    if fit.model == "iid":
        return (lag == 0).astype(float)
    if fit.model == "ou":
        return np.exp(-lag / fit.tau_p_s)
    if fit.model == "ouf":
        tp, tv = fit.tau_p_s, fit.tau_v_s
        if abs(tp - tv) < 1e-9 * tp:
            return (1.0 + lag / tp) * np.exp(-lag / tp)
        return (tp * np.exp(-lag / tp) - tv * np.exp(-lag / tv)) / (tp - tv)
    raise ValueError("Brownian motion has no stationary autocorrelation")


def mean_speed(fit: MovementFit, params: np.ndarray | None = None) -> float:
    """Stationary mean speed (m/s) of an OUF model: ``E|v|`` of its Gaussian velocity.

    The velocity covariance is ``Σ / (τ_p τ_v)``; for axis variances ``a, b`` its mean norm is
    ``√(π/2) · (1/2π) ∫ √(a cos²φ + b sin²φ) dφ`` (a Rayleigh radius times the mean axis scale).
    """
    p = fit.params if params is None else params
    vals = dict(zip(fit.names, p))
    var = math.exp(vals["log_var"])
    lr = vals.get("log_ratio", 0.0)
    tp, tv = math.exp(vals["log_tau_p"]), math.exp(vals["log_tau_v"])
    a, b = var * math.exp(lr / 2) / (tp * tv), var * math.exp(-lr / 2) / (tp * tv)
    phi = (np.arange(64) + 0.5) * (2 * math.pi / 64)
    return math.sqrt(math.pi / 2) * float(np.mean(np.sqrt(a * np.cos(phi) ** 2 + b * np.sin(phi) ** 2)))


# ---------------------------------------------------------------------------------------------
# fitting


class _Problem:
    """One animal's data: times from 0 (s), projected coordinates centred (m), error variances (m²)."""

    def __init__(self, t: np.ndarray, x: np.ndarray, y: np.ndarray, r: np.ndarray) -> None:
        self.t = np.ascontiguousarray(t - t[0], dtype=float)
        self.cx, self.cy = float(np.mean(x)), float(np.mean(y))
        self.x = np.ascontiguousarray(x - self.cx, dtype=float)
        self.y = np.ascontiguousarray(y - self.cy, dtype=float)
        self.r = np.ascontiguousarray(r, dtype=float)
        self.n = self.t.size
        self.span = max(float(self.t[-1]), 1.0)
        dt = np.diff(self.t)
        dt = dt[dt > 0]
        self.dt_med = float(np.median(dt)) if dt.size else 1.0
        self.dt_min = float(dt.min()) if dt.size else 1.0
        cov = np.cov(np.vstack([self.x, self.y])) if self.n > 2 else np.eye(2)
        self.emp_cov = cov

    def loglik(self, code: int, iso: bool, p: np.ndarray) -> tuple[float, tuple[float, float]]:
        var = math.exp(p[0])
        j = 1
        if iso:
            lr, th = 0.0, 0.0
        else:
            lr, th = p[1], p[2]
            j = 3
        tp = math.exp(p[j]) if code >= 2 else math.inf
        tv = math.exp(p[j + 1]) if code == 3 else 0.0
        if code == 3 and abs(tp - tv) < 1e-6 * tp:
            tv = tp * (1 - 1e-6)
        if iso:
            lx, mx = _axis_loglik(code, self.t, self.x, self.r, var, tp, tv)
            ly, my = _axis_loglik(code, self.t, self.y, self.r, var, tp, tv)
            return lx + ly, (mx, my)
        c, s = math.cos(th), math.sin(th)
        u = c * self.x + s * self.y
        w = -s * self.x + c * self.y
        lu, mu = _axis_loglik(code, self.t, u, self.r, var * math.exp(lr / 2), tp, tv)
        lw, mw = _axis_loglik(code, self.t, w, self.r, var * math.exp(-lr / 2), tp, tv)
        return lu + lw, (c * mu - s * mw, s * mu + c * mw)


def _names(model: str, iso: bool) -> tuple[str, ...]:
    names = ["log_var"] + ([] if iso else ["log_ratio", "theta"])
    if model in ("ou", "ouf"):
        names.append("log_tau_p")
    if model == "ouf":
        names.append("log_tau_v")
    return tuple(names)


def _bounds(pb: _Problem, names: tuple[str, ...]) -> list[tuple[float, float]]:
    out = []
    for nm in names:
        if nm == "log_var":
            out.append((-60.0, 80.0))
        elif nm == "log_ratio":
            out.append((-12.0, 12.0))
        elif nm == "theta":
            out.append((-10.0, 10.0))
        elif nm == "log_tau_p":
            out.append((math.log(pb.dt_min / 10.0), math.log(pb.span * 100.0)))
        else:
            out.append((math.log(pb.dt_min / 100.0), math.log(pb.span * 10.0)))
    return out


def _starts(pb: _Problem, model: str, iso: bool, nested: MovementFit | None = None) -> list[np.ndarray]:
    """Data-driven starting points (a few, the most likely one is optimised); with ``nested``, a
    fitted isotropic model this one extends (the OU of an OUF, the isotropic fit of an anisotropic
    one), also the point that continues it."""
    out = _data_starts(pb, model, iso)
    if nested is not None:
        p = list(nested.params)
        if not iso and nested.isotropic:
            p[1:1] = list(out[0][1:3])  # the fixes' own elongation and direction
        if model == "ouf" and nested.model == "ou":
            p.append(math.log(max(pb.dt_min / 50, 1e-3)))  # velocity autocorrelation below the schedule
        out.append(np.array(p, dtype=float))
    return out


def _data_starts(pb: _Problem, model: str, iso: bool) -> list[np.ndarray]:
    """Starting points from the fixes alone: their spread, elongation, steps and span."""
    ev, evec = np.linalg.eigh(pb.emp_cov)
    ev = np.maximum(ev, 1.0)
    var_area = float(math.sqrt(ev[0] * ev[1]))
    lr = float(math.log(ev[1] / ev[0]))
    th = float(math.atan2(evec[1, 1], evec[0, 1]))
    aniso = [] if iso else [lr, th]
    if model == "iid":
        return [np.array([math.log(var_area), *aniso])]
    if model == "bm":
        dt = np.diff(pb.t)
        ok = dt > 0
        d2 = (np.diff(pb.x) ** 2 + np.diff(pb.y) ** 2)[ok] / 2.0
        diff = float(np.median(d2 / dt[ok]) / 0.455) if ok.any() else 1.0  # median of χ²₁ ≈ 0.455
        return [np.array([math.log(max(diff, 1e-12)), *aniso])]
    # τ_p: a few range-crossing times between one interval and the whole span
    out = []
    for tp in (pb.span / 30.0, pb.span / 5.0, pb.dt_med * 3.0):
        tp = max(tp, pb.dt_min)
        if model == "ou":
            out.append(np.array([math.log(var_area), *aniso, math.log(tp)]))
        else:
            for tv in (pb.dt_med / 3.0, pb.dt_med * 3.0):
                tv = min(tv, tp / 2.0)
                out.append(np.array([math.log(var_area), *aniso, math.log(tp), math.log(tv)]))
    return out


def _hessian(f, p: np.ndarray, h: float = 1e-3) -> np.ndarray:
    """Central-difference Hessian of ``f`` at ``p``."""
    k = p.size
    out = np.empty((k, k))
    f0 = f(p)
    for i in range(k):
        for j in range(i, k):
            if i == j:
                e = np.zeros(k)
                e[i] = h
                v = (f(p + e) - 2 * f0 + f(p - e)) / (h * h)
            else:
                ei = np.zeros(k)
                ej = np.zeros(k)
                ei[i] = h
                ej[j] = h
                v = (f(p + ei + ej) - f(p + ei - ej) - f(p - ei + ej) + f(p - ei - ej)) / (4 * h * h)
            out[i, j] = out[j, i] = v
    return out


def _fit_one(pb: _Problem, model: str, iso: bool, start: np.ndarray | None = None,
             hessian: bool = True, nested: MovementFit | None = None) -> MovementFit:
    from scipy.optimize import minimize

    code = _CODE[model]
    names = _names(model, iso)
    bounds = _bounds(pb, names)

    def nll(p: np.ndarray) -> float:
        v = -pb.loglik(code, iso, p)[0]
        return v if np.isfinite(v) else 1e300

    # The search runs on log(σ²/τ_p) instead of log σ² for OU and OUF: where the data hardly see
    # the range (a walk, or a span of few crossings) only the diffusion σ²/τ_p is known, and in
    # (log σ², log τ_p) that is a long diagonal ridge a quasi-Newton search stops on.
    jt = names.index("log_tau_p") if "log_tau_p" in names else -1

    def to_p(zz: np.ndarray) -> np.ndarray:
        out = np.array(zz, dtype=float)
        if jt >= 0:
            out[0] = zz[0] + zz[jt]
        return out

    def to_z(pp: np.ndarray) -> np.ndarray:
        out = np.array(pp, dtype=float)
        if jt >= 0:
            out[0] = pp[0] - pp[jt]
        return out

    zbounds = [(None, None) if (j == 0 and jt >= 0) else b for j, b in enumerate(bounds)]
    starts = [start] if start is not None else _starts(pb, model, iso, nested)
    starts = [np.array([min(max(v, lo + 1e-6), hi - 1e-6) for v, (lo, hi) in zip(s, bounds)]) for s in starts]
    # optimise from the most likely of the starting points only (one evaluation each)
    p = min(starts, key=nll)
    znll = lambda zz: nll(to_p(zz))  # noqa: E731
    best = minimize(znll, to_z(p), method="L-BFGS-B", bounds=zbounds, options={"maxiter": 500})
    p = to_p(best.x)
    grad = np.asarray(best.jac if best.jac is not None else np.zeros(len(names)), dtype=float).copy()
    for j, (lo, hi) in enumerate(zbounds):  # a variable held at its bound may keep a gradient outwards
        if (lo is not None and best.x[j] <= lo + 1e-4 and grad[j] > 0) or (
                hi is not None and best.x[j] >= hi - 1e-4 and grad[j] < 0):
            grad[j] = 0.0
    # the finite-difference gradient at a converged point grows with the information (~√n): a
    # stall on a ridge leaves one orders of magnitude larger (thousands, on the buffalo Cilla)
    stalled = not best.success or float(np.max(np.abs(grad))) > 1.0 + 0.05 * math.sqrt(pb.n)
    if stalled:
        # polish: Nelder–Mead from the quasi-Newton point, for the rare curved ridge left
        res = minimize(znll, best.x, method="Nelder-Mead",
                       options={"xatol": 1e-6, "fatol": 1e-7, "maxiter": 200 * len(names)})
        pr = to_p(res.x)
        if res.fun < best.fun and all(lo <= v <= hi for v, (lo, hi) in zip(pr, bounds)):
            p = pr
    if not iso:  # canonical: θ in (-π/2, π/2]
        j = names.index("theta")
        p[j] = (p[j] + math.pi / 2) % math.pi - math.pi / 2
    ll, mean = pb.loglik(code, iso, p)
    at_bound = any(nm.startswith("log_tau") and (v - lo < 0.05 or hi - v < 0.05)
                   for nm, v, (lo, hi) in zip(names, p, bounds))
    try:
        if not hessian:
            raise np.linalg.LinAlgError("not asked for")
        hess = _hessian(nll, p)
        cov = np.linalg.inv(hess)
        if not np.all(np.isfinite(cov)) or np.any(np.diag(cov) <= 0):
            cov = np.full_like(hess, np.nan)
    except np.linalg.LinAlgError:
        cov = np.full((p.size, p.size), np.nan)
    k = p.size + (0 if model == "bm" else 2)
    nobs = 2 * pb.n
    aicc = -2 * ll + 2 * k + (2 * k * (k + 1) / (nobs - k - 1) if nobs - k - 1 > 0 else math.inf)
    vals = dict(zip(names, p))
    return MovementFit(
        model=model, isotropic=iso, loglik=float(ll), aicc=float(aicc), k=k, n=pb.n,
        var_m2=math.exp(vals["log_var"]), log_ratio=float(vals.get("log_ratio", 0.0)),
        theta_rad=float(vals.get("theta", 0.0)),
        tau_p_s=math.exp(vals["log_tau_p"]) if "log_tau_p" in vals else math.nan,
        tau_v_s=math.exp(vals["log_tau_v"]) if "log_tau_v" in vals else math.nan,
        mean_xy=(mean[0] + pb.cx, mean[1] + pb.cy) if model != "bm" else (math.nan, math.nan),
        cov=cov, names=names, params=p, at_bound=at_bound,
    )


def fit_models(t_s: np.ndarray, x_m: np.ndarray, y_m: np.ndarray, err_var_m2: np.ndarray,
               models: tuple[str, ...] = MODELS, anisotropic: bool = True) -> list[MovementFit]:
    """Fit every model in ``models`` (isotropic), then the anisotropic version of the best.

    Parameters
    ----------
    t_s : ndarray
        Fix times (s), sorted.
    x_m, y_m : ndarray
        Projected coordinates (m) in an equal-area projection.
    err_var_m2 : ndarray
        Location-error variance of each fix per axis (m²), e.g. ``sigma_m ** 2``.
    models : tuple of str
        Candidate models.
    anisotropic : bool
        Also try an elliptical range for the best isotropic model.

    Returns
    -------
    list of MovementFit
        Sorted by AICc (best first).
    """
    pb = _Problem(np.asarray(t_s, float), np.asarray(x_m, float), np.asarray(y_m, float),
                  np.nan_to_num(np.asarray(err_var_m2, float), nan=0.0))
    fits: list[MovementFit] = []
    for m in models:
        # the OUF also starts where the OU ended (it nests it: τ_v → 0)
        ou = next((f for f in fits if f.model == "ou"), None) if m == "ouf" else None
        fits.append(_fit_one(pb, m, True, nested=ou))
    fits.sort(key=lambda f: f.aicc)
    if anisotropic and pb.n > 10:
        fits.append(_fit_one(pb, fits[0].model, False, nested=fits[0]))
        fits.sort(key=lambda f: f.aicc)
    return fits


def simulate(fit: MovementFit, t_s: np.ndarray, err_var_m2: np.ndarray,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A track (projected m) drawn from ``fit`` at times ``t_s`` (s), with error of variance ``err_var_m2``."""
    t = np.ascontiguousarray(np.asarray(t_s, float) - t_s[0])
    code = _CODE[fit.model]
    a, b = fit.axis_vars()
    tp = fit.tau_p_s if code >= 2 else math.inf
    tv = fit.tau_v_s if code == 3 else 0.0
    if code == 3 and abs(tp - tv) < 1e-6 * tp:
        tv = tp * (1 - 1e-6)
    u = _simulate_axis(code, t, a, tp, tv, rng.standard_normal((t.size, 2)))
    w = _simulate_axis(code, t, b, tp, tv, rng.standard_normal((t.size, 2)))
    c, s = math.cos(fit.theta_rad), math.sin(fit.theta_rad)
    e = np.sqrt(np.asarray(err_var_m2, float))
    mx, my = (0.0, 0.0) if code == 1 else fit.mean_xy
    return (mx + c * u - s * w + e * rng.standard_normal(t.size),
            my + s * u + c * w + e * rng.standard_normal(t.size))


def refit(fit: MovementFit, t_s: np.ndarray, x_m: np.ndarray, y_m: np.ndarray, err_var_m2: np.ndarray,
          hessian: bool = False) -> MovementFit:
    """The model of ``fit`` (same family and isotropy) fitted to other data, started at ``fit``."""
    pb = _Problem(np.asarray(t_s, float), np.asarray(x_m, float), np.asarray(y_m, float),
                  np.nan_to_num(np.asarray(err_var_m2, float), nan=0.0))
    start = fit.params.copy()
    return _fit_one(pb, fit.model, fit.isotropic, start=start, hessian=hessian)


def velocity_smoother(fit: MovementFit, t_s: np.ndarray, x_m: np.ndarray, y_m: np.ndarray,
                      err_var_m2: np.ndarray, draws: int = 0, seed: int = 0) -> Any:
    """Expected speed ``E|v|`` (m/s) at each fix given all fixes, under an OUF ``fit``.

    The smoothed velocity is Gaussian with mean ``m`` and (per axis) variances; its expected
    norm is the Rice mean ``s √(π/2) L½(−|m|²/2s²)`` with ``s²`` the mean axis variance.
    With ``draws`` > 0 also returns ``(draws, n)`` speeds along velocity paths drawn jointly
    from the smoothing distribution (for CIs of speeds averaged over a day).
    """
    from scipy.special import i0e, i1e

    t = np.ascontiguousarray(np.asarray(t_s, float) - t_s[0])
    a, b = fit.axis_vars()
    c, s = math.cos(fit.theta_rad), math.sin(fit.theta_rad)
    dx, dy = np.asarray(x_m, float) - fit.mean_xy[0], np.asarray(y_m, float) - fit.mean_xy[1]
    r = np.ascontiguousarray(err_var_m2, dtype=float)
    tv = fit.tau_v_s if abs(fit.tau_p_s - fit.tau_v_s) >= 1e-6 * fit.tau_p_s else fit.tau_p_s * (1 - 1e-6)
    rng = np.random.default_rng(seed)
    mu, vu, du = _ouf_rts(t, np.ascontiguousarray(c * dx + s * dy), r, a, fit.tau_p_s, tv,
                          rng.standard_normal((draws, t.size, 2)))
    mw, vw, dw = _ouf_rts(t, np.ascontiguousarray(-s * dx + c * dy), r, b, fit.tau_p_s, tv,
                          rng.standard_normal((draws, t.size, 2)))
    s2 = np.maximum((vu + vw) / 2.0, 1e-30)
    q = (mu * mu + mw * mw) / (2.0 * s2)
    # L½(-q) = e^{-q/2} [(1 + q) I0(q/2) + q I1(q/2)], with the scaled Bessel functions
    lag = (1.0 + q) * i0e(q / 2.0) + q * i1e(q / 2.0)
    expected = np.sqrt(s2) * math.sqrt(math.pi / 2.0) * lag
    return (expected, np.hypot(du, dw)) if draws else expected


def select_model(fits: list[MovementFit]) -> MovementFit:
    """The fit with the lowest AICc (``fits`` from :func:`fit_models`)."""
    return min(fits, key=lambda f: f.aicc)
