"""Windows and rates over event time, as DuckDB window functions over the Arrow work set.

For each matching event at time ``t`` that is final and not evaluated before:
``count`` = matching events of its key in ``(t − window, t]``, ``base`` = those in
``(t − window − baseline, t − window]``; the baseline per window is
``base × window / baseline``. The event **fires** when ``count ≥ min_count`` and
``count ≥ threshold × baseline`` (a zero baseline fires on ``min_count`` alone). An
*episode* starts where an event fires and the one evaluated before it (in the same
key, across batches) did not. Why DuckDB and not numpy: docs/adr/0301-rate-windows-in-duckdb.md.

>>> import pyarrow as pa
>>> from transforms.stateful.spec import parse_section
>>> sec = parse_section({"key": "d", "time": "t", "rules": [{"rate":
...     {"window": "1h", "baseline": "2h", "threshold": "200%", "min_count": 2}}]})
>>> h = 3_600_000_000
>>> times = [0, 2 * h + 1, 2 * h + 2]
>>> work = pa.table({"key": ["a"] * 3, "time": pa.array(times).cast(pa.timestamp("us", tz="UTC")),
...     "seq": [0, 1, 2], "rid": ["r0", "r1", "r2"], "_m_rate": [True] * 3})
>>> ev = rate_evaluations(work, sec.rules[0], final_before=3 * h, marks=None)
>>> ev.column("cnt").to_pylist(), ev.column("base").to_pylist(), ev.column("fired").to_pylist()
([1, 1, 2], [0, 1, 1], [False, False, True])
>>> ev.column("episode").to_pylist(), ev.column("last_in_key").to_pylist()
([False, False, True], [False, False, True])
"""

from __future__ import annotations

from math import gcd

import duckdb
import pyarrow as pa

from transforms.stateful.events import match_column
from transforms.stateful.spec import RateRule

MARKS = pa.schema([("key", pa.string()), ("mark_time", pa.int64()), ("mark_seq", pa.int64()),
                   ("firing", pa.bool_()), ("last_activity", pa.int64())])

_SQL = """
WITH m AS (
    SELECT key, epoch_us("time") AS t, seq, rid FROM work WHERE "{match}"
), w AS (
    SELECT *,
      count(*) OVER (PARTITION BY key ORDER BY t RANGE BETWEEN {w_minus_1} PRECEDING AND CURRENT ROW) AS cnt,
      count(*) OVER (PARTITION BY key ORDER BY t RANGE BETWEEN {w_plus_b} PRECEDING AND {w_plus_1} PRECEDING) AS base
    FROM m
), e AS (
    SELECT w.*, marks.firing AS was_firing, marks.last_activity AS was_active
    FROM w LEFT JOIN marks USING (key)
    WHERE w.t < {final_before}
      AND (marks.mark_time IS NULL OR w.t > marks.mark_time OR (w.t = marks.mark_time AND w.seq > marks.mark_seq))
), f AS (
    SELECT *, cnt >= {min_count} AND (base = 0 OR cnt * {b_part} >= {threshold} * base * {w_part}) AS fired FROM e
), g AS (
    SELECT *,
      coalesce(lag(fired) OVER k, was_firing, false) AS prev_fired,
      coalesce(max(CASE WHEN fired THEN t END) OVER (k ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
               was_active) AS prev_active,
      row_number() OVER (PARTITION BY key ORDER BY t DESC, seq DESC) = 1 AS last_in_key,
      max(CASE WHEN fired THEN t END) OVER (PARTITION BY key) AS last_fired
    FROM f
    WINDOW k AS (PARTITION BY key ORDER BY t, seq)
)
SELECT key, t, seq, rid, cnt, base, fired, fired AND NOT prev_fired AS episode, prev_active,
       last_in_key, last_fired
FROM g ORDER BY key, t, seq
"""


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory connection for :func:`rate_evaluations` (opening one costs ~10-25 ms here: a
    long-lived caller keeps one, one thread at a time)."""
    con = duckdb.connect()
    con.execute("SET threads = 1")
    return con


def rate_evaluations(work: pa.Table, rule: RateRule, final_before: int | None, marks: pa.Table | None,
                     con: duckdb.DuckDBPyConnection | None = None) -> pa.Table:
    """One row per newly evaluated matching event (see the module text), sorted by (key, t, seq).

    ``con``: a connection of :func:`connect` to reuse (it holds nothing afterwards); else one is opened."""
    if final_before is None:
        final_before = -(2**63)
    g = gcd(rule.window_us, rule.baseline_us)
    own = con is None
    con = connect() if own else con
    con.register("work", work.select(["key", "time", "seq", "rid", match_column(rule.name)]))
    con.register("marks", marks if marks is not None else MARKS.empty_table())
    sql = _SQL.format(match=match_column(rule.name), w_minus_1=rule.window_us - 1,
                      w_plus_b=rule.window_us + rule.baseline_us, w_plus_1=rule.window_us + 1,
                      final_before=int(final_before), min_count=rule.min_count, b_part=rule.baseline_us // g,
                      w_part=rule.window_us // g, threshold=repr(float(rule.threshold)))
    try:
        return con.sql(sql).to_arrow_table()
    finally:
        if own:
            con.close()
        else:
            con.unregister("work")
            con.unregister("marks")
