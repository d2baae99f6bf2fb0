"""CRM load into PostgreSQL: weftline's fast path vs its dlt path vs a bare ADBC ingest vs bare dlt.

All in one run, on the same Arrow table (N mapped leads with the reserved ``_wl_*``
columns), each into its own fresh schema of the local PostgreSQL:

- adbc ingest    — ``adbc_ingest`` into a new table (the Arrow-native floor; no upsert)
- fast 1st       — ``Destination.load(upsert)`` on the fast path into a new table: the process's
                   first dlt use (imports, config) + dlt DDL + checks + COPY
- fast warm      — the same into a table that exists (empty): what every later run pays
- fast again     — the same batch again: every key conflicts (staging + MERGE)
- fast 10 %      — a 10 % batch of updates into the full table (staging + MERGE)
- dlt path 1st   — ``Destination.load(upsert)`` with ``fast_path=false`` (dlt merge)
- bare dlt       — ``dlt.pipeline(...).run(table)`` append into postgres (no checks, no upsert)

Usage: ``.venv/bin/python bench/crm_load.py [N] [postgresql URL]``
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
import uuid

import adbc_driver_postgresql.dbapi as adbc
import dlt
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectors.base.home import Home
from connectors.crm import open_destination

URL = "postgresql://postgres:x@127.0.0.1:5432/test"


def leads(n: int, load_id: str) -> pa.Table:
    rng = np.random.default_rng(7)
    idx = pa.array(np.arange(n))
    ext = pc.binary_join_element_wise("WEB-", idx.cast(pa.string()), "")
    return pa.table({
        "external_id": ext,
        "email": pc.binary_join_element_wise("user", idx.cast(pa.string()), "@example.org", ""),
        "priority": pa.array(np.array(["high", "medium", "low"])[np.arange(n) % 3]),
        "score": pa.array(rng.random(n) * 10),
        "revenue": pa.array(rng.integers(0, 100_000, n)),
        "_wl_record_id": pc.utf8_slice_codeunits(pc.binary_join_element_wise("r", ext, "0" * 32, ""), 0, 32),
        "_wl_input_record_id": pc.binary_join_element_wise("i", ext, ""),
        "_wl_spec_id": pa.repeat(pa.scalar("web_activity_to_lead"), n),
        "_wl_spec_version": pa.repeat(pa.scalar("13a7ca791155d2c8"), n),
        "_wl_rules": pa.array(np.arange(n) % 8),
        "_wl_subject": pc.binary_join_element_wise("s", ext, ""),
        "_wl_load_id": pa.repeat(pa.scalar(load_id), n),
    })


def timed(label: str, fn, results: dict[str, float]) -> None:
    t0 = time.perf_counter()
    fn()
    results[label] = time.perf_counter() - t0
    print(f"{label:14s} {results[label]:7.2f} s", flush=True)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    url = sys.argv[2] if len(sys.argv) > 2 else URL
    table = leads(n, "L1")
    tenth = leads(n // 10, "L2")
    home = Home(tempfile.mkdtemp(prefix="wl-bench-"))
    schemas = {k: f"wl_bench_{k}_{uuid.uuid4().hex[:6]}" for k in ("adbc", "fast", "warm", "dltpath", "bare")}
    results: dict[str, float] = {}
    print(f"{n} rows, {table.num_columns} columns, {table.nbytes / 1e6:.0f} MB of Arrow")
    with adbc.connect(url) as con, con.cursor() as cur:
        cur.execute(f'CREATE SCHEMA "{schemas["adbc"]}"')
        con.commit()

        def ingest() -> None:
            cur.adbc_ingest("lead", table, mode="create", db_schema_name=schemas["adbc"])
            con.commit()

        timed("adbc ingest", ingest, results)
    fast = open_destination(home, f"{url}?schema={schemas['fast']}")
    via_dlt = open_destination(home, f"{url}?schema={schemas['dltpath']}&fast_path=false")
    timed("fast 1st", lambda: fast.load("lead", table, ["external_id"], "upsert", "L1"), results)
    warm = open_destination(home, f"{url}?schema={schemas['warm']}")
    warm.load("lead", table.slice(0, 0), ["external_id"], "upsert", "L0")  # the table, no rows
    timed("fast warm", lambda: warm.load("lead", table, ["external_id"], "upsert", "L1"), results)
    timed("fast again", lambda: fast.load("lead", table, ["external_id"], "upsert", "L1"), results)
    timed("fast 10 %", lambda: fast.load("lead", tenth, ["external_id"], "upsert", "L2"), results)
    timed("dlt path 1st", lambda: via_dlt.load("lead", table, ["external_id"], "upsert", "L1"), results)
    bare = dlt.pipeline(pipeline_name=f"wl_bench_bare_{uuid.uuid4().hex[:6]}", pipelines_dir=str(home.root / "dlt"),
                        destination=dlt.destinations.postgres(url), dataset_name=schemas["bare"], progress=None)
    timed("bare dlt", lambda: bare.run(table, table_name="lead"), results)
    with adbc.connect(url) as con, con.cursor() as cur:
        for s in schemas.values():
            cur.execute(f'DROP SCHEMA IF EXISTS "{s}" CASCADE')
            cur.execute(f'DROP SCHEMA IF EXISTS "{s}_staging" CASCADE')
        con.commit()
    a, f = results["adbc ingest"], results["fast 1st"]
    print(f"fast 1st / adbc ingest   = {f / a:5.2f}x   (target <= 2)")
    w = results["fast warm"]
    print(f"fast warm / adbc ingest  = {w / a:5.2f}x")
    print(f"bare dlt / fast 1st      = {results['bare dlt'] / f:5.2f}x   (target >= 3)")
    print(f"bare dlt / fast warm     = {results['bare dlt'] / w:5.2f}x")
    print(f"dlt path / fast 1st      = {results['dlt path 1st'] / f:5.2f}x")
    print(f"fast 1st rows/s          = {n / f:,.0f}")
    print(f"peak RSS                 = {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
