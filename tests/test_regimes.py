"""The still / active step HMM: its 1-D diffusion root against plain bisection, and its labels."""

from __future__ import annotations

import math

import numpy as np
import pytest

from telemetry.trajectory import regimes as rg


def _bisection_diffusion(w, d2, c, t, lo, hi):
    """The plain 40-halving bisection that rg._weighted_diffusion must reproduce bit for bit."""
    a, b = math.log(lo), math.log(hi)
    if rg._diffusion_score(lo, w, d2, c, t) <= 0.0:
        return lo
    if rg._diffusion_score(hi, w, d2, c, t) >= 0.0:
        return hi
    for _ in range(40):
        m = 0.5 * (a + b)
        if rg._diffusion_score(math.exp(m), w, d2, c, t) > 0.0:
            a = m
        else:
            b = m
    return math.exp(0.5 * (a + b))


@pytest.mark.parametrize("seed", range(30))
def test_weighted_diffusion_matches_plain_bisection(seed: int) -> None:
    """Bit for bit, from any start: the Newton root only steers the halvings. Its converged step
    is taken as converged even where rounding puts it outside the bracket (it did about every
    other time, then bisected ~40 passes back), so the root must still be the bisection's."""
    rng = np.random.default_rng(seed)
    m = 500
    t = rng.uniform(60, 20000, m)
    c = rng.uniform(10, 5000, m)
    scale = 10.0 ** rng.uniform(-6, 2)  # diffusions from ~1e-6 to ~100 m²/s
    d2 = rng.chisquare(2, m) * (c + scale * t)
    w = rng.random(m)
    for guess in (0.0, scale, 1e-8, 1e4, scale * 1.001):
        got = rg._weighted_diffusion(w, d2, c, t, 1e-8, 1e4, guess)
        assert got == _bisection_diffusion(w, d2, c, t, 1e-8, 1e4)
    # boundaries: displacements all within the fix error / far beyond the search range
    assert rg._weighted_diffusion(w, 0.01 * c, c, t, 1e-8, 1e4, 1.0) == 1e-8
    assert rg._weighted_diffusion(w, 1e12 * t, c, t, 1e-8, 1e4, 1.0) == 1e4




@pytest.mark.parametrize("moving_share", [0.5, 0.78, 0.9])
def test_still_regime_found_when_the_animal_mostly_moves(moving_share: float) -> None:
    """With a quarter of the steps or fewer still, the lower quartile of the step rates (the EM's
    start for the still regime) is a moving step, and the still regime used to take every step
    (an animal of scripts/switch_sim.py moving 78 % of the time at 15-min fixes: D_still 21.7,
    D_active 21.9 m²/s, P(still) 0.998 on every step, labelled 100 % resting by the states). The
    fit must separate the rests (displacements within the fixes' errors) from the moves. Before
    the restart (:func:`telemetry.trajectory.regimes._still_range`) the 0.78 and 0.9 cases failed."""
    rng = np.random.default_rng(7)
    n = 800
    moving = np.zeros(n, bool)
    i = 0
    while i < n:  # bouts of ~20 steps, moving_share of them moving
        k = int(rng.exponential(20.0)) + 1
        moving[i:i + k] = rng.random() < moving_share
        i += k
    dt = np.full(n, 900.0)
    r = np.full(n, 25.0)  # 5 m per axis
    # a directed walk: steps of 200 +- 20 m (never near zero, unlike a Brownian step)
    length, heading = rng.normal(200.0, 20.0, n), rng.uniform(0.0, 2 * math.pi, n)
    step = np.where(moving[:, None], np.c_[length * np.cos(heading), length * np.sin(heading)], 0.0)
    pos = np.cumsum(step, axis=0) + rng.normal(0.0, 5.0, (n, 2))
    start = np.zeros(n, bool)
    start[0] = True
    w, par = rg.still_weights(dt, pos[:, 0], pos[:, 1], r, start, np.array([0, n]), 200)
    d_still, d_active = par[0, 0], par[0, 1]
    still_true = ~moving[1:] & ~moving[:-1]  # both fixes in a rest
    agree = np.mean((w[1:] > 0.5) == still_true)
    print(f"\nmoving {moving.mean():.2f}: D_still {d_still:.3g}, D_active {d_active:.3g} m²/s, "
          f"P(still) > 0.5 on {np.mean(w[1:] > 0.5):.2f} of steps (truly still {still_true.mean():.2f}), agree {agree:.3f}")
    assert d_active > 100.0 * max(d_still, 1e-3)
    assert agree > 0.9


