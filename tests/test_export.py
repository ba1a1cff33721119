"""Exports: RFC 7946 GeoJSON, the public generalisation guarantee on the sample, formats, reruns."""

from __future__ import annotations

import functools
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely

from telemetry.io import points
from telemetry.outputs import deliverables, formats
from telemetry.outputs import generalise as gen
from telemetry.outputs import layers as lay

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_tracks"
GRID = 0.1
ALL = {"min_animals": 1, "min_confidence": 0.0}  # no disclosure control: every item, for the geometry checks


@functools.lru_cache(maxsize=1)
def sample() -> dict:
    """The sample end to end (computed once per test session)."""
    import telemetry
    from telemetry.trajectory.quality import summarize

    fixes = telemetry.read(SAMPLE)
    tracks = telemetry.process(fixes)
    cx = telemetry.crossings(tracks)
    hs = telemetry.hotspots(cx)
    return {"tracks": tracks, "crossings": cx, "hotspots": hs, "corridors": telemetry.corridors(tracks, hs),
            "home_ranges": telemetry.home_ranges(tracks), "quality": summarize(fixes)}


@pytest.fixture(scope="module")
def public_file(tmp_path_factory) -> Path:
    s = sample()
    layers = lay.public_layers(s["crossings"], s["hotspots"], s["corridors"], s["home_ranges"], grid_deg=GRID, **ALL)
    meta = lay.export_metadata(audience="public", grid_deg=GRID, params={"x": 1}, tracks=s["tracks"], layers=layers)
    path = tmp_path_factory.mktemp("pub") / "public.geojson"
    formats.write_feature_collection(layers, path, meta)
    return path


def _positions(coords):
    """Every position (list of 2 numbers) in nested GeoJSON coordinates."""
    if coords and isinstance(coords[0], (int, float)):
        yield coords
    else:
        for c in coords:
            yield from _positions(c)


def _rings(geom):
    if geom["type"] == "Polygon":
        yield from ((k, r) for k, r in enumerate(geom["coordinates"]))
    elif geom["type"] == "MultiPolygon":
        for p in geom["coordinates"]:
            yield from ((k, r) for k, r in enumerate(p))


def _signed_area(ring) -> float:
    x, y = np.asarray(ring, dtype=float).T
    return 0.5 * float(np.sum(x[:-1] * y[1:] - x[1:] * y[:-1]))


def assert_rfc7946(doc: dict, text: str) -> None:
    """RFC 7946 checks: structure, no crs, WGS84 ranges, ≤ 6 decimals, valid right-hand polygons."""
    assert doc["type"] == "FeatureCollection" and "crs" not in doc
    assert all(f["type"] == "Feature" and "crs" not in f for f in doc["features"])
    for f in doc["features"]:
        g = f["geometry"]
        if g is None:
            continue
        pos = list(_positions(g["coordinates"]))
        assert all(len(p) == 2 for p in pos)
        arr = np.asarray(pos, dtype=float)
        assert (np.abs(arr[:, 0]) <= 180).all() and (np.abs(arr[:, 1]) <= 90).all()
        # at most 6 decimals, as written in the file (json gives back the exact repr)
        assert all(len(repr(float(v)).partition(".")[2]) <= 6 for p in pos for v in p)
        assert shapely.from_geojson(json.dumps(g)).is_valid
        for k, ring in _rings(g):
            assert len(ring) >= 4 and ring[0] == ring[-1]
            assert (_signed_area(ring) > 0) == (k == 0)  # exterior CCW, holes CW (§3.1.6)
    assert '"crs"' not in text


def test_public_geojson_is_rfc7946(public_file):
    text = public_file.read_text(encoding="utf-8")
    doc = json.loads(text)
    assert_rfc7946(doc, text)
    layers = {f["properties"]["layer"] for f in doc["features"]}
    assert layers == {"corridors", "hotspots", "crossing_counts", "home_ranges"}


