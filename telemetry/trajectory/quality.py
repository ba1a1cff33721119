"""Data-quality summaries of a canonical fix table (what ``telemetry inspect`` prints).

All statistics are vectorised with pandas groupby over (source, animal); times
are UTC, intervals in hours, fix success in percent.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from telemetry.arrays import lexsort_small_keys
from telemetry.schema import has_fix
from telemetry.trajectory._arrays import group_order_stats

MAX_MISSED_PER_GAP = 24
"""A gap longer than this many scheduled intervals is taken as a planned pause
(duty cycle, collar off at day for bats) or an outage, not as that many failed
fixes: it counts as at most this many expected attempts."""


def group_stats(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Fix statistics per group of ``keys`` (e.g. source × animal, or animal × month).

    Columns: rows, fixes, timed, first/last (UTC), median_interval_h, hdop median/p90/max,
    n_3d, n_2d, duplicate_times, expected (attempts on the group's own schedule, gaps
    capped at :data:`MAX_MISSED_PER_GAP`), n_argos, no_fix_rows, span_days,
    fix_success_pct (NaN for Argos), share_3d_pct, share_2d_pct.
    """
    work = pd.DataFrame(
        {
            **{k: df[k] for k in keys},
            "time": df["time"],
            "fix": has_fix(df),
            "hdop": df["hdop"].where(has_fix(df)),
            "is3d": (df["fix_type"] == "3D") & has_fix(df),
            "is2d": (df["fix_type"] == "2D") & has_fix(df),
            "argos": df["fix_type"] == "argos",
        }
    )
    # = work.sort_values(keys + ["time"], kind="stable"), from integer sort keys: pandas
    # factorises the times through a hash table first (seconds at 10M rows)
    work = work.take(_stable_order([work[k] for k in keys] + [work["time"]]))
    grouped = work.groupby(keys, observed=True, sort=True)
    dt_h = grouped["time"].diff().dt.total_seconds() / 3600.0
    # duplicates: same group and time as the previous row
    dup = (dt_h == 0).astype(int)
    positive = dt_h.where(dt_h > 0)
    interval = positive.groupby([work[k] for k in keys], observed=True).transform("median")
    # expected attempts per step: 1 for the row itself, plus missed slots before it
    slots = (positive / interval).round().clip(lower=1, upper=MAX_MISSED_PER_GAP)
    work = work.assign(dt_h=positive, dup=dup, slots=slots.fillna(1.0))
    grouped = work.groupby(keys, observed=True, sort=True)
    out = grouped.agg(
        rows=("fix", "size"),
        fixes=("fix", "sum"),
        timed=("time", "count"),
        first=("time", "min"),
        last=("time", "max"),
        median_interval_h=("dt_h", "median"),
        hdop_median=("hdop", "median"),
        hdop_max=("hdop", "max"),
        n_3d=("is3d", "sum"),
        n_2d=("is2d", "sum"),
        duplicate_times=("dup", "sum"),
        expected=("slots", "sum"),
        n_argos=("argos", "sum"),
    )
    # the 90th percentile in one vectorised pass (a per-group lambda took seconds at 5,000
    # animal-months), bit-identical to Series.quantile(0.9) of each group
    out.insert(out.columns.get_loc("hdop_median") + 1, "hdop_p90",
               group_quantile(work["hdop"].to_numpy(dtype=float, na_value=np.nan), _group_numbers(grouped),
                              len(out), 0.9))
    out["no_fix_rows"] = out["rows"] - out["fixes"]
    span_h = (out["last"] - out["first"]).dt.total_seconds() / 3600.0
    out["span_days"] = span_h / 24.0
    # fix success against the animal's own schedule (median interval); rows
    # without a time cannot be placed on the schedule but are attempts too
    expected = np.maximum(out["expected"] + (out["rows"] - out["timed"]), out["rows"])
    # Argos locations come when satellites pass, not on a schedule: no success rate
    scheduled = out["median_interval_h"].notna() & (out["n_argos"] < 0.5 * out["rows"])
    out["fix_success_pct"] = np.where(scheduled, 100.0 * out["fixes"] / expected, np.nan)
    typed = out["n_3d"] + out["n_2d"]
    out["share_3d_pct"] = np.where(typed > 0, 100.0 * out["n_3d"] / typed.where(typed > 0, 1), np.nan)
    out["share_2d_pct"] = np.where(typed > 0, 100.0 * out["n_2d"] / typed.where(typed > 0, 1), np.nan)
    return out.reset_index()


