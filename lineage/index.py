"""The query index: a copy of the edges keyed for point look-ups, appended per segment in bulk.

Segments are the tamper-evident record; the index only makes ``trace`` / ``impact`` /
``export`` fast (no segment scan). Each row carries its segment ``seq`` and ``row`` so a
query can drop rows of segments that are not committed, missing or damaged. Embedded:
DuckDB ``lineage/index.duckdb`` with ART indexes, **filled lazily**: an append does not touch
it; the first look-up after appends catches it up in bulk from the ledger's segments it has
not indexed yet (docs/adr/0104-lineage-lazy-index.md). Many workers: a PostgreSQL table filled
by ``COPY`` in the append's transaction. Never row-by-row inserts.

>>> import tempfile, os, pyarrow as pa
>>> from lineage.edges import build
>>> ix = DuckIndex(os.path.join(tempfile.mkdtemp(), "ix.duckdb"))
>>> ix.append(1, build(2, "received", record_id=pa.array(["r1", "r2"]), load_id="L"))
>>> ix.lookup("record_id", ["r2"]).column("seq").to_pylist()
[1]
"""

from __future__ import annotations

import io
import logging
import os
import time
from typing import Any, Callable

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from lineage.edges import EDGE_SCHEMA

log = logging.getLogger(__name__)

MANY = 64  # above this many values a look-up joins against them instead of an IN list
INDEXED = ("record_id", "input_record_id", "target_key", "source_key", "subject")
INDEX_SCHEMA = EDGE_SCHEMA.append(pa.field("seq", pa.int64())).append(pa.field("row", pa.int64()))


def with_position(seq: int, edges: pa.Table) -> pa.Table:
    n = edges.num_rows
    return (edges.select(EDGE_SCHEMA.names)
            .append_column("seq", pa.repeat(pa.scalar(seq, pa.int64()), n))
            .append_column("row", pa.array(range(n), pa.int64())))


WIDE = ("subject",)  # a subject has many edges (a key has few): its look-ups take the Arrow path


def iso_rows(edges: pa.Table) -> list[dict]:
    """Index rows as dicts, ``at`` as ISO-8601 UTC text.

    >>> from datetime import datetime, timezone
    >>> at = [datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc), datetime(2026, 1, 2, 3, 4, 5, 7, tzinfo=timezone.utc)]
    >>> [r["at"] for r in iso_rows(pa.table({"at": pa.array(at, pa.timestamp("us", "UTC"))}))]
    ['2026-01-02T03:04:05Z', '2026-01-02T03:04:05.000007Z']
    """
    at = edges.column("at").cast(pa.timestamp("us", "UTC"))
    text = pc.replace_substring_regex(pc.strftime(at, format="%Y-%m-%dT%H:%M:%S"), r"\.000000$", "")
    text = pc.binary_join_element_wise(text, pa.scalar("Z"), "")
    return edges.set_column(edges.schema.get_field_index("at"), "at", text).to_pylist()


def _pg_type(t: pa.DataType) -> str:
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ"
    return "BIGINT" if pa.types.is_integer(t) else "TEXT"


def _duck_type(t: pa.DataType) -> str:
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ"
    return "BIGINT" if pa.types.is_integer(t) else "VARCHAR"


REBUILD_ROWS = 100_000  # a catch-up of at least this many edges, more than the index holds, rebuilds it


def _create_indexes(con: duckdb.DuckDBPyConnection) -> None:
    for c in INDEXED:
        con.execute(f"CREATE INDEX IF NOT EXISTS ix_{c} ON edges ({c})")


def _drop_indexes_for(con: duckdb.DuckDBPyConnection, new_rows: int) -> bool:
    """Before a catch-up of more edges than the index holds (the first query after a backfill or a big
    sync): drop the look-up indexes, committed, so the rows go in without them and the indexes are built
    once at the end — about 40 % less time than inserting into them (measured with DuckDB 1.x: a drop inside
    the inserting transaction does not spare the work). The indexes only speed look-ups up: a crash before
    they are rebuilt leaves correct, slower queries until the next writable open builds them."""
    if new_rows < REBUILD_ROWS or new_rows <= con.execute("SELECT count(*) FROM edges").fetchone()[0]:
        return False
    for c in INDEXED:
        con.execute(f"DROP INDEX IF EXISTS ix_{c}")
    return True


