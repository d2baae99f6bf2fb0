"""singer-sdk's built-in tap test suite against the loopback FHIR search server; resume from a bookmark."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from singer_sdk.testing import SuiteConfig, TapTestRunner, get_tap_test_class

from connectors.his.tap import FhirTap
from tests.connectors.his.fhir_server import FhirServer

SAMPLES = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "fhir"
# The suite builds its test class at import time; the server starts in the fixture below.
CONFIG = {"fhir_base_url": "http://127.0.0.1:9/fhir", "page_size": 3}

_Suite = get_tap_test_class(FhirTap, config=CONFIG)


@pytest.fixture(scope="module")
def server():
    with FhirServer([json.loads(p.read_text()) for p in sorted(SAMPLES.glob("*.json"))]) as srv:
        yield srv


class TestFhirTap(_Suite):
    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def _server(cls, server):
        CONFIG["fhir_base_url"] = server.base_url
        yield


def test_tap_reads_all_pages_and_resumes_from_its_bookmark(server):
    everything = SuiteConfig(max_records_limit=None)
    config = {"fhir_base_url": server.base_url, "page_size": 3}
    runner = TapTestRunner(FhirTap, config=config, suite_config=everything)
    runner.sync_all()
    mrs = runner.records["fhir_medication_request"]
    assert sorted(r["id"] for r in mrs) == [f"medrx030{i}" for i in range(1, 9)]
    assert mrs[0]["resource"]["requester"]["reference"] == "Practitioner/f007"  # nested resource survives
    assert {r["medication_code"] for r in mrs} >= {"430127000", "856907"}
    bookmark = runner.state_messages[-1]["value"]["bookmarks"]["fhir_medication_request"]["replication_key_value"]
    updated = server.put({**json.loads((SAMPLES / "MedicationRequest-medrx0302.json").read_text()), "status": "stopped"})
    resumed = TapTestRunner(FhirTap, config=config, suite_config=everything, state={"bookmarks": {
        "fhir_medication_request": {"replication_key": "last_updated", "replication_key_value": bookmark}}})
    resumed.sync_all()
    assert [(r["id"], r["status"]) for r in resumed.records["fhir_medication_request"]] == [(updated["id"], "stopped")]


def test_tap_emits_a_delete_after_its_bookmark_as_an_op_delete_record(server):
    everything = SuiteConfig(max_records_limit=None)
    config = {"fhir_base_url": server.base_url, "page_size": 3}
    runner = TapTestRunner(FhirTap, config=config, suite_config=everything)
    runner.sync_all()
    bookmark = runner.state_messages[-1]["value"]["bookmarks"]["fhir_medication_request"]["replication_key_value"]
    schema = next(m for m in runner.raw_messages if m["type"] == "SCHEMA" and m["stream"] == "fhir_medication_request")
    assert schema["schema"]["properties"]["_op"]["enum"] == ["upsert", "delete"]
    server.delete("MedicationRequest", "medrx0306")
    resumed = TapTestRunner(FhirTap, config=config, suite_config=everything, state={"bookmarks": {
        "fhir_medication_request": {"replication_key": "last_updated", "replication_key_value": bookmark}}})
    resumed.sync_all()
    [rec] = resumed.records["fhir_medication_request"]
    assert (rec["id"], rec["_op"], rec["resource_json"]) == ("medrx0306", "delete", None)
    new = resumed.state_messages[-1]["value"]["bookmarks"]["fhir_medication_request"]["replication_key_value"]
    assert new > bookmark
