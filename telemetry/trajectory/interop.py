"""movingpandas interoperability: tracks ⇄ :class:`movingpandas.TrajectoryCollection`.

movingpandas is the ecosystem face of the package, not its engine: conversion builds
one :class:`movingpandas.Trajectory` per animal segment (this is the one place a loop
over trajectories is unavoidable, since movingpandas *is* per-trajectory objects).

What movingpandas cannot hold, and how it is handled:

* time zones – a Trajectory keeps a naive :class:`~pandas.DatetimeIndex`; we give it the
  UTC wall time (so no ``TimeZoneWarning``) and :func:`from_movingpandas` restores UTC;
* trajectories need two or more fixes with distinct times – flagged rows and one-fix
  segments are left out (they have no trajectory to be part of);
* everything else round-trips: every column, its dtype (categoricals included) and
  the exact coordinates (kept as ``lon``/``lat`` columns next to the point geometry).
"""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd

from telemetry.arrays import group_time_order, usable_mask
from telemetry.schema import CANONICAL_COLUMNS, CANONICAL_DTYPES

__all__ = ["to_movingpandas", "from_movingpandas"]

TRAJ_ID_COL = "traj_id"
"""Column movingpandas uses for the trajectory id (``"<animal_id>_<segment_id>"``)."""


def to_movingpandas(tracks: pd.DataFrame):
    """One :class:`movingpandas.Trajectory` per animal segment.

    Parameters
    ----------
    tracks : pandas.DataFrame
        Canonical table, usually from :func:`telemetry.process`. Without ``segment_id``
        each animal is one trajectory.

    Returns
    -------
    movingpandas.TrajectoryCollection
        Trajectory ids ``"<animal_id>_<segment_id>"``, ``obj_id`` = animal id, CRS
        EPSG:4326, index = UTC time (naive, as movingpandas requires), all columns kept.
        Flagged rows and single-fix segments are not included.

    Examples
    --------
    >>> tc = telemetry.to_movingpandas(tracks)        # doctest: +SKIP
    >>> tc.add_speed(units=("km", "h"))               # doctest: +SKIP
    """
    import movingpandas as mpd

    ok = usable_mask(tracks)
    df = tracks.loc[ok]
    if "segment_id" in df.columns:
        seg = df["segment_id"].astype("Int64").astype(str)
    else:
        seg = pd.Series("0", index=df.index)
    traj = df["animal_id"].astype(str) + "_" + seg
    times = df["time"].dt.tz_convert("UTC").dt.tz_localize(None).dt.as_unit("ns")
    gdf = gpd.GeoDataFrame(
        df.drop(columns=["time"]),
        geometry=gpd.points_from_xy(df["lon"], df["lat"]),
        crs="EPSG:4326",
    )
    gdf.index = pd.DatetimeIndex(times.to_numpy(), name="time")
    gdf.attrs = {}  # pandas deep-copies attrs into every slice; thousands of slices follow
    gdf[TRAJ_ID_COL] = traj.to_numpy()
    # sort once by (trajectory, time) and slice contiguous runs: much cheaper than groupby
    codes, names = pd.factorize(gdf[TRAJ_ID_COL], sort=True)
    order = group_time_order(codes, times.to_numpy().view(np.int64))
    if order is not None:
        gdf, codes = gdf.iloc[order], codes[order]
    bounds = np.searchsorted(codes, np.arange(len(names) + 1))
    animals = gdf["animal_id"].to_numpy()
    trajectories = []
    with warnings.catch_warnings():
        # movingpandas 0.23 uses pandas' deprecated inplace sort; not ours to fix
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        _ignore_pandas4_warning()
        for k, tid in enumerate(names):
            lo, hi = bounds[k], bounds[k + 1]
            if hi - lo < 2:
                continue
            trajectories.append(
                mpd.Trajectory(gdf.iloc[lo:hi], tid, traj_id_col=TRAJ_ID_COL, obj_id=animals[lo])
            )
        return mpd.TrajectoryCollection(trajectories)


def from_movingpandas(tc) -> pd.DataFrame:
    """Back from a :class:`movingpandas.TrajectoryCollection` (or one Trajectory) to a table.

    Parameters
    ----------
    tc : movingpandas.TrajectoryCollection or movingpandas.Trajectory

    Returns
    -------
    pandas.DataFrame
        Canonical columns first (schema dtypes, ``time`` tz-aware UTC), then the others
        (movingpandas' own, such as ``speed``, included), sorted by animal and time.
        ``lon``/``lat`` come from the columns when present, else from the geometry
        (reprojected to WGS84). ``animal_id`` defaults to the trajectory's ``obj_id``
        (or id); ``segment_id`` to the trajectory's rank within its animal.
    """
    trajs = list(getattr(tc, "trajectories", [tc]))
    if not trajs:
        from telemetry.schema import empty_frame

        return empty_frame()
    parts = []
    for k, tr in enumerate(trajs):
        part = tr.df
        if part.crs is not None and not part.crs.equals("EPSG:4326"):
            part = part.to_crs("EPSG:4326")
        part = pd.DataFrame(part)
        if "animal_id" not in part.columns:
            part["animal_id"] = str(tr.obj_id if tr.obj_id is not None else tr.id)
        if "segment_id" not in part.columns:
            part["segment_id"] = k
        parts.append(part)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # concat of all-NA columns
        df = pd.concat(parts, axis=0)
    index = df.index
    if not isinstance(index, pd.DatetimeIndex):
        index = pd.DatetimeIndex(index)
    time = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    df = df.reset_index(drop=True)
    df["time"] = pd.Series(time.as_unit("ns"), index=df.index)
    geom = df.pop("geometry") if "geometry" in df.columns else None
    if geom is not None and ("lon" not in df.columns or "lat" not in df.columns):
        gs = gpd.GeoSeries(geom.to_numpy())
        df["lon"], df["lat"] = gs.x.to_numpy(), gs.y.to_numpy()
    if TRAJ_ID_COL in df.columns and "segment_id" in df.columns:
        df = df.drop(columns=TRAJ_ID_COL)
    for name, dtype in CANONICAL_DTYPES.items():
        if name not in df.columns:
            continue
        if name == "flag" or name == "segment_id":
            continue
        if str(df[name].dtype) != str(dtype):
            try:
                df[name] = df[name].astype(dtype)
            except (TypeError, ValueError):
                pass  # keep what movingpandas gave rather than fail
    if "flag" in df.columns:
        df["flag"] = df["flag"].astype(CANONICAL_DTYPES["flag"])
    if "segment_id" in df.columns:
        df["segment_id"] = df["segment_id"].astype("Int64")
    first = [c for c in CANONICAL_COLUMNS if c in df.columns]
    df = df[first + [c for c in df.columns if c not in first]]
    sort_keys = [c for c in ("animal_id", "time") if c in df.columns]
    order = np.lexsort(tuple(_sort_key(df[c]) for c in reversed(sort_keys)))
    return df.iloc[order].reset_index(drop=True)


def _sort_key(s: pd.Series) -> np.ndarray:
    if isinstance(s.dtype, pd.CategoricalDtype):
        return s.cat.codes.to_numpy()
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return s.dt.as_unit("ns").to_numpy(dtype="datetime64[ns]").view(np.int64)
    return pd.factorize(s, sort=True)[0]


def _ignore_pandas4_warning() -> None:
    cls = getattr(getattr(pd, "errors", None), "Pandas4Warning", None)
    if cls is not None:
        warnings.simplefilter("ignore", cls)
