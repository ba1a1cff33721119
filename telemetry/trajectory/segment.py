"""Segmentation at gaps and stop/cluster detection.

* :func:`fix_schedule` – each animal's own fix interval, measured (median interval of
  consecutive usable fixes), never assumed.
* :func:`segment` – ``segment_id`` (0, 1, ... per animal) that changes wherever the gap to
  the previous usable fix exceeds ``gap_multiple`` × the animal's schedule; adds
  ``cluster_id`` via :func:`clusters` too.
* :func:`clusters` / :func:`cluster_table` – the kill-site rule of large-carnivore studies
  (Knopff et al. 2009): a fix joins a cluster when it is within ``radius_m`` of the
  cluster's centroid and within ``window_h`` of the cluster's last fix; clusters with at
  least ``min_fixes`` fixes are kept. The rule is a recurrence (a centroid moves as fixes
  join), so it runs in numba over the sorted arrays of all animals at once.

Flagged rows get ``<NA>`` for both ids.
"""

from __future__ import annotations

import numba
import numpy as np
import pandas as pd

from telemetry.arrays import (
    group_codes,
    group_starts,
    over_groups,
    same_group_as_previous,
    sorted_usable,
    with_columns,
)
from telemetry.config import ClusterParams, SegmentParams
from telemetry.trajectory._arrays import EARTH_RADIUS_M, group_order_stats

__all__ = ["fix_schedule", "split_gap_s", "segment", "clusters", "cluster_table"]


def fix_schedule(df: pd.DataFrame, params: SegmentParams | None = None) -> pd.DataFrame:
    """Each animal's fix schedule and the gap that splits its segments.

    Parameters
    ----------
    df : pandas.DataFrame
        Canonical table (flags respected: only usable fixes count).
    params : SegmentParams, optional

    Returns
    -------
    pandas.DataFrame
        Index ``animal_id``; ``n_fixes`` (usable), ``schedule_s`` (median interval between
        consecutive usable fixes, s) and ``gap_s`` (intervals longer than this split, s).
    """
    params = params or SegmentParams()
    pos, a, t = sorted_usable(df)
    _, labels = group_codes(df)
    sched = _schedule(a, t, len(labels))
    gap = _split_gap(sched, params)
    out = pd.DataFrame(
        {"n_fixes": np.bincount(a, minlength=len(labels)), "schedule_s": sched, "gap_s": gap},
        index=pd.Index(labels, name="animal_id"),
    )
    return out[out["n_fixes"] > 0]


def segment(
    df: pd.DataFrame,
    params: SegmentParams | None = None,
    *,
    cluster_params: ClusterParams | None = None,
    with_clusters: bool = True,
) -> pd.DataFrame:
    """Add ``segment_id`` (and ``cluster_id``): split each animal's track at long gaps.

    Parameters
    ----------
    df : pandas.DataFrame
        Canonical table, usually after :func:`telemetry.clean`; any row order.
    params : SegmentParams, optional
        ``gap_multiple`` (× the animal's median fix interval) and ``min_gap_h`` (h).
    cluster_params : ClusterParams, optional
        Passed to :func:`clusters`.
    with_clusters : bool
        Also add ``cluster_id`` (default True).

    Returns
    -------
    pandas.DataFrame
        Copy of ``df`` with ``segment_id`` (``Int64``; 0, 1, ... within each animal in time
        order; ``<NA>`` for flagged rows).

    Examples
    --------
    >>> import pandas as pd, telemetry
    >>> t = pd.to_datetime(["2024-01-01 00:00", "2024-01-01 01:00", "2024-01-01 02:00",
    ...                     "2024-01-02 02:00", "2024-01-02 03:00"], utc=True)
    >>> df = pd.DataFrame({"animal_id": "a", "time": t, "lon": 77.0, "lat": 43.0})
    >>> telemetry.segment(df, with_clusters=False)["segment_id"].tolist()
    [0, 0, 0, 1, 1]
    """
    params = params or SegmentParams()
    pos, a, t = sorted_usable(df)
    _, labels = group_codes(df)
    gap_ns = split_gap_s(a, t, len(labels), params) * 1e9
    prev = same_group_as_previous(a)
    dt = np.zeros(a.size, dtype=np.float64)
    dt[1:] = (t[1:] - t[:-1]).astype(np.float64)
    new = ~prev | (dt > gap_ns[a])
    cum = np.cumsum(new)
    seg = cum - cum[group_starts(a)]  # restart at 0 for each animal
    ids = np.full(len(df), -1, dtype=np.int64)
    ids[pos] = seg
    out = with_columns(df, {"segment_id": _nullable(ids)})
    if with_clusters:
        out = clusters(out, cluster_params)
    return out


def _nullable(ids: np.ndarray) -> pd.arrays.IntegerArray:
    """int64 ids with -1 for "none" → nullable ``Int64``."""
    return pd.arrays.IntegerArray(np.where(ids >= 0, ids, 0), ids < 0)


