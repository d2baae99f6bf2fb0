"""Bad events are quarantined with a reason; counts reconcile; nothing is dropped silently."""

from __future__ import annotations

from datetime import datetime, timedelta

import pyarrow as pa
import pytest

from connectors.errors import ConfigError
from transforms.stateful import State


def test_missing_key_missing_time_late_and_duplicate_are_quarantined(offline_plan, mk):
    at = [mk.T0 + timedelta(seconds=x) if x is not None else None for x in (100, 200, None, 50, 300, 300)]
    ev = pa.table({
        "device_id": pa.array(["d1", None, "d1", "d1", "d2", "d2"]),
        "event_time": pa.array(at, pa.timestamp("us", tz="UTC")),
        "status": ["online", "offline", "online", "online", "online", "online"],
        "_wl_record_id": ["r0", "r1", "r2", "r3", "r4", "r4"],
    })
    inc, q, st = offline_plan.apply(ev, State.empty())
    got = {r["row"]: (r["field"], r["rule"], r["reason"].split(":")[0]) for r in q.to_pylist()}
    assert got == {
        1: ("device_id", "stateful.event", "missing key device_id"),
        2: ("event_time", "stateful.event", "missing event time event_time"),
        3: ("event_time", "stateful.lateness", "late event"),
        5: ("event_time", "stateful.event", "duplicate event (same record id)"),
    }
    assert q.column("_wl_record_id").to_pylist() == ["r1", "r2", "r3", "r4"]
    # read = kept in state or consumed + quarantined: the state advanced over every row
    assert st.next_seq == ev.num_rows
    assert st.buffer.num_rows + q.num_rows <= ev.num_rows


def test_a_redelivered_event_in_a_later_batch_is_a_duplicate(offline_plan, mk):
    ev = mk.status([("d1", 0, "online"), ("d1", 10, "offline")])
    _, _, st = offline_plan.apply(ev, State.empty())
    _, q, _ = offline_plan.apply(ev.slice(1), st)  # offline@10 is still in the buffer (not final)
    assert q.column("reason").to_pylist() == ["duplicate event (same record id)"]


def test_a_batch_without_the_rule_columns_is_a_config_error(offline_plan, mk):
    with pytest.raises(ConfigError, match=r"lack column\(s\) \['status'\]"):
        offline_plan.apply(mk.status([("d1", 0, "online")]).drop(["status"]), State.empty())


def test_text_times_are_a_config_error_naming_the_column(offline_plan, mk):
    ev = mk.status([("d1", 0, "online")])
    ev = ev.set_column(1, "event_time", pa.array(["2026-11-24T08:00:00Z"]))
    with pytest.raises(ConfigError, match="'event_time' is string, not a timestamp"):
        offline_plan.apply(ev, State.empty())


def test_naive_times_are_taken_as_utc(offline_plan, mk):
    naive = pa.table({"device_id": ["d1", "d1", "d2"],
                      "event_time": pa.array([datetime(2026, 11, 24, 8, 0), datetime(2026, 11, 24, 8, 1),
                                              datetime(2026, 11, 24, 8, 4)], pa.timestamp("ms")),
                      "status": ["online", "offline", "online"]})
    inc, _, _ = offline_plan.apply(naive, State.empty())
    assert inc.column("since").to_pylist() == [mk.T0.replace(minute=1)]
