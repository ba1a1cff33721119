"""Tables of fixes that are not delimited text, and CSVs whose position is one geometry column.

Every file is written here by the tool a user would have used (GeoPandas, pyarrow,
movingpandas, GDAL through pyogrio), from a real Movebank subset, and must read back to
the same fixes: times, positions (exactly, or within 1e-7 degrees after a CRS
round trip through pyproj), animals and row count.
"""

from __future__ import annotations

import subprocess
import sys

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import telemetry
from telemetry.errors import ParseError, TelemetryError
from telemetry.parsers.points import point_coords

from .conftest import DATA, assert_canonical_dtypes

BATS = DATA / "movebank" / "bats_subset.csv"


@pytest.fixture(scope="module")
def fixes() -> pd.DataFrame:
    df = telemetry.read(BATS)
    return df[df["lon"].notna() & df["time"].notna()].reset_index(drop=True).iloc[:120]


@pytest.fixture(scope="module")
def gdf(fixes) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"timestamp": fixes["time"].to_numpy(), "individual": fixes["animal_id"].astype(str).to_numpy(),
         "hdop": fixes["hdop"].to_numpy()},
        geometry=gpd.points_from_xy(fixes["lon"], fixes["lat"]), crs=4326)


def same_fixes(df: pd.DataFrame, ref: pd.DataFrame, tol: float = 0.0) -> None:
    assert len(df) == len(ref)
    assert_canonical_dtypes(df)
    a = df.sort_values(["animal_id", "time"]).reset_index(drop=True)
    b = ref.sort_values(["animal_id", "time"]).reset_index(drop=True)
    assert (a["time"] == b["time"]).all()
    assert list(a["animal_id"].astype(str)) == list(b["animal_id"].astype(str))
    np.testing.assert_allclose(a["lon"], b["lon"], atol=tol, rtol=0)
    np.testing.assert_allclose(a["lat"], b["lat"], atol=tol, rtol=0)


WRITERS = {
    "geo.parquet": ("parquet-table", lambda g, p: g.to_parquet(p)),
    "geo.feather": ("arrow-ipc", lambda g, p: g.to_feather(p)),
    "fixes.gpkg": ("geopackage", lambda g, p: g.to_file(p, driver="GPKG")),
    "fixes.geojson": ("geojson", lambda g, p: g.to_file(p, driver="GeoJSON")),
    "plain.parquet": ("parquet-table", lambda g, p: pd.DataFrame(
        {"timestamp": g["timestamp"], "individual": g["individual"], "longitude": g.geometry.x,
         "latitude": g.geometry.y}).to_parquet(p)),
    "plain.feather": ("arrow-ipc", lambda g, p: pd.DataFrame(
        {"timestamp": g["timestamp"], "individual": g["individual"], "lon": g.geometry.x,
         "lat": g.geometry.y}).reset_index(drop=True).to_feather(p)),
    "wkb.parquet": ("parquet-table", lambda g, p: pd.DataFrame(
        {"timestamp": g["timestamp"], "individual": g["individual"], "geometry": g.geometry.to_wkb()}).to_parquet(p)),
}


@pytest.mark.parametrize("name", list(WRITERS))
def test_binary_tables_read_back_the_same_fixes(tmp_path, gdf, fixes, name):
    fmt, write = WRITERS[name]
    path = tmp_path / name
    write(gdf, path)
    df = telemetry.read(path)
    assert df.attrs["sources"][0]["format"] == fmt
    same_fixes(df, fixes)
    assert list(df["source_row"]) == list(range(1, len(df) + 1))  # record numbers
    if "hdop" in gdf and name.startswith(("geo", "fixes")):
        np.testing.assert_allclose(df["hdop"], gdf["hdop"])


@pytest.mark.parametrize("ext,driver", [("gpkg", "GPKG"), ("parquet", None)])
def test_projected_crs_is_transformed_to_wgs84(tmp_path, gdf, fixes, ext, driver):
    utm = gdf.to_crs(32629)  # Portugal, UTM 29N
    path = tmp_path / f"utm.{ext}"
    utm.to_file(path, driver=driver) if driver else utm.to_parquet(path)
    df = telemetry.read(path)
    same_fixes(df, fixes, tol=1e-7)
    assert any("EPSG:32629" in n for n in df.attrs["sources"][0]["notes"])


