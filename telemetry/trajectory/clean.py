"""Cleaning: give every unusable fix one ``flag`` reason; never drop a row.

Rules run in a fixed order and a row keeps the *first* reason it gets (parser flags
such as ``malformed_row`` or ``no_fix`` are kept as they are):

1. ``no_fix`` – no time or coordinates, or the collar reported a failed fix;
2. ``zero_coords`` – 0/0; ``out_of_range`` – outside -180..180 / -90..90;
3. ``marked_outlier`` – the source marks it (Movebank ``visible = false``,
   ``manually-marked-outlier`` / ``algorithm-marked-outlier`` true, ecoscope
   ``junk_status`` true, EarthRanger ``exclusion_flags`` non-zero);
4. ``outside_deployment`` – before the start or after the end in the deployment table;
5. ``clock_jump`` – the collar clock jumped: the time is far from its neighbours' in
   file order, or far outside the animal's main time span;
6. ``low_quality`` – 2D with DOP above a threshold, any DOP above a cap, too few
   satellites, rejected Argos location classes;
7. ``duplicate`` – same animal and time as a better fix (fix type, DOP, satellites,
   then file order);
8. ``speed`` / ``spike`` – iterated: each round blames only the worse end of a too-fast
   step (the end farther from the median of its neighbours) and flags Bjørneraas et al.
   (2010) spikes (fast in, fast out, sharp turn back) and *out-and-back* spikes (far from
   both neighbours, which are close to each other, by more than the animal's own movement
   at that time of day explains; see :func:`_speed_and_spikes`); then speeds are recomputed
   without the flagged fixes, so one outlier never condemns its neighbours.

At a 4-5 h schedule a gross outlier of 1-2 km is often geometrically identical to a real
excursion (a cat leaves its kill at dusk and is back by dawn), so no rule on positions
alone finds all of them without flagging real fixes; the out-and-back rule is tuned for
precision (see the issue 4 report for the recall reachable per state and distance).

:func:`flag_summary` reports per animal how many rows each reason took.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from telemetry.arrays import FLAG_CODE, flag_codes, flags_to_series, group_codes, group_time_order, time_ns
from telemetry.config import CleanParams
from telemetry.deployments import deployment_table, deployment_times
from telemetry.errors import TelemetryError
from telemetry.schema import FLAGS, SharedAttr
from telemetry.trajectory._arrays import bearing_deg, haversine_m
from telemetry.trajectory._clean_kernels import file_order_jumps, span_jumps, speed_and_spikes
from telemetry.trajectory.quality import group_quantile

__all__ = ["clean", "flag_summary"]

_NS_PER_H = 3_600 * 10**9
_FIX_RANK = {"3D": 0.0, "2D": 2.0, "argos": 3.0, "none": 20.0}
_TRUE_STRINGS = {"true", "t", "1", "yes", "y"}
_FALSE_STRINGS = {"false", "f", "0", "no", "n"}


def clean(
    df: pd.DataFrame,
    params: CleanParams | None = None,
    *,
    deployments: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Flag unusable fixes; return a copy of the table with the ``flag`` column set.

    Parameters
    ----------
    df : pandas.DataFrame
        Canonical fix table (:mod:`telemetry.schema`), any row order.
    params : CleanParams, optional
        Thresholds (speeds in km/h, distances in m, times in h); default: snow leopard.
    deployments : pandas.DataFrame, optional
        One row per deployment with ``animal_id``, ``start``, ``end`` (times; naive times
        are UTC; a missing start or end is open). Fixes of a listed animal outside all of
        its deployments are flagged ``outside_deployment``; unlisted animals are left alone.

    Returns
    -------
    pandas.DataFrame
        Same rows, same order, same columns; ``flag`` holds one reason per unusable row
        (NA = usable).

    Examples
    --------
    >>> import pandas as pd, telemetry
    >>> t = pd.date_range("2024-01-01", periods=5, freq="h", tz="UTC")
    >>> df = pd.DataFrame({"animal_id": "a", "time": t, "lon": [77.0, 77.001, 79.0, 77.002, 77.003],
    ...                    "lat": 43.0})
    >>> telemetry.clean(df)["flag"].tolist()
    [nan, nan, 'speed', nan, nan]
    """
    params = params or CleanParams()
    _check_columns(df)
    n = len(df)
    codes = flag_codes(df)
    lon = _float(df, "lon")
    lat = _float(df, "lat")
    t = time_ns(df)
    has_time = df["time"].notna().to_numpy()

    def put(mask: np.ndarray, reason: str) -> None:
        codes[(codes < 0) & mask] = FLAG_CODE[reason]

    fix_type = _str_col(df, "fix_type")
    put(~has_time | np.isnan(lon) | np.isnan(lat) | (fix_type == "none"), "no_fix")
    put((lon == 0) & (lat == 0), "zero_coords")
    put(~np.isfinite(lon) | ~np.isfinite(lat) | (np.abs(lon) > 180) | (np.abs(lat) > 90), "out_of_range")
    put(_marked_outlier(df), "marked_outlier")
    animal, _ = group_codes(df)
    if deployments is not None:
        put(_outside_deployment(df, deployments), "outside_deployment")
    # the later rules look at the rows still usable, in (animal, time) order; a subset of
    # a sorted order is sorted, so sort once here (not at all when the caller already did)
    by_time = _by_animal_time(animal, t, np.flatnonzero(codes < 0))
    put(_clock_jump(df, animal, t, codes < 0, params, by_time), "clock_jump")
    put(_low_quality(df, fix_type, params), "low_quality")
    put(_duplicates(df, animal, t, fix_type, by_time[codes[by_time] < 0]), "duplicate")
    judged = by_time[codes[by_time] < 0]
    ref = speed_reference(df, params)
    speed, spike = _speed_and_spikes(animal, t, lon, lat, judged, params, ref)
    speed |= _ends_beyond_reach(t, lon, lat, judged[~(speed | spike)[judged]], animal, params)
    put(speed, "speed")
    put(spike, "spike")

    out = df.copy(deep=False)
    out["flag"] = flags_to_series(codes, df.index)
    assert len(out) == n
    check = profile_check(animal, t, lon, lat, judged, speed | spike, group_codes(df)[1], params, ref)
    out.attrs = {**df.attrs, "profile_check": SharedAttr(check)}
    return out


