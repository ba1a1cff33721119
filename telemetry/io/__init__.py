"""Files in and out at the lowest level: atomic writes, fix tables as GeoParquet/GeoPackage/CSV,
and the partitioned GeoParquet dataset (a folder per animal) that ``process --out DIR/`` writes
and every command reads.

Layer: IO, with :mod:`telemetry.parsers` (imports only the core: :mod:`telemetry.errors`,
:mod:`telemetry.schema`, :mod:`telemetry.arrays`, :mod:`telemetry.engine`).
"""
