"""The ``telemetry`` command line: one small module per subcommand (like ``rio``).

Layer: the top (only the package root's public API is above it); it may import anything below.
"""
