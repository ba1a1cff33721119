"""collar-telemetry: GPS-collar fixes → clean tracks → cross-border corridors.

The public API::

    import telemetry
    fixes = telemetry.read("sample_tracks/")     # any collar format → canonical table
    tracks = telemetry.process(fixes)            # clean → segment → smooth → metrics → states

Heavy steps (smoother, HMM, corridors) import on first use, so ``import telemetry``
and ``telemetry --help`` stay fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from telemetry.errors import ConfigError, ParseError, TelemetryError
from telemetry.parsers import ReadOptions, formats, read
from telemetry.version import __version__

_LAZY: dict[str, tuple[str, str]] = {
    "clean": ("telemetry.trajectory.clean", "clean"),
    "flag_summary": ("telemetry.trajectory.clean", "flag_summary"),
    "segment": ("telemetry.trajectory.segment", "segment"),
    "clusters": ("telemetry.trajectory.segment", "clusters"),
    "cluster_table": ("telemetry.trajectory.segment", "cluster_table"),
    "smooth": ("telemetry.trajectory.smooth", "smooth"),
    "label_states": ("telemetry.trajectory.states", "label_states"),
    "metrics": ("telemetry.trajectory.metrics", "metrics"),
    "daily_distance": ("telemetry.trajectory.metrics", "daily_distance"),
    "home_ranges": ("telemetry.trajectory.ranges", "home_ranges"),
    "movement_ranges": ("telemetry.trajectory.ranges", "movement_ranges"),
    "population_range": ("telemetry.trajectory.ranges", "population_range"),
    "range_shares": ("telemetry.corridor.range_share", "range_shares"),
    "to_movingpandas": ("telemetry.trajectory.interop", "to_movingpandas"),
    "from_movingpandas": ("telemetry.trajectory.interop", "from_movingpandas"),
    "process": ("telemetry.pipeline", "process"),
    "track_summary": ("telemetry.trajectory.summary", "track_summary"),
    "analyse": ("telemetry.pipeline", "analyse"),
    "run": ("telemetry.pipeline", "run"),
    "crossings": ("telemetry.corridor.crossings", "crossings"),
    "time_in_zones": ("telemetry.corridor.crossings", "time_in_zones"),
    "hotspots": ("telemetry.corridor.hotspots", "hotspots"),
    "load_zones": ("telemetry.corridor.zones", "load_zones"),
    "corridors": ("telemetry.corridor.corridors", "corridors"),
    "corridor_layers": ("telemetry.corridor.corridors", "corridor_layers"),
    "load_countries": ("telemetry.corridor.borders", "load_countries"),
    "border_lines": ("telemetry.corridor.borders", "border_lines"),
}

__all__ = [
    "read", "formats", "ReadOptions", "TelemetryError", "ParseError", "ConfigError", "__version__",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'telemetry' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
