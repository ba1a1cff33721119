"""``telemetry corridors``: collar files → population corridor polygons (GeoJSON, GeoPackage).

A thin layer: read the inputs with the shared options, run :func:`telemetry.process`
(clean, segment, smooth) when the pipeline is available, call
:func:`telemetry.corridor.corridors.corridor_layers`, write the layers atomically
(temp file in the output folder, then :func:`os.replace`).

Files written to ``--out DIR``::

    corridors.geojson        polygons (RFC 7946, EPSG:4326)
    corridors.gpkg           layer "corridors" (+ "corridor_steps" with --include-steps)
    corridors.json           parameters and per-animal Brownian motion variance
    corridor_steps.geojson   only with --include-steps: exact step lines (sensitive)
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from telemetry.cli.options import config_options, input_options, read_inputs
from telemetry.errors import TelemetryError
from telemetry.io.atomic import atomic_write


@click.command("corridors")
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@input_options
@click.option("--out", "-o", "out", required=True, type=click.Path(file_okay=False),
              help="Output folder (created if missing).")
@click.option("--method", "methods", multiple=True, type=click.Choice(["footprint", "behaviour"]),
              help="Corridor method(s) (default both; repeatable).")
@click.option("--cell-m", type=float, default=None, help="Footprint grid cell (m); default from the data (half the bridges' median width, at least 250).")
@click.option("--min-animals", type=int, default=None, help="Animals a behaviour corridor needs (default 2).")
@click.option("--hotspots", "hotspots_file", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Border-crossing hotspots (GeoJSON/GeoPackage with name, point geometry) to link.")
@config_options
@click.option("--raw", is_flag=True, help="Use the fixes as read (no cleaning/smoothing).")
@click.option("--include-steps", is_flag=True,
              help="Also write the corridor steps (exact positions: not for public release).")
def corridors(inputs: tuple[str, ...], tz, columns, format_, animal_id, out: str, methods: tuple[str, ...],
              cell_m: float | None, min_animals: int | None, hotspots_file: str | None,
              overrides: tuple[str, ...], raw: bool, include_steps: bool, species: str | None = None,
              config_path: str | None = None) -> None:
    """Movement corridors shared by several animals, and which of them cross borders.

    Parameters come from the species profile, --config and --set (section ``corridors``, e.g.
    ``--set corridors.speed_prop=0.8``); --method, --cell-m and --min-animals are shortcuts.
    """
    from telemetry.config import load_config
    from telemetry.corridor.corridors import corridor_layers

    flags = {"methods": list(methods) or None, "cell_m": cell_m, "min_animals": min_animals}
    cfg = load_config(config_path, species=species, overrides=overrides)  # bad values fail before reading
    cfg = cfg.with_given({"corridors": flags})
    params = cfg.corridors
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise TelemetryError("not a folder", str(folder))
    hotspots = _read_hotspots(hotspots_file) if hotspots_file else None

    tracks = read_inputs(inputs, tz, columns, format_, animal_id)
    steps_run = "raw fixes"
    if not raw:
        from telemetry.pipeline import process

        tracks = process(tracks, cfg)
        steps_run = "+".join(tracks.attrs.get("steps", [])) or "processed"
    layers = corridor_layers(tracks, hotspots=hotspots, params=params)
    polys, steps = layers["corridors"], layers["corridor_steps"]

    folder.mkdir(parents=True, exist_ok=True)
    meta = {"parameters": polys.attrs.get("parameters", {}), "tracks": steps_run,
            "brownian_variance_m2_s": polys.attrs.get("brownian_variance_m2_s", {}),
            **{k: polys.attrs[k] for k in ("footprint_cell_m", "footprint_cell_source") if k in polys.attrs}}
    polys = _plain(polys)
    atomic_write(folder / "corridors.geojson", lambda tmp: polys.to_file(tmp, driver="GeoJSON", engine="pyogrio",
                                                                    layer="corridors",
                                                                    layer_options={"RFC7946": "YES"}))

    def gpkg(tmp: str) -> None:
        text = json.dumps(meta, sort_keys=True, default=str)
        polys.to_file(tmp, driver="GPKG", layer="corridors", engine="pyogrio",
                      layer_metadata={"telemetry_parameters": text})
        if include_steps:
            _plain(steps).to_file(tmp, driver="GPKG", layer="corridor_steps", engine="pyogrio", append=True)

    atomic_write(folder / "corridors.gpkg", gpkg)
    atomic_write(folder / "corridors.json",
            lambda tmp: Path(tmp).write_text(json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n"))
    if include_steps:
        atomic_write(folder / "corridor_steps.geojson",
                lambda tmp: _plain(steps).to_file(tmp, driver="GeoJSON", engine="pyogrio", layer="corridor_steps",
                                                  layer_options={"RFC7946": "YES"}))
    counts = polys.groupby("method").size().to_dict() if len(polys) else {}
    click.echo(f"{len(polys)} corridor polygons ({', '.join(f'{k}: {v}' for k, v in counts.items()) or 'none'}), "
               f"{int(polys['cross_border'].sum()) if len(polys) else 0} cross-border, "
               f"{len(steps)} corridor steps → {folder}")


def _read_hotspots(path: str):
    import geopandas as gpd

    try:
        gdf = gpd.read_file(path, engine="pyogrio")
    except Exception as err:  # pyogrio raises its own error types for unreadable files
        raise TelemetryError(f"cannot read hotspots: {err}", path) from None
    if "name" not in gdf.columns:
        raise TelemetryError("the hotspots file needs a 'name' column", path)
    return gdf


def _plain(gdf):
    """Columns GDAL can write (categoricals → str); no attrs."""
    import pandas as pd

    gdf = gdf.copy()
    gdf.attrs = {}
    for c in gdf.columns:
        if isinstance(gdf[c].dtype, pd.CategoricalDtype):
            gdf[c] = gdf[c].astype(object)
    return gdf


