"""What goes into each product: the public layers (generalised to a grid, counts by month), the
internal layers (exact tracks, crossings, clusters) and the metadata every file carries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely

from telemetry.io.points import PointLayer, plain_columns
from telemetry.outputs.formats import jsonable
from telemetry.outputs.i18n import N_
from telemetry.schema import endpoint_columns
from telemetry.threads import thread_map
from telemetry.trajectory.antimeridian import lonlat_lines

PUBLIC_LAYERS = ("corridors", "hotspots", "crossing_counts", "home_ranges")


INTERNAL_LAYERS = ("tracks", "crossings", "hotspots", "corridors", "home_ranges", "clusters")


DEFAULT_LICENCE = "CC-BY-4.0"


BORDER_NOTE = N_("International borders are shown as in Natural Earth (naturalearthdata.com, public domain); "
               "their depiction implies no position on disputed borders or territories.")


def _gdf(df: Any, geometry: Any = None) -> Any:
    """GeoDataFrame in EPSG:4326; ``geometry=None`` → a column of missing geometries."""
    import geopandas as gpd

    if geometry is None:
        geometry = np.full(len(df), None, dtype=object)
    df = pd.DataFrame(df).reset_index(drop=True)
    return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(np.asarray(geometry, dtype=object), crs="EPSG:4326"))


def public_layers(crossings: pd.DataFrame | None = None, hotspots: pd.DataFrame | None = None,
                  corridors: pd.DataFrame | None = None, home_ranges: pd.DataFrame | None = None, *,
                  grid_deg: float = 0.1, min_animals: int = 3, min_confidence: float = 0.5) -> dict[str, Any]:
    """Generalised, aggregate layers that are safe to publish (see :mod:`telemetry.outputs.generalise`).

    Parameters
    ----------
    crossings, hotspots, corridors, home_ranges : DataFrame, optional
        Outputs of :func:`telemetry.crossings`, :func:`telemetry.hotspots`,
        :func:`telemetry.corridors`, :func:`telemetry.home_ranges`; None → layer skipped.
    grid_deg : float
        Generalisation grid (degrees; 0.1 = GBIF "high sensitivity").
    min_animals : int
        Fewest distinct animals behind a published polygon, cell or count (see
        :class:`telemetry.config.PublicParams`); 1 publishes every item.
    min_confidence : float
        Crossings below this confidence are not counted.

    Returns
    -------
    dict of GeoDataFrame
        ``corridors``: polygons replaced by the union of the grid cells they touch, areas (km²,
        of the precise polygon) rounded to whole km², those of fewer than ``min_animals``
        animals left out; ``hotspots``: one grid cell (polygon) per border pair and cell, with
        summed counts and first/last month (fewer than ``min_animals`` animals: left out);
        ``crossing_counts``: events per border × month × direction × kind, no geometry (rows of
        fewer animals merged to border × year × kind, ``month`` = ``YYYY``, ``from``/``to`` =
        ``both``; left out if still fewer); ``home_ranges``: with ``min_animals`` 1 each animal's
        range generalised, else the cells inside the ranges of at least ``min_animals`` animals
        (per method and level, ``n_animals`` per polygon). Each layer's ``attrs["disclosure"]``
        counts what was left out. No exact point, time or animal path survives.
    """
    from telemetry.outputs import generalise as gen

    gen.check_grid_deg(grid_deg)
    k = max(int(min_animals), 1)
    out: dict[str, Any] = {}
    if corridors is not None:
        keep = [c for c in ("corridor_id", "method", "n_animals", "animal_count", "countries", "cross_border",
                            "hotspots", "crossings", "months", "area_km2") if c in corridors.columns]
        df = pd.DataFrame(corridors[keep]).reset_index(drop=True)
        if "area_km2" in df:
            df["area_km2"] = df["area_km2"].round(0)
        ok = corridor_animals(df, distinct=True) >= k  # distinct animals, not the class
        geom = gen.generalise_polygons(corridors.geometry.to_numpy()[ok], grid_deg)
        out["corridors"] = _gdf(df[ok].reset_index(drop=True), geom)
        out["corridors"].attrs["disclosure"] = {"left_out": int((~ok).sum()), "min_animals": k}
    if hotspots is not None:
        h = _public_hotspots(hotspots, grid_deg)
        ok = (pd.to_numeric(h["n_animals"], errors="coerce").fillna(0).to_numpy() >= k) if len(h) else np.zeros(0, bool)
        out["hotspots"] = h[ok].reset_index(drop=True)
        out["hotspots"].attrs["disclosure"] = {"left_out": int((~ok).sum()), "min_animals": k}
    if crossings is not None:
        certain, n_uncertain = confident(crossings, min_confidence)
        counts, info = _protected_counts(certain, k)
        out["crossing_counts"] = _gdf(counts, None)
        out["crossing_counts"].attrs["disclosure"] = {**info, "below_confidence": n_uncertain,
                                                      "min_confidence": float(min_confidence), "min_animals": k}
    if home_ranges is not None:
        if "contour" in home_ranges.columns:  # the AKDE's CI contours stay internal: estimates only
            home_ranges = home_ranges[home_ranges["contour"].astype(str).to_numpy() == "estimate"]
        out["home_ranges"] = _public_ranges(home_ranges, grid_deg, k)
    return out


def corridor_animals(df: pd.DataFrame, *, distinct: bool) -> np.ndarray:
    """Animals per corridor polygon: with ``distinct`` the animals using it (``animal_count``),
    else the footprint class (``n_animals``: cells used by at least that many); the other column
    where the first is missing, 1 where both are.

    >>> df = pd.DataFrame({"n_animals": [2.0, None], "animal_count": [3, 1]})
    >>> corridor_animals(df, distinct=True).tolist(), corridor_animals(df, distinct=False).tolist()
    ([3.0, 1.0], [2.0, 1.0])
    """
    cols = ("animal_count", "n_animals") if distinct else ("n_animals", "animal_count")
    n = pd.Series(np.nan, index=df.index, dtype=float)
    for c in cols:
        if c in df.columns:
            n = n.fillna(pd.to_numeric(df[c], errors="coerce").astype(float))
    return n.fillna(1).to_numpy()


def _protected_counts(crossings: pd.DataFrame, k: int) -> tuple[pd.DataFrame, dict[str, int]]:
    """:func:`crossing_counts` with rows of fewer than ``k`` animals merged to border × year × kind
    (both directions); merged rows still below ``k`` are left out."""
    ends = endpoint_columns(crossings)
    events = crossing_events(crossings) if len(crossings) else None
    tab = _counts(events, ends)
    if k <= 1 or tab.empty:
        return tab, {"merged_rows": 0, "left_out_rows": 0, "left_out_events": 0}
    small = tab["n_animals"].to_numpy() < k
    keys = ["border", "month", *ends, "kind"]
    in_small = events.merge(tab.loc[small, keys], on=keys, how="inner")
    in_small["month"] = in_small["month"].str[:4]
    in_small[list(ends)] = "both"
    merged = _counts(in_small, ends)
    publish = merged["n_animals"].to_numpy() >= k
    kept = pd.concat([tab[~small], merged[publish]], ignore_index=True)
    kept = kept.sort_values(keys, kind="stable").reset_index(drop=True)
    info = {"merged_rows": int(small.sum()), "left_out_rows": int((~publish).sum()),
            "left_out_events": int(merged.loc[~publish, "n_events"].sum())}
    return kept, info


def _public_ranges(home_ranges: pd.DataFrame, grid_deg: float, k: int) -> Any:
    """Home ranges for the public: each animal's generalised range when ``k`` is 1, else per method
    and level the grid cells inside at least ``k`` animals' ranges, one polygon per animal count."""
    from telemetry.outputs import generalise as gen

    keep = [c for c in ("animal_id", "method", "level_pct", "n_fixes", "area_km2") if c in home_ranges.columns]
    df = pd.DataFrame(home_ranges[keep]).reset_index(drop=True)
    geoms = home_ranges.geometry.to_numpy()
    if k <= 1:
        if "area_km2" in df:
            df["area_km2"] = df["area_km2"].round(0)
        out = _gdf(df, gen.generalise_polygons(geoms, grid_deg))
        out.attrs["disclosure"] = {"left_out": 0, "min_animals": k}
        return out
    rows, shapes = [], []
    method = df["method"].astype(str) if "method" in df else pd.Series("range", index=df.index)
    level = df["level_pct"] if "level_pct" in df else pd.Series(np.nan, index=df.index)
    animal = df["animal_id"].astype(str) if "animal_id" in df else pd.Series(df.index.astype(str), index=df.index)
    codes = pd.factorize(animal, sort=True)[0]
    for (m, lv), idx in df.groupby([method, level], sort=True, dropna=False).groups.items():
        idx = [r for r in idx if geoms[r] is not None and not geoms[r].is_empty]
        # ranges on threads (the GEOS cuts release the GIL), as runs of cells: cost and memory follow
        # the rows × the pieces per row, not the cells (a tern's range holds millions)
        runs = thread_map(lambda r: gen.runs_of(geoms[r], grid_deg), idx)
        if not sum(len(p[0]) for p in runs):  # (ranges that cover no cell)
            continue
        who = np.concatenate([np.full(len(p[0]), codes[r], dtype=np.int64) for r, p in zip(idx, runs, strict=True)])
        # one animal's runs merged (it may have several polygons here), then animals per cell by a sweep
        # along each row: +1 where a run starts, -1 after it ends
        _, row, first, last = gen.merge_runs(*(np.concatenate([p[q] for p in runs]) for q in range(3)), owner=who)
        for n, (r_n, f_n, l_n) in _overlap_counts(row, first, last, k):
            merged = gen.runs_polygon(r_n, f_n, l_n, grid_deg)
            rows.append({"method": m, "level_pct": lv, "n_animals": n, "cells": int((l_n - f_n + 1).sum())})
            shapes.append(shapely.orient_polygons(shapely.normalize(merged)))
    cols = ["method", "level_pct", "n_animals", "cells"]
    out = _gdf(pd.DataFrame(rows, columns=cols), np.array(shapes, dtype=object))
    out.attrs["disclosure"] = {"left_out": int(animal.nunique()) if not rows else 0, "min_animals": k,
                               "note": f"ranges shown only where at least {k} animals' ranges overlap"}
    return out


