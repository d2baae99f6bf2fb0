"""Every sample FHIR resource validates with the R4B models and lands in its stream's shape."""

from __future__ import annotations

import json

from connectors.his.fhir_records import STREAMS, to_tables


def test_samples_validate_one_stream_per_type(fhir_dir, sample_resources):
    items = [(f"r{i}", r) for i, r in enumerate(sample_resources)]
    good, bad = to_tables(items)
    assert bad == {}
    assert {s: t.num_rows for s, t in good.items()} == {
        "fhir_medication_request": 8, "fhir_patient": 1, "fhir_practitioner": 1, "fhir_organization": 1}
    for stream, table in good.items():
        assert set(table.column("resource_type").to_pylist()) == {k for k, v in STREAMS.items() if v == stream}
        for text, res in zip(table.column("resource_json").to_pylist(), table.column("resource").to_pylist()):
            original = json.loads(text)
            assert res["id"] == original["id"] and res["resourceType"] == original["resourceType"]


def test_medication_request_columns_for_the_crm_mapping(fhir_dir):
    raw = {p.stem: json.loads(p.read_text()) for p in fhir_dir.glob("MedicationRequest-*.json")}
    good, _ = to_tables([(k, v) for k, v in sorted(raw.items())])
    rows = {r["id"]: r for r in good["fhir_medication_request"].to_pylist()}
    r301 = rows["medrx0301"]
    assert r301["requester_reference"] == raw["MedicationRequest-medrx0301"]["requester"]["reference"] == "Practitioner/f007"
    assert r301["subject_reference"] == "Patient/pat1" and r301["authored_on"] == "2015-01-15"
    assert r301["status"] == "completed"
    # medicationReference "#med0310" resolves into the contained Medication's code
    med = next(c for c in raw["MedicationRequest-medrx0301"]["contained"] if c["id"] == "med0310")
    assert (r301["medication_code"], r301["medication_display"]) == (
        med["code"]["coding"][0]["code"], med["code"]["coding"][0]["display"])
    # medicationCodeableConcept read directly
    assert (rows["medrx0308"]["medication_code"], rows["medrx0308"]["medication_system"]) == (
        "856907", "http://www.nlm.nih.gov/research/umls/rxnorm")
    # the nested resource answers the same paths
    assert r301["resource"]["requester"]["reference"] == "Practitioner/f007"
    assert rows["medrx0308"]["resource"]["medicationCodeableConcept"]["coding"][0]["display"] == "Vicodin 5/500 Oral Tablet"


def test_invalid_resource_is_rejected_with_the_validation_error(sample_resources):
    broken = {"resourceType": "MedicationRequest", "id": "bad1", "status": "active", "intent": "order"}  # no subject
    good, bad = to_tables([("ok", sample_resources[0]), ("page2#3", broken)])
    assert good["fhir_medication_request"].column("id").to_pylist() == ["medrx0301"]
    [row] = bad["fhir_medication_request"].to_pylist()
    assert row["position"] == "page2#3"
    assert "MedicationRequest page2#3 is not valid FHIR R4" in row["reason"] and "subject" in row["reason"]
    assert json.loads(row["raw"]) == broken


def test_version_is_last_updated_or_content_hash(sample_resources):
    p = dict(next(r for r in sample_resources if r["resourceType"] == "Patient"))
    good, _ = to_tables([("a", p)])
    v1 = good["fhir_patient"].column("version")[0].as_py()
    assert v1.startswith("sha256:")
    good, _ = to_tables([("a", {**p, "active": not p.get("active", True)})])
    assert good["fhir_patient"].column("version")[0].as_py() != v1
    good, _ = to_tables([("a", {**p, "meta": {"lastUpdated": "2024-05-01T10:00:00Z"}})])
    assert good["fhir_patient"].column("version")[0].as_py() == "2024-05-01T10:00:00Z"
