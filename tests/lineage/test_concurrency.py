"""Two processes appending at once keep one consistent chain (embedded store: SQLite BEGIN IMMEDIATE)."""

from __future__ import annotations

import multiprocessing as mp

from lineage.store import open_store
from lineage.verify import verify

from lineage_pipeline import append_many


def run_two_writers(home_root: str, url=None, segments=None, schema="weftline_lineage", n: int = 12) -> None:
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=append_many, args=(home_root, url, segments, schema, tag, n)) for tag in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(240)
    assert [p.exitcode for p in procs] == [0, 0]


def test_two_processes_append_one_consistent_chain(home):
    run_two_writers(str(home.root))
    store = open_store(home)
    segs = store.segments()
    assert [s["seq"] for s in segs] == list(range(1, 25))
    assert sorted(s["load_id"][0] for s in segs) == ["a"] * 12 + ["b"] * 12
    r = verify(store)
    assert r.ok, r.problems
    assert r.edges == 24 * 50
    assert store.index.lookup("record_id", ["a-11-49", "b-0-0"]).num_rows == 2
