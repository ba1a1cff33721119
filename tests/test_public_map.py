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
    pub = public_layers(cx, hs, corridors(tracks, hs), home_ranges(tracks), grid_deg=GRID)
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
