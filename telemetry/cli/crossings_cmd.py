"""``telemetry crossings``: fixes → border crossings (and hotspots) as GeoJSON.

A thin layer: read the inputs, run :func:`telemetry.pipeline.process` when it is available
(else use the raw usable fixes), call :func:`telemetry.corridor.crossings.crossings` and
:func:`telemetry.corridor.hotspots.hotspots`, write GeoJSON atomically (temp file + rename)
with the parameters as a foreign member ``"telemetry"``, print a summary.
"""

from __future__ import annotations

from typing import Any

import click

from telemetry.cli.options import config_options, input_options, read_inputs
from telemetry.io.atomic import atomic_write
from telemetry.outputs.formats import write_geojson
from telemetry.schema import endpoint_columns


@click.command("crossings")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@input_options
@config_options
@click.option("--out", "-o", "out", required=True, type=click.Path(dir_okay=False),
              help="Crossings GeoJSON (one MultiPoint feature per crossing/excursion).")
@click.option("--hotspots", "hotspots_out", type=click.Path(dir_okay=False), default=None,
              help="Also write crossing hotspots (points on the border) to this GeoJSON.")
@click.option("--time-in-zones", "tiz_out", type=click.Path(dir_okay=False), default=None,
              help="Also write days and fixes per animal and zone to this CSV.")
@click.option("--zones", "zones_file", type=click.Path(dir_okay=False), default=None,
              help="Polygon layer (GeoPackage, Shapefile, GeoJSON…) instead of the bundled countries.")
@click.option("--zone-field", default=None, help="Field naming the zones of --zones.")
@click.option("--layer", default=None, help="Layer of a multi-layer --zones file.")
@click.option("--band-k", type=float, default=None,
              help="Certainty band as a multiple of the combined fix + border σ (= --set crossings.band_k=…; 2).")
@click.option("--border-error-m", type=float, default=None,
              help="1-σ border accuracy (m); default the layer's own (500 m for the bundled 1:10m borders, "
                   "100 m for --zones) (= --set crossings.border_error_m=…).")
@click.option("--min-stay-fixes", type=int, default=None,
              help="Certain fixes needed on a new side to confirm a crossing (= --set crossings.min_stay_fixes=…; 2).")
@click.option("--min-stay-h", type=float, default=None,
              help="Hours the new side must be held to confirm a crossing (= --set crossings.min_stay_h=…; 0).")
@click.option("--gap-km", type=float, default=None,
              help="Hotspots: split where crossings are farther apart than this along the border "
                   "(= --set hotspots.gap_km=…; 5).")
@click.option("--no-excursions", is_flag=True, help="Leave brief visits (excursions) out.")
@click.option("--outside-is-sea", is_flag=True,
              help="Fixes outside every --zones polygon start and end nothing, like the sea between countries "
                   "(default: the land around the zones is a side, so entering and leaving a zone are crossings).")
@click.option("--raw", is_flag=True, help="Do not run the track pipeline; use the raw usable fixes.")
def crossings(paths: tuple[str, ...], tz: str | None, columns: str | None, format_: str | None,
              animal_id: str | None, out: str, hotspots_out: str | None, tiz_out: str | None,
              zones_file: str | None, zone_field: str | None, layer: str | None, band_k: float | None,
              border_error_m: float | None, min_stay_fixes: int | None, min_stay_h: float | None,
              gap_km: float | None, no_excursions: bool, outside_is_sea: bool, raw: bool, species: str | None = None,
              config_path: str | None = None, overrides: tuple[str, ...] = ()) -> None:
    """Find where and when animals in PATHS cross borders (or enter/leave zones).

    Parameters come from the species profile, --config and --set (sections ``crossings`` and
    ``hotspots``); the flags are shortcuts for those --set values.
    """
    import dataclasses

    from telemetry.config import load_config
    from telemetry.corridor.crossings import crossings as find_crossings
    from telemetry.corridor.crossings import time_in_zones
    from telemetry.corridor.hotspots import hotspots
    from telemetry.corridor.zones import load_zones

    flags = {"crossings": {"band_k": band_k, "border_error_m": border_error_m, "min_stay_fixes": min_stay_fixes,
                           "min_stay_h": min_stay_h, "excursions": False if no_excursions else None,
                           "outside_is_place": False if outside_is_sea else None},
             "hotspots": {"gap_km": gap_km}}
    cfg = load_config(config_path, species=species, overrides=overrides)  # bad values fail before reading
    cfg = cfg.with_given(flags)
    cp = cfg.crossings
    fixes = read_inputs(paths, tz, columns, format_, animal_id)
    tracks, processed = _tracks(fixes, raw, cfg)
    zones = load_zones(zones_file, zone_field, layer=layer, border_error_m=cp.border_error_m) if zones_file else None
    cx = find_crossings(tracks, zones=zones, **dataclasses.asdict(cp))
    meta = {"parameters": cx.attrs.get("parameters", {}), "tracks": "processed" if processed else "raw fixes"}
    write_geojson(cx, out, meta)
    n_cross = int((cx["kind"] == "crossing").sum())
    n_exc = int((cx["kind"] == "excursion").sum())
    click.echo(f"{n_cross} crossings, {n_exc} excursions, {cx['animal_id'].nunique()} animals → {out}")
    if len(cx):
        summary = cx.groupby(["kind", *endpoint_columns(cx)]).size().rename("n").reset_index()
        click.echo(summary.to_string(index=False))
    if hotspots_out:
        hs = hotspots(cx, zones=zones, **dataclasses.asdict(cfg.hotspots))
        seg = hs.pop("segment") if "segment" in hs else None
        if seg is not None:
            hs["segment_wkt"] = [g.wkt if g is not None else None for g in seg]
        write_geojson(hs, hotspots_out, {"parameters": hs.attrs.get("parameters", {}),
                                         "unassigned_crossings": hs.attrs.get("unassigned", 0)})
        click.echo(f"{len(hs)} hotspots → {hotspots_out}")
    if tiz_out:
        tiz = time_in_zones(tracks, zones=zones, band_k=cp.band_k, border_error_m=cp.border_error_m,
                            smoothed=cp.smoothed)
        atomic_write(tiz_out, lambda tmp: tiz.to_csv(tmp, index=False, float_format="%.4f"))
        click.echo(f"time in zones → {tiz_out}")


def _tracks(fixes: Any, raw: bool, cfg: Any = None) -> tuple[Any, bool]:
    """Processed tracks (clean → … → smooth, with ``cfg``), or the raw fixes with ``--raw``."""
    if raw:
        return fixes, False
    from telemetry.pipeline import process

    return process(fixes, cfg), True


