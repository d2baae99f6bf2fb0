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


def test_kept_ledger_connections_keep_one_chain_with_other_writers(home):
    """A long-lived writer (the stream worker) keeps its ledger connection per thread (open_store(keep_open=True));
    interleaved with a store that connects per transaction, and from two threads, the chain stays one."""
    import threading

    import pyarrow as pa

    from connectors.base.identity import stamp
    from lineage.store import open_store
    from lineage.verify import verify

    kept, plain = open_store(home, keep_open=True), open_store(home)

    def one_load(store, lid):
        store.begin(lid)
        store.append_received(lid, stamp(pa.table({"id": [1, 2, 3]}), system="erp_sql", stream=lid, key=["id"],
                                         position=None, load_id=lid))
        store.commit(lid)

    for i in range(3):
        one_load(kept, f"k{i}")
        one_load(plain, f"p{i}")
    th = threading.Thread(target=lambda: [one_load(kept, f"t{i}") for i in range(3)])
    th.start()
    th.join()
    assert len(kept.ledger._all_kept) == 2  # this thread's and the other thread's connection
    kept.close()
    one_load(kept, "after-close")  # opens a new one
    segs = open_store(home).segments()
    assert [s["seq"] for s in segs] == list(range(1, 11)) and {s["state"] for s in segs} == {"committed"}
    r = verify(open_store(home))
    assert r.ok, r.problems
    kept.close()


def test_a_deferred_begin_is_recorded_with_the_first_segment(home):
    """begin(defer=True): the pending load goes into the ledger in the first segment's transaction (one commit
    less); ensure_begun records it when nothing was appended; either way recovery sees a pending load."""
    import pyarrow as pa

    from connectors.base.identity import stamp
    from lineage.store import open_store

    store = open_store(home)
    landed = stamp(pa.table({"id": [1, 2]}), system="erp_sql", stream="orders", key=["id"], position=None, load_id="D1")
    store.begin("D1", "duckdb:crm", defer=True)
    assert store.ledger.loads() == []  # not yet written
    seg = store.append_received("D1", landed)
    loads = store.ledger.loads()
    assert [(l["load_id"], l["state"], l["destination"]) for l in loads] == [("D1", "pending", "duckdb:crm")]
    assert seg["state"] == "pending"
    store.ensure_begun("D1")  # already recorded: nothing changes
    # a crash here: the next run's recovery rolls the load back (nothing of it reached the destination)
    assert open_store(home).recover(loaded_ids=lambda entity, lid: []) == [("D1", "rolled_back")]

    store.begin("D2", "duckdb:crm", defer=True)
    store.ensure_begun("D2")  # no segment (an empty batch), but the destination load comes next
    assert [l["state"] for l in store.ledger.loads() if l["load_id"] == "D2"] == ["pending"]
    store.commit("D2")
    store.begin("D3", "duckdb:crm", defer=True)
    store.commit("D3")  # nothing appended, nothing loaded: recorded as it commits
    assert {l["load_id"]: l["state"] for l in store.ledger.loads()} == {"D1": "rolled_back", "D2": "committed",
                                                                        "D3": "committed"}
