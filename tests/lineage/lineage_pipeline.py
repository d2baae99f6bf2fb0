"""A small real run for the lineage tests (stamp → land → map → load → lineage).

The mapping step is built by hand from pyarrow kernels following the ``MapResult`` contract of
docs/architecture.md: a test double for the engine (transforms/), which is built in parallel.
Landing, the DuckDB destination, hashing and the lineage store are the real ones.
"""

from __future__ import annotations

import json
import os
import signal
from dataclasses import dataclass

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from connectors.base.hashing import hmac_sha256_hex, sha256_hex
from connectors.base.home import Home
from connectors.base.identity import key_text, stamp
from connectors.landing import land

SYSTEM, STREAM, ENTITY = "web_analytics", "form_submissions", "lead"
PRIORITY = {"A": "high", "B": "medium", "C": "low"}
SPEC_JSON = json.dumps({
    "mapping": "web_activity_to_lead", "version": 3,
    "source": {"connector": SYSTEM, "stream": STREAM},
    "target": {"entity": ENTITY, "key": ["external_id"], "write": "upsert"},
    "subject": "contact_email", "when": "level is not null",
    "purpose": "Lead management",
    "fields": {
        "external_id": {"expr": "'WEB-' || submission_id"},
        "email": {"from": "contact_email", "apply": ["trim", "lower"]},
        "priority": {"from": "level", "map": PRIORITY},
    },
}, sort_keys=True, separators=(",", ":"))

ROWS = [  # ann twice, bob once, one value outside the map (quarantined), one filtered by `when`
    {"submission_id": 1, "contact_email": "ann@example.org", "level": "A", "name": "Ann Lee"},
    {"submission_id": 2, "contact_email": "bob@example.org", "level": "B", "name": "Bob Ray"},
    {"submission_id": 3, "contact_email": "Ann@Example.org ", "level": "C", "name": "Ann Lee"},
    {"submission_id": 4, "contact_email": "cy@example.org", "level": "Z", "name": "Cy Fox"},
    {"submission_id": 5, "contact_email": "di@example.org", "level": None, "name": "Di Poe"},
]


@dataclass
class Spec:
    id: str = "web_activity_to_lead"
    version: int = 3
    version_hash: str = "1f2e3d4c5b6a7988"
    normalized: str = SPEC_JSON


from transforms.compile import MapResult, TargetOutput  # the engine's own result types  # noqa: E402


def map_rows(landed: pa.Table, spec: Spec, subject_key: bytes, load_id: str) -> MapResult:
    """The hand-built engine step (vectorised): filter, quarantine unmapped levels, map the rest."""
    level = landed.column("level")
    is_filtered = pc.is_null(level)
    known = pc.is_in(level, pa.array(list(PRIORITY)))
    bad = pc.and_(pc.invert(is_filtered), pc.invert(known))
    good = pc.and_(pc.invert(is_filtered), known)
    g = landed.filter(good)
    ext = pc.binary_join_element_wise("WEB-", g.column("submission_id").cast(pa.string()), "")
    email = pc.utf8_lower(pc.utf8_trim_whitespace(g.column("contact_email")))
    n = g.num_rows
    out = pa.table({"external_id": ext, "email": email,
                    "priority": pc.take(pa.array(list(PRIORITY.values())),
                                        pc.index_in(g.column("level"), pa.array(list(PRIORITY))))})
    tk = key_text(out, ["external_id"])
    reserved = {
        "_wl_record_id": sha256_hex([pa.array(["crm"] * n), pa.array([ENTITY] * n), tk, pa.nulls(n, pa.string())], 32),
        "_wl_input_record_id": g.column("_wl_record_id"),
        "_wl_spec_id": pa.array([spec.id] * n), "_wl_spec_version": pa.array([spec.version_hash] * n),
        "_wl_rules": pa.array([0b11] * n, pa.int64()),
        "_wl_subject": hmac_sha256_hex(email, subject_key), "_wl_load_id": pa.array([load_id] * n),
    }
    for k, v in reserved.items():
        out = out.append_column(k, v)
    q = landed.filter(bad)
    quarantine = pa.table({
        "_wl_record_id": q.column("_wl_record_id"), "row": pa.array(range(q.num_rows), pa.int64()),
        "target": pa.array([ENTITY] * q.num_rows), "field": pa.array(["priority"] * q.num_rows),
        "reason": pa.array(["value outside the map"] * q.num_rows),
        "code": pa.array(["map"] * q.num_rows), "rule": pa.array(["1"] * q.num_rows),
        "_wl_spec_id": pa.array([spec.id] * q.num_rows), "_wl_spec_version": pa.array([spec.version_hash] * q.num_rows),
    })
    f = landed.filter(is_filtered)
    filtered = pa.table({"_wl_record_id": f.column("_wl_record_id"), "target": pa.array([ENTITY] * f.num_rows),
                         "_wl_spec_id": pa.array([spec.id] * f.num_rows),
                         "_wl_spec_version": pa.array([spec.version_hash] * f.num_rows)})
    counts = {ENTITY: {"read": landed.num_rows, "mapped": n, "quarantined": q.num_rows, "filtered": f.num_rows}}
    return MapResult([TargetOutput(ENTITY, ["external_id"], "upsert", out)], quarantine, filtered, counts)


