"""corridors(): both methods on a constructed case whose true corridor is known.

Three animals live in separate home ranges west and east of a straight north–south
border (lon 78°E) and commute between them, fast, along one shared straight route
40 km long that crosses the border. The footprint polygons used by ≥ 2 animals and
the LaPoint corridor polygons must lie along that route (precision: share of polygon
area within 1.5 km of the route; recall: share of the route's length covered).
"""

from __future__ import annotations

import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely

from telemetry.corridor.corridors import CORRIDOR_COLUMNS, corridor_layers, corridors

LON0, LAT0 = 78.0, 43.0
AEQD = pyproj.CRS.from_proj4(f"+proj=aeqd +lat_0={LAT0} +lon_0={LON0} +ellps=WGS84 +units=m")
HALF_ROUTE_M = 20_000.0
ROUTE_BUFFER_M = 1_500.0


def _ou(rng: np.random.Generator, centre: np.ndarray, start: np.ndarray, n: int, sd_m: float = 700.0,
        rho: float = 0.9) -> np.ndarray:
    """Ornstein–Uhlenbeck home-range wandering, ``n`` hourly positions (m)."""
    out = np.empty((n, 2))
    p = start.astype(float)
    eps = rng.normal(0.0, sd_m * np.sqrt(1 - rho**2), (n, 2))
    for i in range(n):  # tiny simulation (hundreds of fixes): clarity over speed
        p = centre + rho * (p - centre) + eps[i]
        out[i] = p
    return out


def _leg(rng: np.random.Generator, a: np.ndarray, b: np.ndarray, speed_m_h: float = 3000.0,
         jitter_m: float = 30.0) -> np.ndarray:
    """Straight travel from a to b at ``speed_m_h``, hourly positions after a (b included)."""
    n = max(1, int(np.ceil(np.hypot(*(b - a)) / speed_m_h)))
    f = np.arange(1, n + 1)[:, None] / n
    return a + f * (b - a) + rng.normal(0.0, jitter_m, (n, 2)) * (f < 1)


def simulate_commuters(n_animals: int = 3, round_trips: int = 2, hr_fixes: int = 150,
                       seed: int = 7) -> pd.DataFrame:
    """Canonical fixes (hourly, 3D, HDOP 1) of animals commuting along the shared route."""
    rng = np.random.default_rng(seed)
    west_end, east_end = np.array([-HALF_ROUTE_M, 0.0]), np.array([HALF_ROUTE_M, 0.0])
    angles = np.radians(np.linspace(-50, 50, n_animals))
    frames = []
    for g in range(n_animals):
        cw = west_end + 8000.0 * np.array([-np.cos(angles[g]), np.sin(angles[g])])
        ce = east_end + 8000.0 * np.array([np.cos(angles[g]), np.sin(angles[g])])
        pts = [cw[None, :]]
        for _ in range(round_trips):
            pts.append(_ou(rng, cw, pts[-1][-1], hr_fixes))
            pts += [_leg(rng, pts[-1][-1], west_end), _leg(rng, west_end, east_end), _leg(rng, east_end, ce)]
            pts.append(_ou(rng, ce, pts[-1][-1], hr_fixes))
            pts += [_leg(rng, pts[-1][-1], east_end), _leg(rng, east_end, west_end), _leg(rng, west_end, cw)]
        xy = np.concatenate(pts) + rng.normal(0.0, 10.0, (sum(len(p) for p in pts), 2))
        lon, lat = pyproj.Transformer.from_crs(AEQD, "EPSG:4326", always_xy=True).transform(xy[:, 0], xy[:, 1])
        t0 = pd.Timestamp("2022-01-01", tz="UTC") + pd.Timedelta(days=40 * g)
        frames.append(pd.DataFrame({
            "animal_id": f"A{g + 1}", "time": t0 + pd.to_timedelta(np.arange(len(xy)), unit="h"),
            "lon": lon, "lat": lat, "hdop": 1.0, "fix_type": "3D",
        }))
    df = pd.concat(frames, ignore_index=True)
    df["animal_id"] = df["animal_id"].astype("category")
    df["flag"] = pd.Categorical([None] * len(df), categories=["no_fix"])
    return df


def two_countries() -> gpd.GeoDataFrame:
    """AAA west and BBB east of lon 78°E."""
    return gpd.GeoDataFrame({"iso_a3": ["AAA", "BBB"]},
                            geometry=[shapely.box(76.0, 42.0, LON0, 44.0), shapely.box(LON0, 42.0, 80.0, 44.0)],
                            crs="EPSG:4326")


