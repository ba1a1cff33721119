"""telemetry.outputs.maps: self-contained offline HTML, deterministic bytes, every layer, small file."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from telemetry.errors import TelemetryError
from telemetry.outputs.maps import LAYER_NAMES, SENSITIVE_NOTE, MapBudget, leaflet_assets, render_map

ROOT = Path(__file__).resolve().parent.parent
MAX_BYTES = 5_000_000


def _tracks() -> pd.DataFrame:
    """Two synthetic animals, 4-hourly fixes for 20 days, one walking across KAZ→KGZ (~77.1°E 43.0°N)."""
    rng = np.random.default_rng(7)
    n = 120
    t = pd.date_range("2022-05-01", periods=n, freq="4h", tz="UTC")
    frames = []
    for k, (lon0, lat0, dlat) in enumerate([(77.10, 43.05, -0.0012), (77.60, 42.90, 0.0)]):
        lat = lat0 + dlat * np.arange(n) + rng.normal(0, 0.002, n)
        lon = lon0 + rng.normal(0, 0.003, n).cumsum() * 0.3
        frames.append(pd.DataFrame({"animal_id": f"A{k + 1}", "time": t, "lon": lon, "lat": lat,
                                    "segment_id": np.where(np.arange(n) < 60, 0, 1)}))
    df = pd.concat(frames, ignore_index=True)
    df["flag"] = pd.Series(pd.NA, index=df.index, dtype="string")
    df.loc[[5, 130], "flag"] = "spike"
    df.loc[7, ["lon", "lat"]] = np.nan
    df.loc[7, "flag"] = "no_fix"
    df["cluster_id"] = pd.array(np.where(df.index % 40 < 3, df.index // 40, -1), dtype="Int64")
    df.loc[df["cluster_id"] < 0, "cluster_id"] = pd.NA
    return df


def _products(tracks: pd.DataFrame) -> dict[str, gpd.GeoDataFrame]:
    cx = gpd.GeoDataFrame({
        "animal_id": ["A1"], "kind": ["crossing"], "from_iso": ["KAZ"], "to_iso": ["KGZ"],
        "time": [pd.Timestamp("2022-05-08 12:00", tz="UTC")], "t_before": [pd.Timestamp("2022-05-08 10:00", tz="UTC")],
        "t_after": [pd.Timestamp("2022-05-08 14:00", tz="UTC")], "confidence": [0.87], "lon": [77.1], "lat": [42.97]},
        geometry=[shapely.MultiPoint([(77.1, 42.97)])], crs="EPSG:4326")
    hs = gpd.GeoDataFrame({"name": ["KAZ–KGZ #1"], "n_crossings": [3], "animals": ["A1"]},
                          geometry=[shapely.Point(77.1, 42.97)], crs="EPSG:4326")
    corr = gpd.GeoDataFrame({"corridor_id": [0, 1], "method": ["footprint", "footprint"], "n_animals": [1, 2],
                             "animal_count": [2, 2], "animals": ["A1;A2", "A1;A2"], "countries": ["KAZ", "KAZ;KGZ"],
                             "area_km2": [12.5, 3.25]},
                            geometry=[shapely.box(77.0, 42.9, 77.7, 43.1), shapely.box(77.2, 42.95, 77.4, 43.0)],
                            crs="EPSG:4326")
    from telemetry.trajectory.homerange import home_ranges

    return {"crossings": cx, "hotspots": hs, "corridors": corr, "home_ranges": home_ranges(tracks)}


@pytest.fixture(scope="module")
def small_map(tmp_path_factory) -> tuple[Path, str]:
    tracks = _tracks()
    out = tmp_path_factory.mktemp("map") / "sub" / "map.html"
    path = render_map(tracks, **_products(tracks), out=out, title="Test map")
    return path, path.read_text(encoding="utf-8")


def _external_refs(page: str) -> list[str]:
    """src/href attributes and CSS url()/@import that point at the network."""
    refs = re.findall(r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*[\"']?([^\"' >]+)", page, re.I)
    refs += re.findall(r"@import\s+(?:url\()?[\"']?([^\"')\s;]+)", page)
    refs += re.findall(r"url\(\s*[\"']?(https?:[^\"')]+)", page)
    return [r for r in refs if re.match(r"(https?:)?//", r)]


def test_all_inlined_no_cdn(small_map):
    path, page = small_map
    assert path.name == "map.html" and path.exists()
    assert _external_refs(page) == []
    assert not re.search(r"<script[^>]+src=", page) and not re.search(r"<link[^>]+href=", page)
    _, css, version = leaflet_assets()
    assert f'version="{version}"' in page  # Leaflet itself is inside the file
    assert "images/layers.png" not in page and "data:image/png;base64," in css
    assert "sourceMappingURL" not in page


def test_layers_legend_and_sensitive_note(small_map):
    _, page = small_map
    for key in ("fixes", "flagged", "clusters", "crossings", "hotspots", "corridors", "home_ranges", "borders",
                "movement", "base", "terrain", "satellite"):
        assert json.dumps(LAYER_NAMES[key], ensure_ascii=False) in page, key
    assert '"Track A1"' in page and '"Track A2"' in page
    assert f"<title>Test map — {SENSITIVE_NOTE}</title>" in page
    assert SENSITIVE_NOTE in page.split("TelemetryMap.legend(", 1)[1].split(");", 1)[0]
    # popup fields of the crossing: animal, from → to, time bracket, confidence
    assert '"KAZ → KGZ"' in page and '"2022-05-08 10:00 – 2022-05-08 14:00"' in page and '"0.87"' in page
    # fixes/clusters/flagged are hidden at start (no ".addTo" for them), crossings are shown
    names = dict(re.findall(r'var (telemetry_layer_\d+) = TelemetryMap\.layer\("(\w+)"', page))
    assert set(names.values()) >= {"geo", "points", "fixes", "movement"}
    added = set(re.findall(r"(telemetry_layer_\d+)\.addTo\(", page))
    fixes_var = next(v for v, b in names.items() if b == "fixes")
    assert fixes_var not in added and len(added) >= 6


def test_flagged_fixes_and_time_series(small_map):
    _, page = small_map
    flagged = re.search(r'TelemetryMap\.layer\("points", (\{"lon".*?"Flag".*?\})\, (?:true|false)\);', page)
    assert flagged, "flagged fixes layer"
    spec = json.loads(flagged.group(1))
    assert len(spec["lon"]) == 2  # the no_fix row without coordinates is not drawn
    series = json.loads(re.search(r"TelemetryMap\.setTracks\((\{.*?\})\);", page).group(1))
    a1 = series["animals"][0]
    assert [a["id"] for a in series["animals"]] == ["A1", "A2"]
    # delta decoding gives back the usable fixes of A1 (3 rows flagged) at 1e-5 degree
    tracks = _tracks()
    ok = tracks[(tracks.animal_id == "A1") & tracks.flag.isna()]
    lat = np.cumsum(a1["y"]) / series["scale"]
    np.testing.assert_allclose(lat, ok["lat"].to_numpy(), atol=1e-5)
    minutes = np.cumsum(a1["t"])
    expected = (ok["time"] - ok["time"].iloc[0]) / pd.Timedelta(minutes=1)
    np.testing.assert_array_equal(minutes, expected.to_numpy())


def test_deterministic_bytes(tmp_path):
    tracks = _tracks()
    prods = _products(tracks)
    a = render_map(tracks, **prods, out=tmp_path / "a.html")
    b = render_map(tracks, **prods, out=tmp_path / "b.html")
    assert a.read_bytes() == b.read_bytes()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # atomic: no temp left


def test_tracks_only_and_bad_input(tmp_path):
    tracks = _tracks()[["animal_id", "time", "lon", "lat"]]
    page = render_map(tracks, out=tmp_path / "t.html", animation=False).read_text(encoding="utf-8")
    assert '"Track A1"' in page and LAYER_NAMES["movement"] not in page and LAYER_NAMES["crossings"] not in page
    with pytest.raises(TelemetryError, match="no usable fixes"):
        render_map(tracks.iloc[:0], out=tmp_path / "e.html")
    with pytest.raises(TelemetryError, match="'lat'"):
        render_map(tracks.drop(columns="lat"), out=tmp_path / "e.html")


def test_an_animal_of_one_fix_between_others_keeps_their_tracks(tmp_path):
    """Animals A1, B (one fix: no line) and C: the track lines are one per animal with a line, each
    its own (an animal without a line between two others crashed the map: "Index 1 is missing")."""
    tracks = _tracks()[["animal_id", "time", "lon", "lat"]]
    one = tracks.iloc[:1].assign(animal_id="B")
    other = tracks[tracks["animal_id"] == "A2"].assign(animal_id="C")
    df = pd.concat([tracks[tracks["animal_id"] == "A1"], one, other], ignore_index=True)
    page = render_map(df, out=tmp_path / "m.html", animation=False).read_text(encoding="utf-8")
    assert '"Track A1"' in page and '"Track C"' in page and '"Track B"' not in page


def test_sample_map_small_and_inlined(tmp_path):
    """The sample's full map (all layers) stays under 5 MB and has no network reference."""
    import telemetry
    from telemetry.corridor.corridors import corridors
    from telemetry.corridor.crossings import crossings
    from telemetry.corridor.hotspots import hotspots
    from telemetry.trajectory.homerange import home_ranges

    # smoothing/HMM change positions by metres, not the amount of data: skipped to keep this fast
    tracks = telemetry.process(ROOT / "sample_tracks", smooth=False, states=False)
    cx = crossings(tracks)
    hs = hotspots(cx)
    path = render_map(tracks, crossings=cx, hotspots=hs, corridors=corridors(tracks, hs),
                      home_ranges=home_ranges(tracks), out=tmp_path / "sample.html")
    page = path.read_text(encoding="utf-8")
    assert path.stat().st_size < MAX_BYTES
    assert _external_refs(page) == []
    assert all(f'"Track SL{i:02d}"' in page for i in range(1, 12))


