"""The subject export: one subject only, valid against schemas/lineage-export.schema.json."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from connectors.base.identity import record_id
from lineage.export.collect import collect_subject, subject_hash
from lineage.query import UnknownRef

from lineage_pipeline import ROWS, SYSTEM, STREAM, Spec

SCHEMA = json.loads((Path(__file__).resolve().parents[3] / "schemas/lineage-export.schema.json").read_text())


def test_export_is_valid_against_the_schema(ran):
    doc = collect_subject(ran, "ann@example.org")
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)


def test_export_holds_the_subjects_source_and_crm_records(ran):
    doc = collect_subject(ran, "ann@example.org")
    assert doc["subject"]["id_hash"] == subject_hash(ran, "ann@example.org")
    ids = {record_id(SYSTEM, STREAM, k, None): k for k in ("1", "3")}  # same received_at: by record id
    assert [r["source_key"] for r in doc["source_records"]] == [ids[i] for i in sorted(ids)]
    by_key = {r["source_key"]: r for r in doc["source_records"]}
    assert by_key["3"]["payload"]["contact_email"] == "Ann@Example.org "
    assert by_key["1"]["record_id"] == record_id(SYSTEM, STREAM, "1", None)
    assert [r["target_key"] for r in doc["crm_records"]] == ["WEB-1", "WEB-3"]
    assert {r["fields"]["email"] for r in doc["crm_records"]} == {"ann@example.org"}
    assert [s["step"] for s in doc["steps"]].count("received") == 2
    assert sorted({s["step"] for s in doc["steps"]}) == ["loaded", "mapped", "received"]
    meta = doc["metadata"]
    assert meta["recipients"] == [{"destination": "duckdb", "entity": "lead", "records": 2}]
    assert meta["sources"] == [{"system": SYSTEM, "stream": STREAM, "records": 2}]
    assert meta["mapping_versions"][0]["version_hash"] == Spec.version_hash
    assert meta["purposes"] == ["Lead management"]
    assert "lead.priority" in meta["categories"]


def test_no_other_subjects_data_leaks(ran):
    text = json.dumps(collect_subject(ran, "ann@example.org"))
    for other in ROWS:
        if "ann" in other["contact_email"].lower():
            continue
        assert other["contact_email"] not in text
        assert other["name"] not in text
        assert record_id(SYSTEM, STREAM, str(other["submission_id"]), None) not in text
        assert f"WEB-{other['submission_id']}" not in text
    assert subject_hash(ran, "bob@example.org") not in text


def test_unknown_subject_is_a_clear_error(ran):
    with pytest.raises(UnknownRef, match="no lineage for this subject"):
        collect_subject(ran, "nobody@example.org")
