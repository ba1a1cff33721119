"""Population movement corridors and their cross-border attributes.

:func:`corridors` combines two complementary methods on the same tracks:

``footprint``
    Brownian bridge footprints stacked into a count of animals per cell (Horne et al.
    2007; Sawyer et al. 2009; Merkle et al. 2022), polygons per class of that count —
    see :mod:`telemetry.corridor.footprints`. Says *where* several animals move.
``behaviour``
    Fast, parallel steps (LaPoint et al. 2013, ``move::corridor``), polygons where corridor
    steps of several animals cluster — see :mod:`telemetry.corridor.behaviour`. Says
    *where animals move as if in a corridor*.

Every polygon then gets the countries it covers, whether it touches a land border
(crosses or meets a line of :func:`telemetry.corridor.borders.border_lines`), the
border-crossing hotspots it passes through (their point within ``hotspot_dist_m``), the
animals and months that use it and its area. All planar work is in one Lambert
azimuthal equal-area projection centred on the data, so areas are exact.

Examples
--------
>>> import telemetry                                          # doctest: +SKIP
>>> from telemetry.corridor.corridors import corridors       # doctest: +SKIP
>>> polys = corridors(telemetry.process("sample_tracks"))    # doctest: +SKIP
>>> polys[polys.cross_border]                                 # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import geopandas as gpd
import numba
import numpy as np
import pandas as pd
import pyproj
import shapely

from telemetry.arrays import distinct
from telemetry.config import CORRIDOR_METHODS as METHODS
from telemetry.config import CorridorParams
from telemetry.corridor.behaviour import behaviour_polygons, corridor_steps
from telemetry.corridor.footprints import (
    Footprints,
    Grid,
    TrackArrays,
    count_polygons,
    stack_footprints,
    track_arrays,
)
from telemetry.trajectory.antimeridian import plane_to_lonlat
from telemetry.trajectory.homerange import within_laea

__all__ = ["CorridorParams", "corridors", "corridor_layers", "CORRIDOR_COLUMNS"]

CORRIDOR_COLUMNS = ("corridor_id", "method", "n_animals", "animal_count", "animals", "countries", "cross_border",
                    "hotspots", "crossings", "months", "area_km2", "geometry")
"""Columns of :func:`corridors`."""


StackFn = Callable[[TrackArrays, "CorridorParams"], Footprints]
"""``stack(track_arrays, params) -> Footprints``: per-animal footprints and their count (see ``corridors``)."""


def corridors(tracks: pd.DataFrame, hotspots: gpd.GeoDataFrame | None = None,
              borders: gpd.GeoDataFrame | None = None, *, params: CorridorParams | None = None,
              stack: StackFn | None = None, **values: Any) -> gpd.GeoDataFrame:
    """Population movement corridors by footprint stacking and by corridor behaviour.

    Parameters
    ----------
    tracks : pandas.DataFrame
        Canonical fixes or processed tracks. Uses usable rows only (``flag`` NA, time and
        coordinates present), smoothed ``lon_s``/``lat_s`` when present, ``se_m`` (or
        HDOP × UERE) as location error, ``segment_id`` when present.
    hotspots : geopandas.GeoDataFrame, optional
        Border-crossing hotspots: ``name``, point ``geometry`` (on the border), optionally
        ``n_crossings`` (crossings at the hotspot).
    borders : geopandas.GeoDataFrame, optional
        Country polygons with ``iso_a3`` (default: the bundled
        :func:`telemetry.corridor.borders.load_countries`); border lines are derived
        from them with :func:`telemetry.corridor.borders.border_lines`.
    params : CorridorParams, optional
        All parameters (default :class:`CorridorParams`); keyword arguments override fields.
    stack : callable, optional
        ``stack(track_arrays, params) -> Footprints``: how the per-animal footprints are
        computed and stacked (default :func:`stack_with_threads`, in this process; the
        Dask engine maps the animals over a cluster instead). Must give the same result.

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326, columns :data:`CORRIDOR_COLUMNS`: ``method`` (``"footprint"`` /
        ``"behaviour"``), ``n_animals`` (footprint class: every cell is used by at least
        this many animals; NA for behaviour), ``animal_count`` and ``animals`` (ids joined
        by ``;``), ``countries`` (ISO codes joined by ``;``), ``cross_border`` (touches a
        land border), ``hotspots`` (linked hotspot names), ``crossings`` (crossings at the
        linked hotspots — their ``n_crossings`` sum, else their number; 0 without
        hotspots), ``months`` (calendar months with use, e.g. ``"4;5;10"``), ``area_km2``
        (equal-area). ``attrs["parameters"]`` holds the parameters and
        ``attrs["brownian_variance_m2_s"]`` the σ²_m of each animal; with footprints,
        ``attrs["footprint_cell_m"]`` the grid's cell (m) and ``attrs["footprint_cell_source"]``
        (also among the parameters) where it came from (``"given"``, ``"bridges"``: :func:`~telemetry.corridor.footprints.bridge_cell_m`,
        ``"cost budget"``: :func:`~telemetry.corridor.footprints.budget_cell_m`, or ``"min_cell_m"``: the floor).
    """
    return corridor_layers(tracks, hotspots, borders, params=params, stack=stack, **values)["corridors"]


def corridor_layers(tracks: pd.DataFrame, hotspots: gpd.GeoDataFrame | None = None,
                    borders: gpd.GeoDataFrame | None = None, *, params: CorridorParams | None = None,
                    stack: StackFn | None = None, **values: Any) -> dict[str, gpd.GeoDataFrame]:
    """Like :func:`corridors`, also returning the corridor steps.

    Returns
    -------
    dict
        ``"corridors"``: the polygons of :func:`corridors`; ``"corridor_steps"``: the
        LaPoint corridor steps as LineStrings (EPSG:4326) with ``animal_id``,
        ``time_start``, ``time_end`` (UTC), ``speed_kmh``, ``azimuth_deg``, ``circ_var``,
        ``n_neighbours``, ``length_m`` (empty unless ``"behaviour"`` is among the methods).
    """
    p = (params or CorridorParams()).with_values(**values)
    ta = track_arrays(tracks, max_gap_h=p.max_gap_h)
    frames: list[pd.DataFrame] = []
    steps_out = _empty_steps()
    var = np.full(len(ta.labels), np.nan)
    cell_info = {}
    if ta.step_ok.any():
        if "footprint" in p.methods:
            fp = (stack or stack_with_threads)(ta, p)
            var = fp.var_m2_s
            cell_info = {"footprint_cell_m": float(fp.grid.cell_m), "footprint_cell_source": fp.grid.cell_source}
            fpoly = count_polygons(fp, p.classes)
            fpoly["months"] = _footprint_months(ta, fp.grid, fpoly["cells"])
            fpoly["method"] = "footprint"
            frames.append(fpoly.drop(columns="cells"))
        if "behaviour" in p.methods:
            steps = corridor_steps(ta, speed_prop=p.speed_prop, circ_prop=p.circ_prop,
                                   radius_frac=p.radius_frac, min_neighbours=p.min_neighbours, pooled=p.pooled)
            bpoly = behaviour_polygons(steps, buffer_m=p.buffer_m, min_animals=p.min_animals)
            bpoly["method"] = "behaviour"
            bpoly["n_animals"] = pd.NA
            frames.append(bpoly.drop(columns="n_steps"))
            steps_out = _steps_layer(steps[steps["corridor"].to_numpy(dtype=bool)], ta)
    polys = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["n_animals", "animal_codes", "months", "geometry", "method"])
    out = _attributes(polys, ta, hotspots, borders, p)
    out.attrs = {"parameters": {**dataclasses.asdict(p), **cell_info},
                 "brownian_variance_m2_s": {str(k): float(v) for k, v in zip(ta.labels, var, strict=True)
                                            if np.isfinite(v)}, **cell_info}
    return {"corridors": out, "corridor_steps": steps_out}


def grid_options(p: CorridorParams) -> dict[str, Any]:
    """The footprint grid's keywords of :func:`~telemetry.corridor.footprints.footprint_grid` (and
    :func:`~telemetry.corridor.footprints.stack_footprints`) in ``p``: one list for the threads here
    and the cluster's map-reduce (:mod:`telemetry.pipeline`)."""
    return {"cell_m": p.cell_m, "k_sigma": p.k_sigma, "max_cells": p.max_cells, "min_cell_m": p.min_cell_m,
            "max_cells_per_bridge": p.max_cells_per_bridge, "min_cell_budget": p.min_cell_budget}


