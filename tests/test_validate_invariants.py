"""Invariants of issue 14 over a small part of scripts/validate.py's sweep (independent simulator).

Every cell: smoothing never worse than the raw fixes on 3D fixes, the behavioural states above
the trivial answer (the better of always moving / always resting) for the behaviour at the fix
time, and se_m covering the true error at about its nominal 95 % where the collar says which
fixes are 3D (per-axis rule). The issue asks for 0.93-0.97; these cells on this seed give
0.930-0.954, and the band asserted here is 0.91-0.97 so that one seed's noise does not fail CI
(the 4-seed means are in issue 14's note; the cells with the issue's own band are the 3 m and
stated-error tests below).

Without a fix-type column 3D and 2D fixes are one class whose error is UERE x HDOP: its se_m
over-covers the 3D fixes (0.98-0.99) and under-covers the 2D ones (0.86-0.89). With the HDOP
power the likelihood preferred (``smooth.error_hdop_powers``, off by default since) coverage was
0.920 (8 m / 20 m) and 0.932 (issue cell) on this seed; now 0.959 and 0.974 (seeds 21, 31:
0.963 / 0.975, 0.951 / 0.969), so the issue cell is held to 0.93-0.98.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

from telemetry.config import StateParams

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import validate  # noqa: E402

BAND = (0.91, 0.97)  # se_m coverage asserted (None: not asserted)
CELLS = [
    ("centre: resident, 4 h, 8 m", dict(validate.CENTRE), BAND),
    ("commuter, 15 min", {**validate.CENTRE, "schedule_s": 900.0, "regime": "commuter"}, BAND),
    ("resident, 1 h, 3 m", {**validate.CENTRE, "schedule_s": 3600.0, "uere_3d_m": 3.0, "uere_2d_m": 7.5}, BAND),
    ("issue 14: 4 h, 4 m / 9 m, no fix type", dict(validate.ISSUE_CELL), (0.93, 0.98)),
    ("resident, 4 h, 8 m / 20 m, no fix type", {**validate.CENTRE, "fix_type_column": "none"}, BAND),
    # behaviour bouts shorter than the schedule: the states must still beat the trivial answer
    ("commuter, 4 h", {**validate.CENTRE, "regime": "commuter"}, None),
    ("migrant, 4 h", {**validate.CENTRE, "regime": "migrant"}, None),
    # fixes a day apart: the error is not identified and the 10 m default is 2.5x the collar's;
    # it used to average 3D fixes with neighbours a day away (9.0 m raw, 9.7 m smoothed), then
    # pulled them by the default's share (2D +2.7 %); now such fixes stay where they are
    ("daily, 4 m / 9 m, fix type", {**validate.ISSUE_CELL, "schedule_s": 86400.0, "fix_type_column": "fix_type"},
     None),
    # the second simulator (scripts/switch_sim.py: memoryless bouts, rests that drift)
    ("switch: the issue's collar", validate.SWITCH_CELLS[0], (0.93, 0.98)),  # no fix type (see above)
    # rests of 90 min at 4-h fixes: the error is not identified (the 20 m default; fixes kept
    # where they are); the states used to fall below the trivial answer (seed 15: 0.612 vs 0.627),
    # and rests that seldom outlast the interval now get no states (states.min_still_stay_per_step)
    ("switch: short rests", validate.SWITCH_CELLS[1], None),
    ("switch: mostly resting, fix type", validate.SWITCH_CELLS[3], BAND),
    # 78 % moving at 15 min: the step HMM's still regime used to take every step (seed 19)
    ("switch: 15 min", validate.SWITCH_CELLS[5], BAND),
]


STATES_MAY_BE_WITHHELD = {"switch: short rests"}
"""Cells whose animals may get no states (with the reason) instead of states above the trivial answer."""


@pytest.mark.parametrize(("name", "cell", "coverage"), CELLS, ids=[c[0] for c in CELLS])
def test_invariants(name: str, cell: dict, coverage: tuple[float, float] | None, tmp_path: Path) -> None:
    r = validate.score_cell(cell, "snow_leopard", seed=11, workdir=tmp_path)
    print("\n" + validate._line(r))
    assert r["rmse_smooth_3D"] <= r["rmse_raw_3D"]
    assert r["rmse_smooth_all"] <= 1.01 * r["rmse_raw_all"]
    withheld = name in STATES_MAY_BE_WITHHELD and not r["state_share_labelled"]
    if cell["schedule_s"] <= StateParams().max_interval_h * 3600 and not withheld:  # (coarser: no states, by design)
        assert r["state_share_labelled"] > 0.5
        assert r["state_acc_at_fix"] > r["state_trivial_at_fix"]
    if coverage:
        assert coverage[0] <= r["cover_axis"] <= coverage[1]


def test_unknown_type_error_as_uere_times_hdop_covers_the_2d_fixes(tmp_path: Path) -> None:
    """Fixes of unknown type (issue cell): the HDOP power the Gaussian likelihood prefers
    (``smooth.error_hdop_powers`` searched) fits the 3D bulk and leaves the 2D fixes' se_m too
    narrow; the default UERE x HDOP covers them better, and all fixes in the band (the numbers
    behind that parameter's docstring; 4 validate seeds: 0.925 -> 0.970)."""
    cell = dict(validate.ISSUE_CELL)
    plain = validate.score_cell(cell, "generic", seed=11, workdir=tmp_path / "plain")
    search = validate.score_cell(cell, "generic", seed=11, workdir=tmp_path / "search",
                                 overrides=("smooth.error_hdop_powers=1,1.5,2,2.5,3",))
    print(f"\npower {search['uere_unknown_hdop_power']} -> {plain['uere_unknown_hdop_power']}: coverage "
          f"{search['cover_axis']:.3f} -> {plain['cover_axis']:.3f} (3D {search['cover_axis_3D']:.3f} -> "
          f"{plain['cover_axis_3D']:.3f}, 2D {search['cover_axis_2D']:.3f} -> {plain['cover_axis_2D']:.3f})")
    assert search["uere_unknown_hdop_power"] > 1.0 and plain["uere_unknown_hdop_power"] == 1.0
    assert plain["cover_axis_2D"] > search["cover_axis_2D"] + 0.03
    assert 0.93 <= plain["cover_axis"] <= 0.98 and plain["cover_axis"] > search["cover_axis"]
    assert plain["rmse_smooth_all"] <= 0.97 * plain["rmse_raw_all"]


JUMP_CELLS = [
    # most to gain where shifts (~15 m) dwarf the errors (4 m): measured 8.75 -> 8.39 m
    ("issue 14: 4 h, 4 m / 9 m, no fix type", dict(validate.ISSUE_CELL), 0.97),
    ("centre: resident, 4 h, 8 m", dict(validate.CENTRE), 1.0),  # 16.15 -> 16.00 m
    # a bed shift hides in one 15-min step's error: no jumps are fitted, the Brownian drift stays
    ("resident, 15 min", {**validate.CENTRE, "schedule_s": 900.0}, None),
]


@pytest.mark.parametrize(("name", "cell", "gain"), JUMP_CELLS, ids=[c[0] for c in JUMP_CELLS])
def test_jumps_at_rest_average_rests_without_a_shift(name: str, cell: dict, gain: float | None,
                                                     tmp_path: Path) -> None:
    """Still steps as drift plus jumps (``smooth.still_jumps``) against the Brownian drift alone,
    on the same simulated collars: better on 3D fixes where rests are long against the schedule,
    never worse where the jumps cannot be seen (with them everywhere the 15-min cell went from
    10.3 to 11.3 m and its coverage to 0.83; see ``jump_min_ratio``)."""
    on = validate.score_cell(cell, "snow_leopard", seed=11, workdir=tmp_path / "on")
    off = validate.score_cell(cell, "snow_leopard", seed=11, workdir=tmp_path / "off",
                              overrides=("smooth.still_jumps=false",))
    print(f"\n{name}: 3D {off['rmse_smooth_3D']:.2f} -> {on['rmse_smooth_3D']:.2f} m (raw {on['rmse_raw_3D']:.2f}), "
          f"coverage {off['cover_axis']:.3f} -> {on['cover_axis']:.3f}")
    if gain is not None:
        assert on["rmse_smooth_3D"] < gain * off["rmse_smooth_3D"]
    else:
        assert on["rmse_smooth_3D"] <= 1.005 * off["rmse_smooth_3D"]
    assert abs(on["cover_axis"] - off["cover_axis"]) < 0.02


STATED_CELLS = [
    # the UERE estimate comes out 20-30 % low here (issue 14's note) and coverage 0.85-0.88;
    # with the collar's true error stated the smoother's own variance is right
    ("resident, 4 h, 3 m", {**validate.CENTRE, "uere_3d_m": 3.0, "uere_2d_m": 7.5}),
    ("centre: resident, 4 h, 8 m", dict(validate.CENTRE)),
]


@pytest.mark.parametrize(("name", "cell"), STATED_CELLS, ids=[c[0] for c in STATED_CELLS])
def test_stated_true_error_gives_nominal_coverage(name: str, cell: dict, tmp_path: Path) -> None:
    """The smoother apart from the error estimator: with estimation off and the simulated collar's
    own UERE configured (a user's statement, so rests are averaged), se_m covers the true error
    at its nominal 95 % (the issue's band) and smoothing beats the raw fixes.

    Measured on validate.py's seeds 0 and 1 (``rob``-style, generic profile): 3 m cell coverage
    0.950 / 0.950 (0.881 / 0.845 with the estimated UERE), all fixes 10.98 / 11.77 m (11.26 /
    11.84 estimated; raw 13.09 / 13.70)."""
    stated = ("smooth.estimate_error=false", f"smooth.uere_3d_m={cell['uere_3d_m']}",
              f"smooth.uere_2d_m={cell['uere_2d_m']}")
    r = validate.score_cell(cell, "snow_leopard", seed=11, workdir=tmp_path, overrides=stated)
    print("\n" + validate._line(r))
    assert 0.93 <= r["cover_axis"] <= 0.97
    assert r["rmse_smooth_3D"] <= r["rmse_raw_3D"]
    assert r["rmse_smooth_all"] <= 0.97 * r["rmse_raw_all"]


def test_true_error_column_smooths_with_the_simulators_uere_as_a_calibration(tmp_path: Path) -> None:
    """validate.py's "true UERE given" numbers: the same fixes smoothed with the simulated collar's
    UERE as a calibration cover the true error at the nominal rate, and a file without a fix
    type (one class, a mixture no single UERE states) gets none."""
    cell = dict(validate.CENTRE)
    r = validate.score_cell(cell, "generic", seed=11, workdir=tmp_path, true_error=True)
    print("\n" + validate._line(r))
    assert 0.93 <= r["cover_axis_true_uere"] <= 0.97
    assert r["rmse_smooth_3D_true_uere"] <= r["rmse_raw_3D"]
    assert r["rmse_smooth_all_true_uere"] <= 0.97 * r["rmse_raw_all"]
    none = validate.true_error_scores({**cell, "fix_type_column": "none"}, None, None, "generic")
    assert all(math.isnan(v) for v in none.values())


@pytest.mark.parametrize("seed", [11, 1005])
def test_small_3d_error_estimated_from_rests_with_jumps(seed: int, tmp_path: Path) -> None:
    """4-h fixes of a 3 m collar: the likelihood alone put the 3D UERE at 2.1-2.3 m (a Brownian
    drift at rest takes the error's share) and coverage fell to 0.85-0.88; combined with the
    resting bouts read as held positions with jumps (``smooth.error_jumps``) it is within 15 %
    of the truth and coverage in the issue's band. Seed 1005 is validate.py's seed 1 of the cell."""
    cell = {**validate.CENTRE, "uere_3d_m": 3.0, "uere_2d_m": 7.5}
    on = validate.score_cell(cell, "snow_leopard", seed=seed, workdir=tmp_path / "on")
    off = validate.score_cell(cell, "snow_leopard", seed=seed, workdir=tmp_path / "off",
                              overrides=("smooth.error_jumps=false",))
    print(f"\nUERE 3D {off['uere_3D']:.2f} -> {on['uere_3D']:.2f} m (truth 3), coverage "
          f"{off['cover_axis']:.3f} -> {on['cover_axis']:.3f}, 3D {off['rmse_smooth_3D']:.2f} -> "
          f"{on['rmse_smooth_3D']:.2f} m (raw {on['rmse_raw_3D']:.2f})")
    assert abs(on["uere_3D"] / 3.0 - 1.0) <= 0.15
    assert 0.93 <= on["cover_axis"] <= 0.97
    assert on["rmse_smooth_3D"] <= 1.01 * off["rmse_smooth_3D"]


def test_a_drift_at_rest_does_not_take_the_error_to_zero(tmp_path: Path) -> None:
    """scripts/switch_sim.py, 70 % resting with rests that drift as a Brownian motion, 4-h fixes,
    fix type given (seed 104, validate.py's first seed of the cell): the likelihood kept rising
    as the 3D error fell (a drift at rest takes its part), settling at 0.22 m for a 4 m collar;
    se_m then covered 0.29 of the true errors. With the search floored at
    ``smooth.error_min_factor`` x the default the class is not taken from the likelihood there,
    and the resting bouts' estimate holds (3.3 m). (The likelihood summed over the regimes,
    ``smooth.error_switching_classes``, no longer runs to zero here either: 3.4 m without the
    floor; the failure is reproduced with the labels. ``smooth.error_informative_held`` alone
    keeps the class at its default there too: the fixes that made the error "seen" were those
    isolated still steps tie together.)"""
    cell = validate.SWITCH_CELLS[3]
    r = validate.score_cell(cell, "generic", seed=104, workdir=tmp_path / "floor")
    old = validate.score_cell(cell, "generic", seed=104, workdir=tmp_path / "none",
                              overrides=("smooth.error_min_factor=0", "smooth.error_switching_classes=[]",
                                         "smooth.error_informative_held=false"))
    print(f"\nUERE 3D {old['uere_3D']:.2f} -> {r['uere_3D']:.2f} m (truth 4), coverage "
          f"{old['cover_axis']:.3f} -> {r['cover_axis']:.3f}")
    assert old["uere_3D"] < 1.0 and old["cover_axis"] < 0.5  # the failure this guards against
    assert 0.6 <= r["uere_3D"] / cell["uere_3d_m"] <= 1.5
    assert r["cover_axis"] >= 0.88
    assert r["rmse_smooth_3D"] < r["rmse_raw_3D"]


def test_fuzz_settings_vary_and_report_what_breaks() -> None:
    """``scripts/validate.py --fuzz N``: random settings of the second simulator, reproducible from
    the seed, and each scored cell checked against the issue's invariants."""
    a, b = validate.fuzz_cells(20, seed=1), validate.fuzz_cells(20, seed=1)
    assert a == b and validate.fuzz_cells(20, seed=2) != a
    cells = [c for c, _, _ in a]
    assert len({c["schedule_s"] for c in cells}) >= 4 and {c["fix_type_column"] for c in cells} == {"fix_type", "none"}
    good = {"rmse_smooth_3D": 8.0, "rmse_raw_3D": 9.0, "rmse_smooth_all": 15.0, "rmse_raw_all": 16.0,
            "cover_axis": 0.95, "state_acc_at_fix": 0.9, "state_trivial_at_fix": 0.6, "state_oracle_at_fix": 0.92}
    assert validate.fuzz_report(good) == []
    assert validate.fuzz_report({**good, "state_acc_at_fix": float("nan")}) == []  # no states: nothing to judge
    bad = validate.fuzz_report({**good, "rmse_smooth_3D": 9.2, "cover_axis": 0.80, "state_acc_at_fix": 0.5})
    assert len(bad) == 3 and bad[0].startswith("3D") and bad[1].startswith("coverage") and bad[2].startswith("states")
    rows = [good, {**good, "cover_axis": 0.99, "uere_unknown_source": "default"},
            {**good, "cover_axis": 0.98, "uere_3D_source": "estimated", "state_acc_at_fix": 0.5,
             "state_oracle_at_fix": 0.61},
            {**good, "rmse_smooth_3D": 9.2, "cover_axis": 0.80, "state_acc_at_fix": 0.5, "cover_axis_true_uere": 0.95}]
    assert validate.fuzz_tally(rows) == {"broken": 3, "3D worse": 1, "all worse": 0, "coverage low": 1,
                                         "coverage high, default": 1, "coverage high, estimated": 1,
                                         "... in the band with the true UERE": 1,
                                         "states below trivial": 2, "... oracle at trivial": 1}
    assert "(true UERE given: 0.950)" in validate.fuzz_report(rows[3])[1]
    # the estimate over the simulated UERE, only where the file names the class
    named = {"fix_type_column": "fix_type", "uere_true_3D": 10.0, "uere_true_2D": 20.0}
    est = [{**named, "uere_3D": u, "uere_3D_source": "estimated", "uere_2D": 30.0, "uere_2D_source": "default"}
           for u in (5.0, 9.0, 10.0, 10.5, 12.0)]
    ratios = validate.fuzz_uere_ratios(est + [{"fix_type_column": "none", "uere_unknown": 3.0, "uere_true_3D": 10.0}])
    assert ratios["3D"]["n"] == 5 and ratios["3D"]["median"] == 1.0 and ratios["3D"]["below_0.85"] == 1
    assert ratios["3D"]["above_1.15"] == 1 and ratios["3D"]["default"] == 0
    assert ratios["2D"] == {"n": 0, "default": 5, "in_interval": 0}
    # ... and how many of the estimates' 95 % intervals hold it (rows without one count as not)
    est[2].update(uere_3D_ci_low=9.0, uere_3D_ci_high=11.0)   # holds 10
    est[4].update(uere_3D_ci_low=11.0, uere_3D_ci_high=13.0)  # does not
    assert validate.fuzz_uere_ratios(est)["3D"]["in_interval"] == 1
    # the unknown class where the file has no fix type and no 2D fixes: the 3D error is its truth
    plain = {"fix_type_column": "none", "share_2d": 0.0, "uere_true_3D": 10.0, "uere_unknown_source": "estimated"}
    unknown = validate.fuzz_uere_ratios([{**plain, "uere_unknown": 9.0, "uere_unknown_ci_low": 8.0, "uere_unknown_ci_high": 10.5},
                                         {**plain, "uere_unknown": 5.0, "uere_unknown_ci_low": 4.0, "uere_unknown_ci_high": 6.0},
                                         {**plain, "share_2d": 0.3, "uere_unknown": 9.0}])["unknown"]
    assert unknown["n"] == 2 and unknown["in_interval"] == 1 and unknown["median"] == 0.7


def test_fuzz_only_reruns_named_settings_as_the_full_run_scores_them(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """``validate.py --fuzz N --seed S --only K``: setting ``K`` alone, with the collars and
    scores of the full run (its line and JSON row equal :func:`validate.score_cell` of the same
    cell); a setting outside the N, or ``--only`` without ``--fuzz``, is one line and exit status 2."""
    out = tmp_path / "only.json"
    validate.main(["--fuzz", "6", "--seed", "11", "--only", "4", "--no-true-error", "--json", str(out)])
    rows = json.loads(out.read_text())
    cell, species, seed = validate.fuzz_cells(6, seed=11)[4]
    assert [r["regime"] for r in rows] == ["fuzz 4"] and rows[0]["seed"] == seed
    alone = validate.score_cell(cell, species, seed, tmp_path / "alone")
    for key in ("rmse_raw_all", "rmse_smooth_all", "rmse_smooth_3D", "cover_axis", "state_acc_at_fix"):
        assert rows[0][key] == pytest.approx(alone[key], nan_ok=True)
    printed = capsys.readouterr().out
    assert printed.startswith("fuzz 4 ") and " of 1 settings break an invariant" in printed
    for argv in (["--fuzz", "6", "--only", "6"], ["--only", "1"], ["--fuzz", "6", "--only", "one"]):
        with pytest.raises(SystemExit) as stop:
            validate.main(argv)
        assert stop.value.code == 2


def _fuzz_off_and_on(tmp_path: Path, fuzz_seed: int, k: int, *off: str) -> tuple[dict, dict, dict]:
    """Setting ``k`` of ``validate.py --fuzz 40 --seed fuzz_seed`` scored with the ``off``
    overrides (the failure a guard prevents) and with the defaults: ``(cell, off, on)``."""
    cell, species, seed = validate.fuzz_cells(40, seed=fuzz_seed)[k]
    return (cell, validate.score_cell(cell, species, seed, tmp_path / "off", overrides=off),
            validate.score_cell(cell, species, seed, tmp_path / "on"))


def test_rests_and_likelihood_that_agree_are_weighed_by_precision(tmp_path: Path) -> None:
    """``validate.py --fuzz 40 --seed 1357``, setting 8: 15-min fixes of a 4 m collar (a tenth
    2D), rests of 9 h that barely drift. The resting bouts read the 3D error at 3.27 m (se 0.088
    in log: on a regular schedule only HDOP tells the error from a drift at rest), the likelihood
    at 3.83 m (se 0.034); the two agree within their noise, and the rests' value alone left
    coverage at 0.90. Weighed by their precision (``smooth.error_rests_weighted``) the estimate is
    within 10 % of the truth and coverage in the issue's band."""
    cell, off, on = _fuzz_off_and_on(tmp_path, 1357, 8, "smooth.error_rests_weighted=false")
    print(f"\nUERE 3D {off['uere_3D']:.2f} -> {on['uere_3D']:.2f} m (truth {cell['uere_3d_m']}), coverage "
          f"{off['cover_axis']:.3f} -> {on['cover_axis']:.3f}")
    assert off["uere_3D"] < 0.85 * cell["uere_3d_m"] and off["cover_axis"] < 0.93  # the failure this mends
    assert abs(on["uere_3D"] / cell["uere_3d_m"] - 1.0) < 0.1
    assert 0.93 <= on["cover_axis"] <= 0.97
    assert on["rmse_smooth_3D"] <= off["rmse_smooth_3D"] * 1.01


def test_a_likelihood_far_above_the_rests_is_not_taken_as_the_error(tmp_path: Path) -> None:
    """``validate.py --fuzz 40 --seed 2``, setting 4: 4-h fixes of a 2.5 m collar without a fix
    type, slow winding moves. The likelihood put the error at 11.4 m (a misfit of the movement
    model), the resting bouts at 1.5 m; smoothed with 11.4 m the fixes ended 9.8 m from the truth,
    raw 5.7. With ``smooth.error_rest_clash`` the class is not identified and its fixes stay;
    ``smooth.error_moment_clash`` (the rests' lag-one bound) alone catches it too, and so does
    ``smooth.error_informative_held``: the fixes that made the error "seen" were those isolated
    still steps tie together (switched off here, so that each guard above is tried alone)."""
    cell, species, seed = validate.fuzz_cells(40, seed=2)[4]
    held = "smooth.error_informative_held=false"
    off = validate.score_cell(cell, species, seed, tmp_path / "off",
                              overrides=("smooth.error_rest_clash=0", "smooth.error_moment_clash=0", held))
    assert off["rmse_smooth_3D"] > 1.3 * off["rmse_raw_3D"]  # the failure this guards against
    for name in ("error_rest_clash", "error_moment_clash", ""):  # either guard alone, and both
        other = {"error_rest_clash": "error_moment_clash", "error_moment_clash": "error_rest_clash"}.get(name)
        r = validate.score_cell(cell, species, seed, tmp_path / (name or "both"),
                                overrides=(f"smooth.{other}=0", held) if other else ())
        print(f"\n{name or 'both'}: UERE {off['uere_unknown']} ({off['uere_unknown_source']}) -> {r['uere_unknown']} "
              f"({r['uere_unknown_source']}); 3D {off['rmse_smooth_3D']:.2f} -> {r['rmse_smooth_3D']:.2f} m "
              f"(raw {r['rmse_raw_3D']:.2f})")
        assert r["uere_unknown_source"] == "default" and r["rmse_smooth_3D"] <= r["rmse_raw_3D"]


def test_a_loose_agreement_does_not_stand_for_an_estimate(tmp_path: Path) -> None:
    """``validate.py --fuzz 40 --seed 2``, setting 31: 2-h fixes, 72-min rests, a 6 m collar with
    half its fixes 2D and no fix type. The smoother seldom averages the fixes, and the likelihood
    (4.0 m, se 0.38 in log) agreed with the resting bouts' loose reading (5.1 m, se 0.22), so the
    unknown class was taken at 4.0 m and the intervals covered 66 %. With
    ``smooth.error_check_max_se_log`` such a class is not identified: the default, said so."""
    _, off, r = _fuzz_off_and_on(tmp_path, 2, 31, "smooth.error_check_max_se_log=inf")
    print(f"\nUERE {off['uere_unknown']} ({off['uere_unknown_source']}) -> {r['uere_unknown']} "
          f"({r['uere_unknown_source']}); coverage {off['cover_axis']:.3f} -> {r['cover_axis']:.3f}")
    assert off["uere_unknown_source"] == "estimated" and off["cover_axis"] < 0.8  # the failure guarded against
    assert r["uere_unknown_source"] == "default" and r["cover_axis"] > 0.93
    assert r["rmse_smooth_3D"] <= r["rmse_raw_3D"]


def test_a_few_still_steps_do_not_decide_the_rests_reading(tmp_path: Path) -> None:
    """``validate.py --fuzz 40 --seed 3``, setting 13: 8-h fixes of a 10 m collar, rests of
    110 min, the animal fast (1.6 m/s). The fixes are seldom averaged, so the 3D estimate stands
    only if the resting bouts' reading agrees. It agreed at 7.4 m, but as the reading of one
    animal's handful of still steps, whose drift is fitted to them (to nothing: they are short)
    and whose weights, inverse to a variance without drift, then made the whole estimate and its
    interval; coverage 0.846. Either guard keeps the class at its default (coverage 0.950): an
    animal needs ``smooth.error_jump_min_steps`` still steps to enter the reading, and the
    reading that agrees must itself be firm (``smooth.error_check_max_se_log``); a third, added
    later, does too: the rests' lag-one moment puts no bound there (``smooth.
    error_check_needs_bound``). (First found at ``--seed 3``, setting 4, where it made smoothing 36 % worse than the raw
    fixes; the step HMM's bounded still drift, the same stop, took that setting's still steps
    away.)"""
    cell, species, seed = validate.fuzz_cells(40, seed=3)[13]
    bound = "smooth.error_check_needs_bound=false"  # (a later guard that catches it too)
    off = validate.score_cell(cell, species, seed, tmp_path / "off",
                              overrides=("smooth.error_jump_min_steps=0", "smooth.error_check_max_se_log=0.5", bound))
    print(f"\n3D {off['uere_3D']} ({off['uere_3D_source']}), coverage {off['cover_axis']:.3f}")
    assert off["uere_3D_source"] == "estimated" and off["cover_axis"] < 0.9  # the failure guarded against
    for guard in (("smooth.error_jump_min_steps=0", bound), ("smooth.error_check_max_se_log=0.5", bound),
                  ("smooth.error_jump_min_steps=0", "smooth.error_check_max_se_log=0.5"), ()):
        r = validate.score_cell(cell, species, seed, tmp_path / f"on{len(guard)}{guard[:1]}", overrides=guard)
        print(guard, r["uere_3D"], r["uere_3D_source"], f"coverage {r['cover_axis']:.3f}")
        assert r["uere_3D_source"] == "default" and 0.93 <= r["cover_axis"] <= 0.97
        assert r["rmse_smooth_3D"] <= r["rmse_raw_3D"]


def test_no_estimate_above_what_the_rests_lag_one_moment_allows(tmp_path: Path) -> None:
    """``validate.py --fuzz 40 --seed 5``, setting 29: 2-h fixes of a slow, tortuous animal, rests of
    31 min, a 2.5 m collar, no fix type. The steps labelled still are moves; the likelihood and
    the held-positions reading both split their spread into drift and error by HDOP alone and
    agreed on 11.3 m: smoothing 2.1 times worse than the raw fixes. The resting bouts' lag-one
    moment, which drift does not enter, puts the error below 9.8 m (``smooth.
    error_moment_bound_z``): the class is not identified, the default, the fixes stay."""
    # (an infinite bound is no bound: error_check_needs_bound would catch it too)
    _, off, r = _fuzz_off_and_on(tmp_path, 5, 29, "smooth.error_moment_bound_z=inf",
                                 "smooth.error_check_needs_bound=false")
    print(f"\nall smoothed/raw {off['rmse_smooth_all'] / off['rmse_raw_all']:.3f} -> "
          f"{r['rmse_smooth_all'] / r['rmse_raw_all']:.3f}; {off['uere_unknown']} -> {r['uere_unknown']} "
          f"({r['uere_unknown_source']})")
    assert off["uere_unknown_source"] == "estimated" and off["rmse_smooth_all"] > 1.5 * off["rmse_raw_all"]
    assert r["uere_unknown_source"] == "default" and r["rmse_smooth_all"] <= 1.01 * r["rmse_raw_all"]
    assert r["rmse_smooth_3D"] <= r["rmse_raw_3D"]


def test_no_estimate_where_the_rests_lag_one_moment_bounds_nothing(tmp_path: Path) -> None:
    """``validate.py --species generic --seeds 4``, cell ``sw:short rests``, seed 2015: rests of
    90 min at 4-h fixes of a 4 m / 9 m collar without a fix type. Hardly two still steps in a row,
    so the resting bouts' lag-one moment puts no bound on the error, and the still steps are
    mostly moves of part of the interval. The likelihood (8.65 m) and the held-positions reading
    (6.6 m, se 0.25) split their spread by HDOP alone and agreed; the class was taken at 8.65 m
    (such collars' estimates elsewhere in the sweep: 4.7-6.7 m) and smoothing made the 3D fixes
    2.7 % worse than raw. With ``smooth.error_check_needs_bound`` an agreement without that
    bound identifies nothing: the default, said so, and the fixes stay."""
    cell = validate.SWITCH_CELLS[1]
    off = validate.score_cell(cell, "generic", 2015, tmp_path / "off",
                              overrides=("smooth.error_check_needs_bound=false",))
    r = validate.score_cell(cell, "generic", 2015, tmp_path / "on")
    print(f"\n3D smoothed/raw {off['rmse_smooth_3D'] / off['rmse_raw_3D']:.3f} -> "
          f"{r['rmse_smooth_3D'] / r['rmse_raw_3D']:.3f}; {off['uere_unknown']} -> {r['uere_unknown']} "
          f"({r['uere_unknown_source']})")
    assert off["uere_unknown_source"] == "estimated" and off["rmse_smooth_3D"] > 1.01 * off["rmse_raw_3D"]
    assert r["uere_unknown_source"] == "default" and r["rmse_smooth_3D"] <= r["rmse_raw_3D"]
    assert r["rmse_smooth_all"] <= r["rmse_raw_all"]


def test_no_states_where_the_still_regime_is_slow_movement(tmp_path: Path) -> None:
    """``validate.py --fuzz 40 --seed 12``, setting 38: 15-min fixes of an animal moving slowly
    and tortuously 84 % of the time, a 15 m collar, half the fixes 2D, no fix type. The smoother's
    still regime drifted 3-4 m²/s against 27-40 m²/s of movement and took 76-87 % of the steps;
    the states called 96 % of the fixes resting (accuracy 0.19, trivial 0.84). With
    ``states.still_rest_min_ratio`` the regime is not a rest and no animal gets states (the
    reason says why); the smoothing is the same either way."""
    _, off, r = _fuzz_off_and_on(tmp_path, 12, 38, "states.still_rest_min_ratio=0")
    print(f"\nstates {off['state_acc_at_fix']:.3f} (trivial {off['state_trivial_at_fix']:.3f}) -> "
          f"labelled share {r['state_share_labelled']:.3f}")
    assert off["state_acc_at_fix"] < off["state_trivial_at_fix"] - 0.3  # the failure guarded against
    assert r["state_share_labelled"] == 0.0
    assert r["rmse_smooth_all"] == off["rmse_smooth_all"] and r["cover_axis"] == off["cover_axis"]


def test_the_step_hmms_still_regime_is_not_taken_for_rest_when_it_is_movement(tmp_path: Path) -> None:
    """``validate.py --fuzz 40 --seed 31``, setting 9: 2-h fixes of a slow animal moving 79 % of
    the time, half the fixes 2D, 3 % gross errors. In two animals the step HMM called the few
    gross errors the cleaning left its active regime and all the movement "still" (drift 6.2 and
    5.8 m²/s against 53-60 of movement), while the smoother's own still drift was a rest's (0.02);
    its ``p_still`` of 1 on every step made the states call 99.6 % of the fixes resting
    (accuracy 0.55, trivial 0.79, oracle 0.95). With ``states.still_rest_min_ratio`` applied to
    the step HMM's drift too, those animals take the HMM's own resting state. (``states.max_resting_share``
    alone avoids the failure too, by giving those animals no states: switched off with it.)"""
    cell, off, r = _fuzz_off_and_on(tmp_path, 31, 9, "states.still_rest_min_ratio=0", "states.max_resting_share=1")
    _, species, seed = validate.fuzz_cells(40, seed=31)[9]
    alone = validate.score_cell(cell, species, seed, tmp_path / "alone", overrides=("states.still_rest_min_ratio=0",))
    assert alone["state_acc_at_fix"] > alone["state_trivial_at_fix"] and alone["state_share_labelled"] < 0.85
    print(f"\nstates {off['state_acc_at_fix']:.3f} -> {r['state_acc_at_fix']:.3f} (trivial "
          f"{off['state_trivial_at_fix']:.3f}, oracle {off['state_oracle_at_fix']:.3f})")
    assert off["state_acc_at_fix"] < off["state_trivial_at_fix"] - 0.15  # the failure guarded against
    assert r["state_acc_at_fix"] > r["state_trivial_at_fix"] + 0.05
    assert r["state_share_labelled"] > 0.85
    assert r["rmse_smooth_all"] == off["rmse_smooth_all"]  # the states only


def test_no_states_where_no_step_is_at_rest(tmp_path: Path) -> None:
    """``validate.py --fuzz 40 --seed 1``, setting 30: 8-h fixes, rests of 69 min (80 % of the
    fixes taken at rest). No step between fixes is as short as the error, so every fix came out
    "moving" (0.20 against the trivial 0.80, the oracle no better than the trivial answer). With
    ``states.min_resting_share`` no animal gets states, and each says why."""
    import telemetry

    cell, species, seed = validate.fuzz_cells(40, seed=1)[30]
    # (8-h fixes get no states anyway since, and such short rests fail states.min_still_stay_per_step
    # too: this rule tried alone)
    alone = ("states.max_interval_h=12", "states.min_still_stay_per_step=0")
    off = validate.score_cell(cell, species, seed, tmp_path / "off", overrides=("states.min_resting_share=0", *alone))
    assert off["state_acc_at_fix"] < off["state_trivial_at_fix"] - 0.4  # the failure guarded against
    assert off["state_oracle_at_fix"] < off["state_trivial_at_fix"] + 0.02  # positions cannot tell
    csv, _ = validate.simulate_cell(cell, seed, tmp_path / "on")
    tracks = telemetry.process(telemetry.read([csv]), species=species, overrides=alone)
    assert tracks["state"].isna().all()
    reasons = [e["reason"] for e in tracks.attrs["states"].values()]
    assert len(reasons) == 4 and all("shorter than the 8-h interval" in r for r in reasons)
    assert validate.withheld_counts(tracks.attrs["states"]) == {"no step at rest": 4}


def test_animals_without_states_are_counted_by_reason() -> None:
    """validate.py's count of animals without states names each reason the states module gives
    (a reason it does not know would count as "other")."""
    import numpy as np

    from telemetry.trajectory import states as st

    p = StateParams()
    entries = {str(k): {"n_states": None, "reason": why} for k, why in enumerate([
        st._short_rests([{"still_label_stay_still": 0.08}], p, np.full(1, 2.0))[0],
        st._resting_share_reason(0.005, 4.0, p),
        st._resting_share_reason(0.995, 4.0, p),
        st._slow_still([{"model": "BM+still", "still_diffusion_m2s": 3.0, "diffusion_m2s": 30.0}], 15.0)[0],
    ])}
    entries["x"] = {"n_states": 2}
    counts = validate.withheld_counts(entries)
    assert counts == {"short rests": 1, "no step at rest": 1, "every step at rest": 1, "slow still regime": 1}
    assert validate.withheld_line([{"states_withheld": counts}, {}]).startswith("animals without states: 4 (")


def test_no_states_where_every_step_is_at_rest(tmp_path: Path) -> None:
    """``validate.py --fuzz 40 --seed 2718``, setting 2: 2-h fixes of a 4 m collar without a fix type
    whose error the data do not identify, so the smoother assumes the 20 m default. Its still
    regime then takes the moves too: two animals came out resting at 99.7 % of their fixes, where
    the truth is 75 % moving (0.235 and 0.249 against the trivial 0.765 and 0.751). With
    ``states.max_resting_share`` they get no states and say why; the others keep theirs."""
    import telemetry

    cell, species, seed = validate.fuzz_cells(40, seed=2718)[2]
    runs = {}
    for name, over in (("off", ("states.max_resting_share=1",)), ("on", ())):
        csv, _ = validate.simulate_cell(cell, seed, tmp_path / name)
        runs[name] = telemetry.process(telemetry.read([csv]), species=species, overrides=over)
    off, on = (runs[k].attrs["states"] for k in ("off", "on"))
    rest_all = sorted(a for a, e in off.items() if e.get("share", [0])[0] > 0.99)
    assert rest_all == ["sw01", "sw02"]  # the failure guarded against
    for a, e in on.items():
        if a in rest_all:
            assert "share" not in e and "rests cannot be told from moves" in e["reason"]
            assert runs["on"].loc[runs["on"]["animal_id"] == a, "state"].isna().all()
        else:
            assert e == off[a]


def test_the_error_scale_is_not_read_from_steps_labelled_by_their_own_size(tmp_path: Path) -> None:
    """``validate.py --fuzz 40 --seed 4``, setting 23: 30-min fixes of a 15 m collar on a slow
    animal (moving steps little longer than the errors). The step HMM labels as still the steps
    whose errors happened to be small, and a likelihood that takes those labels reads the 3D
    error low (12.75 m, coverage 0.910). Summed over both regimes at every step
    (``smooth.error_switching_classes``) it reads 14.4 m and the coverage is nominal."""
    cell, off, r = _fuzz_off_and_on(tmp_path, 4, 23, "smooth.error_switching_classes=[]")
    print(f"\n3D {off['uere_3D']} -> {r['uere_3D']} (truth {cell['uere_3d_m']}), "
          f"coverage {off['cover_axis']:.3f} -> {r['cover_axis']:.3f}")
    assert off["uere_3D"] < 0.88 * cell["uere_3d_m"] and off["cover_axis"] < 0.92  # the failure
    assert r["uere_3D_source"] == "estimated" and abs(math.log(r["uere_3D"] / cell["uere_3d_m"])) < 0.1
    assert 0.93 <= r["cover_axis"] <= 0.97
    assert r["rmse_smooth_3D"] <= r["rmse_raw_3D"] and r["rmse_smooth_all"] <= 0.97 * r["rmse_raw_all"]


def test_an_error_far_above_what_the_rests_allow_is_not_taken(tmp_path: Path) -> None:
    """``validate.py --fuzz 40 --seed 1``, setting 39: 2-h fixes of an animal whose 68-min rests
    drift ~26 m per axis between fixes, a 4 m / 8 m collar without a fix type. The likelihood
    took the drift for error (the unknown class at 15 m) and the smoother pulled the 3D fixes
    1.47 times farther from the truth than they were; the rests' lag-one moment, which drift
    does not enter, bounds the error at 3.6 m. More than ``smooth.error_moment_clash`` times
    that bound, the class is not identified and its fixes stay as they are. (Since
    ``smooth.error_informative_held`` the error is not "seen" there either: the fixes pinned
    down were those isolated still steps tie together; switched off here to try the bound alone.)"""
    _, off, r = _fuzz_off_and_on(tmp_path, 1, 39, "smooth.error_moment_clash=0", "smooth.error_informative_held=false")
    print(f"\nunknown {off['uere_unknown']} ({off['uere_unknown_source']}) -> {r['uere_unknown']} "
          f"({r['uere_unknown_source']}); 3D smoothed/raw {off['rmse_smooth_3D'] / off['rmse_raw_3D']:.3f} -> "
          f"{r['rmse_smooth_3D'] / r['rmse_raw_3D']:.3f}")
    assert off["uere_unknown_source"] == "estimated" and off["rmse_smooth_3D"] > 1.3 * off["rmse_raw_3D"]  # the failure
    assert r["uere_unknown_source"] == "default"
    assert r["rmse_smooth_3D"] <= r["rmse_raw_3D"] and r["rmse_smooth_all"] <= r["rmse_raw_all"]


def test_a_likelihood_above_what_both_readings_of_the_rests_allow_is_capped(tmp_path: Path) -> None:
    """``validate.py --fuzz 40 --seed 8123``, setting 21: 30-min fixes of a 2.5 m collar without a
    fix type (no 2D fixes), slow winding moves (0.05 m/s) and long rests that drift 0.003 m²/s. The
    likelihood read the error at 5.8 m (the movement model's misfit), more than 2x the 2.6 m the
    rests' lag-one moment allows, whose held positions with jumps read it at 2.4 m too; the fixes
    were smoothed 6 % farther from the truth than raw. ``smooth.error_moment_cap`` caps the
    estimate at the bound where both readings of the rests agree."""
    cell, off, r = _fuzz_off_and_on(tmp_path, 8123, 21, "smooth.error_moment_cap=0")
    print(f"\nunknown {off['uere_unknown']} -> {r['uere_unknown']} (truth {cell['uere_3d_m']}); 3D smoothed/raw "
          f"{off['rmse_smooth_3D'] / off['rmse_raw_3D']:.3f} -> {r['rmse_smooth_3D'] / r['rmse_raw_3D']:.3f}; "
          f"coverage {off['cover_axis']:.3f} -> {r['cover_axis']:.3f}")
    assert cell["share_2d"] == 0.0 and off["uere_unknown"] > 2.0 * cell["uere_3d_m"]  # the failure
    assert off["rmse_smooth_3D"] > 1.03 * off["rmse_raw_3D"]
    assert r["uere_unknown_source"] == "estimated" and abs(math.log(r["uere_unknown"] / cell["uere_3d_m"])) < 0.15
    assert r["rmse_smooth_3D"] <= 0.9 * r["rmse_raw_3D"] and 0.93 <= r["cover_axis"] <= 0.97


def test_the_cap_needs_both_readings_of_the_rests(tmp_path: Path) -> None:
    """``validate.py --fuzz 40 --seed 4040``, setting 11: 15-min fixes of a 10 m collar (10 % 2D,
    no fix type), 30-min rests. The rests' lag-one moment reads 4.9 m and bounds the error at
    5.9 m, less than half the likelihood's 13.5 m, but their held positions with jumps read 9.5 m:
    the readings disagree, so the estimate is not capped (capped, it would be half the truth)."""
    cell, off, r = _fuzz_off_and_on(tmp_path, 4040, 11, "smooth.error_moment_cap=0")
    print(f"\nunknown {off['uere_unknown']} -> {r['uere_unknown']} (3D truth {cell['uere_3d_m']})")
    assert r["uere_unknown"] == off["uere_unknown"] > cell["uere_3d_m"]
    assert r["rmse_smooth_all"] == off["rmse_smooth_all"]


def test_the_rests_bound_is_read_at_the_estimate_not_only_at_the_prior(tmp_path: Path) -> None:
    """``validate.py --fuzz 40 --seed 31``, setting 26: 1-h fixes of a 4 m collar without a fix
    type, the animal at rest 67 % of the time. Labelled under the 20 m prior, a few pairs of slow
    30-130 m moves passed for rests and put the lag-one moment's bound at 0.64 m; the likelihood's
    firm 3.41 m was dropped for the default and every fix kept raw (coverage 1.000). Read again
    with the rests labelled at the estimate (``smooth.error_bound_at_estimate``) the bound is
    4.0 m, the estimate stands and the fixes are smoothed."""
    cell, off, r = _fuzz_off_and_on(tmp_path, 31, 26, "smooth.error_bound_at_estimate=false")
    print(f"\nunknown {off['uere_unknown']} ({off['uere_unknown_source']}) -> {r['uere_unknown']} "
          f"({r['uere_unknown_source']}); all smoothed/raw {off['rmse_smooth_all'] / off['rmse_raw_all']:.3f} -> "
          f"{r['rmse_smooth_all'] / r['rmse_raw_all']:.3f}; coverage {off['cover_axis']:.3f} -> {r['cover_axis']:.3f}")
    assert off["uere_unknown_source"] == "default" and off["cover_axis"] > 0.99  # the failure
    assert r["uere_unknown_source"] == "estimated" and abs(math.log(r["uere_unknown"] / cell["uere_3d_m"])) < 0.2
    assert r["rmse_smooth_all"] < 0.8 * r["rmse_raw_all"] and 0.93 <= r["cover_axis"] <= 0.97
    assert r["state_acc_at_fix"] >= off["state_acc_at_fix"]


def test_a_gross_error_at_the_end_of_a_track_does_not_take_the_movement_model(tmp_path: Path) -> None:
    """``validate.py --fuzz 40 --seed 9``, setting 39: 15-min fixes of a slow animal (0.06 m/s), a
    15 m collar, generic profile (only speeds over 200 km/h are errors). One animal's last fix is a
    gross error 10 km off: no neighbour after it, so no out-and-back rule and no residual test sees
    it; the smoother explained it by an active regime of enormous moves, called 99 % of that
    animal's steps still, and dragged its moving fixes (3D smoothed 1.10 times farther from the
    truth than raw). ``clean.end_reach_check`` flags it: 10 km in 15 min is far beyond the
    animal's own fastest step."""
    _, off, r = _fuzz_off_and_on(tmp_path, 9, 39, "clean.end_reach_check=false")
    print(f"\n3D smoothed/raw {off['rmse_smooth_3D'] / off['rmse_raw_3D']:.3f} -> {r['rmse_smooth_3D'] / r['rmse_raw_3D']:.3f}, "
          f"spikes found {off['spike_tp']} -> {r['spike_tp']}")
    assert off["rmse_smooth_3D"] > 1.05 * off["rmse_raw_3D"]  # the failure
    assert r["rmse_smooth_3D"] < 0.7 * r["rmse_raw_3D"] and r["spike_tp"] > off["spike_tp"]
    assert 0.93 <= r["cover_axis"] <= 0.97


def test_isolated_still_steps_do_not_make_the_error_seen(tmp_path: Path) -> None:
    """``validate.py --fuzz 40 --seed 31337``, setting 8: 2-h fixes of a 4 m collar without a fix
    type, a slow tortuous walker resting 49 min at a time (shorter than the interval). Labelled
    under the 20 m prior, 5 % of the steps (slow moves) were still, each alone; a still step pins
    its two fixes together whatever their error, so the share of fixes the track "pins down"
    reached ``smooth.error_min_informative`` on those steps alone, and the likelihood's 8.6 m
    (interval 8.0-9.3) was taken: coverage 0.998, 3D fixes smoothed 2.5 % farther from the truth
    than raw. Counting only held rests (``smooth.error_informative_held``) nothing is averaged,
    no rest confirms, and the class keeps its default with its fixes raw."""
    _, off, r = _fuzz_off_and_on(tmp_path, 31337, 8, "smooth.error_informative_held=false")
    print(f"\nunknown {off['uere_unknown']} ({off['uere_unknown_source']}) -> {r['uere_unknown']} "
          f"({r['uere_unknown_source']}); 3D smoothed/raw {off['rmse_smooth_3D'] / off['rmse_raw_3D']:.3f} -> "
          f"{r['rmse_smooth_3D'] / r['rmse_raw_3D']:.3f}")
    assert off["uere_unknown_source"] == "estimated" and off["rmse_smooth_3D"] > off["rmse_raw_3D"]  # the failure
    assert r["uere_unknown_source"] == "default" and r["rmse_smooth_3D"] <= r["rmse_raw_3D"]


def test_a_loose_lag_one_moment_confirms_nothing(tmp_path: Path) -> None:
    """``validate.py --fuzz 40 --seed 777``, setting 28: 4-h fixes of a 6 m collar (10 % 2D, no
    fix type), a slow walker whose 39-min rests drift: a Brownian walk at this schedule, its
    error (8 m per axis) 1 % of a step's spread. The fixes are seldom averaged; the resting bouts'
    lag-one moment (13.6 m, se 0.37 in log: an interval of a factor 2.1 either way) agreed with the
    likelihood's 13.7 m, and the class was taken at twice the collar's error, 3D fixes smoothed
    8 % farther from the truth than raw, and all fixes 1 % farther. A moment that loose confirms
    nothing (``smooth.error_moment_max_se_log``): the default, and the fixes stay."""
    _, off, r = _fuzz_off_and_on(tmp_path, 777, 28, "smooth.error_moment_max_se_log=0.5")
    print(f"\nunknown {off['uere_unknown']} ({off['uere_unknown_source']}) -> {r['uere_unknown']} "
          f"({r['uere_unknown_source']}); 3D smoothed/raw {off['rmse_smooth_3D'] / off['rmse_raw_3D']:.3f} -> "
          f"{r['rmse_smooth_3D'] / r['rmse_raw_3D']:.3f}")
    assert off["uere_unknown_source"] == "estimated" and off["rmse_smooth_3D"] > 1.05 * off["rmse_raw_3D"]  # the failure
    assert r["uere_unknown_source"] == "default" and r["rmse_smooth_3D"] <= r["rmse_raw_3D"]


HELD_ALONE = [
    ("fuzz seed 2, #4", (2, 4), ("smooth.error_rest_clash=0", "smooth.error_moment_clash=0")),
    ("fuzz seed 1, #39", (1, 39), ("smooth.error_moment_clash=0",)),
    ("switch: mostly resting, seed 104", None, ("smooth.error_min_factor=0", "smooth.error_switching_classes=[]")),
]


@pytest.mark.parametrize(("name", "where", "others_off"), HELD_ALONE, ids=[h[0] for h in HELD_ALONE])
def test_isolated_still_steps_alone_catch_the_failures_older_guards_were_added_for(
        name: str, where: tuple[int, int] | None, others_off: tuple[str, ...], tmp_path: Path) -> None:
    """The claim of ``smooth.error_informative_held`` in config.py: with the guards each of these
    failures was found for switched off, the class is still not taken from the likelihood (the
    fixes that made its error "seen" were those isolated still steps tie together), and its 3D
    fixes are not smoothed away from the truth; with this guard off as well, the failure is back
    (the tests above)."""
    if where is None:
        cell, species, seed = validate.SWITCH_CELLS[3], "generic", 104
    else:
        cell, species, seed = validate.fuzz_cells(40, seed=where[0])[where[1]]
    r = validate.score_cell(cell, species, seed, tmp_path / "held", overrides=others_off)
    src = r.get("uere_unknown_source", r.get("uere_3D_source"))  # (the class the 3D fixes are in)
    print(f"\n{name}: {src}; 3D smoothed/raw {r['rmse_smooth_3D'] / r['rmse_raw_3D']:.3f}")
    assert src == "default"
    assert r["rmse_smooth_3D"] <= r["rmse_raw_3D"]


def test_schedule_table_shows_states_losing_to_the_trivial_answer_as_fixes_thin(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """``validate.py --schedules`` (the evidence for ``states.max_interval_h``) on one cell: the
    resident collar's states beat the trivial answer for every animal at 2 h, and no longer on
    average at 8 h, where the oracle itself is barely above it."""
    monkeypatch.setattr(validate, "SCHEDULE_CELLS", [dict(validate.CENTRE)])
    monkeypatch.setattr(validate, "SCHEDULES_H", (2.0, 8.0))
    t = validate.schedule_table(1, 1, tmp_path).set_index("interval_h")
    print("\n" + t.to_string())
    assert list(t["animals"]) == [4, 4]
    assert t.loc[2.0, "above_trivial"] == 4 and t.loc[2.0, "accuracy"] > t.loc[2.0, "trivial"] + 0.1
    assert t.loc[8.0, "accuracy"] < t.loc[8.0, "trivial"] + 0.02 and t.loc[8.0, "oracle"] < t.loc[8.0, "trivial"] + 0.05


def test_rest_stay_table_shows_states_below_the_trivial_answer_where_still_steps_do_not_persist(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``validate.py --rest-stay`` (the evidence for ``states.min_still_stay_per_step``) on two fuzz
    settings: 2-h fixes of 45-min rests (at rest 82 % of the time), whose still steps seldom
    follow one another, and 30-min fixes of longer rests. The first setting's animals, below 0.3,
    score far below the trivial answer, the oracle no better than it; the second's, above 0.5,
    far above it."""
    cells = validate.fuzz_cells(40, 8080)
    monkeypatch.setattr(validate, "fuzz_cells", lambda n, seed=0: [cells[24], cells[28]])
    t = validate.rest_stay_table(8080, 1, tmp_path)
    print("\n" + t.to_string())
    low, high = t.iloc[:3], t.iloc[5:]  # (bins below 0.3; above 0.5)
    assert low["animals"].sum() >= 2 and high["animals"].sum() >= 2
    assert (low.dropna()["states_vs_trivial"] < -0.2).all() and (low.dropna()["oracle_vs_trivial"] < 0.02).all()
    assert (high.dropna()["states_vs_trivial"] > 0.2).all()


def test_two_runs_compare_setting_by_setting() -> None:
    """``validate.py --compare OLD NEW``: a change is judged on every setting it moves, with what
    each breaks before and after (rows matched by setting, not by position)."""
    def row(k: int, smooth: float, cover: float, uere: float, source: str) -> dict:
        return {"regime": f"fuzz {k}", "schedule_s": 3600.0, "uere_3d_m": 4.0, "uere_2d_m": 9.0, "share_2d": 0.2,
                "fix_type_column": "fix_type", "species": "generic", "seed": 7 + k,
                "rmse_raw_all": 10.0, "rmse_smooth_all": smooth, "rmse_raw_3D": 8.0, "rmse_smooth_3D": 0.8 * smooth,
                "cover_axis": cover, "state_acc_at_fix": 0.9, "state_trivial_at_fix": 0.6, "state_oracle_at_fix": 0.95,
                "spike_f1": 0.9, "uere_3D": uere, "uere_3D_source": source}

    old = [row(0, 9.0, 0.95, 4.1, "estimated"), row(1, 10.0, 1.0, 10.0, "default"), row(2, 9.5, 0.94, 4.0, "estimated")]
    new = [row(2, 9.5, 0.94, 4.0, "estimated"), row(1, 9.2, 0.96, 3.8, "estimated"), row(3, 9.0, 0.95, 4.0, "estimated")]
    lines, counts = validate.compare_runs(old, new)
    assert counts == {"settings": 2, "changed": 1, "broken before": 1, "broken after": 0, "in one run only": 2}
    assert len(lines) == 1 and lines[0].startswith("fuzz 1 (generic, seed 8")
    assert "3D 10 m default -> 3D 3.8 m estimated" in lines[0]
    assert "coverage 1.000 -> 0.960" in lines[0] and lines[0].endswith("broken: coverage 1.000 -> none")
    # a seed recorded in one run only (fuzz JSON written before rows carried it): matched by setting
    legacy = [{k: v for k, v in r.items() if k != "seed"} for r in old]
    assert validate.compare_runs(legacy, new)[1]["settings"] == 2
    # the estimates a change moved, against the simulated truth (4 m): only those estimated in both runs
    assert validate.uere_moves(old, new).endswith(": none")  # (fuzz 1 was a default before)
    truth = [{**r, "uere_true_3D": 4.0} for r in new]
    moved = [{**r, "uere_3D": 4.4} if r["regime"] == "fuzz 2" else r for r in truth]
    assert validate.uere_moves(truth, moved).endswith("3D 1: 0.000 -> 0.095, 0 closer, 1 farther")
