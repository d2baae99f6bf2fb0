"""Capture from the real mapping engine (transforms/) and the real CRM destination (connectors/crm, DuckDB)
on the shipped web-form sample and spec; then recovery, export and erasure against that destination."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from connectors.base.identity import stamp
from connectors.landing import land
from lineage import collect_subject, impact, trace, verify
from transforms import compile_spec, load_spec

from connectors.crm import open_destination
from lineage import erase_subject

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "mappings/web_activity_to_lead.yaml"
SAMPLE = ROOT / "mappings/samples/web_form_submissions.jsonl"


def read_valid_lines(path: Path) -> list[dict]:
    """The sample's well-formed lines (it holds a broken one on purpose; the file reader quarantines it)."""
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def run_engine(store, load_id: str = "L1", crash_before_loaded: bool = False):
    spec = load_spec(SPEC)
    raw = pa.Table.from_pylist(read_valid_lines(SAMPLE))
    landed = stamp(raw, system="web_analytics", stream="form_submissions", key=["submission_id"], position=None,
                   load_id=load_id)
    land(landed, store.home, "web_analytics", "form_submissions", load_id)
    result = compile_spec(spec, subject_key=store.home.subject_key()).apply(landed, load_id=load_id)
    store.begin(load_id)
    store.append_received(load_id, landed)
    store.append_mapped(load_id, spec, result)
    dest = open_destination(store.home)
    for out in result.outputs:
        dest.load(out.entity, out.table, key=out.key, write=out.write, load_id=load_id)
        if not crash_before_loaded:
            store.append_loaded(load_id, "duckdb", out.entity, out.table, key=out.key)
    if not crash_before_loaded:
        store.commit(load_id)
    return spec, raw, result


def test_engine_result_is_captured_and_reconciles(store):
    spec, raw, result = run_engine(store)
    edges = pa.concat_tables([store.read_segment(s) for s in store.segments()])
    steps = edges.column("step").to_pylist()
    counts = result.counts["lead"]
    assert steps.count("received") == raw.num_rows == counts["read"]
    assert (steps.count("mapped"), steps.count("quarantined"), steps.count("filtered")) == \
           (counts["mapped"], counts["quarantined"], counts["filtered"])
    assert steps.count("loaded") == counts["mapped"]
    assert store.spec_text(spec.id, spec.version_hash) == spec.normalized
    assert verify(store).ok
    emails = [r["contact"]["email"] for r in raw.to_pylist() if r.get("contact") and r["contact"].get("email")]
    text = repr(edges.to_pylist()).lower()
    assert not [e for e in emails if e.strip().lower() in text]


def test_trace_field_and_export_from_engine_output(store):
    spec, raw, result = run_engine(store)
    out = result.outputs[0].table
    key = out.column("external_id")[0].as_py()
    c = trace(store, f"lead:{key}#priority")["chains"][0]
    assert c["field"]["sources"] == ["activity.level"]
    assert c["mapping"]["spec_version"] == spec.version_hash
    sid = c["source"]["source_key"]
    assert impact(store, f"web_analytics.form_submissions:{sid}")["recipients"] == [{"destination": "duckdb",
                                                                                    "entity": "lead"}]
    email = out.column("email")[0].as_py()
    doc = collect_subject(store, email)
    assert key in {r["target_key"] for r in doc["crm_records"]}
    assert all(r["fields"]["email"] == email for r in doc["crm_records"])
    assert json.dumps(doc)


def test_recovery_reads_load_ids_from_the_real_destination(store):
    _, _, result = run_engine(store, crash_before_loaded=True)
    assert store.recover() == [("L1", "committed")]
    key = result.outputs[0].table.column("external_id")[0].as_py()
    assert [x["step"] for x in trace(store, f"lead:{key}")["chains"][0]["loads"]] == ["loaded"]
    assert verify(store).ok


def test_erase_through_the_real_destination(store):
    _, _, result = run_engine(store)
    out = result.outputs[0].table
    email = out.column("email")[0].as_py()
    done = erase_subject(store, email)
    assert done["destination_rows"] >= 1
    left = open_destination(store.home).read("lead")
    assert email not in left.column("email").to_pylist()
    assert left.num_rows == out.num_rows - done["destination_rows"]
    assert verify(store).ok
