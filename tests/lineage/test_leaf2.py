"""Leaf format 2 (lineage/leaf2.py, docs/adr/0114): the C loop gives exactly the leaves of the documented
bytes (the plain-Python reference); segments are written in it with their constants in the metadata, read
back whole, and verify detects any change to a row, a constant or the format, while segments of format 1
keep verifying."""

from __future__ import annotations

import hashlib
import io
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lineage import leaf2, native
from lineage import segment_file as sf
from lineage.edges import EDGE_SCHEMA, build, concat, conform
from lineage.merkle import Scratch
from lineage.verify import segment_leaves, verify

from harness import hex_ids
from lineage_pipeline import run_pipeline


@pytest.fixture(scope="module")
def lib():
    lib = native.load()
    assert lib is not None, "the C loop must build on this machine (gcc + OpenSSL headers)"
    return lib




def _edges(n: int = 2000) -> pa.Table:
    """Two parts, sliced (array offsets): text with nulls, non-ASCII, U+001F and values over the C row buffer,
    negative integers and times, ids with nulls, constants as dictionaries."""
    keys = [None, "", "ünï–cødé", "x" * 5000, "a\x1fb"] * (n // 5)
    rules = pa.array([None, 0, -5, 2**62, 7] * (n // 5), pa.int64())
    at = pa.array([datetime(1960, 1, 1, tzinfo=timezone.utc), None] * (n // 2), pa.timestamp("us", tz="UTC"))
    a = build(n, "mapped", load_id="L1", record_id=hex_ids(n, 32, 1), input_record_id=hex_ids(n, 32, 2, nulls=7),
              subject=hex_ids(n, 64, 3, nulls=3), spec_id="s", spec_version="v1", entity="lead",
              target_key=pa.array(keys), rules=rules, at=at)
    b = build(n, "mapped", load_id="L1", record_id=hex_ids(n, 32, 4), input_record_id=hex_ids(n, 32, 5),
              subject=hex_ids(n, 64, 6), spec_id="s", spec_version="v1", entity="lead",
              target_key=pa.array([f"K{i}" for i in range(n)]), rules=rules, at=at)
    return conform(concat([a.slice(3, 1500), b.slice(1)]))


def _as_file(edges: pa.Table, decoded: dict, consts: dict) -> pa.Table:
    """The table as a reader sees the written file."""
    return pq.read_table(io.BytesIO(sf.write(edges, decoded=decoded, leaf_constants=consts).to_pybytes()))


def _write(edges: pa.Table, use_ni: bool = True):
    return leaf2.hash_and_decode(edges, sf.ID_COLUMNS, Scratch().take, use_ni=use_ni)


AT = datetime(2026, 1, 1, tzinfo=timezone.utc)
AT_BYTES = b"v" + (1767225600000000).to_bytes(8, "little")


@pytest.mark.parametrize("use_ni", [True, False])  # the SHA instructions two rows at a time / OpenSSL
def test_writer_leaves_are_the_documented_bytes_and_verify_recomputes_them_from_the_file(lib, use_ni):
    t = _edges()
    leaves, decoded, consts = _write(t, use_ni)
    assert consts == {"step": "mapped", "load_id": "L1", "source_system": None, "stream": None, "source_key": None,
                      "position": None, "payload_hash": None, "spec_id": "s", "spec_version": "v1", "reason": None,
                      "destination": None, "entity": "lead"}
    assert sorted(decoded) == ["input_record_id", "record_id", "subject"]
    f = _as_file(t, decoded, consts)
    assert f.column_names == ["record_id", "input_record_id", "rules", "target_key", "subject", "at"]
    assert leaf2.read_meta(f.schema.metadata) == consts
    assert f.schema.field("record_id").type == pa.binary(16) and f.schema.field("subject").type == pa.binary(32)
    expected = leaf2.reference_leaves(f, consts)
    assert np.array_equal(leaves, expected)
    assert np.array_equal(leaf2.file_leaves(f, consts, use_ni=use_ni), expected)
    assert sf.from_file(f).select(t.column_names).cast(sf.read(sf.write(t)).schema).equals(sf.read(sf.write(t)))


def test_one_leaf_by_hand():
    t = conform(build(1, "received", record_id=pa.array(["00ff"]), source_key=pa.array(["k"]), load_id="L", at=AT))
    leaves, decoded, consts = _write(t)
    assert list(consts) == [n for n in t.column_names if n != "record_id"]  # one row: all else is constant
    assert list(decoded) == ["record_id"]
    head = b"\x00" + b"v\x08received" + b"v\x01L" + b"n" * 3 + b"v\x01k" + b"n" * 10 + AT_BYTES
    assert leaves[0].tobytes() == hashlib.sha256(head + bytes(-len(head) % 64) + b"v\x00\xff").digest()


def test_ids_as_bytes_and_text_after_the_padded_constants_by_hand():
    t = conform(build(2, "loaded", record_id=pa.array(["00ff", "0a0b"]), load_id="L", destination="crm",
                      target_key=pa.array(["1", "22"]), at=AT))
    leaves, decoded, consts = _write(t)
    assert "target_key" not in consts and list(decoded) == ["record_id"]
    head = b"\x00" + b"v\x06loaded" + b"v\x01L" + b"n" * 10 + b"v\x03crm" + b"n" * 2 + AT_BYTES
    head += bytes(-len(head) % 64)
    assert leaves[1].tobytes() == hashlib.sha256(head + b"v\x0a\x0b" + b"v\x0222").digest()


def test_two_threads_over_a_large_segment_give_the_same_leaves(lib):
    small = _edges(1000)
    t = conform(concat([small] * (leaf2.SPLIT // small.num_rows + 1)))
    leaves, decoded, consts = _write(t)
    f = _as_file(t, decoded, consts)
    one = np.empty_like(leaves)
    leaf2._run(lib, f.combine_chunks(), one, leaf2.head(consts), {})  # one big batch, halved
    assert np.array_equal(leaves, one)
    sample = np.arange(0, t.num_rows, 997)
    assert np.array_equal(leaves[sample], leaf2.reference_leaves(f.take(sample), consts))


@pytest.mark.parametrize("bad", ["ABCD" * 8, "0" * 31 + "g", "0" * 30])
def test_an_id_column_that_is_not_hex_of_one_width_is_hashed_and_written_as_text(lib, bad):
    n = 50
    vals = [f"{i:032x}" for i in range(n)]
    vals[37] = bad
    t = conform(build(n, "received", record_id=pa.array(vals), source_key=pa.array([str(i) for i in range(n)])))
    leaves, decoded, consts = _write(t)
    assert "record_id" not in decoded
    f = _as_file(t, decoded, consts)
    assert f.schema.field("record_id").type == pa.string()
    assert np.array_equal(leaves, leaf2.reference_leaves(f, consts))


def _raw(store, seg) -> pa.Table:
    return pq.read_table(io.BytesIO(store.blobs.get(seg["file"])))


def _put_raw(store, seg, table: pa.Table) -> None:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    store.blobs.put(seg["file"], buf.getvalue())


def test_the_store_writes_format_2_files_without_their_constants_and_reads_them_whole(store):
    run_pipeline(store, "L1")
    for seg in store.segments():
        raw = _raw(store, seg)
        consts = leaf2.read_meta(raw.schema.metadata)
        assert consts["load_id"] == "L1"
        assert not set(consts) & set(raw.column_names) and "record_id" in raw.column_names
        back = store.read_segment(seg)
        assert back.schema.equals(EDGE_SCHEMA) and back.column("load_id").to_pylist() == ["L1"] * seg["rows"]
    assert verify(store).ok


def test_a_constant_altered_in_the_metadata_is_detected_and_a_value_altered_in_a_row_is_named(store):
    run_pipeline(store, "L1")
    seg = store.segments()[0]
    raw = _raw(store, seg)
    consts = leaf2.read_meta(raw.schema.metadata)
    _put_raw(store, seg, raw.replace_schema_metadata(leaf2.meta({**consts, "load_id": "L9"})))
    p = verify(store).problems[0]
    assert (p.seq, p.row) == (1, 0) and "altered" in p.message
    i = raw.schema.get_field_index("source_key")
    vals = raw.column(i).to_pylist()
    vals[2] = "99"
    _put_raw(store, seg, raw.set_column(i, "source_key", pa.array(vals)))
    p = verify(store).problems[0]
    assert (p.seq, p.row) == (1, 2) and "altered" in p.message


@pytest.mark.parametrize("change", ["no metadata", "unknown format", "a constant back as a column", "bad value"])
def test_a_changed_or_removed_format_in_the_file_is_detected(store, change):
    run_pipeline(store, "L1")
    seg = store.segments()[1]
    raw = _raw(store, seg)
    consts = leaf2.read_meta(raw.schema.metadata)
    if change == "no metadata":
        raw = raw.replace_schema_metadata(None)
    elif change == "unknown format":
        raw = raw.replace_schema_metadata({leaf2.META_KEY: b'{"format": 3, "constants": {}}'})
    elif change == "a constant back as a column":
        raw = raw.append_column("step", pa.array(["mapped"] * raw.num_rows))
    else:
        raw = raw.replace_schema_metadata(leaf2.meta({**consts, "load_id": 7}))
    _put_raw(store, seg, raw)
    p = verify(store).problems[0]
    assert p.seq == 2 and ("does not match" in p.message or "unreadable" in p.message)


def test_without_the_c_loop_segments_are_format_1_and_format_2_ones_still_verify(store, monkeypatch):
    run_pipeline(store, "L1")  # format 2
    with monkeypatch.context() as m:
        m.setattr(native, "load", lambda: None)  # a machine without gcc: DuckDB leaves, format 1
        run_pipeline(store, "L2")
        assert verify(store).ok  # format 2 recomputed by the plain-Python reference
    kinds = [leaf2.read_meta(_raw(store, s).schema.metadata) is None for s in store.segments()]
    assert kinds == [False] * 3 + [True] * 3
    assert verify(store).ok  # and with the C loop again
    for seg in store.segments():  # both ways give the same leaves
        with monkeypatch.context() as m:
            m.setattr(native, "load", lambda: None)
            slow = segment_leaves(store, seg)
        assert np.array_equal(segment_leaves(store, seg), slow)
