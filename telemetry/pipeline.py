"""The whole job, step by step: fixes → clean → segment → smooth → metrics → states.

Used by the ``telemetry process`` command and by Python users::

    import telemetry
    tracks = telemetry.process("sample_tracks/")                 # snow leopard defaults
    tracks = telemetry.process(fixes, species="generic", overrides=["clean.max_speed_kmh=80"])
    tracks.attrs["parameters"]                                   # every parameter used
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from telemetry.arrays import (
    group_codes,
    group_time_order,
    is_sorted_by,
    lexsort_small_keys,
    time_ns,
    usable_mask,
)
from telemetry.config import DEFAULT_SPECIES, Config, CorridorParams, HomeRangeParams, load_config
from telemetry.deployments import deployments_read
from telemetry.engine import Engine, LocalEngine, animal_partitions, concat_parts, get_engine
from telemetry.errors import TelemetryError
from telemetry.heap import reused_heap
from telemetry.schema import SharedAttr
from telemetry.trajectory.clean import clean
from telemetry.trajectory.error_estimate import FitMemo, estimate_error_model
from telemetry.trajectory.error_model import ErrorModel
from telemetry.trajectory.metrics import metrics
from telemetry.trajectory.outliers import explained_spikes, residual_outliers, revisited_spikes
from telemetry.trajectory.projection import reused_projections
from telemetry.trajectory.segment import clusters as find_clusters
from telemetry.trajectory.segment import segment
from telemetry.trajectory.smooth import SMOOTHED_COLUMNS
from telemetry.trajectory.smooth import smooth as smooth_tracks
from telemetry.trajectory.states import label_states
from telemetry.trajectory.summary import track_summary

if TYPE_CHECKING:
    from telemetry.corridor.footprints import Footprints, TrackArrays

__all__ = ["process", "analyse", "config_of", "embargoed", "public_source", "Products", "run", "RunResult", "RUN_STEPS"]


@reused_heap()  # (freed arrays reused, not unmapped and faulted in again: see telemetry.heap)
def process(
    data: pd.DataFrame | str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    config: Config | str | os.PathLike[str] | None = None,
    *,
    species: str | None = None,
    overrides: Iterable[str] = (),
    deployments: pd.DataFrame | None = None,
    smooth: bool = True,
    states: bool = True,
    engine: str | Engine | None = None,
    step: Callable[[str], object] | None = None,
    error_model: ErrorModel | None = None,
    error_memo: dict | None = None,
) -> pd.DataFrame:
    """Turn fixes into tracks: every step of issue 4 in order.

    Parameters
    ----------
    data : DataFrame or path(s)
        The canonical fix table, or files/directories for :func:`telemetry.read`.
    config : Config or path, optional
        Parameters, or a TOML file of them; default the species profile.
    species : str, optional
        Species profile (``snow_leopard`` default, ``generic``).
    overrides : iterable of str
        ``section.name=value`` overrides, applied last.
    deployments : DataFrame, optional
        Deployment table (``animal_id``, ``start``, ``end``) for :func:`telemetry.clean`; by
        default the one read with the fixes (Movebank reference data among the files), named in
        ``attrs["deployments_from"]``.
    smooth, states : bool
        Run the Kalman smoother / the behavioural-state HMM.
    engine : str or Engine, optional
        Where to run (:mod:`telemetry.engine`): None/``"local"`` in this process,
        ``"dask"`` or a :class:`~telemetry.engine.DaskEngine` on a Dask cluster, one task
        per partition of whole animals (a GeoParquet dataset given as ``data`` is then
        read by the workers, each its own animals). The result is identical.
    zones : path or GeoDataFrame, optional
        Protected areas (or any polygons) for the range shares; ``zone_field`` names them.
    error_model : ErrorModel, optional
        A calibration of the collars' location error (``telemetry calibrate``); classes it
        lacks are estimated from the tracks.
    error_memo : dict, optional
        Error-model fits already made (``attrs["error_fit"]`` of earlier tracks, e.g. a
        store's): a fit of exactly the same inputs is taken from it instead of searched
        again (:class:`telemetry.trajectory.error_estimate.FitMemo`); the result is the same. The fit
        used is in the result's ``attrs["error_fit"]``.
    step : callable, optional
        Called with the name of each step (``sort``, ``clean``, ``segment``, ``clusters``,
        ``smooth``, ``metrics``, ``states``) as it starts, in this process; with a Dask engine once,
        with ``"process on the cluster"``.

    Returns
    -------
    pandas.DataFrame
        All input rows, sorted by ``(animal_id, time)`` (rows without time last), with
        ``flag``, ``segment_id``, ``cluster_id``, smoothed ``lon_s``/``lat_s``/``se_m``,
        step metrics and ``state``. ``attrs["parameters"]`` holds every parameter used,
        ``attrs["steps"]`` the steps that ran.
    """
    if isinstance(config, Config):
        cfg = config
        if species is not None:
            cfg = Config.for_species(species)
        cfg = cfg.with_overrides(overrides)
    else:
        cfg = load_config(config, species=species, overrides=overrides)

    dep_files: list[str] = []
    if deployments is None and isinstance(data, pd.DataFrame):
        deployments, dep_files = deployments_read(data.attrs.get("sources"))
    if engine is not None and not isinstance(engine, LocalEngine):
        with _engine_scope(engine) as eng:
            if eng.distributed:
                if step is not None:
                    step("process on the cluster")
                out = _process_distributed(data, cfg, eng, deployments=deployments, smooth=smooth,
                                           states=states, error_model_prior=error_model, error_memo=error_memo)
                if dep_files:
                    out.attrs["deployments_from"] = dep_files
                return out
    if isinstance(data, pd.DataFrame):
        fixes = data
    else:
        from telemetry.parsers import read

        fixes = read(data)
        if deployments is None:
            deployments, dep_files = deployments_read(fixes.attrs.get("sources"))
    sources = fixes.attrs.get("sources")
    announce = step or (lambda name: None)
    announce("sort")
    tracks = _sorted(fixes)
    del fixes  # the sorted copy is all that is needed from here (halves peak memory at scale)
    steps = ["sort"]

    tracks = _clean_steps(tracks, cfg, deployments, announce)
    steps += ["clean", "segment", "clusters"]
    memo = FitMemo(dict(error_memo or {}))
    with reused_projections():  # the error estimate and the smoother project the same fixes
        if smooth:
            # the collars' error is pooled over all animals (an engine estimates it here too)
            error_model = estimate_error_model(tracks, cfg.smooth, prior=error_model, memo=memo)
        tracks = _finish_steps(tracks, cfg, error_model, smooth, states, announce)
    steps += _process_steps(smooth, states)[4:]
    tracks.attrs = {"parameters": SharedAttr(cfg.to_dict()), "steps": steps, **_kept_attrs(tracks.attrs)}
    if memo.used:
        tracks.attrs["error_fit"] = memo.used
    if sources is not None:
        tracks.attrs["sources"] = sources
    if dep_files:
        tracks.attrs["deployments_from"] = dep_files
    return tracks


def location_error(fixes: pd.DataFrame, cfg: Config, *,
                   error_model: ErrorModel | None = None) -> tuple[dict[str, Any], pd.DataFrame]:
    """The location-error model :func:`process` would smooth ``fixes`` with, as it records it
    (``attrs["error_model"]``: the classes of the usable fixes), and the cleaned tracks it is
    estimated on (``attrs["profile_check"]``: the species profile's check).

    The same steps as :func:`process` up to its error estimate (the deployments read with the
    fixes, sort, clean, segment, clusters), so the UERE that ``telemetry inspect`` reports is
    the one ``process`` uses, to the bit. ``error_model``: a calibration (its classes are kept).
    """
    from telemetry.trajectory.error_model import ERROR_CLASSES, error_classes
    from telemetry.trajectory.movement_fit import usable_rows

    deployments, _ = deployments_read(fixes.attrs.get("sources"))
    tracks = _clean_steps(_sorted(fixes), cfg, deployments, lambda name: None)
    with reused_projections():
        model = estimate_error_model(tracks, cfg.smooth, prior=error_model)
    present = np.unique(error_classes(tracks)[0][usable_rows(tracks)])
    return model.to_dict([ERROR_CLASSES[c] for c in present]), tracks


_PER_ANIMAL_ATTRS = ("profile_check", "smooth", "states")
"""``attrs`` of the steps that hold one entry per animal (merged over partitions by an engine)."""


def _kept_attrs(attrs: dict) -> dict:
    return {k: attrs[k] for k in (*_PER_ANIMAL_ATTRS, "error_model") if k in attrs}


def _clean_steps(tracks: pd.DataFrame, cfg: Config, deployments: pd.DataFrame | None,
                 announce: Callable[[str], object]) -> pd.DataFrame:
    """clean → segment → clusters of sorted fixes."""
    announce("clean")
    tracks = clean(tracks, cfg.clean, deployments=deployments)
    announce("segment")
    tracks = segment(tracks, cfg.segment, with_clusters=False)
    announce("clusters")
    return find_clusters(tracks, cfg.clusters)


def _finish_steps(tracks: pd.DataFrame, cfg: Config, error_model: ErrorModel | None, smooth: bool, states: bool,
                  announce: Callable[[str], object]) -> pd.DataFrame:
    """smooth (with the given error model) → outliers the smoother exposes → metrics → states."""
    if smooth:
        announce("smooth")
        # the model is given (estimated over all animals); with estimation switched off by the
        # user the configured UERE is their statement of the collar's error, averaged with
        params = replace(cfg.smooth, estimate_error=False,
                         average_unidentified=cfg.smooth.average_unidentified or not cfg.smooth.estimate_error)
        tracks = smooth_tracks(tracks, params=params, error_model=error_model)
        # gross errors the smoother exposes (between fast-moving neighbours, where the position
        # rules cannot see them): flag them and smooth again with the same models and errors
        bad = residual_outliers(tracks, cfg.clean)
        # and the other way round: fixes the position rules called spikes that the smoothed
        # track (which left them out) predicts within their error are real trips: put them back
        back = explained_spikes(tracks, cfg.clean)
        # either way, a fix at a place the animal was seen at other times is a real trip
        spike = (tracks["flag"].astype(object) == "spike").to_numpy()
        again = revisited_spikes(tracks, bad | spike, cfg.clean)
        bad &= ~again
        back |= again & spike
        if bad.any() or back.any():
            kept = tracks.attrs
            flags = tracks["flag"].copy()
            flags[bad] = "spike"
            flags[back] = pd.NA
            tracks = tracks.assign(flag=flags)
            if back.any() and "segment_id" in tracks.columns:
                tracks = _into_segments(tracks, back)
            tracks = _smooth_again(tracks, bad | back, params, kept, error_model)
    announce("metrics")
    tracks = metrics(tracks)
    if states:
        announce("states")
        tracks = label_states(tracks, params=cfg.states)
    return tracks


def _smooth_again(tracks: pd.DataFrame, changed: np.ndarray, params: Any, kept: dict,
                  error_model: ErrorModel | None) -> pd.DataFrame:
    """Smooth again, with the fitted models and errors (``kept``: the first pass's ``attrs``),
    the animals with a fix whose flag changed (``changed``, bool per row). The others' output
    would be the same to the bit (each animal is smoothed on its own once its model and the
    errors are fixed), so it is kept: half the animals of the bench's generators change."""
    codes, _ = group_codes(tracks)
    redo = np.flatnonzero(np.isin(codes, np.unique(codes[changed])))
    part = smooth_tracks(tracks.iloc[redo], params=params, models=kept.get("smooth"), error_model=error_model)
    out = tracks.copy(deep=False)
    for name in SMOOTHED_COLUMNS:
        col = out[name].to_numpy(dtype=float, copy=True)
        col[redo] = part[name].to_numpy(dtype=float)
        out[name] = col
    out.attrs = {**kept, "smooth": SharedAttr({**kept.get("smooth", {}), **part.attrs.get("smooth", {})})}
    return out


def _into_segments(tracks: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """Fixes put back into the track (``rows``, bool) join the segment of the usable fix before them.

    They were flagged when the track was segmented, so they have no ``segment_id``; each lies
    within a segment's time span (:func:`telemetry.trajectory.outliers.explained_spikes` only
    puts back fixes the smoothed segment predicts).
    """
    seg = tracks["segment_id"].to_numpy(dtype=float, na_value=np.nan)
    codes, _ = group_codes(tracks)
    order = group_time_order(codes, time_ns(tracks))
    order = np.arange(codes.size) if order is None else order
    s_o = seg[order]
    known = np.isfinite(s_o) & tracks["flag"].isna().to_numpy()[order]
    # the last known segment at or before each row, within its animal
    idx = np.where(known, np.arange(order.size), -1)
    idx = np.maximum.accumulate(idx)
    same = (idx >= 0) & (codes[order][np.maximum(idx, 0)] == codes[order])
    fill = np.where(same, s_o[np.maximum(idx, 0)], np.nan)
    want = rows[order] & ~np.isfinite(s_o)
    seg[order[want]] = fill[want]
    return tracks.assign(segment_id=pd.array(seg, dtype="Float64").astype("Int64"))


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    """Rows by (animal, time), rows without time last, file order breaking ties; without ``attrs``
    (every pandas operation deep-copies them: the callers carry what they need once, at the end)."""
    df = df.copy(deep=False)
    df.attrs = {}
    codes, _ = group_codes(df)
    t = time_ns(df)
    nat = df["time"].isna().to_numpy()
    src = group_codes(df, "source")[0] if "source" in df.columns else np.zeros(len(df), dtype=np.int64)
    row = df["source_row"].to_numpy(dtype=np.int64) if "source_row" in df.columns else np.arange(len(df))
    in_file_order = is_sorted_by(src, row)
    # rows as read are in (source, row) order already: then a stable sort by (animal, no time,
    # time) alone gives the same order, and a faster one (see lexsort_small_keys)
    order = (lexsort_small_keys(t, nat, codes) if in_file_order and codes.size
             else np.lexsort((row, src, t, nat, codes)))
    if np.array_equal(order, np.arange(len(df))):
        return df.reset_index(drop=True)
    return df.iloc[order].reset_index(drop=True)


@contextmanager
def _engine_scope(engine: str | Engine | None) -> Iterator[Engine]:
    """The engine for ``engine``; one created here from a name is closed on exit, a given one is not."""
    eng = get_engine(engine)
    if eng is engine:
        yield eng
        return
    with eng:
        yield eng


@reused_heap()
def _clean_part(fixes: pd.DataFrame | tuple[str, list[str]], cfg: Config,
                deployments: pd.DataFrame | None) -> pd.DataFrame:
    """sort → clean → segment → clusters of one partition of whole animals (runs on a worker).

    ``fixes`` is the partition, or ``(dataset path, animal ids)`` for the worker to read.
    """
    if isinstance(fixes, tuple):
        from telemetry.io.dataset import read_dataset

        fixes = read_dataset(fixes[0], animals=fixes[1])
    out = _clean_steps(_sorted(fixes), cfg, deployments, lambda name: None)
    out.attrs = _kept_attrs(out.attrs)
    return out


@reused_heap()
def _finish_part(tracks: pd.DataFrame, cfg: Config, error_model: ErrorModel | None, smooth: bool,
                 states: bool) -> pd.DataFrame:
    """The steps after the error model, of one partition (runs on a worker)."""
    with reused_projections():  # the smoother and its outliers' predictions project the same fixes
        out = _finish_steps(tracks, cfg, error_model, smooth, states, lambda name: None)
    out.attrs = _kept_attrs(out.attrs)
    return out


def _merge_attrs(parts: list[pd.DataFrame]) -> dict:
    """The per-animal ``attrs`` of partitions of whole animals, merged (animals in id order)."""
    out: dict = {}
    for key in _PER_ANIMAL_ATTRS:
        merged = {}
        for part in parts:
            merged.update(part.attrs.get(key, {}))
        if merged:
            out[key] = dict(sorted(merged.items()))
    return out


def _process_distributed(data: object, cfg: Config, engine: Engine, *, deployments: pd.DataFrame | None,
                         smooth: bool, states: bool, error_model_prior: ErrorModel | None = None,
                         error_memo: dict | None = None) -> pd.DataFrame:
    """:func:`process` on a cluster: partitions of whole animals → workers → in-process order."""
    from telemetry.io import dataset

    path = dataset.single_dataset(data)
    if path is not None:
        # workers read their own animals from shared storage: the driver only reads the manifest
        groups = dataset.animal_groups(path, engine.n_partitions)
        parts: list[object] = [(str(path), ids) for ids in groups]
        sources = [dataset.dataset_report(path)]
    else:
        if isinstance(data, pd.DataFrame):
            fixes = data
        else:
            from telemetry.parsers import read

            fixes = read(data)
        sources = fixes.attrs.get("sources")
        parts = animal_partitions(fixes, engine.n_partitions)
    cleaned = engine.map(_clean_part, parts, cfg, deployments)
    error_model = None
    memo = FitMemo(dict(error_memo or {}))
    if smooth:  # the collars' error is pooled over all animals: estimated here, on the cleaned rows
        error_model = estimate_error_model(concat_parts(cleaned), cfg.smooth, prior=error_model_prior, memo=memo)
    results = engine.map(_finish_part, cleaned, cfg, error_model, smooth, states)
    tracks = gather_tracks(results)
    tracks.attrs = {"parameters": SharedAttr(cfg.to_dict()), "steps": _process_steps(smooth, states),
                    **{k: SharedAttr(v) for k, v in _merge_attrs(results).items()}}
    if error_model is not None:  # the classes any partition has, in class order (as in process)
        from telemetry.trajectory.error_model import ERROR_CLASSES

        present = {c for part in results for c in part.attrs.get("error_model", {}) if c != "note"}
        tracks.attrs["error_model"] = error_model.to_dict([c for c in ERROR_CLASSES if c in present])
    if memo.used:
        tracks.attrs["error_fit"] = memo.used
    if sources is not None:
        tracks.attrs["sources"] = sources
    return tracks


def _process_steps(smooth: bool, states: bool) -> list[str]:
    """The names :func:`process` records in ``attrs["steps"]``."""
    return ["sort", "clean", "segment", "clusters", *(["smooth"] if smooth else []), "metrics",
            *(["states"] if states else [])]


def gather_tracks(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Processed partitions of whole animals → the table :func:`process` gives in one piece.

    Each partition is already in ``(animal, time, …)`` order, so a stable sort on the
    animal code alone restores the in-process row order; ``cluster_id`` (numbered by
    animal, then first time, over the whole table) is renumbered from the per-partition
    numbers by ranking ``(animal code, local id)``.
    """
    tracks = concat_parts(parts)
    codes, _ = group_codes(tracks)
    order = np.argsort(codes, kind="stable")
    if not np.array_equal(order, np.arange(len(order))):
        tracks = tracks.iloc[order].reset_index(drop=True)
        codes = codes[order]
    if "cluster_id" in tracks.columns and len(parts) > 1:
        cid = tracks["cluster_id"]
        has = cid.notna().to_numpy()
        local = cid.to_numpy(dtype=np.float64, na_value=np.nan)[has].astype(np.int64)
        key = codes[has] * (int(local.max()) + 1 if local.size else 1) + local
        _, rank = np.unique(key, return_inverse=True)
        ids = np.zeros(len(tracks), dtype=np.int64)
        ids[has] = rank
        tracks["cluster_id"] = pd.arrays.IntegerArray(ids, ~has)
    return tracks


@dataclass
class Products:
    """The population-level products of a set of tracks (see :func:`analyse`)."""

    crossings: pd.DataFrame
    hotspots: pd.DataFrame
    corridors: pd.DataFrame | None
    home_ranges: pd.DataFrame
    ranges: Any = None
    """:class:`telemetry.trajectory.ranges.Ranges` (movement models, AKDE, speeds), or None."""


def analyse(
    tracks: pd.DataFrame, *, corridors: bool = True, step: Callable[[str], object] | None = None,
    engine: str | Engine | None = None, config: Config | None = None,
) -> Products:
    """Crossings → hotspots → corridors → home ranges of processed tracks.

    The one place these steps are chained, used by ``telemetry run``, ``map`` and ``export``.
    ``corridors=False`` skips the slowest layer (``corridors`` is then None). The parameters
    are the ``crossings``, ``hotspots``, ``corridors`` and ``homerange`` sections of ``config``
    (default: those the tracks were processed with, ``tracks.attrs["parameters"]``).

    With a Dask ``engine`` (see :mod:`telemetry.engine`) the per-animal steps — crossings,
    home ranges and each animal's corridor footprint — run on the workers, one task per
    partition of whole animals; hotspots (clustering all crossings), the footprint grid
    and count and the pooled corridor-behaviour steps are reductions on this process.
    The products are identical to the in-process ones.
    """
    from telemetry.corridor.corridors import corridors as find_corridors
    from telemetry.corridor.crossings import crossings
    from telemetry.corridor.hotspots import hotspots

    announce = step or (lambda name: None)
    cfg = config if config is not None else config_of(tracks)
    with _engine_scope(engine) as eng:
        if eng.distributed:
            return _analyse_distributed(tracks, eng, cfg, corridors=corridors, announce=announce)
    # home ranges need only the tracks: a thread computes them beside the crossings, which
    # use one core, and the corridors; "home ranges" is then the wait for it
    with ThreadPoolExecutor(max_workers=1) as pool:
        hr = pool.submit(_home_ranges_part, tracks, cfg.homerange)
        announce("crossings")
        cx = crossings(tracks, **dataclasses.asdict(cfg.crossings))
        announce("hotspots")
        hs = hotspots(cx, **dataclasses.asdict(cfg.hotspots))
        co = None
        if corridors:
            announce("corridors")
            co = find_corridors(tracks, hs, params=cfg.corridors)
        announce("home ranges")
        from telemetry.trajectory.ranges import with_akde

        classic, ranges = hr.result()
        return Products(crossings=cx, hotspots=hs, corridors=co, home_ranges=with_akde(classic, ranges),
                        ranges=ranges)


def config_of(tracks: pd.DataFrame) -> Config:
    """The parameters ``tracks`` were processed with (``attrs["parameters"]``, as every output
    records them), else the default profile's."""
    params = tracks.attrs.get("parameters")
    if not isinstance(params, dict) or not params:
        return Config()
    try:
        return Config().with_values(params)
    except TelemetryError:  # recorded by another version of the tool: its profile, current defaults
        try:
            return Config.for_species(str(params.get("species", DEFAULT_SPECIES)))
        except TelemetryError:
            return Config()


def _home_ranges_part(tracks: pd.DataFrame, params: HomeRangeParams) -> tuple[pd.DataFrame, Any]:
    """MCP/KDE home ranges and (with ``params.akde``) the movement-model ranges of a set of whole
    animals (runs on a worker; the AKDE rows are appended once all parts are in)."""
    from telemetry.trajectory.homerange import home_ranges
    from telemetry.trajectory.ranges import movement_ranges

    ranges = movement_ranges(tracks, params) if params.akde else None
    return home_ranges(tracks, params), ranges


def _analyse_distributed(tracks: pd.DataFrame, engine: Engine, cfg: Config, *, corridors: bool,
                         announce: Callable[[str], object]) -> Products:
    """:func:`analyse` with the per-animal steps on the cluster and the reductions here.

    Crossings run here, on all tracks: :func:`telemetry.corridor.crossings.crossings` clips
    the border polygons to the bounding box of *all* its input fixes (plus a margin from
    their largest error), so crossings of a subset of animals differ from the in-process
    ones in the last digits of ``depth_*_m`` (and can differ in certainty) near the box's
    edge. They are distributed once it accepts that extent as a parameter.
    """
    from telemetry.corridor.crossings import crossings
    from telemetry.corridor.hotspots import hotspots

    parts = animal_partitions(tracks, engine.n_partitions)
    # submit the per-animal home ranges first: the workers compute them while this process
    # does the crossings, hotspots and the corridor reductions
    hr_futures = engine.submit_map(_home_ranges_part, parts, cfg.homerange)
    announce("crossings")
    cx = crossings(tracks, **dataclasses.asdict(cfg.crossings))
    announce("hotspots")
    hs = hotspots(cx, **dataclasses.asdict(cfg.hotspots))  # population clustering of every animal's crossings
    co = None
    if corridors:
        announce("corridors")
        co = _corridors_distributed(tracks, hs, engine, cfg.corridors)
    announce("home ranges")
    from telemetry.trajectory.ranges import merge_ranges, with_akde

    gathered = engine.gather(hr_futures)
    hr = _gather_rows([g[0] for g in gathered], codes_of="animal_id")
    order = (tracks["animal_id"].cat.categories if isinstance(tracks["animal_id"].dtype, pd.CategoricalDtype)
             else pd.unique(tracks["animal_id"]))
    ranges = merge_ranges([g[1] for g in gathered], order) if cfg.homerange.akde else None
    return Products(crossings=cx, hotspots=hs, corridors=co, home_ranges=with_akde(hr, ranges), ranges=ranges)


def _gather_rows(parts: list[pd.DataFrame], *, by: list[str] | None = None, codes_of: str | None = None
                 ) -> pd.DataFrame:
    """Per-partition result tables → the in-process table (row order, dtypes, attrs).

    Empty parts are left out (their placeholder columns are typed ``object`` and would
    widen the others). Rows are put back in order with the same stable sort the step
    itself ends with (``by``), or by the categorical code of ``codes_of`` (tables built
    in animal-code order); each animal's rows come from one part, already in order.
    """
    attrs = dict(parts[0].attrs) if parts else {}
    full = [p for p in parts if len(p)]
    if not full:
        return parts[0]
    out = pd.concat(full, ignore_index=True, sort=False) if len(full) > 1 else full[0].reset_index(drop=True)
    if by is not None:
        out = out.sort_values(by, kind="stable").reset_index(drop=True)
    elif codes_of is not None:
        codes, _ = group_codes(out, codes_of)
        order = np.argsort(codes, kind="stable")
        out = out.iloc[order].reset_index(drop=True)
    out.attrs = attrs
    return out


def _variance_part(ta: object) -> np.ndarray:
    """Brownian motion variance σ²_m (m²/s) of the animals of one TrackArrays subset (on a worker)."""
    from telemetry.corridor.footprints import brownian_variance

    return brownian_variance(ta)


def _footprint_part(item: tuple[object, np.ndarray], grid: object, level: float, k_sigma: float,
                    var_m2_s: np.ndarray) -> list[tuple[int, np.ndarray, float]]:
    """Footprint cells of some animals on the shared grid (on a worker; see ``footprint_cells``)."""
    from telemetry.corridor.footprints import footprint_cells

    ta, animals = item
    # one thread: the worker is one of the cluster's cores already
    return footprint_cells(ta, grid, animals, level=level, k_sigma=k_sigma, var_m2_s=var_m2_s, n_threads=1)


def _corridors_distributed(tracks: pd.DataFrame, hotspots: pd.DataFrame, engine: Engine,
                           params: CorridorParams) -> pd.DataFrame:
    """:func:`telemetry.corridor.corridors.corridors` with the footprints map-reduced on the cluster.

    Only the footprint stack differs (:func:`_stack_on_cluster`); the pooled
    corridor-behaviour steps (neighbourhoods across animals), the polygons and their
    attributes are population steps and run here, as in process.
    """
    from telemetry.corridor.corridors import corridors

    return corridors(tracks, hotspots, params=params, stack=functools.partial(_stack_on_cluster, engine=engine))


def _stack_on_cluster(ta: TrackArrays, p: CorridorParams, engine: Engine) -> Footprints:
    """``stack_footprints`` as a map-reduce: σ²_m of each animal (map), the shared grid (here),
    each animal's footprint cells on it (map) and the count of animals per cell (reduce, here).

    The projection and the fix arrays are made here (the CRS depends on all fixes);
    workers get the TrackArrays of their own animals only.
    """
    from telemetry.corridor import footprints as fmod
    from telemetry.corridor.corridors import grid_options
    from telemetry.engine import balanced_groups

    k = len(ta.labels)
    groups = balanced_groups(np.bincount(ta.animal, minlength=k), engine.n_partitions)
    subsets = [fmod.subset_animals(ta, g) for g in groups]
    var = np.full(k, np.nan)
    for g, v in zip(groups, engine.map(_variance_part, subsets)):
        var[g] = v[g]
    grid = fmod.footprint_grid(ta, var, **grid_options(p))
    parts = engine.map(_footprint_part, list(zip(subsets, groups)), grid, p.footprint_level, p.k_sigma, var)
    return fmod.stack_cells(grid, parts, var)


@dataclass
class RunResult:
    """What :func:`run` produced: the tracks, the per-animal summary and the files written."""

    tracks: pd.DataFrame
    summary: pd.DataFrame
    quality: dict
    outputs: list[Path] = field(default_factory=list)
    products: Products | None = None


RUN_STEPS: tuple[str, ...] = (
    "read", "sort", "clean", "segment", "clusters", "smooth", "metrics", "states", "quality", "crossings", "hotspots",
    "corridors", "home ranges", "map", "exports",
)
"""The steps :func:`run` announces, in order (for progress displays and ``scripts/bench.py``).
``read`` is skipped when a table is given; with a Dask engine the process steps are
announced as one, ``"process on the cluster"``. ``quality`` (from ``sort`` on) and ``home
ranges`` (from ``crossings`` on) are computed on a thread beside the steps before them:
their announcement starts the wait for that result."""


def default_inputs() -> list[Path]:
    """The bundled synthetic sample: ``sample_tracks/`` here, else beside the package."""
    here = Path("sample_tracks")
    if here.is_dir():
        return [here]
    bundled = Path(__file__).resolve().parent.parent / "sample_tracks"
    if bundled.is_dir():
        return [bundled]
    raise TelemetryError("no input given and no sample_tracks/ folder found; pass files or folders")


@reused_heap()
def run(
    inputs: Iterable[str | os.PathLike[str]] | None = None,
    out_dir: str | os.PathLike[str] = "maps",
    config: Config | str | os.PathLike[str] | None = None,
    *,
    species: str | None = None,
    overrides: Iterable[str] = (),
    step: Callable[[str], object] | None = None,
    fixes: pd.DataFrame | None = None,
    grid_deg: float | None = None,
    engine: str | Engine | None = None,
    error_model: ErrorModel | None = None,
    zones: Any = None,
    zone_field: str | None = None,
    deployments: pd.DataFrame | None = None,
) -> RunResult:
    """The whole job: read → clean → segment → smooth → metrics → states → crossings →
    hotspots → corridors → home ranges → map → exports.

    Parameters
    ----------
    inputs : paths, optional
        Collar files or folders; default the bundled synthetic sample.
    out_dir : path
        Folder for the outputs, replaced as a whole when every output is written (built in
        a hidden sibling folder; an interrupted or failed run leaves the previous folder as
        it was; files no run wrote, such as a README, are kept):

        - ``map.html``: the interactive offline map (internal: exact locations);
        - ``public.geojson``: corridors, hotspots, crossing counts and home ranges
          generalised to a ``grid_deg`` grid and months — the file to hand on;
        - ``internal.gpkg``, ``tracks.parquet``: exact layers for the field team (every fix
          with its flag and metrics in the GeoParquet file; lines per animal and segment,
          crossings, hotspots, corridors, home ranges and clusters in the GeoPackage);
        - ``ranges.csv`` (movement model, AKDE 50/95 % areas with CIs beside MCP/KDE, mean
          speed and daily distance with CIs, per animal and resident period),
          ``speeds_daily.csv`` and ``range_share.csv`` (each country's — and each ``zones``
          area's — share of every range, with CIs; ``zone_sizes.csv`` with ``zones``);
        - ``crossings_by_month.csv``, ``track_summary.csv``, ``flag_summary.csv``,
          ``quality.json``, ``charts/*.png`` and ``index.html`` linking everything;
        - ``manifest.json``: tool version, parameters, inputs and outputs with sizes and
          SHA-256 (``telemetry check DIR`` verifies a folder against it).

        Same inputs and parameters give byte-identical files.
    config, species, overrides
        As for :func:`process`.
    step : callable, optional
        Called with the name of each step as it starts (progress display).
    fixes : DataFrame, optional
        An already-read fix table to use instead of reading ``inputs``.
    grid_deg : float, optional
        Generalisation grid of the public GeoJSON (degrees); default the configuration's
        ``public.grid_deg`` (0.1 = GBIF practice for highly sensitive species).
    engine : str or Engine, optional
        Where the per-animal steps run (:mod:`telemetry.engine`; default in-process). Reading,
        the quality summary, the reductions, the map and the exports run in this process.
    error_model : ErrorModel, optional
        A calibration of the collars' location error, as for :func:`process`.
    deployments : DataFrame, optional
        A deployment table, as for :func:`process` (default: Movebank reference data among
        the inputs, if any).

    Raises
    ------
    TelemetryError
        Also when the inputs hold no fix with a time and a position (say, Movebank reference
        data alone): the message names each file and what it held, before any work is done.
    """
    from telemetry.outputs.runfolder import check_writable, staged_folder, write_manifest
    from telemetry.parsers import read

    announce = step or (lambda name: None)
    final = Path(out_dir)
    # fail early: every option and the output folder are checked before anything is read
    check_writable(final)
    cfg = _resolve_config(config, species, overrides)
    if grid_deg is not None:
        cfg = cfg.with_values({"public": {"grid_deg": grid_deg}})
    zone_layer = None
    if zones is not None:
        from telemetry.corridor.zones import load_zones

        zone_layer = load_zones(zones, zone_field)
    paths = [Path(p) for p in inputs] if inputs else (default_inputs() if fixes is None else [])
    if fixes is None:
        announce("read")
        fixes = read(paths)
    require_fixes(fixes, paths)
    with staged_folder(final) as out:
        result = _run_into(out, fixes, cfg, announce, engine, error_model, zone_layer, deployments)
        write_manifest(out, inputs=paths, parameters=result.tracks.attrs.get("parameters"),
                       extra={"skipped_files": _skipped_files(result.tracks)})
    result.outputs = [final / Path(p).relative_to(out) for p in result.outputs]
    return result


def require_fixes(fixes: pd.DataFrame, paths: list[Path]) -> None:
    """Raise a :class:`TelemetryError` naming the inputs and what they held when no row of
    ``fixes`` has a time and both coordinates: nothing to clean, smooth or map."""
    if len(fixes) and bool((fixes["time"].notna() & fixes["lon"].notna() & fixes["lat"].notna()).any()):
        return
    held = []
    for r in fixes.attrs.get("sources") or []:
        what = r.get("format") or "not telemetry"
        if r.get("deployments"):
            what += f", {len(r['deployments'])} deployments"
        elif r.get("format"):
            what += f", {r.get('rows_read', 0)} rows, none with a time and a position"
        held.append(f"{r.get('source')} ({what})")
    where = "; ".join(held) or ", ".join(map(str, paths)) or "the input table"
    raise TelemetryError(f"no fixes with a time and a position to process in {where}")


def require_usable(tracks: pd.DataFrame) -> None:
    """Raise a :class:`TelemetryError` saying why when cleaning flagged every fix (nothing to map):
    the flags and their counts, as ``flag_summary.csv`` would give them.

    >>> df = pd.DataFrame({"animal_id": "a", "time": pd.to_datetime(["2022-01-01", "2022-01-02"], utc=True),
    ...                    "lon": [0.0, 0.0], "lat": [0.0, 0.0], "flag": pd.Categorical(["zero_coords", "zero_coords"])})
    >>> require_usable(df)
    Traceback (most recent call last):
    ...
    telemetry.errors.TelemetryError: no usable fixes: cleaning flagged every one of the 2 rows (zero_coords 2); nothing to map
    """
    from telemetry.trajectory.clean import flag_summary

    fs = flag_summary(tracks)
    if fs["usable"].sum() > 0:
        return
    reasons = fs.drop(columns=["rows", "usable"]).sum()
    why = ", ".join(f"{k} {v}" for k, v in reasons[reasons > 0].items())
    raise TelemetryError(f"no usable fixes: cleaning flagged every one of the {len(tracks)} rows ({why}); nothing to map")


def _resolve_config(config: Config | str | os.PathLike[str] | None, species: str | None,
                    overrides: Iterable[str]) -> Config:
    """The effective parameters (profile, file, ``--set``): bad values fail here, before any work."""
    if isinstance(config, Config):
        cfg = Config.for_species(species) if species is not None else config
        return cfg.with_overrides(overrides)
    return load_config(config, species=species, overrides=overrides)


def _skipped_files(tracks: pd.DataFrame) -> list[dict[str, str]]:
    """Input files that were not telemetry, with the reason (from the read report)."""
    return [{"source": r["source"], "reason": r.get("skipped_file", "")}
            for r in tracks.attrs.get("sources") or [] if r.get("format") is None and "skipped_file" in r]


def _run_into(out: Path, fixes: pd.DataFrame, cfg: Config, announce: Callable[[str], object],
              engine: str | Engine | None, error_model: ErrorModel | None, zones: Any = None,
              deployments: pd.DataFrame | None = None) -> RunResult:
    """:func:`run` after reading, writing into the (staging) folder ``out``."""
    from telemetry.io.atomic import frozen_heap
    from telemetry.io.points import write_tracks
    from telemetry.outputs.maps import MapBudget, render_map
    from telemetry.trajectory.quality import summarize
    from telemetry.trajectory.segment import cluster_table

    # the quality summary of the raw fixes is computed on a thread while they are processed
    # (each side with its own shallow copy: pandas may reorganise a frame's blocks in place);
    # "quality" is then the wait for it
    with _engine_scope(engine) as eng, ThreadPoolExecutor(max_workers=1) as pool:  # one cluster for both stages
        pending = pool.submit(summarize, fixes.copy(deep=False))
        tracks = process(fixes.copy(deep=False), cfg, engine=eng, step=announce, error_model=error_model,
                         deployments=deployments)
        fixes = None  # noqa: F841 - release the raw table (our reference to it) before the products
        require_usable(tracks)
        announce("quality")
        quality = pending.result()
        from telemetry.trajectory.diagnostics import processing_summary

        quality["processing"] = processing_summary(tracks.attrs)
        # tracks.parquet needs only the tracks: pyarrow encodes it (releasing the GIL) on the
        # thread while the products are computed, where one core is often idle
        tracks_file = pool.submit(write_tracks, tracks, out / "tracks.parquet")
        products = analyse(tracks, step=announce, engine=eng, config=cfg)
        cx, hs, co, hr = products.crossings, products.hotspots, products.corridors, products.home_ranges
        announce("map")
        written = [render_map(tracks, crossings=cx, hotspots=hs, corridors=co, home_ranges=hr,
                              clusters=cluster_table(tracks), out=out / "map.html", simplify_m=cfg.map.simplify_m,
                              animation=cfg.map.animation, budget=MapBudget.of(cfg.map), lang=cfg.pages.lang)]

        public_from = None
        if cfg.public.embargo_months > 0:
            pub_tracks, pub = public_source(tracks, products, cfg, engine=eng)
            public_from = (pub_tracks, (pub.crossings, pub.hotspots, pub.corridors, pub.home_ranges, pub.ranges))
        announce("exports")
        with frozen_heap():  # (see there: full garbage collections cost ~0.5 s of the exports per 1M fixes)
            summary = track_summary(tracks)
            written += _write_exports(out, tracks, products, quality, summary, cfg, tracks_written=tracks_file,
                                      public_from=public_from, range_tables=range_tables(products.ranges, cfg, zones))
    return RunResult(tracks=tracks, summary=summary, quality=quality, outputs=written, products=products)


def range_tables(ranges: Any, cfg: Config, zones: Any = None) -> dict[str, pd.DataFrame]:
    """The CSV tables of the movement-model ranges: ``ranges.csv``, ``speeds_daily.csv``,
    ``range_share.csv`` (countries, then ``zones``) and, with ``zones``, ``zone_sizes.csv``;
    empty without ranges (``homerange.akde`` off)."""
    if ranges is None:
        return {}
    from telemetry.corridor.range_share import range_shares, zone_sizes
    from telemetry.corridor.zones import load_zones

    ci = cfg.homerange.ci_level_pct
    shares = [range_shares(ranges, load_zones(None), kind="country", ci_level_pct=ci)]
    out = {"ranges.csv": ranges.table, "speeds_daily.csv": ranges.daily}
    if zones is not None:
        shares.append(range_shares(ranges, zones, kind="zone", ci_level_pct=ci))
        out["zone_sizes.csv"] = zone_sizes(zones, ranges.table)
    out["range_share.csv"] = pd.concat(shares, ignore_index=True)
    return out


def public_source(tracks: pd.DataFrame, products: Products, cfg: Config, *, corridors: bool = True,
                  engine: str | Engine | None = None) -> tuple[pd.DataFrame, Products]:
    """What public files are made from: the tracks and their products, or with an embargo
    (``public.embargo_months``) the fixes up to the embargo date and their own products."""
    if cfg.public.embargo_months <= 0:
        return tracks, products
    cut = embargoed(tracks, cfg.public.embargo_months)
    if not len(cut):
        return cut, Products(None, None, None, None)
    return cut, analyse(cut, corridors=corridors, engine=engine, config=cfg)


def embargoed(tracks: pd.DataFrame, months: int) -> pd.DataFrame:
    """The rows up to ``months`` calendar months before the last usable fix (attrs kept)."""
    t = tracks["time"][usable_mask(tracks)]
    if not t.notna().any():
        return tracks.iloc[:0]
    cut = pd.Timestamp(t.max()) - pd.DateOffset(months=int(months))
    out = tracks[(tracks["time"] <= cut).fillna(False).to_numpy(dtype=bool)].reset_index(drop=True)
    out.attrs = tracks.attrs
    return out


def _write_exports(out: Path, tracks: pd.DataFrame, products: Products, quality: dict, summary: pd.DataFrame,
                   cfg: Config, *, tracks_written: Future[None],
                   public_from: tuple[pd.DataFrame, tuple] | None = None,
                   range_tables: dict[str, pd.DataFrame] | None = None) -> list[Path]:
    """The files of :func:`run` after the map, into ``out``; returns them in listing order.

    ``summary`` is :func:`track_summary` of ``tracks`` (written as ``track_summary.csv``
    and the animal table of ``index.html``); ``tracks_written`` the writing of
    ``tracks.parquet`` (:func:`~telemetry.io.points.write_tracks`), under way on a thread.
    """
    from telemetry.io.atomic import atomic_write
    from telemetry.outputs.brief import pdf_font_note
    from telemetry.outputs.deliverables import write_deliverables
    from telemetry.trajectory.clean import flag_summary

    tables = [out / "tracks.parquet", out / "track_summary.csv", out / "flag_summary.csv", out / "quality.json"]
    font_note = pdf_font_note(cfg.pages.lang)
    if font_note:
        quality.setdefault("processing", {}).setdefault("notes", []).append(font_note)
    atomic_write(tables[1], lambda tmp: summary.to_csv(tmp, float_format="%.6g",
                                                       date_format="%Y-%m-%dT%H:%M:%SZ"))
    atomic_write(tables[2], lambda tmp: flag_summary(tracks).to_csv(tmp))
    atomic_write(tables[3], lambda tmp: Path(tmp).write_text(
        json.dumps(quality, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"))
    # every fix is in tracks.parquet: the GeoPackage gets lines (a GeoPackage of every fix was
    # the slowest output, ~4 s per million fixes, and duplicated the GeoParquet file).
    # tracks.parquet is complete before index.html lists it.
    return tables + write_deliverables(
        out, tracks, products.crossings, products.hotspots, products.corridors, products.home_ranges, quality,
        tracks.attrs.get("parameters"), grid_deg=cfg.public.grid_deg, licence=cfg.public.licence,
        charts=cfg.charts, public=cfg.public, public_from=public_from, fix_points=False, summary=summary,
        lang=cfg.pages.lang, tables=range_tables, ranges=products.ranges,
        steps_from_metrics=True,  # the tracks of process(), unchanged
        background=[tracks_written.result])


PROCESS_COLUMNS: tuple[str, ...] = (
    "segment_id", "cluster_id", "lon_s", "lat_s", "se_m", "sigma_m", "p_still", "resid_chi2", "step_m", "dt_s",
    "speed_kmh", "azimuth_deg", "turn_deg", "nsd_km2", "state", "p_resting", "p_moving", "p_travelling")
"""The columns :func:`process` adds to the fixes (a store's other columns are the fixes as read)."""


@dataclass
class UpdateResult:
    """What :func:`update` did: the store's tracks after it, the rows it added, the rows it
    skipped (already in the store: the same file, or the same rows of it, given again), the
    earliest new fix (alerts are new from there)."""

    tracks: pd.DataFrame
    added: int
    skipped: int
    first_new: pd.Timestamp | None


def stored_fixes(tracks: pd.DataFrame) -> pd.DataFrame:
    """The fixes as read, from processed tracks: the columns :func:`process` adds dropped and
    only the parsers' flags kept (cleaning sets the others again)."""
    from telemetry.schema import PARSER_FLAGS

    raw = tracks.drop(columns=[c for c in PROCESS_COLUMNS if c in tracks.columns])
    raw = raw.copy(deep=False)
    flag = raw["flag"]
    raw["flag"] = flag.where(flag.isin(PARSER_FLAGS))
    raw.attrs = {}
    return raw


def update(store: str | os.PathLike[str], inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
           config: Config | str | os.PathLike[str] | None = None, *, species: str | None = None,
           overrides: Iterable[str] = (), error_model: ErrorModel | None = None) -> UpdateResult:
    """Add the fixes of ``inputs`` to the track store ``store`` and reprocess.

    The store is a GeoParquet dataset partitioned by animal (:func:`telemetry.io.dataset.write_dataset`,
    as ``telemetry process --out DIR/`` writes; created when missing). Rows already in it (the
    same file, or the same line of it, given again: same ``source`` and ``source_row``) are
    skipped; the same fix in another file or format is kept and flagged ``duplicate`` by the
    cleaning, as when every file is processed at once. The result is identical, byte for byte,
    to :func:`process` of all the files ever added written with ``write_dataset``, whatever the
    order and batches they came in (given the same paths: ``source`` holds the path as given).

    Everything is reprocessed: the behavioural states come from each animal's whole track and
    the smoother runs backwards from the last fix, so new fixes can change any row;
    reprocessing all is what keeps the store equal to a fresh run. The slowest part, the
    maximum-likelihood fit of the location-error model, is taken from the store when what it
    reads is unchanged (it is fitted on the head of each animal's track, which a new day does
    not touch once an animal has more fixes than that head): bit for bit the same fit
    (:class:`telemetry.trajectory.error_estimate.FitMemo`). One day of 11 collars on 3 years at 4 h:
    ~4 s for the whole command (``scripts/bench.py --stages update``).
    """
    from telemetry.io.dataset import is_dataset, read_dataset, write_dataset
    from telemetry.parsers import concat, read

    if isinstance(config, Config):
        cfg = config.with_overrides(overrides)
    else:
        cfg = load_config(config, species=species, overrides=overrides)
    root = Path(store)
    if root.exists() and not is_dataset(root) and (not root.is_dir() or any(root.iterdir())):
        raise TelemetryError("exists and is not a track store (a telemetry dataset folder)", str(root))
    new = read(inputs)
    stored = read_dataset(root) if is_dataset(root) else None
    old = stored_fixes(stored) if stored is not None else None
    memo = stored.attrs.get("error_fit") if stored is not None else None
    skipped = 0
    if old is not None and len(old) and len(new):
        seen = pd.MultiIndex.from_arrays([old["source"].astype(str), old["source_row"].astype(np.int64)])
        key = pd.MultiIndex.from_arrays([new["source"].astype(str), new["source_row"].astype(np.int64)])
        known = key.isin(seen)
        skipped = int(known.sum())
        new = new[~known].reset_index(drop=True)
    first_new = pd.Timestamp(new["time"].min()) if len(new) and new["time"].notna().any() else None
    # joined as the parsers join files read together, so the types are those of one read of all
    fixes = new if old is None else concat([old, new])
    tracks = process(fixes, cfg, error_model=error_model, error_memo=memo)
    write_dataset(tracks, root)
    return UpdateResult(tracks=tracks, added=len(new), skipped=skipped, first_new=first_new)
