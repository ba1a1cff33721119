"""Options shared by the subcommands: reading collar files, and where the work runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from telemetry.errors import ConfigError
from telemetry.parsers.generic import KEYS as COLUMN_KEYS  # (one list: the reader's own)


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
        if key not in COLUMN_KEYS:
            raise ConfigError(f"--columns: unknown name '{key}' (use {', '.join(sorted(COLUMN_KEYS))})")
        mapping[key] = value
    return mapping


def species_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--species`` (a profile of :data:`telemetry.config.PROFILES`) to a command."""
    from telemetry.config import DEFAULT_SPECIES, PROFILES

    names = ", ".join(PROFILES)
    return click.option(
        "--species", default=None, metavar="PROFILE",
        help=f"Species profile (default {DEFAULT_SPECIES}): {names}. 'auto' takes the speed limit "
             "from each animal's own movement; see README 'Species profiles'.")(func)


def config_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--species``, ``--config`` and ``--set SECTION.NAME=VALUE`` (the same in every command)."""
    func = click.option("--set", "overrides", multiple=True, metavar="SECTION.NAME=VALUE",
                        help="Override one parameter, e.g. --set clean.max_speed_kmh=12 (repeatable).")(func)
    func = click.option("--config", "config_path", default=None, type=click.Path(dir_okay=False),
                        help="TOML file of parameters (start one with `telemetry config show`).")(func)
    return species_option(func)


def lang_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--lang`` (the language the pages open in; = ``--set pages.lang=…``)."""
    from telemetry.config import PAGE_LANGS

    return click.option("--lang", "lang", type=click.Choice(PAGE_LANGS), default=None,
                        help="Language the HTML pages open in and of brief.pdf: en, ru, kk, ky, zh (every page "
                             "switches between all five; = --set pages.lang=…; default en).")(func)


def with_lang(overrides: tuple[str, ...], lang: str | None) -> tuple[str, ...]:
    """``overrides`` plus ``pages.lang=LANG`` when ``--lang`` was given."""
    return overrides if lang is None else (*overrides, f"pages.lang={lang}")


def input_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--tz``, ``--columns``, ``--format`` and ``--animal-id`` to a command."""
    func = click.option("--animal-id", default=None, help="Animal id for files that name none.")(func)
    func = click.option("--format", "format_", default=None, metavar="NAME",
                        help="Force a parser instead of detecting (see `telemetry formats`).")(func)
    func = click.option("--columns", default=None, metavar="MAP",
                        help="Generic CSV mapping, e.g. time=DateTime,lon=X,lat=Y,animal=Name (UTM: "
                             "easting=E,northing=N,utm_zone=Zone; Argos: argos_lc=LC).")(func)
    func = click.option("--tz", default=None, metavar="ZONE",
                        help="IANA zone of local-time-only files (e.g. Asia/Almaty); never guessed.")(func)
    return func


def read_inputs(paths: tuple[str, ...], tz: str | None, columns: str | None, format_: str | None,
                animal_id: str | None):
    """Read the inputs with the shared options (lazy import keeps `--help` fast)."""
    from telemetry.parsers import read

    return read(list(paths), tz=tz, columns=parse_columns(columns), format=format_, animal_id=animal_id)


def engine_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--engine``, ``--scheduler`` and ``--workers`` (see :mod:`telemetry.engine`)."""
    func = click.option("--workers", "n_workers", type=click.IntRange(min=1), default=None, metavar="N",
                        help="Workers of the local Dask cluster (default: one per CPU core).")(func)
    func = click.option("--scheduler", default=None, metavar="ADDRESS",
                        help="Dask scheduler, e.g. tcp://10.0.0.5:8786 (implies --engine dask); "
                             "without it --engine dask starts a local cluster.")(func)
    func = click.option("--engine", type=click.Choice(["local", "dask"]), default=None,
                        help="Where the per-animal steps run: local (in this process, default) or dask.")(func)
    return func


def make_engine(engine: str | None, scheduler: str | None, n_workers: int | None):
    """The engine the options ask for (lazy import keeps `--help` fast); one-line errors."""
    from telemetry.engine import get_engine

    if n_workers is not None and scheduler:
        raise ConfigError("--workers is for the local cluster; the cluster at --scheduler has its own workers")
    if n_workers is not None and engine != "dask":
        raise ConfigError("--workers needs --engine dask")
    return get_engine(engine, scheduler=scheduler, n_workers=n_workers)


def calibration_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--calibration FILE`` (a table written by ``telemetry calibrate``)."""
    return click.option("--calibration", "calibration", default=None, type=click.Path(dir_okay=False),
                        help="Location-error calibration table from `telemetry calibrate` (CSV); "
                             "without it the error is estimated from the tracks.")(func)


def largest_uere_m(cfg) -> dict[str, float]:
    """Per error class, the largest UERE (m) a collar can err by: ``smooth.error_max_factor``
    times the class's default (the bound the smoother's own estimate is searched within)."""
    from telemetry.trajectory.error_estimate import default_errors

    return {c: u * cfg.smooth.error_max_factor for c, u in default_errors(cfg.smooth).uere_m.items()}


def load_calibration(path: str | None, cfg=None):
    """The :class:`~telemetry.trajectory.error_model.ErrorModel` of a calibration CSV (None: none).

    With ``cfg`` (a :class:`~telemetry.config.Config`), a class above :func:`largest_uere_m` is
    an error naming the file, line and column: a table made from fixes that moved (or edited by
    hand) would stop every fix of the class from being smoothed."""
    if path is None:
        return None
    import pandas as pd

    from telemetry.errors import TelemetryError
    from telemetry.trajectory.error_model import ErrorModel

    try:
        table = pd.read_csv(path)
    except FileNotFoundError:
        raise TelemetryError("no such calibration file", path) from None
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise TelemetryError(f"cannot read the calibration table: {err}", path) from None
    return ErrorModel.from_frame(table, path, most_m=None if cfg is None else largest_uere_m(cfg))


def read_deployments(path: str | None):
    """The deployment table of ``--deployments`` (None: none; a bad file: a
    :class:`~telemetry.errors.TelemetryError` naming it)."""
    if path is None:
        return None
    import pandas as pd

    from telemetry.deployments import check_times, deployment_table
    from telemetry.errors import TelemetryError

    try:
        dep = pd.read_csv(path, dtype=str)
    except FileNotFoundError:
        raise TelemetryError("no such deployment table", path) from None
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise TelemetryError(f"cannot read the deployment table: {err}", path) from None
    try:
        table = deployment_table(dep)
    except TelemetryError as err:
        raise TelemetryError(err.message, path) from None
    check_times(dep, path)
    return table
