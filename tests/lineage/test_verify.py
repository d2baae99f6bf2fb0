"""Tamper evidence: verify passes on an honest store and names the first segment and row otherwise."""

from __future__ import annotations

import io
import shutil

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from lineage.verify import verify

from lineage_pipeline import run_pipeline


def _rewrite(store, seq: int, change) -> None:
    seg = store.segments()[seq - 1]
    t = pq.read_table(io.BytesIO(store.blobs.get(seg["file"])))
    buf = io.BytesIO()
    pq.write_table(change(t), buf)
    store.blobs.put(seg["file"], buf.getvalue())


def _set(t: pa.Table, col: str, row: int, value) -> pa.Table:
    vals = t.column(col).to_pylist()
    vals[row] = value
    return t.set_column(t.schema.get_field_index(col), col, pa.array(vals, t.schema.field(col).type))


@pytest.fixture
def two_runs(store):
    run_pipeline(store, "L1")
    run_pipeline(store, "L2")
    return store


def test_honest_store_verifies(two_runs):
    r = verify(two_runs)
    assert r.ok and r.segments == 6 and r.edges == 26
    assert r.head == two_runs.segments()[-1]["chained_root"]


def test_altered_edge_is_named(two_runs):
    _rewrite(two_runs, 4, lambda t: _set(t, "source_key", 2, "99"))
    p = verify(two_runs).problems[0]
    assert (p.seq, p.row) == (4, 2) and "altered" in p.message


def test_deleted_edge_is_named(two_runs):
    _rewrite(two_runs, 2, lambda t: t.filter(pc.not_equal(pa.array(range(t.num_rows)), 1)))
    p = verify(two_runs).problems[0]
    assert (p.seq, p.row) == (2, 1) and "4 rows, ledger says 5" in p.message


def test_reordered_edges_are_named(two_runs):
    _rewrite(two_runs, 1, lambda t: t.take([0, 1, 3, 2, 4]))
    p = verify(two_runs).problems[0]
    assert (p.seq, p.row) == (1, 2)


def test_deleted_segment_file_is_named(two_runs):
    seg = two_runs.segments()[4]
    two_runs.blobs.path(seg["file"]).unlink()
    p = verify(two_runs).problems[0]
    assert p.seq == 5 and "missing" in p.message and seg["file"] in str(p)


def test_replaced_segment_file_is_named(two_runs):
    a, b = two_runs.segments()[0], two_runs.segments()[3]  # both received segments, same shape
    shutil.copy(two_runs.blobs.path(a["file"]), two_runs.blobs.path(b["file"]))
    p = verify(two_runs).problems[0]
    assert p.seq == 4 and p.row == 0


def test_segment_removed_from_the_ledger_breaks_the_chain(two_runs):
    with two_runs.ledger.tx(lock=True) as cur:
        cur.execute("DELETE FROM segments WHERE seq = 3")
    p = verify(two_runs).problems[0]
    assert p.seq == 4 and "gap" in p.message


def test_rewritten_root_breaks_the_chain(two_runs):
    """Someone rewrites a segment and its Merkle root in the ledger: the chained root no longer fits."""
    _rewrite(two_runs, 2, lambda t: _set(t, "reason", 0, "x"))
    from lineage.merkle import root_of
    from lineage.verify import segment_leaves

    seg = two_runs.segments()[1]
    new_root = root_of(segment_leaves(two_runs, seg)).hex()
    with two_runs.ledger.tx(lock=True) as cur:
        cur.execute("UPDATE segments SET merkle_root = ? WHERE seq = 2", [new_root])
    p = verify(two_runs).problems[0]
    assert p.seq == 2 and "chain broken" in p.message


def test_leaf_file_altered_with_the_segment_still_names_the_segment(two_runs):
    seg = two_runs.segments()[0]
    _rewrite(two_runs, 1, lambda t: _set(t, "source_key", 0, "7"))
    two_runs.blobs.put(seg["file"] + ".leaves", b"\0" * 32 * seg["rows"])
    p = verify(two_runs).problems[0]
    assert p.seq == 1 and p.row is None and "leaf file" in p.message


def test_unreadable_segment_is_named(two_runs):
    seg = two_runs.segments()[2]
    two_runs.blobs.put(seg["file"], b"not parquet")
    p = verify(two_runs).problems[0]
    assert p.seq == 3 and "unreadable" in p.message


def _old_style(store, seg) -> None:
    """Replace a segment's .leaves file by its whole leaves (the format before ADR 0113), ledger updated."""
    import hashlib

    from lineage.verify import segment_leaves

    data = segment_leaves(store, seg).tobytes()
    store.blobs.put(seg["file"] + ".leaves", data)
    with store.ledger.tx(lock=True) as cur:
        cur.execute("UPDATE segments SET leaves_sha256 = ? WHERE seq = ?", [hashlib.sha256(data).hexdigest(), seg["seq"]])


def test_leaf_files_keep_a_prefix_and_older_whole_leaf_files_still_name_the_row(two_runs):
    """ADR 0113: a new segment's .leaves file holds 4 bytes per edge; a segment written before it (32 bytes
    per edge, its sha256 in the ledger) is read as it is; both name the altered row."""
    first, second = two_runs.segments()[:2]
    assert two_runs.blobs.size(first["file"] + ".leaves") == 4 * first["rows"]
    _old_style(two_runs, second)
    assert two_runs.blobs.size(second["file"] + ".leaves") == 32 * second["rows"] and verify(two_runs).ok
    _rewrite(two_runs, 2, lambda t: _set(t, "target_key", 1, "7"))
    p = verify(two_runs).problems[0]
    assert (p.seq, p.row) == (2, 1)
    _rewrite(two_runs, 1, lambda t: _set(t, "source_key", 0, "7"))
    p = verify(two_runs).problems[0]
    assert (p.seq, p.row) == (1, 0)