def load_duckdb(home: Home, entity: str, table: pa.Table, key: str) -> None:
    """Upsert into crm.<entity> of the embedded DuckDB destination (stands in for connectors/crm)."""
    con = duckdb.connect(str(home.crm_duckdb))
    try:
        con.execute("CREATE SCHEMA IF NOT EXISTS crm.crm")
        con.register("t", table)
        con.execute(f'CREATE TABLE IF NOT EXISTS crm.crm."{entity}" AS SELECT * FROM t LIMIT 0')
        con.execute(f'DELETE FROM crm.crm."{entity}" WHERE {key} IN (SELECT {key} FROM t)')
        con.execute(f'INSERT INTO crm.crm."{entity}" SELECT * FROM t')
    finally:
        con.close()


STEPS = ("begin", "received", "mapped", "destination", "loaded", "commit")


def run_pipeline(store, load_id: str, rows=ROWS, stop_after: str | None = None, die_after: str | None = None,
                 sigkill: bool = False, defer_begin: bool = False):
    """One run; ``die_after`` ends the process right after that step (``os._exit``, or SIGKILL).
    ``defer_begin``: begin as the stream worker's runner does (recorded with the first segment)."""
    home = store.home
    landed = stamp(pa.Table.from_pylist(rows), system=SYSTEM, stream=STREAM, key=["submission_id"],
                   position=None, load_id=load_id)
    land(landed, home, SYSTEM, STREAM, load_id)
    spec = Spec()
    result = map_rows(landed, spec, home.subject_key(), load_id)
    out = result.outputs[0].table
    actions = {
        "begin": lambda: store.begin(load_id, defer=defer_begin),
        "received": lambda: store.append_received(load_id, landed),
        "mapped": lambda: store.append_mapped(load_id, spec, result),
        "destination": lambda: (store.ensure_begun(load_id), load_duckdb(home, ENTITY, out, "external_id")),
        "loaded": lambda: store.append_loaded(load_id, "duckdb", ENTITY, out, key=["external_id"]),
        "commit": lambda: store.commit(load_id),
    }
    for step in STEPS:
        actions[step]()
        if step == die_after:
            if sigkill:
                os.kill(os.getpid(), signal.SIGKILL)
            os._exit(17)
        if step == stop_after:
            break
    return landed, result




def append_many(home_root: str, url: str | None, segments: str | None, schema: str, tag: str, n: int) -> None:
    """A worker process: append ``n`` small segments to a shared store (for the concurrency tests)."""
    from datetime import datetime, timezone

    from lineage.edges import build
    from lineage.store import open_store

    store = open_store(Home(home_root), url=url, segments=segments, schema=schema)
    for i in range(n):
        ids = pa.array([f"{tag}-{i}-{j}" for j in range(50)])
        store.append(f"{tag}-{i}", build(50, "received", record_id=ids, load_id=f"{tag}-{i}",
                                         source_system=tag, at=datetime.now(timezone.utc)))
