"""Turn an incoming event batch into buffer rows, and sort out the ones that cannot be used.

Vectorised: casts, null checks, the lateness test (a running maximum over the batch in
arrival order) and duplicate detection are whole-array kernels.

An event is **late** when its time is older than the watermark it met on arrival:
``max(state watermark, latest event time seen before it − lateness)``. That depends only
on arrival order, never on how the stream was cut into batches, so replays agree.

>>> import pyarrow as pa
>>> from datetime import datetime, timezone
>>> from transforms.stateful.spec import parse_section
>>> sec = parse_section({"key": "device_id", "time": "event_time", "lateness": "10s",
...     "rules": [{"transition": {"field": "status", "to": "offline"}}]})
>>> at = lambda s: datetime(2026, 11, 24, 8, 0, s, tzinfo=timezone.utc)
>>> ev = pa.table({"device_id": ["a", "a", None, "b"], "event_time": [at(30), at(5), at(40), at(21)],
...                "status": ["offline", "online", "online", "online"]})
>>> ok, bad = prepare(ev, sec, watermark=None, next_seq=0)
>>> ok.column("seq").to_pylist(), bad.column("row").to_pylist(), bad.column("reason").to_pylist()
([0, 3], [1, 2], ['late event: 2026-11-24T08:00:05+00:00 is older than the watermark 2026-11-24T08:00:20+00:00', 'missing key device_id'])
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectors.base.reserved import RECORD_ID
from connectors.errors import ConfigError
from transforms.stateful.spec import StatefulSection
from transforms.stateful.state import TS

INT64_MIN = np.iinfo(np.int64).min
QUARANTINE = pa.schema([
    (RECORD_ID, pa.string()), ("row", pa.int64()), ("target", pa.string()), ("field", pa.string()),
    ("reason", pa.string()), ("rule", pa.string()), ("_wl_spec_id", pa.string()), ("_wl_spec_version", pa.string()),
])


def status_column(field: str) -> str:
    return f"_s_{field}"


def match_column(rule: str) -> str:
    return f"_m_{rule}"


def _iso(us: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=us)).isoformat()


def _times(col: pa.ChunkedArray, name: str) -> pa.Array:
    col = col.combine_chunks()
    if not pa.types.is_timestamp(col.type):
        raise ConfigError(f"the event time column {name!r} is {col.type}, not a timestamp")
    if col.type.tz is None:
        col = pc.assume_timezone(col, "UTC")
    return col.cast(TS)


def required_columns(section: StatefulSection) -> list[str]:
    cols = [section.key, section.time, *section.status_fields]
    for r in section.rates:
        cols += getattr(r.where, "columns", [])
    return list(dict.fromkeys(cols))


def _first_reason(reasons: list[tuple[np.ndarray, object]], n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first reason per row that applies: (mask of bad rows, reason texts)."""
    bad = np.zeros(n, dtype=bool)
    text = np.full(n, None, dtype=object)
    for mask, why in reasons:
        new = mask & ~bad
        if new.any():
            text[new] = why[new] if isinstance(why, np.ndarray) else why
            bad |= new
    return bad, text


def prepare(events: pa.Table, section: StatefulSection, *, watermark: int | None, next_seq: int,
            known_rids: pa.Array | None = None, spec_id: str | None = None) -> tuple[pa.Table, pa.Table]:
    """(buffer rows of the accepted events, quarantine rows of the others)."""
    missing = [c for c in required_columns(section) if c not in events.column_names]
    if missing:
        raise ConfigError(f"stateful: the events lack column(s) {missing} (they have {events.column_names})")
    n = events.num_rows
    key = events.column(section.key).combine_chunks().cast(pa.string())
    ts = _times(events.column(section.time), section.time)
    t = pc.fill_null(ts.cast(pa.int64()), INT64_MIN).to_numpy(zero_copy_only=False)
    no_key, no_time = pc.is_null(key).to_numpy(zero_copy_only=False), pc.is_null(ts).to_numpy(zero_copy_only=False)
    seen = np.maximum.accumulate(np.where(no_key, INT64_MIN, t)) if n else t  # keyless events move nothing
    before = np.concatenate([[INT64_MIN], seen[:-1]]) if n else t
    lag = np.where(before == INT64_MIN, INT64_MIN, before - section.lateness_us)
    wm = np.maximum(lag, INT64_MIN if watermark is None else watermark)
    late = (t < wm) & ~no_time
    late_text = np.array([f"late event: {_iso(int(x))} is older than the watermark {_iso(int(w))}" if b else None
                          for x, w, b in zip(t[late], wm[late], late[late])], dtype=object)
    late_why = np.full(n, None, dtype=object)
    late_why[late] = late_text
    reasons = [(no_key, f"missing key {section.key}"), (no_time, f"missing event time {section.time}"),
               (late, late_why)]
    rid = events.column(RECORD_ID).combine_chunks().cast(pa.string()) if RECORD_ID in events.column_names \
        else pa.nulls(n, pa.string())
    if RECORD_ID in events.column_names and n:
        r = rid.to_numpy(zero_copy_only=False)
        ok_so_far = ~(no_key | no_time | late)
        idx = np.flatnonzero(ok_so_far)
        _, first = np.unique(r[idx].astype(str), return_index=True)
        dup = ok_so_far.copy()
        dup[idx[first]] = False
        if known_rids is not None and len(known_rids):
            dup |= pc.fill_null(pc.is_in(rid, value_set=known_rids), False).to_numpy(zero_copy_only=False)
        reasons.append((dup & pc.is_valid(rid).to_numpy(zero_copy_only=False), "duplicate event (same record id)"))
    bad, why = _first_reason(reasons, n)
    ok = pa.array(~bad)
    cols = {"key": key, "time": ts, "seq": pa.array(np.arange(next_seq, next_seq + n, dtype=np.int64)), "rid": rid}
    for f in section.status_fields:
        cols[status_column(f)] = events.column(f).combine_chunks().cast(pa.string())
    for r in section.rates:
        cols[match_column(r.name)] = r.where(events) if r.where else pa.array(np.ones(n, dtype=bool))
    accepted = pa.table(cols).filter(ok)
    rows = np.flatnonzero(bad)
    field = np.where(no_key[rows], section.key, section.time).astype(object) if len(rows) else []
    rule = np.where(late[rows], "stateful.lateness", "stateful.event").astype(object) if len(rows) else []
    quarantined = pa.table({
        RECORD_ID: rid.take(pa.array(rows, pa.int64())), "row": pa.array(rows, pa.int64()),
        "target": pa.nulls(len(rows), pa.string()), "field": pa.array(list(field), pa.string()),
        "reason": pa.array(list(why[rows]), pa.string()), "rule": pa.array(list(rule), pa.string()),
        "_wl_spec_id": pa.array([spec_id] * len(rows), pa.string()),
        "_wl_spec_version": pa.nulls(len(rows), pa.string()),
    }, schema=QUARANTINE)
    return accepted, quarantined
