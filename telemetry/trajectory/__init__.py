"""Trajectory steps: cleaning, segmentation, smoothing, metrics, behavioural states, home ranges.

Each step is a plain function that takes the canonical table and returns it with more
columns (see the module of each step for units)::

    clean        flag unusable fixes (one reason per row)          trajectory.clean
    segment      segment_id at gaps, cluster_id (200 m / 24 h)     trajectory.segment
    smooth       lon_s, lat_s, se_m (Kalman/RTS)                   trajectory.smooth
    metrics      step_m, dt_s, speed_kmh, azimuth_deg, turn_deg,   trajectory.metrics
                 nsd_km2
    label_states state (HMM)                                       trajectory.states
    home_ranges  MCP / KDE / AKDE polygons (GeoDataFrame)          trajectory.ranges (homerange)
    movement_ranges  movement models, AKDE, periods, speeds         trajectory.ranges

Layer: trajectory, above the core and :mod:`telemetry.io`/:mod:`telemetry.parsers`, below
:mod:`telemetry.corridor`; never imports the corridor, outputs, pipeline or CLI.
"""

from __future__ import annotations

from typing import Any

from telemetry.kernel_cache import install as _install_kernels

_install_kernels()  # before any kernel is decorated: portable target, shipped compiled kernels

from telemetry.trajectory.clean import clean, flag_summary  # noqa: E402
from telemetry.trajectory.interop import from_movingpandas, to_movingpandas  # noqa: E402
from telemetry.trajectory.metrics import daily_distance, metrics  # noqa: E402
from telemetry.trajectory.segment import cluster_table, clusters, fix_schedule, segment  # noqa: E402

__all__ = [
    "clean",
    "flag_summary",
    "segment",
    "fix_schedule",
    "clusters",
    "cluster_table",
    "smooth",
    "metrics",
    "daily_distance",
    "label_states",
    "home_ranges",
    "movement_ranges",
    "to_movingpandas",
    "from_movingpandas",
]

_LAZY = {"smooth": ("telemetry.trajectory.smooth", "smooth"),
         "home_ranges": ("telemetry.trajectory.ranges", "home_ranges"),
         "movement_ranges": ("telemetry.trajectory.ranges", "movement_ranges"),
         "label_states": ("telemetry.trajectory.states", "label_states")}


def __getattr__(name: str) -> Any:
    # the smoother and the HMM load on first use (numba modules written alongside this one)
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
