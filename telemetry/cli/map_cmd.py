"""``telemetry map``: collar files → one self-contained offline HTML map.

A thin layer: read the inputs with the shared options, run :func:`telemetry.process`,
compute crossings, hotspots, corridors and home ranges with the configured parameters, and
call :func:`telemetry.outputs.maps.render_map` (atomic write). That map holds exact positions: it
is an internal product (it says so in its title and legend). ``--audience public`` draws only the
generalised public layers instead (:func:`telemetry.outputs.maps.render_public_map`), the page
``telemetry run`` writes as ``public.html``.
"""

from __future__ import annotations

import time

import click

from telemetry.cli.options import config_options, input_options, lang_option, read_inputs, with_lang


@click.command("map")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@input_options
@config_options
@click.option("--out", "-o", "out", required=True, type=click.Path(dir_okay=False),
              help="HTML file to write (self-contained, works offline).")
@click.option("--title", default="Collar telemetry: tracks and cross-border corridors", show_default=True,
              help="Map title (the sensitivity note is always added).")
@click.option("--simplify-m", type=float, default=None,
              help="Track simplification tolerance (m); fixes keep full detail (= --set map.simplify_m=…; 50).")
@click.option("--audience", type=click.Choice(["internal", "public"]), default="internal", show_default=True,
              help="internal: exact tracks, fixes and crossings (for the team); public: only the generalised "
                   "public layers (public.geojson's), safe to publish.")
@click.option("--no-corridors", is_flag=True, help="Skip the corridor polygons (the slowest layer).")
@click.option("--no-animation", is_flag=True, help="Leave the time slider out (= --set map.animation=false).")
@lang_option
def map_(paths: tuple[str, ...], tz: str | None, columns: str | None, format_: str | None,
         animal_id: str | None, out: str, title: str, simplify_m: float | None, audience: str, no_corridors: bool,
         no_animation: bool, species: str | None = None, config_path: str | None = None,
         overrides: tuple[str, ...] = (), lang: str | None = None) -> None:
    """Draw the tracks, crossings, hotspots, corridors and home ranges of PATHS on an offline map."""
    from telemetry.config import load_config
    from telemetry.outputs.maps import MapBudget, render_map
    from telemetry.pipeline import analyse, process

    start = time.perf_counter()
    flags = {"simplify_m": simplify_m, "animation": False if no_animation else None}
    cfg = load_config(config_path, species=species, overrides=with_lang(overrides, lang))  # bad values fail before reading
    cfg = cfg.with_given({"map": flags})
    tracks = process(read_inputs(paths, tz, columns, format_, animal_id), cfg)
    products = analyse(tracks, corridors=not no_corridors, config=cfg)
    cx, hs, corr = products.crossings, products.hotspots, products.corridors
    if audience == "public":
        from telemetry.outputs.layers import export_metadata, public_layers
        from telemetry.outputs.maps import render_public_map, study_extent
        from telemetry.pipeline import public_source

        pub_tracks, src = public_source(tracks, products, cfg, corridors=not no_corridors)  # (an embargo)
        pub = public_layers(src.crossings, src.hotspots, src.corridors, src.home_ranges, grid_deg=cfg.public.grid_deg,
                            min_animals=cfg.public.min_animals, min_confidence=cfg.public.min_confidence)
        meta = export_metadata(audience="public", grid_deg=cfg.public.grid_deg, tracks=pub_tracks, layers=pub,
                               licence=cfg.public.licence, study=cfg.public.study)
        path = render_public_map(pub, meta, out=out, extent=study_extent(pub_tracks), lang=cfg.pages.lang)
    else:
        path = render_map(tracks, crossings=cx, hotspots=hs, corridors=corr, home_ranges=products.home_ranges,
                          out=out, title=title, simplify_m=cfg.map.simplify_m, animation=cfg.map.animation,
                          budget=MapBudget.of(cfg.map), lang=cfg.pages.lang)
    size_mb = path.stat().st_size / 1e6
    click.echo(f"{tracks['animal_id'].nunique()} animals, {len(cx)} crossings, {len(hs)} hotspots, "
               f"{0 if corr is None else len(corr)} corridor polygons → {path} ({size_mb:.2f} MB, "
               f"{time.perf_counter() - start:.0f} s)")
