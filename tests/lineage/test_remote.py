"""The many-workers store: ledger + index in the real PostgreSQL (own schema), segments on a local S3 server."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lineage.erase import erase_subject
from lineage.export.collect import collect_subject
from lineage.query import impact, trace
from lineage.store import open_store
from lineage.verify import verify

from lineage_pipeline import ROWS, STREAM, SYSTEM, run_pipeline
from test_concurrency import run_two_writers
from test_recovery import crash_run

pytestmark = pytest.mark.services


def test_run_trace_impact_export_on_postgres_and_s3(remote_store):
    run_pipeline(remote_store, "L1")
    assert remote_store.blobs.describe("x").startswith("s3://")
    assert [s["rows"] for s in remote_store.segments()] == [5, 5, 3]
    assert verify(remote_store).ok
    assert trace(remote_store, "lead:WEB-2")["chains"][0]["source"]["source_key"] == "2"
    assert impact(remote_store, f"{SYSTEM}.{STREAM}:1")["recipients"] == [{"destination": "duckdb", "entity": "lead"}]
    doc = collect_subject(remote_store, "bob@example.org")
    assert [r["source_key"] for r in doc["source_records"]] == ["2"]
    assert "ann@example.org" not in repr(doc).lower()


def test_tampered_s3_segment_is_named(remote_store):
    run_pipeline(remote_store, "L1")
    seg = remote_store.segments()[1]
    t = pq.read_table(io.BytesIO(remote_store.blobs.get(seg["file"])))
    buf = io.BytesIO()
    pq.write_table(t.take([1, 0, 2, 3, 4]), buf)
    remote_store.blobs.put(seg["file"], buf.getvalue())
    p = verify(remote_store).problems[0]
    assert (p.seq, p.row) == (2, 0)


def test_deleted_s3_segment_is_named(remote_store):
    run_pipeline(remote_store, "L1")
    seg = remote_store.segments()[0]
    b = remote_store.blobs
    b.client.delete_object(Bucket=b.bucket, Key=b._key(seg["file"]))
    p = verify(remote_store).problems[0]
    assert p.seq == 1 and "missing" in p.message
    r = trace(remote_store, "lead:WEB-1")
    assert r["warnings"] and seg["file"] in r["warnings"][0]


def test_erase_on_postgres_and_s3_keeps_verify_green(remote_store):
    run_pipeline(remote_store, "L1")
    out = erase_subject(remote_store, "ann@example.org")
    assert out["landing_rows"] == 2 and out["destination_rows"] == 2
    assert verify(remote_store).ok
    assert [s["step"] for s in collect_subject(remote_store, "ann@example.org")["steps"]].count("erased") == 4


def test_two_processes_append_one_chain_in_postgres(home, remote):
    url, segments, schema = remote
    run_two_writers(str(home.root), url, segments, schema, n=8)
    store = open_store(home, url=url, segments=segments, schema=schema)
    assert [s["seq"] for s in store.segments()] == list(range(1, 17))
    r = verify(store)
    assert r.ok and r.edges == 16 * 50


def test_kill_after_destination_then_recover_on_postgres(home, remote):
    url, segments, schema = remote
    args = f", url={url!r}, segments={segments!r}, schema={schema!r}"
    assert crash_run(home, "L1", "destination", store_args=args) == 17
    store = open_store(home, url=url, segments=segments, schema=schema)
    assert store.recover() == [("L1", "committed")]
    assert verify(store).ok
    assert trace(store, "lead:WEB-3")["chains"][0]["loads"][0]["load_id"] == "L1"
