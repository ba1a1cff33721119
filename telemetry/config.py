"""Every parameter of every step, as dataclasses with units in their names.

One :class:`Config` holds one dataclass per step: the track pipeline (``clean``, ``segment``,
``clusters``, ``smooth``, ``states``, ``homerange``), the cross-border analysis (``crossings``,
``hotspots``, ``corridors``) and the outputs (``public``: generalisation; ``map``: the map's
size budget; ``charts``; ``pages``: their language). Defaults come from a *species profile* (:data:`PROFILES`:
``snow_leopard`` is the default, ``generic`` a permissive fallback), can be read from a TOML
file and overridden with ``section.name=value`` strings, the form every command's ``--set``
option takes. :meth:`Config.to_dict` is what every output echoes into its metadata, and
``telemetry config show`` prints it as TOML.

Core layer: imports only :mod:`telemetry.errors`.

Examples
--------
>>> from telemetry.config import Config
>>> cfg = Config.for_species("snow_leopard").with_overrides(["clean.max_speed_kmh=12"])
>>> cfg.clean.max_speed_kmh
12.0
>>> cfg.clusters.radius_m
200.0
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from telemetry.errors import TelemetryError

__all__ = [
    "CleanParams",
    "SegmentParams",
    "ClusterParams",
    "HomeRangeParams",
    "CrossingParams",
    "HotspotParams",
    "CorridorParams",
    "CORRIDOR_METHODS",
    "PublicParams",
    "MapParams",
    "ChartParams",
    "PageParams",
    "AlertParams",
    "PAGE_LANGS",
    "SmoothParams",
    "StateParams",
    "ARGOS_ERROR_M",
    "Config",
    "PROFILES",
    "DEFAULT_SPECIES",
    "HEAP_REUSE_BYTES",
    "load_config",
]


@dataclass(frozen=True)
class CleanParams:
    """Thresholds of :func:`telemetry.trajectory.clean.clean`.

    Attributes
    ----------
    max_speed_kmh : float
        Fastest plausible travel speed between two fixes (km/h); faster steps mark a fix ``speed``.
    speed_min_step_m : float
        A step shorter than this (m) is never "too fast": GPS error over a short interval
        would otherwise look like sprinting.
    spike_speed_kmh : float
        Spike rule (Bjørneraas et al. 2010): incoming *and* outgoing speed above this (km/h) ...
    spike_min_turn_deg : float
        ... and a turn back sharper than this (degrees, 180 = straight back) marks a ``spike``.
    max_iterations : int
        Rounds of the speed/spike filter; each round flags only the worst fix of a bad
        stretch, so one outlier never condemns its neighbours.
    median_window_fixes : int
        Usable fixes on each side used for the local median position that decides which end
        of a too-fast step is to blame.
    max_hdop_2d : float
        2D fixes with DOP above this are ``low_quality``.
    max_hdop : float
        Any fix with DOP above this is ``low_quality``.
    min_sats : int
        Fixes with fewer satellites than this (when known) are ``low_quality`` (0 disables).
    argos_reject_classes : tuple of str
        Argos location classes flagged ``low_quality``.
    clock_jump_min_h : float
        A record whose time is this far (h) from the local median time of its neighbours in
        file order, or this far beyond the animal's main time span, is a ``clock_jump``.
    clock_jump_span_fraction : float
        The margin beyond the animal's main (10th-90th percentile) time span is the larger of
        ``clock_jump_min_h`` and this fraction of the span.
    out_and_back_ratio : float
        Out-and-back ``spike`` rule (dimensionless; ``inf`` disables it): a fix is flagged when
        ``min(d_in, d_out) / (out_and_back_floor_m + out_and_back_skip_weight * d_skip + bridge_m)``
        exceeds this, with ``d_in``/``d_out`` its distances to the previous/next fix, ``d_skip``
        the distance between those two neighbours and ``bridge_m`` the deviation the animal's
        own movement at that time of day would explain (see ``movement_quantile``). 1.7 keeps
        precision at 0.96 on the synthetic snow-leopard sample (1.6 is where it falls to 0.9;
        issue 4 report), leaving a margin for real tracks with more out-and-back excursions.
    out_and_back_floor_m : float
        Distance (m) added to the denominator so GPS error and movement around a bed or kill
        (snow leopards stay within ~100 m of a kill, Johansson et al. 2015) never look like an
        excursion; with the default ratio a fix must be > 340 m from both neighbours.
    out_and_back_skip_weight : float
        Weight (dimensionless) of the neighbours' own separation: a real excursion usually
        does not come straight back, so the farther apart the neighbours, the larger the
        detour a genuine fix may make.
    movement_quantile : float
        Quantile (0-1) of the animal's step lengths per sqrt(hour), per bin of local solar time,
        that sets ``bridge_m`` (Brownian-bridge deviation ``scale * sqrt(dt_in dt_out / (dt_in + dt_out))``).
        0.75: robust to the ~0.5 % gross outliers and to resting fixes, yet tracks active hours.
    diel_bin_h : float
        Width (h) of the local-solar-time bins of that scale (crepuscular/nocturnal cats move
        10-20x farther at night than at noon, so one scale per animal is too coarse).
    diel_min_steps : int
        A bin with fewer steps than this uses the animal's all-day scale instead.
    speed_limit_from_data : bool
        Derive each animal's speed limit from its own steps (the ``auto`` profile) instead of
        ``max_speed_kmh``; the spike speed keeps its proportion to the limit.
    speed_limit_quantile : float
        ... the limit is ``speed_limit_factor`` times this quantile (0-1) of the animal's step
        speeds (steps longer than ``speed_min_step_m``) ...
    speed_limit_factor : float
        ... (dimensionless; 3 x the 95th percentile keeps a bird's flight legs and a cat's
        night travel, and still catches a fix kilometres out of place) ...
    speed_limit_floor_kmh : float
        ... and never below this (km/h).
    speed_limit_argos_classes : tuple of str
        Argos location classes whose fixes the animal's own limit, the profile check and the
        smoother's reach test read, with every GPS fix; the other classes' errors (kilometres, heavy-tailed) make their
        steps' speeds the error's, not the animal's. Herring gulls' Argos tracks in
        ``../shared/data/real`` (``--species auto``): 298-1,108 km/h from all their steps,
        49-58 km/h from classes 3, 2 and 1 (the GPS-tagged gulls of the same study: 38-59 km/h).
    end_reach_check : bool
        Flag ``speed`` the first or last fix of an animal reached from its one neighbour faster
        than ``speed_limit_factor`` × the fastest of its other steps (at least
        ``speed_limit_floor_kmh``; whatever ``speed_limit_from_data`` says): the out-and-back
        and residual rules need a neighbour on each side
        (:func:`telemetry.trajectory.clean._ends_beyond_reach`).
    outlier_alpha : float
        A fix the smoother's residual puts beyond the chi-square quantile ``1 - outlier_alpha``
        of its model, sticking out of its neighbours' line, is a ``spike``; a fix the position
        rules flagged ``spike`` that the smoothed track predicts within that quantile goes
        back into the track (:mod:`telemetry.trajectory.outliers`; 0 disables both).
    outlier_release_quantile : float
        ... if it is also no farther from that prediction than this quantile (0-1) of the
        animal's own usable fixes' distances from their predictions by the other fixes (a
        Gaussian movement model fitted to a few long moves predicts every fix loosely). Spike F1
        pooled over 13 cells x 4 seeds (``scripts/validate.py --no-real --species generic --seeds 4
        --set clean.outlier_release_quantile=Q``) / on the synthetic sample
        (``tests/test_outliers.py``): no release (Q = 0) 0.767 / 0.734; 0.95 0.771 / 0.734; 0.99
        0.791 / 0.685; the residual test alone (Q = 1) 0.797 / 0.651 (it puts back the sample's
        3-5 km leopard errors). 0.95: the sample must not get worse.
    outlier_detour : float
        ... sticking out: the detour through it is more than this multiple of the step between
        its neighbours (dimensionless).
    revisit_alpha : float
        A fix flagged ``spike`` (by the position rules or the smoother's residuals) goes back
        into the track when it lies among the animal's own fixes at other times more closely
        than an error thrown as far in a random direction would, at this p-value (0-1; 0
        disables; :func:`telemetry.trajectory.outliers.revisited_spikes`). It is about the
        share of true gross errors put back by chance, whatever the fixes' density, for errors
        thrown in random directions (3,000 such errors injected into the sample: 1.2 %,
        ``tests/test_outliers.py``). ``python scripts/validate.py --revisit --seeds 4`` (the
        candidates of its 21 cells x 4 seeds other than the sweep's, and of the sample: 2,753
        true errors, 625 real trips), true errors / real trips put back at 5 fixes: 0.005 5 / 285;
        0.01 19 / 345; 0.02 43 / 361; 0.05 122 / 420.
    revisit_fixes : int
        ... counting the ``k``-th nearest of the animal's usable fixes: at 0.01, k = 1, 2, 3 put
        back 28 / 302, 31 / 329, 20 / 334 and 5 19 / 345 (measured as above); a place used once
        is not enough.
    revisit_directions : int
        ... with the share estimated from this many directions.
    revisit_fdr : float
        ... and beyond ``revisit_alpha``, an animal's candidates are put back as far down its
        p-values as keeps the expected share of errors among those put back below this (0-1;
        0 disables): Benjamini-Hochberg with the share of errors among the candidates estimated
        from the animal's own p-values (Storey 2002; errors' p-values are uniform, trips'
        near 0). A trip to a patch 10 km off, 1.5 km across, has p ~ 0.02 (the share of the
        circle the patch covers) and the fixed level keeps it out however often the animal
        goes there; where most candidates are such trips the rate of errors among them says
        to put them back. Measured as for ``revisit_alpha`` (its "as the pipeline decides" table:
        the beyond-reach test applied), errors / trips put back: ``revisit_alpha`` alone 16 / 345;
        with 0.05 (at least 10 candidates) 35 / 410; with 0.1 72 / 432.
    revisit_fdr_min : int
        ... only for an animal with at least this many candidates: fewer say nothing of the
        share of errors among them.
    revisit_null_above : float
        ... that share estimated from the candidates with p above this (0-1, Storey's lambda).
    expected_flag_share : float
        Share (0-1) of an animal's fixes the profile expects its speed and spike rules to flag
        (gross errors are ~0.5 % of GPS fixes, Bjørneraas et al. 2010); several times more, or
        sustained directional movement above the limit, means the profile does not fit the
        animal, and the run says so.
    """

    max_speed_kmh: float = 15.0
    speed_min_step_m: float = 100.0
    spike_speed_kmh: float = 3.0
    spike_min_turn_deg: float = 150.0
    max_iterations: int = 50
    median_window_fixes: int = 3
    max_hdop_2d: float = 5.0
    max_hdop: float = 50.0
    min_sats: int = 0
    argos_reject_classes: tuple[str, ...] = ("Z",)
    clock_jump_min_h: float = 24.0 * 7
    clock_jump_span_fraction: float = 0.5
    out_and_back_ratio: float = 1.7
    out_and_back_floor_m: float = 200.0
    out_and_back_skip_weight: float = 0.5
    movement_quantile: float = 0.75
    diel_bin_h: float = 2.0
    diel_min_steps: int = 20
    speed_limit_from_data: bool = False
    speed_limit_quantile: float = 0.95
    speed_limit_factor: float = 3.0
    speed_limit_floor_kmh: float = 5.0
    speed_limit_argos_classes: tuple[str, ...] = ("3", "2", "1")
    end_reach_check: bool = True
    outlier_alpha: float = 1e-4
    outlier_detour: float = 2.0
    outlier_release_quantile: float = 0.95
    revisit_alpha: float = 0.01
    revisit_fixes: int = 5
    revisit_directions: int = 128
    revisit_fdr: float = 0.05
    revisit_fdr_min: int = 10
    revisit_null_above: float = 0.5
    expected_flag_share: float = 0.01


@dataclass(frozen=True)
class SegmentParams:
    """Parameters of :func:`telemetry.trajectory.segment.segment`.

    Attributes
    ----------
    gap_multiple : float
        A gap longer than this multiple of the animal's own fix interval starts a new segment.
    min_gap_h : float
        Never split at gaps shorter than this (h), whatever the schedule.
    """

    gap_multiple: float = 4.0
    min_gap_h: float = 0.0


@dataclass(frozen=True)
class ClusterParams:
    """Stop/cluster rule of :func:`telemetry.trajectory.segment.clusters` (kill-site rule).

    Attributes
    ----------
    radius_m : float
        A fix joins a cluster when within this distance (m) of the cluster's centroid ...
    window_h : float
        ... and within this time (h) of the cluster's last fix.
    min_fixes : int
        Clusters with fewer fixes are not clusters.
    """

    radius_m: float = 200.0
    window_h: float = 24.0
    min_fixes: int = 2


ARGOS_ERROR_M: dict[str, float] = {
    "3": 250.0,
    "2": 500.0,
    "1": 1500.0,
    "0": 3000.0,
    "A": 3000.0,
    "B": 6000.0,
    "Z": 10000.0,
}
"""Default 1-σ error per coordinate (m) by Argos location class: the CLS Argos User's Manual
nominal accuracies (3: < 250 m, 2: 250–500 m, 1: 500–1500 m, 0: > 1500 m) and the errors
measured on tracked animals for 0/A/B by Vincent et al. (2002, Mar. Mamm. Sci. 18:156) and
Costa et al. (2010, PLoS ONE 5:e8677). Used only for classes the data cannot estimate."""


@dataclass(frozen=True)
class SmoothParams:
    """Parameters of :func:`telemetry.trajectory.smooth.smooth`.

    Attributes
    ----------
    uere_3d_m, uere_2d_m, uere_unknown_m : float
        Last-resort user-equivalent range error (m per unit HDOP, per axis) of 3D / 2D / unknown
        GPS fixes, used only for a class that is neither calibrated nor estimable (the output
        says so). 10/30 m: D'Eon & Delparte 2005 (J. Appl. Ecol. 42:383), Lewis et al. 2007.
    argos_error_m : dict
        Last-resort 1-σ error per axis (m) by Argos location class (:data:`ARGOS_ERROR_M`).
    min_sigma_m : float
        Floor on any fix's σ (m).
    estimate_error : bool
        Estimate the UERE from the tracks when no calibration is given. False: the configured
        ``uere_*_m`` are taken as the collar's error, stated by the user, and resting bouts are
        averaged across them (``average_unidentified`` applies only to values the data failed
        to identify).
    model_fit_fixes : int
        Each animal's movement model is chosen on its first this many usable fixes, then its
        scales are re-estimated on all of them; its jumps at rest (``still_jumps``) are fitted
        on its first this many still steps.
    error_fit_max_fixes : int
        Most fixes used to estimate the error model (those first stretches, of every k-th animal
        when there are many); the UERE is a property of the collars, pooled over animals. 25,000
        rather than 50,000 halves the estimate's cost (1M fixes, ``scripts/bench.py``'s two
        generators: 4.5 → 2.2 s and 5.1 → 3.0 s) for a confidence interval √2 wider: 3D UERE
        10.22 m [10.03, 10.42] → 10.23 [9.95, 10.51] and 5.02 [4.95, 5.10] → 5.06 [4.95, 5.17].
    error_min_fixes : int
        Fewest fixes of a class for its UERE to be estimated.
    error_max_factor : float
        Estimates are searched up to this multiple of the default UERE (dimensionless). Above
        it a GPS error is implausible, and a likelihood still rising there means the movement
        model is absorbing its own misfit as "error", which would wreck the smoothing.
    error_min_factor : float
        ... and down to this fraction of it (dimensionless; 0.05: 0.5 m for the 10 m 3D default,
        below any GPS collar's error). A likelihood still rising towards it means a drift at
        rest is taking the error's part (``scripts/validate.py``'s cell "sw:mostly resting",
        rests drifting as a Brownian motion, 3D 4 m, seed 104: 3D UERE 0.22 m without the
        floor, se_m coverage 0.29; 3.34 m and 0.905 with it); the class is then not identified
        by the likelihood, as at the ceiling.
    error_rest_clash : float
        A class whose likelihood estimate is more than this many times the resting bouts' own
        reading (held positions with jumps), the two intervals apart, is not identified
        (dimensionless; 0 disables): the likelihood is taking the movement model's misfit for
        error. Found by ``scripts/validate.py --fuzz 40 --seed 2`` (setting 4: 4-h fixes of a
        2.5 m collar without a fix type, slow winding moves): 11.4 m by likelihood, 1.5 m from
        the rests, smoothed fixes 9.8 m from the truth against 5.7 raw; now the fixes stay. The
        rests read heavy-tailed classes low (2D, unknown: 0.5-0.8x), so 3 leaves every cell of
        ``validate.py``'s sweep unchanged.
    error_moment_clash : float
        A class whose estimate is more than this many times the upper bound the resting bouts'
        lag-one moment puts on the error (``error_moment_bound_z``) is not identified either
        (dimensionless; 0 disables): the rests' consecutive displacements show no error that
        large. Everywhere, not only where fixes are seldom averaged: ``validate.py --fuzz 40
        --seed 1``, setting 39 (2-h fixes, 68-min rests drifting 0.05 m²/s, i.e. ~26 m per
        axis between fixes, a 4 m / 8 m collar without fix type): the unknown class read at
        15.1 m by likelihood against a bound of 3.6, and the 3D fixes smoothed 1.47 times farther
        from the truth than raw; now they stay (1.00). 3 as for ``error_rest_clash``.
    error_moment_cap : float
        An identified class whose estimate is more than this many times the resting bouts' bound
        (as for ``error_moment_clash``) is capped at the bound where the rests read the error
        the same two ways without a movement model: their lag-one moment at the estimate's
        labels is firm (``error_moment_max_se_log``) and their held positions with jumps agree
        with it (dimensionless; 0 disables). The moment at the estimate's labels is the one
        ``error_bound_at_estimate`` reads: with that off, nothing is capped. A capped class's
        interval is the bound times ``exp(±1.96 se)`` of that moment. The likelihood there reads
        the movement model's misfit as error: ``validate.py --fuzz 40 --seed S`` with and
        without ``--set smooth.error_moment_cap=0`` changes 6 of 320 settings (seeds 8123, 1618,
        4242, 6006, 777, 5050, 9999, 3141), each for the better; e.g. seed 8123 setting 21,
        30-min fixes of a 2.5 m collar without fix type, rests drifting 0.003 m²/s: 5.8 m ->
        2.6 m, its 3D fixes 1.061 -> 0.863 of raw (tests/test_validate_invariants.py). Without the
        agreement the moment alone misleads (seed 4040 setting 11: 15-min fixes, 30-min rests,
        a 10 m collar read at 4.9 m by the moment, 9.5 m by the held positions: not capped).
    error_bound_at_estimate : bool
        Read the lag-one moment's bound again with the still steps labelled at the estimate, and
        keep the larger of the two bounds (where only one is finite, that one). Labelled at the
        prior, far above a small collar error, short slow moves pass for rests; a few pairs of
        them carry their direction on and drag the moment, and its bound, below the truth. Moves
        that keep their direction lower the bound (a positive lag-one covariance) and drift does
        not enter it, so the larger of the two readings is kept. (Back-and-forth moves would raise
        it, and labelled at a too-large estimate more moves enter as rests; in the settings below
        no estimate the prior's reading had dropped now stands.) ``validate.py --fuzz 40 --seed
        31``, setting 26 (1-h fixes, a 4 m collar without fix type, 67 % of the time at rest): the bound read 0.64 m under the
        20 m prior (a few pairs of 30-130 m steps among the still ones), the likelihood's 3.41 m
        (95 % 3.28-3.54) was dropped for the default and the fixes kept raw (8.7 m, coverage
        1.000); labelled at 3.41 m the moment is 3.80 m and its bound 4.00 m (truth 4), and the fixes
        smooth to 6.3 m, coverage 0.935. Setting 18 of that seed: coverage 1.000 -> 0.970, smoothed
        all fixes 1.00 -> 0.96 x raw. Nothing else moved: the sweep (``--species generic --seeds 4``,
        84 rows) and fuzz seeds 1-5 and 22 (240 settings) are identical to the number; the bound
        can only grow, so no estimate that stood before is dropped. Cost: one more lag-one moment
        on the labels the last movement fit already made, none measurable (the error estimate on
        1M fixes: 2.19-2.86 s off, 2.20-2.80 s on, both generators of ``scripts/bench.py``).
    error_rounds : int
        Rounds of (label the still steps at the current error scale, maximise the likelihood).
    error_hdop_powers : tuple of float
        Exponents ``g`` of ``sigma = UERE × HDOP**g`` tried for fixes of unknown type, the one of
        the highest likelihood kept (empty, the default: ``g = 1``, the UERE × HDOP model of
        Fleming et al. 2020). Where 3D and 2D fixes are mixed the error does grow faster than
        HDOP, but the Gaussian likelihood picks the power that fits the 3D bulk and leaves the
        2D fixes' ``se_m`` too narrow: on simulated collars without a fix-type column (4-h
        fixes, 20 % 2D; ``python scripts/validate.py --species generic --seeds 4``) ``se_m``
        coverage was 0.925 (3D 4 m / 2D 9 m) and 0.925 (8 m / 20 m) with the grid
        ``(1, 1.5, 2, 2.5, 3)`` and is 0.970 and 0.957 with ``g = 1`` (by the fixes' true class:
        3D 0.990 / 0.980, 2D 0.888 / 0.864); position RMSE changed by +0.1 % and +1 % (3D fixes:
        -1 % and 0), and by up to +6 % in single seeds of 1-h and 40 %-2D cells (scratch runs),
        still 0.83-0.87 × raw.
    error_min_informative : float
        The share (0-1) of the fixes that the rest of the track pins down (smoothed variance below
        half the fix's own) must reach this for the error to count as estimated; below it
        consecutive fixes are too far apart for their errors to show, and the default is used
        unless the resting bouts agree with the likelihood's estimate (their lag-one moment, or
        the held-position-and-jumps estimate of ``error_jumps``, within both 95 % intervals).
    error_informative_held : bool
        Count towards ``error_min_informative`` only the fixes pinned down by the movement model
        or by held rests (still steps two or more in a row), not those an isolated still step
        ties to its neighbour: a still step alone pins its two fixes together whatever their
        error, and where rests are shorter than the interval the steps labelled still are slow
        moves. ``python scripts/validate.py --species generic --fuzz 40 --seed S`` for S in 9100,
        777, 31337, 4242, 5151 (200 settings): one setting changes (31337, #8: 2-h fixes, 49-min
        rests, no fix type), where the likelihood's 8.6 m for a 4 m collar stood on isolated still
        steps alone (coverage 0.998, 3D fixes smoothed 2.5 % farther from the truth than raw); it
        now keeps the default and its fixes raw. Alone, it also catches three failures that
        other guards were added for (``tests/test_validate_invariants.py``: ``--fuzz 40 --seed 2``
        #4, 3D fixes smoothed 1.73 times farther than raw; ``--seed 1`` #39, 1.47 times; the
        switch cell "mostly resting", seed 104, 0.22 m for a 4 m collar, coverage 0.29).
    error_max_se_log : float
        An estimate whose standard error in ``log UERE`` exceeds this (0.5: a 95 % interval
        wider than a factor 7) is not identified by the data; the default is used, and said.
    error_check_max_se_log : float
        Where fixes are seldom averaged (``error_min_informative``) an estimate stands on the
        resting bouts' agreement alone, and two loose readings agree by being loose: its
        standard error in ``log UERE`` must then be below this (0.25: a 95 % interval narrower
        than a factor 2.7), else the default. Found by ``scripts/validate.py --fuzz 40 --seed 2``,
        setting 31 (2-h fixes, 72-min rests, 6 m 3D / 16 m 2D, no fix type): the unknown class at
        4.0 m, se 0.38, agreed with the rests' 5.1 m, se 0.22, and the intervals covered 66 %.
        The held-positions-and-jumps reading that agrees must be as firm (``--fuzz 40 --seed 3``,
        setting 4: a 2D class at 38.9 m for a truth of 7 "agreed" with a reading of se 0.40).
    error_moment_max_se_log : float
        Where fixes are seldom averaged, the resting bouts' lag-one moment confirms the
        likelihood's estimate only if its own standard error in ``log UERE`` is below this: the
        moment of steps that are moves, not rests, is near zero with a wide spread, and one that
        happens to land high agrees with a likelihood that takes the movement's misfit for error.
        On the same 200 fuzz settings as ``error_informative_held``: at 0.35 (0.5 is off: a moment
        that loose is never firm) the class of 777 #28 (4-h fixes of a Brownian walker, a 6 m
        collar read as 13.7 m, confirmed by a moment of se 0.37) is no longer taken: 3D fixes
        were smoothed 7.9 % and all fixes 0.9 % farther from the truth than raw, now they stay
        raw; two estimates are lost, their fixes kept raw (9100 #20: a 6.1 m estimate of a 6 m
        collar, moment se 0.44; all fixes 3.2 % closer than raw before, 0.5 % now, coverage
        0.949 → 0.992; 4242 #31: 2.3 % → 0, coverage 0.948 → 0.963). At 0.25 (the likelihood's own
        ``error_check_max_se_log``) two more are lost (9100 #4: a 2D class, all fixes 8 % closer
        before; 9100 #33).
    error_moment_bound_z : float
        ... and it must not exceed the upper bound the resting bouts' lag-one moment puts on
        the error (this many standard errors above the moment; drift does not enter it). Where
        the steps labelled still are moves, the likelihood and the held-positions reading both
        split their spread into drift and error by HDOP alone and can agree on an error several
        times the truth (``validate.py --fuzz 40 --seed 5``, setting 29: 2-h fixes, 31-min rests,
        a 2.5 m collar read at 11.3 m, the moment's bound 9.8 m; smoothing 2.1 times worse than
        the raw fixes).
    error_check_needs_bound : bool
        ... and where the lag-one moment puts no bound on the error (fewer than
        ``error_min_fixes`` pairs of consecutive still steps, or their covariance positive beyond
        doubt: moves carried on from step to step), the agreement is no check at all and the
        class is not identified. Without rests of two steps or more nothing tells the error
        from the moves and drift inside single still steps, whose spread both readings split by
        HDOP alone. ``validate.py --species generic --seeds 4``, cell ``sw:short rests`` (90-min
        rests at 4-h fixes, 4 m / 9 m, no fix type), seed 2015: the unknown class read at 8.65 m
        (the other seeds' estimates of such collars: 4.7-6.7 m), and smoothing made 3D fixes
        2.7 % worse than raw. Off → on: that cell's 3D smoothed/raw 1.007 → 1.000 (4 seeds);
        every other cell of the sweep identical; ``--fuzz 40`` at seeds 2, 5 and 22 (120
        settings): 3 changed, setting 1 of seed 5 (a 10 m collar read at 8.6 m: coverage 0.902 →
        0.947, smoothed/raw 0.980 → 1.000) and setting 32 of seed 22 (13.2 m kept for a
        10 m / 24 m mix: coverage 0.970 → 0.991, smoothed/raw 0.985 → 1.000), and setting 17
        of seed 2 (coverage 0.987 → 0.994, the 3D class on its default both times);
        real 5-fold hold-out: buffalo 229.09 → 228.84 m, bats and gulls the same.
    error_rests_two_ways : bool
        Where fixes are seldom averaged and the likelihood does not confirm a class, its estimate
        from the resting bouts read as held positions with jumps still stands where the bouts
        read it the same a second way: their lag-one moment at the estimate's labels, both
        readings firm (``error_check_max_se_log``), agreeing (within the two intervals) and the
        estimate within the moment's upper bound. The two readings share no model of
        movement, and drift does not enter the moment; the bound keeps out what both read high
        where the steps labelled still are moves. ``validate.py --fuzz 40 --seed 8080``, setting
        28 (30-min fixes of a 2.5 m collar, rests of 45 min): the likelihood ran to its floor
        (the movement model took the error), the rests read 2.16 m (se 0.05) and the moment
        2.10 m (se 0.15, bound 2.66 m), and the default of 10 m put coverage at 1.000; with the
        rests' 2.16 m, 0.921 (both readings a little low), and 3D fixes 8 % closer to the truth.
        Firm at the moment's own ``error_moment_max_se_log`` (0.35) was too loose: seed 6262, #26
        (1-h fixes, half of them 2D, 35-min rests) then took two loose readings (4.33 m, se 0.32;
        6.95 m, se 0.30) for a 6 m collar, coverage 0.879 -> 0.801. Of 200 fuzz settings (seeds
        8080, 5150, 6262, 2468, 1357) only seed 8080's #28 changes; the design sweep
        (``--seeds 4``) and the real hold-out are identical.
    error_switching_classes : tuple of str
        The classes whose error scale is the maximum of a likelihood that sums over each step
        being still or moving (with the step HMM's transition probabilities) instead of taking
        the HMM's labels: labels read from the displacements make the still steps those whose
        errors happened to be small, and the scale comes out low (slow movers at 30-min fixes, a
        15 m collar: 9.8 m with labels, 13.7 summed over). Only classes whose errors are not
        heavy-tailed: a 2D fix far out in a rest costs two regime switches, so the summed
        likelihood prefers a larger error for the whole class (simulated commuters: 2D 36 m for
        a truth of 20), nor the unknown class, a mix of both (a 2.5 m collar, no fix type, read
        at 15 m and the track smoothed 2.5 times worse than the raw fixes). A search over
        several classes at once keeps the labels. Empty: labels for every class.
    error_jumps : bool
        Estimate the UERE from the resting bouts read as held positions with occasional jumps
        (bed shifts) rather than by the likelihood, wherever that estimate is firm: the
        likelihood's Gaussian drift at rest and any misfit of the movement model go into the
        error (simulated migrants: 11.5-12.7 m by likelihood, 7.9-8.0 m from the rests, truth 8).
    error_jump_classes : tuple of str
        The error classes estimated so: those whose errors are not heavy-tailed (a 2D fix far
        off, or one of a mix of fix types, reads as a jump and the scale comes out low).
    error_bracket_classes : tuple of str
        The classes whose UERE is raised to the lag-one moment of their fixes between two
        resting neighbours wherever that reading is firm (``error_check_max_se_log``) and larger
        (:func:`telemetry.trajectory.error_estimate._bracket_uere`): heavy-tailed classes, whose
        far-off fixes make the steps into and out of them look like moves, so that the
        likelihood with the step HMM's labels and the held rests read only the bulk of the
        error (simulated 2D fixes, Student-t: 0.6-0.85 of the truth). The fix in the middle is
        chosen by its neighbours alone, so its own error, however large, is read; what the 3D
        fixes so chosen read beyond their known error (short trips at rest) is taken off.
        Empty: off.
    error_bracket_span_chi2 : float
        ... the two neighbours count as one rest where their distance is within their errors:
        its square below this many times the sum of their variances per axis (χ², 2 d.o.f.:
        13.8 lets 99.9 % of true rests through).
    error_bracket_trim : float
        ... and a middle fix farther from its neighbours' mean than this many times its expected
        spread (its variance and a quarter of each neighbour's, per axis, at the estimate) is an
        excursion, not an error, and is left out (dimensionless; a Gaussian error never reaches
        8; of Student-t errors of 3 d.o.f., 0.15 % of fixes at the true scale, 0.4 % at 0.7 of
        it, the likelihood's reading: 2M draws, 3D neighbours at 0.4 of the 2D scale).
    error_bracket_max_raise : float
        ... and raised by at most this factor (dimensionless): the whole of a heavy-tailed error
        over the bulk the labels read (the raises on ``validate.py --fuzz 40 --seed 2468``:
        1.05-1.42; a rest's short trips read as errors get no further). 2, not 1.5: the bulk can
        be far less (``--fuzz 40 --seed 5150``, #6: 2-h fixes, half of them 2D, 20.8 m, read at
        8.33 m by the likelihood and 18.55 m between resting neighbours; at 1.5, 12.49 m and
        coverage 0.896, now 16.66 m and 0.926). No other of 200 fuzz settings (seeds 8080, 5150,
        6262, 2468, 1357), no cell of ``--seeds 4`` and no real hold-out changed, and the
        commuters whose trips the reading once took for 2D errors (seed 11) read the same.
    error_interval_readings : bool
        Widen each estimated class's 95 % interval to hold every firm reading of its error
        (``error_check_max_se_log``) by the rests' methods, each with its own interval (the one
        that gave the estimate adds nothing): the resting bouts as held positions with jumps,
        with the still steps labelled under the estimate and under the prior, their lag-one
        moment, and for the heavy-tailed classes (``error_bracket_classes``) the fixes between
        resting neighbours.
        The likelihood's curvature measures the estimate's noise given its movement model and its
        still labels; where the readings differ, that much is left open by the data (the still
        steps labelled under an error read low are those whose errors happened to be small, and
        every reading of them agrees on the low scale: ``--fuzz 40 --seed 2468``, #17, a 10 m
        collar read at 5.3 m, interval 4.2-6.8 m; with the prior's labels the rests read 13.7 m).
        Reporting only: the estimate, the smoothing and ``se_m`` are the same either way. Over
        200 fuzz settings (``validate.py --fuzz 40``, seeds 8080, 5150, 6262, 2468, 1357; no score
        changed) the interval holds the simulated UERE in 75 of 81 3D estimates (69 without), 41
        of 70 2D ones (24; the Student-t errors' whole, which the readings see only in part) and
        18 of 18 of the unknown class of files without 2D fixes (11); median width
        (high / low) 3D 1.28 -> 1.51, 2D 1.26 -> 1.73.
    error_jump_min_steps : int
        Fewest still steps an animal needs to enter that reading. Each animal's drift at rest is
        fitted there; from a handful of short steps it comes out near zero, and those steps,
        weighted inversely to a variance without drift, then make the whole estimate and its
        interval (``validate.py --fuzz 40 --seed 3``, setting 4: one animal's 3 steps put a
        2.5 m collar at 7.1 m with se 0.13 in log).
    error_rests_weighted : bool
        Where a class takes its value from the resting bouts (``error_jump_classes``) and their
        reading agrees with the likelihood's within the two readings' noise (``|log|`` of the ratio
        within 1.96 of their combined standard error), the UERE is the two weighed by their
        precision, in log, rather than the rests' alone; where they disagree (the likelihood taking
        the movement model's misfit for error: kill sites, migrants) the rests' stands. Only the
        value moves: which classes are identified, capped or bracketed is decided on the rests'
        reading as before. From a few hundred still steps whose spread a drift at rest and the
        error share (a regular schedule tells the two apart only by HDOP), the rests' reading is
        the noisier of the two: ``--fuzz 40 --seed 1357 --only 8`` (15-min fixes of a 4 m collar,
        rests of 9 h) reads 3.27 m from the rests, se 0.088 in log, 3.83 m from the likelihood, se
        0.034; weighed, 3.75 m, and coverage 0.901 -> 0.937. Over the 3D estimates it changed
        (``validate.py``, against the truth, mean ``|log(estimate / truth)|``): the design sweep
        (``--seeds 4``) 0.075 -> 0.070, 31 of 48 closer; fuzz seeds 8080, 5150, 6262, 2468, 1357
        0.068 -> 0.055 (42 of 70 closer), settings breaking an invariant 88 -> 83; six seeds not
        looked at before (3030, 4141, 7272, 9191, 2525, 6060) 0.091 -> 0.090 and 0.077 -> 0.070
        (44 of 85 closer), broken 106 -> 105. The real hold-out is unchanged. It moves a value
        towards a likelihood that reads high as well: the commuters of
        ``tests/test_smooth.py`` (4-h fixes, 8 m), seed 25, 8.50 -> 8.62 m, coverage 0.969 -> 0.970.
    tau_grid_s : tuple of float
        Candidate velocity autocorrelation times (s) of the IOU model (profile likelihood).
    speed_sd_bounds_ms : (float, float)
        Search range (m/s) of the IOU model's stationary speed s.d. per axis, ``sqrt(q)``.
    diffusion_bounds_m2s : (float, float)
        Search range (m²/s per axis) of the Brownian model's diffusion.
    default_speed_sd_ms : float
        ``sqrt(q)`` (m/s) for animals with fewer than ``min_fixes_ml`` fixes (IOU, ``tau_grid_s[-1]``).
    min_fixes_ml : int
        Fewest usable fixes for which the movement model is estimated.
    max_gap_h : float
        Restart the filter after a gap longer than this (h) that also splits the segments
        (``segment_id``, or without it the default ``SegmentParams`` rule). Shorter segment breaks
        are bridged: the models carry a gap's uncertainty, and a duty cycle's nights are gaps of
        the schedule. Following every segment break instead left the herring gulls (fixes 1-3 h
        apart by day, 11-15 h at night) a track per day: a quarter of their positions could not
        be predicted (5-fold hold-out, ``scripts/validate.py``: 75 % → 99 % predicted, RMSE on the
        fixes predicted either way 7,008 → 6,983 m; bats 67.4 → 67.3 m; buffalo unchanged).
    regimes : bool
        Consider the models with a still regime.
    range_resident : bool
        Consider the range-resident OU model (position reverting to the animal's mean).
    regime_max_iter : int
        Most EM iterations of the step HMM that labels still / active steps.
    misfit_p : float
        A still step next to a fix whose standardised residual exceeds this chi-square quantile
        becomes active (see ``telemetry.trajectory.smooth``).
    still_sure_p : float
        Still steps whose posterior probability is below this are also smoothed as active, and
        each fix takes the two answers in proportion (see ``telemetry.trajectory.smooth``).
    still_diffusion_bounds_m2s : (float, float)
        Search range (m²/s per axis) of the still regime's drift (bed shifts, moves around a
        kill): 1e-8 is none at all, 10 m²/s a few hundred metres in four hours. The step HMM's
        still regime is held to the same top (else, with few rests, it took all the movement
        and a gross error was the "active" regime), and a model whose still drift fits at the
        top is not chosen: that regime is slow movement, not rest.
    average_unidentified : bool
        Average resting bouts across a GPS fix whose error scale the data could not identify
        (the default UERE is used). Off: an assumed error larger than the collar's would average
        fixes with neighbours a day away (see ``telemetry.trajectory.smooth``).
    still_jumps : bool
        Smooth still steps as a slow drift plus occasional jumps (bed shifts) rather than the
        fitted Brownian drift alone: each step's drift variance is its expected jump variance
        (see ``telemetry.trajectory.smooth``).
    jump_min_ratio : float
        The jumps are used only where their fitted variance is at least this multiple of the
        median error variance of the two fixes of a still step (dimensionless): smaller jumps
        cannot be told from error step by step.
    retune_tau : bool
        After an IOU animal's model is chosen on its first ``model_fit_fixes`` fixes, try the
        neighbouring values of ``tau_grid_s`` for its velocity time scale on all its fixes (the
        scale re-fitted) and keep the one of the higher likelihood: the first fixes can be one
        season of several. Herring gull 87433 (``tests/data/real``), chosen on its winter at 8 h,
        migrates in flights of up to 90 km/h between stops; all its fixes prefer 2 h, and with 8 h
        each fix at a stop is predicted hours of flight too far (worst 125 km off). 5-fold
        hold-out (``scripts/validate.py``), pooled RMSE: gulls 7,886 → 7,686 m (straight line
        7,965), buffalo 233.3 → 229.1 m (248.4), bats 75.0 → 73.5 m (75.0); the simulated
        sweep (4 seeds) moves by < 0.005 × raw except the 15-min cell without a fix type: 3D
        fixes 0.866 → 0.861 × raw, all fixes 0.861 → 0.863; the sample 28.25 → 28.28 m (SL05:
        300 s → 1,800 s, likelihood +231).
    """

    uere_3d_m: float = 10.0
    uere_2d_m: float = 30.0
    uere_unknown_m: float = 20.0
    argos_error_m: dict[str, float] = field(default_factory=lambda: dict(ARGOS_ERROR_M))
    min_sigma_m: float = 0.5
    estimate_error: bool = True
    model_fit_fixes: int = 500
    error_fit_max_fixes: int = 25_000
    error_min_fixes: int = 30
    error_max_factor: float = 3.0
    error_min_factor: float = 0.05
    error_rest_clash: float = 3.0
    error_moment_clash: float = 3.0
    error_bound_at_estimate: bool = True
    error_moment_cap: float = 1.3
    error_rounds: int = 2
    error_min_informative: float = 0.05
    error_informative_held: bool = True
    error_hdop_powers: tuple[float, ...] = ()
    error_max_se_log: float = 0.5
    error_check_max_se_log: float = 0.25
    error_moment_max_se_log: float = 0.35
    error_moment_bound_z: float = 1.96
    error_check_needs_bound: bool = True
    error_rests_two_ways: bool = True
    error_switching_classes: tuple[str, ...] = ("3D",)
    error_jumps: bool = True
    error_jump_classes: tuple[str, ...] = ("3D",)
    error_bracket_classes: tuple[str, ...] = ("2D",)
    error_bracket_span_chi2: float = 13.8
    error_bracket_trim: float = 8.0
    error_bracket_max_raise: float = 2.0
    error_jump_min_steps: int = 30
    error_rests_weighted: bool = True
    error_interval_readings: bool = True
    tau_grid_s: tuple[float, ...] = (300.0, 1800.0, 7200.0, 28800.0)
    speed_sd_bounds_ms: tuple[float, float] = (1e-4, 50.0)
    diffusion_bounds_m2s: tuple[float, float] = (1e-6, 1e8)
    default_speed_sd_ms: float = 0.1
    min_fixes_ml: int = 10
    max_gap_h: float = 24.0
    regimes: bool = True
    range_resident: bool = True
    velocity_resident: bool = False
    regime_max_iter: int = 100
    misfit_p: float = 0.999
    still_sure_p: float = 0.99
    still_diffusion_bounds_m2s: tuple[float, float] = (1e-8, 10.0)
    average_unidentified: bool = False
    still_jumps: bool = True
    jump_min_ratio: float = 0.5
    retune_tau: bool = True


@dataclass(frozen=True)
class StateParams:
    """Parameters of :func:`telemetry.trajectory.states.label_states`.

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
        Number of EM starts (quantile-based initialisations, at most 5).
    start_rows : int
        The starts are compared on the first ``start_rows`` fixes of an animal (each run to
        convergence there); only the best is refined on all its fixes.
    max_iter : int
        EM iteration limit per start and for the refinement.
    tol : float
        EM stops when an iteration raises the log-likelihood by less than ``tol × |loglik|``.
        1e-6 rather than 1e-7: on the bench's 1M fixes ``label_states`` 3.46 → 2.77 s with
        99.96 % of the labels the same.
    use_smoothed : bool
        Use ``lon_s``/``lat_s`` (from :func:`telemetry.trajectory.smooth.smooth`) when present.
    n_states_choices : tuple of int
        Numbers of states (2: resting, moving; 3: resting, moving, travelling) chosen among per
        animal by BIC on its first ``start_rows`` fixes.
    min_regular_share : float
        An animal gets states only if at least this share of its intervals are whole multiples of
        its fix grid (within 10 % of the grid): a schedule, not random (e.g. Argos) times, of
        which about 20 % pass on any grid.
    schedule_divisors : tuple of int
        An animal off its median interval's grid is tried on finer ones: the median interval, or
        the interval just below the middle (one the collar took), divided by each of these; the
        grid that holds the most intervals counts. Collars that change their interval with the
        battery or the time of day (the real GPS gulls: 1, 2 and 3 h, median 2 h, 41-48 % of
        intervals whole multiples of 2 h but all of 1 h) are on a schedule too; random times put
        at most 30 % on any grid (800 simulated animals). The HMM still reads only the steps of
        the median interval.
    max_interval_h : float
        No states for an animal whose fixes are further apart than this (h, median): rests and
        moves last hours, so a displacement over a longer interval says little about the
        behaviour at a fix. Accuracy at the fix against the trivial answer (always the commoner
        state), per animal, ``python scripts/validate.py --schedules --seeds 2`` (its two
        simulators, 40 animals per interval): above it at 2 h 40, at 4 h 39, at 5 h 34, at 6 h 25
        (mean 0.736 against 0.705: on average still above, 15 animals below), at 8 h 14 (0.690
        against 0.702). The tests' generator (rests 2-12 h) at 8 h: 0.45 against 0.68; per
        animal 20 of 21 above it at 5 h, 3 of 21 at 6 h (``tests/test_states.py``). The second
        simulator's random settings (``--fuzz 40``, seeds 8080, 5150, 6262, 2468, 1357, with and
        without ``--set states.max_interval_h=12``, then ``--compare``): at 8 h 13 of 29
        settings above it, 0.672 on average against 0.695; settings below it 33 -> 17 of 200.
        12 h before this measurement: set it again for a species whose rests span many intervals (kills held for days), where 8-h states can score 0.95.
        5.5 lies between the 5-h and 6-h schedules measured, so that a 5-h collar whose times
        jitter by seconds keeps its states (the sample's SL03 and SL07: median 5.001 h).
    dominant_share_warn : float
        Warn (``attrs["states"][animal]["warning"]``) when one state takes more than this share
        of an animal's fixes.
    min_resting_share : float
        No states for an animal with fewer than this share (0-1) of its fixes at rest: not one
        step in a hundred was as short as the fixes' errors, so whatever rests it took were
        shorter than the interval between fixes and the behaviour at a fix cannot be told from
        the displacements (calling every fix "moving" scored 0.20 where 80 % of fixes were at
        rest: ``scripts/validate.py --fuzz 40 --seed 1``, setting 30, 69-min rests at 8-h fixes).
    max_resting_share : float
        No states either for an animal with more than this share (0-1) of its fixes at rest: not
        one step in a hundred was longer than the fixes' errors allow, so the still regime took
        every move too (an error the data did not identify, its default several times the
        collar's) and "resting" everywhere says no more than the trivial answer. On 160 settings
        of ``validate.py --fuzz 40`` (seeds 8123, 2718, 1618, 4040) 7 animals had 99.6-99.9 % of
        their fixes at rest, 6 of them below the trivial answer (e.g. seed 2718 setting 2: 2-h
        fixes of a 4 m collar under the 20 m default, 0.235 against 0.765); the next highest share
        was 96.7 % (a real rester, 0.996). The settings below the trivial answer went 26 -> 22 of
        155 (``--set states.max_resting_share=1`` gives the old ones). No animal of the sample or
        of the real studies' test excerpts is withheld (tests/test_states.py).
    min_state_kept : float
        An animal whose BIC chose 3 states gets 2 when the smoother's still regime takes all but
        this share (0-1) of a moving state's fixes (its share by the HMM alone): that state fitted
        rests, and the other took the name "travelling" for every move (the real Kruger buffalo:
        10-25 % by the HMM, 0.0-0.3 % after; the alert tests' simulator, 49 of the 100 animals
        that chose 3 states in its 1M-fix set;
        a state small of its own stays: the sample's SL10, travelling 1.6 % before and after).
    still_rest_min_ratio : float
        No states for an animal whose smoother chose a still regime drifting within this factor
        of its movement (``diffusion_m2s / still_diffusion_m2s`` of ``attrs["smooth"]`` below
        it; dimensionless): that regime is a second speed of moving, not rest, and the steps the
        errors alone explain are the slow movement too. ``python scripts/validate.py
        --still-ratio --seed 12 --seeds 4`` (fuzz seeds 12-15, 610 animals with a still
        regime; the table by ratio): below 15, 46 animals, mean ``p_still`` on truly resting
        minus truly moving fixes 0.00-0.06, states below the trivial answer in 41; 15-30, 0.22-0.36
        and 3 of 21; 30-50, 0.16 and 14 of 19 (left: a threshold of 50 would also take the
        15-30 animals whose states work); above 300, 0.64-0.77 and 19 of 460. The same ratio
        of the step HMM's still regime (``still_label_diffusion_m2s``, whose posterior is
        ``p_still``) decides whether the states take ``p_still`` as the resting probability or
        use their own resting state: with a few gross errors left in a track the step HMM can
        make them its active regime and all the movement "still" (``validate.py --fuzz 40 --seed
        31``, setting 9: drift 6.2 m²/s against 60 of movement, states 0.55 against the trivial
        0.79; now 0.885). 0 turns both checks off.
    min_still_stay_per_step : float
        No states for an animal whose rests seldom outlast the interval between its fixes: in
        the smoother's step HMM (``still_label_stay_still`` of ``attrs["smooth"]``) a still step
        is followed by another with a probability below this (0-1, per step); also where that
        HMM's still regime drifts like movement (it found no rests at all: 6 such animals of 11
        fuzz seeds below 0.3, all below the trivial answer, -0.02 to -0.48). For rests without memory that probability is ``exp(-interval /
        mean rest)``: 0.3 is rests averaging less than 0.83 of the interval. Most rests then
        begin and end between two fixes, a fix at rest lies between displacements that show
        movement, and the state at a fix is not in the positions (``scripts/validate.py``'s
        oracle, the best threshold on the true steps, is within 0.05 of the trivial answer).
        Rerunnable: ``python scripts/validate.py --rest-stay --seed 8080 --seeds 4`` tabulates
        every animal of those fuzz seeds with the check off, by this probability: of 528 animals
        with states, the 56 below 0.3 scored 0.046 below the trivial answer on average (22 of them
        below it; oracle +0.05), those at 0.3-0.5 +0.06 and those above 0.5 +0.26. In scratch
        runs per animal of ``validate.py --fuzz 40`` (the switching simulator, states against the
        trivial answer): seeds 8080, 5150, 6262, 2468 and 1357 (where the signal was found): the
        54 of 611 animals below 0.3 at -0.116 on average (38 of them below), the others +0.214;
        seeds 4242, 3131, 9191 and 7171 (used to choose 0.3 over 0.25): 66 of 527 at -0.036 (28
        below), the others +0.229; seeds 6060 and 1212, looked at only afterwards: 18 of 270 at
        +0.032 (4 below; their oracle +0.10), the others +0.219. All 11 seeds: 138 of 1408
        animals, -0.058 (70 below, oracle +0.057). The loss is in animals at rest most of the
        time, whose short rests the labels miss (read "moving"); the gain given up is in animals
        moving most of the time, where "moving" nearly everywhere beats the trivial answer by
        0.03-0.12. The data cannot tell the two apart (the share of time at rest is not
        identified when rests end between fixes), so the labels are withheld: they are not a
        reading of the behaviour at the fix either way. The design sweep's "sw:short rests"
        (4-h fixes, moving most of the time) loses states 0.05 above the trivial answer (its
        oracle +0.06). The tests' generator (uniform 20-60 min rests at 2-h fixes, at rest 80 %
        of the time): 0.23 against 0.81 without it (``tests/test_states.py``). 0 turns it off.
    """

    fix_interval_s: float | None = None
    interval_tol: float = 0.25
    max_gap_h: float = 24.0
    min_step_m: float = 1.0
    min_steps: int = 30
    n_starts: int = 2
    start_rows: int = 1000
    max_iter: int = 300
    tol: float = 1e-6
    use_smoothed: bool = False
    n_states_choices: tuple[int, ...] = (2, 3)
    min_regular_share: float = 0.5
    schedule_divisors: tuple[int, ...] = (1, 2, 3, 4)
    max_interval_h: float = 5.5
    dominant_share_warn: float = 0.9
    min_resting_share: float = 0.01
    max_resting_share: float = 0.99
    min_state_kept: float = 0.1
    still_rest_min_ratio: float = 15.0
    min_still_stay_per_step: float = 0.3


@dataclass(frozen=True)
class HomeRangeParams:
    """Home-range estimators of :func:`telemetry.trajectory.homerange.home_ranges`.

    Attributes
    ----------
    mcp_levels_pct : tuple of float
        MCP levels (% of fixes closest to the centroid).
    kde_levels_pct : tuple of float
        KDE isopleth levels (% of probability mass).
    kde_grid_cells : int
        Grid cells along the longer side of the KDE grid.
    kde_bandwidth_factor : float
        Multiplier of the reference bandwidth ``h_ref``.
    akde : bool
        Also fit continuous-time movement models and autocorrelated KDE ranges
        (:mod:`telemetry.trajectory.ranges`).
    akde_levels_pct : tuple of float
        AKDE isopleth levels (% of the utilisation distribution).
    akde_grid_cells : int
        AKDE grid cells along the longer side of the range (in its whitened coordinates).
    ci_level_pct : float
        Confidence level (%) of the areas', time scales' and speeds' intervals.
    akde_bootstrap : int
        Tracks simulated from each fitted model to measure the kernel estimate's lumpiness
        (:func:`telemetry.trajectory.akde.lumpiness`; 0: no correction).
    ctmm_models : tuple of str
        Candidate movement models (``iid``, ``bm``, ``ou``, ``ouf``), selected by AICc.
    ctmm_min_fixes : int
        Fewest usable fixes of a period to fit models to.
    ctmm_min_n_area : float
        Fewest range crossings (effective sample size ``N_area``) for a period to count as
        range-resident and get a home range.
    period_min_days : float
        Shortest resident period (days) when a track is cut at relocations/migrations.
    period_penalty_factor : float
        Multiplier of the BIC penalty per period when a track is cut (more: fewer periods).
    """

    mcp_levels_pct: tuple[float, ...] = (95.0, 100.0)
    kde_levels_pct: tuple[float, ...] = (50.0, 95.0)
    kde_grid_cells: int = 256
    kde_bandwidth_factor: float = 1.0
    akde: bool = True
    akde_levels_pct: tuple[float, ...] = (50.0, 95.0)
    akde_grid_cells: int = 256
    ci_level_pct: float = 95.0
    akde_bootstrap: int = 8
    ctmm_models: tuple[str, ...] = ("iid", "bm", "ou", "ouf")
    ctmm_min_fixes: int = 20
    ctmm_min_n_area: float = 2.0
    period_min_days: float = 14.0
    period_penalty_factor: float = 1.0


@dataclass(frozen=True)
class CrossingParams:
    """Border crossings of :func:`telemetry.corridor.crossings.crossings`.

    Attributes
    ----------
    band_k : float
        Half-width of the uncertain band along each border, in combined σ (fix error and
        border accuracy); a fix inside it is on no side.
    border_error_m : float or None
        Accuracy of the border lines (m, 1 σ); None: the zone layer's own per-zone accuracy.
    min_stay_fixes : int
        Certain fixes an animal must have on the new side for a crossing.
    min_stay_h : float
        Hours it must stay there.
    open_end : bool
        A stay cut short by the end of the data still counts (the event is marked truncated).
    gap_scale_h : float
        Scale (h) of the confidence's decay with the gap that brackets a crossing.
    excursions : bool
        Also report brief visits to another zone (``kind="excursion"``).
    smoothed : bool
        Use the smoothed positions and their ``se_m`` when the tracks have them.
    outside_is_place : bool or None
        Land outside every zone is a side (crossings into and out of it); None: False for the
        countries (the sea starts and ends nothing), True for user zone layers.
    """

    band_k: float = 2.0
    border_error_m: float | None = None
    min_stay_fixes: int = 2
    min_stay_h: float = 0.0
    open_end: bool = True
    gap_scale_h: float = 48.0
    excursions: bool = True
    smoothed: bool = True
    outside_is_place: bool | None = None


@dataclass(frozen=True)
class HotspotParams:
    """Crossing hotspots of :func:`telemetry.corridor.hotspots.hotspots`.

    Attributes
    ----------
    gap_km : float
        Crossing points further apart than this along a border (km) start a new hotspot.
    buffer_km : float
        Each hotspot's border segment extends this far beyond its outermost crossings (km).
    max_offset_km : float
        Crossing points further than this from the shared border line are not placed on it (km;
        e.g. a crossing via the sea).
    kinds : tuple of str
        Event kinds clustered (``"crossing"``, ``"excursion"``).
    """

    gap_km: float = 5.0
    buffer_km: float = 1.0
    max_offset_km: float = 10.0
    kinds: tuple[str, ...] = ("crossing",)


CORRIDOR_METHODS: tuple[str, ...] = ("footprint", "behaviour")
"""Corridor methods: Brownian-bridge footprint stacking (Sawyer et al. 2009) and corridor
behaviour (LaPoint et al. 2013)."""


@dataclass(frozen=True)
class CorridorParams:
    """Corridors of :func:`telemetry.corridor.corridors.corridors` (footprints and corridor behaviour).

    Attributes
    ----------
    methods : tuple of str
        ``"footprint"`` and/or ``"behaviour"``.
    max_gap_h : float
        Longest interval (h) bridged by a step; longer gaps (and segment breaks) cut the track.
    cell_m : float or None
        Footprint grid cell (m). None: from the data, half the median width (σ, m) of the
        study's bridges at mid-step, so that a bridge spans a fixed number of cells whatever
        the species: 250 m for the snow leopard sample (the bridges say 242 m), 10.6 km for a
        pole-to-pole tern (whose 250-m footprint took 70 s of a 162-s run); never finer than ``min_cell_m``.
    min_cell_m : float
        Finest footprint cell (m) chosen from the data (a given ``cell_m`` is used as is).
    max_cells : int
        Largest footprint grid held in dense arrays; a wider study's grid is sparse (same
        cell size; footprints computed on tiles along each animal's path and counted from
        sorted cell lists), so the cost follows the fixes, not the extent.
    max_cells_per_bridge : float
        The data-driven cell (``cell_m`` None) is coarsened until the bridges' boxes (each
        bridge's density is evaluated over the box its reach spans) hold at most this many
        cells per bridge on average, or ``min_cell_budget`` cells in all if more: the median
        rule alone let one animal whose steps are far wider than the others' cover billions
        of cells (a file of 344 fixes, one animal stepping 50-500 km between fixes among
        others at rest: 6.1e9 cells, memory past 24 GB; now cells of 2.8 km with the generic profile,
        3.0 km with the snow leopard's, and the whole run 14 s, 0.9 GB). Below it, as on the
        snow leopard sample (577 a bridge), the terns (900), the bats (37) and the buffalo
        (102), nothing changes.
    min_cell_budget : int
        See ``max_cells_per_bridge`` (cells: on that file the footprints at 5e7 box cells took
        0.56 s, 1.2 million cells kept).
    footprint_level : float
        Footprint isopleth per animal (0.99: cells holding 99 % of the UD; Sawyer et al. 2009).
    k_sigma : float
        Bridge densities are evaluated out to this many standard deviations.
    classes : tuple of int or None
        Animal-count classes for footprint polygons (``None``: 1, 2, …, max count).
    speed_prop : float
        LaPoint ``speedProp``: quantile of each animal's speeds above which a step is fast.
    circ_prop : float
        LaPoint ``circProp``: quantile of circular variances below which a step is parallel.
    radius_frac : float
        Neighbourhood radius as a fraction of the step length (½ in ``move::corridor``).
    min_neighbours : int
        Midpoints (own included) a neighbourhood needs for a corridor step (3 in ``move``).
    pooled : bool
        Neighbourhoods include other animals' steps (population corridors traversed once
        by each animal); False restricts them to the animal's own steps as in ``move``.
    buffer_m : float
        Buffer (m) around corridor steps for behaviour polygons.
    min_animals : int
        Distinct animals whose corridor steps must cluster for a behaviour polygon.
    hotspot_dist_m : float
        A hotspot is linked to a corridor whose polygon lies within this distance (m).
    border_dist_m : float
        A corridor within this distance (m) of a border line is cross-border (0 = touches).
    """

    methods: tuple[str, ...] = CORRIDOR_METHODS
    max_gap_h: float = 24.0
    cell_m: float | None = None
    min_cell_m: float = 250.0
    max_cells: int = 4_000_000
    max_cells_per_bridge: float = 5000.0
    min_cell_budget: int = 50_000_000
    footprint_level: float = 0.99
    k_sigma: float = 5.0
    classes: tuple[int, ...] | None = None
    speed_prop: float = 0.75
    circ_prop: float = 0.25
    radius_frac: float = 0.5
    min_neighbours: int = 3
    pooled: bool = True
    buffer_m: float = 250.0
    min_animals: int = 2
    hotspot_dist_m: float = 1000.0
    border_dist_m: float = 0.0

    def __post_init__(self) -> None:
        methods = (self.methods,) if isinstance(self.methods, str) else tuple(self.methods)
        object.__setattr__(self, "methods", methods)
        bad = sorted(set(methods) - set(CORRIDOR_METHODS))
        if bad:
            raise TelemetryError(f"parameter corridors.methods: unknown method(s) {', '.join(bad)}; "
                                 f"use {', '.join(CORRIDOR_METHODS)}")

    def with_values(self, **values: Any) -> CorridorParams:
        """A copy with some fields replaced (unknown names are an error)."""
        names = {f.name for f in fields(self)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise TypeError(f"unknown corridor parameter(s): {', '.join(unknown)}")
        if "methods" in values:
            m = values["methods"]
            values["methods"] = (m,) if isinstance(m, str) else tuple(m)
        bad = set(values.get("methods", ())) - set(CORRIDOR_METHODS)
        if bad:
            raise ValueError(f"unknown corridor method(s) {sorted(bad)}; use {CORRIDOR_METHODS}")
        return replace(self, **values)


@dataclass(frozen=True)
class PublicParams:
    """What public outputs (``public.geojson``, ``telemetry export --audience public``) give away.

    Attributes
    ----------
    grid_deg : float
        Generalisation grid (degrees): polygons become the union of the cells they touch,
        points their cell (0.1° ≈ 11 km: GBIF/Chapman 2020 "high sensitivity"; 1.0 their
        category 1).
    licence : str
        Data licence written into the public files' metadata.
    min_animals : int
        Fewest distinct animals behind any published polygon, cell or count: a crossing count of
        one animal in a month names that animal's movements. Corridors and hotspots with fewer
        are left out, crossing counts merged to the border and year (left out if still fewer),
        home ranges published only as the cells shared by at least this many animals' ranges;
        the file says how many were left out.
    min_confidence : float
        Crossings less certain than this (0-1, the crossing's ``confidence``: e.g. one bracketed
        by a year-long gap) are not counted in public crossing counts.
    embargo_months : int
        Public outputs end this many calendar months before the last fix: they are made from
        the fixes up to then only (0: no embargo).
    study : str
        Name of the study in the provenance of every public file; empty: taken from the data
        (a Movebank ``study-name`` column), else the input files' folder names.
    """

    grid_deg: float = 0.1
    licence: str = "CC-BY-4.0"
    min_animals: int = 3
    min_confidence: float = 0.5
    embargo_months: int = 0
    study: str = ""

    def __post_init__(self) -> None:
        # checked here so that a bad value fails before any work, not at the last output
        g = float(self.grid_deg)
        if not math.isfinite(g) or not 0 < g <= 10 or abs(round(g * 1e6) - g * 1e6) > 1e-6:
            raise TelemetryError(f"parameter public.grid_deg must be in (0, 10] degrees and a multiple of "
                                 f"0.000001°, got {self.grid_deg!r}")
        if int(self.min_animals) < 1:
            raise TelemetryError(f"parameter public.min_animals must be at least 1, got {self.min_animals!r}")
        if int(self.embargo_months) < 0:
            raise TelemetryError(f"parameter public.embargo_months must be 0 or more, got {self.embargo_months!r}")
        if not 0.0 <= float(self.min_confidence) <= 1.0:
            raise TelemetryError(f"parameter public.min_confidence must be in [0, 1], got {self.min_confidence!r}")


@dataclass(frozen=True)
class MapParams:
    """The interactive map (``map.html``) and its size budget (see :class:`telemetry.outputs.maps.MapBudget`).

    Attributes
    ----------
    simplify_m : float
        Douglas–Peucker tolerance (m) of the drawn tracks and areas (display only).
    animation : bool
        Include the time slider.
    max_track_vertices : int
        Most vertices of all tracks together; above it the tolerance is raised in round steps.
    max_area_vertices : int
        Most vertices per area layer (corridors, home ranges).
    max_fixes : int
        Most fixes in the time slider and the "Fixes" layer (one per animal per time bin).
    max_points : int
        Most markers per point layer (flagged fixes, clusters, crossings, hotspots).
    """

    simplify_m: float = 50.0
    animation: bool = True
    max_track_vertices: int = 150_000
    max_area_vertices: int = 60_000
    max_fixes: int = 150_000
    max_points: int = 5_000


@dataclass(frozen=True)
class ChartParams:
    """The PNG charts of ``telemetry run``.

    Attributes
    ----------
    max_animals : int
        Most animals drawn per chart (fix success: those with the lowest; daily distance:
        evenly spaced by median).
    """

    max_animals: int = 40


@dataclass(frozen=True)
class AlertParams:
    """``telemetry alerts``: when a collar's data call for the field team.

    Attributes
    ----------
    max_stay_days : float
        Longest plausible stay of a live animal in one place (days): a collar still within its
        own location error for longer is a mortality (or dropped collar) alert. Snow leopards
        stay at a kill up to about a week (Johansson et al. 2015); the profile sets it per
        species, and it is never below 1.25 × the animal's own longest earlier cluster.
    stationary_radius_sigma : float
        "Within the location error": within this many times the fixes' error SD (``sigma_m``
        from the error model) of the run's median position.
    stationary_outlier_share : float
        Share of fixes of a stationary run allowed outside that radius (gross GPS errors).
    min_radius_m : float
        Smallest stationary radius (m), for collars whose error model says less.
    default_uere_m : float
        Location error per unit HDOP (m) for tracks without ``sigma_m`` (unprocessed fixes).
    kill_min_h : float
        Clusters (200 m / 24 h rule) lasting at least this long (hours) are reported as kill
        sites to visit (information).
    border_km : float
        A smoothed position this close to an international border (km) is a border approach.
    approach_km_per_day : float
        Or within 3 × ``border_km`` and closing in at this rate or faster (km/day, last 24 h).
    min_confidence : float
        Crossings (of borders and zones) alerted only when at least this certain (0-1).
    context_days : float
        With a ``since`` time, crossings are looked for in the fixes from this many days
        before it (the bracket of a new crossing starts at the last certain fix before it).
    silence_fixes : int
        No data for longer than this many of the collar's scheduled fixes is an alert.
    fix_success_drop : float
        A whole day with fix success below this share of the collar's median day is an alert.
    hdop_rise : float
        A day whose median HDOP is this many times the collar's median (and above
        ``hdop_min``) is an alert.
    hdop_min : float
        HDOP below this is never alerted.
    """

    max_stay_days: float = 7.0
    stationary_radius_sigma: float = 3.0
    stationary_outlier_share: float = 0.05
    min_radius_m: float = 10.0
    default_uere_m: float = 10.0
    kill_min_h: float = 24.0
    border_km: float = 5.0
    approach_km_per_day: float = 2.0
    min_confidence: float = 0.5
    context_days: float = 7.0
    silence_fixes: int = 6
    fix_success_drop: float = 0.5
    hdop_rise: float = 2.0
    hdop_min: float = 3.0


@dataclass(frozen=True)
class PageParams:
    """The HTML pages (``index.html``, ``map.html``, ``public.html``, ``brief.html``, ``brief.pdf``).

    Attributes
    ----------
    lang : str
        Language the pages open in and of ``brief.pdf``: ``en``, ``ru``, ``kk``, ``ky`` or
        ``zh`` (every page carries all five and switches in the page).
    """

    lang: str = "en"

    def __post_init__(self) -> None:
        if self.lang not in PAGE_LANGS:
            raise TelemetryError(f"pages.lang: unknown language {self.lang!r} (one of {', '.join(PAGE_LANGS)})")


PAGE_LANGS = ("en", "ru", "kk", "ky", "zh")
"""Languages of the pages (the catalogues in ``telemetry/data/locale``)."""


SECTIONS: tuple[str, ...] = ("clean", "segment", "clusters", "smooth", "states", "homerange", "crossings",
                            "hotspots", "corridors", "public", "map", "charts", "pages", "alerts")
"""Config sections (one dataclass each)."""

PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    # Snow leopard (Panthera uncia), GPS collars at 1-4 h: travel rarely exceeds a few km/h
    # between fixes (daily movements of up to ~10-40 km; McCarthy et al. 2005, Johansson et al.
    # 2016); kill sites are found with the 200 m / 24 h cluster rule of large-carnivore studies
    # (Knopff et al. 2009, Johansson et al. 2015).
    "snow_leopard": {},
    # Wolves, lions, pumas, bears: travel at 5-10 km/h for hours and chase at 50-60 km/h for
    # minutes (Mech & Boitani 2003, "Wolves"; Kusler et al. 2017 for pumas), so between fixes
    # a quarter of an hour or more apart anything over ~25 km/h is an error.
    "large_carnivore": {
        "clean": {"max_speed_kmh": 25.0, "spike_speed_kmh": 5.0},
        # bears den for months: raise it for a denning season (an earlier den in the data raises it too)
        "alerts": {"max_stay_days": 7.0},
    },
    # Caribou, elk, buffalo, antelope: migrations of tens of km a day, flight at up to 60-80
    # km/h for minutes (Fancy et al. 1989, Can. J. Zool. 67:644; Berger 2004, Conserv. Biol.
    # 18:320 on long ungulate migrations).
    "ungulate": {
        "clean": {"max_speed_kmh": 40.0, "spike_speed_kmh": 8.0},
        "alerts": {"max_stay_days": 3.0},  # calves hide, adults keep moving within days
    },
    # Migrating birds: airspeeds of 30-70 km/h for passerines and cuckoos, ground speeds over
    # 100 km/h with tailwinds, legs of hundreds of km a day (Alerstam et al. 2007, PLoS Biol.
    # 5:e197; Willemoes et al. 2014, PLoS ONE 9:e83515 for the common cuckoo).
    "migratory_bird": {
        "clean": {"max_speed_kmh": 150.0, "spike_speed_kmh": 60.0, "speed_min_step_m": 500.0,
                  "out_and_back_floor_m": 1000.0},
        "alerts": {"max_stay_days": 40.0},  # incubation and chick rearing at one nest
    },
    # Fast-flying bats: European free-tailed bats reach ground speeds of 135 km/h (O'Mara et
    # al. 2021, Curr. Biol. 31:1311), at fix intervals of seconds to minutes.
    "bat": {
        "clean": {"max_speed_kmh": 160.0, "spike_speed_kmh": 60.0, "speed_min_step_m": 100.0},
        "alerts": {"max_stay_days": 2.0},  # a roost is left every night
    },
    # Sea turtles tracked by Argos: swimming at 1-5 km/h (Luschi et al. 1998, Proc. R. Soc. B
    # 265:2279), location errors of kilometres (class B ~6 km), so a speed is only judged over
    # steps longer than a few Argos errors.
    "marine_turtle": {
        "clean": {"max_speed_kmh": 10.0, "spike_speed_kmh": 3.0, "speed_min_step_m": 5000.0,
                  "out_and_back_floor_m": 5000.0},
        "alerts": {"max_stay_days": 3.0},
    },
    # Anything else: only physically absurd speeds are removed (fast birds and bats exceed
    # 100 km/h), spikes need a fast out-and-back.
    "generic": {
        "clean": {"max_speed_kmh": 200.0, "spike_speed_kmh": 50.0, "speed_min_step_m": 200.0,
                  "argos_reject_classes": ("Z",)},
        "segment": {"gap_multiple": 4.0},
        "alerts": {"max_stay_days": 14.0},
    },
    # Each animal's speed limit from its own steps: 3 x the 95th percentile of its step
    # speeds (at least 5 km/h); the generic values otherwise.
    "auto": {
        "clean": {"max_speed_kmh": 200.0, "spike_speed_kmh": 50.0, "speed_min_step_m": 200.0,
                  "speed_limit_from_data": True},
        "segment": {"gap_multiple": 4.0},
        "alerts": {"max_stay_days": 14.0},
    },
}
"""Species profiles: overrides of the dataclass defaults (which are the snow leopard's)."""

DEFAULT_SPECIES = "snow_leopard"

HEAP_REUSE_BYTES = 1 << 30
"""While ``process`` and ``run`` work, arrays up to this size (bytes) come from memory the
process keeps for reuse rather than from a fresh ``mmap`` each (glibc only; 0 switches it off;
the environment variable ``TELEMETRY_HEAP_REUSE_BYTES`` overrides it). A run's setting, not a
step's, so it is not in :class:`Config`: see :mod:`telemetry.heap` for what it saves."""


@dataclass(frozen=True)
class Config:
    """Every parameter of the pipeline, one dataclass per step."""

    species: str = DEFAULT_SPECIES
    clean: CleanParams = field(default_factory=CleanParams)
    segment: SegmentParams = field(default_factory=SegmentParams)
    clusters: ClusterParams = field(default_factory=ClusterParams)
    smooth: SmoothParams = field(default_factory=SmoothParams)
    states: StateParams = field(default_factory=StateParams)
    homerange: HomeRangeParams = field(default_factory=HomeRangeParams)
    crossings: CrossingParams = field(default_factory=CrossingParams)
    hotspots: HotspotParams = field(default_factory=HotspotParams)
    corridors: CorridorParams = field(default_factory=CorridorParams)
    public: PublicParams = field(default_factory=PublicParams)
    map: MapParams = field(default_factory=MapParams)
    charts: ChartParams = field(default_factory=ChartParams)
    pages: PageParams = field(default_factory=PageParams)
    alerts: AlertParams = field(default_factory=AlertParams)

    @classmethod
    def for_species(cls, species: str = DEFAULT_SPECIES) -> Config:
        """The defaults of a species profile (see :data:`PROFILES`)."""
        key = species.strip().lower().replace(" ", "_").replace("-", "_")
        if key not in PROFILES:
            raise TelemetryError(f"unknown species profile {species!r}; known: {', '.join(PROFILES)}")
        return Config(species=key).with_values(PROFILES[key])

    def with_values(self, values: Mapping[str, Any]) -> Config:
        """A copy with ``{"section": {"name": value}}`` (e.g. a parsed TOML file) applied.

        A top-level ``species`` key switches profile first; unknown sections or names,
        and values of the wrong type, are a :class:`TelemetryError`.
        """
        cfg = self
        values = dict(values)
        if "species" in values:
            cfg = Config.for_species(str(values.pop("species")))
        updates: dict[str, Any] = {}
        for section, entries in values.items():
            if section not in SECTIONS:
                raise TelemetryError(f"unknown configuration section {section!r}; known: {', '.join(SECTIONS)}")
            if not isinstance(entries, Mapping):
                raise TelemetryError(f"configuration section {section!r} must be a table of name = value")
            current = getattr(cfg, section)
            known = {f.name: f for f in fields(current)}
            changes = {}
            for name, value in entries.items():
                if name not in known:
                    raise TelemetryError(
                        f"unknown parameter {section}.{name}; known: {', '.join(known)}"
                    )
                changes[name] = _coerce(f"{section}.{name}", getattr(current, name), value, str(known[name].type))
            updates[section] = replace(current, **changes)
        return replace(cfg, **updates)

    def with_given(self, values: Mapping[str, Mapping[str, Any]]) -> Config:
        """:meth:`with_values` of the entries that are not None (a command's optional flags,
        shortcuts for ``--set``: an unset flag leaves the profile's, file's or ``--set`` value).

        >>> Config().with_given({"map": {"simplify_m": None, "animation": False}}).map.simplify_m
        50.0
        """
        return self.with_values({sec: {k: v for k, v in entries.items() if v is not None}
                                 for sec, entries in values.items()})

    def with_overrides(self, overrides: Iterable[str]) -> Config:
        """A copy with ``section.name=value`` strings applied (the CLI's ``--set``).

        The value is read as TOML (``12``, ``true``, ``"text"``, ``["B", "Z"]``); bare
        text that is not valid TOML is taken as a string.
        """
        nested: dict[str, dict[str, Any]] = {}
        for item in overrides:
            key, sep, raw = item.partition("=")
            section, dot, name = key.strip().partition(".")
            if not sep or not dot or not name:
                raise TelemetryError(f"--set expects section.name=value, got {item!r}")
            nested.setdefault(section, {})[name.strip()] = _parse_value(raw.strip())
        return self.with_values(nested)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable parameters (tuples → lists) for output metadata."""
        out = json.loads(json.dumps(dataclasses.asdict(self), default=_json_default))
        return out

    def to_json(self) -> str:
        """:meth:`to_dict` as compact, key-sorted JSON (reproducible bytes)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))


def load_config(
    path: str | Path | None = None,
    *,
    species: str | None = None,
    overrides: Iterable[str] = (),
) -> Config:
    """Build a :class:`Config`: species profile, then a TOML file, then ``--set`` overrides.

    Parameters
    ----------
    path : path, optional
        TOML file with ``[clean]``, ``[segment]``, ... tables and optionally ``species = "..."``.
    species : str, optional
        Species profile; wins over the file's ``species``.
    overrides : iterable of str
        ``section.name=value`` strings, applied last.
    """
    cfg = Config.for_species(species or DEFAULT_SPECIES)
    if path is not None:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as err:
            raise TelemetryError(f"cannot read configuration: {err.strerror}", str(path)) from None
        except tomllib.TOMLDecodeError as err:
            raise TelemetryError(f"invalid TOML: {err}", str(path)) from None
        if species is not None:
            data.pop("species", None)
        cfg = cfg.with_values(data)
    return cfg.with_overrides(overrides)


def _parse_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


_ITEM_TYPES = {"tuple[float": float, "tuple[int": int, "tuple[str": str}


def _coerce(name: str, current: Any, value: Any, annotation: str = "") -> Any:
    """Convert ``value`` to the type of the current value (of the annotation when that is None);
    refuse what does not fit."""
    try:
        if current is None:  # optional parameter (e.g. crossings.border_error_m): a value, or none/null
            if value is None or str(value).strip().lower() in {"none", "null", ""}:
                return None
            if annotation.startswith("bool"):
                return _coerce(name, False, value)
            if annotation.startswith("tuple["):
                return _coerce(name, (), value, annotation)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
            return float(str(value))
        if isinstance(current, bool):
            if isinstance(value, bool):
                return value
            if str(value).lower() in {"true", "yes", "1"}:
                return True
            if str(value).lower() in {"false", "no", "0"}:
                return False
            raise ValueError
        if isinstance(current, int):
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise ValueError
            return int(float(value))
        if isinstance(current, float):
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if isinstance(current, tuple):
            items = value if isinstance(value, (list, tuple)) else [v for v in str(value).split(",") if v.strip()]
            # (an empty or missing default says nothing of its items' type: the annotation does)
            kind = type(current[0]) if current else _ITEM_TYPES.get(annotation.split(",")[0].split("]")[0], str)
            if kind is not str and any(isinstance(v, bool) for v in items):
                raise ValueError
            return tuple(kind(v.strip() if isinstance(v, str) else v) for v in items)
        if isinstance(current, Mapping):
            if not isinstance(value, Mapping):
                raise ValueError
            merged = dict(current)
            merged.update({str(k): float(v) for k, v in value.items()})
            return merged
        return str(value)
    except (TypeError, ValueError):
        raise TelemetryError(
            f"parameter {name} expects {type(current).__name__}, got {value!r}"
        ) from None


def _json_default(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj
    if isinstance(obj, Mapping):
        return dict(obj)
    return str(obj)
