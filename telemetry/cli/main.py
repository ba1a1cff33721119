"""Entry point of the ``telemetry`` command: groups the subcommands, turns errors into one line."""

from __future__ import annotations

import sys

import click

from telemetry.errors import TelemetryError
from telemetry.version import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="telemetry")
def cli() -> None:
    """Wildlife GPS-collar telemetry: read, clean, smooth, find border crossings and corridors."""


def _register() -> None:
    from telemetry.cli import (
        alerts_cmd,
        calibrate_cmd,
        check_cmd,
        config_cmd,
        corridors_cmd,
        crossings_cmd,
        export_cmd,
        formats_cmd,
        inspect_cmd,
        map_cmd,
        process_cmd,
        run_cmd,
        update_cmd,
    )

    for command in (run_cmd.run, inspect_cmd.inspect, process_cmd.process, crossings_cmd.crossings,
                    corridors_cmd.corridors, map_cmd.map_, export_cmd.export, formats_cmd.formats,
                    calibrate_cmd.calibrate, check_cmd.check, config_cmd.config, alerts_cmd.alerts,
                    update_cmd.update):
        cli.add_command(command)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; bad input → one line on stderr and exit status 2, never a traceback."""
    _register()
    try:
        cli.main(args=argv, prog_name="telemetry", standalone_mode=False)
    except TelemetryError as err:
        click.echo(f"telemetry: error: {err}", err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("telemetry: aborted", err=True)
        return 130
    except click.ClickException as err:
        err.show()
        return 2
    except KeyboardInterrupt:
        click.echo("telemetry: interrupted", err=True)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as err:  # a file-system problem is the user's to fix, not a bug
        where = f"{err.filename}: " if getattr(err, "filename", None) else ""
        click.echo(f"telemetry: error: {where}{err.strerror or err}", err=True)
        return 2
    except Exception as err:  # a bug: still one line, with a pointer to get the traceback
        click.echo(
            f"telemetry: internal error: {type(err).__name__}: {err} "
            "(set TELEMETRY_DEBUG=1 for a traceback and please report it)",
            err=True,
        )
        import os

        if os.environ.get("TELEMETRY_DEBUG"):
            raise
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
