"""Alerts for the field team: a dead animal or dropped collar, a kill site forming, a border
approached or crossed, a protected area left or entered, a collar failing.

Each alert is one row: ``animal_id``, ``kind``, ``severity`` (``critical``, ``warning``,
``info``), ``time`` (UTC: when the condition was last seen), ``since`` (when it began, e.g.
the estimated time of death), ``lon``/``lat`` (exact: internal) and ``evidence`` (the numbers
behind it, in words).

Mortality is told from a kill by the collar's own location error and by duration. A collar on a
carcass (or dropped) reports positions that scatter only by the location error around one
point: the trailing run of fixes that all lie (but for ``stationary_outlier_share`` of them)
within ``stationary_radius_sigma`` × the fixes' error SD (``sigma_m``, estimated from the data by
the error model) of the run's median position. A live animal at a kill moves between carcass,
bed and lookouts by more than the error, and leaves within the species' longest plausible stay
(``max_stay_days``, from the species profile). The threshold is also never below 1.25 × the
animal's own longest earlier cluster (200 m / 24 h rule), so an animal whose data show long stays
(a nesting bird) raises no alarm for a stay like them. The alert's ``since`` is the first fix of
the run: the time the collar stopped.

Collar health compares each collar with itself: its schedule is its median fix interval; a day's
fix success is located fixes over scheduled ones, judged against the collar's median day; HDOP
against its median; silence against ``silence_fixes`` scheduled fixes before ``now`` (default:
the latest row of any collar, i.e. the time of the download).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from telemetry.arrays import usable_mask
from telemetry.config import AlertParams
from telemetry.trajectory.projection import local_crs, to_local

__all__ = ["alerts", "ALERT_COLUMNS", "SEVERITIES"]

ALERT_COLUMNS = ["animal_id", "kind", "severity", "time", "since", "lon", "lat", "evidence"]
SEVERITIES = ("critical", "warning", "info")


def alerts(tracks: pd.DataFrame, params: AlertParams | None = None, *, since: Any = None, now: Any = None,
           zones: Any = None, zone_field: str | None = None, crossings: pd.DataFrame | None = None) -> pd.DataFrame:
    """Alerts of every animal in ``tracks`` (see the module docstring).

    Parameters
    ----------
    tracks : DataFrame
        Processed tracks (:func:`telemetry.process`: ``sigma_m``, ``lon_s``/``lat_s`` and
        ``cluster_id`` used when present) or canonical fixes; every row, flagged ones included
        (failed fixes count for fix success).
    params : AlertParams, optional
        Thresholds (default :class:`telemetry.config.AlertParams`).
    since : time, optional
        Only alerts whose condition was seen at or after this time (UTC).
    now : time, optional
        The time of the check (default: the latest row of any collar).
    zones : GeoDataFrame or path, optional
        Protected areas (polygons): exits and entries are alerted.
    zone_field : str, optional
        Name column of ``zones``.
    crossings : DataFrame, optional
        :func:`telemetry.corridor.crossings.crossings` of the tracks, if already computed.

    Returns
    -------
    DataFrame
        :data:`ALERT_COLUMNS`, sorted by severity, then time; empty when all is well.
    """
    p = params or AlertParams()
    rows: list[dict[str, Any]] = []
    if tracks is None or not len(tracks):
        return _frame(rows)
    tracks = tracks.copy(deep=False)
    tracks.attrs = {}  # (pandas deep-copies attrs on every selection; none are needed here)
    t_all = pd.to_datetime(tracks["time"], utc=True)
    now_t = t_all.max() if now is None else _utc(now)
    since_t = None if since is None else _utc(since)
    ok = usable_mask(tracks)
    # every animal's clusters (200 m / 24 h rule) in one pass: kill sites, and each animal's own
    # longest earlier stay for the mortality threshold
    from telemetry.trajectory.segment import cluster_table

    stays = cluster_table(tracks[ok]) if "cluster_id" in tracks.columns else None
    for animal, idx in tracks.groupby(tracks["animal_id"].astype(str), sort=True, observed=True).indices.items():
        sub = tracks.iloc[idx]
        good = sub[ok[idx]].sort_values("time", kind="stable")
        mine = stays[stays["animal_id"].astype(str) == animal] if stays is not None else None
        rows += _health(animal, sub, good, p, now_t)
        if len(good) >= 3:
            stay = _mortality(animal, good, p, mine)
            rows += stay
            rows += _kill_sites(animal, mine, stay, p)
            rows += _border_approach(animal, good, p)
    if crossings is None and since_t is not None:
        # only crossings that can be new: the fixes from a few days before `since` (the bracket
        # of a crossing starts at the last certain fix before it) — not the whole history
        window = (t_all >= since_t - pd.Timedelta(days=p.context_days)).to_numpy()
        rows += _crossing_alerts(tracks[window].reset_index(drop=True), None, p, zones, zone_field)
    else:
        rows += _crossing_alerts(tracks, crossings, p, zones, zone_field)
    out = _frame(rows)
    if since_t is not None and len(out):
        out = out[out["time"] >= since_t].reset_index(drop=True)
    return out


def _utc(value: Any) -> pd.Timestamp:
    """A time given by the user (naive = UTC) as a UTC timestamp.

    >>> _utc("2024-05-01T06:00"), _utc(pd.Timestamp("2024-05-01 08:00", tz="Europe/Berlin"))
    (Timestamp('2024-05-01 06:00:00+0000', tz='UTC'), Timestamp('2024-05-01 06:00:00+0000', tz='UTC'))
    """
    t = pd.Timestamp(value)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    out = pd.DataFrame(rows, columns=ALERT_COLUMNS)
    for c in ("time", "since"):
        out[c] = pd.to_datetime(out[c], utc=True)
    out["lon"] = out["lon"].astype(float)
    out["lat"] = out["lat"].astype(float)
    if len(out):
        rank = out["severity"].map({s: k for k, s in enumerate(SEVERITIES)})
        out = out.assign(_r=rank).sort_values(["_r", "time", "animal_id", "kind"], kind="stable")
        out = out.drop(columns="_r").reset_index(drop=True)
    return out


def _times(df: pd.DataFrame, column: str = "time") -> np.ndarray:
    """A time column as UTC datetime64[ns] (numpy compares and searches these directly)."""
    return pd.to_datetime(df[column], utc=True).dt.tz_convert(None).to_numpy(dtype="datetime64[ns]")


def _positions(good: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Smoothed positions where there are, else the fixes (degrees)."""
    lon, lat = good["lon"].to_numpy(dtype=float), good["lat"].to_numpy(dtype=float)
    if "lon_s" in good.columns:
        ls, as_ = good["lon_s"].to_numpy(dtype=float, na_value=np.nan), good["lat_s"].to_numpy(dtype=float,
                                                                                                na_value=np.nan)
        have = np.isfinite(ls) & np.isfinite(as_)
        lon, lat = np.where(have, ls, lon), np.where(have, as_, lat)
    return lon, lat