def test_movingpandas_and_ecoscope_tables(tmp_path, gdf, fixes):
    import movingpandas as mpd

    g = gdf.copy()
    g["t"] = g["timestamp"].dt.tz_convert("UTC").dt.tz_localize(None)
    tc = mpd.TrajectoryCollection(g.drop(columns="timestamp").set_index("t"), "individual")
    tc.to_point_gdf().to_parquet(tmp_path / "mpd.parquet")
    # movingpandas keeps naive times: the zone is never guessed, --tz says it
    with pytest.raises(ParseError, match="--tz"):
        telemetry.read(tmp_path / "mpd.parquet")
    same_fixes(telemetry.read(tmp_path / "mpd.parquet", tz="UTC"), fixes)
    eco = gpd.GeoDataFrame({"groupby_col": g["individual"], "fixtime": g["timestamp"],
                            "junk_status": np.arange(len(g)) == 5}, geometry=g.geometry, crs=4326)
    eco.to_parquet(tmp_path / "eco.parquet")
    df = telemetry.read(tmp_path / "eco.parquet")
    same_fixes(df, fixes)
    cleaned = telemetry.clean(df)
    assert (cleaned["flag"] == "marked_outlier").sum() >= 1
    assert cleaned["flag"].iloc[5] == "marked_outlier"


@pytest.mark.parametrize("style", ["wkt", "geojson", "mapping"])
def test_earthranger_export_with_a_location_column(tmp_path, gdf, fixes, style):
    pts = gdf.geometry
    location = {
        "wkt": pts.to_wkt(),
        "geojson": [f'{{"type": "Point", "coordinates": [{p.x!r}, {p.y!r}]}}' for p in pts],
        "mapping": [f"{{'latitude': {p.y!r}, 'longitude': {p.x!r}}}" for p in pts],
    }[style]
    er = pd.DataFrame({"id": [f"5f1c-{i:04d}" for i in range(len(gdf))],
                       "recorded_at": gdf["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00"),
                       "location": location, "source": "0b7c-collar", "subject_name": gdf["individual"],
                       "exclusion_flags": np.where(np.arange(len(gdf)) == 7, 2, 0)})
    path = tmp_path / "er_observations.csv"
    er.to_csv(path, index=False)
    df = telemetry.read(path)
    same_fixes(df, fixes, tol=1e-9)
    assert telemetry.clean(df)["flag"].iloc[7] == "marked_outlier"
    # the observation id is never an animal, even without subject names
    er.drop(columns="subject_name").to_csv(path, index=False)
    df = telemetry.read(path)
    assert df["animal_id"].nunique() == 1 and len(df) == len(fixes)


def test_dataset_folder_inside_a_scanned_folder_is_one_input(tmp_path, fixes):
    (tmp_path / "in").mkdir()
    from telemetry.io.dataset import write_dataset

    write_dataset(fixes, tmp_path / "in" / "ds")
    df = telemetry.read(tmp_path / "in")
    assert len(df) == len(fixes)


@pytest.mark.parametrize("case,expect", [
    ("line.geojson", "not points"),
    ("poly.gpkg", "no point layer"),
    ("plain.sqlite", "not telemetry"),
    ("trunc.parquet", "cannot read as Parquet"),
    ("nocols.parquet", "cannot tell which column"),
    ("garbage.feather", "cannot read as Feather"),
])
def test_bad_tables_are_one_line_errors_with_status_2(tmp_path, gdf, case, expect):
    import sqlite3

    from shapely.geometry import LineString, Polygon

    path = tmp_path / case
    if case == "line.geojson":
        gpd.GeoDataFrame({"t": [1]}, geometry=[LineString([(0, 0), (1, 1)])], crs=4326).to_file(path)
    elif case == "poly.gpkg":
        gpd.GeoDataFrame({"t": [1]}, geometry=[Polygon([(0, 0), (1, 1), (1, 0)])], crs=4326).to_file(path)
    elif case == "plain.sqlite":
        con = sqlite3.connect(path)
        con.execute("create table a(x)")
        con.commit()
        con.close()
    elif case == "trunc.parquet":
        gdf.to_parquet(tmp_path / "full.parquet")
        path.write_bytes((tmp_path / "full.parquet").read_bytes()[:300])
    elif case == "nocols.parquet":
        pd.DataFrame({"a": [1, 2], "b": [3, 4]}).to_parquet(path)
    else:
        path.write_bytes(b"ARROW1\x00\x00" + bytes(range(256)) * 4)
    with pytest.raises(TelemetryError, match=expect):
        telemetry.read(path)
    proc = subprocess.run([sys.executable, "-m", "telemetry", "inspect", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert case in proc.stderr


coord = st.floats(-179.999, 179.999, allow_nan=False).map(lambda v: round(v, 7))
lat = st.floats(-89.999, 89.999, allow_nan=False).map(lambda v: round(v, 7))


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(coord, lat, st.sampled_from(["wkt", "wktz", "ewkt", "geojson", "map", "none", "junk"])),
                min_size=1, max_size=20))
