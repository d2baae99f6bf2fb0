"""Candidate items of a transition rule, found over the whole work set at once.

An **open** candidate is a run of status ``to`` entered from ``from`` (or from any other
status when ``from`` is omitted) that provably lasted at least ``for``: its start plus
``for`` is not after the final frontier, and the run did not end sooner. A **recover**
candidate is the start of a run of status ``recover.to`` at or before the frontier.
Which candidates become incidents (marks, open incident, cooldown) is decided later,
in :mod:`transforms.stateful.resolve`, with a loop over these few rows only.

>>> import pyarrow as pa
>>> from transforms.stateful.spec import parse_section
>>> sec = parse_section({"key": "d", "time": "t", "rules": [{"transition":
...     {"field": "status", "from": "online", "to": "offline", "for": 10}, "recover": {"to": "online"}}]})
>>> s = 1_000_000
>>> work = pa.table({"key": ["a"] * 4, "time": pa.array([0, 5 * s, 20 * s, 40 * s]).cast(pa.timestamp("us", tz="UTC")),
...     "seq": [0, 1, 2, 3], "rid": [None] * 4, "_s_status": ["online", "offline", "online", "offline"]})
>>> [(i["kind"], i["time"] // s) for i in transition_items(work, sec.rules[0], final_before=45 * s)]
[('recover', 0), ('open', 5), ('recover', 20)]
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms.stateful.events import status_column
from transforms.stateful.runs import codes, status_runs
from transforms.stateful.spec import TransitionRule


def _after(keys: pa.Array, t0: np.ndarray, seq: np.ndarray, marks: pa.Table | None) -> np.ndarray:
    """True where (t0, seq) is past the key's decided mark (vectorised lookup of the marks)."""
    if marks is None or marks.num_rows == 0:
        return np.ones(len(t0), dtype=bool)
    idx = pc.index_in(keys, value_set=marks.column("key").combine_chunks())
    has = pc.is_valid(idx).to_numpy(zero_copy_only=False)
    safe = pc.fill_null(idx, 0)
    mt = marks.column("mark_time").combine_chunks().take(safe).to_numpy(zero_copy_only=False)
    ms = marks.column("mark_seq").combine_chunks().take(safe).to_numpy(zero_copy_only=False)
    return ~has | (t0 > mt) | ((t0 == mt) & (seq > ms))


def _opened_before(opens: np.ndarray, has_prev: np.ndarray) -> np.ndarray:
    """Per run: an open candidate came earlier in the same key."""
    c = np.cumsum(opens) - opens
    key_start = np.maximum.accumulate(np.where(~has_prev, np.arange(len(opens)), 0)) if len(opens) else opens
    return c - c[key_start] > 0


def transition_items(work: pa.Table, rule: TransitionRule, final_before: int | None,
                     marks: pa.Table | None = None, open_keys: pa.Array | None = None,
                     key_codes: np.ndarray | None = None) -> list[dict]:
    """Open/recover candidates of ``rule`` in a work set sorted by (key, time, seq).

    With ``marks`` (key, mark_time, mark_seq) runs already decided are left out; with
    ``open_keys`` a recovery is kept only where an incident can be open (in state, or opened
    earlier in this work set), so the decision loop sees only rows that can matter.
    ``key_codes`` are integer codes of the work set's keys (computed here when not given)."""
    if work.num_rows == 0 or final_before is None:
        return []
    status, names = codes(work.column(status_column(rule.field)))
    pos = np.flatnonzero(status >= 0)
    if not len(pos):
        return []
    kc = key_codes if key_codes is not None else codes(work.column("key"))[0]
    t_all = work.column("time").combine_chunks().cast(pa.int64()).to_numpy(zero_copy_only=False)
    t, st_all = t_all[pos], status[pos]
    runs = status_runs(kc[pos], t, st_all)
    start = runs.start
    st, t0 = st_all[start], t[start]
    code = {v: i for i, v in enumerate(names.to_pylist())}
    to, frm, rec = (code.get(x, -2) for x in (rule.to_status, rule.from_status, rule.recover_to))
    entered = runs.has_prev & ((runs.prev == frm) if rule.from_status is not None else True)
    lasted = runs.ongoing | (runs.end_time - t0 >= rule.hold_us)
    opens = (st == to) & entered & (t0 + rule.hold_us <= final_before) & lasted
    recovers = (st == rec) & (t0 <= final_before) if rule.recover_to else np.zeros(len(start), bool)
    rows_at = pos[start]
    run_keys = work.column("key").take(pa.array(rows_at, pa.int64())).combine_chunks()
    seq = work.column("seq").combine_chunks().to_numpy(zero_copy_only=False)[rows_at]
    after = _after(run_keys, t0, seq, marks)
    opens &= after
    if open_keys is not None:
        in_state = pc.is_in(run_keys, value_set=open_keys).to_numpy(zero_copy_only=False)
        recovers &= after & (in_state | _opened_before(opens, runs.has_prev))
    pick = np.flatnonzero(opens | recovers)
    rows = work.take(pa.array(rows_at[pick], pa.int64())).select(["key", "seq", "rid"]).to_pylist()
    labels = names.to_pylist()
    for row, j in zip(rows, pick):
        row.update(kind="open" if opens[j] else "recover", time=int(t0[j]),
                   prev=labels[runs.prev[j]] if runs.has_prev[j] else None, status=labels[st[j]])
    return rows
