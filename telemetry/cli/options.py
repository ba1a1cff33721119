"""Options shared by the subcommands that read collar files."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from telemetry.errors import ConfigError

CANONICAL_KEYS = {"time", "date", "clock", "lon", "lat", "animal", "tag", "alt", "hdop", "sats", "fix_type"}


def parse_columns(text: str | None) -> dict[str, str]:
    """``time=DateTime,lon=X,lat=Y`` → mapping; one-line error for bad syntax or keys."""
    if not text:
        return {}
    mapping: dict[str, str] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise ConfigError(f"--columns: expected NAME=COLUMN, got '{part.strip()}'")
        if key not in CANONICAL_KEYS:
            raise ConfigError(f"--columns: unknown name '{key}' (use {', '.join(sorted(CANONICAL_KEYS))})")
        mapping[key] = value
    return mapping


def input_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--tz``, ``--columns``, ``--format`` and ``--animal-id`` to a command."""
    func = click.option("--animal-id", default=None, help="Animal id for files that name none.")(func)
    func = click.option("--format", "format_", default=None, metavar="NAME",
                        help="Force a parser instead of detecting (see `telemetry formats`).")(func)
    func = click.option("--columns", default=None, metavar="MAP",
                        help="Generic CSV mapping, e.g. time=DateTime,lon=X,lat=Y,animal=Name.")(func)
    func = click.option("--tz", default=None, metavar="ZONE",
                        help="IANA zone of local-time-only files (e.g. Asia/Almaty); never guessed.")(func)
    return func


def read_inputs(paths: tuple[str, ...], tz: str | None, columns: str | None, format_: str | None,
                animal_id: str | None):
    """Read the inputs with the shared options (lazy import keeps `--help` fast)."""
    import telemetry

    return telemetry.read(list(paths), tz=tz, columns=parse_columns(columns), format=format_,
                          animal_id=animal_id)
