"""Cross-border analysis: bundled borders, crossings, hotspots, corridors."""

from telemetry.kernel_cache import install as _install_kernels

_install_kernels()  # before any kernel is decorated: portable target, shipped compiled kernels
