"""Status runs over a work set sorted by (key, time, seq): segment boundaries by lag comparison.

A *run* is a maximal stretch of one key's events with the same status. Everything here
is array arithmetic over the whole work set; the result has one row per run.

>>> import pyarrow as pa
>>> r = status_runs(pa.array(["a", "a", "a", "b"]), pa.array([1, 2, 5, 3]), pa.array(["on", "off", "off", "off"]))
>>> r["start"].tolist(), r["prev"].tolist(), r["end_time"].tolist()
([0, 1, 3], [None, 'on', None], [2, None, None])
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def boundaries(values: pa.Array) -> np.ndarray:
    """True where a value differs from the one before it (and at 0): segment starts."""
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=bool)
    diff = pc.not_equal(values.slice(1), values.slice(0, n - 1))
    return np.concatenate([[True], pc.fill_null(diff, True).to_numpy(zero_copy_only=False)])


def status_runs(keys: pa.Array, times: pa.Array, status: pa.Array) -> dict[str, np.ndarray]:
    """Runs of equal status per key. ``times`` as int64 µs. Returns column arrays:
    ``start`` (row of the run's first event), ``prev`` (status before the run in the key, or None),
    ``end_time`` (time of the next run's start in the key, or None while the run goes on)."""
    first = boundaries(keys)
    starts = np.flatnonzero(first | boundaries(status))
    st = status.to_numpy(zero_copy_only=False)
    t = np.asarray(times.to_numpy(zero_copy_only=False), dtype=np.int64)
    opening = first[starts]
    prev = np.where(opening, None, st[np.maximum(starts - 1, 0)]).astype(object)
    nxt = np.append(starts[1:], len(st))
    ongoing = np.append(first[starts[1:]], True) if len(starts) else np.zeros(0, dtype=bool)
    end_time = np.where(ongoing, None, t[np.minimum(nxt, len(t) - 1)] if len(t) else nxt).astype(object)
    return {"start": starts, "prev": prev, "end_time": end_time, "first": first}
