"""The Arrow-native DuckDB path: register the Arrow batch, then set-based SQL in one transaction.

dlt writes every Arrow batch to Parquet, normalizes it and merges it through a staging
dataset: hundreds of milliseconds even for a handful of rows, too slow for a stream that
wants a ticket in the CRM within 100 ms. Once dlt has created an entity's table, a batch
whose columns all exist (same dlt types) goes straight in here (docs/adr/0205-duckdb-fast-path.md),
and a new table of plain types is created here with the DDL dlt would run (:func:`create_sql`):

- upsert: ``DELETE ... USING`` the batch's keys, then ``INSERT ... SELECT`` (dlt creates no
  unique index, so ``ON CONFLICT`` is not available; columns the batch lacks become NULL, as
  with dlt's upsert);
- append: ``INSERT ... SELECT``; replace: ``DELETE`` everything, then ``INSERT ... SELECT``.

All in one transaction: a failure leaves the table as it was. dlt keeps adding columns and creating
tables with a type only it decides (the caller falls back to it); it reads the columns of a table it
did not create from the database itself, as with PostgreSQL (ADR 0200).

>>> import duckdb, pyarrow as pa
>>> con = duckdb.connect()
>>> _ = con.execute("CREATE TABLE lead (k VARCHAR NOT NULL, v BIGINT, old VARCHAR)")
>>> _ = con.execute("INSERT INTO lead VALUES ('a', 1, 'x'), ('b', 2, 'y')")
>>> cols = table_columns(con, "main", "lead")
>>> cols
{'k': 'VARCHAR', 'v': 'BIGINT', 'old': 'VARCHAR'}
>>> write(con, '"lead"', pa.table({"k": ["a", "c"], "v": [10, 30]}), ["k"], "upsert")
>>> con.sql("SELECT * FROM lead ORDER BY k").fetchall()
[('a', 10, None), ('b', 2, 'y'), ('c', 30, None)]
>>> as_dlt_columns({"v": "BIGINT", "d": "DECIMAL(38,9)", "odd": "UNION(a INTEGER)"})
{'v': {'data_type': 'bigint'}, 'd': {'data_type': 'decimal'}, 'odd': {}}
"""

from __future__ import annotations

import logging
from typing import Any

import pyarrow as pa

from connectors.base.reserved import WriteDisposition
from connectors.crm.batch import create_table_sql, q

log = logging.getLogger(__name__)
STAGE = "wl_fast_batch"

# information_schema.columns.data_type -> dlt's data type, to check type changes without dlt
DLT_TYPES = {
    "VARCHAR": "text", "BIGINT": "bigint", "INTEGER": "bigint", "SMALLINT": "bigint", "TINYINT": "bigint",
    "HUGEINT": "wei", "UBIGINT": "bigint", "DOUBLE": "double", "FLOAT": "double", "BOOLEAN": "bool",
    "DATE": "date", "TIME": "time", "TIMESTAMP": "timestamp", "TIMESTAMP WITH TIME ZONE": "timestamp",
    "TIMESTAMP_NS": "timestamp", "TIMESTAMP_MS": "timestamp", "TIMESTAMP_S": "timestamp",
    "JSON": "json", "BLOB": "binary",
}


def as_dlt_columns(columns: dict[str, str]) -> dict[str, dict[str, str]]:
    """The table's columns in the shape :func:`connectors.crm.evolution.check_types` takes."""
    out: dict[str, dict[str, str]] = {}
    for name, kind in columns.items():
        dlt_type = "decimal" if kind.startswith("DECIMAL") else DLT_TYPES.get(kind)
        out[name] = {"data_type": dlt_type} if dlt_type else {}
    return out


def carries(schema: pa.Schema) -> bool:
    """True when every column is a flat scalar this path loads; nested columns stay with dlt.

    >>> carries(pa.schema([("a", pa.int64()), ("b", pa.list_(pa.string()))]))
    False
    """
    ok = (pa.types.is_integer, pa.types.is_floating, pa.types.is_string, pa.types.is_large_string,
          pa.types.is_boolean, pa.types.is_date32, pa.types.is_timestamp, pa.types.is_decimal)
    return all(any(check(f.type) for check in ok) for f in schema)


def table_columns(con: Any, schema: str, table: str) -> dict[str, str]:
    """The table's columns and their DuckDB types (in table order); empty when it does not exist."""
    rows = con.execute(  # duckdb_columns(): ~1 ms, where information_schema takes ~15 ms on a fresh connection
        "SELECT column_name, data_type FROM duckdb_columns()"
        " WHERE database_name = current_database() AND schema_name = ? AND table_name = ?"
        " ORDER BY column_index", [schema, table]).fetchall()
    return {name: kind for name, kind in rows}


def _duck_type(t: pa.DataType) -> str | None:
    """The DuckDB type dlt's DuckDB destination creates for an Arrow type (dlt 1.31, checked by
    tests/connectors/crm/test_duckdb_fast.py), or None when dlt must decide (e.g. ns timestamps, unsigned)."""
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "VARCHAR"
    if pa.types.is_signed_integer(t):
        return {8: "TINYINT", 16: "SMALLINT", 32: "INTEGER", 64: "BIGINT"}[t.bit_width]
    if pa.types.is_floating(t) and t.bit_width in (32, 64):
        return "DOUBLE"
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_date32(t):
        return "DATE"
    if pa.types.is_timestamp(t) and t.unit != "ns":  # dlt makes naive timestamps zoned too
        return "TIMESTAMP WITH TIME ZONE"
    if pa.types.is_decimal128(t):
        return f"DECIMAL({t.precision},{t.scale})"
    return None


def create_sql(target: str, columns: pa.Schema, key: list[str]) -> str | None:
    """``CREATE TABLE`` for a new target as dlt would create it, or None when a column's type is one
    only dlt decides (then dlt creates the table).

    >>> print(create_sql('"crm"."lead"', pa.schema([("k", pa.string()), ("n", pa.int32())]), ["k"]))
    CREATE TABLE IF NOT EXISTS "crm"."lead" ("k" VARCHAR NOT NULL, "n" INTEGER)
    >>> create_sql('"lead"', pa.schema([("k", pa.string()), ("x", pa.timestamp("ns"))]), ["k"]) is None
    True
    """
    return create_table_sql(target, columns, key, _duck_type)


def create(con: Any, catalog: str, schema: str, entity: str, columns: pa.Schema, key: list[str]) -> bool:
    """Create a missing target (and its schema); False: leave it to dlt."""
    sql = create_sql(f"{q(catalog)}.{q(schema)}.{q(entity)}", columns, key)
    if sql is None:
        return False
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {q(catalog)}.{q(schema)}")
    con.execute(sql)
    log.debug("crm duckdb: created %s.%s without dlt", schema, entity)
    return True


def write(con: Any, target: str, batch: pa.Table, key: list[str], mode: WriteDisposition) -> None:
    """Load ``batch`` (already checked and deduplicated by key) into ``target`` in one transaction."""
    names = ", ".join(q(c) for c in batch.column_names)
    con.register(STAGE, batch)
    try:
        con.execute("BEGIN TRANSACTION")
        try:
            if mode == "replace":
                con.execute(f"DELETE FROM {target}")
            elif mode == "upsert":
                on = " AND ".join(f"{target}.{q(k)} = s.{q(k)}" for k in key)
                con.execute(f"DELETE FROM {target} USING {STAGE} AS s WHERE {on}")
            con.execute(f"INSERT INTO {target} ({names}) SELECT {names} FROM {STAGE}")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    finally:
        con.unregister(STAGE)