_SUGGEST_MARGIN = 1.2
"""A profile holds an animal's speeds when its limit is at least this many times the animal's
99th-percentile speed (or its fastest sustained run); :func:`profile_check`."""


def profile_check(animal: np.ndarray, t: np.ndarray, lon: np.ndarray, lat: np.ndarray, judged: np.ndarray,
                  flagged: np.ndarray, names: np.ndarray, p: CleanParams,
                  ref: np.ndarray | None = None) -> dict[str, dict]:
    """Does each animal's own data contradict the speed limits of the profile it was cleaned with?

    Per animal, over the fixes the speed rules judged (``judged``: positions sorted by
    ``(animal, time)``) and those they flagged: the share of steps faster than the limit that
    belong to *sustained, directional* runs (3 or more consecutive fast steps whose bearings have
    a mean resultant length of at least 0.7: a migration leg, not a scatter of bad fixes), and the
    share of fixes flagged ``speed``/``spike`` against ``expected_flag_share``. It does not fit
    when sustained fast steps are more than 1 % of its steps or the flagged share is more than
    three times the expected one; then ``message`` says so in one line and names the profile
    whose limit would hold the animal's 99th-percentile speed with a margin of 1.2 (``_SUGGEST_MARGIN``; ``auto`` if
    none), unless the limit it was cleaned with already does: then the flags are more likely the
    fixes' own errors than the profile's, no profile is suggested, and the message says so. Steps and the flagged share count only the
    fixes ``ref`` marks (:func:`speed_reference`: not Argos fixes of the poorer classes; all
    when None); ``flagged_share`` is of all fixes, ``flagged_share_better_fixes`` of those.

    Returns ``{animal: {"fits", "steps", "fast_sustained_share", "flagged_share", "max_speed_kmh",
    "speed_p99_kmh", "suggested_profile", "message"}}`` for every animal with judged fixes.
    """
    from telemetry.config import PROFILES, Config

    out: dict[str, dict] = {}
    if judged.size < 2:
        return out
    a = animal[judged]
    starts = np.r_[0, np.flatnonzero(a[1:] != a[:-1]) + 1, a.size]
    t_s = t[judged].astype(np.float64) / 1e9
    x, y = lon[judged], lat[judged]
    # the fixes whose error is small next to the animal's speed (speed_reference; all when None)
    r_j = np.ones(judged.size, dtype=bool) if ref is None else ref[judged]
    limit, _ = speed_limits(starts, t_s, x, y, p, r_j)
    keep = ~flagged[judged] & r_j  # the track the rules left, between those fixes: what the animal did
    kept = judged[keep]
    ka = animal[kept]
    kstarts = np.r_[0, np.flatnonzero(ka[1:] != ka[:-1]) + 1, ka.size]
    v, g_local, bear = step_speeds(kstarts, t[kept].astype(np.float64) / 1e9, lon[kept], lat[kept], 0.0)
    animals = a[starts[:-1]]  # each animal's code, in the order of ``a``
    k = animals.size
    position = np.zeros(int(animals.max()) + 1, np.int64)
    position[animals] = np.arange(k)
    # each kept step's animal as its position i in ``a`` (the steps keep that order: the i-th
    # animal's are v[sfirst[i]:sfirst[i + 1]])
    g = position[ka[kstarts[:-1]][g_local]] if g_local.size else g_local
    sfirst = np.searchsorted(g, np.arange(k + 1))
    sustained = _sustained_runs(v > limit[g] if g.size else np.zeros(0, bool), g, np.radians(bear))
    n_fix = np.diff(starts)
    n_flag = np.add.reduceat(flagged[judged].astype(np.int64), starts[:-1])
    # the flagged share the profile is judged by: of those fixes (Argos classes 0, A and B are
    # flagged by any speed rule, 10-21 % of the real gulls' under the migratory-bird profile,
    # 0.3-1.3 % of their better fixes)
    n_ref = np.add.reduceat(r_j.astype(np.int64), starts[:-1])
    n_flag_ref = np.add.reduceat((flagged[judged] & r_j).astype(np.int64), starts[:-1])
    p99 = group_quantile(v, g, k, 0.99)
    sus_n = np.bincount(g[sustained], minlength=k)
    sus_max = np.full(k, -np.inf)
    np.maximum.at(sus_max, g[sustained], v[sustained])
    candidates = sorted(((k, Config.for_species(k).clean.max_speed_kmh) for k in PROFILES if k != "auto"),
                        key=lambda kv: kv[1])
    for i in range(k):  # per animal only the verdict and its words; the arithmetic is above, over all
        code = animals[i]
        lim = float(limit[i])
        n_steps = int(sfirst[i + 1] - sfirst[i])
        sus_share = float(sus_n[i] / n_steps) if n_steps else 0.0
        flag_share = int(n_flag[i]) / max(int(n_fix[i]), 1)
        poorer = int(n_ref[i]) < int(n_fix[i])  # (Argos fixes of the classes speed_reference leaves out)
        ref_share = int(n_flag_ref[i]) / max(int(n_ref[i]), 1)
        q99 = float(p99[i]) if n_steps else 0.0
        many = ref_share > 3.0 * p.expected_flag_share
        fits = not (sus_share > 0.01 or many)
        top = max(q99, float(sus_max[i])) if sus_n[i] else q99
        # where the limit holds the animal's speeds with the margin a suggestion needs, no profile
        # would flag fewer of its fixes: the flags are its fixes' own errors
        speeds_fit = n_steps > 0 and sus_share <= 0.01 and lim >= _SUGGEST_MARGIN * top
        suggestion = None if speeds_fit else next((name for name, mx in candidates if mx >= _SUGGEST_MARGIN * top),
                                                  "auto")
        entry = {"fits": bool(fits), "steps": n_steps, "fast_sustained_share": round(sus_share, 4),
                 "flagged_share": round(flag_share, 4), "max_speed_kmh": round(lim, 3),
                 "speed_p99_kmh": round(q99, 3), "suggested_profile": suggestion if not fits else None}
        if poorer:
            entry["flagged_share_better_fixes"] = round(ref_share, 4)
        if not fits:
            what = []
            if sus_share > 0.01:
                what.append(f"{sus_share:.0%} of its steps are sustained directional movement faster than the "
                            f"limit of {lim:.3g} km/h (up to {float(sus_max[i]):.0f} km/h)")
            if many:
                of = ("of its GPS fixes and Argos fixes of classes " + "/".join(p.speed_limit_argos_classes)
                      if poorer else "of its fixes")
                what.append(f"{ref_share:.1%} {of} are flagged speed/spike "
                            f"(the profile expects about {p.expected_flag_share:.0%})")
            if speeds_fit:
                entry["message"] = (f"{names[code]}: " + "; ".join(what) + f", though its speeds fit the limit of "
                                    f"{lim:.3g} km/h (99th percentile {q99:.3g} km/h): the fixes themselves err more "
                                    "than the profile expects, rather than the profile being too strict (look at "
                                    "their HDOP, fix type or Argos class)")
            else:
                entry["message"] = (f"{names[code]}: " + "; ".join(what) + f": the profile does not fit this animal "
                                    f"(try --species {suggestion})")
        out[str(names[code])] = entry
    return out


