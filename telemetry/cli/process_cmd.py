"""``telemetry process``: fixes → clean, segmented, smoothed, measured tracks.

A thin layer: parse options, call :func:`telemetry.pipeline.process`, write the table
atomically (temp file + rename) as GeoParquet, GeoPackage or CSV (by extension) with the
parameters in its metadata, print a per-animal summary.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import click
import numpy as np
import pandas as pd

from telemetry.errors import TelemetryError

FORMATS = {".parquet": "parquet", ".geoparquet": "parquet", ".gpkg": "gpkg", ".csv": "csv"}


@click.command("process")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--out", "-o", "out", required=True, type=click.Path(dir_okay=False),
              help="Output file: .parquet (GeoParquet), .gpkg or .csv.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="TOML file with [clean], [segment], [clusters], [smooth], [states] tables.")
@click.option("--species", default=None, help="Species profile: snow_leopard (default) or generic.")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.NAME=VALUE",
              help="Override one parameter, e.g. --set clean.max_speed_kmh=12 (repeatable).")
@click.option("--max-speed-kmh", type=float, default=None, help="Same as --set clean.max_speed_kmh=...")
@click.option("--gap-multiple", type=float, default=None, help="Same as --set segment.gap_multiple=...")
@click.option("--deployments", type=click.Path(dir_okay=False), default=None,
              help="CSV with animal_id,start,end: fixes outside are flagged.")
@click.option("--tz", default=None, help="Time zone of files that only have local times.")
@click.option("--no-smooth", is_flag=True, help="Skip the Kalman smoother.")
@click.option("--no-states", is_flag=True, help="Skip the behavioural-state HMM.")
def process(
    inputs: tuple[str, ...],
    out: str,
    config_file: str | None,
    species: str | None,
    overrides: tuple[str, ...],
    max_speed_kmh: float | None,
    gap_multiple: float | None,
    deployments: str | None,
    tz: str | None,
    no_smooth: bool,
    no_states: bool,
) -> None:
    """Clean, segment, smooth and measure the tracks in INPUT files/directories."""
    from telemetry.config import load_config
    from telemetry.parsers import read
    from telemetry.pipeline import process as run
    from telemetry.pipeline import track_summary
    from telemetry.trajectory.clean import flag_summary

    fmt = output_format(out)
    sets = list(overrides)
    if max_speed_kmh is not None:
        sets.append(f"clean.max_speed_kmh={max_speed_kmh}")
    if gap_multiple is not None:
        sets.append(f"segment.gap_multiple={gap_multiple}")
    cfg = load_config(config_file, species=species, overrides=sets)
    dep = _read_deployments(deployments) if deployments else None
    fixes = read(list(inputs), tz=tz)
    tracks = run(fixes, cfg, deployments=dep, smooth=not no_smooth, states=not no_states)
    write_tracks(tracks, out, fmt=fmt)

    summary = track_summary(tracks)
    flags = flag_summary(tracks)
    reasons = [c for c in flags.columns[2:] if flags[c].sum() > 0]
    table = summary.join(flags[reasons]) if reasons else summary
    cols = [c for c in ("rows", "usable", *reasons, "segments", "clusters", "days", "distance_km") if c in table]
    with pd.option_context("display.width", 200, "display.max_columns", 50, "display.float_format", "{:.1f}".format):
        click.echo(table[cols].to_string())
    missing = tracks.attrs.get("steps_missing") or []
    note = f" (not run: {', '.join(missing)})" if missing else ""
    click.echo(f"{len(tracks)} rows, {int(summary['usable'].sum())} usable → {out}{note}")


def output_format(path: str | os.PathLike[str]) -> str:
    """``parquet``, ``gpkg`` or ``csv`` from the file extension (anything else is an error)."""
    ext = Path(path).suffix.lower()
    if ext not in FORMATS:
        raise TelemetryError(f"unknown output type {ext or '(none)'!r}; use .parquet, .gpkg or .csv", str(path))
    return FORMATS[ext]


def write_tracks(tracks: pd.DataFrame, path: str | os.PathLike[str], *, fmt: str | None = None) -> None:
    """Write tracks atomically (temp file in the same folder, then rename).

    GeoParquet and GeoPackage get point geometry (EPSG:4326; none for rows without
    coordinates) and the parameters as metadata (Parquet key ``telemetry``, GeoPackage
    layer metadata ``telemetry_parameters``); CSV gets a ``<out>.json`` sidecar.
    """
    import geopandas as gpd

    fmt = fmt or output_format(path)
    path = Path(path)
    meta = json.dumps(
        {"parameters": tracks.attrs.get("parameters", {}), "steps": tracks.attrs.get("steps", [])},
        sort_keys=True, separators=(",", ":"), default=str,
    )
    df = tracks.copy(deep=False)
    df.attrs = {}
    if fmt == "csv":
        _atomic(path, lambda tmp: df.to_csv(tmp, index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ"))
        _atomic(path.with_name(path.name + ".json"), lambda tmp: Path(tmp).write_text(meta + "\n"))
        return
    lon = df["lon"].to_numpy(dtype=float, na_value=np.nan)
    lat = df["lat"].to_numpy(dtype=float, na_value=np.nan)
    geom = gpd.points_from_xy(lon, lat)
    geom[~(np.isfinite(lon) & np.isfinite(lat))] = None
    gdf = gpd.GeoDataFrame(df, geometry=geom, crs="EPSG:4326")
    if fmt == "parquet":
        import pyarrow.parquet as pq
        from geopandas.io.arrow import _geopandas_to_arrow

        # the converter behind GeoDataFrame.to_parquet (adds the GeoParquet "geo" metadata);
        # used directly so our own metadata can join it before the single write
        table = _geopandas_to_arrow(gdf, index=False)
        md = dict(table.schema.metadata or {})
        md[b"telemetry"] = meta.encode()
        table = table.replace_schema_metadata(md)
        _atomic(path, lambda tmp: pq.write_table(table, tmp))
    else:
        # GeoPackage has no categoricals or nullable ints: plain strings / floats
        for c in gdf.columns:
            if isinstance(gdf[c].dtype, pd.CategoricalDtype):
                gdf[c] = gdf[c].astype(object)
        _atomic(path, lambda tmp: gdf.to_file(tmp, driver="GPKG", layer="tracks", engine="pyogrio",
                                              layer_metadata={"telemetry_parameters": meta}))


def _atomic(path: Path, write) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise TelemetryError("output folder does not exist", str(folder))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=folder)
    os.close(fd)
    try:
        os.unlink(tmp)  # writers (GPKG) refuse to open an existing empty file
        write(tmp)
        os.replace(tmp, path)
    except OSError as err:
        raise TelemetryError(f"cannot write: {err.strerror or err}", str(path)) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _read_deployments(path: str) -> pd.DataFrame:
    try:
        dep = pd.read_csv(path, dtype=str)
    except (OSError, ValueError) as err:
        raise TelemetryError(f"cannot read the deployment table: {err}", path) from None
    dep.columns = [c.strip().lower() for c in dep.columns]
    missing = {"animal_id", "start", "end"} - set(dep.columns)
    if missing:
        raise TelemetryError(f"the deployment table needs columns {', '.join(sorted(missing))}", path)
    return dep
