"""Bundled country borders: file, codes, point-in-country, shared border lines."""

from __future__ import annotations

import shapely
from pyproj import Geod

from telemetry.corridor.borders import border_lines, load_countries


def _country_of(lon: float, lat: float) -> list[str]:
    c = load_countries()
    return c.loc[shapely.contains_xy(c.geometry.values, lon, lat), "iso_a3"].tolist()


def test_file_loads_and_is_valid() -> None:
    c = load_countries()
    assert list(c.columns) == ["iso_a3", "iso_n3", "name", "resolution", "geometry"]
    assert c.crs.to_epsg() == 4326
    assert len(c) > 200
    assert shapely.is_valid(c.geometry.values).all()
    assert set(c.geom_type) <= {"Polygon", "MultiPolygon"}
    assert c.iso_a3.notna().all() and c.iso_a3.str.len().eq(3).all()
    res = dict(zip(c.iso_a3, c.resolution))
    for iso in ("KAZ", "KGZ", "CHN", "UZB", "TJK", "MNG", "RUS", "AFG", "PAK", "IND", "TKM"):
        assert res[iso] == "10m", iso
    assert res["FRA"] == "10m" and res["PRT"] == "10m"  # whole world at 1:10m (see data/README.md)
    assert dict(zip(c.iso_a3, c.iso_n3))["KAZ"] == "398"


def test_cached_copy_is_independent() -> None:
    a = load_countries()
    a.loc[:, "name"] = "x"
    assert (load_countries().name != "x").all()


def test_cities_in_their_countries() -> None:
    assert _country_of(76.95, 43.24) == ["KAZ"]  # Almaty
    assert _country_of(74.59, 42.87) == ["KGZ"]  # Bishkek
    assert _country_of(87.6, 43.8) == ["CHN"]  # Urumqi
    assert _country_of(2.35, 48.86) == ["FRA"]  # Paris (1:50m)


def test_kaz_kgz_border_line() -> None:
    lines = border_lines()
    assert (lines.iso_a < lines.iso_b).all()
    row = lines[(lines.iso_a == "KAZ") & (lines.iso_b == "KGZ")]
    assert len(row) == 1
    geom = row.geometry.item()
    assert geom.geom_type in ("LineString", "MultiLineString")
    km = Geod(ellps="WGS84").geometry_length(geom) / 1e3
    assert km > 1000
    # the tripoint region: KAZ-CHN and CHN-KGZ exist too and meet KAZ-KGZ near Khan Tengri
    pairs = set(zip(lines.iso_a, lines.iso_b))
    assert {("CHN", "KAZ"), ("CHN", "KGZ"), ("KAZ", "UZB"), ("ESP", "FRA")} <= pairs
    kc = lines[(lines.iso_a == "CHN") & (lines.iso_b == "KAZ")].geometry.item()
    assert shapely.distance(geom, kc) < 1e-6


def test_border_lines_subset() -> None:
    c = load_countries()
    sub = border_lines(c[c.iso_a3.isin(["KAZ", "KGZ", "FRA"])])
    assert sub[["iso_a", "iso_b"]].values.tolist() == [["KAZ", "KGZ"]]


def test_bundled_border_lines_equal_the_derived_ones():
    """telemetry/data/border_lines.parquet is border_lines() of the bundled countries, precomputed."""
    import shapely

    from telemetry.corridor import borders

    bundled = borders.border_lines()
    derived = borders._border_lines(borders._countries(), borders.SNAP_DEG)
    assert bundled[["iso_a", "iso_b"]].equals(derived[["iso_a", "iso_b"]])
    assert shapely.equals_exact(bundled.geometry.values, derived.geometry.values, 0).all()
