"""Deleted rows never disappear: soft deletes are flagged, hard deletes are found by key reconciliation.

- Soft delete: a row matching the stream's :class:`SoftDelete` rule (``status = 'cancelled'``,
  ``deleted_at`` set) is emitted whole with ``_op = 'delete'``.
- Hard delete: every reconciling run reads all keys of the table and compares them with the key
  snapshot of the previous one; a key that vanished becomes a delete event (key, ``updated_at`` =
  when it was noticed, ``_op = 'delete'``, other fields null). Snapshots are content-addressed
  Parquet files under ``<home>/state/erp_sql/keys/<stream>/``; the cursor state names the current one,
  so a run that fails before landing leaves the old snapshot in force.

>>> import pyarrow as pa
>>> from connectors.erp_sql.streams import SoftDelete
>>> op_column(pa.table({"status": ["open", "cancelled", None]}), SoftDelete("status", ("cancelled",))).to_pylist()
['upsert', 'delete', 'upsert']
>>> vanished(pa.array([1, 2, 3]), pa.array([3, 1])).to_pylist()
[2]
"""

from __future__ import annotations

import hashlib
import os
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from connectors.base.home import Home
from connectors.erp_sql.streams import OP, SoftDelete


def op_column(table: pa.Table, rule: SoftDelete | None) -> pa.Array:
    """``'delete'`` where the soft-delete rule matches, else ``'upsert'``."""
    n = table.num_rows
    if rule is None:
        return pa.array(["upsert"] * n, pa.string())
    col = table.column(rule.column)
    if rule.values is None:
        hit = pc.is_valid(col)
    else:
        hit = pc.fill_null(pc.is_in(col, pa.array(rule.values, col.type)), False)
    return pc.if_else(hit, pa.scalar("delete"), pa.scalar("upsert"))


def vanished(previous: pa.Array, current: pa.Array) -> pa.Array:
    """Keys in ``previous`` that are not in ``current``."""
    return pc.filter(previous, pc.invert(pc.is_in(previous, current)))


def delete_events(keys: pa.Array, key: str, cursor: str, at: datetime, schema: pa.Schema) -> pa.Table:
    """Hard-delete events: the key, ``cursor`` = ``at``, ``_op = 'delete'``, everything else null."""
    n = len(keys)
    cols = []
    for f in schema:
        if f.name == key:
            cols.append(keys.cast(f.type))
        elif f.name == cursor:
            cols.append(pa.array([at] * n, f.type))
        elif f.name == OP:
            cols.append(pa.array(["delete"] * n, f.type))
        else:
            cols.append(pa.nulls(n, f.type))
    return pa.Table.from_arrays(cols, schema=schema)


def snapshot_dir(home: Home, stream: str) -> Path:
    return home.state / "erp_sql" / "keys" / stream


def save_keys(home: Home, stream: str, keys: pa.Array) -> str:
    """Store the key set (sorted) under its content hash; returns the file name."""
    ordered = pc.take(keys, pc.sort_indices(keys))
    table = pa.table({"key": ordered})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    name = f"keys-{hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()[:16]}.parquet"
    d = snapshot_dir(home, stream)
    d.mkdir(parents=True, exist_ok=True)
    path = d / name
    if not path.exists():
        tmp = path.with_suffix(f".tmp-{os.getpid()}")
        with open(tmp, "wb") as fh:
            pq.write_table(table, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    return name


def load_keys(home: Home, stream: str, name: str) -> pa.Array:
    return pq.read_table(snapshot_dir(home, stream) / name).column("key").combine_chunks()
