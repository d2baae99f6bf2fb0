"""The ledger: one row per segment (file, rows, Merkle root, chained root, state), loads, spec texts.

Embedded: SQLite at ``$WEFTLINE_HOME/lineage/ledger.sqlite``; many workers: PostgreSQL, one
schema. Appends take an exclusive lock (SQLite ``BEGIN IMMEDIATE``; PostgreSQL
``pg_advisory_xact_lock``), read the head, insert the next segment and commit, so two
processes appending at once keep one consistent chain.

>>> import tempfile, os
>>> led = SqliteLedger(os.path.join(tempfile.mkdtemp(), "ledger.sqlite"))
>>> led.put_spec("m", "abc", '{"mapping":"m"}'); led.spec_text("m", "abc")
'{"mapping":"m"}'
>>> led.head()
(0, '0000000000000000000000000000000000000000000000000000000000000000')
"""

from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Iterator

GENESIS = "0" * 64
SEGMENT_COLUMNS = ("seq", "segment_id", "file", "load_id", "rows", "bytes", "merkle_root", "prev_root",
                   "chained_root", "leaves_sha256", "state", "created_at")

DDL = (
    """CREATE TABLE IF NOT EXISTS segments (
        seq BIGINT PRIMARY KEY, segment_id TEXT NOT NULL UNIQUE, file TEXT NOT NULL, load_id TEXT NOT NULL,
        rows BIGINT NOT NULL, bytes BIGINT NOT NULL, merkle_root TEXT NOT NULL, prev_root TEXT NOT NULL,
        chained_root TEXT NOT NULL, leaves_sha256 TEXT NOT NULL, state TEXT NOT NULL, created_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS loads (
        load_id TEXT PRIMARY KEY, state TEXT NOT NULL, destination TEXT, started_at TEXT NOT NULL,
        finished_at TEXT)""",
    "CREATE INDEX IF NOT EXISTS loads_state ON loads (state)",
    "CREATE INDEX IF NOT EXISTS segments_load ON segments (load_id, state)",
    """CREATE TABLE IF NOT EXISTS specs (
        spec_id TEXT NOT NULL, version_hash TEXT NOT NULL, text TEXT NOT NULL, stored_at TEXT NOT NULL,
        PRIMARY KEY (spec_id, version_hash))""",
)


def now_text() -> str:
    return datetime.now(timezone.utc).isoformat()