def route_metric() -> tuple[shapely.LineString, pyproj.CRS]:
    return shapely.LineString([(-HALF_ROUTE_M, 0.0), (HALF_ROUTE_M, 0.0)]), AEQD


def precision_recall(polys: gpd.GeoDataFrame) -> tuple[float, float]:
    """Share of polygon area within ROUTE_BUFFER_M of the route, share of route length covered."""
    route, crs = route_metric()
    union = shapely.union_all(polys.to_crs(crs).geometry.values)
    inside = shapely.intersection(union, route.buffer(ROUTE_BUFFER_M)).area / union.area
    recall = shapely.intersection(route, union).length / route.length
    return inside, recall


@pytest.fixture(scope="module")
def commuters() -> pd.DataFrame:
    return simulate_commuters()


@pytest.fixture(scope="module")
def layers(commuters: pd.DataFrame) -> dict[str, gpd.GeoDataFrame]:
    hotspots = gpd.GeoDataFrame({"name": ["route", "elsewhere"], "n_crossings": [12, 3],
                                 "border_segment": [None, None]},
                                geometry=gpd.points_from_xy([LON0, LON0], [LAT0, 43.6]), crs="EPSG:4326")
    t = time.perf_counter()
    out = corridor_layers(commuters, hotspots=hotspots, borders=two_countries())
    print(f"\ncorridor_layers on {len(commuters)} fixes: {time.perf_counter() - t:.2f} s")
    return out


def test_footprint_corridor_lies_on_the_route(layers: dict[str, gpd.GeoDataFrame]) -> None:
    c = layers["corridors"]
    fp = c[(c.method == "footprint") & (c.n_animals >= 2)]
    assert len(fp) >= 1
    inside, recall = precision_recall(fp)
    print(f"footprint ≥2 animals: {len(fp)} polygons, {fp.area_km2.sum():.1f} km², "
          f"{inside:.1%} of area within {ROUTE_BUFFER_M:.0f} m of the route, route recall {recall:.1%}")
    assert inside >= 0.8
    assert recall >= 0.7
    # all three animals share the route: class 3 exists and lies on it too
    fp3 = c[(c.method == "footprint") & (c.n_animals == 3)]
    assert len(fp3) >= 1
    assert precision_recall(fp3)[0] >= 0.8
    # class 1 covers the home ranges as well: much larger than the corridor
    assert c[(c.method == "footprint") & (c.n_animals == 1)].area_km2.sum() > 2 * fp.area_km2.sum()


def test_behaviour_corridor_lies_on_the_route(layers: dict[str, gpd.GeoDataFrame]) -> None:
    c = layers["corridors"]
    bh = c[c.method == "behaviour"]
    assert len(bh) >= 1
    inside, recall = precision_recall(bh)
    steps = layers["corridor_steps"]
    route, crs = route_metric()
    on_route = shapely.dwithin(steps.to_crs(crs).geometry.values, route, ROUTE_BUFFER_M).mean()
    print(f"behaviour: {len(bh)} polygons, {bh.area_km2.sum():.1f} km², {inside:.1%} of area on the route, "
          f"route recall {recall:.1%}; {len(steps)} corridor steps, {on_route:.1%} of them on the route")
    assert inside >= 0.8
    assert recall >= 0.7
    assert on_route >= 0.8
    assert set(bh.iloc[0].animals.split(";")) == {"A1", "A2", "A3"}


def test_cross_border_attributes(layers: dict[str, gpd.GeoDataFrame], commuters: pd.DataFrame) -> None:
    c = layers["corridors"]
    assert list(c.columns) == list(CORRIDOR_COLUMNS)
    assert c.crs.to_epsg() == 4326
    assert shapely.is_valid(c.geometry.values).all()
    main = c[(c.n_animals.fillna(0) >= 2) | (c.method == "behaviour")]
    big = main.sort_values("area_km2").groupby("method").tail(1)
    for _, row in big.iterrows():
        assert row.cross_border, row.method
        assert row.countries == "AAA;BBB"
        assert row.hotspots == "route"          # the hotspot 60 km north is not on it
        assert row.crossings == 12
        assert row.animal_count == 3 and row.animals == "A1;A2;A3"
        # animals start 40 days apart and stay ~2 months: used in Jan–Apr
        months = {int(m) for m in row.months.split(";")}
        assert months and months <= {1, 2, 3, 4, 5}
    # a home range alone (first weeks of A1, west of the border) is not cross-border
    hr = corridors(commuters.iloc[:150], borders=two_countries(), methods="footprint")
    assert len(hr) == 1 and not hr.cross_border.iloc[0] and hr.countries.iloc[0] == "AAA"
    assert hr.animals.iloc[0] == "A1" and hr.n_animals.iloc[0] == 1
    # area is the equal-area area of the lon/lat polygon
    laea = pyproj.CRS.from_proj4(f"+proj=laea +lat_0={LAT0} +lon_0={LON0} +ellps=WGS84 +units=m")
    np.testing.assert_allclose(c.to_crs(laea).area / 1e6, c.area_km2, rtol=2e-3)


