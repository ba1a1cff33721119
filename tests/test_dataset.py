"""GeoParquet datasets partitioned by animal: exact round trip, subsets, hive layout, reading, CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import telemetry
from telemetry.cli.main import main
from telemetry.io.dataset import (
    MANIFEST,
    animal_from_partition,
    animal_groups,
    dataset_animals,
    is_dataset,
    partition_name,
    read_dataset,
    write_dataset,
)

from .conftest import ROOT

SAMPLE = ROOT / "sample_tracks"
pytestmark = pytest.mark.skipif(not SAMPLE.is_dir(), reason="sample not generated")


@pytest.fixture(scope="module")
def fixes() -> pd.DataFrame:
    return telemetry.read(SAMPLE)


@pytest.fixture(scope="module")
def tracks(fixes) -> pd.DataFrame:
    return telemetry.process(fixes)


def _plain(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy(deep=False)
    df.attrs = {}
    return df


@pytest.mark.parametrize("which", ["fixes", "tracks"])
def test_round_trip_is_exact(which, request, tmp_path):
    table = request.getfixturevalue(which)
    root = write_dataset(table, tmp_path / "ds")
    assert is_dataset(root)
    back = read_dataset(root)
    pd.testing.assert_frame_equal(_plain(table), _plain(back), check_exact=True)
    assert back.attrs.get("parameters", {}) == table.attrs.get("parameters", {})
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == [f"animal_id=SL{i:02d}" for i in range(1, 12)]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_subset_keeps_every_category(fixes, tmp_path):
    write_dataset(fixes, tmp_path / "ds")
    sub = read_dataset(tmp_path / "ds", animals=["SL07", "SL02"])
    assert set(sub["animal_id"]) == {"SL02", "SL07"}
    assert len(sub) == int(fixes["animal_id"].isin(["SL02", "SL07"]).sum())
    assert (sub.dtypes == fixes.dtypes).all()  # categories of the whole table, not of the subset
    expected = fixes[fixes["animal_id"].isin(["SL02", "SL07"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(_plain(expected), _plain(sub), check_exact=True)
    with pytest.raises(telemetry.TelemetryError, match="not in the dataset"):
        read_dataset(tmp_path / "ds", animals=["SL99"])


def test_awkward_ids_are_path_safe_and_reversible(fixes, tmp_path):
    ids = ["a/b", "..", "x y", "é:*?", "SL.01"]
    df = fixes.iloc[:60].copy()
    df["animal_id"] = pd.Categorical(np.repeat(ids + [None], 10), categories=sorted(ids))
    root = write_dataset(df, tmp_path / "ds")
    names = sorted(p.name for p in root.iterdir() if p.is_dir())
    assert all("/" not in n[len("animal_id="):] and "." not in n for n in names)
    assert "animal_id=__HIVE_DEFAULT_PARTITION__" in names
    assert [animal_from_partition(partition_name(i)) for i in ids] == ids
    pd.testing.assert_frame_equal(_plain(df).reset_index(drop=True), _plain(read_dataset(root)), check_exact=True)
    assert read_dataset(root, animals=[None])["animal_id"].isna().all()


def test_hive_layout_is_readable_by_pyarrow(fixes, tmp_path):
    import pyarrow.dataset as pads

    write_dataset(fixes, tmp_path / "ds")
    table = pads.dataset(tmp_path / "ds", format="parquet", partitioning="hive",
                         exclude_invalid_files=True).to_table()
    counts = table.group_by("animal_id").aggregate([("__row__", "count")]).to_pandas()
    assert dict(zip(counts["animal_id"], counts["__row___count"])) == \
        fixes.groupby("animal_id", observed=True).size().to_dict()
    meta = pads.dataset(next((tmp_path / "ds").glob("animal_id=SL01/*.parquet"))).schema.metadata
    assert json.loads(meta[b"geo"])["columns"]["geometry"]["encoding"] == "WKB"


def test_manifest_and_groups(fixes, tmp_path):
    write_dataset(fixes, tmp_path / "ds")
    animals = dataset_animals(tmp_path / "ds")
    assert animals["rows"].sum() == len(fixes)
    groups = animal_groups(tmp_path / "ds", 3)
    assert sorted(a for g in groups for a in g) == sorted(animals["animal_id"])
    assert groups == animal_groups(tmp_path / "ds", 3)


def test_overwrites_a_dataset_but_not_other_folders(fixes, tmp_path):
    write_dataset(fixes.iloc[:100], tmp_path / "ds")
    write_dataset(fixes, tmp_path / "ds")
    assert len(read_dataset(tmp_path / "ds")) == len(fixes)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(telemetry.TelemetryError, match="not a telemetry dataset"):
        write_dataset(fixes, tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_telemetry_read_accepts_datasets_and_parquet_files(fixes, tracks, tmp_path):
    from telemetry.io.points import write_tracks

    write_dataset(fixes, tmp_path / "ds")
    back = telemetry.read(tmp_path / "ds")
    pd.testing.assert_frame_equal(_plain(fixes), _plain(back), check_exact=True)
    (report,) = back.attrs["sources"]
    assert report["format"] == "geoparquet" and report["rows_read"] == len(fixes)
    write_tracks(tracks, tmp_path / "tracks.parquet")
    single = telemetry.read(tmp_path / "tracks.parquet")
    assert len(single) == len(tracks) and single.attrs["sources"][0]["format"] == "geoparquet"
    np.testing.assert_array_equal(single["lon"].to_numpy(), tracks["lon"].to_numpy())
    assert ("geoparquet", "GeoParquet (telemetry dataset by animal, or tracks file)") in telemetry.formats()


def test_cli_process_writes_and_reads_datasets(tmp_path, capsys):
    assert main(["process", str(SAMPLE), "--out", str(tmp_path / "tracks_ds")]) == 0
    assert (tmp_path / "tracks_ds" / MANIFEST).is_file()
    assert main(["process", str(SAMPLE), "--out", str(tmp_path / "named.parquet"), "--partitioned"]) == 0
    assert is_dataset(tmp_path / "named.parquet")
    assert main(["process", str(SAMPLE), "--out", str(tmp_path / "file.parquet")]) == 0
    ds = read_dataset(tmp_path / "tracks_ds")
    assert len(ds) == len(pd.read_parquet(tmp_path / "file.parquet"))
    assert main(["process", str(tmp_path / "tracks_ds"), "--out", str(tmp_path / "again.parquet")]) == 0
    assert "→" in capsys.readouterr().out
