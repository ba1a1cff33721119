"""``telemetry process``: fixes → clean, segmented, smoothed, measured tracks.

A thin layer: parse options, call :func:`telemetry.pipeline.process`, write the table
atomically (temp file + rename) as GeoParquet, GeoPackage or CSV (by extension) with the
parameters in its metadata, print a per-animal summary. An output without a suffix (or
``--partitioned``) is a GeoParquet dataset folder partitioned by animal
(:mod:`telemetry.io.dataset`). ``--engine dask`` runs the animals on a Dask cluster; a dataset
given as the only INPUT is then read by the workers, each its own animals.
"""

from __future__ import annotations

import os

import click
import pandas as pd

from telemetry.cli.options import (
    calibration_option,
    config_options,
    engine_options,
    load_calibration,
    make_engine,
    read_deployments,
)
from telemetry.io.points import output_format, write_tracks
from telemetry.trajectory.diagnostics import report_lines as model_report


@click.command("process")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--out", "-o", "out", required=True, type=click.Path(),
              help="Output file: .parquet (GeoParquet), .gpkg or .csv; a name without suffix is a "
                   "GeoParquet dataset folder partitioned by animal.")
@click.option("--partitioned", is_flag=True,
              help="Write --out as a GeoParquet dataset folder partitioned by animal, whatever its name.")
@config_options
@click.option("--max-speed-kmh", type=float, default=None, help="Same as --set clean.max_speed_kmh=...")
@click.option("--gap-multiple", type=float, default=None, help="Same as --set segment.gap_multiple=...")
@click.option("--deployments", type=click.Path(dir_okay=False), default=None,
              help="CSV with animal_id,start,end (or Movebank reference data: animal-id, deploy-on-date, deploy-off-date): fixes outside are flagged. Movebank reference data among the INPUT files is used without it.")
@click.option("--tz", default=None, help="Time zone of files that only have local times.")
@click.option("--no-smooth", is_flag=True, help="Skip the Kalman smoother.")
@click.option("--no-states", is_flag=True, help="Skip the behavioural-state HMM.")
@calibration_option
@engine_options
def process(
    inputs: tuple[str, ...],
    out: str,
    partitioned: bool,
    config_path: str | None,
    species: str | None,
    overrides: tuple[str, ...],
    max_speed_kmh: float | None,
    gap_multiple: float | None,
    deployments: str | None,
    tz: str | None,
    no_smooth: bool,
    no_states: bool,
    calibration: str | None,
    engine: str | None,
    scheduler: str | None,
    n_workers: int | None,
) -> None:
    """Clean, segment, smooth and measure the tracks in INPUT files/directories."""
    from telemetry.config import load_config
    from telemetry.io.dataset import single_dataset, write_dataset
    from telemetry.parsers import read
    from telemetry.pipeline import process as run
    from telemetry.pipeline import require_fixes
    from telemetry.trajectory.clean import flag_summary
    from telemetry.trajectory.summary import track_summary

    as_dataset = partitioned or is_dataset_path(out)
    fmt = None if as_dataset else output_format(out)
    sets = list(overrides)
    if max_speed_kmh is not None:
        sets.append(f"clean.max_speed_kmh={max_speed_kmh}")
    if gap_multiple is not None:
        sets.append(f"segment.gap_multiple={gap_multiple}")
    cfg = load_config(config_path, species=species, overrides=sets)
    dep = read_deployments(deployments)
    error_model = load_calibration(calibration, cfg)
    with make_engine(engine, scheduler, n_workers) as compute:
        # a dataset on a cluster is read by the workers; anything else is read here
        data = inputs[0] if compute.distributed and single_dataset(list(inputs)) else read(list(inputs), tz=tz)
        if isinstance(data, pd.DataFrame):
            require_fixes(data, list(inputs))  # (say, Movebank reference data alone: nothing to process)
        tracks = run(data, cfg, deployments=dep, smooth=not no_smooth, states=not no_states, engine=compute,
                     error_model=error_model)
    if as_dataset:
        write_dataset(tracks, out)
    else:
        write_tracks(tracks, out, fmt=fmt)

    summary = track_summary(tracks)
    flags = flag_summary(tracks)
    reasons = [c for c in flags.columns[2:] if flags[c].sum() > 0]
    table = summary.join(flags[reasons]) if reasons else summary
    cols = [c for c in ("rows", "usable", *reasons, "segments", "clusters", "days", "distance_km") if c in table]
    with pd.option_context("display.width", 200, "display.max_columns", 50, "display.float_format", "{:.1f}".format):
        click.echo(table[cols].to_string())
    for line in model_report(tracks.attrs):
        click.echo(line)
    click.echo(f"{len(tracks)} rows, {int(summary['usable'].sum())} usable → {out}")


def is_dataset_path(out: str) -> bool:
    """True if ``--out`` names a dataset folder: no suffix, a trailing slash or an existing folder."""
    from pathlib import Path

    return out.endswith(("/", os.sep)) or Path(out).is_dir() or not Path(out).suffix
