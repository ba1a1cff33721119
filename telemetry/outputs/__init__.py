"""What the tool hands over: file formats, public and internal layers (generalisation), the
interactive map, charts and the folder ``telemetry run`` writes with its ``index.html``.

Layer: outputs, above :mod:`telemetry.corridor` and :mod:`telemetry.trajectory`, below
:mod:`telemetry.pipeline` and :mod:`telemetry.cli` (see the README's layout section).
"""