def test_public_geojson_metadata(public_file):
    meta = json.loads(public_file.read_text())["telemetry"]
    assert meta["audience"] == "public" and meta["tool_version"]
    assert meta["generated"] == "2024-02" and meta["generated_from"].startswith("month of the last fix")
    assert meta["generalisation"]["grid_deg"] == GRID and "month" in meta["generalisation"]["times"]
    assert meta["licence"] and "Natural Earth" in meta["borders_note"] and "disputed" in meta["borders_note"]
    assert meta["parameters"] == {"x": 1}


def test_public_file_reveals_positions_only_to_a_cell(public_file):
    """The guarantee of telemetry.outputs.generalise, on the sample.

    (a) every exported coordinate is a corner or centre of the 0.1° lattice; hence
    (b) for every raw fix p (raw and smoothed), the nearest exported coordinate is no
    closer to p than the nearest lattice point is: the file never places anything
    nearer to a fix than the grid itself does; (c) no raw fix position appears in the file.
    """
    doc = json.loads(public_file.read_text())
    coords = np.array([p for f in doc["features"] if f["geometry"] for p in _positions(f["geometry"]["coordinates"])])
    assert len(coords) > 100
    assert gen.on_lattice(coords, GRID).all()  # (a)
    tracks = sample()["tracks"]
    raw = np.vstack([tracks[["lon", "lat"]].to_numpy(dtype=float, na_value=np.nan),
                     tracks[["lon_s", "lat_s"]].to_numpy(dtype=float, na_value=np.nan)])
    raw = raw[np.isfinite(raw).all(axis=1)]
    exported = np.unique(coords, axis=0)
    tree = shapely.STRtree(shapely.points(exported))
    nearest = tree.query_nearest(shapely.points(raw), return_distance=True, all_matches=False)
    d_export = np.empty(len(raw))
    d_export[nearest[0][0]] = nearest[1]
    # nearest lattice point: corners and centres around the fix
    i, j = gen.cell_index(raw[:, 0], raw[:, 1], GRID)
    lattice = np.stack([np.column_stack([(i + a) * GRID, (j + b) * GRID])
                        for a, b in ((0, 0), (1, 0), (0, 1), (1, 1), (0.5, 0.5))])
    d_lattice = np.sqrt(((lattice - raw) ** 2).sum(axis=2)).min(axis=0)
    assert (d_export >= d_lattice - 1e-9).all()  # (b)
    raw_set = {tuple(np.round(r, 6)) for r in raw}
    assert not raw_set & {tuple(c) for c in exported}  # (c) on the sample no fix sits on the lattice
    # times only to the month, no per-event rows, no exact-position attributes
    props = [f["properties"] for f in doc["features"]]
    assert not any(re.fullmatch(r"\d{4}-\d{2}-\d{2}.*", str(v)) for p in props for v in p.values())
    banned = {"lon", "lat", "time", "t_before", "t_after", "position_km", "start_km", "end_km", "segment",
              "first", "last", "animals"}
    assert not banned & {k for p in props for k in p}


def test_public_layers_ignore_where_in_the_cell(public_file):
    """Moving every crossing and hotspot within its cell changes nothing in the public layers."""
    s = sample()
    rng = np.random.default_rng(0)
    hs = s["hotspots"].copy()
    x, y = shapely.get_x(hs.geometry.values), shapely.get_y(hs.geometry.values)
    i, j = gen.cell_index(x, y, GRID)
    hs["geometry"] = shapely.points((i + rng.uniform(0.01, 0.99, len(i))) * GRID,
                                    (j + rng.uniform(0.01, 0.99, len(j))) * GRID)
    a = lay.public_layers(s["crossings"], s["hotspots"], grid_deg=GRID, **ALL)
    b = lay.public_layers(s["crossings"].assign(lon=0.0, lat=0.0), hs, grid_deg=GRID, **ALL)
    meta = {"m": 1}
    assert formats.feature_collection(a, meta) == formats.feature_collection(b, meta)