def test_without_hotspots_counts_zero(commuters: pd.DataFrame) -> None:
    c = corridors(commuters, borders=two_countries(), methods="behaviour")
    assert set(c.method) == {"behaviour"}
    assert (c.crossings == 0).all() and (c.hotspots == "").all()
    assert c.n_animals.isna().all()


def test_flagged_rows_and_smoothed_columns_are_used(commuters: pd.DataFrame) -> None:
    df = commuters.copy()
    # flagged junk far away must not create a corridor; lon_s/lat_s take precedence over lon/lat
    junk = df.iloc[:50].copy()
    junk["lon"] = junk["lon"] + 1.0
    junk["flag"] = "no_fix"
    df["lon_s"], df["lat_s"], df["se_m"] = df["lon"], df["lat"], 5.0
    df["lon"] = df["lon"] + 0.5  # raw positions shifted: must be ignored
    df = pd.concat([df, junk], ignore_index=True)
    c = corridors(df, borders=two_countries(), methods="footprint", classes=(2,))
    inside, recall = precision_recall(c)
    assert inside >= 0.8 and recall >= 0.7
    assert set(c.n_animals) == {2}


def test_unknown_parameter_is_an_error(commuters: pd.DataFrame) -> None:
    with pytest.raises(TypeError, match="cell_size"):
        corridors(commuters, cell_size=3)
    with pytest.raises(ValueError, match="method"):
        corridors(commuters, methods=("kde",))


def test_empty_input_gives_empty_layers() -> None:
    df = simulate_commuters(n_animals=1, round_trips=1, hr_fixes=5).iloc[:0]
    c = corridors(df)
    assert len(c) == 0 and list(c.columns) == list(CORRIDOR_COLUMNS)


