"""Crossing hotspots: places along a border where crossings concentrate.

Crossing points are clustered *along* the border they cross, not in the plane: each point is
projected onto the line shared by its two zones (``shapely.line_locate_point`` on the nearest
part of that line, in longitude scaled by ``cos(latitude)`` so the projection is the metric
nearest point), its position is converted to geodesic kilometres along the line (WGS84,
``pyproj.Geod``), and the 1-D positions are cut into clusters wherever two neighbours are more
than ``gap_km`` apart. Two crossings 2 km apart in a straight line on either side of a deep bend
of the border are therefore in different hotspots when the border between them is long.

Functions
---------
hotspots     clustered crossing places per border, with counts, animals, months and directions
"""

from __future__ import annotations

import dataclasses
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from shapely.ops import substring

from telemetry.arrays import distinct
from telemetry.config import HotspotParams
from telemetry.corridor.zones import load_zones, zone_borders
from telemetry.schema import endpoint_columns

__all__ = ["hotspots", "HOTSPOT_DEFAULTS"]

HOTSPOT_DEFAULTS: dict[str, Any] = dataclasses.asdict(HotspotParams())
"""Default parameters of :func:`hotspots`: split clusters at gaps longer than ``gap_km`` along the
border, extend each border segment by ``buffer_km`` at both ends, ignore crossing points more
than ``max_offset_km`` from the shared border line (e.g. a crossing via the sea), and use the
rows of these ``kind`` values."""

_GEOD = pyproj.Geod(ellps="WGS84")
_KM_PER_DEG = 111.32  # only for the max_offset_km threshold (a tolerance, not a measurement)


