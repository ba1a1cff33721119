"""The SYNTHETIC snow-leopard sample: readable, reproducible, and true to its published parameters.

Statistics are checked against the numbers in sample_tracks/README.md so the
simulator cannot drift unnoticed.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Geod, Transformer

import telemetry
from telemetry.corridor.borders import load_countries

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_tracks"
TRUTH = SAMPLE / "truth"
GEOD = Geod(ellps="WGS84")
HR_KM2 = {"M": (207.0, 63.0), "F": (124.0, 41.0)}  # Johansson et al. 2016


@pytest.fixture(scope="module")
def fixes() -> pd.DataFrame:
    return telemetry.read(SAMPLE)


@pytest.fixture(scope="module")
def truth() -> pd.DataFrame:
    return pd.read_csv(TRUTH / "fixes.csv")


@pytest.fixture(scope="module")
def animals() -> pd.DataFrame:
    return pd.read_csv(TRUTH / "animals.csv")


@pytest.fixture(scope="module")
def crossings() -> pd.DataFrame:
    return pd.read_csv(TRUTH / "crossings.csv")


def _years(a: pd.Series) -> float:
    return (pd.Timestamp(a["end"]) - pd.Timestamp(a["start"])).total_seconds() / (365.25 * 86400)


def test_labelled_synthetic() -> None:
    data = [p for p in SAMPLE.iterdir() if p.is_file() and p.name != "README.md"]
    assert len(data) == 4 and all("SYNTHETIC" in p.name for p in data)
    assert "synthetic" in (SAMPLE / "README.md").read_text().lower()
    head = (SAMPLE / "movebank_SYNTHETIC_snow_leopards_tien_shan.csv").open().readlines()[:2]
    assert "SYNTHETIC" in head[1]


def test_read_back_all_animals(fixes: pd.DataFrame, animals: pd.DataFrame) -> None:
    assert fixes["animal_id"].nunique() == 11
    per = fixes.groupby("animal_id", observed=True).size()
    assert per.to_dict() == dict(zip(animals.animal_id, animals.n_records))
    fmts = {Path(r["source"]).name: r["format"] for r in fixes.attrs["sources"]}
    assert not any("truth" in s for s in fmts)  # the truth folder is not read as telemetry
    assert sorted(fmts.values()) == ["lotek-webservice", "movebank", "vectronic-gpsplusx", "vectronic-gpsplusx"]


def test_rows_join_truth(fixes: pd.DataFrame, truth: pd.DataFrame) -> None:
    f = fixes.assign(src=fixes["source"].astype(str).map(lambda s: Path(s).name))
    j = f.merge(truth, left_on=["src", "source_row"], right_on=["source", "source_row"], how="left",
                suffixes=("", "_t"))
    assert j["animal_id_t"].notna().all() and len(j) == len(truth)
    assert (j["animal_id"].astype(str) == j["animal_id_t"]).all()
    assert ((j["fix_type"] == "none") == ~j["fix_ok"]).all()
    # non-outlier fixes sit within a few sigma of the truth
    ok = j[j.fix_ok & ~j.is_outlier]
    _, _, d = GEOD.inv(ok.lon.values, ok.lat.values, ok.true_lon.values, ok.true_lat.values)
    assert np.median(d / ok.sigma_m.values) < 1.5 and np.quantile(d / ok.sigma_m.values, 0.999) < 5
    # injected outliers are 1-5 km off
    out = j[j.is_outlier]
    _, _, d = GEOD.inv(out.lon.values, out.lat.values, out.true_lon.values, out.true_lat.values)
    assert d.min() > 950 and d.max() < 5050
    # written time = true time except the clock jump, 1024 weeks early
    t_true = pd.to_datetime(j["time_t"] if "time_t" in j else j["time"], utc=True)
    lag = (t_true - j["time"]).dt.total_seconds()
    assert (lag[~j.clock_jump].abs() < 1).all()
    assert np.allclose(lag[j.clock_jump], 1024 * 7 * 86400, atol=1)
    assert j.clock_jump.sum() > 0 and j.loc[j.clock_jump, "animal_id"].nunique() == 1


def test_schedule_success_quality(truth: pd.DataFrame, animals: pd.DataFrame) -> None:
    for _, a in animals.iterrows():
        f = truth[(truth.animal_id == a.animal_id) & ~truth.is_duplicate]
        t = pd.to_datetime(f["time"]).sort_values()  # Vectronic files are newest first
        dt = np.diff((t - t.iloc[0]).dt.total_seconds().to_numpy()) / 3600
        assert abs(np.median(dt) - a.fix_interval_h) < 0.05, a.animal_id
        assert 0.85 <= f.fix_ok.mean() <= 0.95, (a.animal_id, f.fix_ok.mean())
    ok = truth[truth.fix_ok & ~truth.is_duplicate]
    assert 1.4 <= ok.hdop.median() <= 1.6
    assert 0.13 <= (ok.fix_type == "2D").mean() <= 0.17
    assert 0.004 <= ok.is_outlier.mean() <= 0.006
    assert np.allclose(ok.sigma_m, np.where(ok.fix_type == "2D", 30, 10) * ok.hdop, atol=0.06)
    # failures cluster in time: a failure is followed by a failure far more often than by chance
    f = truth[(truth.animal_id == "SL01") & ~truth.is_duplicate].sort_values("time").fix_ok.to_numpy()
    p_fail = 1 - f.mean()
    assert (~f[1:] & ~f[:-1]).sum() / (~f[:-1]).sum() > 3 * p_fail
    dups = truth[truth.is_duplicate]
    assert 0 < len(dups) / len(truth) < 0.01


def _mcp95_km2(lon: np.ndarray, lat: np.ndarray) -> float:
    """95% MCP (5% of fixes farthest from the centroid removed) in a Lambert equal-area plane."""
    tr = Transformer.from_crs("EPSG:4326", f"+proj=laea +lon_0={lon.mean()} +lat_0={lat.mean()} +datum=WGS84",
                              always_xy=True)
    x, y = (np.asarray(v) for v in tr.transform(lon, lat))
    r = np.hypot(x - x.mean(), y - y.mean())
    keep = r <= np.quantile(r, 0.95)
    return shapely.convex_hull(shapely.multipoints(np.column_stack([x[keep], y[keep]]))).area / 1e6


def test_home_ranges(fixes: pd.DataFrame, animals: pd.DataFrame) -> None:
    usable = fixes[fixes.lon.notna()]
    for _, a in animals[animals.age_class == "adult"].iterrows():
        g = usable[usable.animal_id == a.animal_id]
        area = _mcp95_km2(g.lon.to_numpy(), g.lat.to_numpy())
        mean, sd = HR_KM2[a.sex]
        assert mean - 2 * sd <= area <= mean + 2 * sd, (a.animal_id, a.sex, area)


def test_movement(animals: pd.DataFrame) -> None:
    path = pd.read_csv(TRUTH / "path.csv.gz")
    assert set(path.state) == {"resting", "moving", "travelling"}
    for aid, g in path.groupby("animal_id"):
        g4 = g.iloc[::48]  # the true position every 4 h
        _, _, d = GEOD.inv(g4.lon.values[:-1], g4.lat.values[:-1], g4.lon.values[1:], g4.lat.values[1:])
        daily_km = d.sum() / 1e3 / (len(g) / 288)
        assert 3.5 <= daily_km <= 5.5, (aid, daily_km)
        assert d.max() < 10_500, aid  # travelling: up to ~10 km per 4 h
    # the disperser: net displacement between the first and last 10 days
    g = path[path.animal_id == animals.loc[animals.age_class == "subadult", "animal_id"].item()]
    n = 10 * 288
    _, _, d = GEOD.inv(g.lon.values[:n].mean(), g.lat.values[:n].mean(), g.lon.values[-n:].mean(),
                       g.lat.values[-n:].mean())
    assert 80e3 <= d <= 160e3
    # kill sites: ~3 days within 100 m, every ~8 days
    k = pd.read_csv(TRUTH / "kills.csv", parse_dates=["start", "end"])
    stay = (k.end - k.start).dt.total_seconds() / 86400
    assert 2.5 <= stay.mean() <= 3.5
    gap = k.groupby("animal_id").start.diff().dt.total_seconds().dropna() / 86400
    assert 7 <= gap.mean() <= 9.5
    sl = path[path.animal_id == "SL01"]
    t = sl.time.to_numpy(dtype=str)  # ISO 8601 text sorts as time
    for _, kill in k[k.animal_id == "SL01"].iterrows():
        lo, hi = np.searchsorted(t, [kill.start.strftime("%Y-%m-%dT%H:%M:%SZ"), kill.end.strftime("%Y-%m-%dT%H:%M:%SZ")])
        assert hi > lo
        _, _, d = GEOD.inv(sl.lon.values[lo:hi], sl.lat.values[lo:hi], np.full(hi - lo, kill.lon),
                           np.full(hi - lo, kill.lat))
        assert d.max() <= 100


def test_crossings_per_year(animals: pd.DataFrame, crossings: pd.DataFrame) -> None:
    n = crossings.groupby("animal_id").size().reindex(animals.animal_id, fill_value=0)
    per_year = n.to_numpy() / animals.apply(_years, axis=1).to_numpy()
    adult = (animals.age_class == "adult").to_numpy()
    crossers = adult & (n.to_numpy() > 0)
    assert crossers.sum() == 6 and (adult & (n.to_numpy() == 0)).sum() == 4
    assert ((per_year[crossers] >= 2) & (per_year[crossers] <= 12)).all(), per_year
    assert (n.to_numpy() == animals.n_crossings.to_numpy()).all()


def test_crossings_match_borders(crossings: pd.DataFrame) -> None:
    """Each crossing is on a border of the bundled polygons; the path is in `from` just before, `to` after."""
    c = load_countries()
    polys = dict(zip(c.iso_a3, c.geometry))
    path = pd.read_csv(TRUTH / "path.csv.gz")
    path["t"] = pd.to_datetime(path.time)
    for aid, cr in crossings.groupby("animal_id"):
        g = path[path.animal_id == aid].reset_index(drop=True)
        t = pd.to_datetime(cr.time)
        epoch = pd.Timestamp("1970-01-01", tz="UTC")
        i = np.searchsorted((g.t - epoch).dt.total_seconds().to_numpy(), (t - epoch).dt.total_seconds().to_numpy(),
                            side="right") - 1  # 5-min vertex before the crossing
        before, after = g.iloc[i], g.iloc[i + 1]
        for iso_col, pts in (("from_iso", before), ("to_iso", after)):
            inside = [shapely.contains_xy(polys[iso], x, y) for iso, x, y in zip(cr[iso_col], pts.lon, pts.lat)]
            assert all(inside), (aid, iso_col)
        assert (cr.from_iso.values[1:] == cr.to_iso.values[:-1]).all()  # a chain: to -> next from
        d = [shapely.distance(polys[f].boundary, shapely.Point(x, y)) for f, x, y in zip(cr.from_iso, cr.lon, cr.lat)]
        assert max(d) < 1e-5  # on the border (6-decimal rounding)
    # never-crossers keep >= a few km from any border
    far = set(path.animal_id) - set(crossings.animal_id)
    border = shapely.union_all([polys[i].boundary for i in ("KAZ", "KGZ", "CHN")])
    for aid in sorted(far):
        g = path[path.animal_id == aid].iloc[::12]
        d = shapely.distance(border, shapely.points(g.lon.values, g.lat.values))
        assert d.min() * 80 > 2.5, aid  # degrees -> km (>= 80 km per degree here)


def test_regenerates_byte_for_byte(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "scripts" / "simulate_tracks.py"), "--out", str(tmp_path)],
                   check=True, capture_output=True)
    made = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert made
    for rel in made:
        a = hashlib.sha256((tmp_path / rel).read_bytes()).hexdigest()
        b = hashlib.sha256((SAMPLE / rel).read_bytes()).hexdigest()
        assert a == b, rel
    assert sum(p.stat().st_size for p in SAMPLE.rglob("*") if p.is_file()) < 40e6
