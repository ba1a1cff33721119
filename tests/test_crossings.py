"""Border crossings: constructed case with exact answers, depth vs pyproj.Geod, sample ground truth,
real data smoke test, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Geod
from scipy.special import ndtr

from telemetry.corridor.crossings import crossings, fix_sides, time_in_zones

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_tracks"
TRUTH = SAMPLE / "truth" / "crossings.csv"
REAL = Path("/work/shared/data/real")
GEOD = Geod(ellps="WGS84")
H = pd.Timedelta(hours=1)
T0 = pd.Timestamp("2022-01-01", tz="UTC")

# A | B share lon = 1; sea (2..3) separates B from C
ZONES = gpd.GeoDataFrame({"z": ["A", "B", "C"]},
                         geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1), shapely.box(3, 0, 4, 1)],
                         crs=4326)
# animal a: A, noisy fixes at the line (3 line crossings inside the band), B, a one-fix excursion to A,
# B, sea, C, sea, C.   animal b: A then one fix in B at the end of its data (truncated stay).
LON_A = [0.5, 0.6, 0.9, 0.9995, 1.0008, 0.9993, 1.1, 1.2, 1.3, 0.95, 1.2, 1.5, 2.5, 3.5, 3.6, 2.5, 3.5, 3.6]
LON_B = [0.5, 0.6, 1.4]


def _fixes() -> pd.DataFrame:
    n_a, n_b = len(LON_A), len(LON_B)
    df = pd.DataFrame({
        "animal_id": pd.Categorical(["a"] * n_a + ["b"] * n_b),
        "time": pd.DatetimeIndex([T0 + i * H for i in range(n_a)] + [T0 + i * H for i in range(n_b)]),
        "lon": LON_A + LON_B, "lat": 0.5, "hdop": 1.0, "fix_type": "3D",  # σ = 10 m
    })
    df["flag"] = pd.Series(pd.NA, index=df.index, dtype="object")
    return df.sample(frac=1.0, random_state=1)  # input order must not matter


def test_constructed_case_exact() -> None:
    c = crossings(_fixes(), zones=ZONES, zone_field="z", outside_is_place=False)
    got = c[["animal_id", "kind", "from_zone", "to_zone"]].values.tolist()
    assert got == [["a", "crossing", "A", "B"], ["a", "excursion", "B", "A"], ["a", "crossing", "B", "C"],
                   ["b", "crossing", "A", "B"]]
    ab, exc, bc, b = (c.iloc[i] for i in range(4))

    # A → B: bracket = last certain A fix (#2) and first certain B fix (#6); 3 noisy line crossings
    assert ab.t_before == T0 + 2 * H and ab.t_after == T0 + 6 * H and ab.gap_h == pytest.approx(4.0)
    assert ab.n_points == 3 and ab.on_border and not ab.via_sea and ab.n_fixes == 3
    pts = shapely.get_coordinates(ab.geometry)
    np.testing.assert_allclose(pts, [[1.0, 0.5]] * 3, atol=1e-12)
    # median crossing: step #4 → #5 (1.0008 → 0.9993) at fraction 0.0008 / 0.0015
    expect = T0 + 4 * H + pd.Timedelta(hours=0.0008 / 0.0015)
    assert abs((ab.time - expect).total_seconds()) < 1e-3
    assert (ab.lon, ab.lat) == pytest.approx((1.0, 0.5))
    # confidence formula (module docstring): both bracket fixes deeper than the band → Φ(6) each
    s = np.hypot(10.0, 100.0)
    assert ab.confidence == pytest.approx(ndtr(3 * 2 * s / s) ** 2 * 48 / (48 + 4.0), rel=1e-9)

    # excursion B → A → B: one certain fix in A (#9), bracketed by #8 and #10; time = where it left B
    assert exc.t_before == T0 + 8 * H and exc.t_after == T0 + 10 * H and exc.n_fixes == 1
    assert abs((exc.time - (T0 + 8 * H + pd.Timedelta(hours=0.3 / 0.35))).total_seconds()) < 1e-3

    # B → sea → C: a crossing via sea, no shared line → both outlines (exit of B at 2, entry of C at 3)
    assert bc.via_sea and not bc.on_border and bc.t_before == T0 + 11 * H and bc.t_after == T0 + 13 * H
    np.testing.assert_allclose(shapely.get_coordinates(bc.geometry), [[2.0, 0.5], [3.0, 0.5]], atol=1e-12)
    # C → sea → C (#13..#17) is not a crossing (checked by the list above)

    # b: the arrival stay is one fix at the end of the data → crossing, truncated, confidence halved
    assert b.truncated and b.confidence == pytest.approx(ndtr(6.0) ** 2 * 48 / 49 * 0.5, rel=1e-9)
    assert ((c.confidence >= 0) & (c.confidence <= 1)).all()


def test_min_stay_and_options() -> None:
    fx = _fixes()
    # a stay needs 1 fix → the excursion becomes two crossings B → A → B
    c = crossings(fx, zones=ZONES, zone_field="z", outside_is_place=False, min_stay_fixes=1)
    assert c[c.animal_id == "a"][["kind", "from_zone", "to_zone"]].values.tolist() == [
        ["crossing", "A", "B"], ["crossing", "B", "A"], ["crossing", "A", "B"], ["crossing", "B", "C"]]
    # a stay must last 1.5 h: A #0-#2 and B #6-#8 (2 h) are stays; C's runs (1 h each) and b's A run
    # (1 h) are not, and without open_end b's final one-fix B run is not either
    c = crossings(fx, zones=ZONES, zone_field="z", outside_is_place=False, min_stay_h=1.5,
                  excursions=False, open_end=False)
    assert c[["animal_id", "kind", "from_zone", "to_zone"]].values.tolist() == [["a", "crossing", "A", "B"]]
    assert c.iloc[0].t_before == T0 + 2 * H and c.iloc[0].t_after == T0 + 6 * H
    with pytest.raises(TypeError, match="unknown parameter"):
        crossings(fx, zones=ZONES, zone_field="z", min_stay=2)


def test_flagged_rows_and_smoothed_positions_are_used() -> None:
    fx = _fixes().sort_index()
    # flag the one-fix excursion: it disappears
    fx.loc[9, "flag"] = "spike"
    c = crossings(fx, zones=ZONES, zone_field="z", outside_is_place=False)
    assert "excursion" not in set(c.kind)
    # smoothed positions win when present; raw ones with smoothed=False
    fx = _fixes().sort_index()
    fx["lon_s"] = np.where(fx.animal_id == "b", 0.5, fx.lon)  # b never leaves A once smoothed
    fx["lat_s"] = fx.lat
    fx["se_m"] = 5.0
    assert set(crossings(fx, zones=ZONES, zone_field="z", outside_is_place=False).animal_id) == {"a"}
    assert set(crossings(fx, zones=ZONES, zone_field="z", outside_is_place=False, smoothed=False).animal_id) == {"a", "b"}


def test_sides_band_from_fix_error() -> None:
    fx = _fixes().sort_index()
    s = fix_sides(fx, zones=ZONES, zone_field="z")
    assert s.loc[3, "zone"] == "A" and not s.loc[3, "certain"]  # 55 m from the line, band 201 m
    assert s.loc[12, "zone"] == "outside" and s.loc[12, "certain"]
    assert s.loc[3, "band_m"] == pytest.approx(2 * np.hypot(10, 100))
    # a poor 2D fix (σ = 30 m × HDOP 20 = 600 m) is uncertain 1 km from the line
    fx.loc[2, ["lon", "fix_type", "hdop"]] = [0.991, "2D", 20.0]
    s = fix_sides(fx, zones=ZONES, zone_field="z")
    assert s.loc[2, "depth_m"] == pytest.approx(GEOD.inv(0.991, 0.5, 1.0, 0.5)[2], rel=1e-3)
    assert not s.loc[2, "certain"]


def test_depth_matches_geodesic_distance() -> None:
    # an oblique border at 60° N (where degrees of lon and lat differ most) in a user layer
    a = shapely.Polygon([(0, 59), (1, 59), (1.3, 61), (0, 61)])
    b = shapely.Polygon([(1, 59), (2, 59), (2, 61), (1.3, 61)])
    z = gpd.GeoDataFrame({"z": ["A", "B"]}, geometry=[a, b], crs=4326)
    rng = np.random.default_rng(3)
    u = rng.uniform(0.2, 0.8, 200)
    lon = 1 + 0.3 * u + rng.uniform(-0.05, 0.05, 200)
    lat = 59 + 2 * u
    fx = pd.DataFrame({"animal_id": "x", "time": T0 + np.arange(200) * H, "lon": lon, "lat": lat,
                       "hdop": 1.0, "fix_type": "3D"})
    s = fix_sides(fx, zones=z, zone_field="z", border_error_m=5000.0).sort_index()
    # reference: geodesic distance to the border line as drawn (straight in lon/lat), densely sampled
    def ref_dist(x: float, y: float) -> float:
        f = np.linspace(0, 1, 20001)  # coarse (11 m steps), then 1 cm steps around the nearest sample
        i = np.argmin(GEOD.inv(np.full_like(f, x), np.full_like(f, y), 1 + 0.3 * f, 59 + 2 * f)[2])
        f = np.linspace(f[max(i - 1, 0)], f[min(i + 1, len(f) - 1)], 2001)
        return GEOD.inv(np.full_like(f, x), np.full_like(f, y), 1 + 0.3 * f, 59 + 2 * f)[2].min()

    ref = np.array([ref_dist(x, y) for x, y in zip(lon, lat)])
    got = s["depth_m"].to_numpy()
    assert np.isfinite(got).all()
    err = np.abs(got - ref)
    assert np.all(err <= 0.001 * ref + 0.05), (err / ref).max()
    side = np.where(lon > 1 + 0.3 * (lat - 59) / 2, "B", "A")
    assert (s["zone"].to_numpy() == side).all()


def test_time_in_zones_half_steps() -> None:
    fx = _fixes()
    t = time_in_zones(fx, zones=ZONES, zone_field="z")
    lab = np.select([np.array(LON_A) < 1, np.array(LON_A) < 2, np.array(LON_A) < 3], ["A", "B", "outside"], "C")
    hours = np.full(len(LON_A), 1.0)
    hours[[0, -1]] = 0.5
    expect = pd.Series(hours / 24).groupby(lab).sum()
    got = t[t.animal_id == "a"].set_index("zone")
    for zone, days in expect.items():
        assert got.loc[zone, "days"] == pytest.approx(days)
    assert got.loc["A", "fixes"] == 6 and got["share"].sum() == pytest.approx(1.0)
    # a segment break stops time being counted across the gap
    fx = fx.sort_index()
    fx["segment_id"] = np.where(fx.index < 12, 1, 2)
    t2 = time_in_zones(fx, zones=ZONES, zone_field="z")
    assert t2[t2.animal_id == "a"].days.sum() == pytest.approx(t[t.animal_id == "a"].days.sum() - 1 / 24)


def _match(det: pd.DataFrame, truth: pd.DataFrame) -> list[tuple[int, int]]:
    """One-to-one: same animal and direction, true time inside [t_before, t_after], nearest in time."""
    used: set[int] = set()
    pairs = []
    for i, r in det.iterrows():
        m = truth[(truth.animal_id == r.animal_id) & (truth.from_iso == r.from_iso) & (truth.to_iso == r.to_iso)
                  & (truth.time >= r.t_before) & (truth.time <= r.t_after) & ~truth.index.isin(used)]
        if len(m):
            j = (m.time - r.time).abs().idxmin()
            used.add(j)
            pairs.append((i, j))
    return pairs


@pytest.fixture(scope="module")
def sample_tracks():
    if not TRUTH.exists():
        pytest.skip("sample_tracks/truth/crossings.csv missing")
    import telemetry

    fixes = telemetry.read(str(SAMPLE))
    try:
        from telemetry.pipeline import process
    except ImportError:
        return fixes, fixes
    return fixes, process(fixes)


@pytest.mark.parametrize("which", ["processed", "raw"])
def test_sample_against_truth(sample_tracks, which) -> None:
    fixes, tracks = sample_tracks
    data = tracks if which == "processed" else fixes
    truth = pd.read_csv(TRUTH)
    truth["time"] = pd.to_datetime(truth["time"], utc=True)
    c = crossings(data)
    det = c[c.kind == "crossing"].reset_index(drop=True)
    pairs = _match(det, truth)
    precision = len(pairs) / max(len(det), 1)
    recall = len(pairs) / len(truth)
    i, j = np.array(pairs).T
    _, _, d = GEOD.inv(det.lon.to_numpy()[i], det.lat.to_numpy()[i], truth.lon.to_numpy()[j], truth.lat.to_numpy()[j])
    dt_min = np.abs((det.time.to_numpy()[i] - truth.time.to_numpy()[j]) / np.timedelta64(1, "m"))
    print(f"\n[{which}] detected {len(det)} crossings, {int((c.kind == 'excursion').sum())} excursions; "
          f"true {len(truth)}; matched {len(pairs)}; precision {precision:.3f} recall {recall:.3f}; "
          f"point error median {np.median(d):.0f} m, p90 {np.percentile(d, 90):.0f} m; "
          f"time error median {np.median(dt_min):.1f} min")
    assert precision >= 0.95 and recall >= 0.95
    assert np.median(d) < 500  # metres: well inside the stated accuracy of the 1:10m line
    h = __import__("telemetry.corridor.hotspots", fromlist=["hotspots"]).hotspots(c)
    assert h.n_crossings.sum() == len(det) and h.attrs["unassigned"] == 0


REAL_SETS = {
    "movebank_free_tailed_bats_portugal": {"PRT", "ESP"},
    "movebank_herring_gulls_argos_gps": {"USA", "CAN"},
    "movebank_kruger_buffalo": {"ZAF", "MOZ"},
}


@pytest.mark.parametrize("name", list(REAL_SETS))
def test_real_data_runs(name) -> None:
    if not (REAL / name).exists():
        pytest.skip("real data not available")
    import telemetry

    fixes = telemetry.read(str(REAL / name))
    c = crossings(fixes)
    counts = c.groupby(["kind", "from_iso", "to_iso", "via_sea"]).size()
    print(f"\n{name}: {len(fixes)} rows → {len(c)} events\n{counts.to_string() if len(c) else '(none)'}")
    t = time_in_zones(fixes)
    assert REAL_SETS[name] & set(t.zone)
    assert ((c.confidence >= 0) & (c.confidence <= 1)).all()
    assert (c.t_before <= c.time).all() and (c.time <= c.t_after).all()
    # finer border accuracy (a precise national line) → at least as many events
    c2 = crossings(fixes, border_error_m=100.0)
    assert len(c2) >= len(c)
    if name == "movebank_free_tailed_bats_portugal":
        assert {("PRT", "ESP"), ("ESP", "PRT")} <= set(zip(c2.from_iso, c2.to_iso))
    if name == "movebank_herring_gulls_argos_gps":
        assert c[(c.kind == "crossing")].via_sea.any()


def test_cli_writes_geojson(tmp_path) -> None:
    from click.testing import CliRunner

    from telemetry.cli.crossings_cmd import crossings as cmd

    src = tmp_path / "fixes.csv"
    fx = _fixes().sort_index()
    fx.assign(time=fx.time.dt.strftime("%Y-%m-%dT%H:%M:%SZ")).drop(columns="flag").to_csv(src, index=False)
    zfile = tmp_path / "zones.geojson"
    ZONES.to_file(zfile, driver="GeoJSON", engine="pyogrio")
    out, hs = tmp_path / "c.geojson", tmp_path / "h.geojson"
    args = [str(src), "--columns", "animal=animal_id,time=time,lon=lon,lat=lat,hdop=hdop,fix_type=fix_type",
            "--zones", str(zfile), "--zone-field", "z", "--raw", "-o", str(out), "--hotspots", str(hs)]
    r = CliRunner().invoke(cmd, args)
    assert r.exit_code == 0, r.output + repr(r.exception)
    doc = json.loads(out.read_text())
    kinds = [(f["properties"]["kind"], f["properties"]["from_zone"], f["properties"]["to_zone"])
             for f in doc["features"]]
    # a user layer: the land outside the zones is a side (C → outside → C is a visit outside)
    assert kinds == [("crossing", "A", "B"), ("excursion", "B", "A"), ("crossing", "B", "C"),
                     ("excursion", "C", "outside"), ("crossing", "A", "B")]
    assert doc["telemetry"]["parameters"]["band_k"] == 2.0
    assert json.loads(hs.read_text())["features"][0]["properties"]["name"] == "A–B #1"
    first = out.read_bytes()
    assert CliRunner().invoke(cmd, args).exit_code == 0
    assert out.read_bytes() == first  # reproducible bytes
    assert not list(tmp_path.glob(".*.tmp"))  # no temp files left
    # --outside-is-sea: the land outside the zones starts and ends nothing, as the sea for countries
    assert CliRunner().invoke(cmd, [*args, "--outside-is-sea"]).exit_code == 0
    doc = json.loads(out.read_text())
    assert [(f["properties"]["kind"], f["properties"]["from_zone"], f["properties"]["to_zone"])
            for f in doc["features"]] == [("crossing", "A", "B"), ("excursion", "B", "A"), ("crossing", "B", "C"),
                                          ("crossing", "A", "B")]


def test_user_zones_entries_and_exits_from_outside() -> None:
    """A park in open land: entering from outside and leaving it are crossings, placed on its outline."""
    from telemetry.corridor.hotspots import hotspots
    from telemetry.outputs.layers import crossing_counts

    park = gpd.GeoDataFrame({"name": ["P", "Q"]}, geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)],
                            crs=4326)
    lon = [-0.5, -0.4, -0.3, 0.3, 0.4, 0.5, 0.6, -0.2, -0.3, -0.4, 0.5, 0.6, 1.5, 1.6, 2.5, 2.6]
    fx = pd.DataFrame({"animal_id": "a", "time": [T0 + i * H for i in range(len(lon))], "lon": lon, "lat": 0.5,
                       "hdop": 1.0, "fix_type": "3D", "flag": pd.Series([pd.NA] * len(lon), dtype="object")})
    c = crossings(fx, zones=park, zone_field="name")
    assert c[["kind", "from_zone", "to_zone"]].values.tolist() == [
        ["crossing", "outside", "P"], ["crossing", "P", "outside"], ["crossing", "outside", "P"],
        ["crossing", "P", "Q"], ["crossing", "Q", "outside"]]
    assert "from_iso" not in c.columns
    # every point on the crossed outline, on the line shared with "outside" or with the other zone
    assert c.on_border.all()
    np.testing.assert_allclose(c.lon, [0.0, 0.0, 0.0, 1.0, 2.0], atol=1e-12)
    assert not c.via_sea.any()
    # time in zones and the crossings tell the same story; hotspots place every crossing
    h = hotspots(c, zones=park, zone_field="name")
    assert h.attrs["unassigned"] == 0 and h["n_crossings"].sum() == len(c)
    assert {("P", "outside"), ("P", "Q"), ("Q", "outside")} == set(zip(h.zone_a, h.zone_b))
    counts = crossing_counts(c)
    assert {"from_zone", "to_zone"} <= set(counts.columns) and counts.n_events.sum() == len(c)
    # the countries keep their ISO columns and the sea stays passive
    assert {"from_iso", "to_iso"} <= set(crossings(fx).columns)


def test_depth_is_found_all_round_the_end_of_a_boundary() -> None:
    """Every point within reach of a boundary gets its distance, in every direction from the
    boundary's end (a buffer with two segments per quarter circle, the old prefilter, cut the
    round cap by up to 7.6 % and left points between its vertices at infinity)."""
    from telemetry.corridor.crossings import _depth_m

    line = np.array([shapely.LineString([(0.0, 0.0), (1.0, 0.0)])], dtype=object)
    az = np.arange(0.0, 181.0, 2.5)  # from north through east (along the line, beyond its end) to south
    for frac in (0.5, 0.93, 0.97, 0.99):
        lon, lat, _ = GEOD.fwd(np.full(az.size, 1.0), np.zeros(az.size), az, np.full(az.size, frac * 1000.0))
        got = _depth_m(lon, lat, np.full(az.size, 1000.0), line)
        np.testing.assert_allclose(got, frac * 1000.0, rtol=2e-3)
    lon, lat, _ = GEOD.fwd(np.full(az.size, 1.0), np.zeros(az.size), az, np.full(az.size, 1100.0))
    got = _depth_m(lon, lat, np.full(az.size, 1000.0), line)
    assert not (got <= 1000.0).any()  # beyond reach: infinite (or, in the degrees' margin, its true distance)


def test_depth_with_a_long_reach_over_many_short_segments_is_the_nearest_segment() -> None:
    """A reach of many segments (an Argos error against a finely drawn border) takes only the
    segments that the nearest one in degrees leaves possible: the depth must still be the
    nearest segment in metres, as a scan of every segment gives it (at 60° N, where a degree
    of longitude is half a degree of latitude, so the nearest in degrees is often not)."""
    from telemetry.corridor.crossings import _depth_m, _metres_per_degree

    rng = np.random.default_rng(2)
    t = np.linspace(0.0, 1.0, 3001)
    xy = np.column_stack([10.0 + 2.0 * t, 60.0 + 0.05 * np.sin(40 * t) + rng.normal(0, 0.0005, t.size)])
    line = np.array([shapely.LineString(xy)], dtype=object)
    lon, lat = rng.uniform(10.0, 12.0, 400), rng.uniform(59.6, 60.4, 400)
    reach = np.full(400, 20_000.0)
    got = _depth_m(lon, lat, reach, line)
    kx, ky = _metres_per_degree(lat)
    a, b = xy[:-1], xy[1:]
    x1, y1 = (a[None, :, 0] - lon[:, None]) * kx[:, None], (a[None, :, 1] - lat[:, None]) * ky[:, None]
    x2, y2 = (b[None, :, 0] - lon[:, None]) * kx[:, None], (b[None, :, 1] - lat[:, None]) * ky[:, None]
    dx, dy = x2 - x1, y2 - y1
    u = np.clip(-(x1 * dx + y1 * dy) / (dx * dx + dy * dy), 0.0, 1.0)
    want = np.hypot(x1 + u * dx, y1 + u * dy).min(axis=1)
    inside = want <= 20_000.0
    assert 100 < inside.sum() < 400
    np.testing.assert_allclose(got[inside], want[inside], rtol=1e-9)  # (the wrap of longitudes rounds)
    assert not (got[~inside] <= 20_000.0).any()
