"""Zone layers: bundled countries, user polygons (valid, dissolved, reprojected), shared lines."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Transformer

from telemetry.corridor.zones import load_zones, zone_borders
from telemetry.errors import TelemetryError


def test_default_countries() -> None:
    z = load_zones()
    assert list(z.columns) == ["zone", "name", "accuracy_m", "geometry"]
    assert z.crs.to_epsg() == 4326
    acc = dict(zip(z.zone, z.accuracy_m))
    assert acc["KGZ"] == 500.0 and acc["KAZ"] == 500.0  # Natural Earth 1:10m
    assert acc["PRT"] == 500.0  # the whole world is bundled at 1:10m
    assert z.attrs["outside"] == "sea" and z.attrs["countries"]
    assert load_zones(border_error_m=50).accuracy_m.eq(50).all()


def test_user_layer_valid_dissolved_reprojected() -> None:
    # UTM 43N metres; zone "a" has two rows (dissolved) and one is a self-intersecting bow-tie
    bow = shapely.Polygon([(500_000, 4_700_000), (510_000, 4_710_000), (510_000, 4_700_000),
                           (500_000, 4_710_000)])
    assert not bow.is_valid
    sq = shapely.box(520_000, 4_700_000, 530_000, 4_710_000)
    other = shapely.box(510_000, 4_700_000, 520_000, 4_710_000)
    gdf = gpd.GeoDataFrame({"NAME": ["a", "b", "a"]}, geometry=[bow, other, sq], crs="EPSG:32643")
    z = load_zones(gdf, zone_field="NAME")
    assert z.zone.tolist() == ["a", "b"]
    assert z.crs.to_epsg() == 4326
    assert shapely.is_valid(z.geometry.values).all()
    assert z.accuracy_m.eq(100.0).all() and z.attrs["outside"] == "outside"
    # the same geometry as transforming the made-valid input ourselves (area in degrees²)
    tr = Transformer.from_crs(32643, 4326, always_xy=True)
    ref = shapely.union_all([shapely.transform(shapely.make_valid(g), lambda xy: np.column_stack(
        tr.transform(xy[:, 0], xy[:, 1]))) for g in (bow, sq)])
    got = z.geometry.iloc[0]
    assert got.symmetric_difference(ref).area < 1e-6 * ref.area
    # the bow-tie's two triangles (50 km² each in UTM) + the 100 km² square
    assert gpd.GeoSeries([got], crs=4326).to_crs(32643).area.iloc[0] == pytest.approx(150e6, rel=1e-6)


def test_user_layer_from_file(tmp_path) -> None:
    gdf = gpd.GeoDataFrame({"park": ["P1", "P2"], "label": ["Park one", "Park two"]},
                           geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)], crs=4326)
    path = tmp_path / "parks.gpkg"
    gdf.to_file(path, layer="parks", engine="pyogrio")
    z = load_zones(path, zone_field="park", name_field="label", layer="parks", border_error_m=30)
    assert z.zone.tolist() == ["P1", "P2"] and z.name.tolist() == ["Park one", "Park two"]
    assert z.accuracy_m.tolist() == [30.0, 30.0]
    lines = zone_borders(z)
    assert lines[["zone_a", "zone_b"]].values.tolist() == [["P1", "P2"]]
    assert lines.geometry.iloc[0].equals(shapely.LineString([(1, 0), (1, 1)])) or \
        lines.geometry.iloc[0].equals(shapely.LineString([(1, 1), (1, 0)]))


def test_errors() -> None:
    gdf = gpd.GeoDataFrame({"x": [1]}, geometry=[shapely.box(0, 0, 1, 1)], crs=4326)
    with pytest.raises(TelemetryError, match="zone_field"):
        load_zones(gdf)
    with pytest.raises(TelemetryError, match="not a column"):
        load_zones(gdf, zone_field="NAME")
    with pytest.raises(TelemetryError, match="cannot read"):
        load_zones("/nonexistent/zones.gpkg", zone_field="x")


def test_default_borders_are_country_lines() -> None:
    lines = zone_borders()
    pair = lines[(lines.zone_a == "KAZ") & (lines.zone_b == "KGZ")]
    assert len(pair) == 1 and pair.geometry.iloc[0].length > 5  # degrees of line
