"""One load of many parts into PostgreSQL, written into the targets once, at commit.

Upserting part by part costs a join against the whole target per part, so a sync of N rows in
parts of B rows costs O(N²/B) (measured: 37 s of a 1 M-row ERP sync). Here (docs/adr/0207):

- each part is checked and shaped as a one-part load is (:func:`connectors.crm.batch.prepare`),
  numbered with ``_wl_seq``, and COPYed (ADBC, binary) into a temporary table of its own — on a
  background thread, so the runner reads and maps the next part while PostgreSQL takes this one;
  missing tables and columns are created by dlt first, exactly as for a one-part load;
- the key and ``_wl_seq`` of every upserted part are kept (a few bytes a row); at commit the rows
  a later part superseded are known without asking the server;
- ``commit`` writes every entity of the load in **one transaction**: ``INSERT … SELECT`` when the
  target was empty, else one ``MERGE`` (an anti-join drops the superseded rows); JIT off, a
  ``work_mem`` that keeps the hash join in memory. Nothing of the load is visible before it.

>>> _union(["wl_p1", "wl_p2"], {"wl_p1": {"k", "v"}, "wl_p2": {"k"}}, ["k", "v"], {"v": "bigint"})
'SELECT "k", "v" FROM wl_p1 UNION ALL SELECT "k", NULL::bigint AS "v" FROM wl_p2'
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from connectors.base.identity import key_text
from connectors.base.reserved import WriteDisposition
from connectors.crm import postgres_fast as fast
from connectors.crm.batch import check_names, prepare
from connectors.crm.destination import LoadResult
from connectors.crm.evolution import check_types
from connectors.crm.nested import nested_to_json
from connectors.errors import ConfigError

log = logging.getLogger(__name__)
SEQ = "_wl_seq"
MAX_PENDING = 2  # parts waiting for their COPY: bounds the memory the background thread holds
COMMIT_SETTINGS = ("SET LOCAL jit = off", "SET LOCAL work_mem = '256MB'")


@dataclass
class _Entity:
    key: list[str]
    write: WriteDisposition
    columns: dict[str, str]  # the target's columns and types (after any DDL)
    empty: bool  # the target held no rows when the load began
    parts: list[str] = field(default_factory=list)  # staging tables, in order
    part_columns: dict[str, set[str]] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)  # every column any part had, first-seen order
    keys: list[pa.Table] = field(default_factory=list)  # (key text, seq) of each upserted part
    rows: int = 0
    superseded: int = 0  # within parts (prepare); across parts is added at commit


class PostgresPartLoad:
    """A staged load on one ADBC connection; see the module docstring."""

    def __init__(self, dest: Any, load_id: str):
        self.dest, self.load_id = dest, load_id
        self.con = dest._connect()
        self._entities: dict[str, _Entity] = {}
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="wl-pg-stage")
        self._pending: list[Future] = []
        self._seq = 0
        self._closed = False

    # -- adding parts --------------------------------------------------------------------------
    def add(self, entity: str, table: pa.Table, key: list[str], write: WriteDisposition) -> None:
        if self._closed:
            raise RuntimeError(f"load {self.load_id} is already committed or aborted")
        check_names([entity])
        batch, superseded = prepare(nested_to_json(table), key, write, self.load_id)
        if not fast.carries(batch.schema):
            raise ConfigError(f"{entity}: a column type the staged PostgreSQL load cannot COPY "
                              f"({batch.schema}); load it with ?fast_path=false")
        self._wait(MAX_PENDING - 1)
        e = self._entity(entity, batch, key, write)
        check_types(entity, fast.as_dlt_columns(e.columns), batch.schema)
        seq = pa.array(range(self._seq, self._seq + batch.num_rows), pa.int64())
        self._seq += batch.num_rows
        batch = batch.append_column(SEQ, seq)
        name = f"wl_p{list(self._entities).index(entity)}_{len(e.parts)}"
        e.parts.append(name)
        e.part_columns[name] = set(batch.column_names)
        e.names += [c for c in batch.column_names if c not in e.names]
        e.rows += batch.num_rows
        e.superseded += superseded
        if write == "upsert":
            e.keys.append(pa.table({"k": key_text(batch, key), SEQ: seq}))
        self._pending.append(self._pool.submit(self._copy, name, batch))

    def _entity(self, entity: str, batch: pa.Table, key: list[str], write: WriteDisposition) -> _Entity:
        """The entity's state; creates the table or its new columns first (dlt, in this thread)."""
        e = self._entities.get(entity)
        if e is not None and (e.key, e.write) != (key, write):
            raise ConfigError(f"{entity}: every part of a load needs the same key and write ({e.key}, {e.write})")
        if e is not None and set(batch.column_names) <= set(e.columns):
            return e
        self._wait(0)  # the connection is free: no COPY is running
        if e is not None:
            e.columns = self._ddl(entity, batch, key, write)
            return e
        columns = self._columns(entity)
        if not set(batch.column_names) <= set(columns):
            columns = self._ddl(entity, batch, key, write)
        with self.con.cursor() as cur:
            empty = write != "upsert" or fast._empty(cur, f"{fast.q(self.dest.dataset)}.{fast.q(entity)}")
        self.con.commit()  # hold no lock on the target between parts (dlt may need to ALTER it)
        e = self._entities[entity] = _Entity(key, write, columns, empty)
        return e

    def _wait(self, keep: int) -> None:
        """Wait until at most ``keep`` parts are pending; a failed COPY raises here."""
        while len(self._pending) > keep:
            self._pending.pop(0).result()

    def _copy(self, name: str, batch: pa.Table) -> None:
        """COPY one part into its temporary table (the background thread; ADBC releases the GIL)."""
        with self.con.cursor() as cur:
            cur.adbc_ingest(name, batch, mode="create", temporary=True)
        self.con.commit()  # a temporary table lives for the session; its rows are ours alone

    def _columns(self, entity: str) -> dict[str, str]:
        with self.con.cursor() as cur:
            cols = fast.table_columns(cur, self.dest.dataset, entity)
        self.con.commit()
        return cols

    def _ddl(self, entity: str, data: pa.Table, key: list[str], write: WriteDisposition) -> dict[str, str]:
        """Let dlt create the table or add the columns (an empty slice: DDL only), as a one-part load does."""
        from connectors.crm import pipeline as dltrun

        dltrun.run(self.dest._pipeline(entity), entity, data.slice(0, 0), key, write, self.load_id)
        columns = self._columns(entity)
        missing = set(data.column_names) - set(columns)
        if missing:  # e.g. an all-null column dlt does not create
            raise ConfigError(f"{entity}: columns {sorted(missing)} could not be created in {self.dest.name}")
        return columns

    # -- commit --------------------------------------------------------------------------------
    def commit(self) -> dict[str, LoadResult]:
        try:
            self._wait(0)
            dropped = {name: _superseded(e) for name, e in self._entities.items()}
            with self.con.cursor() as cur:
                for setting in COMMIT_SETTINGS:
                    cur.execute(setting)
                for name, e in self._entities.items():
                    self._write(cur, name, e, dropped[name])
            self.con.commit()
        except BaseException:
            self.abort()
            raise
        self._close()
        return {name: LoadResult(self.dest.name, name, name, self.load_id, e.rows - len(dropped[name]),
                                 e.superseded + len(dropped[name]), path="fast")
                for name, e in self._entities.items()}

    def _write(self, cur: Any, entity: str, e: _Entity, dropped: pa.Array) -> None:
        target = f"{fast.q(self.dest.dataset)}.{fast.q(entity)}"
        cols = [c for c in e.names if c != SEQ]
        source = _union(e.parts, e.part_columns, e.names, e.columns)
        if len(dropped):
            cur.adbc_ingest("wl_dropped", pa.table({"seq": dropped}), mode="replace", temporary=True)
            source = f"SELECT * FROM ({source}) AS u WHERE NOT EXISTS (SELECT 1 FROM wl_dropped d WHERE d.seq = u.{SEQ})"
        names = ", ".join(fast.q(c) for c in cols)
        if e.write == "replace":
            cur.execute(f"DELETE FROM {target}")
        if e.write != "upsert" or (e.empty and fast._empty(cur, target)):
            cur.execute(f"INSERT INTO {target} ({names}) SELECT {names} FROM ({source}) AS s")
        else:
            cur.execute(fast.merge_sql(target, f"({source})", e.key, cols, list(e.columns)))
        log.debug("crm %s: load %s into %s from %d parts", self.dest.name, self.load_id, entity, len(e.parts))

    # -- ending --------------------------------------------------------------------------------
    def abort(self) -> None:
        """Nothing of the load reached the targets: drop the staging tables with the session."""
        if self._closed:
            return
        for f in self._pending:
            f.cancel()
        self._pool.shutdown(wait=True)
        try:
            self.con.rollback()
        except Exception as exc:  # a broken connection rolls back by itself
            log.debug("rollback of load %s: %s", self.load_id, exc)
        self._close()

    def _close(self) -> None:
        self._closed = True
        self._pool.shutdown(wait=True)
        try:
            self.con.close()
        except Exception as exc:
            log.debug("closing the load connection: %s", exc)


def _superseded(e: _Entity) -> pa.Array:
    """``_wl_seq`` of the upserted rows a later part replaced (same key), or an empty array."""
    if len(e.keys) < 2:
        return pa.array([], pa.int64())
    keys = pa.concat_tables(e.keys)
    last = keys.group_by("k", use_threads=False).aggregate([(SEQ, "max")]).column(f"{SEQ}_max")
    if len(last) == keys.num_rows:
        return pa.array([], pa.int64())
    seqs = keys.column(SEQ)
    return pc.filter(seqs, pc.invert(pc.is_in(seqs, value_set=last))).combine_chunks()


def _union(parts: list[str], part_columns: dict[str, set[str]], names: list[str], types: dict[str, str]) -> str:
    """All parts as one relation with every column (NULL of the target's type where a part lacks one)."""
    def select(p: str) -> str:
        cols = [fast.q(c) if c in part_columns[p] else f"NULL::{types.get(c, 'bigint')} AS {fast.q(c)}" for c in names]
        return f"SELECT {', '.join(cols)} FROM {p}"
    return " UNION ALL ".join(select(p) for p in parts)
