"""schemas/lineage-export.schema.json accepts a realistic export and rejects broken ones.

The realistic instance carries the official FHIR R4 Patient example (../shared/data/fhir)
as the payload of a HIS record, built into the export shape by lineage.export.sample.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from lineage.export.sample import sample_export, synthetic_payloads

REPO = Path(__file__).resolve().parents[3]
SCHEMA = json.loads((REPO / "schemas" / "lineage-export.schema.json").read_text())
PATIENT = json.loads((REPO / ".." / "shared" / "data" / "fhir" / "Patient-example.json").read_text())
SUBJECT = "5c1e" * 16


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    Draft202012Validator.check_schema(SCHEMA)
    return Draft202012Validator(SCHEMA)


@pytest.fixture
def export() -> dict:
    e = sample_export(SUBJECT, [PATIENT], system="his", stream="patients", entity="contact",
                      spec_id="fhir_patient_to_contact")
    web = sample_export(SUBJECT, synthetic_payloads(4), quarantine_every=3)
    for k in ("source_records", "crm_records", "steps"):
        e[k] += web[k]
    for k in ("sources", "recipients", "mapping_versions"):
        e["metadata"][k] += web["metadata"][k]
    e["steps"].sort(key=lambda s: s["at"])
    return json.loads(json.dumps(e))  # exactly what a JSON file round trip gives


def test_realistic_export_is_valid(validator, export):
    assert list(validator.iter_errors(export)) == []
    steps = {s["step"] for s in export["steps"]}
    assert steps == {"received", "mapped", "loaded", "quarantined"}  # the instance exercises every branch used


def test_erased_records_have_null_values(validator, export):
    export["source_records"][0]["payload"] = None
    export["crm_records"][0]["fields"] = None
    export["steps"].append({**export["steps"][-1], "step": "erased", "reason": "subject erased on request"})
    assert list(validator.iter_errors(export)) == []


def _set(doc: dict, path: tuple, value) -> dict:
    doc = copy.deepcopy(doc)
    target = doc
    for p in path[:-1]:
        target = target[p]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


_DELETE = object()

BROKEN = {
    "unknown top-level key": (("extra",), 1),
    "wrong format": (("format",), "weftline.lineage-export/2"),
    "missing steps": (("steps",), _DELETE),
    "subject hash not hex": (("subject", "id_hash"), "jane.doe@example.org"),
    "raw subject id beside the hash": (("subject", "email"), "jane.doe@example.org"),
    "time without Z": (("subject", "exported_at"), "2026-11-24T08:15:00+01:00"),
    "retention missing": (("metadata", "retention"), _DELETE),
    "recipient count negative": (("metadata", "recipients", 0, "records"), -1),
    "spec version not 16 hex": (("metadata", "mapping_versions", 0, "version_hash"), "v3"),
    "record id too short": (("source_records", 0, "record_id"), "abc123"),
    "payload is a list": (("source_records", 0, "payload"), [1, 2]),
    "reserved column leaked into payload": (("source_records", 0, "payload", "_wl_subject"), "ab" * 32),
    "reserved column leaked into fields": (("crm_records", 0, "fields", "_wl_load_id"), "L1"),
    "unknown step": (("steps", 0, "step"), "copied"),
    "missing null field in step": (("steps", 0, "reason"), _DELETE),
    "rules not integers": (("steps", 1, "rules"), ["trim"]),
    "raw value in a step": (("steps", 0, "email"), "jane.doe@example.org"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_export_is_rejected(validator, export, name):
    path, value = BROKEN[name]
    errors = list(validator.iter_errors(_set(export, path, value)))
    assert errors, name
