"""The package version (core layer: imports nothing), read by every output's metadata."""

__version__ = "0.1.0"