def test_crossing_counts_add_up():
    cx = sample()["crossings"]
    counts = lay.crossing_counts(cx)
    assert counts["n_events"].sum() == len(cx)
    assert (counts["n_animals"] <= counts["n_events"]).all()
    assert counts["month"].str.fullmatch(r"\d{4}-\d{2}").all()
    assert {"CHN–KAZ", "KAZ–KGZ"} <= set(counts["border"])
    both = counts.groupby("border")["from_iso"].nunique()
    assert (both == 2).all()  # both directions kept apart


@pytest.mark.parametrize("ext", ["geojson", "gpkg", "parquet", "csv"])
def test_every_format_is_reproducible_and_readable(tmp_path, ext):
    import geopandas as gpd
    import pyogrio

    s = sample()
    layers = lay.public_layers(s["crossings"], s["hotspots"], s["corridors"], s["home_ranges"], grid_deg=GRID, **ALL)
    meta = lay.export_metadata(audience="public", grid_deg=GRID, tracks=s["tracks"], layers=layers)
    a, b = tmp_path / f"a.{ext}", tmp_path / f"b.{ext}"
    formats.write_layers(layers, a, meta)
    formats.write_layers(layers, b, meta)
    assert a.read_bytes() == b.read_bytes()
    n = sum(len(v) for v in layers.values())
    if ext == "gpkg":
        names = [r[0] for r in pyogrio.list_layers(a)]
        assert sorted(names) == sorted(layers)
        hr = gpd.read_file(a, layer="home_ranges")
        assert len(hr) == len(layers["home_ranges"]) and hr.crs.to_epsg() == 4326
        assert gen.on_lattice(shapely.get_coordinates(hr.geometry.values), GRID).all()
    elif ext == "parquet":
        t = gpd.read_parquet(a)
        assert len(t) == n and set(t["layer"]) == set(layers)
        import pyarrow.parquet as pq

        assert json.loads(pq.read_schema(a).metadata[b"telemetry"])["audience"] == "public"
    elif ext == "csv":
        t = pd.read_csv(a)
        assert len(t) == n and "geometry_wkt" in t
        assert json.loads((tmp_path / "a.csv.json").read_text())["generalisation"]["grid_deg"] == GRID


def test_internal_export_keeps_exact_positions(tmp_path):
    import geopandas as gpd

    s = sample()
    layers = lay.internal_layers(s["tracks"], s["crossings"], s["hotspots"])
    assert {"tracks", "crossings", "hotspots", "clusters"} <= set(layers)
    meta = lay.export_metadata(audience="internal", grid_deg=None, tracks=s["tracks"], layers=layers)
    assert "EXACT" in meta["warning"] and meta["generated"].endswith("Z")
    path = tmp_path / "internal.geojson"
    formats.write_layers({"crossings": layers["crossings"]}, path, meta)
    doc = json.loads(path.read_text())
    assert_rfc7946(doc, path.read_text())
    got = np.array([f["geometry"]["coordinates"][0] for f in doc["features"]])
    want = np.array([g.geoms[0].coords[0] for g in s["crossings"].geometry])
    np.testing.assert_allclose(got, want, atol=5e-7)
    gp = tmp_path / "internal.gpkg"
    formats.write_layers({"tracks": layers["tracks"]}, gp, meta)
    tr = gpd.read_file(gp, layer="tracks")
    assert len(tr) == int(s["tracks"]["lon"].notna().sum())


