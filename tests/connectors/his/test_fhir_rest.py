"""FHIR REST search against a local server on loopback: paging, retries, errors."""

from __future__ import annotations

import pytest

from connectors.errors import ConfigError, RetriableError
from connectors.his.fhir_rest import search_pages, session


def test_pages_follow_next_links_until_the_end(fhir_server):
    pages = list(search_pages(fhir_server.base_url, "MedicationRequest", page_size=3))
    assert len(pages) == 3  # 8 resources, 3 per page
    ids = [e["resource"]["id"] for _, b in pages for e in b["entry"]]
    assert sorted(ids) == [f"medrx030{i}" for i in range(1, 9)]
    assert "_page=2" in pages[1][0] and "_page=3" in pages[2][0]


def test_since_asks_for_newer_resources_only(fhir_server):
    all_pages = list(search_pages(fhir_server.base_url, "MedicationRequest", page_size=50))
    stamps = sorted(e["resource"]["meta"]["lastUpdated"] for e in all_pages[0][1]["entry"])
    pages = list(search_pages(fhir_server.base_url, "MedicationRequest", stamps[5], page_size=50))
    assert [e["resource"]["meta"]["lastUpdated"] for e in pages[0][1]["entry"]] == stamps[6:]
    assert "_lastUpdated=gt" in fhir_server.requests[-1]


def test_a_503_is_retried(fhir_server):
    fhir_server.fail_next.add("MedicationRequest:2")
    pages = list(search_pages(fhir_server.base_url, "MedicationRequest", page_size=3, http=session(backoff=0)))
    assert len(pages) == 3
    assert sum("_page=2" in r for r in fhir_server.requests) == 2  # failed once, then served


def test_a_dead_server_is_retriable():
    with pytest.raises(RetriableError):
        list(search_pages("http://127.0.0.1:9/fhir", "Patient", http=session(retries=0)))


def test_unknown_type_is_a_config_error(fhir_server):
    with pytest.raises(ConfigError, match="HTTP 404"):
        list(search_pages(fhir_server.base_url, "Encounter"))