def stack_with_threads(ta: TrackArrays, p: CorridorParams) -> Footprints:
    """The footprint stack of :func:`corridor_layers` in this process (threads over animals)."""
    return stack_footprints(ta, level=p.footprint_level, **grid_options(p))


# --------------------------------------------------------------------------- helpers


def _to_lonlat(geoms: np.ndarray, crs: pyproj.CRS) -> np.ndarray:
    """Degrees; a polygon across the antimeridian or round a pole is split and closed (valid), a
    line across it cut there."""
    tr = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    return plane_to_lonlat(np.asarray(geoms, dtype=object), tr.transform)


def _on_ground(geoms: np.ndarray, crs: pyproj.CRS) -> np.ndarray:
    """Polygons in the fixes' equal-area plane (:func:`~telemetry.corridor.footprints.equal_area_crs`)
    clipped to the hemisphere round its centre where they reach beyond it
    (:func:`~telemetry.trajectory.homerange.within_laea`): fixes strewn over the globe (a file of
    garbage positions) padded footprints past the rim of the plane, which came back to degrees as
    infinities and counted 1.4e9 km² of "ground". Other projections are left as they are.

    >>> crs = pyproj.CRS.from_proj4("+proj=laea +lat_0=0 +lon_0=0 +ellps=WGS84 +units=m")
    >>> far, near = _on_ground(np.array([shapely.box(-2e7, -1e6, 0.0, 1e6), shapely.box(0, 0, 1, 1)]), crs)
    >>> round(far.bounds[0] / 1e6, 2), near.area
    (-8.92, 1.0)
    """
    op = crs.coordinate_operation
    if op is None or op.method_name != "Lambert Azimuthal Equal Area":
        return geoms
    return np.asarray(within_laea(list(geoms)), dtype=object)