def _sustained_runs(fast: np.ndarray, g: np.ndarray, bearing_rad: np.ndarray) -> np.ndarray:
    """Which steps belong to a sustained, directional fast run: 3 or more consecutive ``fast``
    steps of one animal (``g``, steps sorted by animal) whose bearings (radians) have a mean
    resultant length of at least 0.7 — a migration leg, not a scatter of bad fixes. One pass
    over all animals.

    >>> fast = np.array([True, True, True, False, True, True, True, True])
    >>> g = np.array([0, 0, 0, 0, 0, 0, 1, 1])
    >>> b = np.array([0.0, 0.1, 0.2, 0.0, 0.0, 0.0, 0.0, 0.0])
    >>> _sustained_runs(fast, g, b).astype(int).tolist()  # the last two runs are cut by the animal
    [1, 1, 1, 0, 0, 0, 0, 0]
    >>> _sustained_runs(fast[:3], g[:3], np.array([0.0, np.pi, 0.0])).tolist()  # out and back
    [False, False, False]
    """
    n = fast.size
    if n == 0:
        return np.zeros(0, bool)
    new = np.r_[True, (fast[1:] != fast[:-1]) | (g[1:] != g[:-1])]
    first = np.flatnonzero(new)
    length = np.diff(np.r_[first, n])
    resultant = np.hypot(np.add.reduceat(np.cos(bearing_rad), first),
                         np.add.reduceat(np.sin(bearing_rad), first)) / length
    ok = fast[first] & (length >= 3) & (resultant >= 0.7)
    return ok[np.cumsum(new) - 1]


