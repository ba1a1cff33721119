"""The whole job, step by step: fixes → clean → segment → smooth → metrics → states.

Used by the ``telemetry process`` command and by Python users::

    import telemetry
    tracks = telemetry.process("sample_tracks/")                 # snow leopard defaults
    tracks = telemetry.process(fixes, species="generic", overrides=["clean.max_speed_kmh=80"])
    tracks.attrs["parameters"]                                   # every parameter used
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from telemetry.config import Config, load_config
from telemetry.errors import TelemetryError
from telemetry.trajectory._arrays import group_codes, time_ns, usable_mask
from telemetry.trajectory.clean import clean
from telemetry.trajectory.metrics import metrics
from telemetry.trajectory.segment import segment
from telemetry.trajectory.smooth import smooth as smooth_tracks
from telemetry.trajectory.states import label_states

__all__ = ["process", "track_summary", "analyse", "Products", "run", "RunResult", "RUN_STEPS"]


def process(
    data: pd.DataFrame | str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    config: Config | str | os.PathLike[str] | None = None,
    *,
    species: str | None = None,
    overrides: Iterable[str] = (),
    deployments: pd.DataFrame | None = None,
    smooth: bool = True,
    states: bool = True,
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
        Deployment table (``animal_id``, ``start``, ``end``) for :func:`telemetry.clean`.
    smooth, states : bool
        Run the Kalman smoother / the behavioural-state HMM.

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

    if isinstance(data, pd.DataFrame):
        fixes = data
    else:
        from telemetry.parsers import read

        fixes = read(data)
    sources = fixes.attrs.get("sources")
    # attrs are deep-copied by every pandas operation; carry them around once, at the end
    fixes = fixes.copy(deep=False)
    fixes.attrs = {}
    tracks = _sorted(fixes)
    steps = ["sort"]

    tracks = clean(tracks, cfg.clean, deployments=deployments)
    steps.append("clean")
    tracks = segment(tracks, cfg.segment, cluster_params=cfg.clusters)
    steps += ["segment", "clusters"]
    if smooth:
        tracks = smooth_tracks(tracks, params=cfg.smooth)
        steps.append("smooth")
    tracks = metrics(tracks)
    steps.append("metrics")
    if states:
        tracks = label_states(tracks, params=cfg.states)
        steps.append("states")
    tracks.attrs = {"parameters": cfg.to_dict(), "steps": steps}
    if sources is not None:
        tracks.attrs["sources"] = sources
    return tracks


def track_summary(tracks: pd.DataFrame) -> pd.DataFrame:
    """Per-animal summary of processed tracks.

    Returns
    -------
    pandas.DataFrame
        Index ``animal_id``; ``rows``, ``usable``, ``flagged``, ``segments``, ``clusters``,
        ``first``/``last`` (UTC time of usable fixes), ``days``, ``distance_km`` (sum of
        steps), ``median_step_h``.
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
            pairs = np.unique(np.column_stack([codes[m], ids[m]]), axis=0)
            out[name] = np.bincount(pairs[:, 0].astype(np.int64), minlength=k) if pairs.size else 0
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
    return out[out["rows"] > 0]


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    """Rows by (animal, time), rows without time last, file order breaking ties."""
    codes, _ = group_codes(df)
    t = time_ns(df)
    nat = df["time"].isna().to_numpy()
    src = group_codes(df, "source")[0] if "source" in df.columns else np.zeros(len(df), dtype=np.int64)
    row = df["source_row"].to_numpy(dtype=np.int64) if "source_row" in df.columns else np.arange(len(df))
    order = np.lexsort((row, src, t, nat, codes))
    if np.array_equal(order, np.arange(len(df))):
        return df.reset_index(drop=True)
    return df.iloc[order].reset_index(drop=True)


@dataclass
class Products:
    """The population-level products of a set of tracks (see :func:`analyse`)."""

    crossings: pd.DataFrame
    hotspots: pd.DataFrame
    corridors: pd.DataFrame | None
    home_ranges: pd.DataFrame


def analyse(
    tracks: pd.DataFrame, *, corridors: bool = True, step: Callable[[str], object] | None = None
) -> Products:
    """Crossings → hotspots → corridors → home ranges of processed tracks (default parameters).

    The one place these steps are chained, used by ``telemetry run``, ``map`` and ``export``.
    ``corridors=False`` skips the slowest layer (``corridors`` is then None).
    """
    from telemetry.corridor.corridors import corridors as find_corridors
    from telemetry.corridor.crossings import crossings
    from telemetry.corridor.hotspots import hotspots
    from telemetry.trajectory.homerange import home_ranges

    announce = step or (lambda name: None)
    announce("crossings and hotspots")
    cx = crossings(tracks)
    hs = hotspots(cx)
    co = None
    if corridors:
        announce("corridors")
        co = find_corridors(tracks, hs)
    announce("home ranges")
    return Products(crossings=cx, hotspots=hs, corridors=co, home_ranges=home_ranges(tracks))