def _to_metric(geoms: np.ndarray, crs: pyproj.CRS) -> np.ndarray:
    tr = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    return shapely.transform(np.asarray(geoms, dtype=object),
                             lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))


def _month_of(t_s: np.ndarray) -> np.ndarray:
    """UTC calendar month (1–12) of times in s since the epoch, by a search in month starts.

    Same answer as ``DatetimeIndex((t_s * 1e9).astype("int64")).month`` (the ns are
    truncated the same way) without building a DatetimeIndex of millions of samples;
    :func:`_month_bits_kernel` does the same search per sample.
    """
    if t_s.size == 0:
        return np.zeros(0, dtype=np.int64)
    month_ns, month_of_start = _month_starts(t_s)
    return month_of_start[np.searchsorted(month_ns, (t_s * 1e9).astype("int64"), side="right") - 1]


@numba.njit(cache=True, nogil=True, inline="always")
def _or_bits(flat, m, slots, bits):  # pragma: no cover
    """``bits[flat] |= 1 << m``; with ``slots`` (sorted flat cells) the bit goes to the cell's slot, if any."""
    if slots.size == 0:
        bits[flat] |= np.uint16(1 << m)
        return
    k = np.searchsorted(slots, flat)
    if k < slots.size and slots[k] == flat:
        bits[k] |= np.uint16(1 << m)


@numba.njit(cache=True, nogil=True)
def _month_bits_kernel(xa, ya, ta_s, xb, yb, tb_s, k, fx, fy, f_month, month_ns, month_of_start,
                       x0, y0, cell, nx, ny, slots, bits):  # pragma: no cover
    """OR ``1 << month`` into the bits of each cell for ``k[s]`` evenly spaced samples of each step and
    every fix: ``bits`` per grid cell when ``slots`` is empty, else per cell of the sorted ``slots``
    (a sparse grid: only the cells asked for are kept)."""
    for s in range(xa.size):
        n = k[s]
        den = max(n - 1, 1)
        for j in range(n):
            frac = j / den
            x = xa[s] + frac * (xb[s] - xa[s])
            y = ya[s] + frac * (yb[s] - ya[s])
            i = math.floor((x - x0) / cell)
            r = math.floor((y - y0) / cell)
            if i < 0 or i >= nx or r < 0 or r >= ny:
                continue
            # the month of the sample's time, truncated to ns as DatetimeIndex would
            ns = np.int64((ta_s[s] + frac * (tb_s[s] - ta_s[s])) * 1e9)
            m = month_of_start[np.searchsorted(month_ns, ns, side="right") - 1]
            _or_bits(np.int64(r) * nx + np.int64(i), m, slots, bits)
    for q in range(fx.size):
        i = math.floor((fx[q] - x0) / cell)
        r = math.floor((fy[q] - y0) / cell)
        if 0 <= i < nx and 0 <= r < ny:
            _or_bits(np.int64(r) * nx + np.int64(i), f_month[q], slots, bits)