def _legend_notes(page: str) -> list[str]:
    start = re.search(r"TelemetryMap\.legend\(\w+, ", page).end()
    legend, _ = json.JSONDecoder().raw_decode(page[start:])  # (the banner follows)
    return [html.unescape(t) for t in re.findall(r'class="tm-note"[^>]*>([^<]*)<', legend)]


def _layer_specs(page: str) -> list[tuple[str, dict]]:
    return [(b, json.loads(spec)) for b, spec in
            re.findall(r'TelemetryMap\.layer\("(\w+)", (\{.*?\}), (?:true|false)\);\n', page)]


def test_small_map_is_not_reduced(small_map):
    """Within the default budget nothing is thinned: every fix, the configured 50 m tolerance."""
    _, page = small_map
    assert _legend_notes(page) == ["Tracks simplified to 50 m (Douglas–Peucker)."]
    assert json.dumps(LAYER_NAMES["fixes"], ensure_ascii=False) in page


def _many_animals(n_animals: int = 60, n_fix: int = 1500) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Noisy random walks (hard to simplify) of many animals, hourly, 3 segments each, plus clusters."""
    rng = np.random.default_rng(11)
    n = n_animals * n_fix
    aid = np.repeat([f"M{i:03d}" for i in range(n_animals)], n_fix)
    step = rng.normal(0, 0.004, (n_animals, n_fix)).cumsum(axis=1).ravel()
    lon = 76 + np.repeat(rng.uniform(0, 2, n_animals), n_fix) + step
    lat = 42 + np.repeat(rng.uniform(0, 1, n_animals), n_fix) + rng.normal(0, 0.004, n).reshape(
        n_animals, n_fix).cumsum(axis=1).ravel()
    t = np.tile(pd.date_range("2022-01-01", periods=n_fix, freq="1h", tz="UTC"), n_animals)
    df = pd.DataFrame({"animal_id": aid, "time": t, "lon": lon, "lat": lat,
                       "segment_id": np.tile(np.arange(n_fix) * 3 // n_fix, n_animals)})
    df["flag"] = pd.Series(np.where(rng.random(n) < 0.02, "spike", None), dtype="string")
    clusters = pd.DataFrame({"animal_id": aid[::20], "cluster_id": np.arange(n // 20), "lon": lon[::20],
                             "lat": lat[::20], "duration_h": rng.uniform(1, 100, n // 20), "n_fixes": 5})
    return df, clusters


def test_budget_bounds_many_fixes(tmp_path):
    """90k fixes of 60 animals with a small budget: every layer within it, and the legend says so."""
    tracks, clusters = _many_animals()
    budget = MapBudget(track_vertices=6_000, area_vertices=2_000, fixes=9_000, points=400)
    path = render_map(tracks, clusters=clusters, out=tmp_path / "many.html", budget=budget)
    page = path.read_text(encoding="utf-8")
    specs = _layer_specs(page)
    track_vertices = sum(len(part) for b, s in specs if b == "geo" and s["base"].get("weight") == 2
                         and "opacity" in s["base"] and s["base"].get("opacity") == 0.85
                         for f in s["features"] for part in f["g"]["coordinates"])
    assert 0 < track_vertices <= budget.track_vertices
    assert sum('"Track M' in ln for ln in page.splitlines()) >= 1 and '"Track M059"' in page
    series = json.loads(re.search(r"TelemetryMap\.setTracks\((\{.*?\})\);", page).group(1))
    n_series = sum(len(a["t"]) for a in series["animals"])
    assert 0 < n_series <= budget.fixes and len(series["animals"]) == 60
    points = [s for b, s in specs if b == "points"]
    assert len(points) == 2 and all(0 < len(s["lon"]) <= budget.points for s in points)  # flagged, clusters
    # the longest clusters are the ones kept
    hours = [float(h) for h in next(s for s in points if "colors" in s)["fields"][-1][1]]
    assert min(hours) >= np.sort(clusters["duration_h"].to_numpy())[-budget.points] - 0.05
    notes = _legend_notes(page)
    tol = re.search(r"Douglas–Peucker tolerance (\d+) m \(not 50 m\)", " ".join(notes))
    assert tol and int(tol.group(1)) > 50, notes
    assert any(n.startswith("Time slider and fixes: one fix per animal per ") for n in notes), notes
    assert any(n.startswith("Clusters (longest): 400 of 4,500") for n in notes), notes
    assert re.search(r'"Fixes \(1 per [^"]+\)"', page)
    # bounded: a few hundred kB here whatever the number of fixes
    assert path.stat().st_size < 1_500_000
    # deterministic under thinning too
    again = render_map(tracks, clusters=clusters, out=tmp_path / "again.html", budget=budget)
    assert again.read_bytes() == path.read_bytes()


def test_budget_must_be_positive():
    with pytest.raises(TelemetryError, match="positive"):
        MapBudget(fixes=0)
