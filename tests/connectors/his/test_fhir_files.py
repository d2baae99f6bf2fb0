from __future__ import annotations

import json

from connectors.his.fhir_files import read_fhir_file


def test_bundle_and_single_resource_files(tmp_path, sample_resources):
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in sample_resources]}
    (tmp_path / "all.json").write_text(json.dumps(bundle))
    items, bad = read_fhir_file(tmp_path / "all.json")
    assert bad == [] and [r for _, r in items] == sample_resources
    assert items[2][0] == "all.json/entry[3]"


def test_ndjson_with_a_broken_line(tmp_path, sample_resources):
    lines = [json.dumps(r) for r in sample_resources[:2]] + ["{oops", json.dumps(sample_resources[2])]
    (tmp_path / "export.ndjson").write_text("\n".join(lines) + "\n")
    items, bad = read_fhir_file(tmp_path / "export.ndjson")
    assert [o for o, _ in items] == ["export.ndjson:1", "export.ndjson:2", "export.ndjson:4"]
    assert bad == [("export.ndjson:3", "not JSON at line 1, column 2: Expecting property name enclosed in double quotes",
                    b"{oops")]


def test_broken_json_file_names_the_position(tmp_path):
    (tmp_path / "x.json").write_text('{\n  "resourceType": "Patient",\n  "id": "p1",,\n}')
    items, [(pos, reason, raw)] = read_fhir_file(tmp_path / "x.json")
    assert items == [] and pos == "x.json" and reason.startswith("not JSON at line 3, column 14")


def test_a_delete_entry_in_a_transaction_bundle_is_a_delete_event(tmp_path, sample_resources):
    from connectors.his import read_fhir

    mr = next(r for r in sample_resources if r["resourceType"] == "MedicationRequest")
    bundle = {"resourceType": "Bundle", "type": "transaction", "timestamp": "2024-04-01T10:00:00+02:00", "entry": [
        {"fullUrl": "urn:uuid:1", "resource": mr, "request": {"method": "PUT", "url": f"MedicationRequest/{mr['id']}"}},
        {"request": {"method": "DELETE", "url": "MedicationRequest/medrx0399"}},
        {"request": {"method": "DELETE", "url": "MedicationRequest?identifier=x|1"}},  # conditional: no id
        {"request": {"method": "DELETE", "url": "Encounter/e1"}},  # a type with no stream: skipped
    ]}
    (tmp_path / "tx.json").write_text(json.dumps(bundle))
    good, bad = read_fhir(tmp_path / "tx.json")
    rows = good["fhir_medication_request"].to_pylist()
    assert [(r["id"], r["_op"]) for r in rows] == [(mr["id"], "upsert"), ("medrx0399", "delete")]
    deleted = rows[1]
    assert str(deleted["last_updated"]) == "2024-04-01 08:00:00+00:00"  # the Bundle's timestamp, in UTC
    assert deleted["version"] == "2024-04-01T10:00:00+02:00" and deleted["origin"] == "tx.json/entry[2]"
    assert deleted["resource_type"] == "MedicationRequest"
    assert all(deleted[c] is None for c in ("status", "requester_reference", "medication_code", "resource_json",
                                            "resource"))
    [rej] = bad["fhir_medication_request"].to_pylist()
    assert rej["position"] == "tx.json/entry[3]" and "conditional DELETE" in rej["reason"]
    assert set(good) == {"fhir_medication_request"}


def test_a_delete_without_any_time_gets_a_stable_version_of_its_own(tmp_path):
    from connectors.his import read_fhir

    bundle = {"resourceType": "Bundle", "type": "batch",
              "entry": [{"request": {"method": "DELETE", "url": "Patient/p9"}}]}
    (tmp_path / "b.json").write_text(json.dumps(bundle))
    first = read_fhir(tmp_path / "b.json")[0]["fhir_patient"].to_pylist()[0]
    again = read_fhir(tmp_path / "b.json")[0]["fhir_patient"].to_pylist()[0]
    assert first["last_updated"] is None and first["version"].startswith("delete:sha256:")
    assert first["version"] == again["version"]  # a re-read file keeps its record ids


def test_a_delete_then_a_recreate_in_one_bundle_keep_their_order(tmp_path, sample_resources):
    from connectors.his import read_fhir

    mr = next(r for r in sample_resources if r["resourceType"] == "MedicationRequest")
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "DELETE", "url": f"MedicationRequest/{mr['id']}"}},
        {"resource": mr, "request": {"method": "PUT", "url": f"MedicationRequest/{mr['id']}"}}]}
    (tmp_path / "tx.json").write_text(json.dumps(bundle))
    rows = read_fhir(tmp_path / "tx.json")[0]["fhir_medication_request"].to_pylist()
    assert [(r["id"], r["_op"]) for r in rows] == [(mr["id"], "delete"), (mr["id"], "upsert")]  # the upsert wins
