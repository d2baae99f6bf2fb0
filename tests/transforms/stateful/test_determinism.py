"""Replaying the same landed events gives the same incidents, however the stream is cut into batches,
and whether or not the process restarts (state saved and loaded) between batches."""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta, timezone

import pyarrow as pa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from transforms.stateful import State, compile_stateful, load_state, save_state

T0 = datetime(2026, 11, 24, tzinfo=timezone.utc)
SECTION = {
    "key": "device_id", "time": "event_time",
    "rules": [
        {"name": "offline", "transition": {"field": "status", "from": "online", "to": "offline", "for": "120s"},
         "recover": {"to": "online", "emit": "close"}},
        {"name": "down", "transition": {"field": "status", "to": "maintenance", "for": "0s"}},
        {"name": "faults", "rate": {"where": "event_type = 'fault'", "window": "2m", "baseline": "4m",
                                    "threshold": "200%", "min_count": 2}},
    ],
    "cooldown": "5m",
}

event = st.tuples(
    st.sampled_from(["d1", "d1", "d2"]),
    st.sampled_from([0, 0, 1, 5, 30, 90, 150, 400]),              # seconds after the previous event; ties on purpose
    st.sampled_from([0, 0, 0, 0, 20, 200]),                      # arrives this much out of order
    st.sampled_from(["online", "online", "offline", "offline", "maintenance", None]),
    st.sampled_from(["fault", "fault", "info", None]),
)


def _rows(events):
    """(device, time, status, event_type, index) in arrival order."""
    out, clock = [], 0
    for i, (dev, gap, back, status, kind) in enumerate(events):
        clock += gap
        out.append((dev, max(clock - back, 0), status, kind, i))
    return out


def _table(rows) -> pa.Table:
    return pa.table({
        "device_id": pa.array([r[0] for r in rows], pa.string()),
        "event_time": pa.array([T0 + timedelta(seconds=r[1]) for r in rows], pa.timestamp("us", tz="UTC")),
        "status": pa.array([r[2] for r in rows], pa.string()),
        "event_type": pa.array([r[3] for r in rows], pa.string()),
        "_wl_record_id": pa.array([f"e{r[4]}" for r in rows], pa.string()),
    })


def _run(plan, rows, cuts, home=None):
    state, incidents, quarantined = State.empty(), [], []
    bounds = [0, *sorted(set(cuts)), len(rows)]
    for lo, hi in zip(bounds, bounds[1:]):
        if home:
            state = load_state(home, plan.spec_id)
        inc, q, state = plan.apply(_table(rows[lo:hi]), state)
        if home:
            save_state(home, plan.spec_id, state)
        incidents += inc.to_pylist()
        quarantined += [(r["row"] + lo, r["rule"]) for r in q.to_pylist()]
    return incidents, sorted(quarantined), state


def _key(r):
    return r["row_id"]


@example(  # a pending offline run whose "from" status was compacted away between batches
    [("d1", 0, 0, "online", None), ("d1", 10, 0, "offline", None), ("d2", 40, 0, "online", None),
     ("d2", 150, 0, "online", None)], [3], 0, True)
@example(  # the run before the current one is kept by its first event, whatever the cuts
    [("d1", 0, 0, "online", "fault")] * 15 + [("d1", 0, 0, "offline", "fault")] * 2
    + [("d1", 400, 0, "online", "fault")] + [("d1", 0, 0, "online", "fault")] * 6 + [("d1", 1, 0, "online", "fault")],
    [18], 0, False)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(event, min_size=1, max_size=40), st.lists(st.integers(0, 40), max_size=6),
       st.sampled_from([0, 30, 300]), st.booleans())

def test_batch_splits_and_restarts_do_not_change_the_incidents(events, cuts, lateness, restart):
    rows = _rows(events)
    cuts = [c for c in cuts if 0 < c < len(rows)]
    plan = compile_stateful({**SECTION, "lateness": lateness}, "prop")
    whole, q_whole, s_whole = _run(plan, rows, [])
    with tempfile.TemporaryDirectory() as home:
        split, q_split, s_split = _run(plan, rows, cuts, home if restart else None)
    assert sorted(split, key=_key) == sorted(whole, key=_key)
    assert len({r["row_id"] for r in whole}) == len(whole)
    assert q_split == q_whole
    assert s_split.watermark == s_whole.watermark
    assert s_split.buffer.sort_by("seq").equals(s_whole.buffer.sort_by("seq"))


def test_the_property_sees_incidents_at_all():
    """Guard against a vacuous property: a plain stream does produce all three kinds of rows."""
    events = [("d1", 0, "online", None), ("d1", 10, "offline", None), ("d1", 200, "online", None),
              ("d2", 250, "online", None), ("d2", 300, "maintenance", "fault"), ("d2", 301, None, "fault"),
              ("d3", 3000, "online", None)]
    rows = [(*e, i) for i, e in enumerate(events)]
    incidents, _, _ = _run(compile_stateful(SECTION, "prop"), rows, [2, 4])
    assert sorted((r["rule"], r["action"]) for r in incidents) == [
        ("down", "open"), ("faults", "open"), ("offline", "close"), ("offline", "open")]
