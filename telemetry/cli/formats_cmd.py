"""``telemetry formats``: the collar formats this tool recognises."""

from __future__ import annotations

import click


@click.command()
def formats() -> None:
    """List the recognised formats, in the order they are tried."""
    import telemetry

    for name, label in telemetry.formats():
        click.echo(f"{name:22s} {label}")
