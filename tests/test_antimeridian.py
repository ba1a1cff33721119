"""Issue 13: country polygons without phantom countries, and tracks across the antimeridian.

The bundled polygons used to carry GDAL's antimeridian artefacts (Russia inverted in two bands
all round the globe, Fiji slivers round the world, Antarctica cut at 84° S). These tests fail
on those polygons: global overlaps, areas against an independent computation from the source,
stay-put tracks that must give no crossing, and real crossings that must be found.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely

import telemetry
from telemetry.corridor.borders import border_lines, load_countries
from telemetry.corridor.crossings import crossings

GEOD = pyproj.Geod(ellps="WGS84")
AREAS = Path(__file__).resolve().parent / "data" / "country_areas_10m.json"
SOURCE = Path("/work/shared/data/boundaries/countries-10m.json")


def reference_areas(path: Path) -> dict[str, float]:
    """Geodesic area (km²) of every feature straight from the TopoJSON, with a method that shares
    nothing with scripts/build_boundaries.py: each ring's vertices go to pyproj's
    ``Geod.polygon_area_perimeter`` (Karney's geodesic polygons, which cross the antimeridian
    and circle the poles correctly), shells minus holes, features keyed by numeric id or name."""
    topo = json.loads(path.read_text())
    sc, tr = np.array(topo["transform"]["scale"]), np.array(topo["transform"]["translate"])
    arcs = [np.cumsum(np.array(a, float), axis=0) * sc + tr for a in topo["arcs"]]
    out: dict[str, float] = {}
    for g in topo["objects"]["countries"]["geometries"]:
        polys = [g["arcs"]] if g["type"] == "Polygon" else g["arcs"]
        total = 0.0
        for poly in polys:
            for k, ring in enumerate(poly):
                pts = np.concatenate([arcs[i] if i >= 0 else arcs[~i][::-1] for i in ring])
                if len(pts) < 4:
                    continue
                a, _ = GEOD.polygon_area_perimeter(pts[:, 0], pts[:, 1])
                total += abs(a) if k == 0 else -abs(a)
        key = str(g.get("id") or g["properties"]["name"])
        out[key] = out.get(key, 0.0) + total / 1e6
    return out


def test_no_two_countries_overlap_on_a_global_grid() -> None:
    c = load_countries()
    assert shapely.is_valid(c.geometry.values).all()
    # the grid (0.5°: 1,943 points in two countries on the old polygons); the exact
    # global invariant is the pairwise check below (zero intersection area for every pair),
    # which a 0.1° grid would only sample (and took 6 minutes of the suite)
    step = 0.5
    lon, lat = np.meshgrid(np.arange(-180 + step / 2, 180, step), np.arange(-90 + step / 2, 90, step))
    pts = shapely.points(lon.ravel(), lat.ravel())
    hit, _ = shapely.STRtree(c.geometry.values).query(pts, predicate="within")
    counts = np.bincount(hit, minlength=pts.size)
    assert counts.max() == 1, f"{int((counts > 1).sum())} grid points lie in two countries"
    # every pair's intersection has zero area (geodesic), with no disputed exception in this edition
    left, right = c.sindex.query(c.geometry.values, predicate="intersects")
    for a, b in zip(left, right):
        if a < b:
            inter = shapely.intersection(c.geometry.values[a], c.geometry.values[b])
            assert abs(GEOD.geometry_area_perimeter(inter)[0]) < 1.0, (c.iso_a3.values[a], c.iso_a3.values[b])


def test_country_areas_match_the_source_within_one_percent() -> None:
    if SOURCE.exists() and not AREAS.exists():  # refresh the fixture where the source is at hand
        AREAS.write_text(json.dumps(reference_areas(SOURCE), indent=0, sort_keys=True))
    ref = json.loads(AREAS.read_text())
    c = load_countries()
    key = c["iso_n3"].astype("string").fillna(c["name"].astype("string"))
    ours = {str(k): abs(GEOD.geometry_area_perimeter(g)[0]) / 1e6 for k, g in zip(key, c.geometry.values)}
    checked = 0
    for k, area in ref.items():
        if area < 1.0 or k not in ours:  # rocks of less than a km² lose their shape in quantisation
            continue
        assert ours[k] == pytest.approx(area, rel=0.01), k
        checked += 1
    assert checked > 200
    rus = c[c.iso_a3 == "RUS"].geometry.iloc[0]
    ata = c[c.iso_a3 == "ATA"].geometry.iloc[0]
    assert shapely.contains_xy(rus, [33.0, 70.0, 60.0], [68.5, 68.0, 67.0]).all()  # Kola, Yamal, Polar Urals
    assert not shapely.contains_xy(rus, [-100.0, -150.0, -40.0, 20.0], [66.0, 68.0, 70.0, 67.0]).any()
    assert shapely.contains_xy(ata, 0.0, -89.5)  # down to the pole
    fji = c[c.iso_a3 == "FJI"].geometry.iloc[0]
    assert fji.bounds[1] > -22 and not shapely.contains_xy(fji, [30.0, 25.0, -75.0], [-16.5, -16.5, -16.5]).any()


def _stay(lon: float, lat: float, days: int = 6, seed: int = 0, name: str = "a") -> pd.DataFrame:
    """A collar that stays put: 4-hourly fixes scattered within 3 km (moves around a den or a
    kill, GPS error) — enough to straddle a band edge of the old polygons."""
    rng = np.random.default_rng(seed)
    n = days * 6
    lo, la, _ = GEOD.fwd(np.full(n, lon), np.full(n, lat), rng.uniform(0, 360, n), rng.uniform(0, 3000, n))
    lo = (lo + 180) % 360 - 180
    return pd.DataFrame({"animal_id": name, "time": pd.date_range("2023-06-01", periods=n, freq="4h", tz="UTC"),
                         "lon": lo, "lat": la, "hdop": 1.2, "fix_type": "3D"})


@pytest.mark.parametrize(("place", "lon", "lat"), [
    # on the edges of the bands where the old Russia polygon was inverted (65.06, 68.98, 70.97 ° N)
    ("near Fairbanks, Alaska", -147.7, 65.065), ("Yukon", -135.0, 65.065), ("Swedish Lapland", 20.5, 65.06),
    ("Finnish Lapland", 26.0, 68.985), ("Finnmark", 25.6, 70.975), ("Iceland", -18.0, 65.061),
    ("Kola (Russia)", 33.0, 68.5), ("Chukotka, east of 180", -175.0, 66.2), ("Chukotka, west of 180", 178.5, 64.7),
    ("Svalbard", 15.6, 78.2),
    # where Fiji's slivers ran round the world (16.2-17.0 ° S), and Fiji itself on both sides of 180
    ("Zimbabwe", 30.0, -16.54), ("Madagascar", 46.5, -16.54), ("Fiji, Vanua Levu east of 180", -179.9, -16.7),
    ("Fiji, Viti Levu", 178.0, -17.8), ("Kiribati, Tarawa", 172.98, 1.35),
])
def test_a_collar_that_stays_put_crosses_nothing(place: str, lon: float, lat: float) -> None:
    fixes = _stay(lon, lat)
    tracks = telemetry.process(fixes, species="generic", states=False)
    c = crossings(tracks)
    assert len(c) == 0, (place, c[["from_iso", "to_iso"]].values.tolist())


def test_a_real_finland_russia_crossing_is_found() -> None:
    """A wolf-like track from Kuusamo (FIN) east into Russian Karelia, 4-hourly fixes."""
    lon = np.r_[np.linspace(29.0, 29.6, 30), np.linspace(29.6, 30.8, 30)]
    fixes = pd.DataFrame({"animal_id": "w", "time": pd.date_range("2023-02-01", periods=60, freq="4h", tz="UTC"),
                          "lon": lon, "lat": 66.0, "hdop": 1.2, "fix_type": "3D"})
    c = crossings(telemetry.process(fixes, species="large_carnivore", states=False))
    assert c[["from_iso", "to_iso"]].values.tolist() == [["FIN", "RUS"]]


def test_a_bird_over_the_bering_sea_crosses_the_short_way() -> None:
    """Chukotka (RUS) to Alaska (USA) across 180°: hourly fixes, ~60 km/h legs over the sea."""
    lon = np.r_[np.full(10, 177.0), np.linspace(177.0, 198.0, 25), np.full(10, 198.0)]
    lon = (lon + 180) % 360 - 180
    lat = np.r_[np.full(10, 64.8), np.linspace(64.8, 64.5, 25), np.full(10, 64.5)]
    fixes = pd.DataFrame({"animal_id": "bird", "time": pd.date_range("2023-05-01", periods=len(lon), freq="h", tz="UTC"),
                          "lon": lon, "lat": lat, "hdop": 1.2, "fix_type": "3D"})
    tracks = telemetry.process(fixes, species="migratory_bird", states=False)
    assert tracks["flag"].isna().all()
    step = tracks["step_m"].to_numpy()
    assert np.nanmax(step) < 60_000  # measured the short way, never ~40,000 km round the world
    c = crossings(tracks)
    assert c[["from_iso", "to_iso"]].values.tolist() == [["RUS", "USA"]]
    pt = shapely.get_coordinates(c.geometry.iloc[0])
    assert (np.abs(pt[:, 0]) > 150).all()  # over the Bering Sea, not somewhere round the world


def test_the_bering_sea_bird_written_0_to_360_crosses_the_same_way(tmp_path: Path) -> None:
    """The same bird in a Movebank file whose longitudes run 0..360 (177 to 198 degrees east): read
    as the same meridians, every fix kept and unflagged, the same crossing at the same place."""
    lon = np.r_[np.full(10, 177.0), np.linspace(177.0, 198.0, 25), np.full(10, 198.0)]
    lat = np.r_[np.full(10, 64.8), np.linspace(64.8, 64.5, 25), np.full(10, 64.5)]
    t = pd.date_range("2023-05-01", periods=lon.size, freq="h", tz="UTC")
    path = tmp_path / "bird_0_360.csv"
    pd.DataFrame({"individual-local-identifier": "bird", "timestamp": t.strftime("%Y-%m-%d %H:%M:%S.000"),
                  "location-long": lon, "location-lat": lat, "gps:hdop": 1.2}).to_csv(path, index=False)
    fixes = telemetry.read(path)
    assert any("0..360" in s for s in fixes.attrs["sources"][0]["notes"])
    tracks = telemetry.process(fixes, species="migratory_bird", states=False)
    assert len(tracks) == lon.size and tracks["flag"].isna().all()
    np.testing.assert_allclose(np.sort(tracks["lon"].to_numpy()), np.sort((lon + 180) % 360 - 180), atol=1e-9)
    assert np.nanmax(tracks["step_m"].to_numpy()) < 60_000
    c = crossings(tracks)
    assert c[["from_iso", "to_iso"]].values.tolist() == [["RUS", "USA"]]
    assert (np.abs(shapely.get_coordinates(c.geometry.iloc[0])[:, 0]) > 150).all()


def test_border_lines_of_russia_with_norway_and_finland() -> None:
    lines = border_lines()
    for a, b, km, box in (("FIN", "RUS", 1300, (27.0, 59.5, 32.0, 70.2)), ("NOR", "RUS", 190, (28.0, 69.0, 31.5, 70.0))):
        row = lines[(lines.iso_a == a) & (lines.iso_b == b)]
        assert len(row) == 1
        g = row.geometry.iloc[0]
        x0, y0, x1, y1 = g.bounds
        assert box[0] <= x0 and x1 <= box[2] and box[1] <= y0 and y1 <= box[3], g.bounds
        length = GEOD.geometry_length(g) / 1000
        assert length == pytest.approx(km, rel=0.35), length


def _walk(lon0: float, lat0: float, n: int, step_m: float, seed: int, animal: str = "a", turn_rad: float = 0.8,
          heading_deg: float = 0.0) -> pd.DataFrame:
    """A random walk of hourly fixes from (lon0, lat0), longitudes wrapped into -180..180."""
    rng = np.random.default_rng(seed)
    az = heading_deg + np.degrees(np.cumsum(rng.normal(0.0, turn_rad, n)))
    lon, lat = np.empty(n), np.empty(n)
    lon[0], lat[0] = lon0, lat0
    for i in range(1, n):  # (pyproj.Geod: the walk itself crosses 180° and passes near the pole)
        lon[i], lat[i], _ = GEOD.fwd(lon[i - 1], lat[i - 1], az[i], rng.exponential(step_m))
    return pd.DataFrame({"animal_id": animal, "time": pd.date_range("2023-05-01", periods=n, freq="h", tz="UTC"),
                         "lon": (lon + 180.0) % 360.0 - 180.0, "lat": lat, "flag": pd.NA})


@pytest.mark.parametrize("where, lon0, lat0, step_m, turn_rad, heading_deg, grid_deg",
                         [("Chukotka, across 180°", 179.95, 66.0, 400.0, 0.8, 180.0, 0.1),
                          ("Fiji, across 180°", -179.98, -16.8, 300.0, 0.8, 180.0, 0.1),
                          ("round the North Pole", 20.0, 89.6, 3000.0, 0.8, 0.0, 0.1),
                          ("round the South Pole", 40.0, -89.5, 3000.0, 0.8, 180.0, 0.1),
                          ("pole to pole (a tern)", -20.0, 75.0, 60_000.0, 0.05, 180.0, 2.0)])
def test_home_ranges_across_the_antimeridian_or_round_a_pole_are_valid(where: str, lon0: float, lat0: float,
                                                                      step_m: float, turn_rad: float,
                                                                      heading_deg: float, grid_deg: float) -> None:
    """Ranges drawn in the animal's plane went back to degrees vertex by vertex: across 180° their
    edges ran round the world and the polygon crossed itself, and `telemetry run` stopped with
    GEOS's "side location conflict" when the public layer cut it into cells; a tern's kernel
    reached past the plane's rim (the antipode) and came back as infinities. Each must be valid
    within -180..180, hold the same area (pyproj.Geod on the degrees, against the plane's) and
    cover its fixes; and the public layer's generalisation must take it."""
    from telemetry.outputs.generalise import generalise_polygons
    from telemetry.trajectory.homerange import home_ranges

    df = _walk(lon0, lat0, 400, step_m, seed=3, turn_rad=turn_rad, heading_deg=heading_deg)
    hr = home_ranges(df)
    assert len(hr) == 4 and hr.is_valid.all(), where
    b = hr.total_bounds
    assert -180.0 <= b[0] and b[2] <= 180.0 and -90.0 <= b[1] and b[3] <= 90.0
    geod_km2 = np.array([abs(GEOD.geometry_area_perimeter(g)[0]) / 1e6 for g in hr.geometry])
    np.testing.assert_allclose(geod_km2, hr["area_km2"].to_numpy(), rtol=2e-3)
    full = hr[(hr.method == "mcp") & (hr.level_pct == 100)].geometry.iloc[0]
    if "Pole" in where:  # the case asked for: the range holds the pole itself
        assert full.covers(shapely.Point(0.0, 90.0 if lat0 > 0 else -90.0)), full.bounds
    pts = shapely.points(df["lon"].to_numpy(), df["lat"].to_numpy())
    if step_m < 10_000:  # (a tern's range is cut to the hemisphere round its fixes)
        assert shapely.covers(full.buffer(1e-6), pts).all()  # (a hull's own vertices lie on its edge)
    else:  # densified to a vertex budget, not to 250 m along 40,000 km (100,000-200,000 vertices)
        from telemetry.trajectory.homerange import DENSIFY_MAX_VERTICES

        assert (shapely.get_num_coordinates(hr.geometry.values) < 2 * DENSIFY_MAX_VERTICES).all()
    cells = generalise_polygons(hr.geometry.values, grid_deg)
    assert all(g is not None and g.is_valid for g in cells)


def test_run_on_animals_across_the_antimeridian_writes_valid_layers(tmp_path: Path) -> None:
    """The whole job on four animals that commute across 180° off Fiji: exit 0, and every layer of
    the internal GeoPackage and of the public GeoJSON is valid geometry within -180..180."""
    import geopandas as gpd
    import pyogrio

    from telemetry.cli.main import main

    parts = [_walk(179.99 - 0.02 * k, -16.8, 300, 1500.0, seed=10 + k, animal=f"F{k}") for k in range(4)]
    csv = tmp_path / "fiji.csv"
    pd.concat(parts).drop(columns="flag").to_csv(csv, index=False)
    out = tmp_path / "out"
    assert main(["run", str(csv), "--out", str(out), "--species", "generic", "--quiet"]) == 0
    layers = [name for name, _ in pyogrio.list_layers(out / "internal.gpkg")]
    assert {"home_ranges", "track_lines"} <= set(layers)
    for path, names in ((out / "internal.gpkg", layers), (out / "public.geojson", [None])):
        for name in names:
            g = gpd.read_file(path, layer=name) if name else gpd.read_file(path)
            g = g[g.geometry.notna()]
            assert g.is_valid.all(), (path.name, name)
            if len(g):
                b = g.total_bounds
                assert -180.0 <= b[0] and b[2] <= 180.0, (path.name, name, b)
            # no edge runs the long way round the world (a track cut at 180°, not drawn across the map)
            for part in shapely.get_parts(g.geometry.values):
                for ring in ([part] if "Line" in part.geom_type else shapely.get_rings(part)):
                    assert np.abs(np.diff(shapely.get_coordinates(ring)[:, 0])).max(initial=0.0) <= 180.0, (name,)
    lines = gpd.read_file(out / "internal.gpkg", layer="track_lines")
    assert (lines.geom_type == "MultiLineString").any()  # the commutes across 180° were cut there
