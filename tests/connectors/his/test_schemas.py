"""The landed record shapes match their JSON Schemas (schemas/sources/his.*.json)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import jsonschema
import pytest

from connectors.his import read_fhir, read_hl7
from connectors.his.source import HisSource

REPO = Path(__file__).resolve().parents[3]


def _json(row: dict) -> dict:
    return json.loads(json.dumps(row, default=lambda o: o.isoformat() if isinstance(o, datetime) else None))


def _validator(stream: str):
    s = next(s for s in HisSource.streams if s.name == stream)
    schema = json.loads((REPO / s.schema_file).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def test_hl7_rows_match_the_schema(hl7_dir):
    v = _validator("hl7_messages")
    rows = [r for f in sorted(hl7_dir.glob("*.hl7")) for r in read_hl7(f.read_bytes(), f.name)[0].to_pylist()]
    assert len(rows) == 125
    for row in rows:
        v.validate(_json(row))
    bad = dict(rows[0], segments={"pid": []})
    with pytest.raises(jsonschema.ValidationError):
        v.validate(_json(bad))


@pytest.mark.parametrize("stream", ["fhir_medication_request", "fhir_patient", "fhir_practitioner", "fhir_organization"])
def test_fhir_rows_match_the_schema(fhir_dir, stream):
    v = _validator(stream)
    tables = [read_fhir(f)[0].get(stream) for f in sorted(fhir_dir.glob("*.json"))]
    rows = [r for t in tables if t is not None for r in t.to_pylist()]
    assert rows
    for row in rows:
        v.validate(_json(row))


@pytest.mark.parametrize("stream,rtype", [("fhir_medication_request", "MedicationRequest"), ("fhir_patient", "Patient")])
def test_delete_events_match_the_schema_and_an_unknown_op_does_not(tmp_path, stream, rtype):
    v = _validator(stream)
    (tmp_path / "d.json").write_text(json.dumps({"resourceType": "Bundle", "type": "history", "entry": [
        {"request": {"method": "DELETE", "url": f"{rtype}/x1"}, "response": {"lastModified": "2024-01-01T00:00:00Z"}}]}))
    [row] = read_fhir(tmp_path / "d.json")[0][stream].to_pylist()
    v.validate(_json(row))
    with pytest.raises(jsonschema.ValidationError):
        v.validate(_json(dict(row, _op="remove")))
