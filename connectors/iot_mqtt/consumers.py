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
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from connectors.base.home import Home
from connectors.errors import ConfigError
from connectors.landing import IDLE_ROTATE_S
from connectors.state import StateStore

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def _store(home: Home) -> StateStore:
    # a cursor that is behind only reprocesses (idempotent, see the module doc), so its rename needs no
    # folder fsync; the file itself is fsynced before the rename, so it is never half-written (ADR 0285)
    st = StateStore(home, sync_dir=False)
    st.dir = home.state / "consumers"
    return st


THROUGH = "~through"  # a cursor key no load id can be: every load up to this one is done and sealed
SEALED_S = IDLE_ROTATE_S + 300  # a load idle this long gets no more parts (connectors.landing.LoadRotation)


def _cursor(home: Home, system: str, stream: str, consumer: str) -> dict:
    if not _NAME.match(consumer):
        raise ConfigError(f"consumer name {consumer!r}: use letters, digits, '.', '_', '-'")
    return dict(_store(home).get(system, consumer).get(stream, {}))


def offsets(home: Home, system: str, stream: str, consumer: str) -> dict[str, int]:
    """``{load_id: parts done}`` of one consumer on one stream, for the loads after :func:`through`."""
    return {k: v for k, v in _cursor(home, system, stream, consumer).items() if k != THROUGH}


def through(home: Home, system: str, stream: str, consumer: str) -> str | None:
    """The load up to which (inclusive) this consumer has done every load, all of them sealed; or None."""
    return _cursor(home, system, stream, consumer).get(THROUGH)


def cursors(home: Home, system: str, stream: str) -> dict[str, dict]:
    """consumer → its cursor on this stream (``{load id: parts done}`` and the :data:`THROUGH` mark), for
    every consumer that has read the stream."""
    st = _store(home)
    docs = {p.stem: st.get(system, p.stem) for p in sorted((st.dir / system).glob("*.json"))}
    return {c: doc[stream] for c, doc in docs.items() if stream in doc}


def done_parts(cursor: dict, load_id: str, parts: int) -> int:
    """How many of a load's ``parts`` a consumer's cursor (its stream's entry) has done."""
    t = cursor.get(THROUGH)
    return parts if t is not None and load_id <= t else cursor.get(load_id, 0)


def _part_no(path: Path) -> int:
    return int(path.stem.split("-")[1])


def _sealed(folder: Path, parts: list[Path], now: float) -> bool:
    """No writer adds to this load any more: its newest part (or the empty folder) is older than SEALED_S."""
    try:
        newest = parts[-1].stat().st_mtime if parts else folder.stat().st_mtime
    except FileNotFoundError:  # removed by retention meanwhile
        return True
    return now - newest > SEALED_S


class Listing:
    """A stream's load folders as one consumer last read them, read again only when the stream's folder
    changed (its mtime: a load folder was added or removed). A long-lived consumer keeps one per stream
    (:class:`connectors.iot_mqtt.passes.Passes`): a pass then costs a ``stat``, not a read of every folder
    name (76 ms at 100 000 loads). A listing is reused only when the folder's last change was over a second
    before it was read, so a change within the file system clock's granularity is never missed.
    """

    def __init__(self) -> None:
        self._key: tuple[str, int] | None = None
        self._names: list[str] = []
        self.reads = 0

    def names(self, root: Path) -> list[str]:
        try:
            st = os.stat(root)
        except FileNotFoundError:
            self._key = None
            return []
        key = (str(root), st.st_mtime_ns)
        if key == self._key:
            return self._names
        with os.scandir(root) as it:
            self._names = sorted(e.name for e in it if e.is_dir())
        self.reads += 1
        self._key = key if time.time() - st.st_mtime > 1.0 else None
        return self._names


def pending(home: Home, system: str, stream: str, consumer: str,
            load_parts: int | None = None, listing: Listing | None = None) -> list[tuple[str, Path]]:
    """Landed parts this consumer has not processed yet, oldest load first, parts in order.

    ``load_parts``: the most parts the writer puts in one load (the stream worker's ``parts_per_load``);
    a load this consumer has done that many parts of is complete and its folder is not listed again.
    The cursor stays small (docs/adr/0287): the loads at its start that are done and sealed (complete, or
    idle for longer than a writer extends a load) fold into one ``through`` mark, and entries of loads whose
    folder is gone (landing retention) are dropped — both here, by the consumer itself, which is the only
    writer of its cursor. A pass then lists only the loads after the mark that are not complete.
    ``listing``: the consumer's :class:`Listing` of this stream, kept between passes.
    """
    cursor = _cursor(home, system, stream, consumer)
    mark = cursor.get(THROUGH)
    root = home.landing / system / stream
    loads = (listing or Listing()).names(root)
    now, out, fold, folding = time.time(), [], mark, True
    for name in loads:
        if mark is not None and name <= mark:
            continue
        n = cursor.get(name, 0)
        finished = load_parts is not None and n >= load_parts
        if not finished:
            parts = sorted((root / name).glob("part-*.parquet"))
            todo = [(name, p) for p in parts if _part_no(p) >= n]
            out += todo
            finished = not todo and _sealed(root / name, parts, now)
        folding = folding and finished
        if folding:
            fold = name
    present = set(loads)
    stale = [k for k in cursor if k != THROUGH and (k not in present or (fold is not None and k <= fold))]
    if fold != mark or stale:
        _rewrite(home, system, stream, consumer, fold, stale)
    return out


def _rewrite(home: Home, system: str, stream: str, consumer: str, fold: str | None, stale: list[str]) -> None:
    """Set the consumer's ``through`` mark and drop the entries it covers or whose load is gone."""
    st = _store(home)
    doc = st.get(system, consumer)
    loads = doc.setdefault(stream, {})
    for load_id in stale:
        loads.pop(load_id, None)
    if fold is not None:
        loads[THROUGH] = fold
    st.set(system, consumer, doc)


def drain(home: Home, system: str, stream: str, consumer: str,
          written: dict[Path, pa.Table] | None = None,
          load_parts: int | None = None, listing: Listing | None = None) -> Iterator[tuple[str, Path, pa.Table]]:
    """Yield ``(load_id, part_path, table)`` for each unprocessed part; call :func:`mark_done` after each.

    ``written``: tables this process has just landed, by part path (the stream worker's hand-off); a pending
    part found there is taken from it (and removed) instead of being read back. Which parts are pending is
    still decided by the files and the cursor. ``load_parts``, ``listing``: see :func:`pending`.
    """
    for load_id, path in pending(home, system, stream, consumer, load_parts, listing):
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
