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

from collections.abc import Callable

import numpy as np
import shapely

__all__ = ["unwrap_ring", "antimeridian_polygon", "plane_to_lonlat", "lonlat_lines"]


def unwrap_ring(xy: np.ndarray, ccw: bool | None = None) -> np.ndarray:
    """A ring (lon/lat, degrees) whose consecutive longitudes jump by more than 180° (it crosses
    the antimeridian) made continuous; a ring that then does not close (it circles a pole, e.g.
    Antarctica) is closed through the pole along the edge of the map: the pole it encloses, on
    its left where it was drawn counter-clockwise (``ccw``; a shell, in a plane that keeps the
    sense of turning), on its right where clockwise; without ``ccw``, the pole of its
    hemisphere (its mean latitude's), which fails a ring that reaches far across the equator:
    a range near the size of a hemisphere has a boundary whose mean latitude is near 0.

    >>> unwrap_ring(np.array([[179.0, 0.0], [-179.0, 0.0], [-179.0, 1.0], [179.0, 1.0], [179.0, 0.0]]))[:, 0].tolist()
    [179.0, 181.0, 181.0, 179.0, 179.0]

    A shell walked westward round the South Pole (its interior on the left, the south), a quarter of it
    at 60° S and the rest at 30° N (mean latitude +8°): the turning finds the pole, the mean latitude does not.

    >>> lon = np.linspace(0.0, -360.0, 37)
    >>> ring = np.column_stack([(lon + 180) % 360 - 180, np.where(lon > -90, -60.0, 30.0)])
    >>> unwrap_ring(ring, ccw=True)[-2, 1], unwrap_ring(ring)[-2, 1]
    (np.float64(-90.0), np.float64(90.0))
    """
    def unwrapped(ring: np.ndarray) -> np.ndarray:
        lon = ring[:, 0].copy()
        lon[1:] -= 360.0 * np.cumsum(np.round(np.diff(lon) / 360.0))
        return np.column_stack([lon, ring[:, 1]])

    out = unwrapped(xy)
    drift = out[-1, 0] - out[0, 0]
    if abs(drift) > 180.0:  # circles a pole: go down (or up) to it and back along its latitude
        if ccw is None:
            pole = -90.0 if xy[:, 1].mean() < 0 else 90.0
        else:  # (walking east, the left is north)
            pole = 90.0 if (drift > 0) == ccw else -90.0
        # from the vertex nearest the pole, whose meridian down to it crosses no other edge (from
        # any vertex, a wavy ring can cross its own meridian again on the way to the pole)
        k = int(np.argmax(xy[:-1, 1] * np.sign(pole))) if len(xy) > 1 else 0
        if k:
            ring = np.vstack([xy[k:-1], xy[:k + 1]])
            out = unwrapped(ring)
        out = np.vstack([out, [[out[-1, 0], pole], [out[0, 0], pole]], out[:1]])
    return out


def antimeridian_polygon(rings: list[np.ndarray], ccw: bool | None = None) -> shapely.Geometry:
    """A polygon of lon/lat rings (shell first, then holes) as valid geometry within -180..180:
    rings unwrapped (:func:`unwrap_ring`; ``ccw`` says how the shell turns, the holes the other
    way), made valid, cut at ±180 and the pieces beyond shifted back by 360°.

    >>> sq = [np.array([[179.0, 0.0], [-179.0, 0.0], [-179.0, 1.0], [179.0, 1.0], [179.0, 0.0]])]
    >>> g = antimeridian_polygon(sq)
    >>> g.geom_type, g.is_valid, round(g.area, 9), [round(v, 9) for v in g.bounds]
    ('MultiPolygon', True, 2.0, [-180.0, 0.0, 180.0, 1.0])
    """
    # degenerate rings (fewer than 4 points after quantisation) enclose nothing
    turn = [ccw] + [None if ccw is None else not ccw] * (len(rings) - 1)
    shell, *holes = [unwrap_ring(r, c) for r, c in zip(rings, turn) if len(r) >= 4] or [np.zeros((0, 2))]
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