@dataclass
class RunResult:
    """What :func:`run` produced: the tracks, the per-animal summary and the files written."""

    tracks: pd.DataFrame
    summary: pd.DataFrame
    quality: dict
    outputs: list[Path] = field(default_factory=list)
    products: Products | None = None


RUN_STEPS: tuple[str, ...] = (
    "read", "clean, segment, smooth, metrics, states", "crossings and hotspots", "corridors",
    "home ranges", "map", "exports",
)
"""The steps :func:`run` announces, in order (for progress displays)."""


def default_inputs() -> list[Path]:
    """The bundled synthetic sample: ``sample_tracks/`` here, else beside the package."""
    here = Path("sample_tracks")
    if here.is_dir():
        return [here]
    bundled = Path(__file__).resolve().parent.parent / "sample_tracks"
    if bundled.is_dir():
        return [bundled]
    raise TelemetryError("no input given and no sample_tracks/ folder found; pass files or folders")


def run(
    inputs: Iterable[str | os.PathLike[str]] | None = None,
    out_dir: str | os.PathLike[str] = "maps",
    config: Config | str | os.PathLike[str] | None = None,
    *,
    species: str | None = None,
    overrides: Iterable[str] = (),
    step: Callable[[str], object] | None = None,
    fixes: pd.DataFrame | None = None,
    grid_deg: float = 0.1,
) -> RunResult:
    """The whole job: read → clean → segment → smooth → metrics → states → crossings →
    hotspots → corridors → home ranges → map → exports.

    Parameters
    ----------
    inputs : paths, optional
        Collar files or folders; default the bundled synthetic sample.
    out_dir : path
        Folder for the outputs (created if missing):

        - ``map.html``: the interactive offline map (internal: exact locations);
        - ``public.geojson``: corridors, hotspots, crossing counts and home ranges
          generalised to a ``grid_deg`` grid and months — the file to hand on;
        - ``internal.gpkg``, ``tracks.parquet``: exact layers for the field team;
        - ``crossings_by_month.csv``, ``track_summary.csv``, ``flag_summary.csv``,
          ``quality.json``, ``charts/*.png`` and ``index.html`` linking everything.

        Same inputs and parameters give byte-identical files.
    config, species, overrides
        As for :func:`process`.
    step : callable, optional
        Called with the name of each step as it starts (progress display).
    fixes : DataFrame, optional
        An already-read fix table to use instead of reading ``inputs``.
    grid_deg : float
        Generalisation grid of the public GeoJSON (degrees; 0.1 = GBIF practice for
        highly sensitive species).
    """
    from telemetry.export import atomic_write, write_deliverables, write_tracks
    from telemetry.maps import render_map
    from telemetry.parsers import read
    from telemetry.quality import summarize
    from telemetry.trajectory.clean import flag_summary
    from telemetry.trajectory.segment import cluster_table

    announce = step or (lambda name: None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if fixes is None:
        announce("read")
        fixes = read([Path(p) for p in inputs] if inputs else default_inputs())
    quality = summarize(fixes)
    announce("clean, segment, smooth, metrics, states")
    tracks = process(fixes, config, species=species, overrides=overrides)
    summary = track_summary(tracks)
    products = analyse(tracks, step=announce)
    cx, hs, co, hr = products.crossings, products.hotspots, products.corridors, products.home_ranges
    announce("map")
    written = [render_map(tracks, crossings=cx, hotspots=hs, corridors=co, home_ranges=hr,
                          clusters=cluster_table(tracks), out=out / "map.html")]

    announce("exports")
    tables = [out / "tracks.parquet", out / "track_summary.csv", out / "flag_summary.csv", out / "quality.json"]
    write_tracks(tracks, tables[0])
    atomic_write(tables[1], lambda tmp: summary.to_csv(tmp, float_format="%.6g",
                                                       date_format="%Y-%m-%dT%H:%M:%SZ"))
    atomic_write(tables[2], lambda tmp: flag_summary(tracks).to_csv(tmp))
    atomic_write(tables[3], lambda tmp: Path(tmp).write_text(
        json.dumps(quality, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"))
    written += tables
    written += write_deliverables(out, tracks, cx, hs, co, hr, quality, tracks.attrs.get("parameters"),
                                  grid_deg=grid_deg)
    return RunResult(tracks=tracks, summary=summary, quality=quality, outputs=written, products=products)