def _month_starts(t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts (ns since the epoch, UTC) and calendar months of every month spanned by ``t_s`` (s)."""
    ns = (t_s * 1e9).astype("int64")
    if ns.size == 0:
        return np.zeros(1, dtype=np.int64), np.ones(1, dtype=np.int64)
    lo = pd.Timestamp(int(ns.min())).to_period("M").to_timestamp()
    hi = pd.Timestamp(int(ns.max())).to_period("M").to_timestamp()
    starts = pd.date_range(lo, hi, freq="MS").as_unit("ns")
    return starts.asi8.astype(np.int64), starts.month.to_numpy().astype(np.int64)


def _footprint_months(ta: TrackArrays, grid: Grid, cells: pd.Series) -> list[tuple[int, ...]]:
    """Months in which any animal's straight-line path (sampled at ½ cell) enters each polygon.

    Every step is sampled every ½ cell (end points included) plus every fix; each grid
    cell gets a 12-bit mask of the months of its samples (one numba pass, no sample
    arrays), and each polygon the OR of the masks of its cells. Memory: 2 bytes per
    grid cell, or per polygon cell on a sparse grid.
    """
    st = np.flatnonzero(ta.step_ok)
    a = st - 1
    length = np.hypot(ta.x[st] - ta.x[a], ta.y[st] - ta.y[a])
    k = np.ceil(length / (grid.cell_m / 2)).astype(np.int64) + 1
    # sample times lie between the fix times, so the fixes' month range covers them
    month_ns, month_of_start = _month_starts(ta.t_s)
    sizes = np.array([len(c) for c in cells], dtype=np.int64)
    if sizes.size == 0:
        return []
    flat = np.concatenate([np.asarray(c, dtype=np.int64) for c in cells]) if sizes.sum() else np.zeros(0, np.int64)
    # a sparse grid keeps bits for the polygons' cells only (slots), a dense one for every cell
    slots = distinct(flat) if grid.sparse else np.zeros(0, dtype=np.int64)
    bits = np.zeros(slots.size if grid.sparse else grid.nx * grid.ny, dtype=np.uint16)
    _month_bits_kernel(ta.x[a], ta.y[a], ta.t_s[a], ta.x[st], ta.y[st], ta.t_s[st], k, ta.x, ta.y,
                       np.asarray(ta.month, dtype=np.int64), month_ns, month_of_start,
                       float(grid.x0), float(grid.y0), float(grid.cell_m), int(grid.nx), int(grid.ny), slots, bits)
    cell_bits = bits[np.searchsorted(slots, flat)] if grid.sparse else bits[flat]
    starts = np.cumsum(sizes) - sizes
    poly_bits = np.zeros(sizes.size, dtype=np.uint16)
    nonempty = sizes > 0
    if flat.size:
        poly_bits[nonempty] = np.bitwise_or.reduceat(cell_bits, starts[nonempty])
    months = np.arange(1, 13)
    has = (poly_bits[:, None] >> months[None, :]) & 1
    return [tuple(int(m) for m in months[h.astype(bool)]) for h in has]


def _attributes(polys: pd.DataFrame, ta: TrackArrays, hotspots: gpd.GeoDataFrame | None,
                borders: gpd.GeoDataFrame | None, p: CorridorParams) -> gpd.GeoDataFrame:
    from telemetry.corridor.borders import border_lines, load_countries

    n = len(polys)
    geoms = _on_ground(np.asarray(polys["geometry"].to_numpy(), dtype=object), ta.crs) if n else np.array([], dtype=object)
    labels = np.asarray(ta.labels.astype(str))
    animals = [";".join(labels[list(c)]) for c in polys.get("animal_codes", [])]
    counts = np.array([len(c) for c in polys.get("animal_codes", [])], dtype=np.int64)
    countries = np.full(n, "", dtype=object)
    cross = np.zeros(n, dtype=bool)
    hot_names = np.full(n, "", dtype=object)
    crossings = np.zeros(n, dtype=np.int64)
    if n:
        lonlat = _to_lonlat(geoms, ta.crs)
        box = shapely.box(*shapely.total_bounds(lonlat))
        cgdf = load_countries() if borders is None else borders
        cgdf = cgdf[shapely.intersects(cgdf.geometry.values, box)]
        if len(cgdf):
            cmetric = _to_metric(cgdf.geometry.values, ta.crs)
            pi, ci = shapely.STRtree(cmetric).query(geoms, predicate="intersects")
            codes = cgdf["iso_a3"].astype(str).to_numpy()
            countries = _join_by(pi, codes[ci], n)
            lines = border_lines() if borders is None else border_lines(borders)
            lines = lines[shapely.intersects(lines.geometry.values, box.buffer(0.1))]
            if len(lines):
                lmetric = _to_metric(lines.geometry.values, ta.crs)
                pred = ("dwithin", p.border_dist_m) if p.border_dist_m > 0 else ("intersects", None)
                pi, _ = shapely.STRtree(lmetric).query(geoms, predicate=pred[0], distance=pred[1])
                cross[pi] = True
        if hotspots is not None and len(hotspots):
            h = hotspots.to_crs("EPSG:4326") if hotspots.crs is not None else hotspots
            hmetric = _to_metric(h.geometry.values, ta.crs)
            pi, hi = shapely.STRtree(hmetric).query(geoms, predicate="dwithin", distance=p.hotspot_dist_m)
            names = h["name"].astype(str).to_numpy() if "name" in h else np.arange(len(h)).astype(str)
            hot_names = _join_by(pi, names[hi], n)
            weight = next((h[c].to_numpy(dtype=float, na_value=0.0) for c in ("n_crossings", "crossings")
                           if c in h), np.ones(len(h)))
            crossings = np.bincount(pi, weight[hi], minlength=n).round().astype(np.int64)
    else:
        lonlat = geoms
    out = pd.DataFrame({
        "method": polys.get("method", pd.Series([], dtype=object)).to_numpy(dtype=object),
        "n_animals": pd.array(polys.get("n_animals", pd.Series([], dtype=object)).to_numpy(), dtype="Int64"),
        "animal_count": counts,
        "animals": np.asarray(animals, dtype=object),
        "countries": countries,
        "cross_border": cross,
        "hotspots": hot_names,
        "crossings": crossings,
        "months": np.asarray([";".join(str(m) for m in ms) for ms in polys.get("months", [])], dtype=object),
        "area_km2": shapely.area(geoms) / 1e6 if n else np.zeros(0),
    })
    gdf = gpd.GeoDataFrame(out, geometry=gpd.GeoSeries(lonlat, crs="EPSG:4326"))
    # deterministic order: method, class, largest first
    gdf["_m"] = gdf["method"].map({m: i for i, m in enumerate(METHODS)})
    gdf = gdf.sort_values(["_m", "n_animals", "area_km2"], ascending=[True, True, False], kind="stable")
    gdf = gdf.drop(columns="_m").reset_index(drop=True)
    gdf.insert(0, "corridor_id", np.arange(1, len(gdf) + 1, dtype=np.int64))
    return gdf[list(CORRIDOR_COLUMNS)]


def _join_by(rows: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Sorted unique ``values`` per row index, joined by ``;`` (``""`` for rows without any)."""
    out = np.full(n, "", dtype=object)
    if rows.size == 0:
        return out
    df = pd.DataFrame({"r": rows, "v": values}).drop_duplicates().sort_values(["r", "v"])
    joined = df.groupby("r")["v"].agg(";".join)
    out[joined.index.to_numpy()] = joined.to_numpy()
    return out


def _empty_steps() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"animal_id": pd.Series([], dtype=object), "time_start": pd.Series([], dtype="datetime64[ns, UTC]"),
         "time_end": pd.Series([], dtype="datetime64[ns, UTC]"), "speed_kmh": [], "azimuth_deg": [],
         "circ_var": [], "n_neighbours": pd.Series([], dtype=np.int64), "length_m": []},
        geometry=gpd.GeoSeries([], crs="EPSG:4326"))


def _steps_layer(steps: pd.DataFrame, ta: TrackArrays) -> gpd.GeoDataFrame:
    if steps.empty:
        return _empty_steps()
    lines = shapely.linestrings(np.stack([steps[["x0", "x1"]].to_numpy(), steps[["y0", "y1"]].to_numpy()], axis=-1))
    labels = np.asarray(ta.labels.astype(str))

    def utc(s: pd.Series) -> pd.DatetimeIndex:
        return pd.to_datetime(np.round(s.to_numpy() * 1e9).astype(np.int64), utc=True)

    out = pd.DataFrame({
        "animal_id": labels[steps["animal"].to_numpy()],
        "time_start": utc(steps["t0_s"]), "time_end": utc(steps["t1_s"]),
        "speed_kmh": steps["speed_kmh"].to_numpy(), "azimuth_deg": steps["azimuth_deg"].to_numpy(),
        "circ_var": steps["circ_var"].to_numpy(), "n_neighbours": steps["n_neighbours"].to_numpy(),
        "length_m": steps["length_m"].to_numpy(),
    })
    return gpd.GeoDataFrame(out, geometry=gpd.GeoSeries(_to_lonlat(lines, ta.crs), crs="EPSG:4326"))