def test_fixes_strewn_over_the_globe_give_finite_corridors_on_the_ground() -> None:
    """Positions all over the globe (garbage, or a file's columns swapped): the footprints reach past
    the rim of the equal-area plane centred on them. They used to come back to degrees as infinities
    (the map then failed: "Points of LinearRing do not form a closed linestring") with an area larger
    than the Earth's; now they are clipped to the hemisphere round the centre."""
    rng = np.random.default_rng(1)
    n = 300
    df = pd.DataFrame({"animal_id": np.repeat(["A", "B"], n // 2),
                       "time": pd.date_range("2021-01-01", periods=n, freq="4h", tz="UTC"),
                       "lon": rng.uniform(-180, 180, n), "lat": np.degrees(np.arcsin(rng.uniform(-1, 1, n))),
                       "se_m": 10.0})
    c = corridors(df, borders=two_countries(), methods="footprint")
    assert len(c)
    xy = shapely.get_coordinates(c.geometry.values)
    assert np.isfinite(xy).all() and (np.abs(xy[:, 0]) <= 180).all() and (np.abs(xy[:, 1]) <= 90).all()
    assert (c.area_km2 <= 2.6e8).all()  # at most a hemisphere (the Earth: 5.1e8 km²)
    assert c.geometry.is_valid.all()


SAMPLE = Path(__file__).resolve().parents[1] / "sample_tracks"


@pytest.mark.skipif(not SAMPLE.is_dir(), reason="sample_tracks/ not present")
def test_sample_tracks_smoke() -> None:
    import telemetry

    fixes = telemetry.read(str(SAMPLE))
    t = time.perf_counter()
    out = corridor_layers(fixes)  # raw fixes: positions lon/lat, error from HDOP
    dt = time.perf_counter() - t
    c = out["corridors"]
    print(f"\nsample_tracks (raw, {fixes['animal_id'].nunique()} animals, {len(fixes)} rows): "
          f"{len(c)} corridor polygons ({c.method.value_counts().to_dict()}), "
          f"{int(c.cross_border.sum())} cross-border, {len(out['corridor_steps'])} corridor steps, {dt:.2f} s")
    assert len(c) > 0
    assert shapely.is_valid(c.geometry.values).all()
    assert (c.area_km2 > 0).all()
    assert c.attrs["brownian_variance_m2_s"]
    assert c.cross_border.any()
    assert c.attrs["footprint_cell_source"] in ("bridges", "min_cell_m")  # (within the cost budget)


def test_cli_writes_layers_atomically(tmp_path: Path, commuters: pd.DataFrame) -> None:
    from click.testing import CliRunner

    from telemetry.cli.corridors_cmd import corridors as command

    csv = tmp_path / "fixes.csv"
    commuters.assign(time=commuters.time.dt.strftime("%Y-%m-%dT%H:%M:%SZ"))[
        ["animal_id", "time", "lon", "lat", "hdop"]].to_csv(csv, index=False)
    out = tmp_path / "out"
    args = [str(csv), "--columns", "time=time,lon=lon,lat=lat,animal=animal_id,hdop=hdop", "--out", str(out),
            "--raw", "--include-steps", "--set", "corridors.buffer_m=200"]
    res = CliRunner().invoke(command, args)
    assert res.exit_code == 0, res.output
    assert "cross-border" in res.output
    names = sorted(p.name for p in out.iterdir())
    assert names == ["corridor_steps.geojson", "corridors.geojson", "corridors.gpkg", "corridors.json"]
    polys = gpd.read_file(out / "corridors.geojson")
    assert len(polys) >= 3 and polys.crs.to_epsg() == 4326 and set(polys.method) == {"footprint", "behaviour"}
    assert set(gpd.list_layers(out / "corridors.gpkg")["name"]) == {"corridors", "corridor_steps"}
    first = (out / "corridors.geojson").read_bytes()
    assert CliRunner().invoke(command, args).exit_code == 0
    assert (out / "corridors.geojson").read_bytes() == first      # reproducible
    # without --include-steps, no exact positions are written
    out2 = tmp_path / "public"
    res = CliRunner().invoke(command, args[:-3] + ["--method", "footprint"])
    assert res.exit_code == 0
    res = CliRunner().invoke(command, [str(csv), "--columns", "time=time,lon=lon,lat=lat,animal=animal_id",
                                       "--out", str(out2), "--raw"])
    assert res.exit_code == 0 and not (out2 / "corridor_steps.geojson").exists()
    assert "corridor_steps" not in set(gpd.list_layers(out2 / "corridors.gpkg")["name"])


def test_month_lookup_matches_datetimeindex() -> None:
    from telemetry.corridor.corridors import _month_of

    rng = np.random.default_rng(2)
    starts = pd.date_range("2019-01-01", "2025-01-01", freq="MS").as_unit("ns").asi8
    ns = np.r_[rng.integers(starts[0], starts[-1], 10_000), starts, starts - 1, starts + 1]
    t = ns / 1e9
    expected = pd.DatetimeIndex((t * 1e9).astype("int64").view("datetime64[ns]")).month.to_numpy()
    assert _month_of(t).tolist() == expected.tolist()


def test_footprint_months_match_sampled_reference(commuters: pd.DataFrame) -> None:
    # reference: the months of all ½-cell samples and fixes falling in each polygon's cells
    from telemetry.corridor.corridors import _footprint_months
    from telemetry.corridor.footprints import count_polygons, stack_footprints, track_arrays

    ta = track_arrays(commuters)
    fp = stack_footprints(ta)
    polys = count_polygons(fp)
    got = _footprint_months(ta, fp.grid, polys["cells"])
    st = np.flatnonzero(ta.step_ok)
    xs, ys, ts = [ta.x], [ta.y], []
    months = [ta.month]
    for e in st:  # small case: a plain loop over steps is the independent reference
        k = int(np.ceil(np.hypot(ta.x[e] - ta.x[e - 1], ta.y[e] - ta.y[e - 1]) / (fp.grid.cell_m / 2))) + 1
        f = np.arange(k) / max(k - 1, 1)
        xs.append(ta.x[e - 1] + f * (ta.x[e] - ta.x[e - 1]))
        ys.append(ta.y[e - 1] + f * (ta.y[e] - ta.y[e - 1]))
        ts.append(ta.t_s[e - 1] + f * (ta.t_s[e] - ta.t_s[e - 1]))
    t = np.concatenate(ts)
    months.append(pd.DatetimeIndex((t * 1e9).astype("int64").view("datetime64[ns]")).month.to_numpy())
    cell = fp.grid.cell_of(np.concatenate(xs), np.concatenate(ys))
    month = np.concatenate(months)
    for cells, ms in zip(polys["cells"], got, strict=True):
        assert ms == tuple(sorted(set(month[np.isin(cell, cells)].tolist())))
