"""One row per animal: fixes, period, sampling, flags and what the steps decided for it
(profile fit, movement model, number of behaviour states)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from telemetry.arrays import group_codes, time_ns, usable_mask


def track_summary(tracks: pd.DataFrame) -> pd.DataFrame:
    """Per-animal summary of processed tracks.

    Returns
    -------
    pandas.DataFrame
        Index ``animal_id``; ``rows``, ``usable``, ``flagged``, ``segments``, ``clusters``,
        ``first``/``last`` (UTC time of usable fixes), ``days``, ``distance_km`` (sum of
        steps), ``median_step_h``; from what the steps found (``tracks.attrs``, where
        present): ``profile_fits`` (the animal's speeds agree with the species profile),
        ``speed_limit_kmh`` (the limit used), ``speed_p99_kmh``, ``flagged_speed_share``
        (share of fixes flagged speed/spike), ``suggested_profile`` (when it does not fit),
        ``movement_model`` (the smoother's model) and ``n_states`` (behavioural states,
        empty with a reason in ``quality.json`` when none were fitted).
    """
    ok = usable_mask(tracks)
    codes, labels = group_codes(tracks)
    k = len(labels)
    rows = np.bincount(codes, minlength=k)
    usable = np.bincount(codes[ok], minlength=k)
    out = pd.DataFrame({"rows": rows, "usable": usable, "flagged": rows - usable},
                       index=pd.Index(labels, name="animal_id"))
    for col, name in (("segment_id", "segments"), ("cluster_id", "clusters")):
        if col in tracks.columns:
            ids = tracks[col].to_numpy(dtype=float, na_value=np.nan)
            m = np.isfinite(ids)
            # distinct (animal, id) pairs by hashing: np.unique(axis=0) sorted rows as
            # structured records (seconds at 1M rows)
            pairs = pd.DataFrame({"code": codes[m], "id": ids[m]}).drop_duplicates()
            out[name] = np.bincount(pairs["code"].to_numpy(), minlength=k) if len(pairs) else 0
    t = time_ns(tracks)
    first = np.full(k, np.iinfo(np.int64).max)
    last = np.full(k, np.iinfo(np.int64).min)
    np.minimum.at(first, codes[ok], t[ok])
    np.maximum.at(last, codes[ok], t[ok])
    has = usable > 0
    out["first"] = pd.to_datetime(np.where(has, first, np.iinfo(np.int64).min), utc=True)
    out["last"] = pd.to_datetime(np.where(has, last, np.iinfo(np.int64).min), utc=True)
    out["days"] = np.where(has, (last - first) / 86_400e9, np.nan)
    if "step_m" in tracks.columns:
        step = tracks["step_m"].to_numpy(dtype=float)
        sm = ok & np.isfinite(step)
        out["distance_km"] = np.bincount(codes[sm], step[sm], minlength=k) / 1000.0
        dt = tracks["dt_s"].to_numpy(dtype=float)
        med = pd.Series(dt[sm] / 3600.0).groupby(codes[sm]).median()
        out["median_step_h"] = med.reindex(np.arange(k)).to_numpy()
    _add_diagnostics(out, tracks.attrs)
    return out[out["rows"] > 0]


def _add_diagnostics(out: pd.DataFrame, attrs: dict) -> None:
    """Per-animal columns of :func:`track_summary` from the steps' ``attrs`` (in place)."""
    names = [str(a) for a in out.index]
    check = attrs.get("profile_check") or {}
    if check:
        get = lambda key: [check.get(a, {}).get(key) for a in names]  # noqa: E731
        out["profile_fits"] = pd.array(get("fits"), dtype="boolean")
        out["speed_limit_kmh"] = pd.array(get("max_speed_kmh"), dtype="Float64")
        out["speed_p99_kmh"] = pd.array(get("speed_p99_kmh"), dtype="Float64")
        out["flagged_speed_share"] = pd.array(get("flagged_share"), dtype="Float64")
        out["suggested_profile"] = pd.array(get("suggested_profile"), dtype="string")
    smooth = attrs.get("smooth") or {}
    if smooth:
        out["movement_model"] = pd.array([smooth.get(a, {}).get("model") for a in names], dtype="string")
    states = attrs.get("states") or {}
    if states:
        out["n_states"] = pd.array([states.get(a, {}).get("n_states") for a in names], dtype="Int64")
