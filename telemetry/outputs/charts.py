"""Summary charts (PNG) for humans: fix success, daily distance, crossings over time.

Charts show monthly or per-animal aggregates only (no positions), so they can sit next to
the public export. Rendering is deterministic: matplotlib's Agg backend on a bare
:class:`~matplotlib.figure.Figure` (no pyplot state), the bundled DejaVu Sans font, fixed
size and dpi, and no ``Software`` / date metadata in the PNG, so the same tables give
byte-identical files.

Examples
--------
>>> import telemetry                                                    # doctest: +SKIP
>>> tracks = telemetry.process("sample_tracks")                         # doctest: +SKIP
>>> write_charts("out/charts", tracks, telemetry.crossings(tracks))     # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from telemetry.config import ChartParams
from telemetry.io.atomic import atomic_write

__all__ = ["monthly_fix_success", "crossings_by_border_month", "fix_success_chart", "daily_distance_chart",
           "crossings_chart", "write_charts"]

_RC = {
    "font.family": "DejaVu Sans",  # ships with matplotlib: same glyphs on every machine
    "font.size": 9,
    "axes.titlesize": 10,
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "path.simplify": True,
    "svg.hashsalt": "telemetry",
}
_PNG_META = {"Software": None}  # matplotlib's default stamps its version; leave it out

MAX_ANIMALS = ChartParams().max_animals
"""Most animals a per-animal chart shows: beyond that rows are unreadable (and the fix-success
heat map of 2,000 animals would exceed matplotlib's 65,536-pixel limit). Which animals are
kept is said in the chart title."""


def monthly_fix_success(tracks: pd.DataFrame) -> pd.DataFrame:
    """Fix success (%) per animal and UTC month, as :mod:`telemetry.trajectory.quality` defines it.

    Success = rows with a position / attempts expected from the animal's median fix
    interval that month (long gaps count as at most 24 missed attempts, see
    :data:`telemetry.trajectory.quality.MAX_MISSED_PER_GAP`).

    The numbers of :func:`telemetry.trajectory.quality.group_stats` over (animal, month) — the same
    float operations in the same order, so the same floats — computed from integer group
    codes and only the statistics needed here (``group_stats`` also takes HDOP quantiles,
    3-D shares …: ~0.45 s per million fixes against ~0.1 s).

    Returns
    -------
    pandas.DataFrame
        ``animal_id``, ``month`` (``YYYY-MM``), ``rows``, ``fixes``, ``fix_success_pct``.
    """
    from telemetry.arrays import group_codes, group_time_order, time_ns, unique_ints, usable_mask

    cols = ["animal_id", "month", "rows", "fixes", "fix_success_pct"]
    # only rows inside each animal's span of usable fixes: a corrupt timestamp (e.g. a
    # GPS week rollover flagged by clean) must not open a month of its own
    codes, labels = group_codes(tracks)
    t = time_ns(tracks)
    ok = usable_mask(tracks)
    first = np.full(len(labels), np.iinfo(np.int64).max)
    last = np.full(len(labels), np.iinfo(np.int64).min)
    np.minimum.at(first, codes[ok], t[ok])
    np.maximum.at(last, codes[ok], t[ok])
    inside = tracks["time"].notna().to_numpy() & (t >= first[codes]) & (t <= last[codes])
    # the animal's rank among the sorted names (-1: no animal id, a row in no group),
    # mapped per animal rather than making a string per row
    na = np.asarray(pd.isna(labels), dtype=bool)
    names_a, inverse = np.unique(np.asarray(labels[~na].astype(str), dtype=object), return_inverse=True)
    animal_code = np.full(len(labels), -1, dtype=np.int64)
    animal_code[~na] = inverse.ravel()
    rows_in = np.flatnonzero(inside)
    rows_in = rows_in[animal_code[codes[rows_in]] >= 0]
    if not rows_in.size:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    animal = animal_code[codes[rows_in]]
    t_in = t[rows_in]
    # months from the integer times, formatted once per distinct month
    months, month_code = unique_ints(t_in.view("datetime64[ns]").astype("datetime64[M]").view(np.int64))
    months = months.view("datetime64[M]")
    month_names = np.asarray(pd.DatetimeIndex(months.astype("datetime64[ns]")).strftime("%Y-%m"), dtype=object)
    # group = (animal, month), numbered in the order groupby(sort=True) lists them
    key = animal * months.size + month_code.ravel()
    g_key, group = unique_ints(key)  # the key of each group; each row's group
    n_groups = g_key.size
    # rows by group then time, stable (group_stats' sort); tracks from telemetry.process
    # are sorted by animal and time already, which one pass checks
    order = group_time_order(group, t_in)
    if order is not None:
        rows_in, group, t_in = rows_in[order], group[order], t_in[order]
    same = group[1:] == group[:-1]
    # intervals (h) between consecutive rows of a group: pandas' own total_seconds (its
    # float rounding is the reference) of the time differences in the column's unit, taken
    # as integer ticks (no Timestamp arrays)
    time = pd.to_datetime(tracks["time"], utc=True).array
    ticks = np.diff(time.asi8[rows_in]).view(f"timedelta64[{time.unit}]")
    dt_h = np.full(rows_in.size, np.nan)
    dt_h[1:] = np.where(same, np.asarray(pd.array(ticks).total_seconds(), dtype=float) / 3600.0, np.nan)
    positive = np.where(dt_h > 0, dt_h, np.nan)
    # median positive interval per group (pandas' groupby median, as group_stats takes it)
    interval = pd.Series(positive).groupby(group, sort=True).median().reindex(np.arange(n_groups)).to_numpy()
    from telemetry.trajectory.quality import MAX_MISSED_PER_GAP

    with np.errstate(invalid="ignore"):
        slots = np.clip(np.round(positive / interval[group]), 1, MAX_MISSED_PER_GAP)
    slots = np.where(np.isnan(slots), 1.0, slots)
    # every row here has a time: has_fix = both coordinates present
    lon = tracks["lon"].to_numpy(dtype=float, na_value=np.nan)[rows_in]
    lat = tracks["lat"].to_numpy(dtype=float, na_value=np.nan)[rows_in]
    fix = np.isfinite(lon) & np.isfinite(lat)
    argos = ((tracks["fix_type"] == "argos").to_numpy(dtype=bool, na_value=False)[rows_in]
             if "fix_type" in tracks else np.zeros(rows_in.size, dtype=bool))
    n_rows = np.bincount(group, minlength=n_groups)
    fixes = np.bincount(group[fix], minlength=n_groups)
    n_argos = np.bincount(group[argos], minlength=n_groups)
    expected = np.maximum(np.bincount(group, weights=slots, minlength=n_groups), n_rows)
    scheduled = ~np.isnan(interval) & (n_argos < 0.5 * n_rows)
    with np.errstate(invalid="ignore", divide="ignore"):
        pct = np.where(scheduled, 100.0 * fixes / expected, np.nan)
    out = pd.DataFrame({
        "animal_id": names_a[g_key // months.size],
        "month": month_names[g_key % months.size],
        "rows": n_rows.astype(np.int64),
        "fixes": fixes.astype(np.int64),
        "fix_success_pct": pct,
    }).astype({"animal_id": str, "month": str})
    return out.sort_values(["animal_id", "month"], kind="stable").reset_index(drop=True)


def _daily_km(tracks: pd.DataFrame) -> pd.DataFrame:
    """``animal_id``, ``distance_km`` per animal and UTC day, rows by animal then day.

    The numbers of :func:`telemetry.trajectory.metrics.daily_distance` (a step counts for
    the day of the fix it arrives at; same pandas sums, so the same floats), from integer
    day numbers and one integer group key instead of per-row Timestamps and dates.
    """
    from telemetry.arrays import group_codes, time_ns, usable_mask

    ok = usable_mask(tracks)
    codes, labels = group_codes(tracks)
    day = time_ns(tracks)[ok] // 86_400_000_000_000  # floor: UTC calendar day number
    code = codes[ok]
    if not code.size:
        return pd.DataFrame(columns=["animal_id", "distance_km"])
    span = int(day.max() - day.min()) + 1
    key = code * span + (day - day.min())  # sorts as (animal, day)
    step = pd.Series(tracks["step_m"].to_numpy(dtype=float, na_value=np.nan)[ok])
    km = step.groupby(key, sort=True).sum() / 1000.0
    group = km.index.to_numpy() // span
    animal = labels.take(group)
    if isinstance(tracks["animal_id"].dtype, pd.CategoricalDtype):
        animal = pd.Categorical(animal, dtype=tracks["animal_id"].dtype)
    return pd.DataFrame({"animal_id": animal, "distance_km": km.to_numpy()})


def crossings_by_border_month(crossings: pd.DataFrame, kinds: tuple[str, ...] = ("crossing",)) -> pd.DataFrame:
    """Crossings per border and UTC month (both directions), a month × border count table."""
    from telemetry.outputs.layers import crossing_counts

    c = crossing_counts(crossings)
    c = c[c["kind"].isin(kinds)]
    if c.empty:
        return pd.DataFrame()
    return c.pivot_table(index="month", columns="border", values="n_events", aggfunc="sum", fill_value=0)


def _figure(w: float, h: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=_RC["figure.dpi"], layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path) -> Path:
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", metadata=_PNG_META))
    return path


def _note(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_axis_off()


def fix_success_chart(tracks: pd.DataFrame, path: str | os.PathLike[str], *, max_animals: int = MAX_ANIMALS) -> Path:
    """Heat map of monthly fix success (%) per animal → PNG."""
    import matplotlib as mpl

    tab = monthly_fix_success(tracks)
    with mpl.rc_context(_RC):
        grid = tab.pivot(index="animal_id", columns="month", values="fix_success_pct") if len(tab) else None
        title = "Fix success per animal and month"
        if grid is not None and len(grid) > max_animals:
            # the collars that need attention: lowest mean monthly fix success
            keep = grid.mean(axis=1).sort_values(kind="stable").index[:max_animals]
            title = f"Fix success per month: the {max_animals} of {len(grid):,} animals with the lowest"
            grid = grid.loc[grid.index.isin(keep)]
        if grid is not None:
            # contiguous months, so a gap in the data shows as a gap in the chart
            grid = grid.reindex(columns=pd.period_range(grid.columns.min(), grid.columns.max(),
                                                        freq="M").strftime("%Y-%m"))
        n_rows = 0 if grid is None else len(grid)
        fig = _figure(9, max(2.5, 0.32 * n_rows + 1.6))
        ax = fig.add_subplot()
        if grid is None or grid.empty:
            _note(ax, "no timed rows")
        else:
            im = ax.imshow(grid.to_numpy(dtype=float), aspect="auto", cmap="viridis", vmin=0, vmax=100,
                           interpolation="nearest")
            ax.set_yticks(range(n_rows), grid.index.astype(str))
            step = max(1, len(grid.columns) // 12)
            ax.set_xticks(range(0, len(grid.columns), step), grid.columns[::step], rotation=45, ha="right")
            fig.colorbar(im, ax=ax, label="fix success (%)")
            ax.set_xlabel("month (UTC)")
        ax.set_title(title)
        return _save(fig, Path(path))


def daily_distance_chart(tracks: pd.DataFrame, path: str | os.PathLike[str], *,
                         max_animals: int = MAX_ANIMALS) -> Path:
    """Box plot of distance travelled per day (km, sum of steps) for each animal → PNG."""
    import matplotlib as mpl

    from telemetry.trajectory.metrics import daily_distance

    if not len(tracks):
        dd = pd.DataFrame(columns=["animal_id", "distance_km"])
    elif "step_m" in tracks.columns:
        dd = _daily_km(tracks)
    else:
        dd = daily_distance(tracks)
    with mpl.rc_context(_RC):
        # one array per animal (iterating the groups: get_group() of a name from .groups can
        # miss under pandas' string dtype)
        per_animal = ({str(k): v.to_numpy(dtype=float) for k, v in
                       dd.groupby(dd["animal_id"].astype(str), sort=True)["distance_km"]} if len(dd) else {})
        names = sorted(per_animal)
        title = "Daily distance travelled (UTC days, sum of steps)"
        if len(names) > max_animals:
            # animals evenly spaced in the ranking by median daily distance: the chart spans the population
            med = pd.Series({k: float(np.median(v)) for k, v in per_animal.items()}).sort_values(kind="stable")
            pick = np.unique(np.round(np.linspace(0, len(med) - 1, max_animals)).astype(int))
            names = sorted(med.index[pick])
            title = (f"Daily distance (UTC days): {len(names)} of {len(med):,} animals, "
                     "evenly spaced by median")
        fig = _figure(9, 3.8)
        ax = fig.add_subplot()
        if not names:
            _note(ax, "no usable fixes")
        else:
            data = [per_animal[n] for n in names]
            ax.boxplot(data, tick_labels=names, showfliers=True, flierprops={"markersize": 2})
            ax.set_ylabel("distance per day (km)")
            ax.tick_params(axis="x", rotation=45)
            ax.grid(axis="y", color="0.9")
        ax.set_title(title)
        return _save(fig, Path(path))


def crossings_chart(crossings: pd.DataFrame | None, path: str | os.PathLike[str]) -> Path:
    """Stacked bars of border crossings per month, one colour per border → PNG."""
    import matplotlib as mpl

    tab = crossings_by_border_month(crossings) if crossings is not None else pd.DataFrame()
    with mpl.rc_context(_RC):
        fig = _figure(9, 3.8)
        ax = fig.add_subplot()
        if tab.empty:
            _note(ax, "no border crossings")
        else:
            # every month between the first and last, so gaps in time show as gaps
            months = pd.period_range(tab.index.min(), tab.index.max(), freq="M").strftime("%Y-%m")
            tab = tab.reindex(months, fill_value=0)
            x = np.arange(len(tab))
            bottom = np.zeros(len(tab))
            colours = mpl.colormaps["tab10"]
            for k, border in enumerate(tab.columns):
                v = tab[border].to_numpy(dtype=float)
                ax.bar(x, v, bottom=bottom, label=str(border), color=colours(k % 10), width=0.8)
                bottom += v
            step = max(1, len(x) // 12)
            ax.set_xticks(x[::step], tab.index[::step], rotation=45, ha="right")
            ax.set_ylabel("crossings")
            ax.yaxis.get_major_locator().set_params(integer=True)
            ax.legend(title="border", fontsize=8, frameon=False)
            ax.grid(axis="y", color="0.9")
        ax.set_title("Border crossings per month (UTC)")
        return _save(fig, Path(path))


def write_charts(folder: str | os.PathLike[str], tracks: pd.DataFrame | None = None,
                 crossings: pd.DataFrame | None = None, *, params: ChartParams | None = None) -> list[Path]:
    """Write the charts that the given tables allow into ``folder``; return their paths.

    ``fix_success.png`` and ``daily_distance.png`` need ``tracks``; ``crossings.png`` is
    written whenever ``crossings`` is given (an empty table gives a "no crossings" chart).
    """
    folder = Path(folder)
    out: list[Path] = []
    if tracks is not None:
        n = (params or ChartParams()).max_animals
        out.append(fix_success_chart(tracks, folder / "fix_success.png", max_animals=n))
        out.append(daily_distance_chart(tracks, folder / "daily_distance.png", max_animals=n))
    if crossings is not None:
        out.append(crossings_chart(crossings, folder / "crossings.png"))
    return out