def hotspots(crossings: pd.DataFrame, borders: gpd.GeoDataFrame | None = None, *, zones: Any = None,
             zone_field: str | None = None, **params: Any) -> gpd.GeoDataFrame:
    """Cluster crossing points along each border line.

    Parameters
    ----------
    crossings : DataFrame
        Output of :func:`telemetry.corridor.crossings.crossings` (``animal_id``, ``kind``,
        ``from_iso``, ``to_iso``, ``time``, ``lon``, ``lat``; ``confidence`` optional).
    borders : GeoDataFrame, optional
        Border lines with ``zone_a``/``zone_b`` (or ``iso_a``/``iso_b``); default the lines
        shared by ``zones`` (the bundled countries).
    zones, zone_field
        Zone layer the crossings were computed with (only used when ``borders`` is None).
    **params
        ``gap_km`` (5.0, km along the border), ``buffer_km`` (1.0, km), ``max_offset_km``
        (10.0, km), ``kinds`` (``("crossing",)``).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per hotspot, ordered by border pair and position along the border:
        ``name`` (e.g. ``"KAZ–KGZ #1"``), ``zone_a``, ``zone_b`` (``zone_a < zone_b``), ``seq``,
        ``part`` (part of a multi-part border line), ``position_km`` (geodesic km along that part
        to the hotspot), ``start_km``, ``end_km`` (span of the crossing points), ``length_km``,
        ``n_crossings``, ``n_animals``, ``animals`` (comma-separated), ``n_a_to_b``, ``n_b_to_a``
        (crossings per direction), ``months`` (months of the year used, e.g. ``"4,7,12"``),
        ``first``, ``last`` (times), ``mean_confidence``, ``geometry`` (the point on the border at
        the median crossing position) and ``segment`` (GeoSeries: the border piece spanned by the
        crossings ± ``buffer_km``). ``attrs["unassigned"]`` counts crossings that could not be
        placed on a shared border line.

    Examples
    --------
    >>> import pandas as pd, shapely, geopandas as gpd
    >>> lines = gpd.GeoDataFrame({"zone_a": ["A"], "zone_b": ["B"]},
    ...                          geometry=[shapely.LineString([(0, 0), (0, 1)])], crs=4326)
    >>> c = pd.DataFrame({"animal_id": ["x", "y", "x"], "kind": "crossing", "from_iso": ["A", "B", "A"],
    ...                   "to_iso": ["B", "A", "B"], "lon": 0.0, "lat": [0.10, 0.11, 0.80],
    ...                   "time": pd.to_datetime(["2022-01-05", "2022-02-01", "2022-03-01"], utc=True)})
    >>> h = hotspots(c, lines)
    >>> h[["name", "n_crossings", "n_animals", "n_a_to_b", "n_b_to_a"]].values.tolist()
    [['A–B #1', 2, 2, 1, 1], ['A–B #2', 1, 1, 1, 0]]
    """
    unknown = set(params) - set(HOTSPOT_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown parameter(s): {', '.join(sorted(unknown))} (known: {', '.join(HOTSPOT_DEFAULTS)})")
    p = {**HOTSPOT_DEFAULTS, **params}
    if borders is None:
        z = load_zones(zones, zone_field) if zones is not None else None
        # a user layer's zones also border the land outside them (crossings(outside_is_place))
        outside = z.attrs.get("outside") if z is not None and not z.attrs.get("countries") else None
        lines = zone_borders(z, outside=outside)
    else:
        from telemetry.corridor.crossings import normalise_lines

        lines = normalise_lines(borders)

    c = crossings
    if "kind" in c.columns:
        c = c[c["kind"].isin(list(p["kinds"]))]
    lon = c["lon"].to_numpy(dtype=float, na_value=np.nan)
    lat = c["lat"].to_numpy(dtype=float, na_value=np.nan)
    ok = np.isfinite(lon) & np.isfinite(lat)
    c, lon, lat = c[ok], lon[ok], lat[ok]
    col_from, col_to = endpoint_columns(c)
    fa = c[col_from].astype(str).to_numpy(dtype=object)
    ta = c[col_to].astype(str).to_numpy(dtype=object)
    za, zb = np.where(fa < ta, fa, ta), np.where(fa < ta, ta, fa)
    forward = fa == za  # direction zone_a → zone_b
    times = pd.to_datetime(c["time"], utc=True) if "time" in c else pd.Series(pd.NaT, index=c.index)
    conf = c["confidence"].to_numpy(dtype=float) if "confidence" in c else np.full(len(c), np.nan)
    animals = c["animal_id"].astype(str).to_numpy(dtype=object)

    line_key = {(a, b): g for a, b, g in zip(lines["zone_a"], lines["zone_b"], lines.geometry.values, strict=True)}
    rows: list[dict[str, Any]] = []
    unassigned = 0
    pair_df = pd.DataFrame({"a": za, "b": zb})
    for (a, b), idx in pair_df.groupby(["a", "b"], sort=True).indices.items():  # one loop step per border pair
        geom = line_key.get((a, b))
        if geom is None or geom.is_empty:
            unassigned += len(idx)
            continue
        part, pos_km, offset_km, parts, cum_deg, cum_km, scale = _project(geom, lon[idx], lat[idx])
        near = offset_km <= p["max_offset_km"]
        unassigned += int((~near).sum())
        idx, part, pos_km = idx[near], part[near], pos_km[near]
        if len(idx) == 0:
            continue
        order = np.lexsort((pos_km, part))
        idx, part, pos_km = idx[order], part[order], pos_km[order]
        new = np.ones(len(idx), bool)
        new[1:] = (part[1:] != part[:-1]) | (np.diff(pos_km) > p["gap_km"])
        starts = np.flatnonzero(new)
        ends = np.r_[starts[1:], len(idx)]
        for k, (s, e) in enumerate(zip(starts, ends, strict=True)):  # one step per hotspot (few)
            members = idx[s:e]
            pk = part[s]
            span = pos_km[s:e]
            mid_km = float(np.median(span))
            loc, seg = _locate_on(parts[pk], cum_deg[pk], cum_km[pk], scale, mid_km,
                                  float(span[0]) - p["buffer_km"], float(span[-1]) + p["buffer_km"])
            t = times.iloc[members]
            months = sorted({int(m) for m in t.dt.month.dropna()})
            rows.append({
                "name": f"{a}–{b} #{k + 1}", "zone_a": a, "zone_b": b, "seq": k + 1, "part": int(pk),
                "position_km": mid_km, "start_km": float(span[0]), "end_km": float(span[-1]),
                "length_km": float(span[-1] - span[0]),
                "n_crossings": len(members), "n_animals": len(set(animals[members])),
                "animals": ",".join(sorted(set(animals[members]))),
                "n_a_to_b": int(forward[members].sum()), "n_b_to_a": int((~forward[members]).sum()),
                "months": ",".join(map(str, months)),
                "first": t.min(), "last": t.max(),
                "mean_confidence": float(np.nanmean(conf[members])) if np.isfinite(conf[members]).any() else np.nan,
                "geometry": loc, "segment": seg,
            })
    cols = ["name", "zone_a", "zone_b", "seq", "part", "position_km", "start_km", "end_km", "length_km",
            "n_crossings", "n_animals", "animals", "n_a_to_b", "n_b_to_a", "months", "first", "last",
            "mean_confidence"]
    df = pd.DataFrame(rows, columns=[*cols, "geometry", "segment"])
    out = gpd.GeoDataFrame(df[cols], geometry=gpd.GeoSeries(df["geometry"].to_numpy(dtype=object), crs="EPSG:4326"))
    out["segment"] = gpd.GeoSeries(df["segment"].to_numpy(dtype=object), crs="EPSG:4326")
    out.attrs["unassigned"] = unassigned
    out.attrs["parameters"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in p.items()}
    return out


def _project(geom: shapely.Geometry, lon: np.ndarray, lat: np.ndarray):
    """Nearest part of ``geom`` for each point and the geodesic km along it to the projection.

    Works in (lon·cos φ0, lat) so that planar nearest points are metric nearest points near φ0;
    the planar position along the part is mapped to geodesic km by interpolating the cumulative
    lengths at the vertices (exact at vertices, linear in between).
    """
    parts = shapely.get_parts(shapely.line_merge(geom) if shapely.get_type_id(geom) == 5 else geom)
    parts = parts[shapely.get_type_id(parts) == 1]
    scale = float(np.cos(np.radians(np.mean(lat))))
    sparts = shapely.transform(parts, lambda xy: xy * np.array([scale, 1.0]))
    pts = shapely.points(lon * scale, lat)
    tree = shapely.STRtree(sparts)
    pi, pa = tree.query_nearest(pts, all_matches=False)
    part = np.empty(len(lon), dtype=np.int64)
    part[pi] = pa
    pos_deg = shapely.line_locate_point(sparts[part], pts)
    offset_km = shapely.distance(sparts[part], pts) * _KM_PER_DEG
    cum_deg, cum_km = [], []
    for sp, pp in zip(sparts, parts, strict=True):  # per border part (a handful)
        xy = shapely.get_coordinates(sp)
        cum_deg.append(np.r_[0.0, np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])
        g = shapely.get_coordinates(pp)
        _, _, d = _GEOD.inv(g[:-1, 0], g[:-1, 1], g[1:, 0], g[1:, 1])
        cum_km.append(np.r_[0.0, np.cumsum(d)] / 1000.0)
    pos_km = np.zeros(len(lon))
    for k in distinct(part):  # vectorised over the points of each part
        on = part == k
        pos_km[on] = np.interp(pos_deg[on], cum_deg[k], cum_km[k])
    return part, pos_km, offset_km, sparts, cum_deg, cum_km, scale


def _locate_on(spart: shapely.LineString, cum_deg: np.ndarray, cum_km: np.ndarray, scale: float,
               mid_km: float, lo_km: float, hi_km: float) -> tuple[shapely.Geometry, shapely.Geometry]:
    """Point at ``mid_km`` and the piece ``lo_km..hi_km`` of a scaled part, back in lon/lat."""
    unscale = np.array([1.0 / scale, 1.0])
    total = cum_km[-1]
    d_mid = float(np.interp(mid_km, cum_km, cum_deg))
    d_lo = float(np.interp(max(lo_km, 0.0), cum_km, cum_deg))
    d_hi = float(np.interp(min(hi_km, total), cum_km, cum_deg))
    point = shapely.transform(shapely.line_interpolate_point(spart, d_mid), lambda xy: xy * unscale)
    piece = shapely.transform(substring(spart, d_lo, d_hi), lambda xy: xy * unscale)
    return point, piece
