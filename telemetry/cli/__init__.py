"""The ``telemetry`` command line: one small module per subcommand (like ``rio``)."""