def _overlap_counts(row: np.ndarray, first: np.ndarray, last: np.ndarray,
                    k: int) -> list[tuple[int, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """For each count ``n ≥ k`` of overlapping runs (row, first..last columns; each animal's runs
    disjoint), the runs of cells covered exactly ``n`` times, in increasing ``n``.

    >>> [(n, [a.tolist() for a in r]) for n, r in _overlap_counts(np.array([0, 0, 0]), np.array([0, 2, 3]),
    ...                                                         np.array([4, 6, 3]), 2)]
    [(2, [[0, 0], [2, 4], [2, 4]]), (3, [[0], [3], [3]])]
    """
    # events in (row, column) order; every run adds and removes one in its own row, so the running
    # sum is back at zero at the end of each row and needs no reset
    col = np.r_[first, last + 1]
    rw = np.r_[row, row]
    step = np.r_[np.ones(first.size, np.int64), -np.ones(first.size, np.int64)]
    order = np.lexsort((col, rw))
    col, rw, count = col[order], rw[order], np.cumsum(step[order])
    # the count after the last event at a column holds up to the next event's column
    last_at = np.r_[(col[1:] != col[:-1]) | (rw[1:] != rw[:-1]), True]
    col, rw, count = col[last_at], rw[last_at], count[last_at]
    ok = (count >= k)[:-1] & (rw[1:] == rw[:-1])
    lo, hi, r, c = col[:-1][ok], col[1:][ok] - 1, rw[:-1][ok], count[:-1][ok]
    return [(int(n), (r[c == n], lo[c == n], hi[c == n])) for n in np.unique(c)]


def crossing_events(crossings: pd.DataFrame) -> pd.DataFrame:
    """One row per event, as published: ``border`` (``"KAZ–KGZ"``, zones in sorted order),
    ``month`` (``YYYY-MM``, UTC; ``unknown`` without a time), the endpoint columns, ``kind`` and
    ``animal`` (text).

    >>> ev = crossing_events(pd.DataFrame({"animal_id": ["a"], "from_iso": ["KGZ"], "to_iso": ["KAZ"],
    ...                                    "time": pd.to_datetime(["2022-03-05"], utc=True)}))
    >>> ev[["border", "month", "kind"]].values.tolist()
    [['KAZ–KGZ', '2022-03', 'crossing']]
    """
    from telemetry.outputs.generalise import month

    col_from, col_to = endpoint_columns(crossings)
    fa = crossings[col_from].astype(str).to_numpy(dtype=object)
    ta = crossings[col_to].astype(str).to_numpy(dtype=object)
    return pd.DataFrame({
        "border": np.where(fa < ta, fa + "–" + ta, ta + "–" + fa),
        "month": month(crossings["time"]).fillna("unknown").to_numpy(dtype=object),
        col_from: fa, col_to: ta,
        "kind": crossings["kind"].astype(str).to_numpy(dtype=object) if "kind" in crossings else "crossing",
        "animal": crossings["animal_id"].astype(str).to_numpy(dtype=object),
    })


def confident(crossings: pd.DataFrame, min_confidence: float) -> tuple[pd.DataFrame, int]:
    """The events at least ``min_confidence`` certain (a missing confidence counts as 0; a table
    without the column is kept whole) and how many were below it."""
    if "confidence" not in crossings.columns or min_confidence <= 0:
        return crossings, 0
    conf = pd.to_numeric(crossings["confidence"], errors="coerce").to_numpy(dtype=float)
    sure = np.nan_to_num(conf, nan=0.0) >= min_confidence
    return crossings[sure], int((~sure).sum())


def crossing_counts(crossings: pd.DataFrame) -> pd.DataFrame:
    """Border events per border × month × direction × kind (no points, no exact times).

    Returns
    -------
    pandas.DataFrame
        ``border`` (``"KAZ–KGZ"``, zones in sorted order), ``month`` (``YYYY-MM``, UTC),
        ``from_iso``, ``to_iso`` (``from_zone``, ``to_zone`` for a user zone layer), ``kind``
        (``crossing``/``excursion``), ``n_events``,
        ``n_animals``; sorted by border, month, direction, kind.
    """
    return _counts(crossing_events(crossings) if crossings is not None and len(crossings) else None,
                   endpoint_columns(crossings) if crossings is not None else ("from_iso", "to_iso"))


def _counts(events: pd.DataFrame | None, ends: tuple[str, str]) -> pd.DataFrame:
    """Events and distinct animals per border × month × direction × kind of a :func:`crossing_events` table."""
    cols = ["border", "month", *ends, "kind", "n_events", "n_animals"]
    if events is None or len(events) == 0:
        return pd.DataFrame({c: pd.Series(dtype=object if c[:2] != "n_" else np.int64) for c in cols})
    tab = events.groupby(cols[:5], sort=True).agg(n_events=("animal", "size"), n_animals=("animal", "nunique"))
    return tab.reset_index()[cols].astype({"n_events": np.int64, "n_animals": np.int64})


def _public_hotspots(hotspots: pd.DataFrame, grid_deg: float) -> Any:
    """Hotspots → one cell per border pair and cell, counts summed, months unioned."""
    from telemetry.outputs import generalise as gen

    pts = hotspots.geometry.to_numpy()
    lon, lat = shapely_xy(pts)
    ok = np.isfinite(lon) & np.isfinite(lat)
    h = pd.DataFrame(hotspots.drop(columns=[c for c in ("geometry", "segment") if c in hotspots.columns]))
    h = h.reset_index(drop=True)[ok]
    i, j = gen.cell_index(lon[ok], lat[ok], grid_deg)
    h = h.assign(_i=i, _j=j, first_month=gen.month(h["first"]).to_numpy(dtype=object),
                 last_month=gen.month(h["last"]).to_numpy(dtype=object))
    cols = ["name", "zone_a", "zone_b", "n_crossings", "n_animals", "n_a_to_b", "n_b_to_a", "months",
            "first_month", "last_month"]
    if h.empty:
        return _gdf(pd.DataFrame({c: pd.Series(dtype=object) for c in cols}), np.array([], dtype=object))

    def union(values: pd.Series, sep: str = ",", key: Any = str) -> str:
        items = {v for s in values.dropna().astype(str) for v in s.split(sep) if v}
        return sep.join(sorted(items, key=key))

    g = h.groupby(["zone_a", "zone_b", "_i", "_j"], sort=True)
    tab = g.agg(name=("name", lambda s: "; ".join(sorted(s.astype(str)))),
                n_crossings=("n_crossings", "sum"), n_a_to_b=("n_a_to_b", "sum"), n_b_to_a=("n_b_to_a", "sum"),
                n_animals=("animals", lambda s: len(union(s).split(",")) if union(s) else 0),
                months=("months", lambda s: union(s, key=int)),
                first_month=("first_month", "min"), last_month=("last_month", "max")).reset_index()
    geom = gen.cell_polygons(tab["_i"].to_numpy(), tab["_j"].to_numpy(), grid_deg)
    return _gdf(tab[cols], geom)


def shapely_xy(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x, y of point geometries (NaN for missing or empty; centroid for non-points)."""
    import shapely

    geoms = np.asarray(geoms, dtype=object)
    bad = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    pts = np.where(bad, None, geoms)
    pts = np.where(shapely.get_type_id(pts) == 0, pts, shapely.centroid(pts))
    x, y = shapely.get_x(pts), shapely.get_y(pts)
    return np.where(bad, np.nan, x), np.where(bad, np.nan, y)


def internal_layers(tracks: pd.DataFrame | None = None, crossings: pd.DataFrame | None = None,
                    hotspots: pd.DataFrame | None = None, corridors: pd.DataFrame | None = None,
                    home_ranges: pd.DataFrame | None = None) -> dict[str, Any]:
    """Exact layers for the field team (NOT for publication: positions and times are exact).

    ``tracks`` become points (every row that has coordinates, flagged ones included, with
    their ``flag``); ``clusters`` (from ``cluster_id``) are cluster centroids; hotspots
    keep their border ``segment`` as WKT; the other layers are passed through.
    """
    return build_internal_layers(tracks, crossings, hotspots, corridors, home_ranges, stream_tracks=False)


def track_lines(tracks: pd.DataFrame, *, steps_from_metrics: bool = False) -> Any:
    """One LineString per animal and segment through its usable fixes, in time order.

    ``steps_from_metrics=True`` says ``tracks`` come unchanged from :func:`telemetry.process`:
    the lengths then add up its ``step_m`` instead of measuring the steps again (the same
    floats, ~0.4 s less per million fixes; see :func:`_steps_m`).

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326; ``animal_id``, ``segment_id`` (NA without segments), ``start`` / ``end``
        (UTC), ``n_fixes`` and ``length_km`` (geodesic, sum of the steps between the
        line's fixes); runs of a single fix are left out (no line).
    """
    import geopandas as gpd
    import shapely

    from telemetry.arrays import group_codes, sorted_usable

    pos, codes, t = sorted_usable(tracks)
    seg = (tracks["segment_id"].to_numpy(dtype=float, na_value=-1.0)[pos] if "segment_id" in tracks.columns
           else np.full(pos.size, -1.0))
    lon = tracks["lon"].to_numpy(dtype=float, na_value=np.nan)[pos]
    lat = tracks["lat"].to_numpy(dtype=float, na_value=np.nan)[pos]
    new = np.ones(pos.size, dtype=bool)
    new[1:] = (codes[1:] != codes[:-1]) | (seg[1:] != seg[:-1])
    line = np.cumsum(new) - 1
    n = np.bincount(line) if pos.size else np.zeros(0, np.int64)
    keep = n[line] >= 2
    _, labels = group_codes(tracks)
    first = np.flatnonzero(new)[n >= 2]
    last = first + n[n >= 2] - 1
    step = np.zeros(pos.size)
    if pos.size > 1:
        step[1:] = np.where(new[1:], 0.0, _steps_m(tracks, pos, new, lon, lat, steps_from_metrics)[1:])
    length = np.bincount(line, weights=step, minlength=n.size)[n >= 2] / 1000.0
    _, ids = np.unique(line[keep], return_inverse=True)
    geoms = shapely.linestrings(np.column_stack([lon[keep], lat[keep]]), indices=ids) if keep.any() \
        else np.array([], dtype=object)
    # a line that jumps across the antimeridian is cut there (else a GIS draws it round the world)
    geoms = lonlat_lines(geoms)
    out = pd.DataFrame({
        "animal_id": np.asarray(labels.astype(str))[codes[first]] if first.size else np.array([], dtype=object),
        "segment_id": pd.array(np.where(seg[first] >= 0, seg[first], np.nan), dtype="Int64"),
        "start": pd.to_datetime(t[first], utc=True),
        "end": pd.to_datetime(t[last], utc=True),
        "n_fixes": n[n >= 2].astype(np.int64),
        "length_km": length,
    })
    return gpd.GeoDataFrame(out, geometry=gpd.GeoSeries(geoms, crs="EPSG:4326"))


def _steps_m(tracks: pd.DataFrame, pos: np.ndarray, new: np.ndarray, lon: np.ndarray, lat: np.ndarray,
             from_metrics: bool) -> np.ndarray:
    """Geodesic step (m) from each sorted usable fix to the previous one (meaningless where ``new``).

    ``pos`` are :func:`~telemetry.trajectory._arrays.sorted_usable` positions, ``new`` marks
    the first fix of each animal and segment. In tracks straight from
    :func:`telemetry.process` (``from_metrics``), :func:`telemetry.metrics` measured exactly
    these steps on ``lon``/``lat`` into ``step_m`` (same fixes, order, segments and numba
    geodesic, so the same floats): they are taken from there, provided ``step_m`` is NaN
    exactly at the line starts (a guard, not a proof: a fix flagged or moved since would
    leave stale steps that no cheap test finds, hence the opt-in). Otherwise measured here.
    """
    from telemetry.trajectory.geodesic import distance_m

    if from_metrics and "step_m" in tracks.columns and "metrics" in tracks.attrs.get("steps", ()):
        known = tracks["step_m"].to_numpy(dtype=float, na_value=np.nan)[pos]
        if np.array_equal(np.isfinite(known), ~new):
            return known
    out = np.zeros(pos.size)
    out[1:] = distance_m(lon[:-1], lat[:-1], lon[1:], lat[1:])
    return out


def build_internal_layers(tracks: pd.DataFrame | None, crossings: pd.DataFrame | None, hotspots: pd.DataFrame | None,
                     corridors: pd.DataFrame | None, home_ranges: pd.DataFrame | None, *,
                     stream_tracks: bool, fix_points: bool = True,
                     steps_from_metrics: bool = False) -> dict[str, Any]:
    """:func:`internal_layers`; ``stream_tracks=True`` gives the tracks as a :class:`PointLayer`
    (for :func:`write_gpkg_layers`: same GeoPackage, no GeoDataFrame of every fix);
    ``fix_points=False`` replaces the per-fix ``tracks`` layer by ``track_lines``
    (:func:`track_lines`, with ``steps_from_metrics``)."""
    out: dict[str, Any] = {}
    if tracks is not None and not fix_points:
        out["track_lines"] = track_lines(tracks, steps_from_metrics=steps_from_metrics)
    elif tracks is not None and stream_tracks and PointLayer(tracks).geometry_type() == "Point":
        # (a layer without any point goes the GeoDataFrame way: GDAL lays out the file of
        # an empty layer differently when it comes through Arrow)
        out["tracks"] = PointLayer(tracks)
    elif tracks is not None:
        df = plain_columns(pd.DataFrame(tracks))
        lon = df["lon"].to_numpy(dtype=float, na_value=np.nan)
        lat = df["lat"].to_numpy(dtype=float, na_value=np.nan)
        has = np.isfinite(lon) & np.isfinite(lat)
        import geopandas as gpd

        out["tracks"] = _gdf(df[has].reset_index(drop=True), gpd.points_from_xy(lon[has], lat[has]))
    if crossings is not None:
        out["crossings"] = crossings
    if hotspots is not None:
        h = hotspots.copy()
        if "segment" in h.columns:
            seg = h.pop("segment")
            h["segment_wkt"] = [g.wkt if g is not None else None for g in seg]  # a few hotspots
        out["hotspots"] = h
    if corridors is not None:
        out["corridors"] = corridors
    if home_ranges is not None:
        out["home_ranges"] = home_ranges
    if tracks is not None and "cluster_id" in tracks.columns:
        from telemetry.trajectory.segment import cluster_table

        ct = cluster_table(tracks)
        if stream_tracks and len(ct) and np.isfinite(ct[["lon", "lat"]].to_numpy(dtype=float)).all():
            # ~100,000 resting clusters per million fixes: streamed from the columns like
            # the tracks (same GeoPackage layer, no shapely point per cluster)
            out["clusters"] = PointLayer(ct)
        else:
            import geopandas as gpd

            out["clusters"] = _gdf(ct, gpd.points_from_xy(ct["lon"], ct["lat"]))
    return out


SYNTHETIC_NOTE = ("made from SYNTHETIC collar data (simulated animals, e.g. the bundled sample), "
                  "not from observations of real animals.")


def synthetic_sources(tracks: pd.DataFrame | None) -> list[str]:
    """Input files that declare themselves synthetic (``SYNTHETIC`` in the file name, as the
    bundled sample's do): everything made from them must say so."""
    if tracks is None:
        return []
    names = [str(r.get("source", "")) for r in tracks.attrs.get("sources") or []]
    if not names and "source" in tracks.columns:
        names = [str(c) for c in tracks["source"].astype("category").cat.categories]
    # (any part: a workbook's sheet, SYNTHETIC_x.xlsx::Sheet1, or an archive's member, pack.zip::SYNTHETIC_x.csv)
    return sorted({Path(n.split("::")[0]).name for n in names
                   if any("SYNTHETIC" in Path(part).name for part in n.split("::"))})


def export_metadata(*, audience: str, grid_deg: float | None, params: dict[str, Any] | None = None,
                    generated: str | None = None, tracks: pd.DataFrame | None = None,
                    layers: dict[str, Any] | None = None, licence: str = DEFAULT_LICENCE,
                    study: str = "") -> dict[str, Any]:
    """Metadata of an export (goes into the GeoJSON FeatureCollection as ``"telemetry"``).

    Provenance: ``study`` (given, else :func:`study_name` of the tracks), ``period`` (first
    and last month of the usable fixes; the full times for internal exports), the
    generalisation and parameters, the location-error model the tracks were smoothed with
    (``error_model``, from their ``attrs``), the licence and the tool version.

    ``generated`` is never the wall-clock time (that would break byte-identical reruns):
    it is the value given, else derived from the data — the month of the last usable fix
    (``YYYY-MM``, public: times are only shown to the month), or the full time of that fix
    for internal exports; ``generated_from`` says which.
    """
    from telemetry.version import __version__

    basis = "given"
    if generated is None:
        last = _last_time(tracks, layers)
        if last is not None:
            generated = last.strftime("%Y-%m") if audience == "public" else last.strftime("%Y-%m-%dT%H:%M:%SZ")
            basis = "month of the last fix in the data" if audience == "public" else "time of the last fix"
        else:
            basis = "no times in the data"
    first = _first_time(tracks)
    last = _last_time(tracks, None) if tracks is not None else None
    fmt = "%Y-%m" if audience == "public" else "%Y-%m-%dT%H:%M:%SZ"
    meta: dict[str, Any] = {
        "title": "Collar telemetry: movement corridors and border crossings",
        "audience": audience,
        "study": study or study_name(tracks),
        "period": {"first": first.strftime(fmt) if first is not None else None,
                   "last": last.strftime(fmt) if last is not None else None},
        "generated": generated,
        "generated_from": basis,
        "tool": "telemetry",
        "tool_version": __version__,
        "licence": licence,
        "borders_note": BORDER_NOTE,
        "layers": sorted(layers) if layers else [],
        "parameters": jsonable(params or {}),
    }
    error_model = tracks.attrs.get("error_model") if tracks is not None else None
    if error_model:  # the collars' location error the positions were smoothed with (issue 14)
        meta["error_model"] = jsonable(dict(error_model))
    synthetic = synthetic_sources(tracks)
    if synthetic:
        meta["title"] = "SYNTHETIC DATA – " + meta["title"]
        meta["synthetic"] = SYNTHETIC_NOTE + " Sources: " + ", ".join(synthetic)
    if audience == "public":
        meta["generalisation"] = {
            "grid_deg": grid_deg,
            "positions": (f"every coordinate is a corner or centre of a {grid_deg}° × {grid_deg}° lon/lat grid "
                          "aligned on 0°, 0°: points are given as the cell holding them, polygons as the union "
                          "of the cells they touch (so they only grow); locations are revealed only to one cell"),
            "times": "calendar month (UTC)",
            "omitted": "raw fixes, tracks, exact crossing points and times, individual crossing events, "
                       "resting clusters",
            "practice": "GBIF sensitive-species data generalisation (Chapman 2020), high sensitivity = 0.1°",
        }
        disclosure = {name: dict(layer.attrs["disclosure"]) for name, layer in sorted((layers or {}).items())
                      if hasattr(layer, "attrs") and layer.attrs.get("disclosure")}
        if disclosure:
            meta["generalisation"]["disclosure_control"] = disclosure
    else:
        meta["warning"] = "EXACT POSITIONS OF A SENSITIVE SPECIES: do not publish or share outside the team."
    return meta


def study_name(tracks: pd.DataFrame | None) -> str:
    """The study the tracks come from: the distinct values of a Movebank ``study-name`` column
    (joined with "; "), else the folders (or, at the top level, the files) of the inputs.

    >>> study_name(pd.DataFrame({"study-name": ["Tien Shan", "Tien Shan"]}))
    'Tien Shan'
    >>> t = pd.DataFrame({"x": [1]}); t.attrs["sources"] = [{"source": "collars/2022/a.csv", "format": "csv"}]
    >>> study_name(t)
    '2022'
    """
    if tracks is None:
        return ""
    for col in ("study-name", "study_name", "study"):
        if col in tracks.columns:
            names = sorted({str(v) for v in tracks[col].dropna().unique() if str(v).strip()})
            if names:
                return "; ".join(names)
    names = [str(r.get("source", "")) for r in tracks.attrs.get("sources") or [] if r.get("format")]
    if not names and "source" in tracks.columns:
        names = [str(c) for c in tracks["source"].astype("category").cat.categories]
    parts = {Path(n.split("::")[0]).parent.name or Path(n.split("::")[0]).stem for n in names if n}
    return ", ".join(sorted(parts))


def _first_time(tracks: pd.DataFrame | None) -> pd.Timestamp | None:
    """Earliest usable fix time, or None."""
    if tracks is None or not len(tracks) or "time" not in tracks.columns:
        return None
    from telemetry.arrays import usable_mask

    t = tracks["time"][usable_mask(tracks)]
    return pd.Timestamp(t.min()).tz_convert("UTC") if t.notna().any() else None


def _last_time(tracks: pd.DataFrame | None, layers: dict[str, Any] | None) -> pd.Timestamp | None:
    """Latest usable fix time, else the latest time found in the layers."""
    if tracks is not None and len(tracks):
        from telemetry.arrays import usable_mask

        t = tracks["time"][usable_mask(tracks)]
        if t.notna().any():
            return pd.Timestamp(t.max()).tz_convert("UTC")
    best = None
    for layer in (layers or {}).values():
        layer = layer.df if isinstance(layer, PointLayer) else layer  # a streamed layer: its table
        for c in layer.columns:
            if isinstance(layer[c].dtype, pd.DatetimeTZDtype) and layer[c].notna().any():
                m = pd.Timestamp(layer[c].max()).tz_convert("UTC")
                best = m if best is None or m > best else best
    return best


def layer_parameters(params: dict[str, Any], **layers: Any) -> dict[str, Any]:
    """The run's parameters plus each layer's own (``attrs["parameters"]``)."""
    out = {"process": params} if params else {}
    for name, layer in layers.items():
        if layer is not None and layer.attrs.get("parameters"):
            out[name] = layer.attrs["parameters"]
    return jsonable(out)