class DuckIndex:
    """``source``: a callable giving ``(ledger segments, read_segment)`` to catch up from (None: the
    index is filled only by :meth:`append`, as in the doctest); ``ledger_size``: the ledger's
    ``(count, last seq)``, a cheap check that nothing was appended since the last catch-up."""

    def __init__(self, path: str, source: Callable[[], tuple[list[dict], Callable[[dict], pa.Table]]] | None = None,
                 ledger_size: Callable[[], tuple[int, int]] | None = None):
        self.path, self.source, self.ledger_size = path, source, ledger_size or (lambda: (-1, -1))
        self.skipped: dict[int, str] = {}  # seq → why the last catch-up could not index it (file missing, …)
        # the file is created by the first write (catch-up or append), not here: a run never opens it

    def _open_writable(self) -> duckdb.DuckDBPyConnection:
        con = self._open(read_only=False)
        cols = ", ".join(f'"{f.name}" {_duck_type(f.type)}' for f in INDEX_SCHEMA)
        con.execute(f"CREATE TABLE IF NOT EXISTS edges ({cols})")
        con.execute("CREATE TABLE IF NOT EXISTS indexed (seq BIGINT PRIMARY KEY, segment_id VARCHAR)")
        _create_indexes(con)  # also after a catch-up that dropped them and did not get to rebuild them
        return con

    def _up_to_date(self) -> bool:
        """A shared (read-only) check, so a query never waits for the write lock when nothing is new."""
        if self.skipped or not os.path.exists(self.path):
            return False
        con = self._open(read_only=True)
        try:
            n, last = con.execute("SELECT count(*), coalesce(max(seq), 0) FROM indexed").fetchone()
        except duckdb.Error:  # an index written before the `indexed` table existed
            return False
        finally:
            con.close()
        return (n, last) == self.ledger_size()

    def _behind(self, con: duckdb.DuckDBPyConnection) -> list[dict]:
        if self.source is None:
            return []
        n, last = con.execute("SELECT count(*), coalesce(max(seq), 0) FROM indexed").fetchone()
        if not self.skipped and (n, last) == self.ledger_size():  # seqs are unique and gap-free: nothing new
            return []
        segments, _ = self.source()
        done = {(q, sid) for q, sid in con.execute("SELECT seq, segment_id FROM indexed").fetchall()}
        return [s for s in segments if (s["seq"], s["segment_id"]) not in done]

    def catch_up(self) -> int:
        """Index every ledger segment not indexed yet, in one write transaction; returns how many."""
        if self.source is None or self._up_to_date():
            return 0
        con = self._open_writable()
        try:
            todo = self._behind(con)
            if not todo:
                return 0
            _, read = self.source()
            rebuild = _drop_indexes_for(con, sum(s["rows"] for s in todo))
            con.execute("BEGIN")
            seqs = pa.table({"seq": pa.array([s["seq"] for s in todo], pa.int64())})
            con.register("todo", seqs)
            con.execute("DELETE FROM edges WHERE seq IN (SELECT seq FROM todo)")  # rows of an old direct append
            con.execute("DELETE FROM indexed WHERE seq IN (SELECT seq FROM todo)")
            con.unregister("todo")
            for seg in todo:
                try:
                    t = read(seg).select(EDGE_SCHEMA.names).cast(EDGE_SCHEMA)
                except Exception as exc:  # a missing/damaged file: queries name it; verify reports it
                    log.warning("lineage index: segment %s not indexed: %s", seg["seq"], exc)
                    self.skipped[seg["seq"]] = "missing" if isinstance(exc, FileNotFoundError) else "unreadable"
                    continue
                self.skipped.pop(seg["seq"], None)
                con.register("new_edges", with_position(seg["seq"], t))
                con.execute("INSERT INTO edges SELECT * FROM new_edges")
                con.unregister("new_edges")
                con.execute("INSERT INTO indexed VALUES (?, ?)", [seg["seq"], seg["segment_id"]])
            con.execute("COMMIT")
            if rebuild:
                _create_indexes(con)
            return len(todo)
        finally:
            con.close()

    def _open(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        """DuckDB lets one process write a file; retry while another holds it."""
        deadline = time.monotonic() + 120
        while True:
            try:
                return duckdb.connect(self.path, read_only=read_only)
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def append(self, seq: int, edges: pa.Table) -> None:
        """Append one segment's edges (call while holding the ledger's write lock)."""
        con = self._open_writable()
        try:
            con.execute("DELETE FROM edges WHERE seq >= ?", [seq])  # rows of a failed earlier append
            con.register("new_edges", with_position(seq, edges))
            con.execute("INSERT INTO edges SELECT * FROM new_edges")
            con.execute("DELETE FROM indexed WHERE seq >= ?", [seq])
        finally:
            con.close()

    def rows(self, column: str, values: list[str], con: Any = None) -> list[dict]:
        """Like :meth:`lookup`, as dicts: a point query's few rows without an Arrow round trip (``at`` a
        datetime), many rows (a long list of values, a subject) through one (``at`` ISO text, formatted by
        one kernel: a tz-aware datetime per row costs more than the rest of the row)."""
        if column not in INDEXED:
            raise ValueError(f"{column} is not indexed ({INDEXED})")
        values = sorted({v for v in values if v is not None})
        if not values:
            return []
        if len(values) > MANY or column in WIDE:
            return iso_rows(self.lookup(column, values, con))
        own = con is None
        con = con or self.connect()
        try:
            marks = ", ".join("?" * len(values))
            found = con.execute(f"SELECT * FROM edges WHERE {column} IN ({marks})", values).fetchall()
        finally:
            if own:
                con.close()
        return [dict(zip(INDEX_SCHEMA.names, r)) for r in found]

    def lookup(self, column: str, values: list[str], con: Any = None) -> pa.Table:
        """Every indexed edge whose ``column`` is one of ``values``."""
        if column not in INDEXED:
            raise ValueError(f"{column} is not indexed ({INDEXED})")
        values = sorted({v for v in values if v is not None})
        if not values:
            return INDEX_SCHEMA.empty_table()
        own = con is None
        con = con or self.connect()
        try:
            if len(values) <= MANY and column not in WIDE:  # few rows: fetchall is several times faster than Arrow
                marks = ", ".join("?" * len(values))
                rows = con.execute(f"SELECT * FROM edges WHERE {column} IN ({marks})", values).fetchall()
                if not rows:
                    return INDEX_SCHEMA.empty_table()
                return pa.table(dict(zip(INDEX_SCHEMA.names, map(list, zip(*rows)))), schema=INDEX_SCHEMA)
            else:  # a long list (or a subject): join against it rather than parse thousands of parameters
                con.register("wanted", pa.table({"v": pa.array(values, pa.string())}))
                t = con.sql(f"SELECT edges.* FROM edges SEMI JOIN wanted ON edges.{column} = wanted.v").to_arrow_table()
                con.unregister("wanted")
        finally:
            if own:
                con.close()
        return t.cast(INDEX_SCHEMA)

    def connect(self) -> Any:
        """A read connection to reuse across many look-ups (close it when done); catches up first."""
        self.catch_up()
        if not os.path.exists(self.path):
            self._open_writable().close()
        return self._open(read_only=True)

    def delete_segment(self, seq: int) -> None:
        con = self._open_writable()
        try:
            con.execute("DELETE FROM edges WHERE seq = ?", [seq])
        finally:
            con.close()


class PostgresIndex:
    """The index as a table ``edges`` in the ledger's PostgreSQL schema, appended with COPY."""

    def __init__(self, ledger: Any):
        self.ledger = ledger
        cols = ", ".join(f'"{f.name}" {_pg_type(f.type)}' for f in INDEX_SCHEMA)
        with ledger.tx(lock=True) as cur:
            cur.execute(f"CREATE TABLE IF NOT EXISTS edges ({cols})")
            for c in INDEXED:
                cur.execute(f"CREATE INDEX IF NOT EXISTS ix_{c} ON edges ({c})")

    def append(self, seq: int, edges: pa.Table, cur: Any = None) -> None:
        buf = io.BytesIO()
        pacsv.write_csv(with_position(seq, edges), buf,
                        pacsv.WriteOptions(include_header=False, quoting_style="all_valid"))
        buf.seek(0)
        cols = ", ".join(f'"{n}"' for n in INDEX_SCHEMA.names)
        sql = f"COPY edges ({cols}) FROM STDIN WITH (FORMAT csv)"
        if cur is not None:
            cur._cur.copy_expert(sql, buf)
            return
        with self.ledger.tx() as c:
            c._cur.copy_expert(sql, buf)

    def rows(self, column: str, values: list[str], con: Any = None) -> list[dict]:
        return iso_rows(self.lookup(column, values, con))

    def lookup(self, column: str, values: list[str], con: Any = None) -> pa.Table:
        if column not in INDEXED:
            raise ValueError(f"{column} is not indexed ({INDEXED})")
        values = sorted({v for v in values if v is not None})
        if not values:
            return INDEX_SCHEMA.empty_table()
        cols = ", ".join(f'"{n}"' for n in INDEX_SCHEMA.names)
        with self.ledger.tx() as cur:
            cur.execute(f"SELECT {cols} FROM edges WHERE {column} = ANY(?)", [values])
            rows = cur.fetchall()
        return pa.Table.from_pylist([dict(zip(INDEX_SCHEMA.names, r)) for r in rows], schema=INDEX_SCHEMA)

    def connect(self) -> None:
        return None

    def delete_segment(self, seq: int) -> None:
        with self.ledger.tx() as cur:
            cur.execute("DELETE FROM edges WHERE seq = ?", [seq])
