"""Zone layers: the polygons whose borders a crossing crosses.

By default the zones are the bundled countries (:func:`telemetry.corridor.borders.load_countries`,
zone code = ISO alpha-3); any polygon layer (a GeoDataFrame or a file readable by pyogrio:
GeoPackage, Shapefile, GeoJSON, ...) can take their place, with the zone named by one of its
fields (``zone_field``), e.g. protected areas or hunting blocks. Every layer is brought to the
same shape: valid polygons, one row per zone, longitude/latitude (EPSG:4326), and a stated
boundary accuracy per zone (metres, 1 σ) that the crossing detector adds to each fix's own error.

Functions
---------
load_zones        a zone layer in canonical form (countries by default)
zone_borders      the boundary lines shared by pairs of zones
"""

from __future__ import annotations

import os
from functools import lru_cache

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from telemetry.errors import TelemetryError

__all__ = ["load_zones", "zone_borders", "BORDER_ERROR_M", "USER_BORDER_ERROR_M", "OUTSIDE_COUNTRIES",
           "OUTSIDE_USER"]

BORDER_ERROR_M: dict[str, float] = {"10m": 500.0, "50m": 2500.0}
"""Stated 1-σ accuracy (m) of the bundled Natural Earth boundaries by resolution.

``telemetry/data/README.md``: the 1:10m line is good to a few hundred metres at best and often
off by 1 km in mountains (500 m as σ); 1:50m is five times coarser (2.5 km)."""

USER_BORDER_ERROR_M = 100.0
"""Default 1-σ accuracy (m) assumed for a user zone layer (pass ``border_error_m`` for yours)."""

OUTSIDE_COUNTRIES = "sea"
"""Side label of a fix outside every country polygon."""

OUTSIDE_USER = "outside"
"""Side label of a fix outside every polygon of a user zone layer."""


