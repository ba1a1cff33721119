"""Positions written as UTM easting, northing and zone (field sheets, handheld GPS, some exports).

Rangers and field teams in the Tien Shan, as in much of the world, record UTM coordinates
(zones 42-45 N there). A file that gives easting, northing and the zone of each row is read as
WGS84 longitude/latitude; the zone is written ``43``, ``43T`` (a latitude band, as handheld
GPS show it) or ``43N``/``43S`` (a hemisphere), with an optional hemisphere column.

``S`` and ``N`` are both a band and a hemisphere: band S is 32-40 deg N. Where every letter of
a file is ``N`` or ``S`` they are read as bands when every row's latitude then falls in its band,
and as hemispheres otherwise; the read report says which.

Layer: parsers; imports pyproj, pandas and nothing of the package.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyproj

BANDS = "CDEFGHJKLMNPQRSTUVWX"
"""MGRS latitude bands, south to north, 8 deg each from 80 deg S (X: 72-84 deg N)."""

ZONE_CELL = re.compile(r"^\s*(\d{1,2})\s*([A-Za-z]?)\s*$")


def _band_range(letter: str) -> tuple[float, float]:
    i = BANDS.index(letter)
    return -80.0 + 8.0 * i, (84.0 if letter == "X" else -72.0 + 8.0 * i)


def parse_zones(cells: np.ndarray, hemisphere: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Zone number (1-60; 0 where the cell is no zone), hemisphere letter (``N``/``S``, or the
    band letter, upper case; ``""`` where none) per row, and whether the letter came from a
    hemisphere column or word (bool per row).

    >>> z, letter, hemi = parse_zones(np.array(["43T", "44 n", "61", "", "x"], dtype=object))
    >>> z.tolist(), letter.tolist(), hemi.tolist()
    ([43, 44, 0, 0, 0], ['T', 'N', '', '', ''], [False, False, False, False, False])
    """
    # (a file holds a few distinct zones in up to a million rows: each distinct cell parsed once)
    inverse, uniq = pd.factorize(pd.Series(cells, dtype=object).fillna(""))
    u_zone = np.zeros(uniq.size, dtype=np.int64)
    u_letter = np.full(uniq.size, "", dtype=object)
    for i, cell in enumerate(uniq):
        m = ZONE_CELL.match(str(cell))
        if m and 1 <= int(m.group(1)) <= 60 and (not m.group(2) or m.group(2).upper() in BANDS):
            u_zone[i], u_letter[i] = int(m.group(1)), m.group(2).upper()
    zone, letter = u_zone[inverse], u_letter[inverse]
    from_hemi = np.zeros(len(cells), dtype=bool)
    if hemisphere is not None:
        back, words = pd.factorize(pd.Series(hemisphere, dtype=object).fillna(""))
        word = np.array([str(w).strip().upper()[:1] for w in words], dtype=object)[back]
        from_hemi = np.isin(word, ["N", "S"])
        letter = np.where(from_hemi, word, letter)
    return zone, letter, from_hemi


def to_lonlat(easting: np.ndarray, northing: np.ndarray, zone: np.ndarray, south: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 longitude/latitude (deg) of UTM coordinates (m) in ``zone`` (1-60; 0: none, NaN out),
    southern hemisphere where ``south``; one transformation per zone and hemisphere.

    >>> lon, lat = to_lonlat(np.array([500000.0]), np.array([4760000.0]), np.array([43]), np.array([False]))
    >>> round(float(lon[0]), 6), round(float(lat[0]), 4)
    (75.0, 42.9927)
    """
    lon = np.full(easting.size, np.nan)
    lat = np.full(easting.size, np.nan)
    ok = (zone >= 1) & (zone <= 60) & np.isfinite(easting) & np.isfinite(northing)
    for z, s in {(int(a), bool(b)) for a, b in zip(zone[ok], south[ok])}:
        rows = ok & (zone == z) & (south == s)
        tr = pyproj.Transformer.from_crs(32700 + z if s else 32600 + z, 4326, always_xy=True)
        lon[rows], lat[rows] = tr.transform(easting[rows], northing[rows])
    return lon, lat


def utm_to_lonlat(easting: np.ndarray, northing: np.ndarray, zone_cells: np.ndarray,
                  hemisphere: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Longitude, latitude (deg), the rows that could not be placed (bool: no zone, no number,
    a latitude outside its band) and a note for the read report.

    >>> e, n = np.array([500000.0, 500000.0]), np.array([3650000.0, 3650000.0])
    >>> lon, lat, bad, note = utm_to_lonlat(e, n, np.array(["43S", "43S"], dtype=object))
    >>> round(float(lat[0]), 2), bad.tolist(), note
    (32.99, [False, False], 'positions from UTM easting/northing (zones 43; letters read as latitude bands)')
    >>> lon, lat, bad, note = utm_to_lonlat(np.array([500000.0]), np.array([5650000.0]), np.array(["43S"], dtype=object))
    >>> round(float(lat[0]), 2), note
    (-39.3, 'positions from UTM easting/northing (zones 43; N/S read as hemispheres)')
    """
    zone, letter, from_hemi = parse_zones(zone_cells, hemisphere)
    lettered = letter != ""
    bandlike = lettered & ~from_hemi
    only_ns = bool(np.all(np.isin(letter[bandlike], ["N", "S"])))
    # as bands: N and above are the northern hemisphere
    south_band = np.isin(letter, list(BANDS[:BANDS.index("N")]))
    south = np.where(from_hemi, letter == "S", south_band)
    lon, lat = to_lonlat(easting, northing, zone, south)
    in_band = np.ones(zone.size, dtype=bool)
    for c in set(letter[bandlike]):
        lo, hi = _band_range(c)
        rows = bandlike & (letter == c)
        in_band[rows] = (lat[rows] >= lo - 0.5) & (lat[rows] <= hi + 0.5)  # (0.5 deg: a band edge in a field sheet)
    how = "latitude bands"
    if only_ns and bandlike.any() and not in_band[bandlike].all():
        # N/S that do not fit as bands are hemispheres (43S: the southern hemisphere, not 32-40 N)
        south = np.where(bandlike, letter == "S", south)
        lon, lat = to_lonlat(easting, northing, zone, south)
        in_band[:] = True
        how = "N/S read as hemispheres"
    elif from_hemi.any() and not bandlike.any():
        how = "hemisphere column"
    elif not bandlike.any():
        how = "no letters: northern hemisphere"
        if np.any(northing[zone > 0] > 9_400_000):  # false northings of the south (10,000 km at the equator)
            south = zone > 0
            lon, lat = to_lonlat(easting, northing, zone, south)
            how = "no letters: southern hemisphere (northings above 9,400 km)"
    bad = (zone == 0) | ~np.isfinite(lat) | ~in_band
    zones = ", ".join(str(z) for z in sorted(set(zone[zone > 0].tolist())))
    word = how if how.startswith(("N/S", "no letters", "hemisphere")) else f"letters read as {how}"
    return lon, lat, bad, f"positions from UTM easting/northing (zones {zones}; {word})"
