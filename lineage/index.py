"""The query index: a copy of the edges keyed for point look-ups, appended per segment in bulk.

Segments are the tamper-evident record; the index only makes ``trace`` / ``impact`` /
``export`` fast (no segment scan). Each row carries its segment ``seq`` and ``row`` so a
query can drop rows of segments that are not committed, missing or damaged. Embedded:
DuckDB ``lineage/index.duckdb`` with ART indexes; many workers: a PostgreSQL table filled by
``COPY``. Never row-by-row inserts.

>>> import tempfile, os, pyarrow as pa
>>> from lineage.edges import build
>>> ix = DuckIndex(os.path.join(tempfile.mkdtemp(), "ix.duckdb"))
>>> ix.append(1, build(2, "received", record_id=pa.array(["r1", "r2"]), load_id="L"))
>>> ix.lookup("record_id", ["r2"]).column("seq").to_pylist()
[1]
"""

from __future__ import annotations

import io
import time
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv

from lineage.edges import EDGE_SCHEMA

MANY = 64  # above this many values a look-up joins against them instead of an IN list
INDEXED = ("record_id", "input_record_id", "target_key", "source_key", "subject")
INDEX_SCHEMA = EDGE_SCHEMA.append(pa.field("seq", pa.int64())).append(pa.field("row", pa.int64()))


def with_position(seq: int, edges: pa.Table) -> pa.Table:
    n = edges.num_rows
    return (edges.select(EDGE_SCHEMA.names)
            .append_column("seq", pa.repeat(pa.scalar(seq, pa.int64()), n))
            .append_column("row", pa.array(range(n), pa.int64())))


def _pg_type(t: pa.DataType) -> str:
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ"
    return "BIGINT" if pa.types.is_integer(t) else "TEXT"


def _duck_type(t: pa.DataType) -> str:
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ"
    return "BIGINT" if pa.types.is_integer(t) else "VARCHAR"


class DuckIndex:
    def __init__(self, path: str):
        self.path = path
        con = self._open(read_only=False)
        try:
            cols = ", ".join(f'"{f.name}" {_duck_type(f.type)}' for f in INDEX_SCHEMA)
            con.execute(f"CREATE TABLE IF NOT EXISTS edges ({cols})")
            for c in INDEXED:
                con.execute(f"CREATE INDEX IF NOT EXISTS ix_{c} ON edges ({c})")
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
        con = self._open(read_only=False)
        try:
            con.execute("DELETE FROM edges WHERE seq >= ?", [seq])  # rows of a failed earlier append
            con.register("new_edges", with_position(seq, edges))
            con.execute("INSERT INTO edges SELECT * FROM new_edges")
        finally:
            con.close()

    def lookup(self, column: str, values: list[str], con: Any = None) -> pa.Table:
        """Every indexed edge whose ``column`` is one of ``values``."""
        if column not in INDEXED:
            raise ValueError(f"{column} is not indexed ({INDEXED})")
        values = sorted({v for v in values if v is not None})
        if not values:
            return INDEX_SCHEMA.empty_table()
        own = con is None
        con = con or self._open(read_only=True)
        try:
            if len(values) <= MANY:  # few rows: fetchall is several times faster than an Arrow round trip
                marks = ", ".join("?" * len(values))
                rows = con.execute(f"SELECT * FROM edges WHERE {column} IN ({marks})", values).fetchall()
                if not rows:
                    return INDEX_SCHEMA.empty_table()
                return pa.table(dict(zip(INDEX_SCHEMA.names, map(list, zip(*rows)))), schema=INDEX_SCHEMA)
            else:  # a long list: join against it rather than parse thousands of parameters
                con.register("wanted", pa.table({"v": pa.array(values, pa.string())}))
                t = con.sql(f"SELECT edges.* FROM edges SEMI JOIN wanted ON edges.{column} = wanted.v").to_arrow_table()
                con.unregister("wanted")
        finally:
            if own:
                con.close()
        return t.cast(INDEX_SCHEMA)

    def connect(self) -> Any:
        """A read connection to reuse across many look-ups (close it when done)."""
        return self._open(read_only=True)

    def delete_segment(self, seq: int) -> None:
        con = self._open(read_only=False)
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
