"""Real studies through the whole job (`telemetry run --species auto`), issue 13.

Each subset (tests/data/real, with PROVENANCE) goes through `run`; the countries each animal visits, in
order, must equal an independent reference computed here from the fixes (smoothed positions and their
``se_m`` where the smoother gave them): point in polygon on the
bundled countries in a UTM projection (not the tool's tangent-plane depths), counting a fix for a country
only when it lies deeper than the documented uncertainty band of the border (2 × √(σ² + 500²) m: the
1:10m line is good to a few hundred metres), runs of one fix ignored. No country the animal never
reached may appear.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely

from telemetry.corridor.borders import load_countries
from telemetry.pipeline import run

from .conftest import DATA

REAL = DATA / "real"
ACCURACY_M = 500.0  # stated 1-σ accuracy of the bundled Natural Earth 1:10m borders
CASES = {
    "bats_border_nights.csv.gz": {"Bat6_3D6001852B98E": ["PRT", "ESP", "PRT"]},
    "buffalo_toni_border.csv.gz": {"Toni": ["ZAF"]},  # 1.5 days up to 1.3 km into Mozambique: an excursion
    "gull_80149_gps.csv.gz": {"80149": ["USA", "CAN", "USA", "CAN"]},
}


def reference_paths(tracks: pd.DataFrame) -> dict[str, list[str]]:
    ok = tracks["flag"].isna() & tracks["lon"].notna()
    t = tracks[ok].sort_values(["animal_id", "time"])
    # the smoothed position where there is one (the best estimate of where the animal was), with its se_m
    lon = t["lon_s"].fillna(t["lon"]).to_numpy() if "lon_s" in t else t["lon"].to_numpy()
    lat = t["lat_s"].fillna(t["lat"]).to_numpy() if "lat_s" in t else t["lat"].to_numpy()
    zone = int((np.median(lon) + 180) // 6) + 1
    utm = pyproj.CRS.from_dict({"proj": "utm", "zone": zone, "south": bool(np.median(lat) < 0)})
    fwd = pyproj.Transformer.from_crs(4326, utm, always_xy=True)
    c = load_countries()
    box = shapely.box(lon.min() - 2, lat.min() - 2, lon.max() + 2, lat.max() + 2)
    near = c[c.intersects(box)]
    polys = [shapely.transform(shapely.intersection(g, box), lambda xy: np.column_stack(fwd.transform(xy[:, 0], xy[:, 1])))
             for g in near.geometry]
    x, y = fwd.transform(lon, lat)
    pts = shapely.points(x, y)
    sigma = t["se_m"].fillna(30.0).to_numpy() if "se_m" in t else np.full(len(t), 30.0)
    band = 2.0 * np.sqrt(sigma**2 + ACCURACY_M**2)
    country = np.full(len(t), None, dtype=object)
    for iso, poly in zip(near["iso_a3"], polys):
        inside = shapely.contains(poly, pts)
        deep = inside & (shapely.distance(pts, poly.boundary) > band)
        country[deep] = iso
    out: dict[str, list[str]] = {}
    for animal, g in pd.DataFrame({"a": t["animal_id"].astype(str).to_numpy(), "c": country}).groupby("a"):
        runs: list[list] = []
        for v in g["c"]:
            if v is None:
                continue  # sea or within the band: says nothing
            if runs and runs[-1][0] == v:
                runs[-1][1] += 1
            else:
                runs.append([v, 1])
        path: list[str] = []
        for v, n in runs:
            if n >= 2 and (not path or path[-1] != v):
                path.append(v)
        out[animal] = path
    return out


def tool_paths(crossings: pd.DataFrame, animals: list[str], start: dict[str, list[str]]) -> dict[str, list[str]]:
    c = crossings[crossings["kind"] == "crossing"].sort_values(["animal_id", "time"])
    out = {}
    for a in animals:
        g = c[c["animal_id"].astype(str) == a]
        out[a] = [g["from_iso"].iloc[0], *g["to_iso"]] if len(g) else start[a][:1]
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_real_study_countries_in_order(tmp_path, name):
    result = run([REAL / name], tmp_path / "out", species="auto")
    ref = reference_paths(result.tracks)
    got = tool_paths(result.products.crossings, list(ref), ref)
    for animal, expect in CASES[name].items():
        assert ref[animal] == expect  # the independent reference itself (guards the fixture)
    assert got == ref
    # no phantom country: every country of every event holds at least one raw fix of that animal
    c = load_countries()
    tracks = result.tracks
    for _, ev in result.products.crossings.iterrows():
        fx = tracks[(tracks["animal_id"].astype(str) == str(ev["animal_id"])) & tracks["lon"].notna()]
        pts = shapely.points(fx["lon"].to_numpy(), fx["lat"].to_numpy())
        for iso in (ev["from_iso"], ev["to_iso"]):
            poly = c.geometry[c["iso_a3"] == iso].iloc[0]
            assert shapely.contains(poly, pts).any(), (name, ev["animal_id"], iso)
    if name.startswith("buffalo"):
        ev = result.products.crossings
        assert list(zip(ev["kind"], ev["from_iso"], ev["to_iso"])) == [("excursion", "ZAF", "MOZ")]
    assert (tmp_path / "out" / "manifest.json").is_file()
    # real studies are well within the footprint cell's cost budget: the cell is the bridges' own
    assert result.products.corridors.attrs["footprint_cell_source"] in ("bridges", "min_cell_m")


def test_argos_fixes_get_argos_error_classes(tmp_path):
    """The gulls' Argos file: every fix an Argos fix, the error model per location class (never GPS UERE)."""
    result = run([DATA / "movebank" / "gulls_argos_subset.csv"], tmp_path / "out", species="auto")
    t = result.tracks
    assert (t["fix_type"] == "argos").all()
    classes = {k for k in t.attrs["error_model"] if k != "note"}
    assert classes and all(k.startswith("argos ") for k in classes)
    em = t.attrs["error_model"]
    assert em["argos 1"]["uere_m"] < em["argos 0"]["uere_m"]  # class 1 is the better one
    assert (t.loc[t["lat"] < -10, "flag"].notna()).all()  # the gross outlier in Bolivia is flagged
