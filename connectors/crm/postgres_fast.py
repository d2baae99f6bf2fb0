"""The Arrow-native PostgreSQL path: ADBC binary COPY, then one set-based statement.

dlt turns an Arrow table into Parquet files, normalizes and loads them through a
staging dataset; for a table whose columns already exist that is ~10x the work of
a COPY. Here (see docs/adr/0200-postgres-fast-path.md):

- append, or upsert into an empty table: ``adbc_ingest`` straight into the target
  when every column's Arrow type is exactly the target's (binary COPY needs that);
- otherwise ``adbc_ingest`` into a temporary staging table, then one ``INSERT ... SELECT``
  (append), ``MERGE`` (upsert, PostgreSQL 15+; ``DELETE ... USING`` + ``INSERT`` before)
  or ``DELETE`` + ``INSERT`` (replace), all in one transaction.

A missing table whose columns are all of the plain types below is created here, with the
column types and nullability dlt would give it (``create_sql``; tests compare the two); any
other table, and every new column, is created by dlt (the caller falls back to it), as is a
batch with a type this path does not carry.

>>> import pyarrow as pa
>>> carries(pa.schema([("a", pa.int64()), ("b", pa.string()), ("c", pa.list_(pa.int64()))]))
False
>>> exact(pa.schema([("a", pa.int64()), ("b", pa.string())]), {"a": "bigint", "b": "character varying"})
True
>>> exact(pa.schema([("a", pa.int32())]), {"a": "bigint"})
False
>>> print(merge_sql('"s"."lead"', "wl_stage", ["k"], ["k", "v"], ["k", "v", "old"]))
MERGE INTO "s"."lead" AS t USING wl_stage AS s ON t."k" = s."k" WHEN MATCHED THEN UPDATE SET "v" = s."v", "old" = NULL WHEN NOT MATCHED THEN INSERT ("k", "v") VALUES (s."k", s."v")
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import pyarrow as pa

from connectors.base.reserved import WriteDisposition
from connectors.crm.batch import create_table_sql, q

log = logging.getLogger(__name__)
STAGE = "wl_stage"

# information_schema.columns.data_type -> the Arrow types binary COPY writes into it as is
_EXACT: dict[str, Callable[[pa.DataType], bool]] = {
    "bigint": pa.types.is_int64,
    "integer": pa.types.is_int32,
    "smallint": pa.types.is_int16,
    "double precision": pa.types.is_float64,
    "real": pa.types.is_float32,
    "character varying": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
    "text": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
    "boolean": pa.types.is_boolean,
    "date": pa.types.is_date32,
    "numeric": pa.types.is_decimal,  # the binary numeric carries its scale; the column's typmod rounds it
    "timestamp with time zone": lambda t: pa.types.is_timestamp(t) and t.tz is not None and t.unit == "us",
    "timestamp without time zone": lambda t: pa.types.is_timestamp(t) and t.tz is None and t.unit == "us",
}


# information_schema.columns.data_type -> dlt's data type, to check type changes without dlt
DLT_TYPES = {
    "bigint": "bigint", "integer": "bigint", "smallint": "bigint", "double precision": "double",
    "real": "double", "character varying": "text", "text": "text", "boolean": "bool", "date": "date",
    "timestamp with time zone": "timestamp", "timestamp without time zone": "timestamp",
    "numeric": "decimal", "jsonb": "json", "json": "json", "bytea": "binary",
    "time without time zone": "time",
}


def as_dlt_columns(columns: dict[str, str]) -> dict[str, dict[str, str]]:
    """The target's columns in the shape :func:`connectors.crm.evolution.check_types` takes.

    >>> as_dlt_columns({"score": "double precision", "odd": "tsvector"})
    {'score': {'data_type': 'double'}, 'odd': {}}
    """
    return {n: ({"data_type": DLT_TYPES[t]} if t in DLT_TYPES else {}) for n, t in columns.items()}


# Arrow type -> the PostgreSQL type dlt's PostgreSQL destination creates for it (dlt 1.31, checked by
# tests/connectors/crm/test_postgres.py); a type not listed here leaves the table to dlt. dlt makes
# naive timestamps timestamptz too.
_PG_TYPES: tuple[tuple[Callable[[pa.DataType], bool], Callable[[pa.DataType], str]], ...] = (
    (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t), lambda t: "character varying"),
    (lambda t: t in (pa.int16(), pa.int32(), pa.int64()), lambda t: {16: "smallint", 32: "integer"}.get(t.bit_width, "bigint")),
    (lambda t: t == pa.float64(), lambda t: "double precision"),
    (pa.types.is_boolean, lambda t: "boolean"),
    (pa.types.is_date32, lambda t: "date"),
    (lambda t: pa.types.is_timestamp(t) and t.unit == "us", lambda t: "timestamp with time zone"),
    (pa.types.is_decimal128, lambda t: f"numeric({t.precision},{t.scale})"),
)


def _pg_type(t: pa.DataType) -> str | None:
    return next((name(t) for test, name in _PG_TYPES if test(t)), None)


def lock_entity(cur: Any, schema: str, entity: str) -> None:
    """Hold the entity's writer lock until this transaction ends: a second load of the same entity
    waits here, then sees the first one's rows (no unique index keeps two new-key inserts apart)."""
    cur.execute(f"SELECT pg_advisory_xact_lock(hashtextextended('{_lit(f'weftline.crm:{schema}.{entity}')}', 0))")
    cur.fetchall()


