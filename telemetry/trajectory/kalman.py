"""Kalman filter and Rauch–Tung–Striebel smoother kernels of the continuous-time movement models (numba).

State per axis (east ``x`` and north ``y``, metres in a local projection, centred on the
animal's mean position): position and velocity ``[x, v]``. Two families of processes, each
discretised exactly over any interval ``dt`` (irregular schedules and gaps need no
resampling):

* **IOU** (kind 0): the velocity is an Ornstein–Uhlenbeck process (time scale ``tau_v`` s,
  stationary variance ``q`` m²/s² per axis) and the position its integral: the
  continuous-time correlated random walk of Johnson et al. (2008). ``tau_v`` → 0 is Brownian
  motion (BM) of the position with diffusion ``2 q tau_v``. Not range-resident.
* **OUF** (kind 1): the position itself is mean-reverting (home-range crossing time
  ``tau_p``, stationary variance ``sigma²`` per axis) with an OU velocity (``tau_v``); the
  range-resident models of Fleming et al. (2014, 2015). ``tau_v`` → 0 is the OU position
  process. The transition follows from the stationary covariance: ``Q = Σ - F Σ Fᵀ``.

The process variance scale (``q`` for IOU, ``sigma²`` for OUF) multiplies a per-row *unit*
table (:func:`transitions`), so a maximum-likelihood search over the scale reuses one table
per pair of time scales, and several scales run as "lanes" of one pass.

Between two fixes the step is in one of two regimes, ``w`` = 1 for still, else 0 (the step
HMM of :mod:`telemetry.trajectory.regimes` decides; ``omega`` switches the regime model on
or off per evaluation):

* **active**: the process above;
* **still**: the animal has no velocity; its position drifts only as a slow Brownian motion
  with diffusion ``ds`` (m²/s per axis; bed shifts and moves around a kill, 0 = held
  exactly; variance ``ds`` times the table's exposure column, the step's ``dt`` unless the
  caller set it per step, see :data:`N_TABLE`), and the velocity is redrawn from its stationary distribution (the animal sets
  off again with a velocity unrelated to its last one).

Measurements ``z = x + e`` with ``e ~ N(0, r I₂)``, ``r`` per fix (m²). A row with
``r = inf`` is a time at which the state is wanted but nothing was observed (prediction and
interpolation): it is propagated, never updated, and adds nothing to the likelihood.

For the error scale the regimes can also be left unlabelled (:func:`switching_loglik_lanes`):
each step is still or active as a two-state Markov chain, and the likelihood sums over both
at every step, the state collapsed to one Gaussian after each (GPB1; Bar-Shalom, Li &
Kirubarajan 2001, ch. 11). Labels taken from the displacements themselves select the steps
whose errors happened to be small as the still ones and bias the error scale low.

Both axes share one covariance (isotropic noise and error), so the filters carry the 2×2
covariance once and two means. Kernels work on a range of rows (one animal) and run in
parallel over animals; each segment (``start`` true at its first row) restarts at its first
observed fix, which is conditioned on (the likelihood is that of the other fixes, so every
model of an animal is compared on the same data).

References: Johnson, D. S., London, J. M., Lea, M.-A. & Durban, J. W. (2008). Continuous-time
correlated random walk model for animal telemetry data. Ecology 89:1208–1215. Fleming, C. H. et
al. (2014). From fine-scale foraging to home ranges: a semivariance approach to identifying
movement modes across spatiotemporal scales. Am. Nat. 183:E154–E167. Rauch, H. E., Tung, F. &
Striebel, C. T. (1965). AIAA Journal 3:1445–1450. Bar-Shalom, Y., Li, X. R. & Kirubarajan, T.
(2001). Estimation with Applications to Tracking and Navigation. Wiley.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from telemetry.trajectory._arrays import log_absorb

__all__ = ["IOU", "OUF", "unit_discretise", "transitions", "loglik_lanes", "switching_loglik_lanes", "smooth_all",
           "N_TABLE"]

IOU = 0
"""Kind of an integrated-OU (non-resident) process: scale = stationary velocity variance ``q``."""
OUF = 1
"""Kind of a range-resident OUF process: scale = stationary position variance ``sigma²``."""

N_TABLE = 9
"""Columns of a :func:`transitions` table: F00, F01, F10, F11, U00, U01, U11, exposure, vfresh.

