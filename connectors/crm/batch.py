"""Checks and shapes one Arrow batch before any destination sees it (vectorised, no row loops).

- every column name must reach the destination unchanged (dlt's snake_case naming
  would rename ``Email`` to ``email``): a name it would change is a clear error;
- the key columns exist and hold no nulls; ``_wl_record_id`` is present;
- ``_wl_load_id`` is stamped on the whole batch when the engine did not;
- for an upsert, a key seen twice in one batch keeps its last row (upsert order).

>>> import pyarrow as pa
>>> t = pa.table({"k": ["a", "b", "a"], "v": [1, 2, 3], "_wl_record_id": ["r1", "r2", "r1"]})
>>> out, superseded = prepare(t, ["k"], "upsert", "L1")
>>> out.to_pydict()["v"], superseded, out.column("_wl_load_id").to_pylist()
([2, 3], 1, ['L1', 'L1'])
>>> prepare(pa.table({"Email": ["x"], "_wl_record_id": ["r"]}), ["Email"], "upsert", "L1")
Traceback (most recent call last):
...
connectors.errors.ConfigError: column names the destination would rename: 'Email' -> 'email'; use snake_case target fields
"""

from __future__ import annotations

import re
from typing import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectors.base.reserved import LOAD_ID, RECORD_ID, WriteDisposition
from connectors.errors import ConfigError

_ROW = "__wl_row"
# names dlt's snake_case convention keeps as they are (lower-case words joined by single underscores),
# checked without importing dlt; anything else is normalised by dlt itself
_PLAIN = re.compile(r"_?[a-z][a-z0-9]*(?:_[a-z0-9]+)*")


def check_names(names: list[str]) -> None:
    """Refuse column names that dlt's naming convention would change."""
    odd = [n for n in names if not _PLAIN.fullmatch(n)]
    if not odd:
        return
    from dlt.common.normalizers.naming.snake_case import NamingConvention

    naming = NamingConvention()
    renamed = [(n, naming.normalize_identifier(n)) for n in odd]
    renamed = [(n, m) for n, m in renamed if n != m]
    if renamed:
        text = ", ".join(f"{n!r} -> {m!r}" for n, m in renamed)
        raise ConfigError(f"column names the destination would rename: {text}; use snake_case target fields")


def check_key(table: pa.Table, key: list[str]) -> None:
    """The key columns exist and are never null; the record id column is present."""
    if RECORD_ID not in table.column_names:
        raise ConfigError(f"the batch has no {RECORD_ID} column; the destination keeps it for lineage")
    if not key:
        raise ConfigError("an upsert needs a target key")
    missing = [k for k in key if k not in table.column_names]
    if missing:
        raise ConfigError(f"key column(s) {missing} are not in the batch")
    nulls = {k: table.column(k).null_count for k in key if table.column(k).null_count}
    if nulls:
        raise ConfigError(f"key column(s) hold nulls {nulls}: make the key fields required in the spec")


def keep_last(table: pa.Table, key: list[str], repeats: bool = False) -> pa.Table:
    """One row per key: the last one in batch order, the kept rows in their original order.

    ``repeats=True``: keys are known to repeat (skips the check for the all-unique case)."""
    if table.num_rows < 2:
        return table
    if not repeats and len(key) == 1 and len(pc.unique(table.column(key[0]))) == table.num_rows:
        return table  # the common case, found ~5x faster than by grouping
    numbered = table.select(key).append_column(_ROW, pa.array(np.arange(table.num_rows, dtype=np.int64)))
    last = numbered.group_by(key, use_threads=False).aggregate([(_ROW, "max")]).column(f"{_ROW}_max")
    if len(last) == table.num_rows:
        return table
    return table.take(pc.take(last, pc.sort_indices(last)))


def ids_table(record_ids: "pa.Array | pa.ChunkedArray | Sequence[str]") -> pa.Table:
    """Record ids as a one-column table ``id`` (to join against, never a row loop)."""
    if not isinstance(record_ids, (pa.Array, pa.ChunkedArray)):
        record_ids = pa.array(list(record_ids), pa.string())
    return pa.table({"id": record_ids.cast(pa.string())})


def _key_not_nullable(table: pa.Table, key: list[str]) -> pa.Table:
    """Declare the (checked) key fields non-nullable, as dlt's primary key columns are."""
    fields = [f.with_nullable(False) if f.name in key else f for f in table.schema]
    return table.cast(pa.schema(fields, metadata=table.schema.metadata))


def prepare(
    table: pa.Table, key: list[str], write: WriteDisposition, load_id: str, keep: bool = True
) -> tuple[pa.Table, int]:
    """The batch as it is loaded, and how many rows a later row of the same key superseded.

    ``keep=False`` leaves repeated keys for the caller to resolve (a load that deduplicates across parts)."""
    check_names(table.column_names)
    if write == "upsert":
        check_key(table, key)
    elif RECORD_ID not in table.column_names:
        raise ConfigError(f"the batch has no {RECORD_ID} column; the destination keeps it for lineage")
    if LOAD_ID not in table.column_names:
        table = table.append_column(LOAD_ID, pa.repeat(pa.scalar(load_id, pa.string()), table.num_rows))
    if write != "upsert":
        return table, 0
    table = _key_not_nullable(table, key)
    if not keep:
        return table, 0
    kept = keep_last(table, key)
    return kept, table.num_rows - kept.num_rows


def q(name: str) -> str:
    """A quoted SQL identifier (PostgreSQL and DuckDB quote alike).

    >>> q('a"b')
    '"a""b"'
    """
    return '"' + name.replace('"', '""') + '"'


def create_table_sql(target: str, columns: pa.Schema, key: list[str],
                     type_of: "Callable[[pa.DataType], str | None]") -> str | None:
    """``CREATE TABLE IF NOT EXISTS`` with ``type_of(arrow type)`` per column (keys and non-nullable fields
    NOT NULL, as dlt makes them), or None when ``type_of`` has no type for a column (dlt decides then).

    >>> print(create_table_sql('"t"', pa.schema([("k", pa.string())]), ["k"], lambda t: "TEXT"))
    CREATE TABLE IF NOT EXISTS "t" ("k" TEXT NOT NULL)
    """
    defs = []
    for f in columns:
        kind = type_of(f.type)
        if kind is None:
            return None
        defs.append(f"{q(f.name)} {kind}" + (" NOT NULL" if f.name in key or not f.nullable else ""))
    return f"CREATE TABLE IF NOT EXISTS {target} ({', '.join(defs)})"
