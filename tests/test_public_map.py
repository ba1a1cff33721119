"""public.html: only the public layers reach the page, it works offline with no script error.

The page is built from the sample run's public layers (tests/test_run's sample tracks are
processed without smoothing/HMM here for speed: the public layers depend on the positions only
through the grid cells). Privacy is checked on the page itself, not on the code that made it:

* every coordinate of a data layer (role ``public``) is a corner or centre of the
  generalisation grid, and no coordinate anywhere in the page that is not on the lattice lies
  within half a cell of a raw fix unless it is public geography (countries, borders: role
  ``geography``, the bundled Natural Earth vertices);
* no date finer than a month appears in the page;
* in headless Chromium with the network disabled the page loads, lists its layers and reports
  no script error (screenshot in tests/report/).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial import cKDTree

from telemetry.outputs.generalise import on_lattice
from telemetry.outputs.layers import export_metadata, public_layers
from telemetry.outputs.maps import LAYER_NAMES, PUBLIC_NOTE, render_public_map

from .test_map_browser import CHROMIUM, REPORT, _chromium, _script_errors, _status

ROOT = Path(__file__).resolve().parent.parent
GRID = 0.1
ALL = {"min_animals": 1, "min_confidence": 0.0}  # no disclosure control: every item, for the geometry checks


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    import telemetry
    from telemetry.corridor.corridors import corridors
    from telemetry.corridor.crossings import crossings
    from telemetry.corridor.hotspots import hotspots
    from telemetry.trajectory.homerange import home_ranges

    tracks = telemetry.process(ROOT / "sample_tracks", smooth=False, states=False)
    cx = crossings(tracks)
    hs = hotspots(cx)
    pub = public_layers(cx, hs, corridors(tracks, hs), home_ranges(tracks), grid_deg=GRID, **ALL)
    meta = export_metadata(audience="public", grid_deg=GRID, tracks=tracks, layers=pub)
    page = render_public_map(pub, meta, out=tmp_path_factory.mktemp("public") / "public.html")
    return tracks, pub, page


def _layer_specs(text: str) -> list[dict]:
    """The JSON spec of every TelemetryMap.layer(...) in the page."""
    specs = []
    for m in re.finditer(r'TelemetryMap\.layer\("(\w+)", ', text):
        start = m.end()
        spec, _ = json.JSONDecoder().raw_decode(text[start:])
        specs.append(spec)
    return specs


def _coords(obj) -> list[tuple[float, float]]:
    out = []
    if isinstance(obj, list) and len(obj) == 2 and all(isinstance(v, (int, float)) for v in obj):
        return [(float(obj[0]), float(obj[1]))]
    if isinstance(obj, list):
        for x in obj:
            out += _coords(x)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if k in ("coordinates", "features", "geometry") or isinstance(v, (list, dict)):
                out += _coords(v)
    return out


def test_public_page_holds_only_lattice_coordinates_and_months(sample) -> None:
    tracks, pub, page = sample
    text = page.read_text(encoding="utf-8")
    specs = _layer_specs(text)
    roles = [s.get("role") for s in specs]
    assert roles.count("public") >= 3 and set(roles) <= {"public", "geography"}, roles
    data = [c for s in specs if s.get("role") == "public" for c in _coords(s["features"])]
    assert len(data) > 100
    assert on_lattice(np.array(data), GRID).all()
    # any coordinate pair in the page off the lattice and near a raw fix must be public geography
    fixes = tracks[["lon", "lat"]].dropna().to_numpy(dtype=float)
    tree = cKDTree(fixes)
    geography = {c for s in specs if s.get("role") == "geography" for c in _coords(s["features"])}
    pairs = [(float(a), float(b)) for a, b in re.findall(r"\[(-?\d+\.\d+), ?(-?\d+\.\d+)\]", text)]
    off = np.array([p for p in pairs if p not in geography and not on_lattice(np.array([p]), GRID)[0]] or
                   np.zeros((0, 2)))
    if len(off):
        d, _ = tree.query(off)
        assert (d > GRID / 2).all(), off[d <= GRID / 2][:5]
    # no day, hour or minute of anything: months at most
    assert not re.search(r"\b20\d\d-\d\d-\d\d", text)
    assert PUBLIC_NOTE in text and "SENSITIVE" not in text.upper().replace("SENSITIVE SPECIES", "")
    # the negative control: the internal map of the same tracks does hold raw fixes
    assert not on_lattice(fixes[:100], GRID).all()


def test_public_page_says_what_was_generalised_and_that_the_sample_is_synthetic(sample) -> None:
    _, _, page = sample
    text = page.read_text(encoding="utf-8")
    assert "0.1° grid cells and calendar months" in text
    assert "SYNTHETIC DATA" in text
    assert "Crossings per border and year" in text


@pytest.mark.browser
def test_public_page_in_chromium_offline(sample, tmp_path: Path) -> None:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    _, _, page = sample
    for fragment in ("", "#telemetry-selftest"):
        dom = _chromium(page, tmp_path / f"profile{len(fragment)}", fragment, "--dump-dom")
        assert dom.returncode == 0, dom.stderr[-2000:]
        status = _status(dom.stdout)
        assert status["errors"] == []
        assert _script_errors(dom.stderr) == []
        assert sorted(status["layers"]) == sorted(LAYER_NAMES[k] for k in ("base", "corridors", "home_ranges",
                                                                             "hotspots", "borders"))
        assert 5 <= status["zoom"] <= 11
    REPORT.mkdir(parents=True, exist_ok=True)
    shot = _chromium(page, tmp_path / "profile_shot", "", f"--screenshot={REPORT / 'public_map.png'}")
    assert shot.returncode == 0 and (REPORT / "public_map.png").stat().st_size > 20_000


def _events(rows):
    import pandas as pd

    return pd.DataFrame(rows, columns=["animal_id", "from_iso", "to_iso", "time", "kind", "confidence"]).assign(
        time=lambda d: pd.to_datetime(d["time"], utc=True))


def test_counts_of_fewer_than_min_animals_are_merged_or_left_out_and_said() -> None:
    """k-animal disclosure control on crossing counts: a month with 1-2 animals is merged to the year
    (both directions); a year still below k is left out; a low-confidence crossing is not counted; the
    layer says how many events went where, and every event is accounted for."""
    rows = [(a, "KAZ", "KGZ", f"2022-0{m}-10", "crossing", 0.9) for a, m in (("a", 1), ("b", 2), ("c", 3), ("d", 3))]
    rows += [(a, "KGZ", "KAZ", "2022-05-01", "crossing", 0.9) for a in ("a", "b", "c")]  # 3 animals: kept as is
    rows += [("z", "CHN", "KAZ", "2021-07-01", "crossing", 0.9)]  # one animal, alone all year: left out
    rows += [("y", "CHN", "KAZ", "2021-08-01", "crossing", 0.01)]  # bracketed by a long gap: not counted
    cx = _events(rows)
    pub = public_layers(crossings=cx, grid_deg=GRID, min_animals=3, min_confidence=0.5)
    counts = pub["crossing_counts"]
    assert (counts["n_animals"] >= 3).all()
    got = {(r.border, r.month, r.from_iso, r.to_iso): (r.n_events, r.n_animals) for r in counts.itertuples()}
    assert got == {("KAZ–KGZ", "2022", "both", "both"): (4, 4), ("KAZ–KGZ", "2022-05", "KGZ", "KAZ"): (3, 3)}
    info = counts.attrs["disclosure"]
    assert info["below_confidence"] == 1 and info["left_out_events"] == 1 and info["merged_rows"] == 4
    assert int(counts["n_events"].sum()) + info["left_out_events"] + info["below_confidence"] == len(cx)
    meta = export_metadata(audience="public", grid_deg=GRID, layers=pub)
    assert meta["generalisation"]["disclosure_control"]["crossing_counts"]["min_animals"] == 3


def test_corridors_hotspots_and_ranges_need_min_animals() -> None:
    """Corridors and hotspots of fewer than k animals are left out; home ranges are published only as
    the cells where at least k animals' ranges overlap (4 squares: 3 overlapping, 1 apart)."""
    import geopandas as gpd
    import shapely

    boxes = [shapely.box(77.0, 43.0, 77.5, 43.5), shapely.box(77.2, 43.2, 77.7, 43.7),
             shapely.box(77.3, 43.1, 77.6, 43.6), shapely.box(80.0, 45.0, 80.3, 45.3)]
    hr = gpd.GeoDataFrame({"animal_id": list("abcd"), "method": "kde", "level_pct": 95.0, "n_fixes": 100,
                           "area_km2": 1.0}, geometry=boxes, crs=4326)
    co = gpd.GeoDataFrame({"corridor_id": [1, 2], "method": "footprint", "n_animals": [1.0, 3.0],
                           "animal_count": [1, 3], "area_km2": 5.0}, geometry=boxes[:2], crs=4326)
    pub = public_layers(corridors=co, home_ranges=hr, grid_deg=GRID, min_animals=3)
    assert pub["corridors"]["corridor_id"].tolist() == [2] and pub["corridors"].attrs["disclosure"]["left_out"] == 1
    ranges = pub["home_ranges"]
    assert ranges["n_animals"].tolist() == [3] and "animal_id" not in ranges.columns
    shared = ranges.geometry.iloc[0]
    # the 3-animal overlap is 77.3-77.5 × 43.2-43.5: its cells, nothing of the lone range
    assert shared.covers(shapely.box(77.3, 43.2, 77.5, 43.5)) and not shared.intersects(boxes[3])
    assert on_lattice(shapely.get_coordinates(shared), GRID).all()
    every = public_layers(home_ranges=hr, grid_deg=GRID, min_animals=1)["home_ranges"]
    assert sorted(every["animal_id"]) == list("abcd")


