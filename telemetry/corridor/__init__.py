"""Cross-border analysis: bundled borders, crossings, hotspots, corridors.

Layer: corridor, above :mod:`telemetry.trajectory` (it reads processed tracks) and below
:mod:`telemetry.outputs`; imports the core, never the outputs, pipeline or CLI.
"""

from telemetry.kernel_cache import install as _install_kernels

_install_kernels()  # before any kernel is decorated: portable target, shipped compiled kernels