def load_zones(
    zones: gpd.GeoDataFrame | str | os.PathLike[str] | None = None,
    zone_field: str | None = None,
    *,
    layer: str | int | None = None,
    name_field: str | None = None,
    border_error_m: float | None = None,
) -> gpd.GeoDataFrame:
    """A zone layer in canonical form.

    Parameters
    ----------
    zones : GeoDataFrame, path or None
        Polygons, or a file pyogrio can read; None → the bundled countries.
    zone_field : str, optional
        Column naming each zone (required for user layers unless the layer has ``iso_a3``
        or ``zone``). Rows with the same value are dissolved into one zone.
    layer : str or int, optional
        Layer of a multi-layer file (GeoPackage).
    name_field : str, optional
        Column with a display name (default: the zone code, or ``name`` for countries).
    border_error_m : float, optional
        1-σ accuracy of the boundaries (m). Default: :data:`BORDER_ERROR_M` by resolution for
        the bundled countries, :data:`USER_BORDER_ERROR_M` for user layers.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``zone`` (str), ``name`` (str), ``accuracy_m`` (float, metres) and ``geometry``
        (valid (Multi)Polygon, EPSG:4326), one row per zone in first-seen order.
        ``attrs["outside"]`` is the side label for fixes outside every zone (``"sea"`` for
        countries, ``"outside"`` otherwise) and ``attrs["countries"]`` tells which kind it is.

    Examples
    --------
    >>> z = load_zones()
    >>> z.loc[z.zone == "KGZ", "accuracy_m"].item()
    500.0
    >>> import shapely, geopandas as gpd
    >>> user = gpd.GeoDataFrame({"NAME": ["a", "b"]},
    ...                         geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)], crs=4326)
    >>> load_zones(user, zone_field="NAME").zone.tolist()
    ['a', 'b']
    """
    if zones is None:
        out = _countries_zones().copy()
        if border_error_m is not None:
            out["accuracy_m"] = float(border_error_m)
        out.attrs = {"outside": OUTSIDE_COUNTRIES, "countries": True}
        return out

    if isinstance(zones, (str, os.PathLike)):
        try:
            gdf = gpd.read_file(zones, layer=layer, engine="pyogrio")
        except Exception as err:  # pyogrio raises several types; the user needs one line
            raise TelemetryError(f"cannot read zone layer: {err}", str(zones)) from err
    elif isinstance(zones, gpd.GeoDataFrame):
        gdf = zones
    else:
        raise TelemetryError(f"zones must be a GeoDataFrame or a file path, not {type(zones).__name__}")

    countries = False
    if zone_field is None:
        for cand in ("zone", "iso_a3"):
            if cand in gdf.columns:
                zone_field = cand
                break
        else:
            raise TelemetryError(f"zone layer needs zone_field= (one of: {', '.join(map(str, gdf.columns))})")
    if zone_field not in gdf.columns:
        raise TelemetryError(f"zone_field {zone_field!r} is not a column of the zone layer "
                             f"(columns: {', '.join(map(str, gdf.columns))})")
    countries = zone_field == "iso_a3" and "resolution" in gdf.columns

    # repair in the layer's own CRS, where its straight edges were drawn
    gdf = gdf.set_geometry(gpd.GeoSeries(_polygonal(shapely.make_valid(np.asarray(gdf.geometry.values, dtype=object))),
                                         crs=gdf.crs, index=gdf.index))
    if gdf.crs is None:
        b = gdf.total_bounds
        if not (np.all(np.isfinite(b)) and -180 <= b[0] and b[2] <= 180 and -90 <= b[1] and b[3] <= 90):
            raise TelemetryError("zone layer has no CRS and its coordinates are not longitude/latitude")
        gdf = gdf.set_crs("EPSG:4326")
    elif not gdf.crs.equals("EPSG:4326"):
        gdf = gdf.to_crs("EPSG:4326")

    # again after reprojection (which can fold a ring); make_valid can return collections with
    # stray lines/points, and only the area counts for sides
    geom = _polygonal(shapely.make_valid(np.asarray(gdf.geometry.values, dtype=object)))
    keep = ~(shapely.is_missing(geom) | shapely.is_empty(geom)) & gdf[zone_field].notna().to_numpy()
    codes = gdf[zone_field].astype(str).to_numpy()[keep]
    names = (gdf[name_field].astype(str).to_numpy()[keep] if name_field
             else gdf["name"].astype(str).to_numpy()[keep] if countries and "name" in gdf else codes)
    if countries:
        acc = gdf["resolution"].map(BORDER_ERROR_M).to_numpy(dtype=float, na_value=np.nan)[keep]
        acc = np.where(np.isfinite(acc), acc, max(BORDER_ERROR_M.values()))
    else:
        acc = np.full(int(keep.sum()), USER_BORDER_ERROR_M)
    if border_error_m is not None:
        acc = np.full(int(keep.sum()), float(border_error_m))
    out = _dissolve(codes, names, acc, geom[keep])
    out.attrs = {"outside": OUTSIDE_COUNTRIES if countries else OUTSIDE_USER, "countries": countries}
    return out