def _sigma(good: pd.DataFrame, p: AlertParams) -> np.ndarray:
    """Each fix's location error SD (m): the error model's ``sigma_m``, else HDOP × the default UERE."""
    if "sigma_m" in good.columns:
        s = good["sigma_m"].to_numpy(dtype=float, na_value=np.nan)
    else:
        hdop = good["hdop"].to_numpy(dtype=float, na_value=np.nan) if "hdop" in good.columns else np.full(len(good),
                                                                                                         np.nan)
        s = hdop * p.default_uere_m
    fill = np.nanmedian(s) if np.isfinite(s).any() else p.default_uere_m
    return np.where(np.isfinite(s), s, fill)


def _trailing_run(x: np.ndarray, y: np.ndarray, sigma: np.ndarray, p: AlertParams) -> tuple[int, float, float, float]:
    """Start index of the trailing stationary run, its centre (x, y) and median radius (m)."""
    n = len(x)
    start = max(0, n - 12)
    for _ in range(3):  # centre from the run, run from the centre, until it settles
        cx, cy = float(np.median(x[start:])), float(np.median(y[start:]))
        # each fix against its own error (a 2D fix at HDOP 6 may lie far off and still be "here")
        radius = np.maximum(p.stationary_radius_sigma * sigma, p.min_radius_m)
        out = np.hypot(x - cx, y - cy) > radius
        r = float(np.median(radius[start:]))
        # the run ends (going back in time) at the latest 3 consecutive fixes outside the radius
        three = out[2:] & out[1:-1] & out[:-2] if n >= 3 else np.zeros(0, dtype=bool)
        hits = np.flatnonzero(three)
        new = int(hits[-1]) + 3 if hits.size else 0
        if new >= n:
            new = n - 1
        # too many fixes outside within the run: it is not one place (share of outside fixes from i on)
        share = np.cumsum(out[::-1])[::-1] / np.arange(n, 0, -1)
        fine = np.flatnonzero(share[new:] <= p.stationary_outlier_share)
        new = new + int(fine[0]) if fine.size else n - 1
        if new == start:
            break
        start = new
    return start, cx, cy, r


