"""Step metrics on the WGS84 ellipsoid: step length, interval, speed, azimuth, turn, NSD.

All metrics are computed over usable (unflagged) fixes within each animal and segment,
with one vectorised geodesic call for all animals at once (:func:`telemetry.trajectory.geodesic.inverse`,
WGS84, checked against :meth:`pyproj.Geod.inv`). A step belongs
to the fix it *arrives* at (as in movingpandas): the first usable fix of a segment has
no step, flagged rows get NaN.

Columns added by :func:`metrics`

==============  =====================================================================
``step_m``      geodesic distance from the previous fix (m)
``dt_s``        time since the previous fix (s)
``speed_kmh``   ``step_m / dt_s`` in km/h
``azimuth_deg`` forward azimuth of the step at its start (degrees clockwise from north,
                0..360; NaN for a zero-length step)
``turn_deg``    turning angle at the previous fix: this step's azimuth minus the
                previous step's arrival heading (degrees, -180..180, + = right turn)
``nsd_km2``     net squared displacement from the animal's first usable fix (km²)
==============  =====================================================================
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from telemetry.arrays import (
    group_codes,
    group_starts,
    same_group_as_previous,
    sorted_usable,
    usable_mask,
    with_columns,
)
from telemetry.trajectory._arrays import wrap_deg
from telemetry.trajectory.geodesic import inverse as geodesic_inverse

__all__ = ["metrics", "daily_distance", "METRIC_COLUMNS"]

METRIC_COLUMNS: tuple[str, ...] = ("step_m", "dt_s", "speed_kmh", "azimuth_deg", "turn_deg", "nsd_km2")


def metrics(df: pd.DataFrame, *, smoothed: bool = False) -> pd.DataFrame:
    """Add step metrics (see the module docstring for units).

    Parameters
    ----------
    df : pandas.DataFrame
        Canonical table; with ``segment_id`` steps never cross segments.
    smoothed : bool
        Measure the smoothed positions ``lon_s``/``lat_s`` instead of ``lon``/``lat``.

    Returns
    -------
    pandas.DataFrame
        Copy of ``df`` with :data:`METRIC_COLUMNS` (float64).

    Examples
    --------
    >>> import pandas as pd, telemetry
    >>> t = pd.date_range("2024-01-01", periods=3, freq="h", tz="UTC")
    >>> df = pd.DataFrame({"animal_id": "a", "time": t, "lon": [0.0, 0.0, 0.01], "lat": [0.0, 0.01, 0.01]})
    >>> m = telemetry.metrics(df)
    >>> m["step_m"].round(1).tolist(), m["turn_deg"].round(1).tolist()
    ([nan, 1105.7, 1113.2], [nan, nan, 90.0])
    """
    xcol, ycol = ("lon_s", "lat_s") if smoothed else ("lon", "lat")
    usable = usable_mask(df)
    if smoothed:
        usable &= np.isfinite(df[xcol].to_numpy(dtype=float, na_value=np.nan))
        usable &= np.isfinite(df[ycol].to_numpy(dtype=float, na_value=np.nan))
    pos, a, t = sorted_usable(df, usable)
    lon = df[xcol].to_numpy(dtype=float, na_value=np.nan)[pos]
    lat = df[ycol].to_numpy(dtype=float, na_value=np.nan)[pos]
    n = pos.size
    out_cols = {c: np.full(len(df), np.nan) for c in METRIC_COLUMNS}
    if n:
        # step boundaries: a new animal or a new segment starts without a step
        key = a
        if "segment_id" in df.columns:
            seg = df["segment_id"].to_numpy(dtype=float, na_value=-1)[pos]
            key = np.cumsum(np.r_[True, (a[1:] != a[:-1]) | (seg[1:] != seg[:-1])])
        has_prev = same_group_as_previous(key)
        prv = np.maximum(np.arange(n) - 1, 0)
        az12, az21, dist = geodesic_inverse(lon[prv], lat[prv], lon, lat)
        az12, az21, dist = np.asarray(az12), np.asarray(az21), np.asarray(dist)
        step = np.where(has_prev, dist, np.nan)
        dt = np.where(has_prev, (t - t[prv]) / 1e9, np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            speed = np.where(dt > 0, step / dt * 3.6, np.nan)
        moved = has_prev & (step > 0)
        azimuth = np.where(moved, np.mod(az12, 360.0), np.nan)
        # heading on arrival of the previous step = its back azimuth + 180 (exact on the ellipsoid)
        arrive = np.where(moved, az21 + 180.0, np.nan)
        prev_moved = np.r_[False, moved[:-1]] & has_prev
        turn = np.where(moved & prev_moved, wrap_deg(az12 - arrive[prv]), np.nan)
        first = group_starts(a)
        _, _, d0 = geodesic_inverse(lon[first], lat[first], lon, lat)
        nsd = (np.asarray(d0) / 1000.0) ** 2
        for name, values in zip(METRIC_COLUMNS, (step, dt, speed, azimuth, turn, nsd)):
            out_cols[name][pos] = values
    return with_columns(df, out_cols)


def daily_distance(df: pd.DataFrame) -> pd.DataFrame:
    """Distance travelled per animal and UTC day.

    A step counts for the day of the fix it arrives at.

    Parameters
    ----------
    df : pandas.DataFrame
        Output of :func:`metrics` (computed if ``step_m`` is missing).

    Returns
    -------
    pandas.DataFrame
        ``animal_id``, ``date`` (UTC calendar day), ``distance_km``, ``n_steps``, ``n_fixes``
        (usable fixes that day), sorted by animal and date.
    """
    if "step_m" not in df.columns:
        df = metrics(df)
    ok = usable_mask(df)
    codes, labels = group_codes(df)
    sub = pd.DataFrame(
        {
            "code": codes[ok],
            "date": df["time"][ok].dt.tz_convert("UTC").dt.floor("D").to_numpy(),
            "step": df["step_m"].to_numpy(dtype=float)[ok],
        }
    )
    g = sub.groupby(["code", "date"], sort=True)
    tab = g.agg(distance_km=("step", "sum"), n_steps=("step", "count"), n_fixes=("step", "size")).reset_index()
    tab["distance_km"] = tab["distance_km"] / 1000.0
    animal = labels.take(tab["code"].to_numpy())
    if isinstance(df["animal_id"].dtype, pd.CategoricalDtype):
        animal = pd.Categorical(animal, dtype=df["animal_id"].dtype)
    tab.insert(0, "animal_id", animal)
    tab["date"] = pd.to_datetime(tab["date"]).dt.date
    return tab.drop(columns="code")
