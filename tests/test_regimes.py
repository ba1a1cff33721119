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


@pytest.mark.parametrize("seed", range(6))
def test_weighted_diffusion_matches_plain_bisection(seed: int) -> None:
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


