"""The stateful side of spec test cases: events in, incidents out, unexpected quarantine fails the case."""

from __future__ import annotations

from types import SimpleNamespace

import pyarrow as pa
import pytest

from transforms.stateful import State, run_for_test

EVENTS = [
    {"device_id": "dev-1", "event_time": "2026-11-24T08:00:00Z", "status": "online"},
    {"device_id": "dev-1", "event_time": "2026-11-24T08:01:00Z", "status": "offline"},
    {"device_id": "dev-2", "event_time": "2026-11-24T08:04:00Z", "status": "online"},
    {"device_id": "dev-3", "event_time": "2026-11-24T07:00:00Z", "status": "online"},
]


def _spec(mk):
    return SimpleNamespace(id="device_offline_ticket", stateful=mk.OFFLINE)


def test_incidents_of_text_times_in_batches(mk):
    case = {"batches": [2], "expect_incidents": [{"device_id": "dev-1", "action": "open",
                                                  "since": "2026-11-24T08:01:00Z"}],
            "expect_event_quarantine": [{"row": 3, "reason": "late event"}]}
    inc = run_for_test(_spec(mk), pa.Table.from_pylist(EVENTS), case)
    assert inc.schema == _plan_schema(mk)


def _plan_schema(mk):
    from transforms.stateful import compile_stateful

    return compile_stateful(mk.OFFLINE, "x").incident_schema


def test_a_wrong_expectation_fails_with_the_row_and_column(mk):
    case = {"expect_incidents": [{"action": "close"}], "expect_event_quarantine": [{"row": 3, "reason": "late"}]}
    with pytest.raises(AssertionError, match=r"incidents row 0: action = 'open', expected 'close'"):
        run_for_test(_spec(mk), pa.Table.from_pylist(EVENTS), case)


def test_an_undeclared_quarantined_event_fails_the_case(mk):
    with pytest.raises(AssertionError, match="quarantined events: expected 0 row"):
        run_for_test(_spec(mk), pa.Table.from_pylist(EVENTS), {})


def test_bad_text_times_name_the_rows(mk):
    rows = [dict(EVENTS[0], event_time="yesterday")]
    with pytest.raises(ValueError, match=r"input rows \[0\]: event_time is not an ISO 8601 time"):
        run_for_test(_spec(mk), pa.Table.from_pylist(rows), {})


def test_apply_output_has_the_documented_schema(offline_plan, spike_plan, mk):
    inc, _, _ = offline_plan.apply(mk.status([("d1", 0, "online"), ("d1", 1, "offline"), ("d2", 500, "online")]),
                                   State.empty())
    assert inc.num_rows == 1 and inc.schema == offline_plan.incident_schema
    empty, _, _ = spike_plan.apply(mk.telemetry([]), State.empty())
    assert empty.num_rows == 0 and empty.schema == spike_plan.incident_schema
