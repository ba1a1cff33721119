"""Property tests: whatever bytes arrive, the reader raises only its own error type."""

from __future__ import annotations

import codecs
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import telemetry
from telemetry.errors import TelemetryError

from .conftest import DATA, assert_canonical_dtypes

SEEDS = [
    (DATA / "movebank" / "bats_subset.csv").read_bytes()[:6000],
    (DATA / "movebank" / "gulls_argos_subset.csv").read_bytes()[:6000],
]
CLEAN = DATA / "movebank" / "bats_subset.csv"
CLEAN_ROWS = len(telemetry.read(CLEAN))
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def read_only_telemetry_errors(tmp_path, content: bytes) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_bytes(content)
    try:
        df = telemetry.read(path)
    except TelemetryError as err:
        assert "\n" not in str(err)
        return
    # nothing lost: every line after the header is a row, a skipped sensor row, or blank
    report = df.attrs["sources"][0]
    assert report["rows_kept"] == len(df)
    # canonical dtypes whatever was dropped or malformed, so the file joins any other file
    assert_canonical_dtypes(df)
    both = telemetry.read([path, CLEAN])
    assert_canonical_dtypes(both)
    assert len(both) == len(df) + CLEAN_ROWS


@SETTINGS
@given(content=st.binary(max_size=3000))
def test_random_bytes(tmp_path, content):
    read_only_telemetry_errors(tmp_path, content)


@SETTINGS
@given(seed=st.sampled_from(SEEDS), cut=st.integers(0, 6000))
def test_truncated(tmp_path, seed, cut):
    read_only_telemetry_errors(tmp_path, seed[:cut])


@SETTINGS
@given(seed=st.sampled_from(SEEDS), rnd=st.randoms(use_true_random=False))
def test_shuffled_columns(tmp_path, seed, rnd: random.Random):
    lines = seed.decode().splitlines()[:-1]
    rows = [line.split(",") for line in lines]
    width = len(rows[0])
    order = list(range(width))
    rnd.shuffle(order)
    out = [",".join(r[i] if i < len(r) else "" for i in order) for r in rows]
    read_only_telemetry_errors(tmp_path, ("\n".join(out) + "\n").encode())


@SETTINGS
@given(seed=st.sampled_from(SEEDS), junk=st.lists(st.tuples(st.integers(0, 6000), st.binary(min_size=1, max_size=8)),
                                                  max_size=20))
def test_junk_cells(tmp_path, seed, junk):
    data = bytearray(seed)
    for pos, blob in junk:
        data[pos:pos + len(blob)] = blob
    read_only_telemetry_errors(tmp_path, bytes(data))


@SETTINGS
@given(seed=st.sampled_from(SEEDS), encoding=st.sampled_from(["utf-16", "utf-16-le", "utf-16-be", "cp1252", "latin-1",
                                                              "utf-8-sig", "utf-32"]))
def test_wrong_encodings(tmp_path, seed, encoding):
    text = seed.decode("utf-8", errors="ignore")
    read_only_telemetry_errors(tmp_path, codecs.encode(text, encoding))