def _sort_codes(col: pd.Series) -> np.ndarray:
    """int64 codes that sort like ``col`` does in ``sort_values`` (missing values last)."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes = col.cat.codes.to_numpy().astype(np.int64)
        n = len(col.cat.categories)
    elif isinstance(col.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(col.dtype):
        codes = col.dt.as_unit("ns").to_numpy(dtype="datetime64[ns]").view(np.int64).copy()
        missing = col.isna().to_numpy()
        codes[missing] = np.iinfo(np.int64).max  # NaT last (NaT is int64 min)
        return codes
    else:
        codes, uniques = pd.factorize(col, sort=True)
        codes = codes.astype(np.int64)
        n = len(uniques)
    return np.where(codes < 0, n, codes)


def _stable_order(columns: list[pd.Series]) -> np.ndarray:
    """Row positions sorting by ``columns`` (first = primary), stable, missing values last."""
    codes = [_sort_codes(c) for c in reversed(columns)]
    return lexsort_small_keys(codes[0], *codes[1:])


def _group_numbers(grouped: Any) -> np.ndarray:
    """Group number of each row (sorted group order), -1 for rows in no group (missing key)."""
    ng = grouped.ngroup().to_numpy(dtype=float, na_value=np.nan)
    return np.where(np.isnan(ng), -1, ng).astype(np.int64)


def group_quantile(values: np.ndarray, groups: np.ndarray, n_groups: int, q: float) -> np.ndarray:
    """Quantile ``q`` (0-1) of ``values`` per group ``0..n_groups-1``, NaN skipped.

    Linear interpolation computed exactly as :func:`numpy.percentile` does it (and hence
    ``pandas.Series.quantile``): virtual index ``(n-1)·q`` and numpy's two-sided lerp, so
    the results are bit-identical to quantiles taken group by group. Groups without values
    give NaN; ``groups`` < 0 are ignored.
    """
    values = np.asarray(values, dtype=float)
    groups = np.asarray(groups, dtype=np.int64)
    keep = ~np.isnan(values) & (groups >= 0)
    v, g = values[keep], groups[keep]
    # rows grouped by a stable radix sort of the group numbers, then the two order statistics
    # of each group by selection (no sort of the values: 5x faster at 10M rows)
    v = v[np.argsort(g.astype(np.uint16) if n_groups <= 1 << 16 else g, kind="stable")]
    n = np.bincount(g, minlength=n_groups)
    start = np.cumsum(n) - n
    has = n > 0
    virtual = (n - 1) * np.float64(q)
    prev = np.floor(virtual)
    above = virtual >= n - 1  # numpy takes the last value (gamma then multiplies a zero difference)
    prev_i = np.where(above, n - 1, prev).astype(np.int64)
    gamma = virtual - np.where(above, -1.0, prev)
    out = np.full(n_groups, np.nan)
    lo, hi = group_order_stats(v, start, n, np.maximum(prev_i, 0))
    a, b = lo[has], hi[has]
    t = gamma[has]
    diff = b - a
    res = a + diff * t
    hi_t = t >= 0.5
    res[hi_t] = b[hi_t] - diff[hi_t] * (1 - t[hi_t])
    out[has] = res
    return out


def _argos_counts(df: pd.DataFrame, keys: list[str]) -> dict[tuple, dict[str, int]]:
    lc = df["argos_lc"]
    if lc.isna().all():
        return {}
    small = pd.DataFrame({**{k: df[k] for k in keys}, "_lc": lc}).dropna(subset=["_lc"])
    counts = small.groupby(keys + ["_lc"], observed=True).size()
    out: dict[tuple, dict[str, int]] = {}
    for idx, n in counts.items():
        key, cls = tuple(idx[:-1]), str(idx[-1])
        out.setdefault(key, {})[cls] = int(n)
    return out


def summarize(df: pd.DataFrame) -> dict[str, Any]:
    """Quality summary per file and per animal, JSON-serialisable.

    Parameters
    ----------
    df : pandas.DataFrame
        Canonical fix table from :func:`telemetry.read` (its ``attrs["sources"]``
        gives formats and rows skipped per file).

    Returns
    -------
    dict
        ``{"files": [...], "skipped_files": [...], "totals": {...}}``; each file has
        format, rows read/kept/skipped and a list of animals with: rows,
        fixes, no_fix_rows, first/last (ISO UTC), span_days, median_interval_h,
        fix_success_pct, hdop median/p90/max, share_3d_pct/share_2d_pct,
        argos_lc counts, duplicate_times, flags (parse-level reasons and counts).
    """
    reports = {r["source"]: r for r in df.attrs.get("sources", [])}
    keys = ["source", "animal_id"]
    stats = group_stats(df, keys) if len(df) else pd.DataFrame(columns=keys)
    argos = _argos_counts(df, keys) if len(df) else {}
    flags = (
        pd.DataFrame({k: df[k] for k in [*keys, "flag"]}).dropna(subset=["flag"])
        .groupby(keys + ["flag"], observed=True).size()
        if len(df)
        else pd.Series(dtype=int)
    )
    flag_map: dict[tuple, dict[str, int]] = {}
    for idx, n in flags.items():
        flag_map.setdefault(tuple(idx[:-1]), {})[str(idx[-1])] = int(n)

    files: list[dict[str, Any]] = []
    for source, rep in reports.items():
        if rep.get("format") is None:
            continue
        rows = stats[stats["source"] == source] if len(stats) else stats
        files.append(
            {
                "source": source,
                "format": rep["format"],
                "rows_read": rep["rows_read"],
                "rows_kept": rep["rows_kept"],
                "skipped": rep.get("skipped", {}),
                "notes": rep.get("notes", []),
                "fix_type_rule": rep.get("fix_type_rule"),
                "animals": [_animal_record(r, argos, flag_map) for r in rows.to_dict("records")],
            }
        )
    skipped_files = [
        {"source": r["source"], "reason": r["skipped_file"]} for r in reports.values() if r.get("format") is None
    ]
    fix = has_fix(df)
    totals = {
        "files": len(files),
        "animals": int(df["animal_id"].nunique()),
        "rows": len(df),
        "fixes": int(fix.sum()),
        "no_fix_rows": int((~fix).sum()),
    }
    return {"files": files, "skipped_files": skipped_files, "totals": totals}


def _iso(t: object) -> str | None:
    return None if pd.isna(t) else pd.Timestamp(t).isoformat().replace("+00:00", "Z")


def _num(x: object, nd: int = 2) -> float | None:
    return None if x is None or pd.isna(x) else round(float(x), nd)


def _animal_record(r: dict[str, Any], argos: dict, flag_map: dict) -> dict[str, Any]:
    key = (r["source"], r["animal_id"])
    return {
        "animal_id": str(r["animal_id"]),
        "rows": int(r["rows"]),
        "fixes": int(r["fixes"]),
        "no_fix_rows": int(r["no_fix_rows"]),
        "first": _iso(r["first"]),
        "last": _iso(r["last"]),
        "span_days": _num(r["span_days"]),
        "median_interval_h": _num(r["median_interval_h"], 3),
        "fix_success_pct": _num(r["fix_success_pct"], 1),
        "hdop_median": _num(r["hdop_median"]),
        "hdop_p90": _num(r["hdop_p90"]),
        "hdop_max": _num(r["hdop_max"]),
        "share_3d_pct": _num(r["share_3d_pct"], 1),
        "share_2d_pct": _num(r["share_2d_pct"], 1),
        "argos_lc": argos.get(key, {}),
        "duplicate_times": int(r["duplicate_times"]),
        "flags": flag_map.get(key, {}),
    }