def _crossing(geoms: np.ndarray) -> np.ndarray:
    """Per geometry (bool), whether a ring or line of it has consecutive longitudes more than 180°
    apart; one pass over all their vertices.

    >>> _crossing(np.array([shapely.LineString([(179, 0), (-179, 1)]), shapely.box(0, 0, 1, 1), None], dtype=object)).tolist()
    [True, False, False]
    """
    parts, owner = shapely.get_parts(geoms, return_index=True)
    poly = shapely.get_type_id(parts) == 3
    rings, r_owner = shapely.get_rings(parts[poly], return_index=True)
    lines = np.concatenate([rings, parts[~poly]])
    l_owner = np.concatenate([owner[poly][r_owner], owner[~poly]])
    xy, c_line = shapely.get_coordinates(lines, return_index=True)
    jump = (np.abs(np.diff(xy[:, 0])) > 180.0) & (c_line[1:] == c_line[:-1])
    out = np.zeros(len(geoms), dtype=bool)
    out[l_owner[c_line[1:][jump]]] = True
    return out


def plane_to_lonlat(geoms: np.ndarray, inverse: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
                    densify_m: float | np.ndarray | None = None) -> np.ndarray:
    """Geometries drawn in a plane (metres) back to degrees, valid within -180..180.

    ``inverse(x, y) -> (lon, lat)`` is the plane's inverse projection, which must keep the sense
    of turning (any azimuthal or conformal projection does); ``densify_m`` the longest edge (m)
    in the plane before the vertices go back (edges stay straight in the plane, not in degrees;
    one value, or one per geometry).
    A polygon whose edges then jump across the antimeridian is rebuilt from its rings
    (:func:`antimeridian_polygon`, the shell turned counter-clockwise in the plane first, so
    that a ring round a pole is closed through the pole it encloses), a line cut there
    (:func:`lonlat_lines`); the others are transformed vertex by vertex, nothing more.

    >>> import pyproj
    >>> tr = pyproj.Transformer.from_crs("+proj=laea +lat_0=90 +lon_0=0", "EPSG:4326", always_xy=True)
    >>> cap = plane_to_lonlat(np.array([shapely.Point(0, 0).buffer(500_000.0)]), tr.transform, 10_000.0)[0]
    >>> cap.is_valid, [round(v, 1) for v in cap.bounds]
    (True, [-180.0, 85.5, 180.0, 90.0])
    """
    plane = np.asarray(geoms, dtype=object)
    dense = shapely.segmentize(plane, densify_m) if densify_m is not None else plane

    def back(g: np.ndarray) -> np.ndarray:
        return shapely.transform(g, lambda xy: np.column_stack(inverse(xy[:, 0], xy[:, 1])))

    out = back(dense)
    for i in np.flatnonzero(_crossing(out)):
        g = out[i]
        if g.geom_type in ("Polygon", "MultiPolygon"):
            turned = back(np.array([shapely.orient_polygons(dense[i], exterior_cw=False)], dtype=object))[0]
            parts = [antimeridian_polygon([shapely.get_coordinates(p.exterior)]
                                          + [shapely.get_coordinates(h) for h in p.interiors], ccw=True)
                     for p in shapely.get_parts(turned)]
            out[i] = shapely.union_all(parts)
        else:
            out[i] = lonlat_lines(np.array([g], dtype=object))[0]
    return out


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
    lines = np.isin(shapely.get_type_id(out), (1, 5))  # (LineString, MultiLineString)
    for i in np.flatnonzero(lines & _crossing(out)):
        xy = [shapely.get_coordinates(p) for p in shapely.get_parts(out[i])]
        out[i] = shapely.MultiLineString([piece for c in xy for piece in _cut_line(c)])
    return out


def _cut_line(c: np.ndarray) -> list[np.ndarray]:
    """A line's vertices (lon/lat) split where consecutive longitudes jump by more than 180°, each
    piece ending on the ±180° meridian at the latitude the jump, read the short way, crosses it
    (linear in degrees); the vertices keep their order."""
    lon, lat = c[:, 0], c[:, 1]
    d = np.diff(lon)
    j = np.flatnonzero(np.abs(d) > 180.0)
    if not j.size:
        return [c]
    far = lon[j + 1] - 360.0 * np.round(d[j] / 360.0)  # the next vertex, unwrapped
    edge = np.where(far > lon[j], 180.0, -180.0)
    lat_x = lat[j] + (edge - lon[j]) / (far - lon[j]) * (lat[j + 1] - lat[j])
    pieces = np.split(c, j + 1)
    for k in range(len(pieces)):
        head = [[-edge[k - 1], lat_x[k - 1]]] if k else []
        tail = [[edge[k], lat_x[k]]] if k < j.size else []
        pieces[k] = np.vstack([np.reshape(head, (-1, 2)), pieces[k], np.reshape(tail, (-1, 2))])
    return pieces