def split_gap_s(a: np.ndarray, t: np.ndarray, k: int, params: SegmentParams | None = None) -> np.ndarray:
    """Per group code, the interval (s) longer than which a new segment starts: ``gap_multiple``
    × the group's median interval, at least ``min_gap_h`` (NaN for a group of one fix). ``a``
    (codes ``0..k-1``) and ``t`` (int64 ns) sorted by group, then time — the one rule of
    :func:`segment`, :func:`fix_schedule` and the smoother's restarts.

    >>> t = np.array([0, 3600, 7200, 93600], dtype=np.int64) * 10**9
    >>> split_gap_s(np.zeros(4, np.int64), t, 1).tolist()
    [14400.0]
    """
    return _split_gap(_schedule(a, t, k), params or SegmentParams())


def _split_gap(sched: np.ndarray, params: SegmentParams) -> np.ndarray:
    return np.maximum(params.gap_multiple * sched, params.min_gap_h * 3600.0)


def _schedule(a: np.ndarray, t: np.ndarray, k: int) -> np.ndarray:
    """Median positive interval (s) between consecutive sorted fixes, per group code (NaN if none)."""
    prev = same_group_as_previous(a)
    dt = np.zeros(a.size, dtype=np.float64)
    dt[1:] = (t[1:] - t[:-1]) / 1e9
    ok = prev & (dt > 0)
    g, d = a[ok], dt[ok]  # grouped: ``a`` is sorted
    count = np.bincount(g, minlength=k)[:k]
    start = np.cumsum(count) - count
    lo, hi = group_order_stats(d, start, count, np.maximum(count - 1, 0) // 2)
    return np.where(count % 2 == 1, lo, (lo + hi) / 2)


def clusters(df: pd.DataFrame, params: ClusterParams | None = None) -> pd.DataFrame:
    """Add ``cluster_id``: fixes of one animal within ``radius_m`` and ``window_h`` of each other.

    Parameters
    ----------
    df : pandas.DataFrame
        Canonical table (flags respected).
    params : ClusterParams, optional
        ``radius_m`` (m, to the cluster's running centroid), ``window_h`` (h, since the
        cluster's last fix), ``min_fixes``.

    Returns
    -------
    pandas.DataFrame
        Copy with ``cluster_id`` (``Int64``, unique over the table, numbered by animal then
        first time; ``<NA>`` for fixes in no cluster and flagged rows).
    """
    params = params or ClusterParams()
    pos, a, t = sorted_usable(df)
    lon = df["lon"].to_numpy(dtype=float, na_value=np.nan)[pos]
    lat = df["lat"].to_numpy(dtype=float, na_value=np.nan)[pos]
    label = _cluster_kernel(
        a, t.astype(np.float64) / 1e9, lon, lat, float(params.radius_m), float(params.window_h) * 3600.0
    )
    # drop clusters with too few fixes, renumber the rest: labels are numbered in order of
    # first appearance (animal, then time), so the kept ones keep that order
    counts = np.bincount(label) if label.size else np.zeros(0, dtype=np.int64)
    kept = counts >= params.min_fixes
    new = np.where(kept, np.cumsum(kept) - 1, -1)[label]
    ids = np.full(len(df), -1, dtype=np.int64)
    ids[pos] = new
    return with_columns(df, {"cluster_id": _nullable(ids)})


_R = EARTH_RADIUS_M  # numba freezes module globals as constants


def _cluster_kernel(a: np.ndarray, t: np.ndarray, lon: np.ndarray, lat: np.ndarray, radius_m: float,
                    window_s: float) -> np.ndarray:
    """Cluster label per sorted fix, numbered by animal then time; animals on threads."""
    n = a.size
    label = np.empty(n, dtype=np.int64)
    if n == 0:
        return label
    bounds = np.r_[0, np.flatnonzero(a[1:] != a[:-1]) + 1, n]
    made = np.empty(bounds.size - 1, dtype=np.int64)
    over_groups(_cluster_block, bounds, bounds, t, lon, lat, float(radius_m), float(window_s), label, made)
    offset = np.cumsum(made) - made
    return label + np.repeat(offset, np.diff(bounds))


@numba.njit(cache=True, nogil=True)
def _cluster_block(bounds, t, lon, lat, radius_m, window_s, label, made, g0, g1):  # pragma: no cover - numba
    for g in range(g0, g1):
        s, e = bounds[g], bounds[g + 1]
        made[g] = _cluster_animal(t[s:e], lon[s:e], lat[s:e], radius_m, window_s, label[s:e])


@numba.njit(cache=True)
def _cluster_animal(t, lon, lat, radius_m, window_s, label):  # pragma: no cover - numba
    """Clusters of one animal's sorted fixes into ``label`` (0, 1, ...); returns how many."""
    n = t.size
    # active clusters of the current animal: running sums of lon offset/lat, count, last time
    cap = 64
    c_id = np.empty(cap, dtype=np.int64)
    c_lon0 = np.empty(cap)
    c_sx = np.empty(cap)
    c_sy = np.empty(cap)
    c_n = np.empty(cap)
    c_last = np.empty(cap)
    n_active = 0
    next_id = 0
    rad = np.pi / 180.0
    for i in range(n):
        # retire clusters whose last fix is older than the window (keep order compact)
        k = 0
        for j in range(n_active):
            if t[i] - c_last[j] <= window_s:
                c_id[k] = c_id[j]
                c_lon0[k] = c_lon0[j]
                c_sx[k] = c_sx[j]
                c_sy[k] = c_sy[j]
                c_n[k] = c_n[j]
                c_last[k] = c_last[j]
                k += 1
        n_active = k
        best = -1
        best_d = radius_m
        for j in range(n_active):
            clon = c_lon0[j] + c_sx[j] / c_n[j]
            clat = c_sy[j] / c_n[j]
            p1 = lat[i] * rad
            p2 = clat * rad
            dl = lon[i] - clon
            dl = (dl + 180.0) % 360.0 - 180.0
            h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl * rad / 2) ** 2
            d = 2 * _R * np.arcsin(np.sqrt(min(max(h, 0.0), 1.0)))
            if d <= best_d:
                best_d = d
                best = j
        if best >= 0:
            dl = (lon[i] - c_lon0[best] + 180.0) % 360.0 - 180.0
            c_sx[best] += dl
            c_sy[best] += lat[i]
            c_n[best] += 1.0
            c_last[best] = t[i]
            label[i] = c_id[best]
        else:
            if n_active == cap:  # grow the active list
                cap *= 2
                c_id = np.concatenate((c_id, np.empty(cap - c_id.size, dtype=np.int64)))
                c_lon0 = np.concatenate((c_lon0, np.empty(cap - c_lon0.size)))
                c_sx = np.concatenate((c_sx, np.empty(cap - c_sx.size)))
                c_sy = np.concatenate((c_sy, np.empty(cap - c_sy.size)))
                c_n = np.concatenate((c_n, np.empty(cap - c_n.size)))
                c_last = np.concatenate((c_last, np.empty(cap - c_last.size)))
            c_id[n_active] = next_id
            c_lon0[n_active] = lon[i]
            c_sx[n_active] = 0.0
            c_sy[n_active] = lat[i]
            c_n[n_active] = 1.0
            c_last[n_active] = t[i]
            n_active += 1
            label[i] = next_id
            next_id += 1
    return next_id


