"""The sample's map in a real browser: headless Chromium, network disabled.

Chromium is started with an unreachable proxy and a host resolver that resolves nothing, so
any network request fails. The page records its layer-control entries and every script
error (``window.onerror``, unhandled rejections, ``console.error``) in a hidden
``#telemetry-map-status`` element, read back with ``--dump-dom``; Chromium's own console
log (``--enable-logging=stderr``) is checked too. ``#telemetry-selftest`` makes the page switch
every overlay on (building the lazy layers), move the time slider and open a crossing popup;
``#telemetry-selftest-tiles`` also picks the terrain tile layer, whose tiles then fail to load:
that is a network failure, not a script error, so "Failed to load resource" console lines for
``http(s)`` tile URLs are filtered explicitly (:func:`_script_errors`).

Screenshots go to ``tests/report/`` (git-ignored). Skips when Chromium is not installed.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from telemetry.outputs.maps import LAYER_NAMES, render_map

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "tests" / "report"
CHROMIUM = shutil.which("chromium") or (("/usr/bin/chromium") if Path("/usr/bin/chromium").exists() else None)


@pytest.fixture(scope="module")
def sample_map(tmp_path_factory) -> Path:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    import telemetry
    from telemetry.corridor.corridors import corridors
    from telemetry.corridor.crossings import crossings
    from telemetry.corridor.hotspots import hotspots
    from telemetry.trajectory.homerange import home_ranges

    # smoothing/HMM change positions by metres, not what the page must load: skipped for speed
    tracks = telemetry.process(ROOT / "sample_tracks", smooth=False, states=False)
    cx = crossings(tracks)
    hs = hotspots(cx)
    return render_map(tracks, crossings=cx, hotspots=hs, corridors=corridors(tracks, hs),
                      home_ranges=home_ranges(tracks), out=tmp_path_factory.mktemp("browser") / "sample_map.html")


def _chromium(page: Path, profile: Path, fragment: str, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}",
           # no network: an unreachable proxy and a resolver that finds no host
           "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
           "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000", "--window-size=1280,800",
           *extra, page.as_uri() + fragment]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def _status(dom: str) -> dict[str, object]:
    m = re.search(r'<div id="telemetry-map-status"([^>]*)>', dom)
    assert m, "the page did not finish loading (no status element)\n" + dom[-2000:]
    attrs = dict(re.findall(r'data-([\w-]+)="([^"]*)"', m.group(1)))
    return {"layers": json.loads(html.unescape(attrs["layers"])), "errors": json.loads(html.unescape(attrs["errors"])),
            "popup": html.unescape(attrs.get("popup", "")), "zoom": float(attrs["zoom"])}


def _script_errors(stderr: str) -> list[str]:
    """Chromium CONSOLE lines at error level, without failed tile downloads (expected offline)."""
    lines = [ln for ln in stderr.splitlines() if "CONSOLE" in ln]
    bad = []
    for ln in lines:
        if re.search(r'Failed to load resource', ln) and re.search(r'source: https?://', ln):
            continue
        if ":INFO:" in ln and "Uncaught" not in ln and "rror" not in ln:
            continue
        bad.append(ln)
    return bad


@pytest.mark.parametrize("fragment", ["", "#telemetry-selftest", "#telemetry-selftest-tiles"])
def test_sample_map_in_chromium(sample_map: Path, tmp_path: Path, fragment: str) -> None:
    start = time.perf_counter()
    dom = _chromium(sample_map, tmp_path / "profile", fragment, "--dump-dom")
    load_s = time.perf_counter() - start
    assert dom.returncode == 0, dom.stderr[-2000:]
    status = _status(dom.stdout)
    assert status["errors"] == []
    assert _script_errors(dom.stderr) == []
    layers = status["layers"]
    expected = [LAYER_NAMES[k] for k in ("base", "terrain", "satellite", "corridors", "home_ranges", "borders",
                                         "fixes", "flagged", "clusters", "hotspots", "crossings", "movement")]
    expected += [f"Track SL{i:02d}" for i in range(1, 12)]
    assert sorted(layers) == sorted(expected)
    assert 5 <= status["zoom"] <= 11  # fitted to the Tien Shan study area, not the world
    if fragment:
        # the crossing popup: animal, from → to, time bracket, confidence
        assert re.search(r"AnimalSL\d\d.*From → to[A-Z]{3} → [A-Z]{3}.*Between \(UTC\)\d{4}-.*–.*Confidence0\.\d",
                         status["popup"]), status["popup"]
    REPORT.mkdir(parents=True, exist_ok=True)
    name = "map_" + (fragment.lstrip("#").replace("telemetry-", "") or "default") + ".png"
    shot = _chromium(sample_map, tmp_path / "profile2", fragment, f"--screenshot={REPORT / name}")
    assert shot.returncode == 0 and (REPORT / name).stat().st_size > 20_000
    assert _script_errors(shot.stderr) == []
    print(f"\n{name}: {sample_map.stat().st_size / 1e6:.2f} MB, loaded in {load_s:.1f} s → {REPORT / name}")


def test_a_script_error_is_caught(sample_map: Path, tmp_path: Path) -> None:
    """Negative control: the same page with a broken script must report the error."""
    broken = tmp_path / "broken.html"
    broken.write_text(sample_map.read_text(encoding="utf-8").replace(
        "</body>", "<script>undefinedFunctionOfTheTest();</script></body>"), encoding="utf-8")
    run = _chromium(broken, tmp_path / "profile", "", "--dump-dom")
    status = _status(run.stdout)
    assert any("undefinedFunctionOfTheTest" in e for e in status["errors"])
    assert any("undefinedFunctionOfTheTest" in ln for ln in _script_errors(run.stderr))