def test_write_deliverables_end_to_end(tmp_path):
    s = sample()
    out = tmp_path / "run"
    out.mkdir()
    (out / "map.html").write_text("<html></html>")
    args = (s["tracks"], s["crossings"], s["hotspots"], s["corridors"], s["home_ranges"], s["quality"], None)
    files = deliverables.write_deliverables(out, *args)
    names = [p.relative_to(out).as_posix() for p in files]
    assert names == ["public.geojson", "public.html", "brief.html", "brief.pdf", "internal.gpkg", "crossings_by_month.csv",
                     "charts/fix_success.png",
                     "charts/daily_distance.png", "charts/crossings.png", "index.html"]
    digest = {n: hashlib.sha256((out / n).read_bytes()).hexdigest() for n in names}
    deliverables.write_deliverables(out, *args)
    assert digest == {n: hashlib.sha256((out / n).read_bytes()).hexdigest() for n in names}  # rerun: same bytes
    html = (out / "index.html").read_text()
    assert 'href="map.html"' in html and 'src="charts/crossings.png"' in html and 'href="public.geojson"' in html
    assert 'href="public.html"' in html
    # self-contained: nothing fetched (the only script is the inline language switch)
    assert not re.search(r'(src|href)="https?://', html) and "<script src" not in html
    assert html.count("<script") == 1 and "TelemetryLang" in html
    assert html.count("<tr>") == 1 + s["tracks"]["animal_id"].nunique()
    table = pd.read_csv(out / "crossings_by_month.csv")
    assert table["n_events"].sum() == len(s["crossings"])
    meta = json.loads((out / "public.geojson").read_text())["telemetry"]
    assert {"process", "crossings", "hotspots", "corridors"} <= set(meta["parameters"])


def test_write_deliverables_with_nothing_or_one_layer(tmp_path):
    assert [p.name for p in deliverables.write_deliverables(tmp_path / "e")] == ["index.html"]
    files = deliverables.write_deliverables(tmp_path / "c", crossings=sample()["crossings"].iloc[:0])
    assert [p.name for p in files] == ["public.geojson", "public.html", "brief.html", "brief.pdf", "internal.gpkg",
                                       "crossings_by_month.csv", "crossings.png",
                                       "index.html"]
    doc = json.loads((tmp_path / "c" / "public.geojson").read_text())
    assert doc["features"] == [] and doc["telemetry"]["generated_from"] == "no times in the data"


def test_export_format_errors():
    from telemetry.errors import TelemetryError

    assert formats.export_format("x.GeoJSON") == "geojson" and formats.export_format("x.parquet") == "parquet"
    with pytest.raises(TelemetryError, match="unknown export type"):
        formats.export_format("x.shp")


def test_cli_export(tmp_path):
    from click.testing import CliRunner

    from telemetry.cli.export_cmd import export

    one = str(SAMPLE / "vectronic_SYNTHETIC_SL06_collar41936.csv")
    r = CliRunner()
    out = tmp_path / "p.geojson"
    res = r.invoke(export, [one, "--out", str(out), "--grid-deg", "0.05"])
    assert res.exit_code == 0, res.output
    text = out.read_text()
    doc = json.loads(text)
    assert_rfc7946(doc, text)
    coords = np.array([p for f in doc["features"] if f["geometry"] for p in _positions(f["geometry"]["coordinates"])])
    assert gen.on_lattice(coords, 0.05).all() and doc["telemetry"]["generalisation"]["grid_deg"] == 0.05
    res = r.invoke(export, [one, "--out", str(tmp_path / "i.gpkg"), "--audience", "internal"])
    assert res.exit_code != 0 and "--precise" in str(res.exception)
    res = r.invoke(export, [one, "--out", str(tmp_path / "p.gpkg"), "--precise"])
    assert res.exit_code != 0 and "--audience internal" in str(res.exception)
    res = r.invoke(export, [one, "--out", str(tmp_path / "i.csv"), "--audience", "internal", "--precise",
                            "--layer", "crossings"])
    assert res.exit_code == 0 and "warning" in res.stderr and "EXACT positions" in res.stderr
    assert pd.read_csv(tmp_path / "i.csv")["layer"].eq("crossings").all()


