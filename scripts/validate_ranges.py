"""Validation of the movement models and AKDE home ranges (issue 18): numbers, not timed tests.

    python scripts/validate_ranges.py              # 240 simulated tracks (~3 min on 2 cores) + buffalo
    python scripts/validate_ranges.py --tracks 60  # quicker
    python scripts/validate_ranges.py --json out.json

(a) **Simulated tracks** from ``tests/ctsim.py`` (exact draws from each process's covariance
matrix; no code of the fitter): IID, OU and OUF ranges with known ``√det Σ`` (10 km², i.e. a
95 % area of 188 km²), schedules of 30 min to 4 h with 10 % failed fixes and jitter, 300 to
2,000 fixes, spans of 10 to 100 range-crossing times, location error 5 or 30 m, circular or
elongated (3:1) ranges. Each track goes through what ``telemetry run`` does per period
(:func:`telemetry.trajectory.ctmm.fit_models`, AICc selection, :func:`telemetry.trajectory.akde.akde`
with the simulated lumpiness correction) and is scored against the truth: the 95 % AKDE area
and the Gaussian area over the true 95 % area (bias), whether their 95 % CIs hold it
(coverage), whether the CI of ``τ_p`` holds the true one, the selected model, and for OUF
tracks whether the speed CI holds the true mean speed.

(b) **Kruger buffalo against ctmm's published numbers**: the six buffalo of
``../shared/data/real/movebank_kruger_buffalo`` are the example data of ctmm's vignettes;
``telemetry process`` then :func:`telemetry.trajectory.ranges.movement_ranges`, printed
beside the figures that ctmm 1.3.0's vignettes publish for Cilla (variogram vignette:
``ctmm.select``) and Pepper (akde vignette: weighted OUF AKDE).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from telemetry.config import HomeRangeParams  # noqa: E402
from telemetry.trajectory.akde import akde, chi2_area_ci  # noqa: E402
from telemetry.trajectory.ctmm import fit_models  # noqa: E402
from telemetry.trajectory.ranges import speed_ci  # noqa: E402
from tests import ctsim  # noqa: E402 - the simulator lives with the tests; it is not the package's code

REAL = ROOT.parent / "shared" / "data" / "real" / "movebank_kruger_buffalo"
DAY = 86400.0

# ctmm 1.3.0 vignettes (inst/doc/variogram.html, akde.html): low, estimate, high
CTMM_PUBLISHED = {
    "Cilla": {"model": "OUF anisotropic", "n_area": 18.14, "gaussian95_km2": (239.6, 403.5, 609.2),
              "tau_p_days": (4.44, 7.51, 12.69), "tau_v_min": (39.6, 42.07, 44.68),
              "speed_km_day": (13.82, 14.06, 14.29), "source": "variogram vignette, ctmm.select (OUF anisotropic)"},
    "Pepper": {"model": "OUF (ctmm.guess)", "n_area": 15.66, "akde95_km2": (432.2, 761.5, 1182.4),
               "source": "akde vignette, weighted OUF AKDE (Pepper's 1,725 fixes in ctmm's copy)"},
}


def simulate_sweep(n_tracks: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    sigma2 = 1e7
    true_area = ctsim.gaussian_area(sigma2)
    for k in range(n_tracks):
        model = ("iid", "ou", "ouf")[k % 3]
        dt = float(rng.choice([1800.0, 3600.0, 4 * 3600.0]))
        n = int(rng.choice([300, 800, 2000]))
        crossings = float(rng.choice([10.0, 30.0, 100.0]))
        err = float(rng.choice([5.0, 30.0]))
        ratio = float(rng.choice([1.0, 3.0]))
        t = ctsim.irregular_times(n, dt, rng)
        tau_p = (t[-1] - t[0]) / crossings
        tau_v = min(dt, tau_p / 10)
        x, y = ctsim.simulate_cholesky(model, t, sigma2, tau_p, tau_v, err_sd=err, rng=rng, ratio=ratio,
                                       theta=float(rng.uniform(-1.5, 1.5)))
        r = np.full(t.size, err * err)
        t0 = time.perf_counter()
        fits = fit_models(t, x, y, r)
        best = fits[0]
        row = {"model": model, "dt_s": dt, "n": n, "crossings": crossings, "err_m": err, "ratio": ratio,
               "selected": best.model, "n_area": best.n_area, "resident": best.resident}
        if best.resident and np.isfinite(best.n_area) and best.n_area >= 2:
            ud = akde(best, t, x, y, r, bootstrap=HomeRangeParams().akde_bootstrap, seed=k)
            a, lo, hi = (ud.areas_m2[(95.0, c)] for c in ("estimate", "low", "high"))
            g = best.gaussian_area_m2(95.0)
            glo, ghi = chi2_area_ci(g, best.n_area)
            row.update(akde_ratio=a / true_area, akde_cover=lo <= true_area <= hi, gauss_ratio=g / true_area,
                       gauss_cover=glo <= true_area <= ghi)
            if model != "iid" and np.isfinite(best.tau_p_s):
                s = best.sd("log_tau_p")
                row["tau_p_cover"] = abs(math.log(best.tau_p_s / tau_p)) <= 1.96 * s if np.isfinite(s) else False
            if model == "ouf" and best.model == "ouf":
                truth = math.sqrt(math.pi / 2) * math.sqrt(sigma2 / (tau_p * tau_v)) * _aniso_factor(ratio)
                v, vlo, vhi = speed_ci(best)
                row.update(speed_ratio=v / truth, speed_cover=vlo <= truth <= vhi)
        row["seconds"] = time.perf_counter() - t0
        rows.append(row)
    return pd.DataFrame(rows)


def _aniso_factor(ratio: float) -> float:
    """Mean of √(a cos² + b sin²) over angles, for axis variances a = √ratio, b = 1/√ratio (per √det)."""
    phi = (np.arange(256) + 0.5) * (2 * math.pi / 256)
    a, b = math.sqrt(ratio), 1 / math.sqrt(ratio)
    return float(np.mean(np.sqrt(a * np.cos(phi) ** 2 + b * np.sin(phi) ** 2)))


def summarise(df: pd.DataFrame) -> dict:
    ok = df[df["akde_ratio"].notna()]
    big = ok[ok["n_area"] >= 20]
    out = {
        "tracks": int(len(df)),
        "with_range": int(len(ok)),
        "akde_coverage": float(ok["akde_cover"].mean()),
        "gaussian_coverage": float(ok["gauss_cover"].mean()),
        "akde_bias_all": float(ok["akde_ratio"].mean() - 1),
        "akde_bias_n_area_ge_20": float(big["akde_ratio"].mean() - 1),
        "gaussian_bias_n_area_ge_20": float(big["gauss_ratio"].mean() - 1),
        "tau_p_coverage": float(ok["tau_p_cover"].dropna().astype(float).mean()) if "tau_p_cover" in ok else math.nan,
        "model_family_correct": float((df["selected"] == df["model"]).mean()),
        "speed_coverage": float(df["speed_cover"].dropna().astype(float).mean()) if "speed_cover" in df else math.nan,
        "speed_bias": float(df["speed_ratio"].dropna().mean() - 1) if "speed_ratio" in df else math.nan,
        "seconds_per_track": float(df["seconds"].mean()),
    }
    out["floors_met"] = bool(len(ok) >= 200 and 0.9 <= out["akde_coverage"] <= 0.98
                             and abs(out["akde_bias_n_area_ge_20"]) < 0.05)
    return out


def buffalo() -> pd.DataFrame | None:
    files = sorted(REAL.glob("*.csv*")) if REAL.is_dir() else []
    if not files:
        return None
    from telemetry.trajectory.ranges import movement_ranges

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "buffalo.parquet"
        subprocess.run([sys.executable, "-m", "telemetry", "process", "--species", "auto", str(files[0]), "-o",
                        str(out)], check=True, capture_output=True)
        tracks = pd.read_parquet(out)
    table = movement_ranges(tracks).table
    return table


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracks", type=int, default=240, help="simulated tracks")
    ap.add_argument("--seed", type=int, default=18)
    ap.add_argument("--no-real", action="store_true", help="skip the buffalo")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    sim = simulate_sweep(args.tracks, args.seed)
    s = summarise(sim)
    print(f"(a) simulated tracks: {s['tracks']} ({s['with_range']} with a range)")
    print(f"    AKDE 95 % area: coverage {s['akde_coverage']:.3f} (floor 0.90-0.98), bias {s['akde_bias_all']:+.3f} "
          f"overall, {s['akde_bias_n_area_ge_20']:+.3f} at N_area >= 20 (floor |bias| < 0.05)")
    print(f"    Gaussian 95 % area: coverage {s['gaussian_coverage']:.3f}, bias {s['gaussian_bias_n_area_ge_20']:+.3f}"
          f" at N_area >= 20")
    print(f"    tau_p CI coverage {s['tau_p_coverage']:.3f}; model family selected right {s['model_family_correct']:.3f}; "
          f"OUF speed CI coverage {s['speed_coverage']:.3f}, bias {s['speed_bias']:+.3f}; "
          f"{s['seconds_per_track']:.2f} s per track")
    design = sim[sim["model"] != "iid"].groupby(["model", "crossings"], observed=True)
    print("    by design (range crossings = span / τ_p; N_area ≈ that for OU), OU/OUF tracks:")
    print(design.agg(tracks=("n", "size"), with_range=("akde_ratio", "count"), akde_ratio=("akde_ratio", "mean"),
                     akde_cover=("akde_cover", "mean"), gauss_ratio=("gauss_ratio", "mean"),
                     n_area_median=("n_area", "median")).round(3).to_string())
    print("    by the estimated N_area (binning on an estimate: a track whose σ² came out low also has a short τ_p,"
          " so a high N_area — read the design table for bias):")
    by = sim.groupby(["model", pd.cut(sim["n_area"], [0, 5, 10, 20, 50, 200, 1e9])], observed=True)
    print(by.agg(tracks=("n", "size"), akde_ratio=("akde_ratio", "mean"), akde_cover=("akde_cover", "mean"),
                 gauss_ratio=("gauss_ratio", "mean")).round(3).to_string())
    print("    floors met:", s["floors_met"])
    result = {"simulated": s}
    if not args.no_real:
        tab = buffalo()
        if tab is None:
            print("(b) buffalo: ../shared/data/real not found, skipped")
        else:
            print("(b) Kruger buffalo (ours) beside ctmm 1.3.0's published figures:")
            cols = ["animal_id", "period", "n_fixes", "model", "n_area", "tau_p_h", "tau_v_min", "gaussian95_km2",
                    "gaussian95_low_km2", "gaussian95_high_km2", "akde95_km2", "akde95_low_km2", "akde95_high_km2",
                    "kde95_km2", "distance_km_day"]
            print(tab[cols].round(2).to_string(index=False))
            for name, pub in CTMM_PUBLISHED.items():
                print(f"    ctmm {name}: {pub}")
            result["buffalo"] = json.loads(tab[cols].to_json(orient="records"))
            result["ctmm_published"] = CTMM_PUBLISHED
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