@pytest.mark.parametrize("d_still_max", [10.0, 1.0])
def test_a_gross_error_left_in_the_track_does_not_become_the_active_regime(d_still_max: float) -> None:
    """``validate.py --fuzz 40 --seed 3``, setting 14: 30-min fixes of an animal moving 80 % of
    the time, whose last fix is a gross error 11 km off (no fix after it to show it was one,
    so the cleaning leaves it). The EM from its usual start put all the movement into the still
    regime (D_still 71 m²/s) and only that one step into the active one (D_active 24,834 m²/s):
    P(still) 0.998 on every step, the error scale estimated at the floor of its range, and the
    states 100 % resting. A still regime may drift no faster than the smoother's own still drift
    (``SmoothParams.still_diffusion_bounds_m2s``, 10 m²/s), so the movement cannot be "still"."""
    rng = np.random.default_rng(3)
    n = 700
    moving = np.zeros(n, bool)
    i = 0
    while i < n:  # rests of ~2 steps, moves of ~8
        rest = int(rng.exponential(1.5)) + 1
        move = int(rng.exponential(8.0)) + 1
        moving[i + rest:i + rest + move] = True
        i += rest + move
    dt = np.full(n, 1800.0)
    r = np.full(n, 16.0)  # 4 m per axis
    length, heading = rng.lognormal(np.log(500.0), 0.6, n), rng.uniform(0.0, 2 * math.pi, n)
    step = np.where(moving[:, None], np.c_[length * np.cos(heading), length * np.sin(heading)], 0.0)
    pos = np.cumsum(step, axis=0) + rng.normal(0.0, 4.0, (n, 2))
    pos[-1] += (7_800.0, 7_800.0)  # the gross error, 11 km off
    start = np.zeros(n, bool)
    start[0] = True
    w, par = rg.still_weights(dt, pos[:, 0], pos[:, 1], r, start, np.array([0, n]), 200, d_still_max)
    still_true = ~moving[1:] & ~moving[:-1]
    agree = np.mean((w[1:] > 0.5) == still_true)
    print(f"\nD_still {par[0, 0]:.3g}, D_active {par[0, 1]:.3g} m²/s, P(still) > 0.5 on "
          f"{np.mean(w[1:] > 0.5):.2f} of steps (truly still {still_true.mean():.2f}), agree {agree:.3f}")
    assert par[0, 0] <= d_still_max and agree > 0.9
    if d_still_max == 10.0:  # the failure guarded against, without the bound
        w, par = rg.still_weights(dt, pos[:, 0], pos[:, 1], r, start, np.array([0, n]), 200)
        assert par[0, 0] > 10.0 and np.mean(w[1:] > 0.5) > 0.9


def test_em_started_from_an_earlier_fit_lands_on_the_same_labels() -> None:
    """A second smoothing of a track (a few fixes flagged) starts the step HMM from the first
    fit's parameters (``attrs["smooth"]``: :func:`telemetry.trajectory.movement_fit.fit_from_attrs`).
    From the fit of the same steps it must stop where a start from the data's quartiles stops
    (labels and parameters), and from a fit of a track with a few steps left out land on that
    track's own fit, not stay on the start; starts outside the search ranges are clipped."""
    rng = np.random.default_rng(3)
    n_animals, n = 3, 1500
    tracks = []
    for _ in range(n_animals):
        moving = np.repeat(rng.random(n // 25 + 1) < 0.6, 25)[:n]
        step = np.where(moving[:, None], rng.normal(0.0, 150.0, (n, 2)), rng.normal(0.0, 0.5, (n, 2)))
        tracks.append(np.cumsum(step, axis=0) + rng.normal(0.0, 6.0, (n, 2)))
    pos = np.concatenate(tracks)
    x, y, dt = pos[:, 0], pos[:, 1], np.full(pos.shape[0], 3600.0)
    start = np.arange(pos.shape[0]) % n == 0
    r = np.full(x.size, 36.0)
    bounds = np.arange(n_animals + 1) * n
    w0, par0 = rg.still_weights(dt, x, y, r, start, bounds, 200)
    w1, par1 = rg.still_weights(dt, x, y, r, start, bounds, 200, init=par0[:, :4])
    assert np.all((w1 > 0.5) == (w0 > 0.5))
    np.testing.assert_allclose(par1[:, :4], par0[:, :4], rtol=1e-3)
    # a few steps left out (every 97th fix put far off, as a flagged spike would be)
    x2 = x.copy()
    x2[::97] += 5000.0
    w_cold, par_cold = rg.still_weights(dt, x2, y, r, start, bounds, 200)
    w_warm, par_warm = rg.still_weights(dt, x2, y, r, start, bounds, 200, init=par0[:, :4])
    assert np.mean((w_warm > 0.5) != (w_cold > 0.5)) < 1e-3
    np.testing.assert_allclose(par_warm[:, :4], par_cold[:, :4], rtol=0.02)
    assert np.all(np.abs(par_warm[:, 1] / par0[:, 1] - 1) > 0.05)  # it moved off its start
    # starts beyond the ranges (and a missing one) are fits like any other
    bad = np.array([[1e9, 1e-12, 2.0, -1.0], [np.nan, 1.0, 0.5, 0.5], list(par0[2, :4])])
    w_b, par_b = rg.still_weights(dt, x, y, r, start, bounds, 200, init=bad)
    assert np.isfinite(par_b).all() and np.mean((w_b > 0.5) == (w0 > 0.5)) > 0.99
