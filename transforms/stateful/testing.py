"""The stateful side of spec test cases (``<name>.test.yaml``): events in, incidents out.

A case of a stateful spec gives *events* as ``input`` (in arrival order) and, as for
any spec, the expected target rows under ``expect``. Optional keys read here:

- ``batches: [3, 5]`` — cut the input before these row indexes; state is carried
  from batch to batch (saved and loaded, as across a restart).
- ``now: 2026-11-24T08:10:00Z`` — a heartbeat after the last batch (see ``apply``).
- ``expect_incidents: [{action: open, device_id: dev-1}, ...]`` — the incident rows,
  only the listed columns compared (all rows, in order).
- ``expect_event_quarantine: [{row: 4, reason: late event}]`` — events the stateful stage
  quarantined (``row`` counts over the whole input). Any quarantined event not listed fails
  the case: nothing is dropped silently.

Times given as text are parsed as ISO 8601 (UTC when no offset).
"""

from __future__ import annotations

import datetime as dt
import tempfile

import pyarrow as pa

from transforms.stateful.plan import compile_stateful
from transforms.stateful.state import State, load_state, save_state


def _times(table: pa.Table, name: str) -> pa.Table:
    if name not in table.column_names or pa.types.is_timestamp(table.column(name).type):
        return table
    from transforms.casts import safe_cast

    out, bad = safe_cast(table.column(name).combine_chunks(), "timestamp")
    if any(bad.to_pylist()):
        rows = [i for i, b in enumerate(bad.to_pylist()) if b]
        raise ValueError(f"input rows {rows}: {name} is not an ISO 8601 time")
    return table.set_column(table.schema.get_field_index(name), name, out)


def _as_time(v) -> dt.datetime | None:
    if v is None or isinstance(v, dt.datetime):
        return v
    return dt.datetime.fromisoformat(str(v).replace("Z", "+00:00"))


def _compare(what: str, got: list[dict], want: list[dict]) -> None:
    if len(got) != len(want):
        raise AssertionError(f"{what}: expected {len(want)} row(s), got {len(got)}: {got}")
    for i, (g, w) in enumerate(zip(got, want)):
        for k, v in w.items():
            gv = g.get(k)
            if k == "reason" and isinstance(v, str) and isinstance(gv, str):
                ok = v.lower() in gv.lower()
            elif isinstance(gv, dt.datetime):
                ok = gv == _as_time(v)
            else:
                ok = gv == v
            if not ok:
                raise AssertionError(f"{what} row {i}: {k} = {gv!r}, expected {v!r}")


def run_events(section: dict, spec_id: str, events: pa.Table, *, batches=(), now=None) -> tuple[pa.Table, pa.Table]:
    """Run ``events`` through a fresh state in the given batches: (incidents, quarantined events)."""
    plan = compile_stateful(section, spec_id)
    events = _times(events, plan.section.time)
    bounds = [0, *sorted({int(b) for b in batches if 0 < int(b) < events.num_rows}), events.num_rows]
    incidents, quarantined = [], []
    with tempfile.TemporaryDirectory() as home:
        state = State.empty()
        for lo, hi in zip(bounds, bounds[1:]):
            inc, q, state = plan.apply(events.slice(lo, hi - lo), state)
            save_state(home, spec_id, state)
            state = load_state(home, spec_id)  # as after a restart
            incidents.append(inc)
            quarantined.append(q.set_column(q.schema.get_field_index("row"), "row",
                                            pa.array([r + lo for r in q.column("row").to_pylist()], pa.int64())))
        if now is not None:
            inc, q, state = plan.apply(events.slice(0, 0), state, now=_as_time(now))
            incidents.append(inc)
    return pa.concat_tables(incidents), pa.concat_tables(quarantined)


def run_for_test(spec, table: pa.Table, case: dict) -> pa.Table:
    """The incidents a test case's events produce, checked against the case's stateful expectations."""
    incidents, quarantined = run_events(spec.stateful, spec.id, table, batches=case.get("batches") or (),
                                        now=case.get("now"))
    if "expect_incidents" in case:
        _compare("incidents", incidents.to_pylist(), case["expect_incidents"] or [])
    want_q = case.get("expect_event_quarantine") or []
    _compare("quarantined events", quarantined.select(["row", "reason"]).to_pylist(), want_q)
    return incidents
