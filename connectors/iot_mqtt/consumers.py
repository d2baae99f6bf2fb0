"""Several consumers drain the same landing zone, each with its own cursor.

The stream worker, an Airflow task, a backfill: each names itself, and a small
offset file per consumer (``state/consumers/<system>/<consumer>.json``, written
atomically) records, per stream and load id, how many parts it has processed.
Parts of one load are written in order by one writer, so "parts done" is a count.

>>> import tempfile, pyarrow as pa
>>> from connectors.base.home import Home
>>> from connectors.landing import land
>>> home = Home(tempfile.mkdtemp())
>>> _ = land(pa.table({"a": [1]}), home, "iot_mqtt", "s", "L1"); _ = land(pa.table({"a": [2]}), home, "iot_mqtt", "s", "L1")
>>> [(lid, p.name, t.num_rows) for lid, p, t in drain(home, "iot_mqtt", "s", "worker")]
[('L1', 'part-00000.parquet', 1), ('L1', 'part-00001.parquet', 1)]
>>> mark_done(home, "iot_mqtt", "s", "worker", "L1", home.landing / "iot_mqtt/s/L1/part-00000.parquet")
>>> [p.name for _, p, _ in drain(home, "iot_mqtt", "s", "worker")], len(list(drain(home, "iot_mqtt", "s", "airflow")))
(['part-00001.parquet'], 2)
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from connectors.base.home import Home
from connectors.errors import ConfigError
from connectors.state import StateStore

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def _store(home: Home) -> StateStore:
    # a cursor that is behind only reprocesses (idempotent, see the module doc), so its rename needs no
    # folder fsync; the file itself is fsynced before the rename, so it is never half-written (ADR 0285)
    st = StateStore(home, sync_dir=False)
    st.dir = home.state / "consumers"
    return st


def offsets(home: Home, system: str, stream: str, consumer: str) -> dict[str, int]:
    """``{load_id: parts done}`` of one consumer on one stream."""
    if not _NAME.match(consumer):
        raise ConfigError(f"consumer name {consumer!r}: use letters, digits, '.', '_', '-'")
    return dict(_store(home).get(system, consumer).get(stream, {}))


def _part_no(path: Path) -> int:
    return int(path.stem.split("-")[1])


def pending(home: Home, system: str, stream: str, consumer: str,
            load_parts: int | None = None) -> list[tuple[str, Path]]:
    """Landed parts this consumer has not processed yet, oldest load first, parts in order.

    ``load_parts``: the most parts the writer puts in one load (the stream worker's ``parts_per_load``);
    a load this consumer has done that many parts of is complete and its folder is not listed again, so a
    pass costs the same after a day of loads as after a minute (only loads cut short by a stop or a crash
    are listed each time: one per restart at most). Entries of loads whose folder is gone (landing
    retention, :mod:`connectors.retention`) are dropped from the cursor here, by its own consumer.
    """
    done = offsets(home, system, stream, consumer)
    root = home.landing / system / stream
    try:
        with os.scandir(root) as it:
            loads = sorted(e.name for e in it if e.is_dir())
    except FileNotFoundError:
        loads = []
    gone = set(done) - set(loads)
    if gone:
        _forget(home, system, stream, consumer, gone)
    out = []
    for name in loads:
        n = done.get(name, 0)
        if load_parts is not None and n >= load_parts:
            continue
        out += [(name, p) for p in sorted((root / name).glob("part-*.parquet")) if _part_no(p) >= n]
    return out


def _forget(home: Home, system: str, stream: str, consumer: str, load_ids: set[str]) -> None:
    """Drop a consumer's entries for loads that are no longer landed (the cursor stays as small as the landing)."""
    st = _store(home)
    doc = st.get(system, consumer)
    loads = doc.get(stream, {})
    for load_id in load_ids:
        loads.pop(load_id, None)
    st.set(system, consumer, doc)


def drain(home: Home, system: str, stream: str, consumer: str,
          written: dict[Path, pa.Table] | None = None,
          load_parts: int | None = None) -> Iterator[tuple[str, Path, pa.Table]]:
    """Yield ``(load_id, part_path, table)`` for each unprocessed part; call :func:`mark_done` after each.

    ``written``: tables this process has just landed, by part path (the stream worker's hand-off); a pending
    part found there is taken from it (and removed) instead of being read back. Which parts are pending is
    still decided by the files and the cursor. ``load_parts``: see :func:`pending`.
    """
    for load_id, path in pending(home, system, stream, consumer, load_parts):
        table = written.pop(path, None) if written is not None else None
        yield load_id, path, table if table is not None else pq.read_table(path)


def mark_done(home: Home, system: str, stream: str, consumer: str, load_id: str, part: Path) -> None:
    """Record ``part`` (and every earlier part of its load) as processed by ``consumer``."""
    st = _store(home)
    doc = st.get(system, consumer)
    loads = doc.setdefault(stream, {})
    n = _part_no(Path(part)) + 1
    if loads.get(load_id, 0) < n:
        loads[load_id] = n
        st.set(system, consumer, doc)