def test_streamed_writers_give_the_same_files(tmp_path):
    """The Arrow writers (tracks layer of internal.gpkg, tracks.parquet) write what the
    GeoDataFrame route writes: same GeoPackage bytes, same GeoParquet bytes."""
    import geopandas as gpd
    import pyarrow.parquet as pq
    from geopandas.io.arrow import _geopandas_to_arrow

    tr = sample()["tracks"].iloc[:3000].copy()
    tr.loc[tr.index[::11], "lon"] = np.nan  # rows without a position
    tr["time"] = tr["time"] + pd.to_timedelta(np.arange(len(tr)) * 1_234_567, unit="ns")  # sub-ms times
    meta = {"generated": "2024-01"}
    a, b = tmp_path / "a.gpkg", tmp_path / "b.gpkg"
    formats.write_gpkg_layers(lay.internal_layers(tr), a, meta)
    formats.write_gpkg_layers(lay.build_internal_layers(tr, None, None, None, None, stream_tracks=True), b, meta)
    assert a.read_bytes() == b.read_bytes()
    points.write_tracks(tr, tmp_path / "t.parquet")
    lon = tr["lon"].to_numpy(dtype=float, na_value=np.nan)
    lat = tr["lat"].to_numpy(dtype=float, na_value=np.nan)
    geom = gpd.points_from_xy(lon, lat)
    geom[~(np.isfinite(lon) & np.isfinite(lat))] = None
    df = tr.copy(deep=False)
    df.attrs = {}
    table = _geopandas_to_arrow(gpd.GeoDataFrame(df, geometry=geom, crs="EPSG:4326"), index=False)
    md = dict(table.schema.metadata)
    md[b"telemetry"] = pq.read_schema(tmp_path / "t.parquet").metadata[b"telemetry"]
    pq.write_table(table.replace_schema_metadata(md), tmp_path / "ref.parquet")
    assert (tmp_path / "t.parquet").read_bytes() == (tmp_path / "ref.parquet").read_bytes()