def flag_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Rows per animal: total, usable and one column per flag reason.

    Parameters
    ----------
    df : pandas.DataFrame
        A table with ``animal_id`` and ``flag`` (e.g. the output of :func:`clean`).

    Returns
    -------
    pandas.DataFrame
        Index ``animal_id``; columns ``rows``, ``usable`` and every reason of
        :data:`telemetry.schema.FLAGS` (zeros included), so that
        ``rows == usable + sum(reasons)`` on every line.
    """
    codes = flag_codes(df)
    animal, labels = group_codes(df)
    k = len(labels)
    counts = np.zeros((k, len(FLAGS) + 1), dtype=np.int64)
    np.add.at(counts, (animal, codes.astype(np.int64) + 1), 1)
    out = pd.DataFrame(counts[:, 1:], columns=list(FLAGS), index=pd.Index(labels, name="animal_id"))
    out.insert(0, "usable", counts[:, 0])
    out.insert(0, "rows", counts.sum(axis=1))
    return out[out["rows"] > 0]


# ---------------------------------------------------------------- rules


def _check_columns(df: pd.DataFrame) -> None:
    missing = [c for c in ("time", "lon", "lat") if c not in df.columns]
    if missing:
        raise TelemetryError(f"the fix table has no {', '.join(missing)} column(s); use telemetry.read()")


def _float(df: pd.DataFrame, name: str) -> np.ndarray:
    if name not in df.columns:
        return np.full(len(df), np.nan)
    return pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _str_codes(df: pd.DataFrame, name: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Column ``name`` as codes into labels (a numpy string array whose last label, ``""``, is
    that of missing values: code -1), or None where its values are not all strings (1, 1.0 and
    True are one value to a hash table, but three texts). Categoricals via their codes."""
    col = df[name]
    if isinstance(col.dtype, pd.CategoricalDtype):
        return col.cat.codes.to_numpy(), np.asarray([str(c) for c in col.cat.categories] + [""])
    # one factorize, 7x faster than converting 1M rows one by one
    codes, uniques = pd.factorize(col)
    if isinstance(col.dtype, pd.StringDtype) or all(isinstance(u, str) for u in uniques):
        return codes, np.asarray([str(u) for u in uniques] + [""])
    return None


def _str_col(df: pd.DataFrame, name: str) -> np.ndarray:
    """Column as a numpy string array ("" for missing).

    >>> df = pd.DataFrame({"a": ["3D", None, "2D"], "b": [1, 1.0, None], "c": [None, None, None]})
    >>> _str_col(df, "a").tolist(), _str_col(df, "b").tolist(), _str_col(df, "c").tolist()
    (['3D', '', '2D'], ['1.0', '1.0', ''], ['', '', ''])
    """
    if name not in df.columns:
        return np.full(len(df), "", dtype="<U1")
    coded = _str_codes(df, name)
    if coded is not None:
        return coded[1][coded[0]]
    col = df[name]
    return col.astype(object).where(col.notna(), "").to_numpy(dtype=object).astype(str)


def _str_in(df: pd.DataFrame, name: str, values: Iterable[str]) -> np.ndarray:
    """``np.isin(_str_col(df, name), values)`` (bool per row) from the column's distinct values,
    without a string per row (for 1M rows the string array and its comparison cost ~0.1 s).

    >>> df = pd.DataFrame({"a": ["3D", None, "2D"], "b": pd.Categorical(["x", None, "y"]), "c": [1, 1.0, None]})
    >>> _str_in(df, "a", ["2D", ""]).tolist(), _str_in(df, "b", ["x"]).tolist(), _str_in(df, "c", ["1.0"]).tolist()
    ([False, True, True], [True, False, False], [True, True, False])
    >>> _str_in(df, "missing", [""]).tolist()
    [True, True, True]
    """
    values = [str(v) for v in values]
    if name not in df.columns:
        return np.full(len(df), "" in values)
    coded = _str_codes(df, name)
    if coded is not None:
        return np.isin(coded[1], values)[coded[0]]
    return np.isin(_str_col(df, name), values)