def test_embargo_ends_the_public_files_months_before_the_last_fix(tmp_path: Path) -> None:
    """`run --set public.embargo_months=12`: public.geojson is made from the fixes up to 12 months
    before the last one (no later month anywhere in it), the internal files keep everything."""
    import pandas as pd

    from telemetry.pipeline import run

    result = run(None, tmp_path / "out", overrides=["public.embargo_months=12", "public.min_animals=1",
                                                    "corridors.methods=footprint"])
    last = pd.Timestamp(result.tracks["time"].max())
    cut = (last - pd.DateOffset(months=12)).strftime("%Y-%m")
    doc = json.loads((tmp_path / "out" / "public.geojson").read_text())
    months = [f["properties"][k] for f in doc["features"] for k in ("month", "first_month", "last_month")
              if f["properties"].get(k)]
    assert months and max(m[:7] for m in months) <= cut
    assert doc["telemetry"]["generalisation"]["embargo_months"] == 12
    assert max(re.findall(r"\b(20\d\d-\d\d)\b", json.dumps(doc["telemetry"]))) <= cut
    internal = result.products.crossings
    assert pd.Timestamp(internal["time"].max()).strftime("%Y-%m") > cut  # the team still sees the latest


def test_border_brief_of_the_sample(tmp_path: Path) -> None:
    """brief.html: one section per border crossed, whose sentences and tables agree with the certain
    crossings; no script but the language switch, no date finer than a month, no position finer than the grid (only cell
    centres at 2 decimals); maps inlined."""
    import pandas as pd

    import telemetry
    from telemetry.corridor.crossings import crossings, time_in_zones
    from telemetry.corridor.hotspots import hotspots
    from telemetry.outputs.brief import write_brief

    tracks = telemetry.process(ROOT / "sample_tracks", smooth=False, states=False)
    cx = crossings(tracks)
    hs = hotspots(cx)
    pub = public_layers(cx, hs, grid_deg=GRID, min_animals=1)
    meta = export_metadata(audience="public", grid_deg=GRID, tracks=tracks, layers=pub)
    page = write_brief(tmp_path / "brief.html", cx, pub, meta, tracks=tracks, time_on_sides=time_in_zones(tracks))[0]
    text = page.read_text(encoding="utf-8")
    sure = cx[(cx["kind"] == "crossing") & (cx["confidence"] >= 0.5)]
    pairs = sorted({"–".join(sorted((a, b))) for a, b in zip(sure["from_iso"], sure["to_iso"])})
    assert re.findall(r"<h2[^>]*>[^<]*\((\w{3}–\w{3})\)</h2>", text) == pairs
    for pair in pairs:
        a, b = pair.split("–")
        sub = sure[sure["from_iso"].isin([a, b]) & sure["to_iso"].isin([a, b])]
        assert f"{sub['animal_id'].nunique()} of the {tracks['animal_id'].nunique()} collared animals" in text
        assert f"{len(sub)} crossings from" in text
    assert text.count("<script") == 1 and "<script src" not in text  # only the inline language switch
    assert not re.search(r"\b20\d\d-\d\d-\d\d", text)
    body = re.sub(r'src="data:image/png;base64,[^"]+"', "", text)
    assert not re.search(r"\d+\.\d{3,}°", body)  # cell centres at 2 decimals, nothing finer
    assert text.count("data:image/png;base64,") == len(pairs)
    assert "SYNTHETIC DATA" in text
    assert not (pd.Series(re.findall(r"(\d+) % of the crossings", text)).astype(int) > 100).any()
