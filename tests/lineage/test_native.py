"""The C hashing loop (lineage/sha256_bulk.c via lineage/native.py) gives exactly the DuckDB leaf hashes
and Merkle roots: nulls, empty text, non-ASCII, long values, negative times, sliced tables."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pytest

from lineage import native
from lineage.edges import build
from lineage.merkle import duckdb_leaf_hashes, leaf_hashes, root_of


@pytest.fixture(scope="module")
def lib():
    lib = native.load()
    assert lib is not None, "the C loop must build on this machine (gcc + OpenSSL headers)"
    return lib


def edges() -> pa.Table:
    n = 3000
    text = [None, "", "ünï–cødé", "x" * 9000, "a\x1fb"] * (n // 5)
    rules = pa.array([None, 0, -5, 2**62, 7] * (n // 5), pa.int64())
    at = pa.array([datetime(1960, 1, 1, tzinfo=timezone.utc), None, datetime(2026, 11, 24, 9, 1, 2, 345678,
                                                                            tzinfo=timezone.utc), None, None] * (n // 5),
                  pa.timestamp("us", tz="UTC"))
    t = build(n, "mapped", record_id=pa.array([f"r{i}" for i in range(n)]), reason=pa.array(text), rules=rules,
              load_id="L1", at=at)
    return pa.concat_tables([t.slice(7, 1000), t.slice(1500)])  # chunked, with array offsets


def test_c_leaves_equal_duckdb_leaves(lib):
    t = edges()
    assert np.array_equal(leaf_hashes(t), duckdb_leaf_hashes(t))


def test_c_root_equals_duckdb_root_and_a_changed_edge_changes_it(lib):
    t = edges()
    leaves = leaf_hashes(t)
    assert root_of(leaves) == root_of(leaves, use_native=False)
    changed = t.set_column(t.schema.get_field_index("reason"), "reason",
                           pa.array(["y"] + t.column("reason").to_pylist()[1:], pa.string()))
    assert root_of(leaf_hashes(changed)) != root_of(leaves)


def test_c_leaf_matches_the_documented_text(lib):
    t = build(1, "received", record_id=pa.array(["r1"]), load_id="L", at=datetime(2026, 1, 1, tzinfo=timezone.utc))
    text = "\x1f".join(["vreceived", "vL", "vr1"] + ["n"] * 14 + ["v1767225600000000"])
    assert leaf_hashes(t)[0].tobytes() == hashlib.sha256(b"\x00" + text.encode()).digest()


def test_two_thread_split_of_a_large_segment_gives_the_same_leaves(lib):
    from lineage import merkle

    t = pa.concat_tables([edges()] * (merkle._SPLIT // 2000 + 1))
    assert t.num_rows >= merkle._SPLIT
    expected = duckdb_leaf_hashes(t)
    assert np.array_equal(leaf_hashes(t), expected)  # many batches, two threads
    assert np.array_equal(leaf_hashes(t.combine_chunks()), expected)  # one big batch, halved


def test_two_thread_split_of_a_large_merkle_level_gives_the_same_root(lib):
    from lineage import merkle

    rng = np.random.default_rng(7)
    leaves = rng.integers(0, 256, (2 * merkle._SPLIT + 3, 32), dtype=np.uint8)  # odd levels carried up too
    assert root_of(leaves) == root_of(leaves, use_native=False)
    changed = leaves.copy()
    changed[-1, 0] ^= 1
    assert root_of(changed) != root_of(leaves)
