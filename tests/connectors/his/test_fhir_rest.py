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


def _history_since(server, rtype, since, page_size=2):
    from connectors.his.fhir_history import read_history

    return read_history(server.base_url, rtype, since, page_size=page_size, http=session(backoff=0))


def test_history_pages_give_the_deletes_after_the_cursor_oldest_first(fhir_server):
    cursor = fhir_server.clock.isoformat().replace("+00:00", "Z")
    gone = [fhir_server.delete("MedicationRequest", i) for i in ("medrx0303", "medrx0301")]
    upd = fhir_server.put({**next(r for r in fhir_server.resources if r["id"] == "medrx0302"), "status": "stopped"})
    fhir_server.delete("Patient", "example")  # another type: not in this history
    h = _history_since(fhir_server, "MedicationRequest", cursor, page_size=2)
    assert [(d.id, d.version, d.resource_type) for _, d in h.deletes] == [
        ("medrx0303", gone[0], "MedicationRequest"), ("medrx0301", gone[1], "MedicationRequest")]
    assert h.cursor == upd["meta"]["lastUpdated"] > gone[1]  # the update after the deletes is the newest entry
    hist = [r for r in fhir_server.requests if "/_history" in r]
    assert len(hist) == 2 and "_page=2" in hist[1]  # three entries since the cursor, two per page
    assert all(o.startswith(fhir_server.base_url) and "/entry[" in o for o, _ in h.deletes)


def test_history_since_is_inclusive_and_the_cursor_instant_is_not_reported_again(fhir_server):
    when = fhir_server.delete("MedicationRequest", "medrx0304")
    h = _history_since(fhir_server, "MedicationRequest", when)
    assert h.deletes == [] and h.newest is None  # served (>= _since) but at the cursor: the last run had it
    assert "_since=" in fhir_server.requests[-1]


def test_a_server_without_history_is_unsupported_and_other_errors_still_raise(fhir_server):
    from connectors.his.fhir_rest import Unsupported

    for status in (404, 405, 400, 501):
        fhir_server.history_status = status
        with pytest.raises(Unsupported, match=f"HTTP {status}"):
            _history_since(fhir_server, "MedicationRequest", "2024-01-01T00:00:00Z")
    fhir_server.history_status = None
    fhir_server.fail_next.add("MedicationRequest/_history:1")  # a 503 is retried, not taken for "no history"
    h = _history_since(fhir_server, "MedicationRequest", "2024-01-01T00:00:00Z", page_size=50)
    assert h is not None and h.newest is not None
    with pytest.raises(RetriableError):
        from connectors.his.fhir_history import read_history

        read_history("http://127.0.0.1:9/fhir", "Patient", "2024-01-01T00:00:00Z", http=session(retries=0))