def _mortality(animal: str, good: pd.DataFrame, p: AlertParams,
               stays: pd.DataFrame | None) -> list[dict[str, Any]]:
    t = _times(good)
    lon, lat = good["lon"].to_numpy(dtype=float), good["lat"].to_numpy(dtype=float)
    crs = local_crs(lon[-50:], lat[-50:])
    x, y = to_local(lon, lat, crs)
    start, cx, cy, r = _trailing_run(x, y, _sigma(good, p), p)
    days = (t[-1] - t[start]) / np.timedelta64(1, "D")
    if len(good) - start < 3:
        return []
    limit = p.max_stay_days
    own = 0.0
    if stays is not None and len(stays):
        # the animal's own longest stay that ended before this one began
        before = stays[_times(stays, "last_time") < t[start]]
        if len(before):
            own = float(before["duration_h"].max()) / 24.0
            limit = max(limit, 1.25 * own)
    if days < limit:
        return []
    i = start + int(np.argmin(np.hypot(x[start:] - cx, y[start:] - cy)))
    return [{"animal_id": animal, "kind": "mortality", "severity": "critical", "time": t[-1], "since": t[start],
             "lon": lon[i], "lat": lat[i],
             "evidence": f"{len(good) - start} fixes over {days:.1f} days all within {p.stationary_radius_sigma:g} × "
                         f"their location error (median {r:.0f} m) of one point; longer than the longest plausible stay ({limit:.1f} days"
                         + (f", 1.25 × this animal's longest earlier cluster of {own:.1f} days" if limit > p.max_stay_days
                            else ", species profile") + "): dead animal or dropped collar, stopped at the 'since' time"}]


def _kill_sites(animal: str, stays: pd.DataFrame | None, stay: list[dict[str, Any]],
                p: AlertParams) -> list[dict[str, Any]]:
    """The animal's clusters (:func:`telemetry.trajectory.segment.cluster_table`) lasting
    ``kill_min_h`` or more, as field-visit information, except a mortality site."""
    if stays is None or not len(stays):
        return []
    per = stays[stays["duration_h"] >= p.kill_min_h]
    if stay:  # the carcass: already a mortality alert
        per = per[per["last_time"] < _utc(stay[0]["since"])]
    return [{"animal_id": animal, "kind": "kill_site", "severity": "info", "time": r.last_time,
             "since": r.first_time, "lon": float(r.lon), "lat": float(r.lat),
             "evidence": f"cluster {int(r.cluster_id)}: {int(r.n_fixes)} fixes within 200 m over {r.duration_h:.0f} h "
                         "(a kill, den, nest or roost: worth a field visit)"} for r in per.itertuples(index=False)]


def _border_approach(animal: str, good: pd.DataFrame, p: AlertParams) -> list[dict[str, Any]]:
    from telemetry.corridor.borders import border_lines

    lon, lat = _positions(good)
    t = _times(good)
    lines = border_lines()
    reach = max(p.border_km * 3, 50.0) / 111.0 + 1.0  # degrees: only border lines that can be near
    box = (lon[-1] - reach / max(np.cos(np.radians(lat[-1])), 0.1), lat[-1] - reach,
           lon[-1] + reach / max(np.cos(np.radians(lat[-1])), 0.1), lat[-1] + reach)
    import shapely

    near = lines[shapely.intersects(lines.geometry.values, shapely.box(*box))]
    if near.empty:
        return []
    crs = local_crs(np.array([lon[-1]]), np.array([lat[-1]]))
    geoms = near.to_crs(crs).geometry.values
    day_ago = max(int(np.searchsorted(t, t[-1] - np.timedelta64(1, "D"), side="right")) - 1, 0)
    x, y = to_local(np.array([lon[-1], lon[day_ago]]), np.array([lat[-1], lat[day_ago]]), crs)
    d_now = shapely.distance(geoms, shapely.points(x[0], y[0])) / 1000.0
    k = int(np.argmin(d_now))
    km = float(d_now[k])
    km_before = float(shapely.distance(geoms[k], shapely.points(x[1], y[1]))) / 1000.0
    hours = (t[-1] - t[day_ago]) / np.timedelta64(1, "h")
    rate = (km_before - km) / (hours / 24.0) if hours > 0 else 0.0
    pair = f"{near['iso_a'].iloc[k]}–{near['iso_b'].iloc[k]}"
    if km <= p.border_km or (km <= 3 * p.border_km and rate >= p.approach_km_per_day):
        why = (f"{km:.1f} km from the {pair} border" + (f", closing at {rate:.1f} km/day over the last {hours:.0f} h"
                                                        if rate > 0 else ""))
        return [{"animal_id": animal, "kind": "border_approach", "severity": "warning", "time": t[-1], "since": t[-1],
                 "lon": lon[-1], "lat": lat[-1], "evidence": why}]
    return []


