"""``telemetry export``: collar files → GeoJSON / GeoPackage / GeoParquet / CSV for others.

A thin layer: read the inputs, run :func:`telemetry.process`, crossings, hotspots,
corridors and home ranges, build the public (generalised) or internal (exact) layers
with :mod:`telemetry.outputs.layers` and write them atomically in the format of ``--out``.

``--audience public`` (the default, for every format) writes only aggregates generalised
to a ``--grid-deg`` grid and to months; ``--audience internal --precise`` writes exact
positions and times and warns on stderr.
"""

from __future__ import annotations

import click

from telemetry.cli.options import config_options, input_options, read_inputs
from telemetry.errors import TelemetryError


@click.command("export")
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@input_options
@click.option("--out", "-o", "out", required=True, type=click.Path(dir_okay=False),
              help="Output file: .geojson (RFC 7946), .gpkg (one layer per product), .parquet (GeoParquet) "
                   "or .csv (geometry as WKT); tables get a 'layer' column.")
@click.option("--audience", type=click.Choice(["public", "internal"]), default="public", show_default=True,
              help="public: generalised aggregates safe to publish; internal: exact layers (needs --precise).")
@click.option("--precise", is_flag=True, help="Confirm that exact positions and times may be written (internal).")
@click.option("--grid-deg", type=float, default=None,
              help="Public generalisation grid in degrees (GBIF: 0.1 high, 0.01 medium sensitivity; "
                   "= --set public.grid_deg=…; 0.1).")
@click.option("--layer", "layers", multiple=True, metavar="NAME",
              help="Only these products (repeatable): public corridors, hotspots, crossing_counts, home_ranges; "
                   "internal also tracks, crossings, clusters.")
@click.option("--licence", default=None, help="Data licence recorded in the metadata (= --set public.licence=…; CC-BY-4.0).")
@click.option("--generated", default=None, metavar="TEXT",
              help="Value of the 'generated' metadata field (default: derived from the data, for identical reruns).")
@config_options
def export(inputs: tuple[str, ...], tz, columns, format_, animal_id, out: str, audience: str, precise: bool,
           grid_deg: float | None, layers: tuple[str, ...], licence: str | None, generated: str | None,
           config_path: str | None, species: str | None, overrides: tuple[str, ...]) -> None:
    """Export corridors, hotspots, crossings and home ranges of the animals in INPUTS."""
    from telemetry.outputs import formats, generalise
    from telemetry.outputs import layers as lay

    fmt = formats.export_format(out)
    if audience == "public" and precise:
        raise TelemetryError("--precise needs --audience internal (public exports are always generalised)")
    if audience == "internal" and not precise:
        raise TelemetryError("internal exports hold exact positions of a sensitive species; "
                             "add --precise to confirm")
    from telemetry.config import load_config

    cfg = load_config(config_path, species=species, overrides=overrides)  # bad values fail before reading
    try:
        generalise.check_grid_deg(cfg.public.grid_deg if grid_deg is None else grid_deg)
    except ValueError as err:
        raise TelemetryError(f"--grid-deg: {err}") from None
    cfg = cfg.with_given({"public": {"grid_deg": grid_deg, "licence": licence}})
    grid_deg, licence = cfg.public.grid_deg, cfg.public.licence
    known = lay.PUBLIC_LAYERS if audience == "public" else lay.INTERNAL_LAYERS
    bad = sorted(set(layers) - set(known))
    if bad:
        raise TelemetryError(f"--layer: unknown for --audience {audience}: {', '.join(bad)} "
                             f"(use {', '.join(known)})")
    if precise:
        click.echo("telemetry: warning: writing EXACT positions and times of a sensitive species to "
                   f"{out}; do not publish or share it outside the team", err=True)

    from telemetry.pipeline import analyse, process

    fixes = read_inputs(inputs, tz, columns, format_, animal_id)
    tracks = process(fixes, cfg)
    products = analyse(tracks, config=cfg)
    cx, hs, co, hr = products.crossings, products.hotspots, products.corridors, products.home_ranges
    if audience == "public":
        from telemetry.pipeline import public_source

        tracks, src = public_source(tracks, products, cfg)  # the fixes up to an embargo date, if any
        cx, hs, co, hr = src.crossings, src.hotspots, src.corridors, src.home_ranges
        built = lay.public_layers(cx, hs, co, hr, grid_deg=grid_deg, min_animals=cfg.public.min_animals,
                                  min_confidence=cfg.public.min_confidence)
    else:
        built = lay.internal_layers(tracks, cx, hs, co, hr)
    if layers:
        built = {k: v for k, v in built.items() if k in layers}
    params = lay.layer_parameters(tracks.attrs.get("parameters", {}), crossings=cx, hotspots=hs, corridors=co)
    meta = lay.export_metadata(audience=audience, grid_deg=grid_deg if audience == "public" else None,
                               params=params, generated=generated, tracks=tracks, layers=built, licence=licence,
                               study=cfg.public.study)
    formats.write_layers(built, out, meta, fmt)
    counts = ", ".join(f"{k}: {len(v)}" for k, v in built.items())
    how = f"generalised to {grid_deg}° and months" if audience == "public" else "EXACT"
    click.echo(f"{audience} export ({how}) → {out} [{counts}]")
