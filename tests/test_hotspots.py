"""Hotspots: clustering by distance *along* the border, checked against pyproj.Geod."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Geod

from telemetry.corridor.hotspots import hotspots

GEOD = Geod(ellps="WGS84")

# a hairpin border: up the west arm, across the top, down the east arm; the arms are ~2.2 km apart
HAIRPIN = shapely.LineString([(0.0, 0.0), (0.0, 1.0), (0.02, 1.0), (0.02, 0.0)])
LINES = gpd.GeoDataFrame({"zone_a": ["A"], "zone_b": ["B"]}, geometry=[HAIRPIN], crs=4326)


def _cx(lon, lat, frm, to, animal, month) -> pd.DataFrame:
    return pd.DataFrame({"animal_id": animal, "kind": "crossing", "from_iso": frm, "to_iso": to,
                         "lon": lon, "lat": lat, "confidence": 0.9,
                         "time": pd.to_datetime([f"2022-{m:02d}-10" for m in month], utc=True)})


def test_hairpin_not_merged_by_straight_distance() -> None:
    c = _cx([0.0, 0.0, 0.02], [0.10, 0.12, 0.10], ["A", "B", "A"], ["B", "A", "B"], ["x", "y", "x"], [3, 4, 9])
    # straight-line distance between the arms is below the gap: a planar clustering would merge them
    assert GEOD.inv(0.0, 0.10, 0.02, 0.10)[2] < 5000
    h = hotspots(c, LINES, gap_km=5.0)
    assert h.name.tolist() == ["A–B #1", "A–B #2"]
    assert h.n_crossings.tolist() == [2, 1] and h.n_animals.tolist() == [2, 1]
    assert h.n_a_to_b.tolist() == [1, 1] and h.n_b_to_a.tolist() == [1, 0]
    assert h.months.tolist() == ["3,4", "9"]
    # positions along the border in geodesic km (pyproj.Geod along the drawn line), within 1 m
    up = GEOD.inv(0, 0, 0, 0.10)[2] / 1000
    up2 = GEOD.inv(0, 0, 0, 0.12)[2] / 1000
    arm = GEOD.inv(0, 0, 0, 1)[2] / 1000
    top = GEOD.inv(0, 1, 0.02, 1)[2] / 1000
    east = arm + top + GEOD.inv(0.02, 1, 0.02, 0.10)[2] / 1000
    assert h.start_km.tolist() == pytest.approx([up, east], abs=1e-3)
    assert h.end_km.tolist() == pytest.approx([up2, east], abs=1e-3)
    assert h.position_km.iloc[0] == pytest.approx((up + up2) / 2, abs=1e-3)
    # location on the border, segment = span ± buffer along the line
    assert h.geometry.iloc[0].distance(HAIRPIN) < 1e-12
    seg = h.segment.iloc[0]
    assert GEOD.geometry_length(seg) / 1000 == pytest.approx(up2 - up + 2 * 1.0, rel=1e-6)


def test_chain_along_border_is_one_hotspot() -> None:
    # crossings every ~3.3 km along a straight border: neighbours closer than the gap → one hotspot
    # spanning ~13 km, although its ends are farther apart than the gap
    lat = np.array([0.1, 0.13, 0.16, 0.19, 0.22])
    c = _cx(np.zeros(5), lat, "A", "B", ["p", "q", "r", "p", "q"], [1, 1, 2, 2, 2])
    h = hotspots(c, LINES, gap_km=5.0)
    assert len(h) == 1 and h.n_crossings.item() == 5 and h.n_animals.item() == 3
    assert h.length_km.item() == pytest.approx(GEOD.inv(0, 0.1, 0, 0.22)[2] / 1000, rel=1e-6)
    # a smaller gap splits it into single crossings
    assert len(hotspots(c, LINES, gap_km=3.0)) == 5


def test_unassigned_and_kinds() -> None:
    c = _cx([0.0, 5.0], [0.1, 0.1], "A", "B", "x", [1, 1])  # second point is 550 km from the border
    c = pd.concat([c, _cx([0.0], [0.5], "A", "B", "x", [2]).assign(kind="excursion"),
                   _cx([0.0], [0.5], "A", "C", "x", [2])], ignore_index=True)  # no A–C border
    h = hotspots(c, LINES)
    assert h.n_crossings.sum() == 1 and h.attrs["unassigned"] == 2
    assert hotspots(c, LINES, kinds=("crossing", "excursion")).n_crossings.sum() == 2
    assert len(hotspots(c.iloc[:0], LINES)) == 0


def test_default_country_borders() -> None:
    # two crossings on the KAZ–KGZ line, given from either side
    c = _cx([77.0830, 77.0820], [42.9689, 42.9690], ["KAZ", "KGZ"], ["KGZ", "KAZ"], ["a", "b"], [7, 7])
    h = hotspots(c)
    assert h[["name", "n_crossings", "n_a_to_b", "n_b_to_a"]].values.tolist() == [["KAZ–KGZ #1", 2, 1, 1]]
