"""trace (backward) and impact (forward) answer from the index; damaged segments are named."""

from __future__ import annotations

import pytest

from connectors.base.identity import record_id
from lineage.query import UnknownRef, impact, trace

from lineage_pipeline import SYSTEM, STREAM, Spec, run_pipeline


def test_trace_names_the_source_record_spec_and_load(ran):
    r = trace(ran, "lead:WEB-2")
    assert len(r["chains"]) == 1
    c = r["chains"][0]
    assert c["source"]["record_id"] == record_id(SYSTEM, STREAM, "2", None)
    assert (c["source"]["source_system"], c["source"]["stream"], c["source"]["source_key"]) == (SYSTEM, STREAM, "2")
    assert c["source"]["at"].endswith("Z")
    assert (c["mapping"]["spec_id"], c["mapping"]["spec_version"]) == (Spec.id, Spec.version_hash)
    assert c["mapping"]["rules"] == [0, 1]
    assert [(x["step"], x["destination"]) for x in c["loads"]] == [("loaded", "duckdb")]


def test_trace_of_a_field_reads_the_stored_spec_version(ran):
    c = trace(ran, "lead:WEB-1#priority")["chains"][0]
    assert c["field"]["sources"] == ["level"] and c["field"]["rule"].startswith("from level")
    c = trace(ran, "lead:WEB-1#external_id")["chains"][0]
    assert c["field"]["sources"] == ["submission_id"]


def test_trace_over_two_loads_lists_both(store):
    run_pipeline(store, "L1")
    run_pipeline(store, "L2", rows=[{"submission_id": 1, "contact_email": "ann@example.org", "level": "B",
                                     "name": "Ann Lee", "extra": 1}])
    loads = sorted(c["mapping"]["load_id"] for c in trace(store, "lead:WEB-1")["chains"])
    assert loads == ["L1", "L2"]


def test_impact_lists_derived_records_and_recipients(ran):
    r = impact(ran, f"{SYSTEM}.{STREAM}:3")
    assert [d["target_key"] for d in r["derived"]] == ["WEB-3"]
    assert r["recipients"] == [{"destination": "duckdb", "entity": "lead"}]
    assert [x["step"] for x in r["loaded"]] == ["loaded"]


def test_impact_of_a_quarantined_record_shows_the_reason(ran):
    r = impact(ran, f"{SYSTEM}.{STREAM}:4")
    assert r["derived"] == [] and r["recipients"] == []
    assert [(o["step"], o["reason"]) for o in r["outcomes"]] == [("quarantined", "priority: map [1]")]


@pytest.mark.parametrize("call,ref", [(trace, "lead:NOPE"), (trace, "lead"), (impact, "web_analytics.x:1"),
                                      (impact, "nodot:1")])
def test_unknown_or_malformed_refs_raise_a_clear_error(ran, call, ref):
    with pytest.raises(UnknownRef):
        call(ran, ref)


def test_uncommitted_loads_are_not_answered(store):
    run_pipeline(store, "L1", stop_after="loaded")
    with pytest.raises(UnknownRef):
        trace(store, "lead:WEB-1")


def test_missing_segment_is_named_and_the_rest_answers(ran):
    received = ran.segments()[0]
    ran.blobs.path(received["file"]).unlink()
    r = trace(ran, "lead:WEB-1")
    assert r["chains"][0]["source"].get("missing") is True
    assert r["chains"][0]["mapping"]["spec_id"] == Spec.id
    assert len(r["warnings"]) == 1 and received["file"] in r["warnings"][0]
