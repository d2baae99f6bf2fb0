"""Status runs over a work set sorted by (key, time, seq): segment boundaries by lag comparison.

A *run* is a maximal stretch of one key's events with the same status. Keys and statuses
come as integer codes (dictionary indices), so everything is integer array arithmetic over
the whole work set; the result has one entry per run.

>>> import numpy as np
>>> r = status_runs(np.array([0, 0, 0, 1]), np.array([1, 2, 5, 3]), np.array([7, 8, 8, 8]))
>>> r.start.tolist(), r.has_prev.tolist(), r.prev.tolist(), r.ongoing.tolist(), r.end_time.tolist()
([0, 1, 3], [False, True, False], [7, 7, 8], [False, True, True], [2, 0, 0])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def boundaries(values: np.ndarray) -> np.ndarray:
    """True where a value differs from the one before it (and at 0): segment starts."""
    if len(values) == 0:
        return np.zeros(0, dtype=bool)
    return np.concatenate([[True], values[1:] != values[:-1]])


def codes(values: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """Dictionary codes of ``values`` (-1 for null) and the dictionary."""
    enc = pc.dictionary_encode(values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values)
    return pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64), enc.dictionary


@dataclass(frozen=True)
class Runs:
    start: np.ndarray     # row of each run's first event
    first: np.ndarray     # per row: the key's first row
    has_prev: np.ndarray  # per run: a run of the same key came before it
    prev: np.ndarray      # per run: the status code of the row before the run (meaningless where not has_prev)
    ongoing: np.ndarray   # per run: no later run in the key (yet)
    end_time: np.ndarray  # per run: start time of the next run in the key (0 where ongoing)


def status_runs(keys: np.ndarray, t: np.ndarray, status: np.ndarray) -> Runs:
    """Runs of equal status per key (all arrays aligned, sorted by key then time)."""
    first = boundaries(keys)
    starts = np.flatnonzero(first | boundaries(status))
    has_prev = ~first[starts]
    prev = status[np.maximum(starts - 1, 0)] if len(status) else status
    ongoing = np.append(first[starts[1:]], True) if len(starts) else np.zeros(0, dtype=bool)
    nxt = np.append(starts[1:], 0)
    end_time = np.where(ongoing, 0, t[nxt] if len(t) else nxt)
    return Runs(starts, first, has_prev, prev, ongoing, end_time)
