"""Alerts on simulated collars with known truth (tests/alertsim.py, separate from the pipeline's
models), over several schedules and error scales: the dead animal is alerted with the time it
stopped within 2 days of the truth, no living animal gets a mortality alert, kill sites are
information and never mortality; collar health and border approach on constructed cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import telemetry
from telemetry.config import AlertParams
from telemetry.corridor.alerts import ALERT_COLUMNS, alerts

from .alertsim import simulate_collars
from .trajsim import conform

SETTINGS = [(0, 2.0, 5.0, 0.15), (1, 1.0, 3.0, 0.0), (2, 4.0, 15.0, 0.3), (3, 0.5, 8.0, 0.15), (4, 4.0, 3.0, 0.4)]


@pytest.mark.parametrize(("seed", "interval_h", "uere_m", "share_2d"), SETTINGS)
def test_death_is_alerted_and_kills_are_not(seed: int, interval_h: float, uere_m: float, share_2d: float) -> None:
    fixes, truth = simulate_collars(seed=seed, interval_h=interval_h, uere_m=uere_m, share_2d=share_2d)
    tracks = telemetry.process(conform(fixes))
    a = alerts(tracks)
    assert list(a.columns) == ALERT_COLUMNS
    dead = a[a["kind"] == "mortality"]
    assert dead["animal_id"].tolist() == ["DEAD"]  # no false mortality on a living animal
    err = abs(dead["since"].iloc[0] - truth["death"]["DEAD"])
    assert err <= pd.Timedelta(days=2), err
    assert dead["severity"].iloc[0] == "critical"
    # kill sites: information, found for most true kills, never at the carcass
    kills = a[a["kind"] == "kill_site"]
    assert (kills["severity"] == "info").all()
    found = total = 0
    for animal, stays in truth["kills"].items():
        k = kills[kills["animal_id"] == animal]
        for s0, e0 in stays:
            total += 1
            found += bool(((k["since"] <= e0) & (k["time"] >= s0)).any())
    assert found >= 0.8 * total, (found, total)
    assert not ((kills["animal_id"] == "DEAD") & (kills["time"] >= truth["death"]["DEAD"])).any()


def test_no_mortality_while_the_carcass_stay_is_shorter_than_the_species_stay() -> None:
    """The dead animal 5 days after death (snow leopard: up to a week at a kill) is not yet
    alerted; with a 3-day profile it is (its own kills here last 1-2 days: the threshold stays 3)."""
    fixes, truth = simulate_collars(seed=5, interval_h=2.0, days=40.0, death_day=34.0, kill_stay_days=(1.0, 2.0))
    tracks = telemetry.process(conform(fixes))
    end = truth["death"]["DEAD"] + pd.Timedelta(days=5)
    cut = tracks[tracks["time"] <= end].reset_index(drop=True)
    assert "mortality" not in set(alerts(cut)["kind"])
    short = alerts(cut, AlertParams(max_stay_days=3.0))
    assert short[short["kind"] == "mortality"]["animal_id"].tolist() == ["DEAD"]


def test_an_animal_with_long_stays_of_its_own_raises_no_alarm_for_one_like_them() -> None:
    """A nesting bird (stays of 20 days earlier in its data) on a 10-day stay now: not a death,
    even with a 7-day profile; the evidence says why the threshold rose when it does alert."""
    rng = np.random.default_rng(7)
    t = pd.date_range("2023-04-01", periods=24 * 70, freq="h", tz="UTC")
    x = np.cumsum(rng.normal(0, 300, len(t)))
    y = np.cumsum(rng.normal(0, 300, len(t)))
    nest1 = slice(24 * 10, 24 * 30)  # 20 days on a nest
    x[nest1], y[nest1] = x[24 * 10], y[24 * 10]
    x[24 * 60:], y[24 * 60:] = x[24 * 60], y[24 * 60]  # now 10 days still
    noise = rng.normal(0, 5.0, (2, len(t)))
    fixes = pd.DataFrame({"animal_id": "G1", "time": t, "lon": 10 + (x + noise[0]) / 80_000,
                          "lat": 54 + (y + noise[1]) / 111_000, "hdop": 1.0, "fix_type": "3D"})
    tracks = telemetry.process(conform(fixes))
    assert "mortality" not in set(alerts(tracks)["kind"])
    later = alerts(tracks, AlertParams(max_stay_days=2.0, kill_min_h=24.0))
    assert "mortality" not in set(later["kind"])  # 10 < 1.25 × 20 days


def test_collar_health_silence_fix_success_hdop_and_since() -> None:
    fixes, _ = simulate_collars(seed=8, n_alive=3, death_day=None, days=30.0, interval_h=1.0, fail_share=0.05)
    f = fixes.copy()
    t = pd.to_datetime(f["time"], utc=True)
    l1 = f["animal_id"] == "L1"
    bad_day = (t >= pd.Timestamp("2023-01-20", tz="UTC")) & (t < pd.Timestamp("2023-01-21", tz="UTC"))
    f.loc[l1 & bad_day & (np.arange(len(f)) % 4 != 0), ["lon", "lat", "hdop"]] = np.nan  # 25 % fix success
    f.loc[l1 & bad_day & (np.arange(len(f)) % 4 != 0), "fix_type"] = "none"
    l2 = f["animal_id"] == "L2"
    f = f[~(l2 & (t > pd.Timestamp("2023-01-28", tz="UTC")))]  # silent for the last ~2 days
    hd = (f["animal_id"] == "L0") & (pd.to_datetime(f["time"], utc=True).dt.day == 15)
    f.loc[hd & f["hdop"].notna(), "hdop"] = 9.0
    tracks = telemetry.process(conform(f.reset_index(drop=True)))
    a = alerts(tracks)
    got = {(r.animal_id, r.kind) for r in a.itertuples()}
    assert ("L1", "fix_success") in got and ("L2", "no_data") in got and ("L0", "hdop") in got
    fs = a[(a["kind"] == "fix_success") & (a["animal_id"] == "L1")]
    assert fs["since"].dt.strftime("%Y-%m-%d").tolist() == ["2023-01-20"]
    silent = a[(a["kind"] == "no_data")]
    assert silent["animal_id"].tolist() == ["L2"] and "scheduled fixes" in silent["evidence"].iloc[0]
    assert not ({k for _, k in got} & {"mortality"})
    recent = alerts(tracks, since="2023-01-25")
    assert (recent["time"] >= pd.Timestamp("2023-01-25", tz="UTC")).all() and "fix_success" not in set(recent["kind"])


def test_border_approach_and_crossing() -> None:
    """An animal walking south from Kazakhstan into Kyrgyzstan near 43°N 76°E: a border approach
    while it closes in, then the crossing as soon as it is certain."""
    t = pd.date_range("2023-06-01", periods=24 * 6, freq="h", tz="UTC")
    lat = np.linspace(43.35, 42.75, len(t))  # the KAZ–KGZ border is near 43.0°N at 76°E
    fixes = pd.DataFrame({"animal_id": "B1", "time": t, "lon": 76.0, "lat": lat, "hdop": 1.0, "fix_type": "3D"})
    tracks = telemetry.process(conform(fixes))
    mid = tracks[tracks["time"] <= t[75]].reset_index(drop=True)  # ~11 km north, closing at ~11 km/day
    near = alerts(mid)
    assert "border_approach" in set(near["kind"]), near
    assert "KAZ–KGZ" in near[near["kind"] == "border_approach"]["evidence"].iloc[0]
    full = alerts(tracks)
    cx = full[full["kind"] == "crossing"]
    assert len(cx) == 1 and cx["evidence"].iloc[0].startswith("KAZ → KGZ")


def test_no_alert_on_an_empty_or_tiny_table() -> None:
    assert alerts(pd.DataFrame(columns=["animal_id", "time", "lon", "lat"])).empty


def test_cli_formats_page_and_email(tmp_path) -> None:
    """`telemetry alerts` on collar files: text, JSON and CSV agree; alerts.html is one offline
    file with a map per alert; the e-mail reaches a local SMTP server started here."""
    import json
    import subprocess
    import sys

    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    fixes, truth = simulate_collars(seed=11, n_alive=2, days=30.0, death_day=12.0, interval_h=2.0)
    path = tmp_path / "collars.csv"
    fixes.to_csv(path, index=False)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "telemetry", "alerts", str(path), *args], capture_output=True,
                              text=True, timeout=300)

    text = cli()
    assert text.returncode == 0, text.stderr
    first = text.stdout.splitlines()[0]
    assert first.startswith("CRITICAL  mortality  DEAD")
    doc = json.loads(cli("--format", "json", "--html", str(tmp_path / "alerts.html")).stdout)
    assert doc["alerts"][0]["kind"] == "mortality" and "INTERNAL" in doc["note"]
    since = pd.Timestamp(doc["alerts"][0]["since"])
    assert abs(since - truth["death"]["DEAD"]) <= pd.Timedelta(days=2)
    csv = pd.read_csv(__import__("io").StringIO(cli("--format", "csv").stdout))
    assert len(csv) == len(doc["alerts"]) == len(text.stdout.splitlines())
    page = (tmp_path / "alerts.html").read_text(encoding="utf-8")
    assert page.count('<div class="alert ') == len(doc["alerts"]) and "<script" not in page and "http" not in page
    assert page.count("data:image/png;base64,") == min(len(doc["alerts"]), 50)

    received: list = []

    class Keep(Message):
        def handle_message(self, message) -> None:  # noqa: ANN001 - aiosmtpd's signature
            received.append(message)

    import socket

    with socket.socket() as probe:  # a free port (aiosmtpd's controller cannot take port 0)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = Controller(Keep(), hostname="127.0.0.1", port=port)
    server.start()
    try:
        sent = cli("--smtp", f"127.0.0.1:{port}", "--mail-to", "rangers@example.org", "--since", "2023-01-20")
        assert sent.returncode == 0, sent.stderr
    finally:
        server.stop()
    assert len(received) == 1
    body = received[0].get_payload(decode=True).decode()
    assert "mortality" in body and received[0]["To"] == "rangers@example.org"
    # a server nobody listens on: one line, exit 2
    dead = cli("--smtp", f"127.0.0.1:{port}", "--mail-to", "x@example.org")
    assert dead.returncode == 2 and "could not send" in dead.stderr and "Traceback" not in dead.stderr


def test_zone_exit_and_entry() -> None:
    """An animal walking east through a protected area (a box polygon): an entry, then an exit."""
    import geopandas as gpd
    import shapely

    park = gpd.GeoDataFrame({"NAME": ["Park A"]}, geometry=[shapely.box(77.1, 43.3, 77.3, 43.5)], crs=4326)
    t = pd.date_range("2023-06-01", periods=24 * 5, freq="h", tz="UTC")
    fixes = pd.DataFrame({"animal_id": "Z1", "time": t, "lon": np.linspace(76.95, 77.45, len(t)), "lat": 43.4,
                          "hdop": 1.0, "fix_type": "3D"})
    tracks = telemetry.process(conform(fixes))
    a = alerts(tracks, zones=park, zone_field="NAME")
    kinds = a[a["kind"].str.startswith("zone")].sort_values("time")
    assert kinds["kind"].tolist() == ["zone_entry", "zone_exit"]
    assert "Park A" in kinds["evidence"].iloc[0] and kinds["evidence"].iloc[1].startswith("Park A")
