"""collar-telemetry: GPS-collar fixes → clean tracks → cross-border corridors.

The public API::

    import telemetry
    fixes = telemetry.read("sample_tracks/")        # any collar format → canonical table
"""

from __future__ import annotations

from telemetry.errors import ParseError, TelemetryError
from telemetry.parsers import ReadOptions, formats, read

__version__ = "0.1.0"

__all__ = ["read", "formats", "ReadOptions", "TelemetryError", "ParseError", "__version__"]