def _crossing_alerts(tracks: pd.DataFrame, cx: pd.DataFrame | None, p: AlertParams, zones: Any,
                     zone_field: str | None) -> list[dict[str, Any]]:
    from telemetry.corridor.crossings import crossings
    from telemetry.schema import endpoint_columns

    out = []
    sets = [("crossing", cx if cx is not None else crossings(tracks))]
    if zones is not None:
        sets.append(("zone", crossings(tracks, zones=zones, zone_field=zone_field)))
    for what, table in sets:
        if table is None or not len(table):
            continue
        a, b = endpoint_columns(table)
        sure = table[(table["kind"].astype(str) == "crossing") & table["time"].notna()
                     & (pd.to_numeric(table.get("confidence", 1.0), errors="coerce").fillna(0) >= p.min_confidence)]
        for r in sure.itertuples(index=False):
            src, dst = str(getattr(r, a)), str(getattr(r, b))
            kind = "crossing" if what == "crossing" else ("zone_entry" if src == "outside" else "zone_exit")
            lon, lat = _point(r)
            out.append({"animal_id": str(r.animal_id), "kind": kind, "severity": "warning" if what == "crossing"
                        else "info", "time": r.time, "since": getattr(r, "t_before", r.time), "lon": lon, "lat": lat,
                        "evidence": f"{src} → {dst}, confidence {float(getattr(r, 'confidence', 1.0)):.2f}"})
    return out


def _point(r: Any) -> tuple[float, float]:
    g = getattr(r, "geometry", None)
    if g is not None and not g.is_empty:
        c = g.centroid
        return float(c.x), float(c.y)
    return float(getattr(r, "lon", np.nan)), float(getattr(r, "lat", np.nan))


def _runs(days: np.ndarray, hit: np.ndarray, values: np.ndarray,
          gap_days: int = 2) -> list[tuple[pd.Timestamp, pd.Timestamp, list[float]]]:
    """Runs of ``hit`` days (integers since the epoch) no more than ``gap_days`` apart: one alert
    per spell of bad days, not one per day. Returns (first day, last day, values of the hit days).

    >>> [(a.day, b.day, v) for a, b, v in _runs(np.array([0, 1, 2, 5, 9]), np.array([1, 1, 0, 1, 1], bool),
    ...                                          np.array([.1, .2, .9, .3, .4]))]
    [(1, 2, [0.1, 0.2]), (6, 6, [0.3]), (10, 10, [0.4])]
    """
    idx = np.flatnonzero(hit)
    out: list[tuple[pd.Timestamp, pd.Timestamp, list[float]]] = []
    start = 0
    for k in range(1, idx.size + 1):
        if k == idx.size or days[idx[k]] - days[idx[k - 1]] > gap_days:
            run = idx[start:k]
            out.append((pd.Timestamp(np.datetime64(int(days[run[0]]), "D"), tz="UTC"),
                        pd.Timestamp(np.datetime64(int(days[run[-1]]), "D"), tz="UTC"),
                        [float(v) for v in values[run]]))
            start = k
    return out


def _spells(animal: str, kind: str, severity: str, days: np.ndarray, bad: np.ndarray, values: np.ndarray,
            label: str, fmt: Any, unit: str, at: Any, baseline: str) -> list[dict[str, Any]]:
    """One alert per spell of bad days (:func:`_runs`), placed where the collar was at its end:
    "``label`` 4–21 ``unit`` on 7 days from … to … (``baseline``)"; ``fmt`` writes one value."""
    out = []
    for d0, d1, vals in _runs(days, bad, values):
        lon, lat = at(d1 + pd.Timedelta(days=1))
        what = (f"{label} {fmt(vals[0])}{unit} on {d0:%Y-%m-%d}" if len(vals) == 1 else
                f"{label} {fmt(min(vals))}–{fmt(max(vals))}{unit} on {len(vals)} days from {d0:%Y-%m-%d} to "
                f"{d1:%Y-%m-%d}")
        out.append({"animal_id": animal, "kind": kind, "severity": severity, "time": d1 + pd.Timedelta(days=1),
                    "since": d0, "lon": lon, "lat": lat, "evidence": f"{what} ({baseline})"})
    return out


