"""The store: a run writes chained segments, the spec text once, pending until commit."""

from __future__ import annotations

import pyarrow as pa

from lineage.ledger import GENESIS
from lineage.merkle import chain

from lineage_pipeline import ROWS, Spec, run_pipeline


def test_run_writes_one_segment_per_step_chained(ran):
    segs = ran.segments()
    assert [s["seq"] for s in segs] == [1, 2, 3]
    assert [s["rows"] for s in segs] == [5, 5, 3]  # received 5; mapped 3 + quarantined 1 + filtered 1; loaded 3
    assert all(s["state"] == "committed" for s in segs)
    prev = GENESIS
    for s in segs:
        assert s["prev_root"] == prev
        assert s["chained_root"] == chain(bytes.fromhex(prev), bytes.fromhex(s["merkle_root"])).hex()
        prev = s["chained_root"]


def test_edges_reconcile_with_counts(ran):
    steps = pa.concat_tables([ran.read_segment(s) for s in ran.segments()]).column("step").to_pylist()
    assert steps.count("received") == len(ROWS)
    assert steps.count("mapped") + steps.count("quarantined") + steps.count("filtered") == len(ROWS)
    assert steps.count("loaded") == steps.count("mapped") == 3


def test_spec_version_text_is_stored_once(store):
    run_pipeline(store, "L1")
    run_pipeline(store, "L2")
    with store.ledger.tx() as cur:
        cur.execute("SELECT count(*) FROM specs")
        assert cur.fetchone()[0] == 1
    assert store.spec_text(Spec.id, Spec.version_hash) == Spec.normalized


def test_segments_stay_pending_until_commit(store):
    run_pipeline(store, "L1", stop_after="loaded")
    assert {s["state"] for s in store.segments()} == {"pending"}
    store.commit("L1")
    assert {s["state"] for s in store.segments()} == {"committed"}


def test_edges_hold_no_raw_personal_data(ran):
    edges = pa.concat_tables([ran.read_segment(s) for s in ran.segments()])
    text = repr(edges.to_pylist())
    for row in ROWS:
        assert row["contact_email"].strip().lower() not in text.lower()
        assert row["name"] not in text