class Ledger:
    """Shared SQL over a DB-API connection; subclasses give the connection, placeholder and lock."""

    placeholder = "?"

    def connect(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _lock(self, cur: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _q(self, sql: str) -> str:
        return sql.replace("?", self.placeholder)

    @contextmanager
    def tx(self, lock: bool = False) -> Iterator[Any]:
        """A transaction; with ``lock``, exclusive against every other writer of this ledger."""
        con = self.connect()
        try:
            cur = _Cursor(con.cursor(), self._q)
            if lock:
                self._lock(cur)
            yield cur
            con.commit()
        except BaseException:
            con.rollback()
            raise
        finally:
            con.close()

    def init(self) -> None:
        with self.tx(lock=True) as cur:
            for ddl in DDL:
                cur.execute(ddl)

    def head(self, cur: Any | None = None) -> tuple[int, str]:
        """(last seq, last chained root) — ``(0, GENESIS)`` for an empty ledger."""
        if cur is None:
            with self.tx() as c:
                return self.head(c)
        cur.execute("SELECT seq, chained_root FROM segments ORDER BY seq DESC LIMIT 1")
        row = cur.fetchone()
        return (int(row[0]), row[1]) if row else (0, GENESIS)

    def insert_segment(self, cur: Any, rec: dict) -> None:
        cols = ", ".join(SEGMENT_COLUMNS)
        cur.execute(f"INSERT INTO segments ({cols}) VALUES ({', '.join('?' * len(SEGMENT_COLUMNS))})",
                    [rec[c] for c in SEGMENT_COLUMNS])

    def segments(self, states: tuple[str, ...] | None = None, seqs: list[int] | None = None,
                 load_id: str | None = None) -> list[dict]:
        """Segment rows in seq order: all, or only those in ``states`` / ``seqs`` / of ``load_id``."""
        where, params = [], []
        if states is not None:
            where.append(f"state IN ({', '.join('?' * len(states))})")
            params += list(states)
        if seqs is not None:
            where.append(f"seq IN ({', '.join('?' * len(seqs))})" if seqs else "1 = 0")
            params += [int(q) for q in seqs]
        if load_id is not None:
            where.append("load_id = ?")
            params.append(load_id)
        sql = f"SELECT {', '.join(SEGMENT_COLUMNS)} FROM segments"
        with self.tx() as cur:
            cur.execute(sql + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY seq", params)
            return [dict(zip(SEGMENT_COLUMNS, r)) for r in cur.fetchall()]

    def size(self) -> tuple[int, int]:
        """(number of segments, last seq): enough to see that nothing was appended since."""
        with self.tx() as cur:
            cur.execute("SELECT count(*), coalesce(max(seq), 0) FROM segments")
            n, last = cur.fetchone()
        return int(n), int(last)

    def set_load(self, load_id: str, state: str, destination: str | None = None, cur: Any | None = None) -> None:
        """Record a load's state; committing or rolling back a load moves its pending segments with it."""
        if cur is None:
            with self.tx(lock=True) as c:
                return self.set_load(load_id, state, destination, c)
        cur.execute("SELECT state FROM loads WHERE load_id = ?", [load_id])
        if cur.fetchone():
            cur.execute("UPDATE loads SET state = ?, finished_at = ? WHERE load_id = ?", [state, now_text(), load_id])
        else:
            cur.execute("INSERT INTO loads (load_id, state, destination, started_at) VALUES (?, ?, ?, ?)",
                        [load_id, state, destination, now_text()])
        if state != "pending":
            cur.execute("UPDATE segments SET state = ? WHERE load_id = ? AND state = 'pending'", [state, load_id])

    def loads(self, state: str | None = None) -> list[dict]:
        names = ("load_id", "state", "destination", "started_at", "finished_at")
        sql = f"SELECT {', '.join(names)} FROM loads"
        with self.tx() as cur:  # by state: O(pending loads), so recover() costs nothing when none is pending
            if state is None:
                cur.execute(sql + " ORDER BY load_id")
            else:
                cur.execute(sql + " WHERE state = ? ORDER BY load_id", [state])
            return [dict(zip(names, r)) for r in cur.fetchall()]

    def put_spec(self, spec_id: str, version_hash: str, text: str) -> None:
        """Store a spec version's normalised text once (a second put of the same version is a no-op)."""
        with self.tx(lock=True) as cur:
            cur.execute("SELECT 1 FROM specs WHERE spec_id = ? AND version_hash = ?", [spec_id, version_hash])
            if not cur.fetchone():
                cur.execute("INSERT INTO specs VALUES (?, ?, ?, ?)", [spec_id, version_hash, text, now_text()])

    def spec_text(self, spec_id: str, version_hash: str) -> str | None:
        with self.tx() as cur:
            cur.execute("SELECT text FROM specs WHERE spec_id = ? AND version_hash = ?", [spec_id, version_hash])
            row = cur.fetchone()
        return row[0] if row else None


class _Cursor:
    def __init__(self, cur: Any, q: Any):
        self._cur, self._q = cur, q

    def execute(self, sql: str, params: Any = ()) -> None:
        self._cur.execute(self._q(sql), params)

    def fetchone(self) -> Any:
        return self._cur.fetchone()

    def fetchall(self) -> list:
        return self._cur.fetchall()


class SqliteLedger(Ledger):
    """``keep_open``: one connection per thread for this ledger's life (a long-lived worker) instead of one
    per transaction — closing the last connection of a WAL database checkpoints it and removes the WAL
    file, a few ms per transaction. Same transactions, same locks, same durability."""

    def __init__(self, path: str, keep_open: bool = False):
        self.path, self.keep_open = path, keep_open
        self._kept = threading.local()
        self._all_kept: list[sqlite3.Connection] = []  # every thread's, so close() can close them all
        con = sqlite3.connect(self.path, timeout=120)
        con.execute("PRAGMA journal_mode=WAL")
        con.close()
        self.init()

    def _connection(self) -> tuple[sqlite3.Connection, bool]:
        """(connection, close it after the transaction)."""
        if not self.keep_open:
            return sqlite3.connect(self.path, timeout=120, isolation_level=None), True
        con = getattr(self._kept, "con", None)
        if con is None or self._kept.pid != os.getpid():  # a forked child opens its own
            # used by this thread only; check_same_thread=False lets close() (another thread) close it
            con = sqlite3.connect(self.path, timeout=120, isolation_level=None, check_same_thread=False)
            self._kept.con, self._kept.pid = con, os.getpid()
            self._all_kept.append(con)
        return con, False

    def close(self) -> None:
        """Close the kept connections (``keep_open``; call it when no transaction runs); the next opens anew."""
        kept, self._all_kept, self._kept = self._all_kept, [], threading.local()
        for con in kept:
            con.close()

    @contextmanager
    def tx(self, lock: bool = False) -> Iterator[Any]:
        con, close = self._connection()
        try:
            con.execute("BEGIN IMMEDIATE" if lock else "BEGIN")
            yield _Cursor(con.cursor(), self._q)
            con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise
        finally:
            if close:
                con.close()


class PostgresLedger(Ledger):
    placeholder = "%s"

    def __init__(self, url: str, schema: str):
        self.url, self.schema = url, schema
        import psycopg2

        con = psycopg2.connect(url)
        try:
            with con.cursor() as cur:
                # CREATE … IF NOT EXISTS races between two first-time writers (a unique violation in
                # pg_namespace): serialise it on an advisory lock held until the commit
                cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", ["weftline.lineage.ddl." + schema])
                cur.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            con.commit()
        finally:
            con.close()
        self.init()

    def connect(self) -> Any:
        import psycopg2

        con = psycopg2.connect(self.url, options=f"-c search_path={self.schema}")
        return con

    def _lock(self, cur: Any) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(?))", ["weftline.lineage." + self.schema])
