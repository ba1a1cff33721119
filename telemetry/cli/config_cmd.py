"""``telemetry config show``: the effective parameters as TOML, to start a config file from."""

from __future__ import annotations

import json
import math
from typing import Any

import click


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("inf" if v > 0 else "-inf") if not math.isnan(v) else "nan"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def to_toml(params: dict[str, Any]) -> str:
    """Parameters (``Config.to_dict()``) as TOML: ``species``, then one table per section.

    Unset values (None) are written as comments, so the file reads back to the same parameters.

    Examples
    --------
    >>> print(to_toml({"species": "auto", "clean": {"max_speed_kmh": 200.0, "min_sats": None}}))
    species = "auto"
    <BLANKLINE>
    [clean]
    max_speed_kmh = 200.0
    # min_sats = (not set)
    <BLANKLINE>
    """
    lines = []
    for key, v in params.items():
        if not isinstance(v, dict):
            lines.append(f"{key} = {_value(v)}")
    for section, v in params.items():
        if isinstance(v, dict):
            lines += ["", f"[{section}]"]
            for name, x in v.items():
                lines.append(f"# {name} = (not set)" if x is None else f"{name} = {_value(x)}")
    return "\n".join(lines) + "\n"


@click.group("config")
def config() -> None:
    """Parameters: show the effective values (profile, file and --set applied)."""


@config.command("show")
@click.option("--species", default=None, metavar="PROFILE", help="Species profile to start from.")
@click.option("--config", "config_path", default=None, type=click.Path(dir_okay=False), help="TOML file to apply.")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.NAME=VALUE", help="Override one parameter.")
def show(species: str | None, config_path: str | None, overrides: tuple[str, ...]) -> None:
    """Print every parameter of every step as TOML (units in the names).

    `telemetry config show --species ungulate > params.toml`, edit, then
    `telemetry run collars/ --config params.toml`.
    """
    from telemetry.config import load_config

    cfg = load_config(config_path, species=species, overrides=overrides)
    click.echo(f"# telemetry parameters (profile {cfg.species}); use with --config FILE", nl=True)
    click.echo(to_toml(cfg.to_dict()), nl=False)
