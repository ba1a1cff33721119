"""Polygons in longitude/latitude that cross the antimeridian or enclose a pole, made valid.

A polygon drawn in a plane centred on the data (a home range in Lambert azimuthal equal-area)
and transformed back to degrees vertex by vertex has longitudes that jump from +180 to -180
where it crosses the antimeridian: read as lon/lat, its edges then run the long way round the
world and the polygon intersects itself (a range in Chukotka or on Fiji, GEOS's "side location
conflict" when it is cut into cells). One that encloses a pole (a polar bear's, an Arctic
tern's) does not even close. Here such a ring is unwrapped into continuous longitudes, a ring
that then circles a pole is closed through it along the edge of the map, and the polygon is cut
at ±180° with the pieces beyond shifted back by 360°: valid geometry inside -180..180 that
covers the same ground. The country polygons are built the same way
(``scripts/build_boundaries.py``).
"""

from __future__ import annotations

import numpy as np
import shapely

__all__ = ["unwrap_ring", "antimeridian_polygon", "lonlat_polygons", "lonlat_lines"]


def unwrap_ring(xy: np.ndarray) -> np.ndarray:
    """A ring (lon/lat, degrees) whose consecutive longitudes jump by more than 180° (it crosses
    the antimeridian) made continuous; a ring that then does not close (it circles a pole, e.g.
    Antarctica) is closed through the pole along the edge of the map.

    >>> unwrap_ring(np.array([[179.0, 0.0], [-179.0, 0.0], [-179.0, 1.0], [179.0, 1.0], [179.0, 0.0]]))[:, 0].tolist()
    [179.0, 181.0, 181.0, 179.0, 179.0]
    """
    lon = xy[:, 0].copy()
    d = np.diff(lon)
    lon[1:] -= 360.0 * np.cumsum(np.round(d / 360.0))
    out = np.column_stack([lon, xy[:, 1]])
    drift = lon[-1] - lon[0]
    if abs(drift) > 180.0:  # circles a pole: go down (or up) to it and back along its latitude
        pole = -90.0 if xy[:, 1].mean() < 0 else 90.0
        out = np.vstack([out, [[lon[-1], pole], [lon[0], pole]], out[:1]])
    return out


def antimeridian_polygon(rings: list[np.ndarray]) -> shapely.Geometry:
    """A polygon of lon/lat rings (shell first, then holes) as valid geometry within -180..180:
    rings unwrapped (:func:`unwrap_ring`), made valid, cut at ±180 and the pieces beyond shifted
    back by 360°.

    >>> sq = [np.array([[179.0, 0.0], [-179.0, 0.0], [-179.0, 1.0], [179.0, 1.0], [179.0, 0.0]])]
    >>> g = antimeridian_polygon(sq)
    >>> g.geom_type, g.is_valid, round(g.area, 9), [round(v, 9) for v in g.bounds]
    ('MultiPolygon', True, 2.0, [-180.0, 0.0, 180.0, 1.0])
    """
    # degenerate rings (fewer than 4 points after quantisation) enclose nothing
    shell, *holes = [unwrap_ring(r) for r in rings if len(r) >= 4] or [np.zeros((0, 2))]
    if len(shell) < 4:
        return shapely.Polygon()
    # a hole must lie with its shell: shift it by whole turns to the shell's longitudes
    centre = 0.5 * (shell[:, 0].min() + shell[:, 0].max())
    holes = [h + [360.0 * np.round((centre - 0.5 * (h[:, 0].min() + h[:, 0].max())) / 360.0), 0.0] for h in holes]
    poly = shapely.make_valid(shapely.Polygon(shell, holes))
    pieces = []
    for k in (-1, 0, 1):
        window = shapely.box(-180.0 + 360.0 * k, -90.0, 180.0 + 360.0 * k, 90.0)
        part = shapely.intersection(poly, window)
        if not part.is_empty:
            pieces.append(shapely.transform(part, lambda c, k=k: c - [360.0 * k, 0.0]))
    return shapely.union_all(pieces)


