"""``telemetry formats``: the collar formats this tool recognises."""

from __future__ import annotations

import click


@click.command()
def formats() -> None:
    """List the recognised formats, in the order they are tried."""
    from telemetry.parsers import formats as known_formats

    for name, label in known_formats():
        click.echo(f"{name:22s} {label}")
