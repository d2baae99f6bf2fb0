"""The C hashing loop (lineage/sha256_bulk.c via lineage/native.py) gives exactly the DuckDB leaf hashes
and Merkle roots: nulls, empty text, non-ASCII, long values, negative times, sliced tables."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pytest

from lineage import native
from lineage.edges import CONST_TEXT, EDGE_SCHEMA, build, concat, plain
from lineage.merkle import Scratch, duckdb_leaf_hashes, hash_and_decode, leaf_hashes, root_of

from harness import hex_ids


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

    t = pa.concat_tables([edges()] * (merkle.SPLIT // 2000 + 1))
    assert t.num_rows >= merkle.SPLIT
    expected = duckdb_leaf_hashes(t)
    assert np.array_equal(leaf_hashes(t), expected)  # many batches, two threads
    assert np.array_equal(leaf_hashes(t.combine_chunks()), expected)  # one big batch, halved


def test_two_thread_split_of_a_large_merkle_level_gives_the_same_root(lib):
    from lineage import merkle

    rng = np.random.default_rng(7)
    leaves = rng.integers(0, 256, (2 * merkle.SPLIT + 3, 32), dtype=np.uint8)  # odd levels carried up too
    assert root_of(leaves) == root_of(leaves, use_native=False)
    changed = leaves.copy()
    changed[-1, 0] ^= 1
    assert root_of(changed) != root_of(leaves)


# -- the hex ids decoded in the leaf loop, constant columns as dictionaries (docs/adr/0110) -----------------



def _id_edges(n: int = 3000) -> pa.Table:
    a = build(n, "received", load_id="L1", record_id=hex_ids(n, 32, 1), payload_hash=hex_ids(n, 64, 2),
              source_system="erp_sql", stream="orders", source_key=pa.array([str(i) for i in range(n)]))
    b = build(n, "mapped", load_id="L1", record_id=hex_ids(n, 32, 3), input_record_id=hex_ids(n, 32, 4, nulls=7),
              subject=hex_ids(n, 64, 5, nulls=3), spec_id="s", spec_version="v1", entity="lead",
              target_key=pa.array([f"K{i}" for i in range(n)]))
    return concat([a.slice(5, 2000), b.slice(1), a.slice(2500)])  # chunks with array offsets


def _numpy_column(col: pa.ChunkedArray, monkeypatch) -> pa.ChunkedArray | None:
    from lineage import segment_file

    with monkeypatch.context() as m:
        m.setattr(segment_file.native, "load", lambda: None)  # the numpy decoder of ADR 0107
        return segment_file._encode_column(col)


@pytest.mark.parametrize("many", [False, True])  # one thread / two threads over halves
def test_c_leaf_loop_decodes_hex_ids_to_the_bytes_of_the_numpy_path(lib, monkeypatch, many):
    from lineage import merkle
    from lineage.segment_file import ID_COLUMNS

    t = _id_edges()
    if many:
        t = concat([t] * (merkle.SPLIT // t.num_rows + 1))
    leaves, ids = hash_and_decode(t, ID_COLUMNS)
    assert np.array_equal(leaves, duckdb_leaf_hashes(t))  # decoding changes nothing in the leaves
    assert sorted(ids) == sorted(ID_COLUMNS)
    for name in ID_COLUMNS:
        expected = _numpy_column(t.column(name), monkeypatch)
        assert ids[name].combine_chunks().equals(expected.combine_chunks()), name
        assert ids[name].type.byte_width == (16 if name.endswith("record_id") else 32)


@pytest.mark.parametrize("bad", [
    "ABCD" * 8,  # upper case
    "0" * 31 + "g",  # the last character of a 32-wide id (the SIMD block)
    "0" * 40 + "x" + "0" * 23,  # 64 wide with one bad character in the second SIMD block
    "0" * 30,  # shorter than the others
])
def test_a_column_that_is_not_hex_of_one_width_is_not_decoded(lib, bad):
    n = 50
    vals = [f"{i:032x}" for i in range(n)] if len(bad) != 64 else [f"{i:064x}" for i in range(n)]
    vals[37] = bad
    t = build(n, "received", record_id=pa.array(vals))
    leaves, ids = hash_and_decode(t, ("record_id",))
    assert "record_id" not in ids  # the segment file keeps it as text (ADR 0107)
    assert np.array_equal(leaves, duckdb_leaf_hashes(t))


def test_all_null_id_column_is_left_as_text(lib):
    t = build(10, "loaded", record_id=hex_ids(10, 32, 9))
    _, ids = hash_and_decode(t, ("record_id", "input_record_id"))
    assert list(ids) == ["record_id"]


def test_constant_columns_are_dictionaries_and_hash_like_their_text(lib):
    t = _id_edges()
    assert t.schema.field("step").type == CONST_TEXT and t.schema.field("entity").type == CONST_TEXT
    p = plain(t)
    assert p.schema.equals(EDGE_SCHEMA) and p.column("step").to_pylist() == t.column("step").to_pylist()
    assert np.array_equal(leaf_hashes(t), leaf_hashes(p))
    assert np.array_equal(leaf_hashes(t), duckdb_leaf_hashes(p))


def test_a_constant_beside_real_text_in_another_part_is_decoded_to_text(lib):
    a = build(3, "quarantined", reason="x: cast [r]")
    b = build(2, "quarantined", reason=pa.array(["y: map [r]", None]))
    t = concat([a, b])
    assert t.schema.field("reason").type == pa.string()
    assert t.column("reason").to_pylist() == ["x: cast [r]"] * 3 + ["y: map [r]", None]
    assert np.array_equal(leaf_hashes(t), duckdb_leaf_hashes(t))


@pytest.mark.parametrize("m", [1, 2, 3, 64, 4097])  # odd counts end with one node through OpenSSL
def test_node_hashes_with_the_sha_instructions_equal_openssl_and_hashlib(lib, m):
    pairs = np.random.default_rng(m).integers(0, 256, (m, 64), dtype=np.uint8)
    fast, plain_ = np.empty((m, 32), np.uint8), np.empty((m, 32), np.uint8)
    lib.node_hashes_with(pairs.ctypes.data, m, fast.ctypes.data, 1)  # SHA-NI when the CPU has it
    lib.node_hashes_with(pairs.ctypes.data, m, plain_.ctypes.data, 0)  # OpenSSL
    assert np.array_equal(fast, plain_)
    assert [r.tobytes() for r in fast] == [hashlib.sha256(b"\x01" + p.tobytes()).digest() for p in pairs]


@pytest.mark.parametrize("n", [1, 2, 3, 10])  # odd counts end with a lone row; "x" * 5000 is over the row buffer
def test_leaves_on_the_sha_instructions_equal_openssl_and_hashlib(lib, n):
    from lineage.merkle import _native_leaves

    reasons = ["", "x" * 5000, "a" * 55, None, "b" * 56, "ü" * 40, "c" * 119, "x" * 5000, "d", "e" * 64][:n]
    t = build(n, "quarantined", record_id=pa.array([f"{i:032x}" for i in range(n)]), reason=pa.array(reasons),
              load_id="L1", at=datetime(2026, 1, 1, tzinfo=timezone.utc))
    batch = t.to_batches()[0]
    fast, slow = np.empty((n, 32), np.uint8), np.empty((n, 32), np.uint8)
    _native_leaves(lib, batch, fast)  # SHA-NI, two rows at a time, when the CPU has it
    _native_leaves(lib, batch, slow, use_ni=False)  # OpenSSL, one row at a time
    assert np.array_equal(fast, slow)
    assert np.array_equal(fast, duckdb_leaf_hashes(t))


def test_a_hex_column_null_in_one_batch_and_hex_in_the_next_is_decoded_with_zeros_for_the_nulls(lib):
    # the first batch's subject is all null (written once per row as one piece with its neighbours), the
    # second's is hex: the decoded column must hold zero bytes, not whatever the buffer held, for the nulls
    a = build(3, "mapped", record_id=pa.array(["0a" * 16] * 3), load_id="L1")
    b = build(2, "loaded", record_id=pa.array(["0b" * 16] * 2), subject=pa.array(["ff" * 32, "01" * 32]), load_id="L1")
    t = concat([a, b])
    scratch = Scratch()  # buffers holding garbage, as a thread's reused ones do
    for key, size in (("leaves", 5 * 32), ("record_id", 5 * 16), ("subject", 5 * 32)):
        scratch.take(key, size)[:] = 0xAA
    leaves, ids = hash_and_decode(t, ("record_id", "subject"), scratch)
    assert np.array_equal(leaves, duckdb_leaf_hashes(t))
    assert ids["subject"].to_pylist() == [None, None, None, b"\xff" * 32, b"\x01" * 32]
    assert bytes(ids["subject"].chunk(0).buffers()[1])[: 3 * 32] == bytes(3 * 32)  # the null rows: zero bytes
    assert ids["record_id"].to_pylist() == [b"\x0a" * 16] * 3 + [b"\x0b" * 16] * 2
