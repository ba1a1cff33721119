"""``telemetry check``: is an output folder complete and unchanged since its run wrote it?"""

from __future__ import annotations

import click

from telemetry.errors import TelemetryError


@click.command()
@click.argument("folder", type=click.Path())
def check(folder: str) -> None:
    """Verify FOLDER (written by `telemetry run`) against its manifest.json.

    Every listed output must be there with its size and SHA-256. Prints 'complete' and
    exits 0, or one line per problem and exits 2.
    """
    from telemetry.outputs.runfolder import check_folder

    problems = check_folder(folder)
    if problems:
        for p in problems[:-1]:
            click.echo(f"{folder}: {p}", err=True)
        raise TelemetryError(problems[-1] + f" ({len(problems)} problem(s))", folder)
    click.echo(f"{folder}: complete")