def test_point_coords_reads_every_text_encoding(cells):
    text, want = [], []
    for x, y, style in cells:
        text.append({"wkt": f"POINT ({x!r} {y!r})", "wktz": f"POINT Z ({x!r} {y!r} 12.5)",
                     "ewkt": f"SRID=4326;POINT({x!r} {y!r})",
                     "geojson": f'{{"type":"Point","coordinates":[{x!r},{y!r}]}}',
                     "map": f'{{"longitude": {x!r}, "latitude": {y!r}}}', "none": None,
                     "junk": "LINESTRING (0 0, 1 1)"}[style])
        want.append((x, y) if style not in ("none", "junk") else (np.nan, np.nan))
    lon, la, bad = point_coords(pa.array(text, pa.string()))
    np.testing.assert_array_equal(lon, [w[0] for w in want])
    np.testing.assert_array_equal(la, [w[1] for w in want])
    assert bad.tolist() == [s == "junk" for *_, s in cells]


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=0, max_size=400), st.sampled_from([b"PAR1", b"ARROW1", b"FEA1", b"SQLite format 3\x00",
                                                              b'{"type": "FeatureCollection",']))
def test_damaged_binary_tables_raise_only_telemetry_errors(tmp_path_factory, tail, magic):
    path = tmp_path_factory.mktemp("fuzz") / "x.bin"
    path.write_bytes(magic + tail)
    try:
        df = telemetry.read(path)
    except TelemetryError as err:
        assert "\n" not in str(err)
    else:
        assert_canonical_dtypes(df)


def _shapefile(folder, name: str, animal: str, n: int = 12, crs: int = 32643):
    import geopandas as gpd

    t = pd.date_range("2024-03-01", periods=n, freq="4h", tz="UTC")
    lon, lat = 77 + np.arange(n) * 1e-3, 43 + np.arange(n) * 1e-3
    g = gpd.GeoDataFrame({"animal": animal, "timestamp": t.strftime("%Y-%m-%dT%H:%M:%SZ"), "hdop": 1.2},
                         geometry=gpd.points_from_xy(lon, lat), crs=4326).to_crs(crs)
    folder.mkdir(exist_ok=True)
    g.to_file(folder / f"{name}.shp")
    return lon, lat, t


def test_shapefiles_on_disk_and_zipped(tmp_path):
    """Points exported as Esri shapefiles (in UTM, as ArcGIS users keep them), on disk with their
    parts or zipped as agencies mail them (two layers in one zip): every fix, in WGS84."""
    import zipfile

    lon, lat, t = _shapefile(tmp_path / "a", "SL05_fixes", "SL05")
    _shapefile(tmp_path / "a", "SL06_fixes", "SL06", n=7, crs=4326)
    on_disk = telemetry.read(tmp_path / "a")
    assert sorted(r["format"] for r in on_disk.attrs["sources"]) == ["shapefile", "shapefile"]
    sl05 = on_disk[on_disk["animal_id"] == "SL05"]
    np.testing.assert_allclose(sl05["lon"].to_numpy(dtype=float), lon, atol=1e-9)
    np.testing.assert_allclose(sl05["lat"].to_numpy(dtype=float), lat, atol=1e-9)
    assert sl05["time"].tolist() == list(t)
    archive = tmp_path / "mailed.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in sorted((tmp_path / "a").iterdir()):
            z.write(f, f"export/{f.name}")
    zipped = telemetry.read(archive)
    assert [r["source"] for r in zipped.attrs["sources"]] == [f"{archive}::export/SL05_fixes.shp",
                                                              f"{archive}::export/SL06_fixes.shp"]
    assert len(zipped) == 12 + 7
    np.testing.assert_allclose(np.sort(zipped["lon"].to_numpy(dtype=float)), np.sort(on_disk["lon"].to_numpy(dtype=float)),
                               atol=1e-12)


def test_a_shapefile_without_its_table_is_one_line(tmp_path):
    _shapefile(tmp_path / "b", "lone", "SL05")
    (tmp_path / "b" / "lone.dbf").unlink()
    with pytest.raises(TelemetryError) as err:
        telemetry.read(tmp_path / "b" / "lone.shp")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(str(tmp_path / "b" / "lone.shp")) and "shapefile" in msg, msg