def zone_borders(zones: gpd.GeoDataFrame | None = None, *, outside: str | None = None) -> gpd.GeoDataFrame:
    """Boundary lines shared by pairs of zones.

    Parameters
    ----------
    zones : GeoDataFrame, optional
        A layer from :func:`load_zones` (default: the bundled countries).
    outside : str, optional
        Label of the land outside every zone, when it counts as a side (user zone layers): each
        zone's boundary that no other zone shares is then a line between it and ``outside``.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``zone_a``, ``zone_b`` (``zone_a < zone_b``) and ``geometry``
        ((Multi)LineString, EPSG:4326), one row per pair that shares a boundary. For the bundled
        countries this is :func:`telemetry.corridor.borders.border_lines` (cached).

    Examples
    --------
    >>> import shapely, geopandas as gpd
    >>> z = load_zones(gpd.GeoDataFrame({"z": ["a", "b"]},
    ...                geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)], crs=4326), "z")
    >>> zone_borders(z).geometry.iloc[0].length
    1.0
    >>> zone_borders(z, outside="outside")[["zone_a", "zone_b"]].values.tolist()
    [['a', 'b'], ['a', 'outside'], ['b', 'outside']]
    >>> [round(g.length, 6) for g in zone_borders(z, outside="outside").geometry]
    [1.0, 3.0, 3.0]
    """
    from telemetry.corridor.borders import border_lines

    if zones is None or (zones.attrs.get("countries") and len(zones) == len(_countries_zones())):
        lines = border_lines()
    else:
        lines = border_lines(gpd.GeoDataFrame({"iso_a3": zones["zone"].to_numpy()},
                                              geometry=zones.geometry.values, crs=zones.crs))
    out = gpd.GeoDataFrame({"zone_a": lines["iso_a"].to_numpy(), "zone_b": lines["iso_b"].to_numpy()},
                           geometry=lines.geometry.values, crs="EPSG:4326")
    if outside is None or zones is None or len(zones) == 0:
        return out
    # each zone's outline less what the other zones cover (their shared boundaries included)
    geoms = np.asarray(zones.geometry.values, dtype=object)
    tree = shapely.STRtree(geoms)
    own = []
    for i, g in enumerate(geoms):
        near = [j for j in tree.query(g, predicate="intersects") if j != i]
        line = shapely.boundary(g)
        if near:
            line = shapely.difference(line, shapely.union_all(geoms[near]))
        own.append(shapely.line_merge(line) if shapely.get_type_id(line) == 5 else line)
    own = np.asarray(own, dtype=object)
    keep = ~(shapely.is_empty(own) | shapely.is_missing(own))
    code = zones["zone"].astype(str).to_numpy(dtype=object)[keep]
    extra = gpd.GeoDataFrame({"zone_a": np.where(code < outside, code, outside),
                              "zone_b": np.where(code < outside, outside, code)},
                             geometry=own[keep], crs="EPSG:4326")
    out = pd.concat([out, extra], ignore_index=True)
    return out.sort_values(["zone_a", "zone_b"], kind="stable").reset_index(drop=True)


@lru_cache(maxsize=1)
def _countries_zones() -> gpd.GeoDataFrame:
    from telemetry.corridor.borders import load_countries

    c = load_countries()
    acc = c["resolution"].map(BORDER_ERROR_M).to_numpy(dtype=float, na_value=np.nan)
    acc = np.where(np.isfinite(acc), acc, max(BORDER_ERROR_M.values()))
    return gpd.GeoDataFrame({"zone": c["iso_a3"].astype(str).to_numpy(), "name": c["name"].astype(str).to_numpy(),
                             "accuracy_m": acc}, geometry=c.geometry.values, crs="EPSG:4326")


def _polygonal(geom: np.ndarray) -> np.ndarray:
    """Keep only the polygonal parts of each geometry (None when there are none)."""
    out = geom.copy()
    tid = shapely.get_type_id(geom)
    mixed = np.flatnonzero(~np.isin(tid, (-1, 3, 6)))
    for i in mixed:  # only the few geometries make_valid turned into collections
        parts = shapely.get_parts(geom[i])
        polys = parts[np.isin(shapely.get_type_id(parts), (3, 6))]
        out[i] = shapely.union_all(polys) if len(polys) else None
    return out


def _dissolve(codes: np.ndarray, names: np.ndarray, acc: np.ndarray, geom: np.ndarray) -> gpd.GeoDataFrame:
    uniq, first, inv = np.unique(codes, return_index=True, return_inverse=True)
    order = np.argsort(first)  # first-seen order, not alphabetical
    if len(uniq) == len(codes):
        idx = np.sort(first)
        return gpd.GeoDataFrame({"zone": codes[idx], "name": names[idx], "accuracy_m": acc[idx].astype(float)},
                                geometry=geom[idx], crs="EPSG:4326")
    merged = [shapely.union_all(geom[inv == k]) for k in order]
    return gpd.GeoDataFrame(
        {"zone": uniq[order], "name": names[first[order]],
         "accuracy_m": pd.Series(acc).groupby(inv).max().to_numpy()[order]},
        geometry=merged, crs="EPSG:4326").reset_index(drop=True)