def cluster_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per cluster of a table that has ``cluster_id`` (see :func:`clusters`).

    Returns
    -------
    pandas.DataFrame
        ``cluster_id``, ``animal_id``, ``lon``, ``lat`` (centroid, degrees), ``first_time``,
        ``last_time`` (UTC), ``n_fixes``, ``duration_h`` (last - first, h).
    """
    if "cluster_id" not in df.columns:
        df = clusters(df)
    cid = df["cluster_id"]
    m = cid.notna().to_numpy()
    sub = df.loc[m, ["animal_id", "time", "lon", "lat"]].copy()
    sub["cluster_id"] = cid[m].astype(np.int64).to_numpy()
    if sub.empty:
        return pd.DataFrame(
            {"cluster_id": pd.Series(dtype=np.int64), "animal_id": pd.Series(dtype=df["animal_id"].dtype),
             "lon": pd.Series(dtype=float), "lat": pd.Series(dtype=float),
             "first_time": pd.Series(dtype=df["time"].dtype), "last_time": pd.Series(dtype=df["time"].dtype),
             "n_fixes": pd.Series(dtype=np.int64), "duration_h": pd.Series(dtype=float)}
        )
    # longitudes relative to each cluster's first fix: a mean that survives the antimeridian
    first_lon = sub.groupby("cluster_id")["lon"].transform("first")
    sub["dlon"] = ((sub["lon"] - first_lon + 180.0) % 360.0) - 180.0
    g = sub.groupby("cluster_id", sort=True)
    tab = g.agg(
        animal_id=("animal_id", "first"),
        lon0=("lon", "first"),
        dlon=("dlon", "mean"),
        lat=("lat", "mean"),
        first_time=("time", "min"),
        last_time=("time", "max"),
        n_fixes=("time", "size"),
    ).reset_index()
    tab.insert(2, "lon", ((tab.pop("lon0") + tab.pop("dlon") + 180.0) % 360.0) - 180.0)
    tab["duration_h"] = (tab["last_time"] - tab["first_time"]).dt.total_seconds() / 3600.0
    tab["n_fixes"] = tab["n_fixes"].astype(np.int64)
    if isinstance(df["animal_id"].dtype, pd.CategoricalDtype):
        tab["animal_id"] = tab["animal_id"].astype(df["animal_id"].dtype)
    return tab[["cluster_id", "animal_id", "lon", "lat", "first_time", "last_time", "n_fixes", "duration_h"]]