def _health(animal: str, sub: pd.DataFrame, good: pd.DataFrame, p: AlertParams, now: pd.Timestamp) -> list[dict]:
    """Silence, falling fix success, rising HDOP, clock jumps of one collar."""
    out: list[dict[str, Any]] = []
    tn = _times(sub)
    tn = np.sort(tn[~np.isnat(tn)])  # datetime64 (UTC): numpy, not Timestamps, for speed
    if tn.size < 3:
        return out
    gaps = np.diff(tn).astype("timedelta64[s]").astype(float)
    if not (gaps > 0).any():
        return out
    every_s = float(np.median(gaps[gaps > 0]))
    last = pd.Timestamp(tn[-1], tz="UTC")
    lon_g, lat_g = good["lon"].to_numpy(dtype=float), good["lat"].to_numpy(dtype=float)
    lon0 = float(lon_g[-1]) if len(good) else np.nan
    lat0 = float(lat_g[-1]) if len(good) else np.nan
    tg = _times(good)

    def at(when: pd.Timestamp) -> tuple[float, float]:
        """The last located position up to ``when`` (where the collar was)."""
        k = int(np.searchsorted(tg, when.tz_convert(None).to_datetime64(), side="right")) - 1
        return (lon0, lat0) if k < 0 else (float(lon_g[k]), float(lat_g[k]))

    gap = (now - last).total_seconds()
    if gap > p.silence_fixes * every_s:
        # seen from the moment the silence became alertable (so --since keeps only new silences)
        out.append({"animal_id": animal, "kind": "no_data", "severity": "warning",
                    "time": last + pd.Timedelta(seconds=p.silence_fixes * every_s), "since": last,
                    "lon": lon0, "lat": lat0,
                    "evidence": f"no data for {gap / 3600:.0f} h = {gap / every_s:.0f} scheduled fixes (one per "
                                f"{every_s / 60:.0f} min)"})
    # fix success per whole UTC day (first and last days are partial), days as integers; the
    # schedule is the collar's own around that day (the median interval of the month around it:
    # a collar switched from hourly to 4-hourly fixes is not failing)
    day_all = tn.astype("datetime64[D]").astype(np.int64)
    days = np.unique(day_all)[1:-1]
    if days.size >= 3:
        per_day = pd.Series(gaps[gaps > 0]).groupby(day_all[1:][gaps > 0]).median()
        full = pd.Series(np.nan, index=np.arange(days[0] - 15, days[-1] + 16))
        full.loc[per_day.index.intersection(full.index)] = per_day
        schedule = full.rolling(31, center=True, min_periods=1).median().reindex(days).fillna(every_s).to_numpy()
        day_good = np.sort(tg.astype("datetime64[D]").astype(np.int64))
        located = np.searchsorted(day_good, days, side="right") - np.searchsorted(day_good, days, side="left")
        success = np.minimum(located / (86400.0 / schedule), 1.0)
        base = float(np.median(success))
        out += _spells(animal, "fix_success", "warning", days, success < p.fix_success_drop * base, success,
                       "fix success", lambda v: f"{100 * v:.0f}", " %", at,
                       f"this collar's median day {100 * base:.0f} % of its schedule")
        if "hdop" in good.columns:
            hd = good["hdop"].to_numpy(dtype=float, na_value=np.nan)
            med = float(np.nanmedian(hd)) if np.isfinite(hd).any() else np.nan
            daily = pd.Series(hd).groupby(tg.astype("datetime64[D]").astype(np.int64)).median().reindex(days)
            out += _spells(animal, "hdop", "info", days,
                           ((daily > p.hdop_rise * med) & (daily > p.hdop_min)).to_numpy(), daily.to_numpy(),
                           "median HDOP", lambda v: f"{v:.1f}", "", at, f"this collar's median {med:.1f}")
    if "flag" in sub.columns:
        jumps = sub[sub["flag"].astype(str) == "clock_jump"]
        if len(jumps):
            tj = pd.to_datetime(jumps["time"], utc=True)
            out.append({"animal_id": animal, "kind": "clock_jump", "severity": "warning",
                        "time": tj.max() if tj.notna().any() else last, "since": tj.min() if tj.notna().any() else last,
                        "lon": lon0, "lat": lat0, "evidence": f"{len(jumps)} fixes with a collar clock jump "
                                                               "(flagged clock_jump)"})
    return out
