"""Home ranges and speeds for autocorrelated tracks: movement models, AKDE, residency.

For each animal (projected to its own equal-area projection):

1. the track is cut into resident periods and transits (:mod:`telemetry.trajectory.residency`);
2. on each period with enough fixes the movement models IID, BM, OU and OUF are fitted with
   each fix's own location error (``sigma_m``) and selected by AICc
   (:mod:`telemetry.trajectory.ctmm`); a period is **range-resident** when a model with a range
   (IID, OU, OUF) wins over Brownian motion and its range-crossing time is resolved;
3. range-resident periods get an AKDE (:mod:`telemetry.trajectory.akde`) with 50/95 %
   isopleths, area CIs and CI contours, corrected for the kernel estimate's lumpiness by
   simulation under the fitted model; MCP and KDE areas of the same fixes sit beside it in the table;
4. where the OUF model is selected (the schedule resolves the velocity's autocorrelation),
   the mean speed and the daily distance with CIs (the stationary speed of the fitted
   velocity process, Noonan et al. 2019 Mov. Ecol. 7:35), and per day the conditional
   mean speed given the fixes (Kalman smoother of the OUF model) with a CI from velocity
   paths drawn from the smoothing distribution; elsewhere the table says why there is no speed.

The population range (:func:`population_range`) is the information-weighted mean of the
animals' AKDE areas on the log scale with a random effect between animals (DerSimonian &
Laird 1986), a simpler stand-in for ctmm's hierarchical ``mean()``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from telemetry.arrays import group_codes, usable_mask
from telemetry.config import HomeRangeParams
from telemetry.threads import thread_map
from telemetry.trajectory.akde import UD, akde, chi2_area_ci
from telemetry.trajectory.ctmm import MovementFit, fit_models, mean_speed
from telemetry.trajectory.homerange import kde, laea, laea_to_lonlat, mcp, within_laea
from telemetry.trajectory.residency import periods

__all__ = ["Ranges", "home_ranges", "movement_ranges", "population_range", "TABLE_COLUMNS"]

_DAY_S = 86400.0

TABLE_COLUMNS: tuple[str, ...] = (
    "animal_id", "period", "kind", "start", "end", "n_fixes", "resident", "model", "n_area",
    "tau_p_h", "tau_p_low_h", "tau_p_high_h", "tau_v_min", "tau_v_low_min", "tau_v_high_min",
    "gaussian95_km2", "gaussian95_low_km2", "gaussian95_high_km2",
    "akde50_km2", "akde50_low_km2", "akde50_high_km2", "akde95_km2", "akde95_low_km2", "akde95_high_km2",
    "kde95_km2", "mcp95_km2", "bandwidth_m", "speed_kmh", "speed_low_kmh", "speed_high_kmh",
    "distance_km_day", "distance_low_km_day", "distance_high_km_day", "error_source", "note",
)
"""Columns of :attr:`Ranges.table` (one row per animal and period; areas in km², CIs at the configured level)."""


@dataclass
class Ranges:
    """Everything :func:`movement_ranges` finds.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per animal and period (:data:`TABLE_COLUMNS`).
    polygons : geopandas.GeoDataFrame
        AKDE isopleths (EPSG:4326): ``animal_id``, ``period``, ``method`` (``"akde"``),
        ``level_pct``, ``contour`` (``estimate``, ``low``, ``high``: the CI contours),
        ``area_km2``, ``n_fixes``, ``geometry``.
    uds : dict
        ``(animal_id, period) → (lon, lat, mass)``: the cells of each AKDE's top
        ``max(akde_levels_pct)`` % (degrees, probability), for shares of the range.
    daily : pandas.DataFrame
        Per animal and UTC day where an OUF model is selected: ``animal_id``, ``period``,
        ``date``, ``speed_kmh``, ``speed_low_kmh``, ``speed_high_kmh``, ``distance_km``
        (conditional on the fixes), ``n_fixes``.
    fits : dict
        ``(animal_id, period) → list of MovementFit`` (AICc order).
    """

    table: pd.DataFrame
    polygons: gpd.GeoDataFrame
    uds: dict = field(default_factory=dict)
    daily: pd.DataFrame = field(default_factory=pd.DataFrame)
    fits: dict = field(default_factory=dict)


def _ci_log(value: float, sd_log: float, z: float) -> tuple[float, float]:
    if not (np.isfinite(value) and np.isfinite(sd_log)):
        return math.nan, math.nan
    return value * math.exp(-z * sd_log), value * math.exp(z * sd_log)


def _z(ci_level: float) -> float:
    from scipy.special import ndtri

    return float(ndtri(0.5 + ci_level / 2.0))


def speed_ci(fit: MovementFit, ci_level: float = 0.95) -> tuple[float, float, float]:
    """Mean speed (m/s) of an OUF fit with its CI (delta method on the log parameters)."""
    v = mean_speed(fit)
    if not np.all(np.isfinite(fit.cov)):
        return v, math.nan, math.nan
    g = np.zeros(fit.params.size)
    for j in range(fit.params.size):
        e = np.zeros(fit.params.size)
        e[j] = 1e-4
        g[j] = (math.log(mean_speed(fit, fit.params + e)) - math.log(mean_speed(fit, fit.params - e))) / 2e-4
    sd = math.sqrt(max(float(g @ fit.cov @ g), 0.0))
    lo, hi = _ci_log(v, sd, _z(ci_level))
    return v, lo, hi


def _period_row(label: Any, k: int, kind: str, times: pd.Series, n: int) -> dict:
    row = {c: math.nan for c in TABLE_COLUMNS}
    row.update(animal_id=label, period=k, kind=kind, start=times.iloc[0], end=times.iloc[-1], n_fixes=n,
               resident=False, model="", note="", error_source="")
    return row


def _animal(job: tuple, params: HomeRangeParams) -> tuple[list[dict], list[dict], dict, list[dict], dict]:
    label, times, lon, lat, r, err_note = job
    fwd, inv = laea(lon, lat)
    x, y = fwd.transform(lon, lat)
    finite = np.isfinite(x) & np.isfinite(y)
    if not finite.all():
        # impossible coordinates (|lat| > 90) that cleaning would have flagged: left out, and said
        err_note = f"{err_note}; {int((~finite).sum())} fixes with impossible coordinates left out"
        times, x, y, r = times[finite].reset_index(drop=True), x[finite], y[finite], r[finite]
        if not len(times):
            return [], [], {}, [], {}
    t = (times - times.iloc[0]).dt.total_seconds().to_numpy(dtype=float)
    pers = periods(t, x, y, min_days=params.period_min_days, penalty_factor=params.period_penalty_factor) \
        if params.period_min_days > 0 else []
    if not pers:
        from telemetry.trajectory.residency import Period

        pers = [Period(0, t.size, "resident")]
    ci = params.ci_level_pct / 100.0
    z = _z(ci)
    rows, polys, uds, daily, fits_out = [], [], {}, [], {}
    for k, per in enumerate(pers, start=1):
        sl = slice(per.start, per.stop)
        tt, xx, yy, rr = t[sl], x[sl], y[sl], r[sl]
        row = _period_row(label, k, per.kind, times.iloc[sl], int(tt.size))
        row["error_source"] = err_note
        rows.append(row)
        try:
            _period(row, label, k, per.kind, tt, xx, yy, rr, times.iloc[sl], params, ci, z, polys, uds, daily,
                    fits_out, inv)
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as err:
            # one period's numbers must not stop the others (or the run): its row says what failed
            row["note"] = f"could not be fitted: {type(err).__name__}: {err}"
    if polys:
        # (the UD's areas stand; a polygon past the hemisphere round its fixes is drawn to its edge)
        geoms = laea_to_lonlat(within_laea([p["geometry"] for p in polys]), inv)
        for p, g in zip(polys, geoms):
            p["geometry"] = g
    return rows, polys, uds, daily, fits_out


def _period(row: dict, label: Any, k: int, kind: str, tt: np.ndarray, xx: np.ndarray, yy: np.ndarray,
            rr: np.ndarray, times: pd.Series, params: HomeRangeParams, ci: float, z: float, polys: list,
            uds: dict, daily: list, fits_out: dict, inv: Any) -> None:
    """Models, AKDE and speeds of one period (``row`` filled in, the other outputs appended)."""
    if kind == "transit":
        row["note"] = "transit between resident periods (migration or relocation): no home range"
        return
    if tt.size >= 3:
        row["mcp95_km2"] = float(mcp(xx, yy, 95.0).area) / 1e6
    if tt.size < params.ctmm_min_fixes:
        row["note"] = f"fewer than {params.ctmm_min_fixes} usable fixes: no movement model"
        return
    fits = fit_models(tt, xx, yy, rr, models=tuple(params.ctmm_models))
    fits_out[(label, k)] = fits
    best = fits[0]
    row["model"] = best.name
    row["n_area"] = best.n_area
    if np.isfinite(best.tau_p_s):
        row["tau_p_h"] = best.tau_p_s / 3600.0
        row["tau_p_low_h"], row["tau_p_high_h"] = _ci_log(best.tau_p_s / 3600.0, best.sd("log_tau_p"), z)
    if np.isfinite(best.tau_v_s):
        row["tau_v_min"] = best.tau_v_s / 60.0
        row["tau_v_low_min"], row["tau_v_high_min"] = _ci_log(best.tau_v_s / 60.0, best.sd("log_tau_v"), z)
    span = float(tt[-1] - tt[0])
    # a range needs its crossing time resolved: fewer than two crossings in the period, or no
    # estimable uncertainty, and the "range" is a stretch of a walk
    unresolved = best.resident and (not np.isfinite(best.n_area) or best.n_area < params.ctmm_min_n_area or (
        best.model in ("ou", "ouf") and best.tau_p_s > span / 2))
    if not best.resident or unresolved:
        row["note"] = ("not range-resident: Brownian motion (no variogram asymptote) fits best"
                       if not best.resident else
                       f"not range-resident: fewer than {params.ctmm_min_n_area:g} range crossings in the period "
                       f"(range-crossing time {best.tau_p_s / 86400:.3g} days)")
        return
    row["resident"] = True
    # the conventional KDE beside the AKDE, for range-resident periods only (of a walk it is no range,
    # and its grid over a long journey is the costliest part of a non-resident period)
    row["kde95_km2"] = float(kde(xx, yy, (95.0,), grid_cells=params.kde_grid_cells)[0][0].area) / 1e6
    ud = akde(best, tt, xx, yy, rr, tuple(params.akde_levels_pct), params.akde_grid_cells, ci,
              bootstrap=params.akde_bootstrap, seed=k)
    g = best.gaussian_area_m2(95.0)
    row["gaussian95_km2"] = g / 1e6
    lo, hi = chi2_area_ci(g, best.n_area, ci)
    row["gaussian95_low_km2"], row["gaussian95_high_km2"] = lo / 1e6, hi / 1e6
    row["bandwidth_m"] = ud.bandwidth_m
    for lv in params.akde_levels_pct:
        key = f"akde{lv:g}"
        if f"{key}_km2" in row:
            row[f"{key}_km2"] = ud.areas_m2[(lv, "estimate")] / 1e6
            row[f"{key}_low_km2"] = ud.areas_m2[(lv, "low")] / 1e6
            row[f"{key}_high_km2"] = ud.areas_m2[(lv, "high")] / 1e6
    notes = []
    if np.isfinite(best.n_area) and best.n_area < 5:
        notes.append(f"few range crossings (N_area {best.n_area:.1f}): wide CIs")
    if best.model == "ouf":
        v, vlo, vhi = speed_ci(best, ci)
        row["speed_kmh"], row["speed_low_kmh"], row["speed_high_kmh"] = v * 3.6, vlo * 3.6, vhi * 3.6
        row["distance_km_day"] = v * 86.4
        row["distance_low_km_day"], row["distance_high_km_day"] = vlo * 86.4, vhi * 86.4
        daily.extend(_daily_speeds(label, k, best, tt, xx, yy, rr, times, v, vlo, vhi, ci))
    else:
        notes.append("no speed: the schedule does not resolve the velocity (no OUF model)")
    row["note"] = "; ".join(notes)
    uds[(label, k)] = _ud_lonlat(ud, inv)
    for (lv, contour), poly in ud.polygons.items():
        polys.append({"animal_id": label, "period": k, "method": "akde", "level_pct": float(lv),
                      "contour": contour, "area_km2": ud.areas_m2[(lv, contour)] / 1e6,
                      "n_fixes": int(tt.size), "geometry": poly})


def _ud_lonlat(ud: UD, inv: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lon, lat = inv.transform(ud.x, ud.y)
    return np.asarray(lon), np.asarray(lat), ud.mass / ud.mass.sum()


def _daily_speeds(label: Any, k: int, fit: MovementFit, t: np.ndarray, x: np.ndarray, y: np.ndarray,
                  r: np.ndarray, times: pd.Series, v: float, vlo: float, vhi: float, ci: float) -> list[dict]:
    """Per UTC day: the mean over the day's fixes of the expected speed given all fixes (smoothed
    OUF velocity), with a CI from 64 velocity paths drawn from the smoothing distribution (the
    day's own uncertainty) widened by the parameters' (the animal's relative speed CI), added on
    the log scale."""
    from telemetry.trajectory.ctmm import velocity_smoother

    es, paths = velocity_smoother(fit, t, x, y, r, draws=64, seed=k)
    days = times.dt.floor("D").to_numpy()
    start = np.flatnonzero(np.r_[True, days[1:] != days[:-1]])
    counts = np.diff(np.r_[start, t.size])
    day_mean = np.add.reduceat(es, start) / counts
    path_mean = np.add.reduceat(paths, start, axis=1) / counts  # (draws, days)
    a = (1.0 - ci) / 2.0
    lo_c, hi_c = np.quantile(path_mean, [a, 1.0 - a], axis=0)
    z = _z(ci)
    sd_par = (math.log(vhi / vlo) / (2 * z)) if v > 0 and np.isfinite(vlo) and vlo > 0 else 0.0
    out = []
    for j, i0 in enumerate(start):
        e = float(day_mean[j])
        sd_day = max(math.log(max(hi_c[j], 1e-12) / max(lo_c[j], 1e-12)) / (2 * z), 0.0)
        sd = math.hypot(sd_day, sd_par)
        out.append({"animal_id": label, "period": k, "date": pd.Timestamp(days[i0]).date().isoformat(),
                    "speed_kmh": e * 3.6, "speed_low_kmh": e * 3.6 * math.exp(-z * sd),
                    "speed_high_kmh": e * 3.6 * math.exp(z * sd), "distance_km": e * 86.4,
                    "n_fixes": int(counts[j])})
    return out


def movement_ranges(df: pd.DataFrame, params: HomeRangeParams | None = None) -> Ranges:
    """Movement models, resident periods, AKDE ranges and speeds of every animal.

    Parameters
    ----------
    df : pandas.DataFrame
        Processed tracks (flags respected; ``sigma_m`` used as each fix's error when present).
    params : HomeRangeParams, optional
        The ``homerange`` section of the configuration.

    Returns
    -------
    Ranges
    """
    params = params or HomeRangeParams()
    ok = usable_mask(df)
    codes, labels = group_codes(df)
    sig = (df["sigma_m"].to_numpy(dtype=float, na_value=np.nan) if "sigma_m" in df.columns
           else np.full(len(df), np.nan))
    jobs = []
    idx_all = np.flatnonzero(ok)
    order = np.lexsort((df["time"].to_numpy()[idx_all], codes[idx_all]))
    idx_all = idx_all[order]
    c = codes[idx_all]
    bounds = np.searchsorted(c, np.arange(len(labels) + 1))
    lon_all = df["lon"].to_numpy(dtype=float, na_value=np.nan)
    lat_all = df["lat"].to_numpy(dtype=float, na_value=np.nan)
    for g, label in enumerate(labels):
        idx = idx_all[bounds[g] : bounds[g + 1]]
        if idx.size < 3:
            continue
        s = sig[idx]
        if np.isfinite(s).any():
            r = np.where(np.isfinite(s), s, np.nanmedian(s)) ** 2
            note = "error model (sigma_m)"
        else:
            r = np.zeros(idx.size)
            note = "no location error known: taken as 0"
        times = df["time"].iloc[idx].reset_index(drop=True)
        jobs.append((label, times, lon_all[idx], lat_all[idx], r, note))

    parts = thread_map(lambda job: _animal(job, params), jobs)
    rows = [r for p in parts for r in p[0]]
    polys = [r for p in parts for r in p[1]]
    uds = {k: v for p in parts for k, v in p[2].items()}
    daily = [r for p in parts for r in p[3]]
    fits = {k: v for p in parts for k, v in p[4].items()}
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    cols = ["animal_id", "period", "method", "level_pct", "contour", "area_km2", "n_fixes", "geometry"]
    gdf = gpd.GeoDataFrame(polys if polys else {c: [] for c in cols}, columns=cols, geometry="geometry",
                           crs="EPSG:4326")
    dcols = ["animal_id", "period", "date", "speed_kmh", "speed_low_kmh", "speed_high_kmh", "distance_km", "n_fixes"]
    return Ranges(table=table, polygons=gdf, uds=uds, daily=pd.DataFrame(daily, columns=dcols), fits=fits)


def population_range(table: pd.DataFrame, ci_level_pct: float = 95.0, column: str = "akde95") -> dict:
    """Mean range area over animals with its CI, weighting each by its information.

    Each animal's range (its resident period with the largest ``N_area``), area ``A_i``, is taken on the log scale with variance
    ``1/N_area,i`` (its χ² sampling variance); the between-animal variance ``τ²`` comes from
    DerSimonian & Laird's moment estimator, the mean from inverse-variance weights
    ``1/(1/N_i + τ²)``. Returns ``{"area_km2", "low_km2", "high_km2", "n_ranges", "tau2"}``
    (``n_ranges``: animals; NaN without ranges).

    >>> t = pd.DataFrame({"akde95_km2": [100.0, 100.0], "n_area": [50.0, 50.0], "resident": [True, True]})
    >>> round(population_range(t)["area_km2"], 6)
    100.0
    """
    sel = table[(table["resident"] == True) & np.isfinite(table[f"{column}_km2"].astype(float))  # noqa: E712
                & np.isfinite(table["n_area"].astype(float))]
    if len(sel) and "animal_id" in sel.columns:
        # one range per animal (its best-known resident period), so the mean is over animals
        sel = sel.loc[sel.groupby(sel["animal_id"].astype(str), sort=False)["n_area"].idxmax()]
    out = {"area_km2": math.nan, "low_km2": math.nan, "high_km2": math.nan, "n_ranges": int(len(sel)), "tau2": math.nan}
    if sel.empty:
        return out
    y = np.log(sel[f"{column}_km2"].to_numpy(float))
    v = 1.0 / np.maximum(sel["n_area"].to_numpy(float), 1e-9)
    w = 1.0 / v
    mu_fixed = float(np.sum(w * y) / np.sum(w))
    q = float(np.sum(w * (y - mu_fixed) ** 2))
    k = y.size
    c = float(np.sum(w) - np.sum(w * w) / np.sum(w))
    tau2 = max(0.0, (q - (k - 1)) / c) if k > 1 and c > 0 else 0.0
    ws = 1.0 / (v + tau2)
    mu = float(np.sum(ws * y) / np.sum(ws))
    se = math.sqrt(1.0 / float(np.sum(ws)))
    z = _z(ci_level_pct / 100.0)
    out.update(area_km2=math.exp(mu), low_km2=math.exp(mu - z * se), high_km2=math.exp(mu + z * se), tau2=tau2)
    return out


def home_ranges(df: pd.DataFrame, params: HomeRangeParams | None = None,
                method: str | tuple[str, ...] = ("mcp", "kde")) -> gpd.GeoDataFrame:
    """Home-range polygons per animal by ``method``: any of ``"mcp"``, ``"kde"`` (conventional,
    :func:`telemetry.trajectory.homerange.home_ranges`) and ``"akde"`` (autocorrelated, per
    resident period, with the CI contours: columns ``period`` and ``contour``; the models,
    areas with CIs and speeds are in :func:`movement_ranges`).

    >>> home_ranges(pd.DataFrame(), method="lscv")
    Traceback (most recent call last):
    ValueError: unknown home-range method(s): lscv (mcp, kde, akde)
    """
    from telemetry.trajectory import homerange

    methods = (method,) if isinstance(method, str) else tuple(method)
    unknown = set(methods) - {"mcp", "kde", "akde"}
    if unknown:
        raise ValueError(f"unknown home-range method(s): {', '.join(sorted(unknown))} (mcp, kde, akde)")
    params = params or HomeRangeParams()
    base = homerange.home_ranges(df, params, tuple(m for m in methods if m != "akde"))
    if "akde" not in methods:
        return base
    return with_akde(base, movement_ranges(df, params))


def merge_ranges(parts: list[Ranges], animal_order: Any = None) -> Ranges:
    """One :class:`Ranges` from those of disjoint sets of animals, rows in ``animal_order`` (the
    animals' order in the tracks, e.g. their categories; default: as given), so a run on a
    cluster writes what a run in one process does."""
    parts = [p for p in parts if p is not None]
    if not parts:
        return movement_ranges(pd.DataFrame({"animal_id": [], "time": pd.to_datetime([], utc=True),
                                             "lon": [], "lat": [], "flag": []}))
    rank = {a: i for i, a in enumerate(animal_order)} if animal_order is not None else None

    def ordered(frame: pd.DataFrame) -> pd.DataFrame:
        if rank is None or not len(frame):
            return frame.reset_index(drop=True)
        key = frame["animal_id"].map(lambda a: rank.get(a, len(rank))).to_numpy()
        return frame.iloc[np.argsort(key, kind="stable")].reset_index(drop=True)

    table = ordered(pd.concat([p.table for p in parts], ignore_index=True))
    polys = ordered(pd.concat([p.polygons for p in parts], ignore_index=True))
    daily = ordered(pd.concat([p.daily for p in parts], ignore_index=True))
    def by_animal(items: dict) -> dict:
        keys = list(items)
        if rank is not None:
            keys.sort(key=lambda k: (rank.get(k[0], len(rank)), k[1]))
        return {k: items[k] for k in keys}

    return Ranges(table=table, polygons=gpd.GeoDataFrame(polys, geometry="geometry", crs="EPSG:4326"),
                  uds=by_animal({k: v for p in parts for k, v in p.uds.items()}), daily=daily,
                  fits=by_animal({k: v for p in parts for k, v in p.fits.items()}))


def with_akde(home_ranges: gpd.GeoDataFrame, ranges: Ranges | None) -> gpd.GeoDataFrame:
    """MCP/KDE rows of :func:`telemetry.trajectory.homerange.home_ranges` followed by the AKDE
    isopleths (and their CI contours) of ``ranges``; ``period`` and ``contour`` columns added
    (MCP/KDE rows: the whole track, ``estimate``)."""
    hr = home_ranges.copy()
    hr.insert(1, "period", pd.array([pd.NA] * len(hr), dtype="Int64"))
    hr["contour"] = "estimate"
    if ranges is None or not len(ranges.polygons):
        return hr
    ak = ranges.polygons.copy()
    ak["period"] = ak["period"].astype("Int64")
    ak["bandwidth_m"] = np.nan
    out = pd.concat([hr, ak[list(hr.columns)]], ignore_index=True)
    if isinstance(home_ranges["animal_id"].dtype, pd.CategoricalDtype):
        out["animal_id"] = pd.Categorical(out["animal_id"].astype(object),
                                          categories=home_ranges["animal_id"].dtype.categories)
    return gpd.GeoDataFrame(out, geometry="geometry", crs="EPSG:4326")
