"""`weftline run his_prescriptions` on a FHIR REST server (loopback) and on a file drop: a prescription
deleted in the HIS soft-deletes its CRM interaction; every run's counts reconcile."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from tests.connectors.his.fhir_server import FhirServer
from tests.mapping_copies import copy_mappings
from weftline.integrations import run_integration

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT.parent / "shared" / "data" / "fhir"


def interactions(home) -> dict[str, tuple]:
    con = duckdb.connect(str(home.crm_duckdb), read_only=True)
    try:
        rows = con.sql("SELECT interaction_id, status, is_deleted, account_ref FROM crm.crm.interaction").fetchall()
    finally:
        con.close()
    return {r[0]: r[1:] for r in rows}


def integration(tmp_path, config: dict) -> Path:
    """A copy of the his_prescriptions integration and its spec, with this source config."""
    return copy_mappings(tmp_path, "his_prescriptions", lambda doc: doc["source"].__setitem__("config", config))


def counts(reports) -> tuple[int, int, int, int]:
    [t] = [t for r in reports for t in r.targets]
    assert all(r.reconciles for r in reports if r.targets)
    assert t.read == t.mapped + t.quarantined + t.filtered
    return t.read, t.mapped, t.quarantined, t.filtered


@pytest.fixture
def server():
    with FhirServer([json.loads(p.read_text()) for p in sorted(SAMPLES.glob("*.json"))]) as srv:
        yield srv


def test_a_prescription_deleted_on_the_fhir_server_is_marked_deleted_in_the_crm(home, tmp_path, server):
    mappings = integration(tmp_path, {"fhir_base_url": server.base_url, "page_size": 3})
    first = run_integration("his_prescriptions", home, mappings)
    assert counts(first) == (8, 8, 0, 0)
    before = interactions(home)
    assert before["RX-medrx0305"] == ("completed", False, "DOC-f007") and len(before) == 8
    server.delete("MedicationRequest", "medrx0305")
    second = run_integration("his_prescriptions", home, mappings)
    assert counts(second) == (1, 1, 0, 0)  # the delete event: read, mapped, neither quarantined nor filtered
    after = interactions(home)
    assert after["RX-medrx0305"] == ("deleted", True, "DOC-UNKNOWN")
    assert {k: v for k, v in after.items() if k != "RX-medrx0305"} == {
        k: v for k, v in before.items() if k != "RX-medrx0305"}  # nothing else changed
    third = run_integration("his_prescriptions", home, mappings)
    assert sum(t.read for r in third for t in r.targets) == 0 and interactions(home) == after  # no second delete


def test_a_delete_entry_in_a_dropped_bundle_is_marked_deleted_in_the_crm(home, tmp_path):
    drop = tmp_path / "fhir"
    drop.mkdir()
    for p in SAMPLES.glob("MedicationRequest-*.json"):
        (drop / p.name).write_text(p.read_text())
    mappings = integration(tmp_path, {"fhir_dir": str(drop)})
    first = run_integration("his_prescriptions", home, mappings)
    assert counts(first) == (8, 8, 0, 0) and interactions(home)["RX-medrx0302"] == ("active", False, "DOC-f007")
    (drop / "zz-deletes.json").write_text(json.dumps({
        "resourceType": "Bundle", "type": "transaction", "timestamp": "2024-05-01T12:00:00Z",
        "entry": [{"request": {"method": "DELETE", "url": "MedicationRequest/medrx0302"}}]}))
    second = run_integration("his_prescriptions", home, mappings)
    assert counts(second) == (1, 1, 0, 0)
    assert interactions(home)["RX-medrx0302"] == ("deleted", True, "DOC-UNKNOWN")