def _crosses(geom: shapely.Geometry) -> bool:
    """Whether a ring of ``geom`` has consecutive longitudes more than 180° apart."""
    rings = shapely.get_rings(shapely.get_parts(geom))
    return any(np.abs(np.diff(shapely.get_coordinates(r)[:, 0])).max(initial=0.0) > 180.0 for r in rings)


def lonlat_polygons(geoms: np.ndarray) -> np.ndarray:
    """Polygons (or multipolygons) with lon/lat vertices, e.g. transformed back from a plane,
    as valid geometry within -180..180 (:func:`antimeridian_polygon` for each part); one whose
    rings never jump across the antimeridian, and any other kind of geometry, is returned as it
    is (the same object).

    >>> ring = [(179.5, 60.0), (-179.5, 60.0), (-179.5, 60.5), (179.5, 60.5)]
    >>> a, b = lonlat_polygons(np.array([shapely.Polygon(ring), shapely.box(10, 10, 11, 11)], dtype=object))
    >>> a.is_valid, round(a.area, 9), b.equals(shapely.box(10, 10, 11, 11))
    (True, 0.5, True)
    """
    out = np.asarray(geoms, dtype=object).copy()
    for i, g in enumerate(out):
        if g is None or g.geom_type not in ("Polygon", "MultiPolygon") or shapely.is_empty(g) or not _crosses(g):
            continue  # (lines are left as they are)
        parts = [antimeridian_polygon([shapely.get_coordinates(p.exterior)]
                                      + [shapely.get_coordinates(h) for h in p.interiors])
                 for p in shapely.get_parts(g) if isinstance(p, shapely.Polygon)]
        out[i] = shapely.union_all(parts) if parts else g
    return out


def _cut(geom: shapely.Geometry) -> shapely.Geometry:
    """``geom`` (unwrapped longitudes) cut at ±180° and ±540°, the pieces beyond shifted back."""
    pieces = []
    lo, hi = shapely.bounds(geom)[[0, 2]]
    for k in range(int(np.floor((lo + 180.0) / 360.0)), int(np.floor((hi + 180.0) / 360.0)) + 1):
        part = shapely.intersection(geom, shapely.box(-180.0 + 360.0 * k, -90.0, 180.0 + 360.0 * k, 90.0))
        if not part.is_empty:
            pieces.append(shapely.transform(part, lambda c, k=k: c - [360.0 * k, 0.0]))
    return shapely.union_all(pieces) if pieces else geom


def lonlat_lines(geoms: np.ndarray) -> np.ndarray:
    """Lines (or multilines) with lon/lat vertices whose consecutive longitudes jump by more than
    180° (a track across the antimeridian) cut at ±180°: each jump is read the short way round,
    the line is unwrapped into continuous longitudes and the pieces beyond ±180° are shifted back
    (a MultiLineString). Other lines, and any other kind of geometry, are returned as they are.

    >>> a, b = lonlat_lines(np.array([shapely.LineString([(179.0, 0.0), (-179.0, 2.0)]),
    ...                               shapely.LineString([(10.0, 0.0), (11.0, 1.0)])], dtype=object))
    >>> [[round(v, 6) for v in xy] for xy in shapely.get_coordinates(a).tolist()]
    [[179.0, 0.0], [180.0, 1.0], [-180.0, 1.0], [-179.0, 2.0]]
    >>> b.wkt
    'LINESTRING (10 0, 11 1)'
    """
    out = np.asarray(geoms, dtype=object).copy()
    for i, g in enumerate(out):
        if g is None or g.geom_type not in ("LineString", "MultiLineString") or shapely.is_empty(g):
            continue
        parts = shapely.get_parts(g)
        xy = [shapely.get_coordinates(p) for p in parts]
        if not any(np.abs(np.diff(c[:, 0])).max(initial=0.0) > 180.0 for c in xy):
            continue
        pieces = []
        for c in xy:
            lon = c[:, 0].copy()
            lon[1:] -= 360.0 * np.cumsum(np.round(np.diff(lon) / 360.0))
            pieces.extend(shapely.get_parts(_cut(shapely.LineString(np.column_stack([lon, c[:, 1]])))))
        out[i] = shapely.MultiLineString([p for p in pieces if p.geom_type == "LineString"])
    return out
