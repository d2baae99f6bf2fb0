"""A processing step for the worker tests: load landed rows into a DuckDB file, deduplicated
by record id (an upsert on ``_wl_record_id``). Stands in for the lead's map → load → lineage
until ``connectors.crm`` is wired in; the DuckDB file is real (a lock held by another process
makes it fail for real)."""

from __future__ import annotations

import subprocess
import sys

import duckdb
import pyarrow as pa

COLUMNS = ("_wl_record_id", "_wl_stream", "_wl_source_key", "payload_json", "_wl_load_id")


def duck_sink(path: str):
    def process(tables: dict[str, pa.Table]) -> None:
        con = duckdb.connect(path)
        try:
            con.execute("CREATE TABLE IF NOT EXISTS landed (_wl_record_id VARCHAR PRIMARY KEY, _wl_stream VARCHAR,"
                        " _wl_source_key VARCHAR, payload_json VARCHAR, _wl_load_id VARCHAR)")
            for t in tables.values():
                cols = {c: (t.column(c) if c in t.column_names else pa.nulls(t.num_rows, pa.string()))
                        for c in COLUMNS}
                con.register("batch", pa.table(cols))
                con.execute("INSERT OR IGNORE INTO landed SELECT DISTINCT ON (_wl_record_id) * FROM batch")
                con.unregister("batch")
        finally:
            con.close()

    return process


def rows(path: str, stream: str | None = None) -> list[tuple]:
    con = duckdb.connect(path, read_only=True)
    try:
        q = "SELECT _wl_record_id, payload_json FROM landed" + (" WHERE _wl_stream = $s" if stream else "")
        return con.execute(q, {"s": stream} if stream else {}).fetchall()
    finally:
        con.close()


def hold_write_lock(path: str, seconds: float = 4) -> subprocess.Popen:
    """Another process holding the DuckDB file's write lock for ``seconds`` (returns once it holds it)."""
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({path!r});"
                               f" print('locked', flush=True); time.sleep({seconds})"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder
