"""The vectorised transition rule against an independent per-event reference (lateness 0, no cooldown).

The reference walks events in arrival order with a timer heap, the way one would write it by
hand: a run of ``offline`` entered from ``online`` opens once the clock (newest event time) is
120 s past its start while it still lasts; the next ``online`` closes it.
"""

from __future__ import annotations

import heapq
from datetime import datetime, timedelta, timezone

import pyarrow as pa
from hypothesis import example, given, settings
from hypothesis import strategies as st

from transforms.stateful import State, compile_stateful

T0 = datetime(2026, 11, 24, tzinfo=timezone.utc)
HOLD = 120
SECTION = {"key": "device_id", "time": "event_time",
           "rules": [{"name": "offline", "transition": {"field": "status", "from": "online", "to": "offline",
                                                         "for": f"{HOLD}s"}, "recover": {"to": "online"}}]}


def reference(rows):
    """[(device, t seconds, status)] in arrival order, times non-decreasing -> [(device, action, since)]."""
    last, open_, timers, out = {}, {}, [], []
    for d, t, s in rows:
        while timers and timers[0][0] <= t:
            _, dd, t0 = heapq.heappop(timers)
            if last[dd] == ("offline", t0, "online") and dd not in open_:
                open_[dd] = t0
                out.append((dd, "open", t0))
        prev = last.get(d)
        if s is None or (prev is not None and prev[0] == s):
            continue
        if s == "online" and d in open_:
            out.append((d, "close", open_.pop(d)))
        last[d] = (s, t, prev[0] if prev else None)
        if s == "offline":
            heapq.heappush(timers, (t + HOLD, d, t))
    return out


def _table(rows):
    return pa.table({"device_id": pa.array([r[0] for r in rows], pa.string()),
                     "event_time": pa.array([T0 + timedelta(seconds=r[1]) for r in rows], pa.timestamp("us", tz="UTC")),
                     "status": pa.array([r[2] for r in rows], pa.string())})


step = st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from([0, 1, 30, 60, 119, 120, 121, 200]),
                 st.sampled_from(["online", "online", "offline", "offline", "maintenance", None]))


@example([("a", 0, "online"), ("a", 1, "offline"), ("b", 120, "online")], 50)  # exactly 120 s: opens
@example([("a", 0, "online"), ("a", 1, "offline"), ("a", 120, "online")], 1)  # ends at exactly 120 s: opens
@settings(max_examples=150, deadline=None)
@given(st.lists(step, max_size=50), st.integers(1, 50))
def test_vectorised_rule_equals_the_per_event_reference(steps, batch):
    rows, clock = [], 0
    for d, gap, s in steps:
        clock += gap
        rows.append((d, clock, s))
    plan, state, got = compile_stateful(SECTION, "ref"), State.empty(), []
    for lo in range(0, max(len(rows), 1), batch):
        inc, q, state = plan.apply(_table(rows[lo:lo + batch]), state)
        assert q.num_rows == 0
        got += [(r["device_id"], r["action"], int((r["since"] - T0).total_seconds()))
                for r in inc.select(["device_id", "action", "since"]).to_pylist()]
    assert sorted(got) == sorted(reference(rows))
