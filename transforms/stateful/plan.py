"""Compile a ``stateful:`` section once, apply it per event batch.

``apply`` is: prepare (cast, quarantine missing / late / duplicate) → advance the watermark
→ sort buffer + new events by (key, time, seq) → candidates per rule (vectorised) →
resolve them into incident rows (a loop over candidates only) → keep what the next batch needs.

>>> from datetime import datetime, timezone
>>> import pyarrow as pa
>>> plan = compile_stateful({"key": "device_id", "time": "event_time", "rules": [
...     {"name": "offline", "transition": {"field": "status", "from": "online", "to": "offline", "for": "120s"},
...      "emit": "open", "recover": {"to": "online", "emit": "close"}}]}, "demo")
>>> at = lambda m, s=0: datetime(2026, 11, 24, 8, m, s, tzinfo=timezone.utc)
>>> ev = pa.table({"device_id": ["d1"] * 3 + ["d2"], "event_time": [at(0), at(1), at(9), at(10)],
...                "status": ["online", "offline", "online", "online"]})
>>> incidents, quarantined, state = plan.apply(ev, State.empty())
>>> incidents.select(["device_id", "action", "duration_s"]).to_pylist()
[{'device_id': 'd1', 'action': 'open', 'duration_s': 120.0}, {'device_id': 'd1', 'action': 'close', 'duration_s': 480.0}]
>>> len(set(incidents.column("incident_key").to_pylist())), quarantined.num_rows
(1, 0)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms.stateful.events import match_column, prepare, status_column
from transforms.stateful.incidents import incident_schema, to_table
from transforms.stateful.rates import rate_evaluations
from transforms.stateful.resolve import Resolver, Scopes, rule_marks
from transforms.stateful.runs import codes, status_runs
from transforms.stateful.spec import StatefulSection, StatefulSpecError, parse_section
from transforms.stateful.state import BUFFER_BASE, State
from transforms.stateful.transitions import transition_items


def _us(when: datetime) -> int:
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return pa.scalar(when, pa.timestamp("us", tz="UTC")).cast(pa.int64()).as_py()


@dataclass(frozen=True)
class StatefulPlan:
    spec_id: str
    section: StatefulSection

    @property
    def buffer_schema(self) -> pa.Schema:
        extra = [(status_column(f), pa.string()) for f in self.section.status_fields]
        extra += [(match_column(r.name), pa.bool_()) for r in self.section.rates]
        return pa.schema([*BUFFER_BASE, *extra])

    @property
    def incident_schema(self) -> pa.Schema:
        return incident_schema(self.section.key)

    def _align(self, buffer: pa.Table) -> pa.Table:
        """The saved buffer in this plan's columns (a rule added since: nulls / false)."""
        n = buffer.num_rows
        cols = []
        for f in self.buffer_schema:
            if f.name in buffer.column_names:
                cols.append(buffer.column(f.name).cast(f.type))
            else:
                cols.append(pa.array(np.zeros(n, bool)) if f.type == pa.bool_() else pa.nulls(n, f.type))
        return pa.table(cols, schema=self.buffer_schema)

    def _frontier(self, state: State, accepted: pa.Table, now: datetime | None) -> int | None:
        lateness = self.section.lateness_us
        cands = [state.watermark]
        if accepted.num_rows:
            cands.append(pc.max(accepted.column("time")).cast(pa.int64()).as_py() - lateness)
        if now is not None:
            cands.append(_us(now) - lateness)
        cands = [c for c in cands if c is not None]
        return max(cands) if cands else None

    def apply(self, events: pa.Table, state: State, now: datetime | None = None,
              con=None) -> tuple[pa.Table, pa.Table, State]:
        """(incidents, quarantined events, new state) for one batch; ``state`` is not changed.

        ``now`` (optional) is a heartbeat: the caller asserts that no event older than
        ``now − lateness`` will still come, so offline timers can fire without new events.
        Leave it out for a replay that must reproduce the same incidents. ``con``: a DuckDB connection
        of :func:`transforms.stateful.rates.connect` kept by a long-lived caller for the rate rules.
        """
        buffer = self._align(state.buffer)
        rids = pc.drop_null(buffer.column("rid")).combine_chunks() if buffer.num_rows else None
        accepted, quarantined = prepare(events, self.section, watermark=state.watermark, next_seq=state.next_seq,
                                        known_rids=rids, spec_id=self.spec_id)
        final = self._frontier(state, accepted, now)
        work = pa.concat_tables([buffer, accepted.cast(self.buffer_schema)])
        key_codes, _ = codes(work.column("key"))
        t = work.column("time").combine_chunks().cast(pa.int64()).to_numpy(zero_copy_only=False)
        seq = work.column("seq").combine_chunks().to_numpy(zero_copy_only=False)
        order = np.lexsort((seq, t, key_codes))  # grouped by key (any fixed key order will do), then time, arrival
        work, key_codes = work.take(pa.array(order)), key_codes[order]
        found, touched = [], set()
        for rule in self.section.rules:  # vectorised: candidates per rule, against the saved marks
            marks, open_keys = rule_marks(state.scopes, rule.name)
            if rule.kind == "transition":
                items = transition_items(work, rule, final, marks, open_keys, key_codes)
                touched.update(i["key"] for i in items)
            else:
                items = rate_evaluations(work, rule, final, marks, con)
                touched.update(pc.unique(items.filter(items.column("episode")).column("key")).to_pylist())
            found.append((rule, items))
        scopes = Scopes.split(state.scopes, pa.array(sorted(touched), pa.string()))
        resolver = Resolver(self.spec_id, self.section)
        for rule, items in found:  # the one loop: over candidates of the keys that changed
            (resolver.transition if rule.kind == "transition" else resolver.rate)(rule, scopes, items)
        incidents = to_table(resolver.rows, self.section.key)
        new_state = State(final, state.next_seq + events.num_rows, self._compact(work, final, key_codes),
                          scopes.table(), state.generation)
        return incidents, quarantined, new_state

    def _compact(self, work: pa.Table, final: int | None, key_codes: np.ndarray) -> pa.Table:
        """Keep the events a later batch can still need (see transforms.stateful.state)."""
        if final is None or work.num_rows == 0:
            return work
        t = work.column("time").combine_chunks().cast(pa.int64()).to_numpy(zero_copy_only=False)
        keep = t >= final
        for f in self.section.status_fields:
            status, _ = codes(work.column(status_column(f)))
            pos = np.flatnonzero((status >= 0) & (t < final))
            if not len(pos):
                continue
            runs = status_runs(key_codes[pos], t[pos], status[pos])
            last = np.flatnonzero(runs.ongoing)  # each key's last run (index into the runs)
            keep[pos[runs.start[last]]] = True
            before = last[runs.has_prev[last]] - 1  # and the run before it (its "from" status), by its first
            keep[pos[runs.start[before]]] = True    # event: run starts do not depend on batch cuts
        for r in self.section.rates:
            m = pc.fill_null(work.column(match_column(r.name)), False).to_numpy(zero_copy_only=False)
            keep |= m & (t >= final - r.window_us - r.baseline_us)
        return work.filter(pa.array(keep))


def check_stateful(section: dict) -> list[tuple[tuple, str]]:
    """Every problem of a ``stateful:`` section as ``(path from the spec root, message)``; [] when valid.

    >>> check_stateful({"key": "device_id", "time": "event_time", "rules": [{"transition": {"field": "s", "to": "x", "for": "2x"}}]})
    [(('stateful', 'rules', 0, 'transition', 'for'), "'2x' is not a duration like 90s, 30m, 1h30m, 2d (units ms, s, m, h, d)")]
    """
    try:
        parse_section(section)
    except StatefulSpecError as err:
        return err.located
    return []


def compile_stateful(section: dict, spec_id: str) -> StatefulPlan:
    """Validate a ``stateful:`` section (raises StatefulSpecError naming each rule path) and compile it."""
    return StatefulPlan(spec_id, parse_section(section))