``exposure`` (s) is what a still step's drift variance is ``ds`` times: the step's ``dt`` (a
Brownian drift); :mod:`telemetry.trajectory.smooth` overwrites it per step where it models
jumps at rest. It is used for nothing else."""

_LOG_2PI = math.log(2.0 * math.pi)


# --------------------------------------------------------------------------- 2×2 state algebra
# The (position, velocity) state of one axis: transition Φ = (f00, f01; f10, f11), symmetric
# covariances (p00, p01, p11). Scalars, no temporary arrays (once per fix inside compiled loops),
# inlined; shared with the movement models (telemetry.trajectory.ctmm).


@numba.njit(cache=True, nogil=True, inline="always")
def phi_apply(f00: float, f01: float, f10: float, f11: float, x0: float, x1: float) -> tuple[float, float]:
    """``Φ x`` for a state ``x = (x0, x1)``.

    >>> phi_apply(1.0, 60.0, 0.0, 1.0, 10.0, 2.0)   # position 10 m, velocity 2 m/s, one minute on
    (130.0, 2.0)
    """
    return f00 * x0 + f01 * x1, f10 * x0 + f11 * x1


@numba.njit(cache=True, nogil=True, inline="always")
def rts_gain(p00: float, p01: float, p11: float, f00: float, f01: float, f10: float, f11: float,
             b00: float, b01: float, b11: float) -> tuple[float, float, float, float]:
    """Rauch–Tung–Striebel gain ``G = P Φᵀ B⁻¹`` (``P`` filtered at a fix, ``Φ`` the transition to the
    next, ``B`` the covariance predicted there): ``(g00, g01, g10, g11)``. A singular ``B`` (a state
    the next fix pins exactly) is taken as barely invertible."""
    c00 = p00 * f00 + p01 * f01
    c01 = p00 * f10 + p01 * f11
    c10 = p01 * f00 + p11 * f01
    c11 = p01 * f10 + p11 * f11
    det = b00 * b11 - b01 * b01
    if det <= 0.0:
        det = 1e-300
    i00 = b11 / det
    i01 = -b01 / det
    i11 = b00 / det
    return c00 * i00 + c01 * i01, c00 * i01 + c01 * i11, c10 * i00 + c11 * i01, c10 * i01 + c11 * i11


@numba.njit(cache=True, nogil=True, inline="always")
def rts_cov(p00: float, p01: float, p11: float, g00: float, g01: float, g10: float, g11: float,
            d00: float, d01: float, d11: float) -> tuple[float, float, float]:
    """``P + G D Gᵀ`` (symmetric ``D``): the smoothed covariance with ``D`` = smoothed − predicted
    covariance at the next fix, or the backward-sampling covariance with ``D = −B``."""
    h00 = g00 * d00 + g01 * d01
    h01 = g00 * d01 + g01 * d11
    h10 = g10 * d00 + g11 * d01
    h11 = g10 * d01 + g11 * d11
    return p00 + h00 * g00 + h01 * g01, p01 + h00 * g10 + h01 * g11, p11 + h10 * g10 + h11 * g11


@numba.njit(cache=True, nogil=True, inline="always")
def chol2(c00: float, c01: float, c11: float) -> tuple[tuple[float, float], float]:
    """Cholesky factor of a 2×2 covariance (clamped to positive semi-definite): first column
    ``(l00, l10)`` and ``l11``.

    >>> chol2(4.0, 2.0, 5.0)
    ((2.0, 1.0), 2.0)
    """
    l00 = math.sqrt(max(c00, 0.0))
    l10 = c01 / l00 if l00 > 0.0 else 0.0
    return (l00, l10), math.sqrt(max(c11 - l10 * l10, 0.0))


@numba.njit(cache=True, inline="always")
def unit_discretise(dt: float, beta: float) -> tuple[float, float, float, float, float]:
    """Exact transition of the integrated OU velocity over ``dt`` seconds, per unit ``q``.

    Returns F01, F11, U00, U01, U11 (per axis) for state [position, velocity]
    with F = [[1, F01], [0, F11]] and process covariance Q = q × U. ``beta = 1/tau_v`` (1/s);
    ``q`` = stationary velocity variance (m²/s²), so the velocity diffusion is ``2 beta q``.

    Examples
    --------
    >>> f01, f11, u00, u01, u11 = unit_discretise(3600.0, 1.0 / 60.0)  # tau 1 min, 1 h step
    >>> round(f01, 6), round(f11, 6), round(u11, 6)  # ~Brownian: velocity forgotten
    (60.0, 0.0, 1.0)
    >>> round(u00 / (2 * 60.0 * 3600.0), 3)  # position variance ~ 2 q tau dt
    0.975
    """
    a = beta * dt
    if a > 0.5:
        f11 = math.exp(-a)
        e1 = 1.0 - f11
    else:
        e1 = -math.expm1(-a)  # 1 - exp(-a) without cancellation for small a
        f11 = 1.0 - e1
    e2 = e1 * (1.0 + f11)  # 1 - exp(-2a) = (1 - e^-a)(1 + e^-a)
    f01 = e1 / beta
    if a < 1e-2:
        # a - 2(1-e^-a) + (1-e^-2a)/2 cancels to O(a^3): use its series
        f = a * a * a * (1.0 / 3.0 - a * (0.25 - a * (7.0 / 60.0 - a * (1.0 / 24.0 - a * 31.0 / 2520.0))))
    else:
        f = a - 2.0 * e1 + 0.5 * e2
    return f01, f11, 2.0 / (beta * beta) * f, e1 * e1 / beta, e2


@numba.njit(cache=True, inline="always")
def ouf_discretise(dt: float, a: float, b: float) -> tuple[float, float, float, float, float, float, float]:
    """Exact transition of the OUF process over ``dt`` s, per unit stationary position variance.

    ``a = 1/tau_p``, ``b = 1/tau_v`` (1/s, ``b >= a``). Returns F00, F01, F10, F11 and
    U00, U01, U11 with ``Q = sigma² U = Σ₁ - F Σ₁ Fᵀ``, ``Σ₁ = diag(1, a b)`` (the stationary
    covariance of [position, velocity] per unit position variance).

    Examples
    --------
    >>> f00, f01, f10, f11, u00, u01, u11 = ouf_discretise(86400.0 * 50, 1 / 86400.0, 1 / 600.0)
    >>> round(f00, 12), round(u00, 12)  # 50 range-crossing times: independent positions
    (0.0, 1.0)
    """
    ea = math.exp(-a * dt)
    # every entry through f01 = (e^{-a dt} - e^{-b dt}) / (b - a), written with expm1 so that
    # nearly equal time scales (b - a -> 0, the critically damped limit) lose no precision
    delta = b - a
    if delta * dt > 1e-12:
        f01 = ea * (-math.expm1(-delta * dt)) / delta
    else:
        f01 = ea * dt
    f00 = ea + a * f01
    f10 = -a * b * f01
    f11 = ea - b * f01
    ab = a * b
    bb = a + b
    if bb * dt < 1e-3:
        # Σ - F Σ Fᵀ cancels to O(dt³): the series of ∫ e^{As} C e^{Aᵀs} ds, C = diag(0, 2ab(a+b))
        # (relative error ~ ((a+b) dt)² < 1e-6, where the closed form loses ~1e-16 / dt³)
        c = 2.0 * ab * bb
        g = bb * bb - ab
        h = dt
        u00 = c * h**3 * (1.0 / 3.0 - bb * h / 4.0)
        u01 = c * h * h * (0.5 - bb * h / 2.0 + (g + bb * bb) * h * h / 8.0)
        u11 = c * h * (1.0 - bb * h + (bb * bb + g) * h * h / 3.0)
        return f00, f01, f10, f11, u00, u01, u11
    u00 = max(1.0 - (f00 * f00 + ab * f01 * f01), 0.0)
    u01 = -(f00 * f10 + ab * f01 * f11)
    u11 = max(ab - (f10 * f10 + ab * f11 * f11), 0.0)
    return f00, f01, f10, f11, u00, u01, u11


@numba.njit(cache=True, parallel=True)
def transitions(dt: np.ndarray, bounds: np.ndarray, kind: np.ndarray, tau_p: np.ndarray,
                tau_v: np.ndarray) -> np.ndarray:
    """Per-row unit transition table (:data:`N_TABLE` columns) for every animal's process.

    Animal ``k`` owns rows ``bounds[k]:bounds[k+1]`` and has process ``kind[k]`` (:data:`IOU`
    or :data:`OUF`) with time scales ``tau_p[k]`` (OUF only) and ``tau_v[k]`` (s). Columns:
    F00, F01, F10, F11, U00, U01, U11 (``Q = scale × U``), the still drift's exposure (the step's
    ``dt``, s; see :data:`N_TABLE`) and ``vfresh``,
    the stationary velocity variance per unit scale (what a still step redraws).
    """
    out = np.empty((dt.size, N_TABLE))
    for k in numba.prange(bounds.size - 1):
        if kind[k] == OUF:
            a = 1.0 / tau_p[k]
            b = max(1.0 / tau_v[k], a)
            for i in range(bounds[k], bounds[k + 1]):
                f00, f01, f10, f11, u00, u01, u11 = ouf_discretise(dt[i], a, b)
                out[i, 0] = f00
                out[i, 1] = f01
                out[i, 2] = f10
                out[i, 3] = f11
                out[i, 4] = u00
                out[i, 5] = u01
                out[i, 6] = u11
                out[i, 7] = dt[i]
                out[i, 8] = a * b
        else:
            beta = 1.0 / tau_v[k]
            for i in range(bounds[k], bounds[k + 1]):
                f01, f11, u00, u01, u11 = unit_discretise(dt[i], beta)
                out[i, 0] = 1.0
                out[i, 1] = f01
                out[i, 2] = 0.0
                out[i, 3] = f11
                out[i, 4] = u00
                out[i, 5] = u01
                out[i, 6] = u11
                out[i, 7] = dt[i]
                out[i, 8] = 1.0
    return out


@numba.njit(cache=True, inline="always")
def _step(
    tr: np.ndarray, i: int, ww: float, sc: float, ds: float, p00: float, p01: float, p11: float,
) -> tuple[float, float, float, float, float, float, float, float, float, float, float]:
    """Effective F (4 numbers) of row ``i`` under still weight ``ww`` and the predicted
    covariance ``F P Fᵀ + Q`` (3 numbers); ``sc`` is the process scale."""
    act = 1.0 - ww
    f00 = ww + act * tr[i, 0]
    f01 = act * tr[i, 1]
    f10 = act * tr[i, 2]
    f11 = act * tr[i, 3]
    # F P Fᵀ
    t00 = f00 * p00 + f01 * p01
    t01 = f00 * p01 + f01 * p11
    t10 = f10 * p00 + f11 * p01
    t11 = f10 * p01 + f11 * p11
    a00 = t00 * f00 + t01 * f01 + sc * act * tr[i, 4] + ww * ds * tr[i, 7]
    a01 = t00 * f10 + t01 * f11 + sc * act * tr[i, 5]
    a11 = t10 * f10 + t11 * f11 + sc * (act * tr[i, 6] + ww * tr[i, 8])
    return f00, f01, f10, f11, a00, a01, a11, act, t00, t01, t10


@numba.njit(cache=True)
def _loglik_range(
    tr: np.ndarray, zx: np.ndarray, zy: np.ndarray, r: np.ndarray, start: np.ndarray, w: np.ndarray,
    i0: int, i1: int, sc: np.ndarray, om: np.ndarray, ds: np.ndarray, rs: np.ndarray, sel: np.ndarray,
    out: np.ndarray,
) -> None:
    """Innovation log-likelihood of rows ``i0..i1-1`` (both axes) for ``L = sc.size`` parameter
    sets ("lanes") in one loop: lane ``j`` has process scale ``sc[j]``, still weight
    ``om[j] * w[i]`` and still diffusion ``ds[j]`` (m²/s); the error variance of the rows where
    ``sel`` is true is multiplied by ``rs[j]`` (a profile over the error scale). Writes ``out[j]``.

    Several filters on the same rows in one loop fill the cycles a single filter leaves idle
    (its Riccati recursion has a division on the critical path every row).
    """
    nl = sc.size
    mx0 = np.zeros(nl)
    mx1 = np.zeros(nl)
    my0 = np.zeros(nl)
    my1 = np.zeros(nl)
    p00 = np.zeros(nl)
    p01 = np.zeros(nl)
    p11 = np.zeros(nl)
    ll = np.zeros(nl)
    det = np.ones(nl)  # product of the innovation variances not yet in ll (see log_absorb)
    on = False  # a segment has started with an observed fix
    n_obs = 0
    for i in range(i0, i1):
        ri = r[i]
        if start[i] or i == i0:
            on = False
        if not on:
            if ri == np.inf:
                continue  # nothing to start from yet
            # the first observed fix of a segment defines the position; the velocity is stationary
            on = True
            for j in range(nl):
                mx0[j] = zx[i]
                my0[j] = zy[i]
                mx1[j] = 0.0
                my1[j] = 0.0
                p00[j] = ri * rs[j] if sel[i] else ri
                p01[j] = 0.0
                p11[j] = sc[j] * tr[i, 8]
            continue
        wi = w[i]
        zxi = zx[i]
        zyi = zy[i]
        obs = ri != np.inf
        scaled = sel[i]
        if obs:
            n_obs += 1
        for j in range(nl):
            f00, f01, f10, f11, a00, a01, a11, _, _, _, _ = _step(tr, i, om[j] * wi, sc[j], ds[j],
                                                                  p00[j], p01[j], p11[j])
            m0, m1 = phi_apply(f00, f01, f10, f11, mx0[j], mx1[j])
            n0, n1 = phi_apply(f00, f01, f10, f11, my0[j], my1[j])
            if not obs:
                mx0[j], mx1[j], my0[j], my1[j] = m0, m1, n0, n1
                p00[j], p01[j], p11[j] = a00, a01, a11
                continue
            s = a00 + (ri * rs[j] if scaled else ri)
            inv_s = 1.0 / s
            k0 = a00 * inv_s
            k1 = a01 * inv_s
            vx = zxi - m0
            vy = zyi - n0
            ll[j] -= 0.5 * (vx * vx + vy * vy) * inv_s
            det[j], ll[j] = log_absorb(det[j], s, ll[j])
            mx0[j] = m0 + k0 * vx
            mx1[j] = m1 + k1 * vx
            my0[j] = n0 + k0 * vy
            my1[j] = n1 + k1 * vy
            p00[j] = a00 - k0 * a00
            p01[j] = a01 - k0 * a01
            p11[j] = a11 - k1 * a01
    for j in range(nl):
        out[j] = ll[j] - math.log(det[j]) - n_obs * _LOG_2PI


def loglik_lanes(
    tr: np.ndarray, zx: np.ndarray, zy: np.ndarray, r: np.ndarray, start: np.ndarray, w: np.ndarray,
    bounds: np.ndarray, sc: np.ndarray, om: np.ndarray, ds: np.ndarray, rs: np.ndarray | None = None,
    sel: np.ndarray | None = None,
) -> np.ndarray:
    """Log-likelihood per animal and lane, shape ``sc.shape = (n_animals, L)``.

    Animal ``k`` owns rows ``bounds[k]:bounds[k+1]`` of the :func:`transitions` table ``tr``;
    lane ``j`` has process scale ``sc[k, j]`` (``q`` m²/s² or ``sigma²`` m²), still weight
    ``om[k, j] * w[i]`` and still diffusion ``ds[k, j]`` (m²/s); optionally the error variance
    of the rows where ``sel`` is true is multiplied by ``rs[k, j]``.
    """
    if rs is None or sel is None:
        rs = np.ones(sc.shape)
        sel = np.zeros(zx.size, dtype=np.bool_)
    return _loglik_lanes(tr, zx, zy, r, start, w, bounds, np.ascontiguousarray(sc, dtype=np.float64),
                         np.ascontiguousarray(om, dtype=np.float64), np.ascontiguousarray(ds, dtype=np.float64),
                         np.ascontiguousarray(rs, dtype=np.float64), sel)


@numba.njit(cache=True, parallel=True)
def _loglik_lanes(
    tr: np.ndarray, zx: np.ndarray, zy: np.ndarray, r: np.ndarray, start: np.ndarray, w: np.ndarray,
    bounds: np.ndarray, sc: np.ndarray, om: np.ndarray, ds: np.ndarray, rs: np.ndarray, sel: np.ndarray,
) -> np.ndarray:
    out = np.empty(sc.shape)
    for k in numba.prange(bounds.size - 1):
        _loglik_range(tr, zx, zy, r, start, w, bounds[k], bounds[k + 1], sc[k], om[k], ds[k], rs[k], sel, out[k])
    return out


@numba.njit(cache=True, inline="always")
def _update(a00: float, a01: float, a11: float, rr: float, m0: float, m1: float, n0: float, n1: float,
            zx: float, zy: float) -> tuple[float, float, float, float, float, float, float, float, float]:
    """Kalman update of both axes' predicted means ``(m0, m1)``, ``(n0, n1)`` (shared predicted
    covariance ``a``) with a fix ``(zx, zy)`` of error variance ``rr``: the quadratic part of the
    fix's log density (``-v²/2s``; the density is that minus ``log s`` and ``log 2π``), the
    innovation variance ``s``, the updated means and the updated covariance."""
    s = a00 + rr
    k0 = a00 / s
    k1 = a01 / s
    vx = zx - m0
    vy = zy - n0
    return (-0.5 * (vx * vx + vy * vy) / s, s, m0 + k0 * vx, m1 + k1 * vx, n0 + k0 * vy, n1 + k1 * vy,
            a00 - k0 * a00, a01 - k0 * a01, a11 - k1 * a01)


@numba.njit(cache=True, inline="always")
def _mixture(qs: float, ss: float, qa: float, sa: float, cs: float) -> tuple[float, float, float]:
    """One fix's density mixed over the regimes, ``cs`` the still regime's predicted probability,
    each regime's density ``exp(q) / s`` (its quadratic part ``q`` and innovation variance ``s``,
    from :func:`_update`; ``2π`` left out): its log as ``add - log(div)`` (``div`` for
    :func:`~telemetry.trajectory._arrays.log_absorb`) and the still regime's posterior.

    Taken relative to the active density, ``(1 - cs) + cs × still/active``, unless that ratio
    would overflow; then in logs (``div`` 1).

    >>> for qs in (-2.0, 650.0):   # both ways of taking it
    ...     add, div, ms = _mixture(qs, 4.0, -3.0, 9.0, 0.3)
    ...     direct = math.log(0.3 * math.exp(qs) / 4.0 + 0.7 * math.exp(-3.0) / 9.0)
    ...     print(abs(add - math.log(div) - direct) < 1e-12, round(ms, 6))
    True 0.723848
    True 1.0
    """
    dq = qs - qa
    if dq < 600.0:
        e = cs * math.exp(dq) * (sa / ss)
        t = (1.0 - cs) + e
        return qa, sa / t, e / t
    ls = qs - math.log(ss)
    la = qa - math.log(sa)
    top = max(ls, la)
    es = cs * math.exp(ls - top)
    ea = (1.0 - cs) * math.exp(la - top)
    return top + math.log(es + ea), 1.0, es / (es + ea)


@numba.njit(cache=True)
def _switching_range(
    tr: np.ndarray, zx: np.ndarray, zy: np.ndarray, r: np.ndarray, start: np.ndarray, i0: int, i1: int,
    sc: np.ndarray, om: np.ndarray, ds: np.ndarray, rs: np.ndarray, sel: np.ndarray, g_ss: float, g_aa: float,
    out: np.ndarray,
) -> None:
    """As :func:`_loglik_range`, but each step is still or active by a Markov chain (stay still
    ``g_ss``, stay active ``g_aa``; segments start from its stationary distribution) instead of
    labelled: per step the two predictions, their likelihoods mixed by the regime's predicted
    probability, and the two updated states collapsed to their mixture's mean and covariance
    (GPB1). Lanes with ``om[j] == 0`` have no still regime (then equal to :func:`_loglik_range`)."""
    nl = sc.size
    mx0 = np.zeros(nl)
    mx1 = np.zeros(nl)
    my0 = np.zeros(nl)
    my1 = np.zeros(nl)
    p00 = np.zeros(nl)
    p01 = np.zeros(nl)
    p11 = np.zeros(nl)
    mu = np.zeros(nl)  # P(the step just taken was still | fixes so far)
    ll = np.zeros(nl)
    det = np.ones(nl)  # (see log_absorb)
    pi_s = (1.0 - g_aa) / max(2.0 - g_ss - g_aa, 1e-12)
    on = False
    n_obs = 0
    for i in range(i0, i1):
        ri = r[i]
        if start[i] or i == i0:
            on = False
        if not on:
            if ri == np.inf:
                continue
            on = True
            for j in range(nl):
                mx0[j] = zx[i]
                my0[j] = zy[i]
                mx1[j] = 0.0
                my1[j] = 0.0
                p00[j] = ri * rs[j] if sel[i] else ri
                p01[j] = 0.0
                p11[j] = sc[j] * tr[i, 8]
                mu[j] = pi_s if om[j] > 0 else 0.0
            continue
        obs = ri != np.inf
        if obs:
            n_obs += 1
        for j in range(nl):
            cs = (mu[j] * g_ss + (1.0 - mu[j]) * (1.0 - g_aa)) if om[j] > 0 else 0.0
            f00, f01, f10, f11, a00, a01, a11, _, _, _, _ = _step(tr, i, 0.0, sc[j], ds[j], p00[j], p01[j], p11[j])
            am0, am1 = phi_apply(f00, f01, f10, f11, mx0[j], mx1[j])
            an0, an1 = phi_apply(f00, f01, f10, f11, my0[j], my1[j])
            f00, f01, f10, f11, b00, b01, b11, _, _, _, _ = _step(tr, i, 1.0, sc[j], ds[j], p00[j], p01[j], p11[j])
            sm0, sm1 = phi_apply(f00, f01, f10, f11, mx0[j], mx1[j])
            sn0, sn1 = phi_apply(f00, f01, f10, f11, my0[j], my1[j])
            ms = cs
            if obs:
                rr = ri * rs[j] if sel[i] else ri
                qa, sa, am0, am1, an0, an1, a00, a01, a11 = _update(a00, a01, a11, rr, am0, am1, an0, an1,
                                                                     zx[i], zy[i])
                if cs > 0.0:
                    qs, ss, sm0, sm1, sn0, sn1, b00, b01, b11 = _update(b00, b01, b11, rr, sm0, sm1, sn0, sn1,
                                                                         zx[i], zy[i])
                    add, div, ms = _mixture(qs, ss, qa, sa, cs)
                else:
                    add, div = qa, sa
                ll[j] += add
                det[j], ll[j] = log_absorb(det[j], div, ll[j])
            ma = 1.0 - ms
            # the mixture's covariance: each regime's, plus the spread of the two means (the
            # axes share one covariance: their spreads averaged)
            d0x = sm0 - am0
            d1x = sm1 - am1
            d0y = sn0 - an0
            d1y = sn1 - an1
            h = 0.5 * ms * ma
            p00[j] = ms * b00 + ma * a00 + h * (d0x * d0x + d0y * d0y)
            p01[j] = ms * b01 + ma * a01 + h * (d0x * d1x + d0y * d1y)
            p11[j] = ms * b11 + ma * a11 + h * (d1x * d1x + d1y * d1y)
            mx0[j] = ma * am0 + ms * sm0
            mx1[j] = ma * am1 + ms * sm1
            my0[j] = ma * an0 + ms * sn0
            my1[j] = ma * an1 + ms * sn1
            mu[j] = ms
    for j in range(nl):
        out[j] = ll[j] - math.log(det[j]) - n_obs * _LOG_2PI


def switching_loglik_lanes(
    tr: np.ndarray, zx: np.ndarray, zy: np.ndarray, r: np.ndarray, start: np.ndarray, bounds: np.ndarray,
    sc: np.ndarray, om: np.ndarray, ds: np.ndarray, g_ss: np.ndarray, g_aa: np.ndarray,
    rs: np.ndarray | None = None, sel: np.ndarray | None = None,
) -> np.ndarray:
    """As :func:`loglik_lanes` with the regimes unlabelled: animal ``k``'s steps are still or
    active by a Markov chain with probabilities ``g_ss[k]`` (still → still) and ``g_aa[k]``
    (active → active), summed over at every step (:func:`_switching_range`).

    >>> t = np.arange(6) * 3600.0
    >>> tr = transitions(np.r_[0.0, np.diff(t)], np.array([0, 6]), np.array([IOU]), np.array([np.inf]),
    ...                  np.array([600.0]))
    >>> z = np.array([0.0, 5.0, -3.0, 400.0, 900.0, 1300.0])
    >>> args = (tr, z, z * 0.0, np.full(6, 25.0), np.r_[True, np.zeros(5, bool)], np.array([0, 6]),
    ...         np.array([[0.01]]))
    >>> still_free = switching_loglik_lanes(*args, np.array([[0.0]]), np.array([[0.0]]), np.array([0.9]),
    ...                                     np.array([0.9]))
    >>> bool(np.isclose(still_free[0, 0], loglik_lanes(*args[:5], np.zeros(6), args[5], args[6],
    ...                                                np.array([[0.0]]), np.array([[0.0]]))[0, 0]))
    True
    >>> with_rests = switching_loglik_lanes(*args, np.array([[1.0]]), np.array([[1e-6]]), np.array([0.9]),
    ...                                     np.array([0.9]))
    >>> bool(with_rests[0, 0] > still_free[0, 0])   # the first three fixes are a rest
    True
    """
    if rs is None or sel is None:
        rs = np.ones(sc.shape)
        sel = np.zeros(zx.size, dtype=np.bool_)
    g_ss = np.where(np.isfinite(g_ss), g_ss, 0.5).astype(np.float64)
    g_aa = np.where(np.isfinite(g_aa), g_aa, 0.5).astype(np.float64)
    return _switching_lanes(tr, zx, zy, r, start, bounds, np.ascontiguousarray(sc, dtype=np.float64),
                            np.ascontiguousarray(om, dtype=np.float64), np.ascontiguousarray(ds, dtype=np.float64),
                            np.ascontiguousarray(rs, dtype=np.float64), sel, g_ss, g_aa)


@numba.njit(cache=True, parallel=True)
def _switching_lanes(
    tr: np.ndarray, zx: np.ndarray, zy: np.ndarray, r: np.ndarray, start: np.ndarray, bounds: np.ndarray,
    sc: np.ndarray, om: np.ndarray, ds: np.ndarray, rs: np.ndarray, sel: np.ndarray, g_ss: np.ndarray,
    g_aa: np.ndarray,
) -> np.ndarray:
    out = np.empty(sc.shape)
    for k in numba.prange(bounds.size - 1):
        _switching_range(tr, zx, zy, r, start, bounds[k], bounds[k + 1], sc[k], om[k], ds[k], rs[k], sel,
                         g_ss[k], g_aa[k], out[k])
    return out


@numba.njit(cache=True)
def _smooth_range(
    tr: np.ndarray, zx: np.ndarray, zy: np.ndarray, r: np.ndarray, start: np.ndarray, w: np.ndarray,
    i0: int, i1: int, sc: float, om: float, ds: float, ox: np.ndarray, oy: np.ndarray, ovar: np.ndarray,
) -> None:
    """Filter then RTS-smooth rows ``i0..i1-1``; writes positions (m) and position variance
    (m², per axis). Rows before a segment's first observed fix get NaN."""
    n = i1 - i0
    mf = np.empty((n, 4))  # filtered [x, vx, y, vy]
    pf = np.empty((n, 3))  # filtered covariance [p00, p01, p11], shared by both axes
    pp = np.empty((n, 3))  # predicted covariance of row j (from j-1)
    ff = np.empty((n, 4))  # effective F used to predict row j
    first = np.zeros(n, dtype=np.bool_)  # row j starts a chain (nothing before it is used)
    on = False
    for j in range(n):
        i = i0 + j
        ri = r[i]
        if start[i] or j == 0:
            on = False
        if not on:
            first[j] = True
            if ri == np.inf:
                mf[j, :] = np.nan
                pf[j, :] = np.nan
                continue
            on = True
            mf[j, 0] = zx[i]
            mf[j, 1] = 0.0
            mf[j, 2] = zy[i]
            mf[j, 3] = 0.0
            pf[j, 0] = ri
            pf[j, 1] = 0.0
            pf[j, 2] = sc * tr[i, 8]
            continue
        f00, f01, f10, f11, a00, a01, a11, _, _, _, _ = _step(tr, i, om * w[i], sc, ds,
                                                              pf[j - 1, 0], pf[j - 1, 1], pf[j - 1, 2])
        pp[j, 0] = a00
        pp[j, 1] = a01
        pp[j, 2] = a11
        ff[j, 0] = f00
        ff[j, 1] = f01
        ff[j, 2] = f10
        ff[j, 3] = f11
        mx0, mx1 = phi_apply(f00, f01, f10, f11, mf[j - 1, 0], mf[j - 1, 1])
        my0, my1 = phi_apply(f00, f01, f10, f11, mf[j - 1, 2], mf[j - 1, 3])
        if ri == np.inf:
            mf[j, 0], mf[j, 1], mf[j, 2], mf[j, 3] = mx0, mx1, my0, my1
            pf[j, 0], pf[j, 1], pf[j, 2] = a00, a01, a11
            continue
        s = a00 + ri
        k0 = a00 / s
        k1 = a01 / s
        vx = zx[i] - mx0
        vy = zy[i] - my0
        mf[j, 0] = mx0 + k0 * vx
        mf[j, 1] = mx1 + k1 * vx
        mf[j, 2] = my0 + k0 * vy
        mf[j, 3] = my1 + k1 * vy
        pf[j, 0] = a00 - k0 * a00
        pf[j, 1] = a01 - k0 * a01
        pf[j, 2] = a11 - k1 * a01
    # RTS backward pass; the last row of each chain keeps its filtered estimate
    sx0 = sx1 = sy0 = sy1 = 0.0
    s00 = s01 = s11 = 0.0
    for j in range(n - 1, -1, -1):
        i = i0 + j
        last = j == n - 1 or first[j + 1]
        if last:
            sx0, sx1, sy0, sy1 = mf[j, 0], mf[j, 1], mf[j, 2], mf[j, 3]
            s00, s01, s11 = pf[j, 0], pf[j, 1], pf[j, 2]
        else:
            f00, f01, f10, f11 = ff[j + 1, 0], ff[j + 1, 1], ff[j + 1, 2], ff[j + 1, 3]
            b00, b01, b11 = pp[j + 1, 0], pp[j + 1, 1], pp[j + 1, 2]
            p00, p01, p11 = pf[j, 0], pf[j, 1], pf[j, 2]
            g00, g01, g10, g11 = rts_gain(p00, p01, p11, f00, f01, f10, f11, b00, b01, b11)
            # predicted mean of row j+1 from filtered row j, then the smoothed one
            px0, px1 = phi_apply(f00, f01, f10, f11, mf[j, 0], mf[j, 1])
            py0, py1 = phi_apply(f00, f01, f10, f11, mf[j, 2], mf[j, 3])
            gx0, gx1 = phi_apply(g00, g01, g10, g11, sx0 - px0, sx1 - px1)
            gy0, gy1 = phi_apply(g00, g01, g10, g11, sy0 - py0, sy1 - py1)
            sx0, sx1 = mf[j, 0] + gx0, mf[j, 1] + gx1
            sy0, sy1 = mf[j, 2] + gy0, mf[j, 3] + gy1
            # P_s = P_f + G (P_s' - B) Gᵀ
            s00, s01, s11 = rts_cov(p00, p01, p11, g00, g01, g10, g11, s00 - b00, s01 - b01, s11 - b11)
        ox[i] = sx0
        oy[i] = sy0
        ovar[i] = s00


@numba.njit(cache=True, parallel=True)
def smooth_all(
    tr: np.ndarray, zx: np.ndarray, zy: np.ndarray, r: np.ndarray, start: np.ndarray, w: np.ndarray,
    bounds: np.ndarray, sc: np.ndarray, om: np.ndarray, ds: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Smoothed x, y (m) and position variance (m², per axis) of every row; animal ``k`` has
    process scale ``sc[k]``, still weight ``om[k] * w[i]`` and still diffusion ``ds[k]`` (m²/s)."""
    m = zx.size
    ox = np.empty(m)
    oy = np.empty(m)
    ovar = np.empty(m)
    for k in numba.prange(bounds.size - 1):
        _smooth_range(tr, zx, zy, r, start, w, bounds[k], bounds[k + 1], sc[k], om[k], ds[k], ox, oy, ovar)
    return ox, oy, ovar
