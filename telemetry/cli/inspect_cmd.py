"""``telemetry inspect``: what is in these files (placeholder, being written)."""

import click


@click.command()
@click.argument("paths", nargs=-1, required=True)
def inspect(paths: tuple[str, ...]) -> None:
    """Summarise collar files."""
    import telemetry

    df = telemetry.read(list(paths))
    click.echo(f"{len(df)} rows")
