"""Each country's (or protected area's) share of every animal's range.

For each AKDE range (:mod:`telemetry.trajectory.ranges`) the utilisation distribution is
truncated to its 95 % isopleth and renormalised, and the probability mass of its grid cells
inside each zone is summed: "how much of this leopard is Kazakh". Mass outside every zone
goes to the layer's outside label (``sea`` for countries, ``outside`` for user zones). Each
zone's share is its own: with nested or overlapping zones (a reserve inside a national park)
the shares of a range add up to more than 1.

The CI of a share ``p`` treats the range as ``N_area`` independent draws (its effective
sample size: the number of independent range crossings the data hold) and takes the
Jeffreys interval of a binomial proportion, ``Beta(pN + ½, (1−p)N + ½)`` — the sampling
uncertainty of the time an animal spends on each side, given how few crossings of its range
were observed. The uncertainty of the boundaries is not included (a range that straddles a
border by a few hundred metres is shared by the grid's ~1/256-of-a-range cells).

For protected areas (``--zones``), :func:`zone_sizes` gives each zone's area and whether it
is smaller than the median 95 % home range of the animals.
"""

from __future__ import annotations

import math
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

__all__ = ["range_shares", "zone_sizes", "SHARE_COLUMNS"]

SHARE_COLUMNS: tuple[str, ...] = ("animal_id", "period", "zone_kind", "zone", "name", "share", "share_low",
                                  "share_high", "n_area", "akde95_km2")
"""Columns of :func:`range_shares` (shares 0-1)."""


def _jeffreys(p: np.ndarray, n: float, level: float) -> tuple[np.ndarray, np.ndarray]:
    from scipy.special import betaincinv

    if not (np.isfinite(n) and n > 0):
        return np.full_like(p, np.nan), np.full_like(p, np.nan)
    a, b = p * n + 0.5, (1.0 - p) * n + 0.5
    alpha = (1.0 - level) / 2.0
    lo = np.where(p <= 0.0, 0.0, betaincinv(a, b, alpha))
    hi = np.where(p >= 1.0, 1.0, betaincinv(a, b, 1.0 - alpha))
    return lo, hi


def range_shares(ranges: Any, zones: gpd.GeoDataFrame, *, kind: str = "country",
                 ci_level_pct: float = 95.0) -> pd.DataFrame:
    """Share of each AKDE range in each zone, with CIs (:data:`SHARE_COLUMNS`).

    Parameters
    ----------
    ranges : telemetry.trajectory.ranges.Ranges
        Movement-model ranges (``uds`` and ``table`` used).
    zones : geopandas.GeoDataFrame
        Zones in canonical form (:func:`telemetry.corridor.zones.load_zones`: ``zone``,
        ``name``, geometry in EPSG:4326; ``attrs["outside"]`` names the rest).
    kind : str
        ``"country"`` or ``"zone"`` (written in ``zone_kind``).
    ci_level_pct : float
        Confidence level (%).

    Returns
    -------
    pandas.DataFrame
        One row per range and zone holding any of its mass (and the outside, if any), largest
        share first within each range.
    """
    outside = str(zones.attrs.get("outside", "outside"))
    table = ranges.table.set_index(["animal_id", "period"]) if len(ranges.table) else None
    geoms = zones.geometry.to_numpy()
    tree = shapely.STRtree(geoms)
    rows = []
    for (aid, period), (lon, lat, mass) in ranges.uds.items():
        n_area = float(table.loc[(aid, period), "n_area"]) if table is not None else math.nan
        area = float(table.loc[(aid, period), "akde95_km2"]) if table is not None else math.nan
        # the zones near the range, clipped to its box: point-in-polygon on a few hundred
        # vertices instead of a whole country's coastline
        x0, y0, x1, y1 = float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max())
        total = float(mass.sum())
        per = np.zeros(len(geoms) + 1)
        anywhere = np.zeros(lon.size, dtype=bool)
        for z in np.sort(tree.query(shapely.box(x0, y0, x1, y1))):
            part = shapely.clip_by_rect(geoms[z], x0 - 1e-9, y0 - 1e-9, x1 + 1e-9, y1 + 1e-9)
            if part.is_empty:
                continue
            shapely.prepare(part)
            inside = shapely.contains_xy(part, lon, lat)
            per[z] = float(mass[inside].sum()) / total
            anywhere |= inside
        # each zone's share on its own: nested protected areas (a reserve inside a park) both hold it
        p = per.copy()
        p[-1] = float(mass[~anywhere].sum()) / total
        names = list(zones["zone"].astype(str)) + [outside]
        labels = list(zones["name"].astype(str)) + [outside]
        lo, hi = _jeffreys(p, n_area, ci_level_pct / 100.0)
        for j in np.argsort(-p, kind="stable"):
            if p[j] <= 0:
                continue
            rows.append({"animal_id": aid, "period": int(period), "zone_kind": kind, "zone": names[j],
                         "name": labels[j], "share": float(p[j]), "share_low": float(lo[j]),
                         "share_high": float(hi[j]), "n_area": n_area, "akde95_km2": area})
    return pd.DataFrame(rows, columns=list(SHARE_COLUMNS))


def zone_sizes(zones: gpd.GeoDataFrame, range_table: pd.DataFrame) -> pd.DataFrame:
    """Area of each zone (km², geodesic on WGS84) against the animals' median 95 % AKDE range.

    Returns ``zone``, ``name``, ``area_km2``, ``median_range95_km2`` and
    ``smaller_than_median_range`` (a protected area smaller than one animal's range cannot
    hold even one of them whole).
    """
    geod = pyproj.Geod(ellps="WGS84")
    areas = [abs(geod.geometry_area_perimeter(g)[0]) / 1e6 if g is not None and not g.is_empty else 0.0
             for g in zones.geometry]
    sel = range_table[range_table["resident"] == True]["akde95_km2"].astype(float)  # noqa: E712
    med = float(np.nanmedian(sel)) if sel.notna().any() else math.nan
    return pd.DataFrame({"zone": zones["zone"].astype(str).to_numpy(), "name": zones["name"].astype(str).to_numpy(),
                         "area_km2": areas, "median_range95_km2": med,
                         "smaller_than_median_range": [bool(np.isfinite(med) and a < med) for a in areas]})