def _truthy(s: pd.Series) -> np.ndarray:
    """True for True/"true"/1-like values; NA and anything else False."""
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.fillna(False).to_numpy(dtype=bool)
    low = s.astype(object).where(s.notna(), "").astype(str).str.strip().str.lower()
    return low.isin(_TRUE_STRINGS).to_numpy()


def _falsy(s: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(s.dtype):
        return (~s.fillna(True).astype(bool)).to_numpy(dtype=bool)
    low = s.astype(object).where(s.notna(), "").astype(str).str.strip().str.lower()
    return low.isin(_FALSE_STRINGS).to_numpy()


def _marked_outlier(df: pd.DataFrame) -> np.ndarray:
    out = np.zeros(len(df), dtype=bool)
    for name in ("visible",):
        if name in df.columns:
            out |= _falsy(df[name])
    for name in ("manually-marked-outlier", "algorithm-marked-outlier", "import-marked-outlier",
                 "junk_status"):  # ecoscope Relocations
        if name in df.columns:
            out |= _truthy(df[name])
    if "exclusion_flags" in df.columns:  # EarthRanger: non-zero = excluded by a user or a rule
        flags = pd.to_numeric(df["exclusion_flags"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        out |= np.nan_to_num(flags) != 0
    return out


def _outside_deployment(df: pd.DataFrame, deployments: pd.DataFrame) -> np.ndarray:
    dep = deployment_table(deployments)
    dep["animal_id"] = dep["animal_id"].astype(str)
    for c in ("start", "end"):
        dep[c] = _to_utc(dep[c], c)
    rows = pd.DataFrame(
        {"animal_id": df["animal_id"].astype(object).astype(str).to_numpy(), "time": time_ns(df), "row": np.arange(len(df))}
    )
    rows = rows[df["time"].notna().to_numpy() & df["animal_id"].notna().to_numpy()]
    m = rows.merge(dep, on="animal_id", how="inner")
    start = m["start"].to_numpy(dtype=np.int64)
    end = m["end"].to_numpy(dtype=np.int64)
    inside = (m["time"].to_numpy() >= start) & (m["time"].to_numpy() <= end)
    listed = np.zeros(len(df), dtype=bool)
    listed[m["row"].to_numpy()] = True
    covered = np.zeros(len(df), dtype=bool)
    covered[m["row"].to_numpy()[inside]] = True
    return listed & ~covered


def _to_utc(s: pd.Series, name: str) -> pd.Series:
    """Times as int64 ns; a missing start/end becomes the open bound (int64 min / max)."""
    t, bad = deployment_times(s)
    if bad.any():  # (a table from a file was checked as it was read, with file, line and column)
        raise TelemetryError(f"deployment table: cannot read {s.iloc[int(bad.argmax())]!r} as the {name} time")
    ns = t.dt.as_unit("ns").to_numpy(dtype="datetime64[ns]").view(np.int64).copy()
    info = np.iinfo(np.int64)
    ns[t.isna().to_numpy()] = info.min if name == "start" else info.max
    return pd.Series(ns, index=s.index)


def _by_animal_time(animal: np.ndarray, t: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """``pos`` (row positions) stably sorted by ``(animal, time)``.

    :func:`telemetry.process` hands over rows already in this order, so check that first
    (one vectorised pass) and sort only when needed.
    """
    order = group_time_order(animal[pos], t[pos])
    return pos if order is None else pos[order]


def _clock_jump(
    df: pd.DataFrame, animal: np.ndarray, t: np.ndarray, ok: np.ndarray, p: CleanParams,
    by_time: np.ndarray,
) -> np.ndarray:
    """Records whose time is far from their file-order neighbours or the animal's main span.

    ``by_time`` holds the positions of the ``ok`` rows sorted by ``(animal, time)``.
    """
    out = np.zeros(len(df), dtype=bool)
    pos = np.flatnonzero(ok)
    if pos.size == 0:
        return out
    limit = float(p.clock_jump_min_h * _NS_PER_H)

    # (a) in file order: compare each time with the median of itself and two records on
    # each side. In a file sorted either way the median is the record itself, so only
    # records that disagree with their neighbours stand out; up to two consecutive
    # jumped records are caught. Applies only to (file, animal) runs that are ordered in
    # time (either direction): a shuffled file says nothing about its clock.
    src = group_codes(df, "source")[0] if "source" in df.columns else np.zeros(len(df), dtype=np.int64)
    row = df["source_row"].to_numpy(dtype=np.int64) if "source_row" in df.columns else np.arange(len(df))
    order = pos[np.lexsort((row[pos], animal[pos], src[pos]))]
    out[order[file_order_jumps(src[order], animal[order], t[order], limit)]] = True

    # (b) far outside the animal's main time span (10th..90th percentile of its times, so
    # a block of up to 10 % jumped records, e.g. a GPS week-number rollover, cannot hide)
    keep = by_time[~out[by_time]]
    far = span_jumps(animal[keep], t[keep], limit, float(p.clock_jump_span_fraction))
    out[keep[far]] = True
    return out


def _low_quality(df: pd.DataFrame, fix_type: np.ndarray, p: CleanParams) -> np.ndarray:
    hdop = _float(df, "hdop")
    with np.errstate(invalid="ignore"):
        bad = (fix_type == "2D") & (hdop > p.max_hdop_2d)
        bad |= hdop > p.max_hdop
        if p.min_sats > 0 and "n_sats" in df.columns:
            sats = _float(df, "n_sats")
            bad |= sats < p.min_sats  # NaN (unknown) compares False
    if p.argos_reject_classes and "argos_lc" in df.columns:
        bad |= _str_in(df, "argos_lc", p.argos_reject_classes)
    return bad




def _quality_rank(df: pd.DataFrame, fix_type: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Rank of ``rows``, lower is better: 3D < unknown GPS < 2D < Argos (by class) < no fix."""
    kind = fix_type[rows]
    rank = np.ones(rows.size)  # unknown fix type: between 3D and 2D
    for name, value in _FIX_RANK.items():
        rank[kind == name] = value
    if "argos_lc" in df.columns and isinstance(df["argos_lc"].dtype, pd.CategoricalDtype):
        lc = df["argos_lc"].cat.codes.to_numpy()[rows].astype(float)
        rank = rank + np.where(lc >= 0, lc / 10.0, 0.0)
    return rank


def _duplicates(
    df: pd.DataFrame, animal: np.ndarray, t: np.ndarray, fix_type: np.ndarray, by_time: np.ndarray
) -> np.ndarray:
    """Same animal and time as a better fix: keep the best, flag the others.

    ``by_time`` holds the positions of the usable rows sorted by ``(animal, time)``.
    """
    out = np.zeros(len(df), dtype=bool)
    if by_time.size < 2:
        return out
    # only rows sharing (animal, time) with a neighbour in that order can be duplicates;
    # rank just those (a few per thousand) instead of sorting the whole table by quality
    if "time_resolution_s" in df.columns:  # dates only: a shared date is not a duplicate
        res = pd.to_numeric(df["time_resolution_s"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        by_time = by_time[~(res[by_time] >= 86_400)]
    a, tt = animal[by_time], t[by_time]
    same = (a[1:] == a[:-1]) & (tt[1:] == tt[:-1])
    cand = np.zeros(by_time.size, dtype=bool)
    cand[1:] |= same
    cand[:-1] |= same
    rows = by_time[cand]
    if rows.size == 0:
        return out
    rank = _quality_rank(df, fix_type, rows)
    hdop = np.nan_to_num(_float(df, "hdop")[rows], nan=np.inf)
    sats = np.nan_to_num(_float(df, "n_sats")[rows], nan=0.0)
    # np.lexsort: last key is primary; file/read order (row) breaks remaining ties: the first is kept
    order = rows[np.lexsort((rows, -sats, hdop, rank, t[rows], animal[rows]))]
    dup = np.zeros(order.size, dtype=bool)
    dup[1:] = (animal[order][1:] == animal[order][:-1]) & (t[order][1:] == t[order][:-1])
    out[order[dup]] = True
    return out


def _speed_and_spikes(
    animal: np.ndarray,
    t: np.ndarray,
    lon: np.ndarray,
    lat: np.ndarray,
    by_time: np.ndarray,
    p: CleanParams,
    ref: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Iterated speed and spike filter, one compiled pass per animal (see module docstring).

    ``by_time`` holds the positions of the usable rows sorted by ``(animal, time)``; ``ref``
    (bool per row, :func:`speed_reference`) the fixes an animal's own speed limit is read from.
    Returns the ``speed`` and ``spike`` masks over all rows.

    Per round and animal (alive fixes only; distances in m, times in h):

    * ``speed``: a step faster than ``max_speed_kmh`` and longer than ``speed_min_step_m``
      blames the end farther (m) from the component-wise median of up to
      ``median_window_fixes`` fixes on each side (on a tie, the later fix);
    * ``spike``: fast in, fast out, turn back sharper than ``spike_min_turn_deg``; or an
      *out-and-back* score above ``out_and_back_ratio``::

          score = min(d_in, d_out) / (floor_m + skip_weight * d_skip + bridge_m)

      with ``d_skip`` the distance between the two neighbours and ``bridge_m`` the spread
      of a Brownian bridge between them, ``s * sqrt(dt_in * dt_out / (dt_in + dt_out))``,
      ``s`` (m per sqrt(h)) the RMS of the animal's movement scale in the local-solar-time
      bins of the two steps: the ``movement_quantile`` of ``step / sqrt(dt)`` over all its
      usable steps whose midpoint falls in the bin (the all-day value for bins with fewer
      than ``diel_min_steps`` steps). A gross error is far from *both* neighbours
      (``min``), so the fixes next to an outlier are never blamed;
    * of adjacent candidates only the worst is flagged (blamed speed fixes first, then by
      score); the others are judged again next round, once their bad neighbours are gone.
    """
    n_all = len(animal)
    if by_time.size < 2:
        return np.zeros(n_all, dtype=bool), np.zeros(n_all, dtype=bool)
    a = animal[by_time]
    starts = np.r_[0, np.flatnonzero(a[1:] != a[:-1]) + 1, a.size]
    n_bins = max(int(round(24.0 / p.diel_bin_h)), 1) if p.diel_bin_h > 0 else 1
    t_s = t[by_time].astype(np.float64) / 1e9
    limit, spike_limit = speed_limits(starts, t_s, lon[by_time], lat[by_time], p,
                                      None if ref is None else ref[by_time])
    speed, spike = speed_and_spikes(
        starts, t_s, lon[by_time], lat[by_time], n_bins,
        float(np.clip(p.movement_quantile, 0.0, 1.0)), max(int(p.diel_min_steps), 1),
        limit, float(p.speed_min_step_m), spike_limit,
        float(p.spike_min_turn_deg), float(p.out_and_back_ratio), float(p.out_and_back_floor_m),
        float(p.out_and_back_skip_weight), max(int(p.median_window_fixes), 1), max(int(p.max_iterations), 1),
    )
    speed_out = np.zeros(n_all, dtype=bool)
    spike_out = np.zeros(n_all, dtype=bool)
    speed_out[by_time[speed]] = True
    spike_out[by_time[spike]] = True
    return speed_out, spike_out


def _ends_beyond_reach(t: np.ndarray, lon: np.ndarray, lat: np.ndarray, by_time: np.ndarray, animal: np.ndarray,
                       p: CleanParams) -> np.ndarray:
    """The first and last usable fix of each animal (rows, bool) reached from its one neighbour
    faster than the animal ever moves: more than ``speed_limit_factor`` times the fastest of its
    other steps (at least ``speed_limit_floor_kmh``), over a step longer than ``speed_min_step_m``.

    A fix at either end has one neighbour, so the out-and-back rules and the smoother's
    residual test (which asks the neighbours on both sides) cannot judge it, and the profile's
    fixed limit is for any animal of the species. Left in, a gross error there is explained by
    the smoother as a regime of enormous moves, and the whole animal's movement model with it
    (``validate.py --fuzz 40 --seed 9``, setting 39: a last fix 10 km off after 15 min, a slow
    animal; 99 % of its steps then "still", its moving fixes smoothed 1.7 times farther from the
    truth than raw). ``by_time``: the usable rows in (animal, time) order. Off with
    ``end_reach_check``.

    >>> t = np.arange(30) * 900 * 10**9                               # every 15 min (ns)
    >>> lon = 10.0 + np.arange(30) * 0.0005; lat = np.full(30, 50.0)     # ~36 m per 15 min
    >>> lon[-1] = lon[-2] + 0.14                                        # 10 km in 15 min
    >>> np.flatnonzero(_ends_beyond_reach(t, lon, lat, np.arange(30), np.zeros(30, int), CleanParams())).tolist()
    [29]
    """
    out = np.zeros(len(lon), dtype=bool)
    if not p.end_reach_check or by_time.size < 3:
        return out
    a = animal[by_time]
    first = np.r_[True, a[1:] != a[:-1]]
    last = np.r_[a[1:] != a[:-1], True]
    # each animal's limit from its steps between inner fixes (the ends' own steps would raise
    # it), from the fastest of them, not a quantile: an animal that mostly rests travels fast in
    # a few per cent of its steps, and an end fix may be one of those. An animal with fewer than
    # 10 inner steps is not judged (as in speed_limits)
    inner = by_time[~first & ~last]
    lim = np.full(int(animal.max()) + 1, np.inf)
    if inner.size:
        ai = animal[inner]
        starts = np.r_[0, np.flatnonzero(ai[1:] != ai[:-1]) + 1, ai.size]
        v, g, _ = step_speeds(starts, t[inner].astype(np.float64) / 1e9, lon[inner], lat[inner], 0.0,
                              short_as_zero=p.speed_min_step_m)
        fastest = group_quantile(v, g, starts.size - 1, 1.0)
        n = np.bincount(g, minlength=starts.size - 1)
        lim[ai[starts[:-1]]] = np.where(n >= 10, np.maximum(p.speed_limit_factor * fastest, p.speed_limit_floor_kmh),
                                        np.inf)
    for end, nb in ((np.flatnonzero(first & ~last), np.flatnonzero(first & ~last) + 1),
                    (np.flatnonzero(last & ~first), np.flatnonzero(last & ~first) - 1)):
        i, j = by_time[end], by_time[nb]
        d = haversine_m(lon[i], lat[i], lon[j], lat[j])
        dt = np.abs(t[i] - t[j]).astype(np.float64) / 1e9
        with np.errstate(divide="ignore", invalid="ignore"):
            v = d / dt * 3.6
        out[i[(d > p.speed_min_step_m) & (dt > 0) & (v > lim[animal[i]])]] = True
    return out


def speed_reference(df: pd.DataFrame, p: CleanParams) -> np.ndarray:
    """Rows (bool) whose steps show an animal's speed: every fix but Argos fixes of classes
    outside ``speed_limit_argos_classes`` (an Argos fix without a class is outside them).

    >>> df = pd.DataFrame({"fix_type": ["3D", "argos", "argos", "argos", None],
    ...                    "argos_lc": [None, "3", "B", None, None]})
    >>> speed_reference(df, CleanParams()).tolist()
    [True, True, False, False, True]
    """
    argos = _str_in(df, "fix_type", ["argos"])
    if not argos.any():
        return np.ones(len(df), dtype=bool)
    return ~argos | _str_in(df, "argos_lc", p.speed_limit_argos_classes)


def step_speeds(starts: np.ndarray, t_s: np.ndarray, lon: np.ndarray, lat: np.ndarray,
                min_step_m: float, short_as_zero: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Speeds (km/h) of the steps between consecutive rows of each animal (rows sorted by
    animal then time, animal ``g`` = ``starts[g]:starts[g+1]``), steps shorter than
    ``min_step_m`` or of zero duration left out, and steps shorter than ``short_as_zero`` (m)
    given speed 0 (GPS error over a short interval is not movement).

    Returns the speeds, the animal of each, and each step's bearing (degrees).
    """
    n = t_s.size
    if n < 2:
        return np.zeros(0), np.zeros(0, np.int64), np.zeros(0)
    animal = np.repeat(np.arange(starts.size - 1), np.diff(starts))
    same = animal[1:] == animal[:-1]
    d = haversine_m(lon[:-1], lat[:-1], lon[1:], lat[1:])
    dt = t_s[1:] - t_s[:-1]
    ok = same & (dt > 0) & (d > min_step_m)
    v = np.where(d[ok] > short_as_zero, d[ok] / dt[ok] * 3.6, 0.0)
    return v, animal[1:][ok], bearing_deg(lon[:-1], lat[:-1], lon[1:], lat[1:])[ok]


def speed_limits(starts: np.ndarray, t_s: np.ndarray, lon: np.ndarray, lat: np.ndarray,
                 p: CleanParams, ref: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Speed and spike-speed limit (km/h) of every animal: the profile's, or with
    ``speed_limit_from_data`` the animal's own: ``speed_limit_factor`` × the
    ``speed_limit_quantile`` of its step speeds (never below ``speed_limit_floor_kmh``), the
    spike speed in the profile's proportion to it. ``ref`` (bool per row, optional;
    :func:`speed_reference`): the steps are those between these rows only, and an animal with
    fewer than 10 of them keeps the profile's limit.

    >>> t = np.arange(40) * 3600.0                                    # hourly, 2 km per hour
    >>> lon = 10.0 + np.arange(40) * 2000.0 / 71_700.0               # (~71.7 km per degree at 50 N)
    >>> lon[1::2] += 0.5                                             # every other fix 36 km off
    >>> p = CleanParams(speed_limit_from_data=True)
    >>> limit = lambda ref=None: round(float(speed_limits(np.array([0, 40]), t, lon, np.full(40, 50.0), p, ref)[0][0]))
    >>> limit(), limit(np.arange(40) % 2 == 0)                      # every fix; the good ones
    (113, 6)
    """
    k = starts.size - 1
    limit = np.full(k, float(p.max_speed_kmh))
    spike = np.full(k, float(p.spike_speed_kmh))
    if not p.speed_limit_from_data or k == 0:
        return limit, spike
    if ref is not None and not ref.all():
        keep = np.flatnonzero(ref)
        starts = np.searchsorted(keep, starts)  # each animal's first kept row
        t_s, lon, lat = t_s[keep], lon[keep], lat[keep]
    # every step counts; one shorter than speed_min_step_m (GPS error) as standing still
    v, a, _ = step_speeds(starts, t_s, lon, lat, 0.0, short_as_zero=p.speed_min_step_m)
    q = group_quantile(v, a, k, p.speed_limit_quantile)
    n = np.bincount(a, minlength=k)
    enough = n >= 10
    limit[enough] = np.maximum(p.speed_limit_factor * q[enough], p.speed_limit_floor_kmh)
    spike = limit * (p.spike_speed_kmh / p.max_speed_kmh)
    return limit, spike
