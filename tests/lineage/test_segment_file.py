"""The segment file stores hex id columns as bytes (docs/adr/0107) and gives back exactly the edge text:
round trips over nulls, offsets, chunks, non-hex values; the C and numpy paths agree; tampering with a
binary id in the file is still found by verify; files written as text (before 0107) still read."""

from __future__ import annotations

import io
import secrets

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lineage import leaf2
from lineage import segment_file as sf
from lineage.edges import EDGE_SCHEMA, build, plain
from lineage.merkle import leaf_hashes
from lineage.verify import verify

from lineage_pipeline import run_pipeline


def _hex(n: int, width: int = 32, nulls: int = 0) -> list[str | None]:
    vals = [secrets.token_hex(width // 2) for _ in range(n)]
    for i in range(0, n, nulls or n + 1):
        vals[i] = None
    return vals


def _edges() -> pa.Table:
    n = 1000
    a = build(n, "received", load_id="L1", record_id=pa.array(_hex(n)), payload_hash=pa.array(_hex(n, 64)),
              source_key=pa.array([str(i) for i in range(n)]))
    b = build(n, "mapped", load_id="L1", record_id=pa.array(_hex(n)), input_record_id=pa.array(_hex(n, nulls=7)),
              subject=pa.array(_hex(n, 64, nulls=3)), target_key=pa.array([f"K{i}" for i in range(n)]))
    return pa.concat_tables([a.slice(3, 600), b.slice(1), a.slice(900)])  # chunks with array offsets


def _file_types(data: bytes) -> dict[str, pa.DataType]:
    return {f.name: f.type for f in pq.read_schema(io.BytesIO(data))}


def test_hex_id_columns_are_bytes_in_the_file_and_text_again_when_read():
    e = _edges()
    data = sf.write(e)
    types = _file_types(data)
    assert types["record_id"] == pa.binary(16) and types["input_record_id"] == pa.binary(16)
    assert types["payload_hash"] == pa.binary(32) and types["subject"] == pa.binary(32)
    assert types["source_key"] == pa.string() and types["target_key"] == pa.string()
    back = sf.read(data)
    assert back.schema.equals(EDGE_SCHEMA)
    assert back.to_pylist() == e.to_pylist()
    assert np.array_equal(leaf_hashes(back), leaf_hashes(e))


@pytest.mark.parametrize("values", [
    ["r1", "r2"],  # not hex
    ["ABCD", "abcd"],  # upper case would not come back as written
    ["abcd", "abcdef"],  # widths differ
    ["abc", "def"],  # odd width
    ["", ""],  # empty text
    ["abcd", "abcg"],  # one character off
])
def test_values_that_are_not_uniform_lower_case_hex_stay_text(values):
    e = build(2, "received", record_id=pa.array(values), load_id="L")
    data = sf.write(e)
    assert _file_types(data)["record_id"] == pa.string()
    assert sf.read(data).column("record_id").to_pylist() == values


def test_widths_that_differ_between_chunks_stay_text():
    e = pa.concat_tables([build(1, "received", record_id=pa.array(["ab"])),
                          build(1, "received", record_id=pa.array(["abcd"])),
                          build(2, "received")])  # an all-null chunk too
    data = sf.write(e)
    assert _file_types(data)["record_id"] == pa.string()
    assert sf.read(data).column("record_id").to_pylist() == ["ab", "abcd", None, None]


def test_all_null_chunks_beside_hex_chunks_and_all_null_columns():
    e = pa.concat_tables([build(3, "received", record_id=pa.array(_hex(3))), build(2, "loaded")])
    data = sf.write(e)
    types = _file_types(data)
    assert types["record_id"] == pa.binary(16) and types["subject"] == pa.string()  # nothing to gain when all null
    assert sf.read(data).to_pylist() == e.to_pylist()


def test_null_slots_padded_with_characters_are_encoded_too():
    """Text decoded from a file keeps the null slots' characters; encoding it again must give the same."""
    e = build(4, "mapped", record_id=pa.array(_hex(4, nulls=2)))
    again = sf.from_file(sf.to_file(e))
    assert again.column("record_id").null_count == 2
    assert sf.read(sf.write(again)).to_pylist() == e.to_pylist()


def test_empty_table_round_trips():
    e = EDGE_SCHEMA.empty_table()
    assert sf.read(sf.write(e)).num_rows == 0


def test_c_and_numpy_paths_agree(monkeypatch):
    from lineage import native

    assert native.load() is not None, "the C loop must build on this machine"
    e = _edges()
    with_c = sf.write(e)
    monkeypatch.setattr(sf.native, "load", lambda: None)
    without = sf.write(e)
    assert sf.read(with_c).equals(sf.read(without))
    assert pq.read_table(io.BytesIO(with_c)).equals(pq.read_table(io.BytesIO(without)))
    assert sf.read(without).to_pylist() == e.to_pylist()
    assert sf.hex_to_binary(pa.array(["abcg"])) is None  # the numpy check finds a bad character too


def test_c_decoder_names_the_first_bad_pair():
    from lineage import native

    lib = native.load()
    src = np.frombuffer(b"00ff10zz", np.uint8)
    out = np.empty(4, np.uint8)
    assert lib.hex_decode(src.ctypes.data, 4, out.ctypes.data) == 3
    assert lib.hex_decode(src.ctypes.data, 3, out.ctypes.data) == -1 and out[:3].tolist() == [0, 255, 16]


# -- tamper evidence on the binary columns -----------------------------------------------------------------

def _rewrite_file(store, seq: int, change) -> None:
    seg = store.segments()[seq - 1]
    t = pq.read_table(io.BytesIO(store.blobs.get(seg["file"])))  # the file as stored: binary ids
    buf = io.BytesIO()
    pq.write_table(change(t), buf)
    store.blobs.put(seg["file"], buf.getvalue())


def test_altered_binary_record_id_is_named(store):
    run_pipeline(store, "L1")
    seg = store.segments()[0]
    stored = pq.read_table(io.BytesIO(store.blobs.get(seg["file"])))
    assert pa.types.is_fixed_size_binary(stored.schema.field("record_id").type)

    def flip(t: pa.Table) -> pa.Table:
        ids = t.column("record_id").to_pylist()
        ids[3] = bytes([ids[3][0] ^ 1]) + ids[3][1:]
        i = t.schema.get_field_index("record_id")
        return t.set_column(i, "record_id", pa.array(ids, t.schema.field(i).type))

    _rewrite_file(store, 1, flip)
    p = verify(store).problems[0]
    assert (p.seq, p.row) == (1, 3) and "altered" in p.message


def test_binary_ids_swapped_between_rows_are_named(store):
    run_pipeline(store, "L1")

    def swap(t: pa.Table) -> pa.Table:
        i = t.schema.get_field_index("record_id")
        return t.set_column(i, "record_id", t.column(i).take([1, 0, 2, 3, 4]))

    _rewrite_file(store, 1, swap)
    p = verify(store).problems[0]
    assert (p.seq, p.row) == (1, 0)


def test_a_segment_written_as_text_before_0107_still_verifies_and_queries(store, monkeypatch):
    from lineage.query import trace

    with monkeypatch.context() as m:
        m.setattr(sf, "to_file", lambda edges, decoded=None, leaf_prefix=None: plain(edges))  # before 0107: all text
        m.setattr(leaf2, "hash_and_decode", lambda *a: None)  # and leaf format 1 (ADR 0114 came later)
        run_pipeline(store, "L1")
    for seg in store.segments():
        assert _file_types(store.blobs.get(seg["file"]))["record_id"] == pa.string()
    run_pipeline(store, "L2")  # new segments beside the old ones
    assert _file_types(store.blobs.get(store.segments()[-1]["file"]))["record_id"] == pa.binary(16)
    assert verify(store).ok
    assert trace(store, "lead:WEB-2")["chains"][0]["source"]["source_key"] == "2"


def test_constant_columns_are_dictionaries_in_a_format_1_file_and_an_altered_one_is_named(store, monkeypatch):
    with monkeypatch.context() as m:  # format 2 keeps constants out of the file (tests/lineage/test_leaf2.py)
        m.setattr(leaf2, "hash_and_decode", lambda *a: None)
        run_pipeline(store, "L1")
    seg = store.segments()[0]
    stored = pq.read_table(io.BytesIO(store.blobs.get(seg["file"])))
    assert pa.types.is_dictionary(stored.schema.field("step").type)  # docs/adr/0110
    assert store.read_segment(seg).schema.equals(EDGE_SCHEMA)  # read back as plain text

    def alter(t: pa.Table) -> pa.Table:
        i = t.schema.get_field_index("load_id")
        vals = t.column(i).to_pylist()
        vals[2] = "L2"
        return t.set_column(i, "load_id", pa.array(vals).dictionary_encode())

    _rewrite_file(store, 1, alter)
    p = verify(store).problems[0]
    assert (p.seq, p.row) == (1, 2) and "altered" in p.message


def test_segment_file_goes_straight_to_disk_and_to_s3_the_same(tmp_path):
    from lineage.blobs import LocalBlobs

    e = _edges()
    blobs = LocalBlobs(tmp_path)
    size = blobs.put_with("s.parquet", lambda sink: sf.write(e, sink=sink))
    assert size == blobs.size("s.parquet") and not list(tmp_path.glob(".*tmp*"))
    assert blobs.get("s.parquet") == sf.write(e).to_pybytes()
    assert sf.read(blobs.get("s.parquet")).to_pylist() == e.to_pylist()


def test_a_segment_written_before_0110_without_dictionaries_still_verifies_and_queries(store, monkeypatch):
    from lineage.query import trace

    to_file = sf.to_file
    with monkeypatch.context() as m:  # the 0107 writer: binary ids, every other column plain text
        m.setattr(sf, "to_file", lambda edges, decoded=None, leaf_prefix=None: to_file(plain(edges)))
        m.setattr(leaf2, "hash_and_decode", lambda *a: None)  # and leaf format 1 (ADR 0114 came later)
        run_pipeline(store, "L1")
    for seg in store.segments():
        types = _file_types(store.blobs.get(seg["file"]))
        assert types["step"] == pa.string() and types["record_id"] == pa.binary(16)
    run_pipeline(store, "L2")
    assert "step" not in _file_types(store.blobs.get(store.segments()[-1]["file"]))  # a constant (ADR 0114)
    assert verify(store).ok
    assert trace(store, "lead:WEB-2")["chains"][0]["source"]["source_key"] == "2"
