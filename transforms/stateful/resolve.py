"""Decide which candidates become incident rows: marks, the open incident, cooldown, dedup.

This is the one loop in the stage, and it runs over candidate items (status changes
and rate episodes), never over events. Scope = (key, rule): one incident open at a time.

- A transition that fires while its scope already has an open incident **annotates** it.
- One that fires within ``cooldown`` of the scope's last activity (its last open,
  annotate or close, in event time) **annotates** the last incident and re-opens it:
  a flapping device keeps one ticket.
- Otherwise it **opens** a new incident whose key hashes (spec, key, rule, start).
- A recovery closes (or annotates, as the rule says) the open incident.
- A rate episode is an open or, within cooldown of the last firing, an annotate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pyarrow.compute as pc

from transforms.stateful.durations import format_duration
from transforms.stateful.incidents import incident_key, row_id
from transforms.stateful.spec import RateRule, StatefulSection, TransitionRule
from transforms.stateful.state import SCOPES

_TS_COLS = ("open_since", "last_activity", "mark_time")


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _iso(us: int) -> str:
    return (_EPOCH + timedelta(microseconds=us)).isoformat()


def rule_marks(scopes: pa.Table, rule: str) -> tuple[pa.Table, pa.Array]:
    """From the saved scope table, vectorised: the rule's marks (key, mark_time, mark_seq, firing,
    last_activity as µs) and the keys with an open incident."""
    mine = scopes.filter(pc.equal(scopes.column("rule"), rule)) if scopes.num_rows else SCOPES.empty_table()
    marks = pa.table({"key": mine.column("key"), "mark_time": mine.column("mark_time").cast(pa.int64()),
                      "mark_seq": mine.column("mark_seq"), "firing": mine.column("firing"),
                      "last_activity": mine.column("last_activity").cast(pa.int64())})
    marks = marks.filter(pc.is_valid(marks.column("mark_time")))
    open_keys = mine.filter(pc.is_valid(mine.column("open_key"))).column("key").combine_chunks()
    return marks, open_keys


@dataclass
class Scopes:
    """The (key, rule) rows of the state that this batch may touch, as plain dicts."""

    untouched: pa.Table
    rows: dict[tuple[str, str], dict] = field(default_factory=dict)
    bulk: list[tuple[str, pa.Table]] = field(default_factory=list)  # (rule, per-key rate marks) merged in table()

    @classmethod
    def split(cls, scopes: pa.Table, keys: pa.Array) -> "Scopes":
        hit = pc.is_in(scopes.column("key"), value_set=pc.unique(keys)) if scopes.num_rows else pa.array([], pa.bool_())
        touched = scopes.filter(hit)
        for c in _TS_COLS:
            touched = touched.set_column(touched.schema.get_field_index(c), c, touched.column(c).cast(pa.int64()))
        return cls(scopes.filter(pc.invert(hit)), {(r["key"], r["rule"]): r for r in touched.to_pylist()})

    def get(self, key: str, rule: str) -> dict:
        return self.rows.setdefault((key, rule), {n: None for n in SCOPES.names} | {"key": key, "rule": rule})

    def table(self) -> pa.Table:
        rows = sorted(self.rows.values(), key=lambda r: (r["key"], r["rule"]))
        cols = {n: [r[n] for r in rows] for n in SCOPES.names}
        ints = {n: pa.array(cols[n], pa.int64()).cast(SCOPES.field(n).type) for n in _TS_COLS}
        new = pa.table({n: ints.get(n, pa.array(cols[n], SCOPES.field(n).type)) for n in SCOPES.names}, schema=SCOPES)
        out = pa.concat_tables([self.untouched.cast(SCOPES), new])
        for rule, upd in self.bulk:
            out = _merge_marks(out, rule, upd)
        return out.take(pc.sort_indices(out, [("key", "ascending"), ("rule", "ascending")]))


def _merge_marks(scopes: pa.Table, rule: str, upd: pa.Table) -> pa.Table:
    """Set mark, firing and last activity of ``rule`` for the keys in ``upd`` (key, t, seq, fired,
    last_fired), vectorised: a full outer join on (key, rule), new scopes where there was none."""
    ts = SCOPES.field("mark_time").type
    u = pa.table({"key": upd.column("key"), "rule": pa.array([rule] * upd.num_rows, pa.string()),
                  "u_time": upd.column("t").cast(pa.int64()).cast(ts), "u_seq": upd.column("seq"),
                  "u_firing": upd.column("fired"), "u_fired": upd.column("last_fired").cast(pa.int64()).cast(ts)})
    j = scopes.join(u, keys=["key", "rule"], join_type="full outer")
    cols = {n: j.column(n) for n in SCOPES.names}
    cols["mark_time"] = pc.coalesce(j.column("u_time"), j.column("mark_time"))
    cols["mark_seq"] = pc.coalesce(j.column("u_seq"), j.column("mark_seq"))
    cols["firing"] = pc.coalesce(j.column("u_firing"), j.column("firing"))
    cols["last_activity"] = pc.max_element_wise(j.column("last_activity").cast(pa.int64()),
                                                j.column("u_fired").cast(pa.int64()), skip_nulls=True).cast(ts)
    return pa.table(cols, schema=SCOPES)


def _after_mark(scope: dict, t: int, seq: int) -> bool:
    return scope["mark_time"] is None or (t, seq) > (scope["mark_time"], scope["mark_seq"])


class Resolver:
    def __init__(self, spec_id: str, section: StatefulSection):
        self.spec_id, self.section, self.rows = spec_id, section, []

    def _emit(self, scope: dict, rule, action: str, incident: str, seq: int, evidence, **cols) -> None:
        self.rows.append({
            self.section.key: scope["key"], "rule": rule.name, "kind": rule.kind, "action": action,
            "incident_key": incident, "evidence": [e for e in evidence if e], "_order": len(self.rows),
            "row_id": row_id(self.spec_id, incident, action, cols["at"], seq),
            **cols,
        })

    def _open_or_annotate(self, scope: dict, rule, since: int, trigger: int, ongoing: bool) -> tuple[str, str]:
        last = scope["last_activity"]
        if ongoing and scope["open_key"]:
            return "annotate", scope["open_key"]
        if scope["last_key"] and last is not None and trigger - last < self.section.cooldown_us:
            return "annotate", scope["last_key"]
        return "open", incident_key(self.spec_id, scope["key"], rule.name, since)

    def transition(self, rule: TransitionRule, scopes: Scopes, items: list[dict]) -> None:
        for it in items:
            scope = scopes.get(it["key"], rule.name)
            if not _after_mark(scope, it["time"], it["seq"]):
                continue
            scope["mark_time"], scope["mark_seq"] = it["time"], it["seq"]
            if it["kind"] == "open":
                trigger = it["time"] + rule.hold_us
                action, key = self._open_or_annotate(scope, rule, it["time"], trigger, ongoing=True)
                why = f"{it['prev'] or 'any'} → {rule.to_status} at {_iso(it['time'])}, lasted ≥ {format_duration(rule.hold_us)}"
                self._emit(scope, rule, action, key, it["seq"], [it["rid"]], since=it["time"], at=trigger,
                           from_status=it["prev"], to_status=rule.to_status, duration_s=rule.hold_us / 1e6,
                           detail=f"{scope['key']}: {why}" + (" (within cooldown)" if action == "annotate" else ""))
                scope.update(last_key=key, last_activity=trigger, open_since=it["time"], open_seq=it["seq"],
                             open_key=key if rule.recover_to else None)
            elif scope["open_key"]:
                since = scope["open_since"]
                self._emit(scope, rule, rule.recover_emit, scope["open_key"], it["seq"], [it["rid"]], since=since,
                           at=it["time"], from_status=it["prev"], to_status=it["status"],
                           duration_s=(it["time"] - since) / 1e6,
                           detail=f"{scope['key']}: back to {it['status']} at {_iso(it['time'])} after "
                                  f"{format_duration(it['time'] - since)}")
                scope.update(open_key=None, open_since=None, open_seq=None, last_activity=it["time"])

    def rate(self, rule: RateRule, scopes: Scopes, evals: pa.Table) -> None:
        for it in evals.filter(evals.column("episode")).to_pylist():
            scope = scopes.get(it["key"], rule.name)
            t = it["t"]
            last = it["prev_active"]
            if scope["last_key"] and last is not None and t - last < self.section.cooldown_us:
                action, key = "annotate", scope["last_key"]
            else:
                action, key = "open", incident_key(self.spec_id, it["key"], rule.name, t)
            scope["last_key"] = key
            expected = it["base"] * rule.window_us / rule.baseline_us
            ratio = it["cnt"] / expected if expected else None
            self._emit(scope, rule, action, key, it["seq"], [it["rid"]], since=t, at=t, window_start=t - rule.window_us,
                       window_end=t, count=it["cnt"], baseline=expected, ratio=ratio,
                       detail=f"{it['key']}: {it['cnt']} events in {format_duration(rule.window_us)} to {_iso(t)}, "
                              f"baseline {expected:.2f}" + (f" ({ratio:.0%})" if ratio else ""))
        last = evals.filter(evals.column("last_in_key")).select(["key", "t", "seq", "fired", "last_fired"])
        scopes.bulk.append((rule.name, last))  # every evaluated key's mark: merged vectorised, no loop
