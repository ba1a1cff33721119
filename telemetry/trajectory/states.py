"""Behavioural states: a hidden Markov model on step length and turning angle.

Model
-----
Per animal, an ``N``-state (2 or 3) HMM in the style of moveHMM (Michelot,
Langrock & Patterson 2016, Methods Ecol. Evol. 7:1308): at each fix the animal is
in a hidden state ``s``; the step to the next fix has a gamma distribution
(mean ``mu_s`` m, s.d. ``sd_s`` m) and the turning angle at the fix a von Mises
distribution (mean direction and concentration per state). States follow a
Markov chain with transition matrix Γ (per fix interval); each segment starts
from Γ's stationary distribution.

Fitting is by maximum likelihood: the forward algorithm (log space, numba)
gives the exact likelihood, maximised with L-BFGS-B over unconstrained
parameters (log means, log s.d.s, von Mises ``(kappa cos mu, kappa sin mu)``,
transition logits), from several starts built from step-length quantiles.
States are decoded by Viterbi and labelled by increasing mean step:
2 states → ``resting``, ``moving``; 3 → ``resting``, ``moving``, ``travelling``.
Posterior state probabilities (forward–backward) are added as ``p_<label>``.

Schedule assumption
-------------------
Step lengths are only comparable on a regular fix schedule. Per animal the
nominal interval is the median time between consecutive usable fixes (or
``fix_interval_s``). A step whose interval differs from the nominal by more than
``interval_tol`` (relative) is a *missing observation* (and so are the turning
angles that use it), but the chain still runs through it: between two fixes
``k = round(Δt / nominal)`` intervals apart the transition is Γᵏ, so a missed fix
is a missing epoch, not a broken chain. The chain restarts at each segment
(``segment_id`` if present, else gaps longer than ``max_gap_h``).

Steps and angles are geodesic (pyproj.Geod on WGS84): step = ellipsoidal distance,
turning angle = forward azimuth of the next step minus the arrival heading of the
previous one, wrapped to (-π, π], positive for left (counter-clockwise) turns. Steps shorter than ``min_step_m`` are raised to it
(the gamma density has no mass at zero; GPS error makes true zeros rare anyway).

Rows that are flagged or lack coordinates get ``state`` NA; so do animals with
fewer than ``min_steps`` valid steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

import numba
import numpy as np
import pandas as pd
import scipy.optimize
from pyproj import Geod

__all__ = ["StateParams", "label_states", "step_observations", "STATE_LABELS"]

STATE_LABELS: dict[int, tuple[str, ...]] = {
    2: ("resting", "moving"),
    3: ("resting", "moving", "travelling"),
}
"""State labels by number of states, ordered by increasing mean step length."""

_GEOD = Geod(ellps="WGS84")


@dataclass(frozen=True)
class StateParams:
    """Parameters of :func:`label_states`.

    Attributes
    ----------
    fix_interval_s : float or None
        Nominal fix interval (s); None = per-animal median interval.
    interval_tol : float
        Relative tolerance on the interval for a step to count as observed.
    max_gap_h : float
        Restart the chain after a gap longer than this (h), only without ``segment_id``.
    min_step_m : float
        Floor on step length (m) for the gamma density.
    min_steps : int
        Fewest valid steps needed to fit an animal.
    n_starts : int
        Number of optimiser starts (quantile-based initialisations).
    start_rows : int
        The starts are compared on the first ``start_rows`` fixes of an animal; only the best is
        refined on all its fixes.
    max_iter : int
        L-BFGS-B iteration limit per start.
    use_smoothed : bool
        Use ``lon_s``/``lat_s`` (from :func:`telemetry.trajectory.smooth.smooth`) when present.
    """

    fix_interval_s: float | None = None
    interval_tol: float = 0.25
    max_gap_h: float = 24.0
    min_step_m: float = 1.0
    min_steps: int = 30
    n_starts: int = 3
    start_rows: int = 5000
    max_iter: int = 300
    use_smoothed: bool = False


# --------------------------------------------------------------------------- numba kernels


@numba.njit(cache=True)
def _log_emissions(
    step: np.ndarray,
    angle: np.ndarray,
    shape: np.ndarray,
    rate: np.ndarray,
    gconst: np.ndarray,
    va: np.ndarray,
    vb: np.ndarray,
    vconst: np.ndarray,
) -> np.ndarray:
    """log b_j(s): gamma(step) + von Mises(angle); missing (NaN) observations contribute 0."""
    n = step.size
    m = shape.size
    out = np.zeros((n, m))
    for j in range(n):
        lj = step[j]
        if lj == lj:
            ll = math.log(lj)
            for s in range(m):
                out[j, s] += gconst[s] + (shape[s] - 1.0) * ll - rate[s] * lj
        th = angle[j]
        if th == th:
            c = math.cos(th)
            sn = math.sin(th)
            for s in range(m):
                out[j, s] += va[s] * c + vb[s] * sn - vconst[s]
    return out


@numba.njit(cache=True)
def _lse(v: np.ndarray) -> float:
    # no temporary arrays: this runs n × m times per likelihood evaluation
    mx = -np.inf
    for x in v:
        mx = max(mx, x)
    if mx == -np.inf:
        return mx
    tot = 0.0
    for x in v:
        tot += math.exp(x - mx)
    return mx + math.log(tot)


@numba.njit(cache=True)
def _log_i0(k: float) -> float:
    """log I0(k) for k >= 0 (Abramowitz & Stegun 9.8.1 / 9.8.2, relative error < 2e-7)."""
    if k < 3.75:
        t = (k / 3.75) ** 2
        return math.log(
            1.0 + t * (3.5156229 + t * (3.0899424 + t * (1.2067492 + t * (0.2659732 + t * (0.0360768 + t * 0.0045813)))))
        )
    t = 3.75 / k
    poly = 0.39894228 + t * (0.01328592 + t * (0.00225319 + t * (-0.00157565 + t * (0.00916281 + t * (
        -0.02057706 + t * (0.02635537 + t * (-0.01647633 + t * 0.00392377)))))))  # fmt: skip
    return k - 0.5 * math.log(k) + math.log(poly)


@numba.njit(cache=True)
def _model(theta: np.ndarray, m: int, kmax: int):  # returns a tuple of arrays
    """Unconstrained vector → per-state constants, Γ, log Γᵏ (k = 0..kmax) and log δ.

    theta = [log mean step (m), log sd step (m), κ cos μ (m), κ sin μ (m), off-diagonal logits (m(m-1))].
    """
    shape = np.empty(m)
    rate = np.empty(m)
    gconst = np.empty(m)
    va = np.empty(m)
    vb = np.empty(m)
    vconst = np.empty(m)
    for s in range(m):
        mu = math.exp(theta[s])
        sd = math.exp(theta[m + s])
        shape[s] = (mu / sd) ** 2
        rate[s] = mu / (sd * sd)
        gconst[s] = shape[s] * math.log(rate[s]) - math.lgamma(shape[s])
        va[s] = theta[2 * m + s]
        vb[s] = theta[3 * m + s]
        vconst[s] = math.log(2.0 * math.pi) + _log_i0(math.hypot(va[s], vb[s]))
    gam = np.zeros((m, m))
    idx = 4 * m
    for r in range(m):
        mx = 0.0
        for s in range(m):
            if s != r:
                gam[r, s] = theta[idx]
                idx += 1
                mx = max(mx, gam[r, s])
        tot = 0.0
        for s in range(m):
            gam[r, s] = math.exp(gam[r, s] - mx)
            tot += gam[r, s]
        for s in range(m):
            gam[r, s] /= tot
    logg = np.zeros((kmax + 1, m, m))
    g = np.eye(m)
    for k in range(1, kmax + 1):
        g = g @ gam
        for r in range(m):
            for s in range(m):
                logg[k, r, s] = math.log(max(g[r, s], 1e-300))
    # stationary distribution: a row of Γ^(2^40) by repeated squaring (robust for sticky chains)
    p = gam.copy()
    for _ in range(40):
        p = p @ p
    logdelta = np.empty(m)
    tot = 0.0
    for s in range(m):
        tot += max(p[0, s], 1e-12)
    for s in range(m):
        logdelta[s] = math.log(max(p[0, s], 1e-12) / tot)
    return shape, rate, gconst, va, vb, vconst, gam, logg, logdelta


@numba.njit(cache=True)
def _nll(theta: np.ndarray, step: np.ndarray, angle: np.ndarray, kidx: np.ndarray, m: int, kmax: int) -> float:
    """Negative log-likelihood of one animal: one compiled call per optimiser evaluation."""
    shape, rate, gconst, va, vb, vconst, _, logg, logdelta = _model(theta, m, kmax)
    logb = _log_emissions(step, angle, shape, rate, gconst, va, vb, vconst)
    ll = _forward(logb, kidx, logg, logdelta)[1]
    if not math.isfinite(ll):
        return 1e300
    return -ll


@numba.njit(cache=True)
def _forward(logb: np.ndarray, kidx: np.ndarray, logg: np.ndarray, logdelta: np.ndarray) -> tuple[np.ndarray, float]:
    """Log forward variables and the log-likelihood (sum over segments).

    ``kidx[j]`` = 0 starts a segment at row j; k > 0 means row j is k intervals after
    row j-1 and the transition is ``logg[k]`` = log Γᵏ.
    """
    n, m = logb.shape
    la = np.empty((n, m))
    ll = 0.0
    tmp = np.empty(m)
    for j in range(n):
        k = kidx[j]
        if k == 0 or j == 0:
            if j > 0:
                ll += _lse(la[j - 1])
            for s in range(m):
                la[j, s] = logdelta[s] + logb[j, s]
        else:
            for s in range(m):
                for r in range(m):
                    tmp[r] = la[j - 1, r] + logg[k, r, s]
                la[j, s] = _lse(tmp) + logb[j, s]
    if n > 0:
        ll += _lse(la[n - 1])
    return la, ll


@numba.njit(cache=True)
def _backward(logb: np.ndarray, kidx: np.ndarray, logg: np.ndarray) -> np.ndarray:
    n, m = logb.shape
    lb = np.zeros((n, m))
    tmp = np.empty(m)
    for j in range(n - 2, -1, -1):
        k = kidx[j + 1]
        if k == 0:
            continue  # j ends a segment: backward variable is log 1
        for r in range(m):
            for s in range(m):
                tmp[s] = logg[k, r, s] + logb[j + 1, s] + lb[j + 1, s]
            lb[j, r] = _lse(tmp)
    return lb


@numba.njit(cache=True)
def _viterbi(logb: np.ndarray, kidx: np.ndarray, logg: np.ndarray, logdelta: np.ndarray) -> np.ndarray:
    n, m = logb.shape
    v = np.empty((n, m))
    back = np.zeros((n, m), dtype=np.int64)
    path = np.empty(n, dtype=np.int64)
    for j in range(n):
        k = kidx[j]
        if k == 0 or j == 0:
            for s in range(m):
                v[j, s] = logdelta[s] + logb[j, s]
        else:
            for s in range(m):
                best = -np.inf
                arg = 0
                for r in range(m):
                    c = v[j - 1, r] + logg[k, r, s]
                    if c > best:
                        best = c
                        arg = r
                v[j, s] = best + logb[j, s]
                back[j, s] = arg
    # trace back segment by segment (from each segment's last row)
    j = n - 1
    while j >= 0:
        path[j] = np.argmax(v[j])
        while kidx[j] != 0 and j > 0:
            path[j - 1] = back[j, path[j]]
            j -= 1
        j -= 1
    return path


# --------------------------------------------------------------------------- parameters


def _unpack(theta: np.ndarray, m: int, kmax: int) -> dict[str, np.ndarray]:
    """Unconstrained vector → model constants (see :func:`_model`), plus means and s.d.s (m)."""
    names = ("shape", "rate", "gconst", "va", "vb", "vconst", "gamma", "logg", "logdelta")
    c = dict(zip(names, _model(np.ascontiguousarray(theta, dtype=float), m, kmax)))
    c["mu"] = np.exp(theta[:m])
    c["sd"] = np.exp(theta[m : 2 * m])
    return c


def _emissions(step: np.ndarray, angle: np.ndarray, c: dict[str, np.ndarray]) -> np.ndarray:
    return _log_emissions(step, angle, c["shape"], c["rate"], c["gconst"], c["va"], c["vb"], c["vconst"])


def _initial(step: np.ndarray, m: int, spread: float) -> np.ndarray:
    """Start values: state means at step-length quantiles; resting turns back, moving goes straight."""
    ok = step[np.isfinite(step)]
    base = {2: (0.25, 0.75), 3: (0.2, 0.55, 0.9)}.get(m, tuple(np.linspace(0.15, 0.9, m)))
    qs = np.clip(0.5 + spread * (np.asarray(base) - 0.5), 0.02, 0.98)
    mu = np.maximum(np.quantile(ok, qs), 1e-3)
    mu = np.maximum.accumulate(mu * (1.0 + 1e-3 * np.arange(m)))
    sd = mu * 0.8
    va = np.linspace(-0.3, 1.5, m)  # κ cos μ: slowest state slightly backward, fastest persistent
    vb = np.zeros(m)
    off = np.full(m * (m - 1), -math.log(9.0 * (m - 1)))  # Γ diagonal ≈ 0.9
    return np.concatenate([np.log(mu), np.log(sd), va, vb, off])


def _fit_one(step: np.ndarray, angle: np.ndarray, kidx: np.ndarray, m: int, kmax: int, p: StateParams) -> np.ndarray:
    """ML fit for one animal; returns the best unconstrained parameter vector."""

    # contiguous, owning arrays: numba's dispatcher is ~20x slower on views
    step = np.ascontiguousarray(step).copy()
    angle = np.ascontiguousarray(angle).copy()
    kidx = np.ascontiguousarray(kidx).copy()

    def make_nll(st: np.ndarray, an: np.ndarray, ki: np.ndarray):
        def nll(theta: np.ndarray) -> float:
            return _nll(np.array(theta, dtype=float), st, an, ki, m, kmax)

        return nll

    # bounds keep the optimiser out of degenerate corners (sd → 0, κ → ∞, Γ → 0/1)
    ok = step[np.isfinite(step)]
    lmin, lmax = math.log(max(ok.min(), 1e-3)), math.log(ok.max())
    bnds = [(lmin, lmax)] * m + [(lmin - 3.0, lmax + 1.0)] * m + [(-50.0, 50.0)] * (2 * m)
    bnds += [(-15.0, 15.0)] * (m * (m - 1))
    opts = {"maxiter": p.max_iter}
    # multi-start on a contiguous block of at most start_rows fixes (chain structure intact),
    # then refine only the best start on all fixes: the starts cost O(start_rows), not O(n)
    nb = min(step.size, p.start_rows)
    sub = make_nll(step[:nb].copy(), angle[:nb].copy(), kidx[:nb].copy())
    best_x, best_f = None, np.inf
    spreads = (1.0, 0.6, 1.3, 0.3, 1.6)[: max(1, p.n_starts)]
    for spread in spreads:
        x0 = np.clip(_initial(step, m, spread), [b[0] for b in bnds], [b[1] for b in bnds])
        res = scipy.optimize.minimize(sub, x0, method="L-BFGS-B", bounds=bnds, options=opts)
        if res.fun < best_f:
            best_x, best_f = res.x, res.fun
    if nb < step.size:
        best_x = scipy.optimize.minimize(
            make_nll(step, angle, kidx), best_x, method="L-BFGS-B", bounds=bnds, options=opts
        ).x
    assert best_x is not None
    return best_x


# --------------------------------------------------------------------------- python layer


def _params(params: StateParams | None, overrides: dict[str, Any]) -> StateParams:
    p = params if params is not None else StateParams()
    if overrides:
        bad = set(overrides) - {f.name for f in fields(StateParams)}
        if bad:
            raise TypeError(f"unknown state parameter(s): {sorted(bad)}")
        p = replace(p, **overrides)
    return p


def step_observations(
    df: pd.DataFrame, params: StateParams | None = None, **overrides: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Steps, turning angles and transition counts of the usable rows, vectorised over animals.

    Returns
    -------
    rows : ndarray of int
        Positions (in ``df``) of the usable rows, sorted by (animal, time).
    animal : ndarray of int
        Animal code per sorted row.
    step_m : ndarray
        Geodesic step to the next fix (m), NaN when missing (segment end, off-schedule interval).
    turn_rad : ndarray
        Turning angle at the fix (radians, (-π, π]), NaN when either adjacent step is missing.
    kidx : ndarray of int
        0 at a segment start, else the number of nominal intervals since the previous fix (≥ 1).
    """
    p = _params(params, overrides)
    lon_col, lat_col = ("lon_s", "lat_s") if p.use_smoothed and "lon_s" in df else ("lon", "lat")
    lon = pd.to_numeric(df[lon_col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    lat = pd.to_numeric(df[lat_col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    usable = np.isfinite(lon) & np.isfinite(lat) & df["time"].notna().to_numpy()
    if "flag" in df:
        usable &= df["flag"].isna().to_numpy()
    rows = np.flatnonzero(usable)
    codes = pd.factorize(df["animal_id"].to_numpy()[rows], sort=True)[0]
    t = df["time"].to_numpy(dtype="datetime64[ns]").view(np.int64)[rows]
    order = np.lexsort((t, codes))
    rows, a, t = rows[order], codes[order], t[order]
    lon, lat = lon[rows], lat[rows]
    n = rows.size
    dt = np.zeros(n)
    dt[1:] = np.diff(t) / 1e9
    start = np.ones(n, dtype=bool)
    start[1:] = a[1:] != a[:-1]
    if "segment_id" in df:
        seg = pd.factorize(df["segment_id"].to_numpy()[rows])[0]
        start[1:] |= seg[1:] != seg[:-1]
    else:
        start[1:] |= dt[1:] > p.max_gap_h * 3600.0
    # nominal interval per animal: median Δt within segments
    n_animals = int(a.max()) + 1 if n else 0
    if p.fix_interval_s is not None:
        nominal = np.full(n_animals, float(p.fix_interval_s))
    else:
        inner = ~start
        med = pd.Series(dt[inner]).groupby(a[inner]).median()
        nominal = med.reindex(range(n_animals)).fillna(3600.0).to_numpy()
    nom = nominal[a]
    ratio = dt / nom
    kidx = np.where(start, 0, np.maximum(1, np.rint(ratio))).astype(np.int64)
    on_schedule = ~start & (np.abs(ratio - 1.0) <= p.interval_tol)  # row j vs j-1
    # geodesic step j -> j+1, forward azimuth at j, arrival heading at j+1
    step = np.full(n, np.nan)
    turn = np.full(n, np.nan)
    if n > 1:
        az12, az21, dist = _GEOD.inv(lon[:-1], lat[:-1], lon[1:], lat[1:])
        valid = on_schedule[1:]
        step[:-1] = np.where(valid, np.maximum(dist, p.min_step_m), np.nan)
        arrive = np.radians(np.asarray(az21) + 180.0)  # heading on arrival at j+1
        depart = np.radians(np.asarray(az12))
        # at row j (1..n-2): arrival heading at j minus departure heading; azimuths run clockwise,
        # so this makes left (counter-clockwise) turns positive, the mathematical convention
        tr = arrive[:-1] - depart[1:]
        tr = np.angle(np.exp(1j * tr))
        both = valid[1:] & valid[:-1] & (dist[1:] > 0) & (dist[:-1] > 0)
        turn[1:-1] = np.where(both, tr, np.nan)
    return rows, a, step, turn, kidx


def label_states(
    df: pd.DataFrame, params: StateParams | None = None, n_states: int = 2, **overrides: Any
) -> pd.DataFrame:
    """Label each fix with a behavioural state from a per-animal step/turn HMM.

    Parameters
    ----------
    df : DataFrame
        Canonical fix table (``animal_id, time, lon, lat, flag``; optional ``segment_id``,
        ``lon_s``/``lat_s``). Any row order.
    params : StateParams, optional
    n_states : int
        Number of hidden states (2 or 3 get named labels; others ``state1..N``).
    **overrides
        Any :class:`StateParams` field, e.g. ``fix_interval_s=7200.0``.

    Returns
    -------
    DataFrame
        A copy with ``state`` (categorical, labels ordered by mean step length) and ``p_<label>``
        (posterior probability of each state). Per-animal fitted parameters (mean/s.d. step in m,
        von Mises mean and concentration, Γ) are in ``out.attrs["states"]``.

    Examples
    --------
    >>> out = label_states(fixes, n_states=3)  # doctest: +SKIP
    >>> out["state"].value_counts()  # doctest: +SKIP
    """
    p = _params(params, overrides)
    m = int(n_states)
    if m < 1:
        raise ValueError("n_states must be >= 1")
    labels = STATE_LABELS.get(m, tuple(f"state{i + 1}" for i in range(m)))
    out = df.copy()
    n = len(df)
    codes = np.full(n, -1, dtype=np.int64)
    probs = np.full((n, m), np.nan)
    attrs: dict[str, dict[str, Any]] = {}
    rows, a, step, turn, kidx = step_observations(df, p)
    if rows.size:
        animal_names = pd.factorize(df["animal_id"].to_numpy()[rows], sort=True)[1]
        bounds = np.searchsorted(a, np.arange(len(animal_names) + 1))
        for k, name in enumerate(animal_names):
            sl = slice(bounds[k], bounds[k + 1])
            st, an, ki = step[sl], turn[sl], kidx[sl]
            if np.isfinite(st).sum() < max(p.min_steps, 3 * m):
                continue
            kmax = int(ki.max()) if ki.size else 1
            theta = _fit_one(st, an, ki, m, max(kmax, 1), p)
            c = _unpack(theta, m, max(kmax, 1))
            # relabel by increasing mean step so "resting" is always the slowest state
            perm = np.argsort(c["mu"])
            inv = np.empty(m, dtype=np.int64)
            inv[perm] = np.arange(m)
            logb = _emissions(st, an, c)
            path = _viterbi(logb, ki, c["logg"], c["logdelta"])
            la, ll = _forward(logb, ki, c["logg"], c["logdelta"])
            lb = _backward(logb, ki, c["logg"])
            post = la + lb
            post = np.exp(post - post.max(axis=1, keepdims=True))
            post /= post.sum(axis=1, keepdims=True)
            r = rows[sl]
            codes[r] = inv[path]
            probs[r] = post[:, perm]
            attrs[str(name)] = {
                "loglik": float(ll),
                "step_mean_m": c["mu"][perm].tolist(),
                "step_sd_m": c["sd"][perm].tolist(),
                "turn_mean_rad": np.arctan2(c["vb"], c["va"])[perm].tolist(),
                "turn_kappa": np.hypot(c["va"], c["vb"])[perm].tolist(),
                "transition": c["gamma"][np.ix_(perm, perm)].tolist(),
                "n_valid_steps": int(np.isfinite(st).sum()),
            }
    out["state"] = pd.Categorical.from_codes(codes, categories=list(labels))
    for i, lab in enumerate(labels):
        out[f"p_{lab}"] = probs[:, i]
    out.attrs = {**df.attrs, "states": attrs}
    return out