def create_sql(schema: str, entity: str, columns: pa.Schema, key: list[str]) -> str | None:
    """``CREATE TABLE`` for a new target as dlt would create it, or None when a column's type is one
    only dlt decides (then dlt creates the table).

    >>> print(create_sql("crm", "lead", pa.schema([("k", pa.string()), ("n", pa.int64())]), ["k"]))
    CREATE TABLE IF NOT EXISTS "crm"."lead" ("k" character varying NOT NULL, "n" bigint)
    >>> create_sql("crm", "lead", pa.schema([("k", pa.string()), ("x", pa.null())]), ["k"]) is None
    True
    """
    return create_table_sql(f"{q(schema)}.{q(entity)}", columns, key, _pg_type)


def create(con: Any, schema: str, entity: str, columns: pa.Schema, key: list[str]) -> bool:
    """Create a missing target (and its schema) in the connection's transaction; False: leave it to dlt."""
    sql = create_sql(schema, entity, columns, key)
    if sql is None:
        return False
    with con.cursor() as cur:
        cur.execute(f"CREATE SCHEMA IF NOT EXISTS {q(schema)}")
        cur.execute(sql)
    log.debug("crm postgres: created %s.%s without dlt", schema, entity)
    return True


def carries(schema: pa.Schema) -> bool:
    """True when every column is a type this path loads (flat scalars); else dlt loads it."""
    ok = (pa.types.is_integer, pa.types.is_floating, pa.types.is_string, pa.types.is_large_string,
          pa.types.is_boolean, pa.types.is_date32, pa.types.is_timestamp, pa.types.is_decimal, pa.types.is_null)
    return all(any(check(f.type) for check in ok) for f in schema)


def exact(schema: pa.Schema, columns: dict[str, str]) -> bool:
    """True when binary COPY can write every column straight into the target's type."""
    return all(f.name in columns and _EXACT.get(columns[f.name], lambda t: False)(f.type) for f in schema)


def table_columns(cur: Any, schema: str, table: str) -> dict[str, str]:
    """The target's columns and their types; empty when the table does not exist."""
    cur.execute(
        "SELECT column_name, data_type FROM information_schema.columns"
        f" WHERE table_schema = '{_lit(schema)}' AND table_name = '{_lit(table)}'"
    )
    return {name: kind for name, kind in cur.fetchall()}


def merge_sql(target: str, stage: str, key: list[str], cols: list[str], all_cols: list[str]) -> str:
    """Upsert from the staging table; target columns the batch lacks become NULL (as dlt's upsert)."""
    on = " AND ".join(f"t.{q(k)} = s.{q(k)}" for k in key)
    sets = [f"{q(c)} = s.{q(c)}" for c in cols if c not in key]
    sets += [f"{q(c)} = NULL" for c in all_cols if c not in cols]
    names = ", ".join(q(c) for c in cols)
    values = ", ".join(f"s.{q(c)}" for c in cols)
    return (f"MERGE INTO {target} AS t USING {stage} AS s ON {on}"
            f" WHEN MATCHED THEN UPDATE SET {', '.join(sets)}"
            f" WHEN NOT MATCHED THEN INSERT ({names}) VALUES ({values})")


def write(
    con: Any, schema: str, entity: str, batch: pa.Table, key: list[str], mode: WriteDisposition,
    columns: dict[str, str],
) -> str:
    """Load ``batch`` in one transaction; returns how ("direct" or "staged")."""
    target = f"{q(schema)}.{q(entity)}"
    with con.cursor() as cur:
        try:
            lock_entity(cur, schema, entity)  # one writer per entity, until this transaction ends
            if mode == "replace":
                cur.execute(f"DELETE FROM {target}")
            direct = exact(batch.schema, columns) and (mode != "upsert" or _empty(cur, target))
            if direct:
                cur.adbc_ingest(entity, batch, mode="append", db_schema_name=schema)
            else:
                _staged(cur, target, batch, key, mode, columns)
            con.commit()
        except BaseException:
            con.rollback()
            raise
    return "direct" if direct else "staged"


def _staged(cur: Any, target: str, batch: pa.Table, key: list[str], mode: WriteDisposition,
            columns: dict[str, str]) -> None:
    cur.adbc_ingest(STAGE, batch, mode="replace", temporary=True)
    cols = batch.column_names
    names = ", ".join(q(c) for c in cols)
    if mode != "upsert":
        cur.execute(f"INSERT INTO {target} ({names}) SELECT {names} FROM {STAGE}")
    elif _server_version(cur) >= 150000:
        cur.execute(merge_sql(target, STAGE, key, cols, list(columns)))
    else:
        on = " AND ".join(f"t.{q(k)} = s.{q(k)}" for k in key)
        cur.execute(f"DELETE FROM {target} AS t USING {STAGE} AS s WHERE {on}")
        cur.execute(f"INSERT INTO {target} ({names}) SELECT {names} FROM {STAGE}")
    cur.execute(f"DROP TABLE {STAGE}")


def _empty(cur: Any, target: str) -> bool:
    cur.execute(f"SELECT NOT EXISTS (SELECT 1 FROM {target})")
    return bool(cur.fetchall()[0][0])


def _server_version(cur: Any) -> int:
    cur.execute("SELECT current_setting('server_version_num')::int")
    return int(cur.fetchall()[0][0])


def _lit(text: str) -> str:
    return text.replace("'", "''")
