"""``telemetry update``: add new collar downloads to a track store, reprocess, print new alerts."""

from __future__ import annotations

import click

from telemetry.cli.options import config_options


@click.command("update")
@click.argument("store", type=click.Path(file_okay=False))
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@config_options
@click.option("--no-alerts", is_flag=True, help="Do not print the alerts the new fixes raise.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "csv"]), default="text", show_default=True,
              help="Format of the alerts on stdout.")
def update(store: str, inputs: tuple[str, ...], no_alerts: bool, fmt: str, species=None, config_path=None,
           overrides=()) -> None:
    """Add the fixes of INPUTS (files or folders) to STORE (a dataset folder, created if missing),
    skip what is already there, reprocess, and print the alerts seen since the first new fix.

    The store is then identical to `telemetry process ALL_FILES --out STORE/`."""
    import time

    from telemetry.config import load_config
    from telemetry.pipeline import update as update_store

    start = time.perf_counter()
    cfg = load_config(config_path, species=species, overrides=overrides)
    result = update_store(store, list(inputs), cfg)
    tracks = result.tracks
    click.echo(f"{store}: added {result.added:,} rows ({result.skipped:,} already in the store); "
               f"{len(tracks):,} rows, {tracks['animal_id'].nunique()} animals "
               f"({time.perf_counter() - start:.1f} s)", err=True)
    if no_alerts or result.first_new is None:
        return
    from telemetry.corridor.alerts import alerts
    from telemetry.outputs.alerts_page import format_alerts

    click.echo(format_alerts(alerts(tracks, cfg.alerts, since=result.first_new), fmt), nl=False)
