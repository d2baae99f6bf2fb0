"""Keyed state of one stateful spec, persisted under ``$WEFTLINE_HOME/state/stateful/<spec_id>/``.

A :class:`State` is three things:

- ``watermark`` (µs since the epoch, or None): events older than it are late; everything
  before it is *final* (no event can still arrive there).
- ``buffer``: the events still needed — those not final yet, the first event of each key's
  current status run and of the run before it, and the events inside a rate rule's
  window + baseline. Columns ``key``, ``time``, ``seq`` (arrival order), ``rid`` (record id),
  ``_s_<field>`` per transition field, ``_m_<rule>`` per rate rule.
- ``scopes``: one row per (key, rule): the open incident, the last incident, the last
  activity (for cooldown), the mark of what was already decided, whether a rate was firing.

Saved atomically and guarded against a second writer (see :func:`save_state`): new generation files first (tmp + fsync + rename), then ``CURRENT.json``
(same way) points at them; a crash leaves the old or the new state, never a mix.

>>> import tempfile
>>> home = tempfile.mkdtemp()
>>> s = load_state(home, "device_offline_ticket")
>>> s.watermark, s.next_seq, s.buffer.num_rows
(None, 0, 0)
>>> saved = save_state(home, "device_offline_ticket", State(watermark=5, next_seq=3, buffer=s.buffer, scopes=s.scopes))
>>> loaded = load_state(home, "device_offline_ticket")
>>> loaded.next_seq, loaded.generation, saved.generation
(3, 1, 1)
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from connectors.base.files import fsync_dir, write_atomic_by
from connectors.base.home import Home
from connectors.errors import RetriableError

FORMAT = 1
TS = pa.timestamp("us", tz="UTC")
BUFFER_BASE = pa.schema([("key", pa.string()), ("time", TS), ("seq", pa.int64()), ("rid", pa.string())])
SCOPES = pa.schema([
    ("key", pa.string()), ("rule", pa.string()),
    ("open_key", pa.string()),        # the incident now open (null when none)
    ("open_since", TS), ("open_seq", pa.int64()),  # the run that holds it open (transitions)
    ("last_key", pa.string()),        # the most recent incident, open or closed
    ("last_activity", TS),            # event time of its last open/annotate/close (or rate firing)
    ("mark_time", TS), ("mark_seq", pa.int64()),  # everything up to here is decided
    ("firing", pa.bool_()),           # rate: did the last evaluated event fire
])


@dataclass(frozen=True)
class State:
    watermark: int | None
    next_seq: int
    buffer: pa.Table
    scopes: pa.Table
    generation: int = 0  # the saved generation this state descends from (0: none yet)

    @classmethod
    def empty(cls) -> "State":
        return cls(None, 0, BUFFER_BASE.empty_table(), SCOPES.empty_table())


def state_dir(home: Home | str | os.PathLike, spec_id: str) -> Path:
    if "/" in spec_id or spec_id.startswith(".") or not spec_id:
        raise ValueError(f"{spec_id!r} is not a spec id")
    h = home if isinstance(home, Home) else Home(home)
    return h.state / "stateful" / spec_id


def load_state(home: Home | str | os.PathLike, spec_id: str) -> State:
    """The saved state of ``spec_id``, or an empty one."""
    d = state_dir(home, spec_id)
    current = d / "CURRENT.json"
    if not current.exists():
        return State.empty()
    meta = json.loads(current.read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{current}: state format {meta.get('format')} is not {FORMAT}")
    gen = meta["generation"]
    buffer = pq.read_table(d / f"gen-{gen:08d}.buffer.parquet")
    scopes = pq.read_table(d / f"gen-{gen:08d}.scopes.parquet").cast(SCOPES)
    return State(meta["watermark"], meta["next_seq"], buffer, scopes, gen)


def save_state(home: Home | str | os.PathLike, spec_id: str, state: State) -> State:
    """Write ``state`` as the next generation, then switch ``CURRENT.json`` to it atomically.

    Optimistic concurrency: if another worker saved since ``state`` was loaded, nothing is
    written and :class:`StateConflict` (retriable) is raised — reload, re-apply, save again.
    Returns the state with its new ``generation`` (use it for the next save).
    """
    d = state_dir(home, spec_id)
    d.mkdir(parents=True, exist_ok=True)
    with open(d / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _save_locked(d, spec_id, state)


class StateSave:
    """:func:`save_state` in two steps, so a long-lived worker writes the new generation's files while its
    load runs and makes them current only after the load committed (docs/adr/0305).

    :meth:`start` takes the state's lock, checks for a conflict (:class:`StateConflict`) and writes the
    generation files on ``pool``'s thread (tmp + fsync + rename, as :func:`save_state`); nothing is current
    yet, so a crash or :meth:`abort` leaves the old state (the files are an orphan the next save removes).
    :meth:`commit` waits for them, switches ``CURRENT.json`` (fsync, folder fsync) and returns the saved
    state; the older generations are removed on ``pool``'s thread, then the lock is released. The lock is
    held from :meth:`start` to there, so no other writer can save in between. Same files, same order of
    what becomes durable as :func:`save_state`. Without a ``pool``, :meth:`start` does nothing and
    :meth:`commit` is :func:`save_state`.

    >>> import tempfile
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> home, pool = tempfile.mkdtemp(), ThreadPoolExecutor(1)
    >>> save = StateSave(home, "s", State(watermark=7, next_seq=2, buffer=BUFFER_BASE.empty_table(),
    ...                                   scopes=SCOPES.empty_table()), pool)
    >>> save.start(); load_state(home, "s").generation   # written, not current
    0
    >>> save.commit().generation, load_state(home, "s").next_seq
    (1, 2)
    >>> pool.shutdown()
    """

    def __init__(self, home: Home | str | os.PathLike, spec_id: str, state: State, pool, on_commit=None):
        self.home, self.spec_id, self.state, self.pool, self.on_commit = home, spec_id, state, pool, on_commit
        self._lock = self._files = None
        self._gen = 0

    def start(self) -> None:
        if self.pool is None:
            return
        d = state_dir(self.home, self.spec_id)
        d.mkdir(parents=True, exist_ok=True)
        lock = open(d / ".lock", "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._gen = _next_generation(d, self.spec_id, self.state)
        except BaseException:
            lock.close()
            raise
        self._lock = lock
        self._files = self.pool.submit(_write_generation, d, self._gen, self.state)

    def commit(self) -> State:
        if self.pool is None:
            saved = save_state(self.home, self.spec_id, self.state)
            if self.on_commit is not None:
                self.on_commit(saved)
            return saved
        if self._lock is None:
            raise RuntimeError(f"stateful state of {self.spec_id}: commit() without start()")
        d = state_dir(self.home, self.spec_id)
        lock, self._lock = self._lock, None
        try:
            self._files.result()
            _switch(d, self._gen, self.state)
        except BaseException:
            lock.close()  # releases the lock; the written files are an orphan the next save removes
            raise
        self.pool.submit(_remove_old_then_unlock, d, self._gen, lock)
        saved = replace(self.state, generation=self._gen)
        if self.on_commit is not None:
            self.on_commit(saved)
        return saved

    def abort(self) -> None:
        """Drop a started save (the load failed): wait for its files, release the lock; the old state stays."""
        lock, self._lock = self._lock, None
        if lock is None:
            return
        try:
            if self._files is not None:
                self._files.exception()  # waits; a failed write is no news here (nothing becomes current)
        finally:
            lock.close()


def saved_generation(home: Home | str | os.PathLike, spec_id: str) -> int:
    """The generation ``CURRENT.json`` names (0: nothing saved yet)."""
    current = state_dir(home, spec_id) / "CURRENT.json"
    return json.loads(current.read_text())["generation"] if current.exists() else 0


class KeptState:
    """One spec's state for a long-lived worker: what it saved last stays in memory and is used again while
    ``CURRENT.json`` still names that generation (one small file read instead of two Parquet reads per
    batch). If another writer saved since, the state is read from disk, as :func:`load_state` does; saving
    goes through :func:`save_state`, or :meth:`saving` (a :class:`StateSave` whose files are written on this
    state's own thread) — same files, same conflict check. Call :meth:`close` when done.

    >>> import tempfile
    >>> kept = KeptState(tempfile.mkdtemp(), "s")
    >>> st = kept.save(State(watermark=7, next_seq=2, buffer=BUFFER_BASE.empty_table(), scopes=SCOPES.empty_table()))
    >>> kept.load() is st, load_state(kept.home, "s").next_seq
    (True, 2)
    >>> save = kept.saving(State(8, 3, st.buffer, st.scopes, st.generation)); save.start()
    >>> save.commit() is kept.load(), kept.load().generation
    (True, 2)
    >>> kept.close()
    """

    def __init__(self, home: Home | str | os.PathLike, spec_id: str):
        self.home, self.spec_id = home, spec_id
        self._last: State | None = None
        self._pool = None

    def load(self) -> State:
        if self._last is not None and saved_generation(self.home, self.spec_id) == self._last.generation:
            return self._last
        self._last = None
        return load_state(self.home, self.spec_id)

    def save(self, state: State) -> State:
        self._last = None  # a failed save leaves whatever is on disk to the next load
        self._last = save_state(self.home, self.spec_id, state)
        return self._last

    def saving(self, state: State) -> StateSave:
        """A two-step save of ``state`` (:class:`StateSave`); what it commits is kept as the last saved state."""
        from concurrent.futures import ThreadPoolExecutor

        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"stateful-{self.spec_id}")
        self._last = None  # until the commit, whatever is on disk is what the next load gets
        return StateSave(self.home, self.spec_id, state, self._pool, on_commit=self._kept)

    def _kept(self, saved: State) -> None:
        self._last = saved

    def close(self) -> None:
        """Wait for the state's thread (the last removal of old generations, the lock released) and end it."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


class StateConflict(RetriableError):
    """The saved state moved on since this one was loaded (another worker saved)."""


def _save_locked(d: Path, spec_id: str, state: State) -> State:
    gen = _next_generation(d, spec_id, state)
    _write_generation(d, gen, state)
    _switch(d, gen, state)
    _remove_old(d, gen)
    return replace(state, generation=gen)


def _next_generation(d: Path, spec_id: str, state: State) -> int:
    """The generation ``state`` would be saved as (call under the lock), or :class:`StateConflict`."""
    current = d / "CURRENT.json"
    saved = json.loads(current.read_text())["generation"] if current.exists() else 0
    if saved != state.generation:
        raise StateConflict(f"stateful state of {spec_id} is at generation {saved}, but this one descends from "
                            f"{state.generation}: another worker saved in between; reload and apply again")
    return saved + 1


def _write_generation(d: Path, gen: int, state: State) -> None:
    write_atomic_by(d / f"gen-{gen:08d}.buffer.parquet", lambda p: pq.write_table(state.buffer, p))
    write_atomic_by(d / f"gen-{gen:08d}.scopes.parquet", lambda p: pq.write_table(state.scopes, p))


def _switch(d: Path, gen: int, state: State) -> None:
    meta = {"format": FORMAT, "generation": gen, "watermark": state.watermark, "next_seq": state.next_seq}
    write_atomic_by(d / "CURRENT.json", lambda p: p.write_text(json.dumps(meta, sort_keys=True)))
    fsync_dir(d)


def _remove_old(d: Path, gen: int) -> None:
    for old in d.glob("gen-*.parquet"):
        if not old.name.startswith(f"gen-{gen:08d}."):
            old.unlink(missing_ok=True)


def _remove_old_then_unlock(d: Path, gen: int, lock) -> None:
    try:
        _remove_old(d, gen)
    finally:
        lock.close()
