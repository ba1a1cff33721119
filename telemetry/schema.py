"""The canonical fix table: column names, dtypes and flag reasons.

Every parser returns a :class:`pandas.DataFrame` with :data:`CANONICAL_COLUMNS`
first (in this order, with these dtypes) followed by the vendor's own columns
under their original names. One row per collar record; nothing is dropped:
a record that is not a usable fix carries a reason in ``flag``.

Units: ``lon``/``lat`` in decimal degrees WGS84, ``alt_m`` in metres,
``time`` in UTC (tz-aware, nanoseconds), ``hdop`` dimensionless (vendors' DOP/HDOP/PDOP
is stored here as given), ``source_row`` is the 1-based line number of the
record in the decompressed file.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FIX_TYPES: tuple[str, ...] = ("3D", "2D", "argos", "none", "unknown")
"""Canonical ``fix_type`` values. ``none`` is a failed or unusable fix attempt; ``unknown`` a GPS
position of which the file says neither the fix type nor the satellite count (never taken for 2D:
see :func:`telemetry.parsers.canonical.infer_fix_type`)."""

NULL_VALUES: list[str] = ["", "NA", "N/A", "n/a", "NaN", "nan", "NULL", "null", "None", "-", "--", "#N/A"]
"""Cell values read as missing in every format (and in a deployment table however it comes)."""

ARGOS_CLASSES: tuple[str, ...] = ("3", "2", "1", "0", "A", "B", "Z")
"""Argos location classes, best first (3: <250 m ... B, Z: unbounded error)."""

FLAGS: dict[str, str] = {
    # set by parsers
    "malformed_row": "the line has the wrong number of fields for the header",
    "bad_time": "the timestamp is missing or cannot be parsed",
    "bad_value": "a coordinate is not a number",
    "no_fix": "no position (failed fix attempt, N/A coordinates or placeholder time)",
    # set by cleaning (trajectory.clean)
    "duplicate": "same animal and time as a better fix",
    "zero_coords": "0/0 coordinates",
    "out_of_range": "coordinates outside -180..180 / -90..90",
    "outside_deployment": "time outside the deployment",
    "clock_jump": "collar clock jump",
    "marked_outlier": "marked as outlier in the source (e.g. Movebank visible=false)",
    "low_quality": "fix quality below threshold (2D with high DOP, poor Argos class)",
    "speed": "impossible speed for the species",
    "spike": "spike: fast out, fast back with a sharp turn",
}
"""Flag reasons and what they mean. A row has at most one reason; NA = usable."""

PARSER_FLAGS: tuple[str, ...] = ("malformed_row", "bad_time", "bad_value", "no_fix")
"""The flags the parsers set (the others are the cleaning's, set again whenever tracks are processed)."""

FLAG_DTYPE = pd.CategoricalDtype(list(FLAGS))
FIX_TYPE_DTYPE = pd.CategoricalDtype(list(FIX_TYPES))
ARGOS_LC_DTYPE = pd.CategoricalDtype(list(ARGOS_CLASSES), ordered=True)
TIME_DTYPE = pd.DatetimeTZDtype("ns", "UTC")

CANONICAL_DTYPES: dict[str, object] = {
    "animal_id": "category",
    "tag_id": "category",
    "time": TIME_DTYPE,
    "lon": np.float64,
    "lat": np.float64,
    "alt_m": np.float64,
    "hdop": np.float64,
    "n_sats": np.float32,
    "fix_type": FIX_TYPE_DTYPE,
    "argos_lc": ARGOS_LC_DTYPE,
    "source": "category",
    "source_row": np.int64,
    "flag": FLAG_DTYPE,
}
CANONICAL_COLUMNS: tuple[str, ...] = tuple(CANONICAL_DTYPES)


def has_fix(df: pd.DataFrame) -> pd.Series:
    """True where a row has a usable time and both coordinates (flags aside)."""
    return df["time"].notna() & df["lon"].notna() & df["lat"].notna()


def empty_frame() -> pd.DataFrame:
    """An empty canonical table with the right dtypes."""
    return pd.DataFrame(
        {name: pd.Series(dtype=dtype) for name, dtype in CANONICAL_DTYPES.items()}
    )


def endpoint_columns(frame: pd.DataFrame) -> tuple[str, str]:
    """Names of the (from, to) columns of a crossing table.

    ``("from_iso", "to_iso")`` for crossings between countries, ``("from_zone", "to_zone")`` for
    crossings of a user zone layer (see :func:`telemetry.corridor.crossings.crossings`).

    >>> endpoint_columns(pd.DataFrame(columns=["from_zone", "to_zone"]))
    ('from_zone', 'to_zone')
    >>> endpoint_columns(pd.DataFrame(columns=["from_iso", "to_iso"]))
    ('from_iso', 'to_iso')
    """
    return ("from_zone", "to_zone") if "from_zone" in frame.columns else ("from_iso", "to_iso")


class SharedAttr(dict):
    """A dict in ``DataFrame.attrs`` that derived tables share instead of deep-copying.

    pandas deep-copies a frame's ``attrs`` into every Series and frame derived from it, each
    column read included; with the per-animal diagnostics of 100 animals (``smooth``,
    ``states``, ``profile_check``) that was ~9 ms per column read, over a second of
    ``process`` per million fixes. Treat the value as read-only once attached.

    >>> import copy
    >>> a = SharedAttr({"k": [1, 2]})
    >>> copy.deepcopy(a) is a, dict(a) == {"k": [1, 2]}
    (True, True)
    """

    def __deepcopy__(self, memo: dict) -> SharedAttr:
        return self