def test_track_lines_follow_the_usable_fixes_per_segment():
    import pyproj

    tracks = sample()["tracks"]
    lines = lay.track_lines(tracks)
    ok = tracks["flag"].isna() & tracks["lon"].notna() & tracks["time"].notna()
    per = tracks[ok].groupby(["animal_id", "segment_id"], observed=True).size()
    assert int(lines["n_fixes"].sum()) == int(per[per >= 2].sum())
    assert len(lines) == int((per >= 2).sum())
    # one line checked against its fixes and an independent geodesic length
    row = lines.iloc[len(lines) // 2]
    seg = tracks[ok & (tracks["animal_id"] == row["animal_id"]) & (tracks["segment_id"] == row["segment_id"])]
    seg = seg.sort_values("time")
    coords = np.asarray(row.geometry.coords)
    np.testing.assert_array_equal(coords, seg[["lon", "lat"]].to_numpy())
    assert row["start"] == seg["time"].iloc[0] and row["end"] == seg["time"].iloc[-1]
    length = pyproj.Geod(ellps="WGS84").line_length(seg["lon"].to_numpy(), seg["lat"].to_numpy()) / 1000
    assert row["length_km"] == pytest.approx(length, abs=1e-6)


def test_run_bundle_geopackage_has_lines_not_every_fix(tmp_path):
    import pyogrio

    s = sample()
    deliverables.write_deliverables(tmp_path, s["tracks"], s["crossings"], s["hotspots"], s["corridors"], s["home_ranges"],
                          s["quality"], None, fix_points=False)
    names = [n for n, _ in pyogrio.list_layers(tmp_path / "internal.gpkg")]
    assert "track_lines" in names and "tracks" not in names


def test_arrow_geopackage_layers_match_the_row_writer(tmp_path, monkeypatch):
    """GeoPackage layers written through Arrow (_gpkg_arrow_table) are byte for byte what
    pyogrio's row writer writes: the run's layers and a table of awkward column types."""
    import geopandas as gpd

    s = sample()
    layers = lay.internal_layers(None, s["crossings"], s["hotspots"], s["corridors"], s["home_ranges"])
    layers["track_lines"] = lay.track_lines(s["tracks"])
    layers["clusters"] = lay.internal_layers(s["tracks"])["clusters"]
    t = pd.Timestamp("2024-03-01T12:00:00.123456789Z")
    n = 7
    layers["awkward"] = gpd.GeoDataFrame({
        "text": ["a", None, "ü", "", "x", "y", "z"],
        "none": [None] * n,
        "mixed": [True, None, 3, "s", 1.5, False, None],  # object of non-strings: str(value)
        "cat": pd.Categorical(["p", "q", None, "p", "q", "p", "q"]),
        "nint": pd.array([1, None, 3, 4, 5, 6, 7], dtype="Int64"),
        "int": np.arange(n, dtype=np.int64),
        "flt": [1.0, np.nan, np.inf, -0.0, 2.5, 1e300, 3.0],
        "flag": [True, False] * 3 + [True],
        "time": [t + pd.Timedelta(k * 987_654_321, "ns") for k in range(n - 1)] + [pd.NaT],
    }, geometry=gpd.points_from_xy(np.linspace(70, 71, n), np.linspace(40, 41, n)), crs="EPSG:4326")
    layers["awkward"].loc[2, "geometry"] = None
    assert formats._gpkg_arrow_table(formats._gpkg_ready(layers["awkward"])) is not None
    assert formats._gpkg_arrow_table(formats._gpkg_ready(layers["track_lines"])) is not None
    meta = {"generated": "2024-01"}
    formats.write_gpkg_layers(layers, tmp_path / "arrow.gpkg", meta)
    monkeypatch.setattr(formats, "_gpkg_arrow_table", lambda gdf: None)
    formats.write_gpkg_layers(layers, tmp_path / "rows.gpkg", meta)
    assert (tmp_path / "arrow.gpkg").read_bytes() == (tmp_path / "rows.gpkg").read_bytes()


def test_track_lines_can_take_the_metrics_steps():
    """Line lengths from the step_m of telemetry.metrics are the very floats measured anew;
    by default (tracks maybe changed since) the steps are measured."""
    tracks = sample()["tracks"]
    assert "metrics" in tracks.attrs["steps"]
    fast = lay.track_lines(tracks, steps_from_metrics=True)
    measured = lay.track_lines(tracks.drop(columns="step_m"))
    assert np.array_equal(fast["length_km"].to_numpy(), measured["length_km"].to_numpy())
    stale = tracks.copy()
    usable = np.flatnonzero((stale["flag"].isna() & stale["lon"].notna()).to_numpy())
    stale["flag"] = stale["flag"].astype(object)
    stale.loc[stale.index[usable[len(usable) // 2]], "flag"] = "spike"  # a fix leaves its line
    got = lay.track_lines(stale)
    assert np.array_equal(got["length_km"].to_numpy(),
                          lay.track_lines(stale.drop(columns="step_m"))["length_km"].to_numpy())
    assert not np.array_equal(got["length_km"].to_numpy(), fast["length_km"].to_numpy())


def test_a_synthetic_file_is_named_synthetic_inside_a_workbook_or_an_archive() -> None:
    """A file that says it is synthetic stays synthetic as a workbook's sheet or an archive's member."""
    import pandas as pd

    from telemetry.outputs.layers import synthetic_sources

    tracks = pd.DataFrame({"lon": [0.0]})
    tracks.attrs["sources"] = [{"source": "data/SL_SYNTHETIC_sample.xlsx::Sheet1"}, {"source": "pack.zip::SYNTHETIC_x.csv"},
                               {"source": "real/gulls.csv"}, {"source": "SYNTHETIC_dir/real.csv"}]
    assert synthetic_sources(tracks) == ["SL_SYNTHETIC_sample.xlsx", "pack.zip"]
