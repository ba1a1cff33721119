"""Track smoothing: Kalman filter + Rauch–Tung–Striebel smoother in continuous time.

Model
-----
Each coordinate (east ``x`` and north ``y``, metres, in a local azimuthal
equidistant projection per animal, see :mod:`telemetry.trajectory.projection`)
follows the continuous-time correlated random walk of Johnson et al. (2008):
velocity is an Ornstein–Uhlenbeck process and position its integral,

    dv = -v / tau dt + sqrt(2 q / tau) dW,      dx = v dt,

with ``tau`` (s) the velocity autocorrelation time and ``q`` (m²/s²) the
stationary velocity variance per axis (``sqrt(q)`` = ``speed_sd_ms``). The
transition over any Δt is discretised *exactly* (closed-form F and Q, with a
series for small ``Δt / tau`` to avoid cancellation), so irregular schedules
and gaps need no resampling. For ``Δt >> tau`` the position becomes Brownian
with diffusion ``2 q tau``; for ``Δt << tau`` it is nearly constant velocity.

Measurement error is per fix, from its own quality (``sigma_m`` below is the
1-σ error of each coordinate, east and north, in metres):

* GPS 3D / 2D: ``sigma = UERE × HDOP`` with separate UERE for 3D and 2D fixes
  (Langley 1999, "Dilution of precision", GPS World; D'Eon & Delparte 2005,
  J. Appl. Ecol. 42:383 for collar UERE); missing/non-positive HDOP →
  ``default_hdop``. ``fix_type`` ``none``/NA with coordinates is treated as 2D.
* Argos: by location class, from the CLS Argos User's Manual nominal accuracies
  (3: < 250 m, 2: 250–500 m, 1: 500–1500 m, 0: > 1500 m) and the errors measured
  on tracked animals for 0/A/B by Vincent et al. (2002, Mar. Mamm. Sci. 18:156)
  and Costa et al. (2010, PLoS ONE 5:e8677), which are several km.

Process noise is not hard-coded: per animal, ``q`` maximises the innovation
(prediction-error) likelihood of the Kalman filter; ``tau`` is either fixed
(``tau_s``) or chosen per animal from ``tau_grid_s`` by the same likelihood
(profile likelihood). The likelihood for all animals is evaluated in one numba
pass over all rows and the 1-D search over ``log q`` (a coarse grid to bracket,
then golden-section) runs for all animals at once.

Two regimes (still / active)
---------------------------
One process-noise level per animal is dominated by the moving spells, so the
many fixes of a resting bout (a day bed, a kill site held for days) would be
tracked rather than averaged. With ``regimes=True`` (default) each step (fix
``i-1`` → fix ``i``) is *still* or *active*, with its own ``q``:

1. a two-state HMM on the raw displacements labels the steps: under regime ``k``
   the displacement is ``N(0, (σ²_{i-1} + σ²_i + D_k Δt) I₂)`` (Brownian with
   diffusion ``D_k`` plus the error of both fixes), the regimes a Markov chain
   over steps; fitted per animal by EM (Baum–Welch; Rabiner 1989), giving
   ``w_i = P(still)`` per step;
2. the Kalman filter/RTS smoother uses ``q_i = w_i q_still + (1 - w_i) q_active``.
   ``Q`` is linear in ``q`` for fixed ``tau``, so this is the moment-matched
   (mixture-mean) process noise of the two regimes; ``q_still`` and
   ``q_active`` are ML estimates of the Kalman innovation likelihood
   (coordinate ascent, ``tau`` from the one-level profile).

An animal keeps two regimes only when BIC (Schwarz 1978) prefers them over one
level, counting ``q_still`` and the four HMM parameters; a homogeneous track
(slow and fast spells of one OU velocity) stays one-level. This is a two-pass
approximation of a switching (IMM, Blom & Bar-Shalom 1988) smoother: the
regimes are estimated from the raw steps, not jointly with the state.

Rows
----
Only usable rows (``flag`` NA, time and both coordinates present) are smoothed.
Flagged or coordinate-less rows get NaN in ``lon_s``, ``lat_s``, ``se_m`` —
deliberately not interpolated, because flagged rows include clock jumps and
duplicates whose times cannot be trusted. The filter restarts at each segment:
``segment_id`` (if the column exists) or, failing that, a gap longer than
``max_gap_h``.

Outputs
-------
``lon_s``, ``lat_s`` (degrees WGS84), ``se_m`` (metres): the smoothed position
and its standard error per coordinate, ``sqrt((P_xx + P_yy) / 2)`` of the
smoothed covariance (same convention as ``sigma_m``; the radial RMS error is
``sqrt(2) × se_m``). Fitted per-animal parameters are in
``out.attrs["smooth"]``.

References
----------
Johnson, D. S., London, J. M., Lea, M.-A. & Durban, J. W. (2008). Continuous-time
correlated random walk model for animal telemetry data. Ecology 89:1208–1215.
Rauch, H. E., Tung, F. & Striebel, C. T. (1965). AIAA Journal 3:1445–1450.
Rabiner, L. R. (1989). A tutorial on hidden Markov models. Proc. IEEE 77:257–286.
Schwarz, G. (1978). Estimating the dimension of a model. Ann. Stat. 6:461–464.
Blom, H. A. P. & Bar-Shalom, Y. (1988). The interacting multiple model algorithm for systems with
Markovian switching coefficients. IEEE Trans. Autom. Control 33:780–783.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numba
import numpy as np
import pandas as pd

from telemetry.trajectory.projection import project_by_group

__all__ = ["SmoothParams", "smooth", "measurement_sigma_m", "ARGOS_ERROR_M"]

ARGOS_ERROR_M: dict[str, float] = {
    "3": 250.0,
    "2": 500.0,
    "1": 1500.0,
    "0": 3000.0,
    "A": 3000.0,
    "B": 6000.0,
    "Z": 10000.0,
}
"""Default 1-σ error per coordinate (m) by Argos location class (see module docstring)."""


@dataclass(frozen=True)
class SmoothParams:
    """Parameters of :func:`smooth` (defaults for snow leopard GPS collars).

    Attributes
    ----------
    uere_3d_m, uere_2d_m : float
        User-equivalent range error (m) for 3D / 2D GPS fixes; σ = UERE × HDOP.
    default_hdop : float
        HDOP used when a GPS fix has none (dimensionless).
    argos_error_m : dict
        1-σ error per coordinate (m) by Argos location class.
    min_sigma_m : float
        Floor on the measurement σ (m); HDOP < 1 with a small UERE is not better than this.
    tau_s : float or None
        Velocity autocorrelation time (s). None: chosen per animal from ``tau_grid_s`` by likelihood.
    tau_grid_s : tuple of float
        Candidate ``tau`` (s) for the profile likelihood.
    speed_sd_bounds_ms : (float, float)
        Search range (m/s) for the stationary speed s.d. per axis, ``sqrt(q)``.
    default_speed_sd_ms : float
        ``sqrt(q)`` (m/s) for animals with fewer than ``min_fixes_ml`` fixes.
    min_fixes_ml : int
        Fewest usable fixes for which ``q`` is estimated.
    max_gap_h : float
        Restart the filter after a gap longer than this (h), only when there is no ``segment_id``.
    regimes : bool
        Two process-noise levels per animal (still / active, see the module docstring); False: one level.
    regime_max_iter : int
        Most EM iterations of the step HMM that labels still / active steps.
    regime_rounds : int
        Rounds of coordinate ascent over (``q_still``, ``q_active``); one is enough on the sample
        (a second changed the RMSE by < 0.1 %).
    """

    uere_3d_m: float = 10.0
    uere_2d_m: float = 30.0
    default_hdop: float = 2.0
    argos_error_m: dict[str, float] = field(default_factory=lambda: dict(ARGOS_ERROR_M))
    min_sigma_m: float = 1.0
    tau_s: float | None = None
    tau_grid_s: tuple[float, ...] = (300.0, 1800.0, 7200.0, 28800.0)
    speed_sd_bounds_ms: tuple[float, float] = (1e-4, 20.0)
    default_speed_sd_ms: float = 0.1
    min_fixes_ml: int = 10
    max_gap_h: float = 24.0
    regimes: bool = True
    regime_max_iter: int = 100
    regime_rounds: int = 1


# --------------------------------------------------------------------------- numba kernels


@numba.njit(cache=True, inline="always")
def _unit_discretise(dt: float, beta: float) -> tuple[float, float, float, float, float]:
    """Exact transition of the integrated OU velocity over ``dt`` seconds, per unit ``q``.

    Returns F01, F11, U00, U01, U11 (per axis) for state [position, velocity]
    with F = [[1, F01], [0, F11]] and process covariance Q = q × U. ``beta = 1/tau``;
    ``q`` = stationary velocity variance (m²/s²), so the diffusion is ``2 beta q``.
    Separating q lets the ML search over q reuse one table per time scale
    (:func:`_unit_transitions`) instead of one exponential per row and pass.
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
def _discretise(dt: float, beta: float, q: float) -> tuple[float, float, float, float, float]:
    """F01, F11, Q00, Q01, Q11 of :func:`_unit_discretise` with Q scaled by ``q`` (m²/s²)."""
    f01, f11, u00, u01, u11 = _unit_discretise(dt, beta)
    return f01, f11, q * u00, q * u01, q * u11


