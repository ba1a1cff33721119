"""Migrants from the independent collar simulator cross Europe to Africa: the countries in order (issue 13).

scripts/collar_sim.py flies its migrants Germany → France → Spain → Morocco (stopovers of 3–10 days, legs at
~50 km/h). Whatever the profile (the snow leopard's default included: a fast leg is not "out of place"), the
crossings must give exactly the countries of the true path, in order, with no other country.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import shapely

import telemetry
from telemetry.corridor.borders import load_countries

from .conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import collar_sim  # noqa: E402


@pytest.mark.parametrize("species,schedule_h", [(None, 4), ("auto", 1), ("migratory_bird", 1)])
def test_migrants_cross_the_countries_of_their_true_path_in_order(tmp_path, species, schedule_h):
    rows, truth = collar_sim.simulate("migrant", collar_sim.Collar(schedule_s=schedule_h * 3600.0, days=60),
                                      n_animals=3, seed=5)
    rows["study-name"] = "SYNTHETIC validation collars"
    path = tmp_path / "migrants.csv"
    rows.to_csv(path, index=False)
    tracks = telemetry.process(telemetry.read(path), species=species)
    cx = telemetry.crossings(tracks)
    c = load_countries()
    tree = shapely.STRtree(c.geometry.values)
    for animal, g in truth.groupby("animal_id"):
        pi, ci = tree.query(shapely.points(g["true_lon"].to_numpy(), g["true_lat"].to_numpy()), predicate="within")
        iso = np.full(len(g), None, dtype=object)
        iso[pi] = c["iso_a3"].to_numpy()[ci]
        expect: list[str] = []
        for v in iso:
            if v is not None and (not expect or expect[-1] != v):
                expect.append(v)
        assert expect == ["DEU", "FRA", "ESP", "MAR"]
        ev = cx[(cx["animal_id"].astype(str) == animal)].sort_values("time")
        assert (ev["kind"] == "crossing").all()
        assert [ev["from_iso"].iloc[0], *ev["to_iso"]] == expect
