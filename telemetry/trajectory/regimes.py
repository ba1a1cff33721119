"""Still / active regimes of each step: a two-state hidden Markov model on raw displacements.

A step (fix ``i-1`` → fix ``i`` in one segment) has a 2-D displacement ``d``. Under the
**still** regime the animal did not move, so ``d`` is the difference of the two fixes'
errors: ``N(0, c I₂)`` with ``c = r[i-1] + r[i]`` (m², the fixes' error variances per axis).
Under the **active** regime it moved as a Brownian motion with diffusion ``D`` (m²/s per
axis) over ``Δt``: ``N(0, (c + D Δt) I₂)``. The regimes follow a Markov chain over steps
(restarted at its stationary distribution at each segment), fitted per animal by EM
(Baum–Welch; Rabiner 1989) with a closed-form transition update and a 1-D weighted
maximum-likelihood root for ``D``. The output is ``w_i = P(still)`` per step, which
:mod:`telemetry.trajectory.kalman` uses as the still weight of the step.

The still regime may drift slowly (``D_still``, bed shifts and moves around a kill; no faster
than the caller's ``d_still_max``, the smoother's own still-drift range), but from one step
the drift and the error cannot be told apart, so the HMM only labels the steps; the error
scale and the drift are estimated by the smoother's likelihood over whole resting bouts
(:mod:`telemetry.trajectory.smooth`), where error is independent from fix to fix and drift
is not.

Reference: Rabiner, L. R. (1989). A tutorial on hidden Markov models and selected
applications in speech recognition. Proc. IEEE 77:257–286.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from telemetry.arrays import over_groups
from telemetry.trajectory._arrays import log_absorb

__all__ = ["still_weights"]

_LOG_2PI = math.log(2.0 * math.pi)


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
    EM iteration's value) 3-6 passes reach ~1e-13 in ``log d``. (Before the converged step was
    taken as converged, it fell outside the bracket by rounding about every other time, and
    bisection took it back: 17 passes per root on average, one root 50, on the first 60,000
    fixes (6 animals) of ``scripts/bench.py``'s second generator.)
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
        if abs(step) < 1e-13 * max(1.0, abs(u)):
            # converged; at the root the rounded step can point just outside the bracket that
            # u itself now bounds, and bisecting the rest of it took ~40 more passes
            return u
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
    by one regime's (as the forward pass computed them)."""
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
def _still_em(d2: np.ndarray, c: np.ndarray, t: np.ndarray, first: np.ndarray, m: int, max_iter: int, lo_d: float,
              hi_d: float, hi_still: float, dk: np.ndarray, gam: np.ndarray, eb: np.ndarray,
              al: np.ndarray, be: np.ndarray, g: np.ndarray) -> float:
    """EM of :func:`_still_range` from the diffusions ``dk`` and transitions ``gam`` (updated in
    place, with the forward variables ``al`` and scaled emissions ``eb`` of the last pass;
    ``be``, ``g`` are work arrays). Returns the log-likelihood."""
    ll_old = -np.inf
    ll = -np.inf
    for it in range(max_iter + 1):
        pi0 = (1.0 - gam[1, 1]) / (2.0 - gam[0, 0] - gam[1, 1])
        pi1 = 1.0 - pi0
        # scaled forward pass. The emissions are taken relative to the active regime's (s0 <= s1:
        # the still one's is exp(-d2/2 (1/s0 - 1/s1)) s1/s0 <= s1/s0, no overflow for km steps),
        # and the log of the scale factors summed in chunks (log_absorb): one exp per step
        ll = 0.0
        det = 1.0
        for j in range(m):
            s0 = c[j] + dk[0] * t[j]
            s1 = c[j] + dk[1] * t[j]
            h = -0.5 * d2[j]
            if s0 <= s1:
                b0 = math.exp(h / s0 - h / s1) * (s1 / s0)
                b1 = 1.0
                ll += h / s1
                sb = s1
            else:  # (the EM keeps regime 0 the slower: only a NaN diffusion gets here)
                b0 = 1.0
                b1 = math.exp(h / s1 - h / s0) * (s0 / s1)
                ll += h / s0
                sb = s0
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
            det, ll = log_absorb(det, sb / z, ll)
        ll -= math.log(det) + m * _LOG_2PI
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
        dk[0] = _weighted_diffusion(g[:, 0].copy(), d2, c, t, lo_d, hi_still, dk[0])
        dk[1] = _weighted_diffusion(g[:, 1].copy(), d2, c, t, lo_d, hi_d, dk[1])
        if dk[0] > dk[1]:  # keep regime 0 the still one
            dk[0], dk[1] = dk[1], dk[0]
            gam[0, 0], gam[1, 1] = gam[1, 1], gam[0, 0]
            gam[0, 1], gam[1, 0] = 1.0 - gam[0, 0], 1.0 - gam[1, 1]
    return ll


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
    d_still_max: float,
    w_out: np.ndarray,
    par_out: np.ndarray,
    init: np.ndarray,
) -> None:
    """Two-regime (still / active) HMM on the raw displacements of rows ``i0..i1-1``, fitted by EM.

    Step ``i`` (fix ``i-1`` → fix ``i`` in one segment) has displacement ``d`` with per-axis
    variance ``r[i-1] + r[i] + D_k Δt`` in regime ``k`` (the error of both fixes and a
    Brownian diffusion ``D_k``, m²/s; ``D_still <= D_active``, ``D_still <= d_still_max``: a
    still regime that drifts faster is a second way of moving, and with few rests the EM found
    one — 30-min fixes moving 80 % of the time, one gross error left at the track's end: D_still
    71, D_active 24,834 m²/s, P(still) 0.998 on every step). Writes ``P(still)`` of each step
    into ``w_out[i]`` (0 at segment starts) and ``[D_still, D_active, p_still_still,
    p_active_active, loglik]`` into ``par_out``. EM starts from ``init`` ``[D_still, D_active,
    p_still_still, p_active_active]`` where all four are finite (a fit of nearly the same steps;
    from the fit of the very same 866,000 steps of ``scripts/bench.py``'s second generator: 0.16
    s against 1.2 s from the quartiles, 2 labels differ), else from the data's quartiles.
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
    lo_d, hi_d = 1e-8, 1e8  # m²/s: a bed shift of a metre a day .. a migrating bird
    hi_still = min(max(d_still_max, lo_d), hi_d)
    dk = np.empty(2)
    gam = np.array([[0.9, 0.1], [0.1, 0.9]])
    if np.isfinite(init).all():
        dk[0] = min(max(init[0], lo_d), hi_still)
        dk[1] = min(max(init[1], dk[0]), hi_d)
        gam[0, 0] = min(max(init[2], 1e-3), 1.0 - 1e-3)
        gam[1, 1] = min(max(init[3], 1e-3), 1.0 - 1e-3)
        gam[0, 1] = 1.0 - gam[0, 0]
        gam[1, 0] = 1.0 - gam[1, 1]
    else:
        dk[0] = min(max(ex_rate[m // 4], lo_d), hi_still)
        dk[1] = min(max(ex_rate[(3 * m) // 4], 100.0 * dk[0]), hi_d)
    eb = np.empty((m, 2))
    al = np.empty((m, 2))
    be = np.empty((m, 2))
    g = np.empty((m, 2))
    ll = _still_em(d2, c, t, first, m, max_iter, lo_d, hi_d, hi_still, dk, gam, eb, al, be, g)
    if dk[1] < 10.0 * dk[0]:
        # the regimes did not separate: with a quarter of the steps or fewer still, the lower
        # quartile is a moving step and the still regime took every step (an animal moving 78 %
        # of the time at 15-min fixes: D_still 21.7, D_active 21.9 m²/s, P(still) 0.998 on every
        # step). Start again from still = the fixes' errors alone, active = the median step, and
        # keep whichever fit is likelier.
        dk2 = np.empty(2)
        dk2[0] = lo_d
        dk2[1] = min(max(ex_rate[m // 2], 100.0 * lo_d), hi_d)
        gam2 = np.array([[0.9, 0.1], [0.1, 0.9]])
        eb2 = np.empty((m, 2))
        al2 = np.empty((m, 2))
        ll2 = _still_em(d2, c, t, first, m, max_iter, lo_d, hi_d, hi_still, dk2, gam2, eb2, al2, be, g)
        if ll2 > ll:
            ll = ll2
            dk[:] = dk2
            gam[:, :] = gam2
            eb[:, :] = eb2
            al[:, :] = al2
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


@numba.njit(cache=True, nogil=True)
def _still_block(dt, zx, zy, r, start, bounds, max_iter, d_still_max, w, par, init, k0, k1):  # pragma: no cover
    for k in range(k0, k1):
        _still_range(dt, zx, zy, r, start, bounds[k], bounds[k + 1], max_iter, d_still_max, w, par[k], init[k])


def still_weights(
    dt: np.ndarray,
    zx: np.ndarray,
    zy: np.ndarray,
    r: np.ndarray,
    start: np.ndarray,
    bounds: np.ndarray,
    max_iter: int,
    d_still_max: float = math.inf,
    init: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``P(still)`` per step (row; 0 at segment starts) and the fitted step-HMM parameters per
    animal ``[D_still, D_active (m²/s), p_still_still, p_active_active, loglik]`` (see :func:`_still_range`).

    ``dt`` (s) and the projected positions ``zx``, ``zy`` (m) per row, ``r`` the error
    variance per axis of each fix (m²), ``start`` true at each segment's first row; animal
    ``k`` owns rows ``bounds[k]:bounds[k+1]``; ``d_still_max`` (m²/s) the fastest drift the
    still regime may take (the smoother passes the top of its own still drift's range);
    ``init`` (optional, one row per animal) the first four parameters to start EM from, NaN
    where the data's quartiles are to be used.
    """
    n = bounds.size - 1
    w = np.zeros(dt.size)
    par = np.full((max(n, 0), 5), np.nan)
    start_at = np.full((max(n, 0), 4), np.nan) if init is None else np.ascontiguousarray(init, dtype=np.float64)
    over_groups(_still_block, bounds, dt, zx, zy, r, start, bounds, int(max_iter), float(d_still_max), w, par,
                start_at)
    return w, par


