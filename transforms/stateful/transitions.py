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
from transforms.stateful.runs import status_runs
from transforms.stateful.spec import TransitionRule


def transition_items(work: pa.Table, rule: TransitionRule, final_before: int | None) -> list[dict]:
    """Open/recover candidates of ``rule`` in a work set sorted by (key, time, seq)."""
    col = status_column(rule.field)
    sub = work.filter(pc.is_valid(work.column(col)))
    if sub.num_rows == 0 or final_before is None:
        return []
    keys = sub.column("key").combine_chunks()
    t = sub.column("time").combine_chunks().cast(pa.int64()).to_numpy(zero_copy_only=False)
    status = sub.column(col).combine_chunks()
    runs = status_runs(keys, pa.array(t), status)
    start, prev, end = runs["start"], runs["prev"], runs["end_time"]
    st = status.to_numpy(zero_copy_only=False)[start]
    t0 = t[start]
    ongoing = np.array([e is None for e in end], dtype=bool)
    end_t = np.where(ongoing, 0, end).astype(np.int64)
    entered = (prev == rule.from_status) if rule.from_status is not None else np.array([p is not None for p in prev])
    lasted = ongoing | (end_t - t0 >= rule.hold_us)
    opens = (st == rule.to_status) & entered & (t0 + rule.hold_us <= final_before) & lasted
    recovers = (st == rule.recover_to) & (t0 <= final_before) if rule.recover_to else np.zeros(len(start), bool)
    pick = np.flatnonzero(opens | recovers)
    rows = sub.take(pa.array(start[pick], pa.int64())).select(["key", "seq", "rid"]).to_pylist()
    for row, j in zip(rows, pick):
        row.update(kind="open" if opens[j] else "recover", time=int(t0[j]), prev=prev[j], status=st[j])
    return rows