@numba.njit(cache=True, parallel=True)
def _unit_transitions(dt: np.ndarray, bounds: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Rows × [F01, F11, U00, U01, U11] of :func:`_unit_discretise`; animal ``k`` (rows
    ``bounds[k]:bounds[k+1]``) uses ``beta[k]`` (1/s)."""
    out = np.empty((dt.size, 5))
    n = bounds.size - 1
    for k in numba.prange(n):
        for i in range(bounds[k], bounds[k + 1]):
            f01, f11, u00, u01, u11 = _unit_discretise(dt[i], beta[k])
            out[i, 0] = f01
            out[i, 1] = f11
            out[i, 2] = u00
            out[i, 3] = u01
            out[i, 4] = u11
    return out


@numba.njit(cache=True)
def _filter_loglik_range(
    tr: np.ndarray,
    zx: np.ndarray,
    zy: np.ndarray,
    r: np.ndarray,
    start: np.ndarray,
    i0: int,
    i1: int,
    qa: float,
    dq: float,
    w: np.ndarray,
) -> float:
    """Innovation log-likelihood of rows ``i0..i1-1`` (both axes); ``q_i = qa + dq * w[i]`` (m²/s²)
    drives the step into row ``i``.

    The two-level process noise of the regimes (``dq = q_still - q_active``, ``w`` = P(still));
    ``dq = 0``: one level (``qa + 0 * w == qa`` exactly); ``qa = 0, dq = 1``: any per-row ``q = w``.
    The same filter recurrence as :func:`_smooth_range`, kept separate on purpose: the ML
    search runs it ~50 times per fit (each golden-section step; the grids run several ``q``
    at once in :func:`_filter_loglik_lanes`), and it keeps no per-row arrays (scalars only).
    ``tr`` is the :func:`_unit_transitions` table of the rows' time scale.
    ``tests/test_smooth.py`` checks both against one dense-matrix Kalman reference.
    """
    ll = 0.0
    mx0 = mx1 = my0 = my1 = 0.0
    p00 = p01 = p11 = 0.0
    # Σ log(2π s) as the log of running products of up to 16 s (m², each in [1, ~1e12]:
    # no overflow), one logarithm per 16 rows: ~25 % faster per pass, measured on 1M rows
    prod = 1.0
    n_prod = 0
    n_obs = 0
    for i in range(i0, i1):
        qi = qa + dq * w[i]
        if start[i] or i == i0:
            # diffuse start: the first fix of a segment defines the position
            mx0 = zx[i]
            my0 = zy[i]
            mx1 = 0.0
            my1 = 0.0
            p00 = r[i]
            p01 = 0.0
            p11 = qi
            continue
        f01 = tr[i, 0]
        f11 = tr[i, 1]
        q00 = qi * tr[i, 2]
        q01 = qi * tr[i, 3]
        q11 = qi * tr[i, 4]
        # predict
        a00 = p00 + 2.0 * f01 * p01 + f01 * f01 * p11 + q00
        a01 = f11 * (p01 + f01 * p11) + q01
        a11 = f11 * f11 * p11 + q11
        mx0 = mx0 + f01 * mx1
        mx1 = f11 * mx1
        my0 = my0 + f01 * my1
        my1 = f11 * my1
        # update (H = [1, 0], isotropic R: the covariance is shared by both axes)
        s = a00 + r[i]
        inv_s = 1.0 / s
        k0 = a00 * inv_s
        k1 = a01 * inv_s
        vx = zx[i] - mx0
        vy = zy[i] - my0
        ll -= 0.5 * (vx * vx + vy * vy) * inv_s
        prod *= s
        n_prod += 1
        n_obs += 1
        if n_prod == 16:
            ll -= math.log(prod)
            prod = 1.0
            n_prod = 0
        mx0 += k0 * vx
        mx1 += k1 * vx
        my0 += k0 * vy
        my1 += k1 * vy
        p00 = a00 - k0 * a00
        p01 = a01 - k0 * a01
        p11 = a11 - k1 * a01
    return ll - math.log(prod) - n_obs * math.log(2.0 * math.pi)


@numba.njit(cache=True)
def _filter_loglik_lanes(
    tr: np.ndarray,
    zx: np.ndarray,
    zy: np.ndarray,
    r: np.ndarray,
    start: np.ndarray,
    i0: int,
    i1: int,
    qa: np.ndarray,
    qs: np.ndarray,
    w: np.ndarray,
    out: np.ndarray,
) -> None:
    """:func:`_filter_loglik_range` for ``L = qa.size`` process-noise levels ("lanes") in one loop.

    Lane ``j`` uses ``q_i = qa[j] + (qs[j] - qa[j]) * w[i]`` (m²/s²) for the step into row ``i``,
    the same expression (same rounding) as the per-row ``q`` the search used to build in
    numpy, so each lane's log-likelihood is bit-identical to a :func:`_filter_loglik_range`
    pass; ``qs = qa`` gives one level (``qa + 0 * w == qa``). Why lanes: one filter is
    latency-bound (a division on the Riccati recursion's critical path every row), so
    independent filters on the same rows fill the idle cycles: ~0.5 of the CPU time per
    level for a grid of 12 (measured; one lane alone is slower than the scalar kernel).
    Writes ``out[j]``.
    """
    nl = qa.size
    mx0 = np.zeros(nl)
    mx1 = np.zeros(nl)
    my0 = np.zeros(nl)
    my1 = np.zeros(nl)
    p00 = np.zeros(nl)
    p01 = np.zeros(nl)
    p11 = np.zeros(nl)
    ll = np.zeros(nl)
    prod = np.ones(nl)
    dq = qs - qa
    n_prod = 0
    n_obs = 0
    for i in range(i0, i1):
        wi = w[i]
        if start[i] or i == i0:
            # diffuse start: the first fix of a segment defines the position
            for j in range(nl):
                mx0[j] = zx[i]
                my0[j] = zy[i]
                mx1[j] = 0.0
                my1[j] = 0.0
                p00[j] = r[i]
                p01[j] = 0.0
                p11[j] = qa[j] + dq[j] * wi
            continue
        f01 = tr[i, 0]
        f11 = tr[i, 1]
        u00 = tr[i, 2]
        u01 = tr[i, 3]
        u11 = tr[i, 4]
        ri = r[i]
        zxi = zx[i]
        zyi = zy[i]
        n_prod += 1
        n_obs += 1
        for j in range(nl):
            qi = qa[j] + dq[j] * wi
            a00 = p00[j] + 2.0 * f01 * p01[j] + f01 * f01 * p11[j] + qi * u00
            a01 = f11 * (p01[j] + f01 * p11[j]) + qi * u01
            a11 = f11 * f11 * p11[j] + qi * u11
            m0 = mx0[j] + f01 * mx1[j]
            m1 = f11 * mx1[j]
            n0 = my0[j] + f01 * my1[j]
            n1 = f11 * my1[j]
            s = a00 + ri
            inv_s = 1.0 / s
            k0 = a00 * inv_s
            k1 = a01 * inv_s
            vx = zxi - m0
            vy = zyi - n0
            ll[j] -= 0.5 * (vx * vx + vy * vy) * inv_s
            prod[j] *= s
            mx0[j] = m0 + k0 * vx
            mx1[j] = m1 + k1 * vx
            my0[j] = n0 + k0 * vy
            my1[j] = n1 + k1 * vy
            p00[j] = a00 - k0 * a00
            p01[j] = a01 - k0 * a01
            p11[j] = a11 - k1 * a01
        if n_prod == 16:  # Σ log s as in _filter_loglik_range: one logarithm per 16 rows
            n_prod = 0
            for j in range(nl):
                ll[j] -= math.log(prod[j])
                prod[j] = 1.0
    for j in range(nl):
        out[j] = ll[j] - math.log(prod[j]) - n_obs * math.log(2.0 * math.pi)


@numba.njit(cache=True, parallel=True)
def _loglik_lanes(
    tr: np.ndarray,
    zx: np.ndarray,
    zy: np.ndarray,
    r: np.ndarray,
    start: np.ndarray,
    bounds: np.ndarray,
    qa: np.ndarray,
    qs: np.ndarray,
    w: np.ndarray,
) -> np.ndarray:
    """Log-likelihood per animal and level, shape ``qa.shape`` = ``(n_animals, L)``.

    Animal ``k`` (rows ``bounds[k]:bounds[k+1]``) with the two-level process noise
    ``qa[k, l] + (qs[k, l] - qa[k, l]) * w[i]`` (m²/s², per row ``i``, see
    :func:`_filter_loglik_lanes`); ``tr`` is the :func:`_unit_transitions` table.
    """
    n = bounds.size - 1
    out = np.empty(qa.shape)
    qa = np.ascontiguousarray(qa)  # one compiled signature (C order) whatever the caller's layout
    qs = np.ascontiguousarray(qs)
    for k in numba.prange(n):
        if qa.shape[1] == 1:  # one lane: the scalar kernel (the lanes' state arrays cost ~25 %)
            out[k, 0] = _filter_loglik_range(
                tr, zx, zy, r, start, bounds[k], bounds[k + 1], qa[k, 0], qs[k, 0] - qa[k, 0], w
            )
        else:
            _filter_loglik_lanes(tr, zx, zy, r, start, bounds[k], bounds[k + 1], qa[k], qs[k], w, out[k])
    return out


def _loglik_all(
    dt: np.ndarray,
    zx: np.ndarray,
    zy: np.ndarray,
    r: np.ndarray,
    start: np.ndarray,
    bounds: np.ndarray,
    beta: np.ndarray,
    q: np.ndarray,
) -> np.ndarray:
    """Per-animal log-likelihood; animal ``k`` owns rows ``bounds[k]:bounds[k+1]``; ``q`` is per row
    (m²/s²; as the two-level form ``0 + (1 - 0) * q``, exact)."""
    n = bounds.size - 1
    tr = _unit_transitions(dt, bounds, beta)
    return _loglik_lanes(tr, zx, zy, r, start, bounds, np.zeros((n, 1)), np.ones((n, 1)), q)[:, 0]


@numba.njit(cache=True)
def _smooth_range(
    dt: np.ndarray,
    zx: np.ndarray,
    zy: np.ndarray,
    r: np.ndarray,
    start: np.ndarray,
    i0: int,
    i1: int,
    beta: float,
    q: np.ndarray,
    ox: np.ndarray,
    oy: np.ndarray,
    ovar: np.ndarray,
) -> None:
    """Filter then RTS-smooth rows ``i0..i1-1``; writes positions and position variance."""
    n = i1 - i0
    mf = np.empty((n, 4))  # filtered [x, vx, y, vy]
    pf = np.empty((n, 3))  # filtered covariance [p00, p01, p11], shared by both axes
    pp = np.empty((n, 3))  # predicted covariance of row j (from j-1)
    ff = np.empty((n, 2))  # F01, F11 used to predict row j
    for j in range(n):
        i = i0 + j
        if start[i] or j == 0:
            mf[j, 0] = zx[i]
            mf[j, 1] = 0.0
            mf[j, 2] = zy[i]
            mf[j, 3] = 0.0
            pf[j, 0] = r[i]
            pf[j, 1] = 0.0
            pf[j, 2] = q[i]
            continue
        f01, f11, q00, q01, q11 = _discretise(dt[i], beta, q[i])
        p00, p01, p11 = pf[j - 1, 0], pf[j - 1, 1], pf[j - 1, 2]
        a00 = p00 + 2.0 * f01 * p01 + f01 * f01 * p11 + q00
        a01 = f11 * (p01 + f01 * p11) + q01
        a11 = f11 * f11 * p11 + q11
        pp[j, 0] = a00
        pp[j, 1] = a01
        pp[j, 2] = a11
        ff[j, 0] = f01
        ff[j, 1] = f11
        mx0 = mf[j - 1, 0] + f01 * mf[j - 1, 1]
        mx1 = f11 * mf[j - 1, 1]
        my0 = mf[j - 1, 2] + f01 * mf[j - 1, 3]
        my1 = f11 * mf[j - 1, 3]
        s = a00 + r[i]
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
    # RTS backward pass; the last row of each segment keeps its filtered estimate
    sx0 = sx1 = sy0 = sy1 = 0.0
    s00 = s01 = s11 = 0.0
    for j in range(n - 1, -1, -1):
        i = i0 + j
        last = j == n - 1 or start[i + 1]
        if last:
            sx0, sx1, sy0, sy1 = mf[j, 0], mf[j, 1], mf[j, 2], mf[j, 3]
            s00, s01, s11 = pf[j, 0], pf[j, 1], pf[j, 2]
        else:
            f01, f11 = ff[j + 1, 0], ff[j + 1, 1]
            b00, b01, b11 = pp[j + 1, 0], pp[j + 1, 1], pp[j + 1, 2]
            p00, p01, p11 = pf[j, 0], pf[j, 1], pf[j, 2]
            # C = P_f F^T (2x2, not symmetric)
            c00 = p00 + f01 * p01
            c01 = f11 * p01
            c10 = p01 + f01 * p11
            c11 = f11 * p11
            det = b00 * b11 - b01 * b01
            i00 = b11 / det
            i01 = -b01 / det
            i11 = b00 / det
            # gain G = C B^-1
            g00 = c00 * i00 + c01 * i01
            g01 = c00 * i01 + c01 * i11
            g10 = c10 * i00 + c11 * i01
            g11 = c10 * i01 + c11 * i11
            # predicted mean of row j+1 from filtered row j
            px0 = mf[j, 0] + f01 * mf[j, 1]
            px1 = f11 * mf[j, 1]
            py0 = mf[j, 2] + f01 * mf[j, 3]
            py1 = f11 * mf[j, 3]
            dx0 = sx0 - px0
            dx1 = sx1 - px1
            dy0 = sy0 - py0
            dy1 = sy1 - py1
            sx0 = mf[j, 0] + g00 * dx0 + g01 * dx1
            sx1 = mf[j, 1] + g10 * dx0 + g11 * dx1
            sy0 = mf[j, 2] + g00 * dy0 + g01 * dy1
            sy1 = mf[j, 3] + g10 * dy0 + g11 * dy1
            # P_s = P_f + G (P_s' - B) G^T
            d00 = s00 - b00
            d01 = s01 - b01
            d11 = s11 - b11
            h00 = g00 * d00 + g01 * d01
            h01 = g00 * d01 + g01 * d11
            h10 = g10 * d00 + g11 * d01
            h11 = g10 * d01 + g11 * d11
            n00 = p00 + h00 * g00 + h01 * g01
            n01 = p01 + h00 * g10 + h01 * g11
            n11 = p11 + h10 * g10 + h11 * g11
            s00, s01, s11 = n00, n01, n11
        ox[i] = sx0
        oy[i] = sy0
        ovar[i] = s00


@numba.njit(cache=True, parallel=True)
def _smooth_all(
    dt: np.ndarray,
    zx: np.ndarray,
    zy: np.ndarray,
    r: np.ndarray,
    start: np.ndarray,
    bounds: np.ndarray,
    beta: np.ndarray,
    q: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Smoothed x, y (m) and position variance (m², per axis) for all rows; ``q`` is per row."""
    m = dt.size
    ox = np.empty(m)
    oy = np.empty(m)
    ovar = np.empty(m)
    n = bounds.size - 1
    for k in numba.prange(n):
        _smooth_range(dt, zx, zy, r, start, bounds[k], bounds[k + 1], beta[k], q, ox, oy, ovar)
    return ox, oy, ovar


@numba.njit(cache=True, inline="always")
def _step_loglik(d2: float, c: float, t: float, d: float) -> float:
    """Log density of a 2-D displacement ``d2`` (m²) with per-axis variance ``c + d t`` (m²)."""
    s = c + d * t
    return -math.log(2.0 * math.pi * s) - 0.5 * d2 / s


@numba.njit(cache=True)
def _diffusion_score(d: float, w: np.ndarray, d2: np.ndarray, c: np.ndarray, t: np.ndarray) -> float:
    """Derivative in ``d`` of ``Σ w log N(displacement; 0, (c + d t) I₂)``."""
    g = 0.0
    for j in range(w.size):
        s = c[j] + d * t[j]
        g += w[j] * t[j] * (0.5 * d2[j] / (s * s) - 1.0 / s)
    return g


@numba.njit(cache=True)
def _diffusion_newton(w: np.ndarray, d2: np.ndarray, c: np.ndarray, t: np.ndarray, a: float, b: float,
                      guess: float) -> float:
    """Root in ``log d`` of :func:`_diffusion_score` inside ``[a, b]`` (the score is > 0 at ``a``,
    ≤ 0 at ``b``) by Newton's method safeguarded by bisection; NaN if it does not converge.

    One pass over the steps gives the score and its derivative; from a warm start (the previous
    EM iteration's value) 3-6 passes reach ~1e-13 in ``log d``.
    """
    u = min(max(math.log(guess), a), b) if guess > 0.0 else 0.5 * (a + b)
    for _ in range(100):
        d = math.exp(u)
        g = 0.0
        h = 0.0  # d(score)/dd
        for j in range(w.size):
            inv = 1.0 / (c[j] + d * t[j])
            g += w[j] * t[j] * inv * (0.5 * d2[j] * inv - 1.0)
            h += w[j] * t[j] * t[j] * inv * inv * (1.0 - d2[j] * inv)
        if g > 0.0:
            a = u
        else:
            b = u
        step = g / (h * d)  # Newton in u = log d: dG/du = d * dg/dd
        u_new = u - step
        if not (a < u_new < b):  # outside the bracket (or NaN): bisect instead
            u_new = 0.5 * (a + b)
        if abs(u_new - u) < 1e-13 * max(1.0, abs(u)) or b - a < 1e-13 * max(1.0, abs(u)):
            return u_new
        u = u_new
    return math.nan


@numba.njit(cache=True)
def _weighted_diffusion(w: np.ndarray, d2: np.ndarray, c: np.ndarray, t: np.ndarray, lo: float, hi: float,
                        guess: float = 0.0) -> float:
    """Weighted ML of the diffusion ``d`` (m²/s per axis) in ``N(0, (c + d t) I₂)``, searched in ``[lo, hi]``.

    Bisection in ``log d`` on the sign of the score ``Σ w t (d2 / (2 s²) - 1 / s)``; a boundary
    is returned when the score does not change sign (e.g. displacements all within the fix error).
    The 40 halvings cost 40 passes over the steps and dominated the EM, so the root is first
    found by Newton (:func:`_diffusion_newton`, ``guess`` = a starting ``d``, m²/s) and the
    halvings are replayed from it: a midpoint farther than 1e-10 from the root takes its side
    from the root, only those nearer evaluate the score. With one sign change in ``[lo, hi]``
    the result is bit-identical to plain bisection at ~1/4 of the passes.
    """
    a, b = math.log(lo), math.log(hi)
    if _diffusion_score(lo, w, d2, c, t) <= 0.0:
        return lo
    if _diffusion_score(hi, w, d2, c, t) >= 0.0:
        return hi
    root = _diffusion_newton(w, d2, c, t, a, b, guess)
    for _ in range(40):  # 40 halvings of ~28 log units: relative precision ~3e-11
        m = 0.5 * (a + b)
        if abs(m - root) > 1e-10:  # False for a NaN root: evaluate
            right = m < root
        else:
            right = _diffusion_score(math.exp(m), w, d2, c, t) > 0.0
        if right:
            a = m
        else:
            b = m
    return math.exp(0.5 * (a + b))


@numba.njit(cache=True)
def _backward2(eb: np.ndarray, first: np.ndarray, gam: np.ndarray, be: np.ndarray, m: int) -> None:
    """Backward pass of the 2-state step HMM into ``be`` (each row rescaled to sum 1;
    the posteriors are renormalised anyway). ``eb``: emission densities, each row divided
    by its larger one (``exp(lb - max(lb))``, as the forward pass computed them)."""
    for j in range(m - 1, -1, -1):
        if j == m - 1 or first[j + 1]:
            be[j, 0] = 1.0
            be[j, 1] = 1.0
            continue
        u0 = eb[j + 1, 0] * be[j + 1, 0]
        u1 = eb[j + 1, 1] * be[j + 1, 1]
        v0 = gam[0, 0] * u0 + gam[0, 1] * u1
        v1 = gam[1, 0] * u0 + gam[1, 1] * u1
        be[j, 0] = v0 / (v0 + v1)
        be[j, 1] = v1 / (v0 + v1)


@numba.njit(cache=True)
def _still_range(
    dt: np.ndarray,
    zx: np.ndarray,
    zy: np.ndarray,
    r: np.ndarray,
    start: np.ndarray,
    i0: int,
    i1: int,
    max_iter: int,
    w_out: np.ndarray,
    par_out: np.ndarray,
) -> None:
    """Two-regime (still / active) HMM on the raw displacements of rows ``i0..i1-1``, fitted by EM.

    Step ``i`` (fix ``i-1`` → fix ``i`` in one segment) has displacement ``d`` with per-axis
    variance ``r[i-1] + r[i] + D_k Δt`` in regime ``k`` (Brownian with diffusion ``D_k``, m²/s,
    plus the error of both fixes). Regimes follow a Markov chain over steps (restarted at its
    stationary distribution at each segment). Baum–Welch (scaled forward–backward; closed-form
    transition update; 1-D weighted ML for ``D_k``). Writes ``P(still)`` of each step into
    ``w_out[i]`` (0 at segment starts) and ``[D_still, D_active, p_still_still, p_active_active,
    loglik]`` into ``par_out``.
    """
    # collect the steps
    m = 0
    for i in range(i0 + 1, i1):
        if not start[i]:
            m += 1
    for i in range(i0, i1):
        w_out[i] = 0.0
    par_out[:] = np.nan
    if m < 4:
        return
    row = np.empty(m, np.int64)
    first = np.empty(m, np.bool_)  # first step of its segment
    d2 = np.empty(m)
    c = np.empty(m)
    t = np.empty(m)
    j = 0
    for i in range(i0 + 1, i1):
        if start[i]:
            continue
        row[j] = i
        first[j] = j == 0 or row[j - 1] != i - 1
        ex = zx[i] - zx[i - 1]
        ey = zy[i] - zy[i - 1]
        d2[j] = ex * ex + ey * ey
        c[j] = r[i] + r[i - 1]
        t[j] = max(dt[i], 1.0)
        j += 1
    # start: diffusions from the lower / upper quartile of the excess displacement variance rate
    ex_rate = np.sort(np.maximum(0.5 * d2 - c, 0.0) / t)
    lo_d, hi_d = 1e-8, 1e4
    dk = np.empty(2)
    dk[0] = min(max(ex_rate[m // 4], lo_d), hi_d)
    dk[1] = min(max(ex_rate[(3 * m) // 4], 100.0 * dk[0]), hi_d)
    gam = np.array([[0.9, 0.1], [0.1, 0.9]])
    lb = np.empty((m, 2))
    eb = np.empty((m, 2))
    al = np.empty((m, 2))
    be = np.empty((m, 2))
    g = np.empty((m, 2))
    ll_old = -np.inf
    ll = -np.inf
    for it in range(max_iter + 1):
        pi0 = (1.0 - gam[1, 1]) / (2.0 - gam[0, 0] - gam[1, 1])
        pi1 = 1.0 - pi0
        for j in range(m):
            lb[j, 0] = _step_loglik(d2[j], c[j], t[j], dk[0])
            lb[j, 1] = _step_loglik(d2[j], c[j], t[j], dk[1])
        # scaled forward pass (emissions shifted by their row maximum: no underflow for km steps)
        ll = 0.0
        for j in range(m):
            sh = max(lb[j, 0], lb[j, 1])
            b0 = math.exp(lb[j, 0] - sh)
            b1 = math.exp(lb[j, 1] - sh)
            eb[j, 0] = b0  # kept for the backward pass and the transition counts
            eb[j, 1] = b1
            if first[j]:
                a0 = pi0 * b0
                a1 = pi1 * b1
            else:
                a0 = (al[j - 1, 0] * gam[0, 0] + al[j - 1, 1] * gam[1, 0]) * b0
                a1 = (al[j - 1, 0] * gam[0, 1] + al[j - 1, 1] * gam[1, 1]) * b1
            z = a0 + a1
            al[j, 0] = a0 / z
            al[j, 1] = a1 / z
            ll += math.log(z) + sh
        if it == max_iter or (it > 0 and ll - ll_old < 1e-8 * abs(ll)):
            break
        ll_old = ll
        _backward2(eb, first, gam, be, m)
        # posteriors and expected transitions
        n00 = n01 = n10 = n11 = 1e-9
        for j in range(m):
            p0 = al[j, 0] * be[j, 0]
            p1 = al[j, 1] * be[j, 1]
            g[j, 0] = p0 / (p0 + p1)
            g[j, 1] = 1.0 - g[j, 0]
            if j + 1 < m and not first[j + 1]:
                u0 = eb[j + 1, 0] * be[j + 1, 0]
                u1 = eb[j + 1, 1] * be[j + 1, 1]
                x00 = al[j, 0] * gam[0, 0] * u0
                x01 = al[j, 0] * gam[0, 1] * u1
                x10 = al[j, 1] * gam[1, 0] * u0
                x11 = al[j, 1] * gam[1, 1] * u1
                z = x00 + x01 + x10 + x11
                n00 += x00 / z
                n01 += x01 / z
                n10 += x10 / z
                n11 += x11 / z
        gam[0, 0] = min(max(n00 / (n00 + n01), 1e-3), 1.0 - 1e-3)
        gam[0, 1] = 1.0 - gam[0, 0]
        gam[1, 1] = min(max(n11 / (n10 + n11), 1e-3), 1.0 - 1e-3)
        gam[1, 0] = 1.0 - gam[1, 1]
        dk[0] = _weighted_diffusion(g[:, 0].copy(), d2, c, t, lo_d, hi_d, dk[0])
        dk[1] = _weighted_diffusion(g[:, 1].copy(), d2, c, t, lo_d, hi_d, dk[1])
        if dk[0] > dk[1]:  # keep regime 0 the still one
            dk[0], dk[1] = dk[1], dk[0]
            gam[0, 0], gam[1, 1] = gam[1, 1], gam[0, 0]
            gam[0, 1], gam[1, 0] = 1.0 - gam[0, 0], 1.0 - gam[1, 1]
    # posteriors under the final parameters
    _backward2(eb, first, gam, be, m)
    for j in range(m):
        p0 = al[j, 0] * be[j, 0]
        p1 = al[j, 1] * be[j, 1]
        w_out[row[j]] = p0 / (p0 + p1)
    par_out[0] = dk[0]
    par_out[1] = dk[1]
    par_out[2] = gam[0, 0]
    par_out[3] = gam[1, 1]
    par_out[4] = ll


@numba.njit(cache=True, parallel=True)
def _still_all(
    dt: np.ndarray,
    zx: np.ndarray,
    zy: np.ndarray,
    r: np.ndarray,
    start: np.ndarray,
    bounds: np.ndarray,
    max_iter: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``P(still)`` per step (row) and the fitted step-HMM parameters per animal (see :func:`_still_range`)."""
    n = bounds.size - 1
    w = np.zeros(dt.size)
    par = np.full((n, 5), np.nan)
    for k in numba.prange(n):
        _still_range(dt, zx, zy, r, start, bounds[k], bounds[k + 1], max_iter, w, par[k])
    return w, par


# --------------------------------------------------------------------------- python layer


def measurement_sigma_m(df: pd.DataFrame, params: SmoothParams | None = None, **overrides: Any) -> np.ndarray:
    """Per-fix 1-σ error per coordinate (metres) from the fix's own quality.

    Parameters
    ----------
    df : DataFrame
        Canonical fix table (uses ``fix_type``, ``hdop``, ``argos_lc`` when present).
    params : SmoothParams, optional
    **overrides
        Any :class:`SmoothParams` field, e.g. ``uere_3d_m=8.0``.

    Returns
    -------
    ndarray of float64, metres. GPS: UERE × HDOP (3D or 2D UERE; ``none``/NA
    treated as 2D; missing HDOP → ``default_hdop``); Argos: class error
    (NA class → the largest class error). Floored at ``min_sigma_m``.
    """
    p = _params(params, overrides)
    n = len(df)
    hdop = (
        pd.to_numeric(df["hdop"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        if "hdop" in df
        else np.full(n, np.nan)
    )
    hdop = np.where(np.isfinite(hdop) & (hdop > 0), hdop, p.default_hdop)
    has_ft = "fix_type" in df
    is3d = _equals(df["fix_type"], "3D") if has_ft else np.zeros(n, bool)
    sigma = np.where(is3d, p.uere_3d_m, p.uere_2d_m) * hdop
    if has_ft and "argos_lc" in df:
        is_argos = _equals(df["fix_type"], "argos")
        if is_argos.any():
            lc = df["argos_lc"].astype("string").fillna("Z").to_numpy(dtype=object)
            worst = max(p.argos_error_m.values())
            err = pd.Series(lc).map(p.argos_error_m).fillna(worst).to_numpy(dtype=float)
            sigma = np.where(is_argos, err, sigma)
    return np.maximum(sigma, p.min_sigma_m)


def _equals(col: pd.Series, value: str) -> np.ndarray:
    """``col == value`` as a bool array, NA → False, without a Python string per row
    (categorical: compares codes; ``astype("string").to_numpy(object)`` cost ~0.2 s per 1M rows)."""
    return col.eq(value).fillna(False).to_numpy(dtype=bool)


def _factorize_sorted(col: pd.Series, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``pd.factorize(col.to_numpy()[rows], sort=True)``: codes and sorted names of ``col[rows]`` (no NA).

    A categorical of string categories is factorised from its codes (no object array of 1M
    names, ~10x faster); the same codes and names as the generic path.
    """
    if isinstance(col.dtype, pd.CategoricalDtype) and rows.size:
        cats = col.cat.categories
        if cats.inferred_type == "string":
            cat_codes = col.cat.codes.to_numpy()[rows].astype(np.int64)
            used = np.flatnonzero(np.bincount(cat_codes, minlength=len(cats)))
            names = cats[used].to_numpy(dtype=object)
            srt = np.argsort(names, kind="stable")
            lut = np.empty(len(cats), np.int64)
            lut[used[srt]] = np.arange(used.size)
            return lut[cat_codes], names[srt]
    return pd.factorize(col.to_numpy()[rows], sort=True)


def _params(params: SmoothParams | None, overrides: dict[str, Any]) -> SmoothParams:
    p = params if params is not None else SmoothParams()
    if overrides:
        known = {f.name for f in fields(SmoothParams)}
        bad = set(overrides) - known
        if bad:
            raise TypeError(f"unknown smoothing parameter(s): {sorted(bad)}")
        p = replace(p, **overrides)
    return p


N_GRID = 12
"""Coarse grid points over the log process-noise range (brackets the maximum)."""
N_GOLDEN = 14
"""Golden-section steps after the grid: the bracket (two grid cells, ~4.4 in log q)
shrinks to ~0.005 in log q (0.25 % in speed s.d.), far below what the data resolve."""


def _golden_logq(
    ll_fn: Any, lo: np.ndarray, hi: np.ndarray, n_grid: int = N_GRID, n_golden: int = N_GOLDEN,
    grid_vals: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Maximise ``ll_fn(log_q) -> ll`` on ``[lo, hi]`` for all animals at once.

    ``ll_fn`` maps ``log q`` of shape ``(n_animals, L)`` to the log-likelihoods (same shape): the
    ``L`` points of an animal run in one pass (:func:`_loglik_lanes`). A coarse grid brackets the
    maximum (the likelihood in log q can be flat and is not guaranteed unimodal over decades),
    then golden-section search refines within the two grid cells around the best grid point.
    ``grid_vals`` (shape ``(n_grid, n_animals)``) reuses grid evaluations already made.
    """
    grid = np.linspace(0.0, 1.0, n_grid)
    if grid_vals is not None:
        vals = grid_vals
    else:
        vals = ll_fn(np.stack([lo + g * (hi - lo) for g in grid], axis=1)).T
    vals = np.where(np.isfinite(vals), vals, -np.inf)
    best = np.argmax(vals, axis=0)
    step = (hi - lo) / (n_grid - 1)
    a = lo + np.maximum(best - 1, 0) * step
    b = lo + np.minimum(best + 1, n_grid - 1) * step
    invphi = (math.sqrt(5.0) - 1.0) / 2.0
    c = b - invphi * (b - a)
    d = a + invphi * (b - a)
    fcd = ll_fn(np.stack([c, d], axis=1))
    fc, fd = fcd[:, 0], fcd[:, 1]
    for _ in range(n_golden):
        left = fc > fd  # maximum lies in [a, d]
        b = np.where(left, d, b)
        a = np.where(left, a, c)
        new_c = b - invphi * (b - a)
        new_d = a + invphi * (b - a)
        # reuse the surviving interior point; evaluate one new point per animal
        c_next = np.where(left, new_c, d)
        d_next = np.where(left, c, new_d)
        f_new = ll_fn(np.where(left, c_next, d_next)[:, None])[:, 0]
        fc, fd = np.where(left, f_new, fd), np.where(left, fc, f_new)
        c, d = c_next, d_next
    x = 0.5 * (a + b)
    fx = ll_fn(x[:, None])[:, 0]
    # keep the best grid point if refinement found nothing better (flat / edge maxima)
    gbest = lo + best * step
    gval = vals[best, np.arange(vals.shape[1])]
    take_grid = gval > fx
    return np.where(take_grid, gbest, x), np.where(take_grid, gval, fx)


def smooth(df: pd.DataFrame, params: SmoothParams | None = None, **overrides: Any) -> pd.DataFrame:
    """Smooth every animal's track with a continuous-time Kalman filter + RTS smoother.

    Parameters
    ----------
    df : DataFrame
        Canonical fix table (``animal_id, time, lon, lat, fix_type, hdop, argos_lc, flag``;
        optional ``segment_id``). Rows may be in any order.
    params : SmoothParams, optional
        Defaults: :class:`SmoothParams` (snow leopard GPS collars).
    **overrides
        Any :class:`SmoothParams` field with its unit in its name, e.g.
        ``uere_3d_m=8.0, uere_2d_m=25.0, argos_error_m={...}, tau_s=3600.0``.

    Returns
    -------
    DataFrame
        A copy of ``df`` (same rows, same order) with ``lon_s``, ``lat_s`` (degrees WGS84),
        ``se_m`` (1-σ per-coordinate standard error of the smoothed position, metres) and
        ``sigma_m`` (the measurement error assumed per fix, metres). Unusable rows get NaN.
        ``out.attrs["smooth"]`` holds per animal: ``speed_sd_ms`` (``sqrt(q_active)``, m/s),
        ``speed_sd_still_ms`` (``sqrt(q_still)``; equal when one regime), ``tau_s``, ``n_regimes``,
        ``still_share`` (mean ``P(still)`` of the steps), ``still_diffusion_m2s`` /
        ``active_diffusion_m2s`` (step-HMM ``D_k``, m²/s per axis), ``loglik``,
        ``loglik_one_regime`` and ``n_fixes``.

    Examples
    --------
    >>> out = smooth(fixes, uere_3d_m=8.0)  # doctest: +SKIP
    >>> out[["lon_s", "lat_s", "se_m"]].describe()  # doctest: +SKIP
    """
    p = _params(params, overrides)
    out = df.copy(deep=False)  # copy-on-write: new columns only, the input's stay shared
    n = len(df)
    lon_s = np.full(n, np.nan)
    lat_s = np.full(n, np.nan)
    se = np.full(n, np.nan)
    sigma_all = measurement_sigma_m(df, p)

    t_ns = df["time"].to_numpy(dtype="datetime64[ns]").view(np.int64) if n else np.empty(0, np.int64)
    lon = pd.to_numeric(df["lon"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    lat = pd.to_numeric(df["lat"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    usable = np.isfinite(lon) & np.isfinite(lat) & df["time"].notna().to_numpy()
    if "flag" in df:
        usable &= df["flag"].isna().to_numpy()
    usable &= df["animal_id"].notna().to_numpy()  # a fix of no known animal is on no track
    attrs: dict[str, dict[str, float]] = {}
    rows = np.flatnonzero(usable)
    if rows.size:
        animal_codes, animal_names = _factorize_sorted(df["animal_id"], rows)
        t = t_ns[rows]
        da, dtn = np.diff(animal_codes), np.diff(t)
        if not ((da > 0) | ((da == 0) & (dtn >= 0))).all():  # processed tracks come sorted: skip the sort
            order = np.lexsort((t, animal_codes))  # stable: an already sorted table keeps its order
            rows = rows[order]
            animal_codes = animal_codes[order]
            t = t[order]
        a = animal_codes
        n_animals = len(animal_names)
        bounds = np.searchsorted(a, np.arange(n_animals + 1)).astype(np.int64)
        dt = np.empty(rows.size)
        dt[0] = 0.0
        dt[1:] = np.diff(t) / 1e9  # int64 ns differences: no float precision loss on absolute times
        start = np.ones(rows.size, dtype=np.bool_)
        start[1:] = a[1:] != a[:-1]
        if "segment_id" in df:
            seg = pd.factorize(df["segment_id"].to_numpy()[rows])[0]
            start[1:] |= seg[1:] != seg[:-1]
        else:
            start[1:] |= dt[1:] > p.max_gap_h * 3600.0

        x, y, proj = project_by_group(lon[rows], lat[rows], a, n_animals)
        r = sigma_all[rows] ** 2

        n_fix = np.diff(bounds)
        fit = n_fix >= p.min_fixes_ml
        taus = (p.tau_s,) if p.tau_s is not None else tuple(p.tau_grid_s)
        lo = np.full(n_animals, 2.0 * math.log(p.speed_sd_bounds_ms[0]))
        hi = np.full(n_animals, 2.0 * math.log(p.speed_sd_bounds_ms[1]))
        best_ll = np.full(n_animals, -np.inf)
        best_logq = np.full(n_animals, 2.0 * math.log(p.default_speed_sd_ms))
        best_tau = np.full(n_animals, taus[0])
        if fit.any():
            # profile the velocity time scale on the coarse log-q grid, then refine
            # log q by golden section only at each animal's best time scale
            grid = np.linspace(0.0, 1.0, N_GRID)
            q_grid = np.exp(np.stack([lo + g * (hi - lo) for g in grid], axis=1))  # (animal, grid)
            vals = np.full((len(taus), N_GRID, n_animals), -np.inf)
            no_w = np.zeros(rows.size)  # one level: q_i = qa + (qa - qa) * 0
            for k, tau in enumerate(taus):
                tr = _unit_transitions(dt, bounds, np.full(n_animals, 1.0 / tau))
                vals[k] = _loglik_lanes(tr, x, y, r, start, bounds, q_grid, q_grid, no_w).T
            vals = np.where(np.isfinite(vals), vals, -np.inf)
            k_best = np.argmax(vals.max(axis=1), axis=0)
            best_tau = np.asarray(taus, dtype=float)[k_best]
            tr_best = _unit_transitions(dt, bounds, 1.0 / best_tau)

            def ll_fn(logq: np.ndarray) -> np.ndarray:
                q = np.exp(logq)
                return _loglik_lanes(tr_best, x, y, r, start, bounds, q, q, no_w)

            logq, ll = _golden_logq(ll_fn, lo, hi, grid_vals=vals[k_best, :, np.arange(n_animals)].T)
            best_ll = np.where(fit, ll, best_ll)
            best_logq = np.where(fit, logq, best_logq)
            best_tau = np.where(fit, best_tau, taus[0])
        q_single = np.exp(best_logq)
        q_active = q_single.copy()
        q_still = q_single.copy()
        beta = 1.0 / best_tau
        ll_single = best_ll.copy()
        w = np.zeros(rows.size)
        hmm = np.full((n_animals, 5), np.nan)
        if p.regimes and fit.any():
            # pass 1: P(still) of every step from the raw displacements (step HMM, EM)
            w, hmm = _still_all(dt, x, y, r, start, bounds, p.regime_max_iter)
            # pass 2: ML of the two process-noise levels by coordinate ascent on the Kalman
            # likelihood with the moment-matched per-step q (Q is linear in q for fixed tau)
            # tr_best (from the one-level fit) already holds every fitted animal's time scale; the
            # others' likelihoods are discarded below

            def ll_still(logq: np.ndarray) -> np.ndarray:
                qa = np.repeat(q_active[:, None], logq.shape[1], axis=1)
                return _loglik_lanes(tr_best, x, y, r, start, bounds, qa, np.exp(logq), w)

            def ll_active(logq: np.ndarray) -> np.ndarray:
                qs = np.repeat(q_still[:, None], logq.shape[1], axis=1)
                return _loglik_lanes(tr_best, x, y, r, start, bounds, np.exp(logq), qs, w)

            for _ in range(p.regime_rounds):
                logq, ll = _golden_logq(ll_still, lo, hi)
                q_still = np.where(fit, np.exp(logq), q_still)
                logq, ll = _golden_logq(ll_active, lo, hi)
                q_active = np.where(fit, np.exp(logq), q_active)
            # BIC (Schwarz 1978): keep two regimes only where the likelihood gain pays for the extra
            # parameters (q_still and the step HMM's two diffusions and two stay probabilities);
            # a homogeneous track (slow and fast spells of one OU velocity) stays one-regime
            two = fit & (2.0 * (ll - ll_single) > 5.0 * np.log(np.maximum(n_fix, 2)))
            q_active = np.where(two, q_active, q_single)
            q_still = np.where(two, q_still, q_single)
            best_ll = np.where(two, ll, best_ll)
        two_regimes = q_still != q_active
        q_row = q_active[a] + (q_still[a] - q_active[a]) * w
        sx, sy, var = _smooth_all(dt, x, y, r, start, bounds, beta, q_row)
        lo_s, la_s = proj.inverse(sx, sy)
        lon_s[rows] = lo_s
        lat_s[rows] = la_s
        se[rows] = np.sqrt(np.maximum(var, 0.0))
        still_share = np.bincount(a, weights=w, minlength=n_animals) / np.maximum(n_fix - 1, 1)
        still_share = np.where(two_regimes, still_share, np.nan)
        for k, name in enumerate(animal_names):
            attrs[str(name)] = {
                "speed_sd_ms": float(math.sqrt(q_active[k])),
                "speed_sd_still_ms": float(math.sqrt(q_still[k])),
                "tau_s": float(best_tau[k]),
                "n_regimes": 2 if two_regimes[k] else 1,
                "still_share": float(still_share[k]),
                "still_diffusion_m2s": float(hmm[k, 0]),
                "active_diffusion_m2s": float(hmm[k, 1]),
                "loglik": float(best_ll[k]) if fit[k] else float("nan"),
                "loglik_one_regime": float(ll_single[k]) if fit[k] else float("nan"),
                "n_fixes": int(n_fix[k]),
            }
    out["lon_s"] = lon_s
    out["lat_s"] = lat_s
    out["se_m"] = se
    out["sigma_m"] = np.where(usable, sigma_all, np.nan)
    out.attrs = {**df.attrs, "smooth": attrs}
    return out
