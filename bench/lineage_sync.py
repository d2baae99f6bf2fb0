"""The lineage work of an ERP sync, alone (issue 3): the segments ``bench/sync.py``'s weftline part writes,
without the database, the map or the load beside them, so their CPU can be read without the run's noise.

    .venv/bin/python bench/lineage_sync.py [--rows 1000000] [--rounds 3] [--url postgresql://…]

Seeds ``wl_bench_<pid>.orders`` as bench/sync.py does, reads it with ErpSqlSource in 50 k-row batches,
stamps and maps each batch with ``mappings/erp_order_to_account.yaml`` (kept in memory; schema dropped
after), then per round opens a fresh embedded store and writes what a sync's ``LoadSession`` writes on
its capture thread: per part a ``received`` and a ``mapped`` segment, at the end one ``loaded`` segment
per target (every ``account_order`` row; the last row per key of ``account``). Prints wall and process
CPU seconds per round (every thread: the capture thread and the segment writers).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402


def _sync_bench():
    spec = importlib.util.spec_from_file_location("bench_sync", REPO / "bench" / "sync.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _last_per_key(t: pa.Table) -> pa.Table:
    """The rows an upsert leaves: the last one of each target key, in the order they came (what the staged
    load keeps: connectors/crm/postgres_parts.py drops the rows a later one replaced)."""
    idx = pa.table({"k": t["target_key"], "i": pa.array(np.arange(t.num_rows))})
    last = idx.group_by("k", use_threads=False).aggregate([("i", "max")])["i_max"]
    return t.take(np.sort(last.to_numpy()))


def prepare(url: str, rows: int) -> tuple:
    """(parts, written, spec): each part's stamped rows and MapResult, and each target's loaded rows."""
    from connectors.base.home import Home
    from connectors.base.identity import key_text, with_load_id
    from connectors.erp_sql.source import ErpSqlSource
    from weftline.runner import compile_file, new_load_id, stamp_batch

    sync = _sync_bench()
    schema = f"wl_bench_{os.getpid()}"
    home = Home(tempfile.mkdtemp())
    plan = compile_file(REPO / "mappings" / "erp_order_to_account.yaml", home)
    load_id = new_load_id()
    try:
        sync._seed(url, schema, rows)
        src = ErpSqlSource({"url": url, "schema": schema, "reconcile_every": 0, "batch_size": 50_000}, home)
        parts = []
        for b in src.read("orders", {}):
            if b.table.num_rows:
                landed = with_load_id(stamp_batch(b.table, "erp_sql", "orders", ""), load_id)
                parts.append((landed, plan.apply(landed, load_id=load_id)))
    finally:
        sync.drop_schemas(url, schema)
    written = {}
    for target in plan.targets:
        t = pa.concat_tables([o.table for _, r in parts for o in r.outputs if o.entity == target.entity])
        t = pa.table({"target_key": key_text(t, list(target.key)), "_wl_record_id": t["_wl_record_id"],
                      "_wl_subject": t["_wl_subject"]})
        written[target.entity] = t if target.write != "upsert" else _last_per_key(t)
    return parts, written, plan.spec, load_id


def one_round(parts, written, spec, load_id: str) -> dict:
    from connectors.base.home import Home
    from lineage import open_store
    from lineage.capture import Capture

    with tempfile.TemporaryDirectory() as d:
        store = open_store(Home(d))
        t, c = time.perf_counter(), time.process_time()
        store.recover()
        store.begin(load_id, "postgres")
        with Capture(store, load_id) as cap:
            for landed, result in parts:
                cap.wait(6)  # weftline.loads.MAX_QUEUED
                cap.received(landed)
                cap.mapped(spec, result)
            for entity, table in written.items():
                cap.loaded_pending("postgres", entity, table)
            cap.durable()
        store.commit(load_id)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        segs = store.segments()
        store.close()
    return {"wall": wall, "cpu": cpu, "edges": sum(s["rows"] for s in segs), "segments": len(segs),
            "mb": sum(s["bytes"] for s in segs) / 1e6}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--url", default=os.environ.get("WEFTLINE_BENCH_PG_URL", "postgresql://postgres:x@127.0.0.1:5432/test"))
    args = ap.parse_args()
    parts, written, spec, load_id = prepare(args.url, args.rows)
    print(f"{args.rows:,} ERP orders: {len(parts)} parts, loaded rows {', '.join(f'{e} {t.num_rows:,}' for e, t in written.items())}")
    for i in range(args.rounds):
        r = one_round(parts, written, spec, load_id)
        print(f"round {i + 1}: {r['edges']:,} edges in {r['segments']} segments ({r['mb']:.0f} MB): "
              f"wall {r['wall']:.2f} s, CPU {r['cpu']:.2f} s", flush=True)


if __name__ == "__main__":
    main()
