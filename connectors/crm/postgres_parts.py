"""One load of many parts into PostgreSQL, in one transaction that commits with the load.

Upserting part by part costs a join against the whole target per part, so a sync of N rows in
parts of B rows costs O(N²/B) (measured: 37 s of a 1 M-row ERP sync). Here (docs/adr/0207), on
one ADBC connection whose transaction stays open until :meth:`PostgresPartLoad.commit`:

- each part is checked and shaped as a one-part load is (:func:`connectors.crm.batch.prepare`)
  and COPYed (binary) on a background thread, so the runner reads and maps the next part while
  PostgreSQL takes this one;
- **direct**: while no key of the part was seen earlier in the load and the target was empty when
  the load began (or the write is an append), the part is COPYed straight into the target — the
  rows stay invisible to everyone else until the commit;
- **staged**: otherwise (a key repeats across parts, the target already has rows, a type must be
  cast) the entity's parts from then on are staged: upserted rows wait in memory, one row per key
  (the last), and go into a temporary table when that buffer passes 64 MB or at commit; appended
  rows go into temporary tables as they come. Rows are numbered by ``_wl_seq``; at commit the rows
  a later staged part superseded are dropped (known from the kept keys, without asking the
  server) and one ``INSERT … SELECT`` or ``MERGE`` writes the rest (JIT off, a ``work_mem`` that
  keeps the hash join in memory);
- a new table of plain column types is created in this transaction (``postgres_fast.create_sql``,
  the DDL dlt would run), so it appears together with its rows; other new tables are dlt's;
- a new column in a later part: dlt must ``ALTER`` the table, which waits for this transaction,
  so the parts so far are committed first (the only case where a load becomes visible in two
  steps; lineage recovery covers it like a crash between them).

>>> _union(["wl_p1", "wl_p2"], {"wl_p1": {"k", "v"}, "wl_p2": {"k"}}, ["k", "v"], {"v": "bigint"})
'SELECT "k", "v" FROM wl_p1 UNION ALL SELECT "k", NULL::bigint AS "v" FROM wl_p2'
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectors.base.identity import key_text
from connectors.base.reserved import RECORD_ID, SUBJECT, WriteDisposition
from connectors.crm import postgres_fast as fast
from connectors.crm.batch import check_names, keep_last, prepare
from connectors.crm.destination import LoadResult
from connectors.crm.evolution import check_types
from connectors.crm.nested import nested_to_json
from connectors.errors import ConfigError

log = logging.getLogger(__name__)
SEQ = "_wl_seq"
MAX_PENDING = 2  # parts waiting for their COPY: bounds the memory the background thread holds
BUFFER_BYTES = 64 << 20  # staged upsert rows kept (deduplicated) in memory before they are COPYed
COMPACT_ROWS = 200_000  # the buffer is deduplicated when it reaches this or twice its last compacted size
SESSION_SETTINGS = ("SET jit = off", "SET temp_buffers = '256MB'", "SET work_mem = '256MB'")


@dataclass
class _Entity:
    key: list[str]
    write: WriteDisposition
    columns: dict[str, str]  # the target's columns and types (after any DDL)
    empty: bool  # upsert: the target held no rows when the load began
    seen: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint64))  # key hashes copied direct
    parts: list[str] = field(default_factory=list)  # staging tables, in order
    part_columns: dict[str, set[str]] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)  # every staged column, first-seen order
    keys: list[pa.Table] = field(default_factory=list)  # (key text, seq, record id, subject) of each staged part
    direct: list[pa.Table] = field(default_factory=list)  # (key text, record id, subject) of each direct part
    rows: int = 0
    superseded: int = 0  # within parts (prepare); across staged parts is added at commit

    buffer: pa.Table | None = None  # staged upsert rows not yet COPYed (the last row per key once compacted)
    compacted: int = 0  # the buffer's rows after its last deduplication

    @property
    def staged(self) -> bool:
        return bool(self.parts) or self.buffer is not None


class PostgresPartLoad:
    """A load of several parts on one ADBC connection; see the module docstring."""

    deferred = True  # nothing is committed before commit(): the runner's lineage may run behind

    def __init__(self, dest: Any, load_id: str):
        self.dest, self.load_id = dest, load_id
        self.con = dest._connect()
        with self.con.cursor() as cur:
            for setting in SESSION_SETTINGS:  # temp_buffers: before the session's first temporary table
                cur.execute(setting)
        self._entities: dict[str, _Entity] = {}
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="wl-pg-load")
        self._pending: list[Future] = []
        self._seq = 0
        self._closed = False
        self._dropped: dict[str, pa.Array] | None = None  # set by seal()
        self._written: dict[str, pa.Table] = {}  # set by seal()
        self._wrote = False  # set by write()

    # -- adding parts --------------------------------------------------------------------------
    def add(self, entity: str, table: pa.Table, key: list[str], write: WriteDisposition) -> None:
        if self._closed:
            raise RuntimeError(f"load {self.load_id} is already committed or aborted")
        check_names([entity])
        known = self._entities.get(entity)
        buffered = known is not None and known.staged and write == "upsert"  # _buffer deduplicates
        batch, superseded = prepare(nested_to_json(table), key, write, self.load_id, keep=not buffered)
        if not fast.carries(batch.schema):
            raise ConfigError(f"{entity}: a column type the PostgreSQL load cannot COPY "
                              f"({batch.schema}); load it with ?fast_path=false")
        self._wait(MAX_PENDING - 1)
        e = self._entity(entity, batch, key, write)
        check_types(entity, fast.as_dlt_columns(e.columns), batch.schema)
        e.rows += batch.num_rows
        e.superseded += superseded
        if batch.num_rows == 0:
            return
        keys = key_text(batch, e.key) if e.key and not e.staged else None  # once, for both uses below
        if not e.staged and self._direct(e, batch, keys):
            e.direct.append(_ids(batch, keys))
            self._pending.append(self._pool.submit(self._copy, entity, batch, False))
            return
        if write == "upsert":  # keep the last row per key in memory; COPY only what survives
            self._buffer(entity, e, batch)
            return
        self._stage(entity, e, batch)

    def _buffer(self, entity: str, e: _Entity, batch: pa.Table) -> None:
        """Add to the buffer; deduplicate it once it doubled since the last time (amortised O(rows))."""
        e.buffer = batch if e.buffer is None else pa.concat_tables([e.buffer, batch], promote_options="permissive")
        if e.buffer.num_rows >= max(2 * e.compacted, COMPACT_ROWS):
            self._compact(e)
            if e.buffer.nbytes > BUFFER_BYTES:
                self._flush(entity, e)

    def _compact(self, e: _Entity) -> None:
        kept = keep_last(e.buffer, e.key, repeats=e.compacted > 0)  # once compacted, the next parts repeat keys
        e.superseded += e.buffer.num_rows - kept.num_rows
        e.rows -= e.buffer.num_rows - kept.num_rows
        e.buffer, e.compacted = kept, kept.num_rows

    def _flush(self, entity: str, e: _Entity) -> None:
        if e.buffer is not None and e.buffer.num_rows:
            self._compact(e)
            self._stage(entity, e, e.buffer.combine_chunks())
        e.buffer, e.compacted = None, 0

    def _stage(self, entity: str, e: _Entity, batch: pa.Table) -> None:
        """COPY a part into a temporary table of its own (numbered rows, for the commit's dedup)."""
        seq = pa.array(range(self._seq, self._seq + batch.num_rows), pa.int64())
        self._seq += batch.num_rows
        batch = batch.append_column(SEQ, seq)
        name = f"wl_p{list(self._entities).index(entity)}_{len(e.parts)}"
        e.parts.append(name)
        e.part_columns[name] = set(batch.column_names)
        e.names += [c for c in batch.column_names if c not in e.names]
        e.keys.append(_ids(batch, key_text(batch, e.key) if e.key else None).append_column(SEQ, seq))
        log.debug("crm %s: load %s stages %s into %s", self.dest.name, self.load_id, entity, name)
        self._pending.append(self._pool.submit(self._copy, name, batch, True))

    def _direct(self, e: _Entity, batch: pa.Table, keys: pa.Array | None) -> bool:
        """May this part go straight into the target? Then its keys are remembered."""
        if not fast.exact(batch.schema, e.columns):
            return False
        if e.write != "upsert":
            return True
        if not e.empty:
            return False
        h = _hashes(keys)  # sorted, unique
        at = np.searchsorted(e.seen, h)
        if len(e.seen) and (e.seen[np.minimum(at, len(e.seen) - 1)] == h).any():
            return False
        e.seen = np.insert(e.seen, at, h)  # still sorted: one copy of the seen keys, no sort
        return True

    def _entity(self, entity: str, batch: pa.Table, key: list[str], write: WriteDisposition) -> _Entity:
        """The entity's state; creates the table (``fast.create_sql``, else dlt) or its new columns (dlt) first."""
        e = self._entities.get(entity)
        if e is not None and (e.key, e.write) != (key, write):
            raise ConfigError(f"{entity}: every part of a load needs the same key and write ({e.key}, {e.write})")
        if e is not None and set(batch.column_names) <= set(e.columns):
            return e
        self._wait(0)  # the connection is free: no COPY is running
        if e is not None:  # a column appears mid-load: dlt's ALTER would wait for our transaction
            log.warning("crm %s: load %s commits its parts so far before %s gets new columns",
                        self.dest.name, self.load_id, entity)
            self.con.commit()
            e.columns = self._ddl(entity, batch, key, write)
            self._lock(*self._entities)  # the commit let the writer locks go: this load still writes
            return e
        self._lock(entity)  # one writer per entity: a concurrent load of it waits for this one's commit
        columns = self._columns(entity)
        create = fast.create_sql(self.dest.dataset, entity, batch.schema, key) if not columns else None
        if create is not None:  # the table commits with the load's rows; its schema is there for dlt at once
            self._ensure_schema()
            with self.con.cursor() as cur:
                cur.execute(create)
            columns = self._columns(entity)
        if not set(batch.column_names) <= set(columns):  # this transaction holds no lock on it yet
            columns = self._ddl(entity, batch, key, write)
        target = f"{fast.q(self.dest.dataset)}.{fast.q(entity)}"
        with self.con.cursor() as cur:
            if write == "replace":
                cur.execute(f"DELETE FROM {target}")
            empty = write == "upsert" and fast._empty(cur, target)
        e = self._entities[entity] = _Entity(key, write, columns, empty)
        return e

    def _lock(self, *entities: str) -> None:
        with self.con.cursor() as cur:
            for name in entities:
                fast.lock_entity(cur, self.dest.dataset, name)

    def _ensure_schema(self) -> None:
        """The dataset's schema, committed on a connection of its own: a schema created inside this load's
        transaction would make dlt (creating another entity's table meanwhile) wait for it forever."""
        con = self.dest._connect()
        try:
            with con.cursor() as cur:
                cur.execute(f"CREATE SCHEMA IF NOT EXISTS {fast.q(self.dest.dataset)}")
            con.commit()
        finally:
            con.close()

    def _wait(self, keep: int) -> None:
        """Wait until at most ``keep`` parts are pending; a failed COPY raises here."""
        while len(self._pending) > keep:
            self._pending.pop(0).result()

    def _copy(self, name: str, batch: pa.Table, temporary: bool) -> None:
        """COPY one part (the background thread; ADBC releases the GIL). Nothing commits here."""
        with self.con.cursor() as cur:
            if temporary:
                cur.adbc_ingest(name, batch, mode="create", temporary=True)
            else:
                cur.adbc_ingest(name, batch, mode="append", db_schema_name=self.dest.dataset)

    def _columns(self, entity: str) -> dict[str, str]:
        with self.con.cursor() as cur:
            return fast.table_columns(cur, self.dest.dataset, entity)

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
    def seal(self) -> None:
        """Flush the buffers, wait for every COPY and find the superseded rows: what the commit writes is known."""
        if self._dropped is not None:
            return
        for name, e in self._entities.items():
            self._flush(name, e)
        self._wait(0)
        self._dropped = {name: _superseded(e) for name, e in self._entities.items()}
        self._written = {name: _written(e, self._dropped[name]) for name, e in self._entities.items()}

    def written(self, entity: str) -> pa.Table:
        """``_wl_record_id``, ``_wl_subject`` and ``target_key`` of every row of ``entity`` the commit leaves
        written by this load (a row a later part replaced is not one): the load's ``loaded`` edges."""
        self.seal()
        return self._written[entity]

    def write(self) -> None:
        """Write the staged parts into their targets, not yet committed (the server works while the
        caller's lineage is made durable; :meth:`commit` then only commits)."""
        if self._wrote:
            return
        self.seal()
        try:
            with self.con.cursor() as cur:
                for name, e in self._entities.items():
                    if e.staged:
                        self._write(cur, name, e, self._dropped[name])
        except BaseException:
            self.abort()
            raise
        self._wrote = True

    def commit(self) -> dict[str, LoadResult]:
        try:
            self.write()
            self.con.commit()
        except BaseException:
            self.abort()
            raise
        self._close()
        out = {}
        for name, e in self._entities.items():  # every row added is written or superseded
            rows = self._written[name].num_rows
            out[name] = LoadResult(self.dest.name, name, name, self.load_id, rows, e.superseded + e.rows - rows,
                                   path="fast")
        return out

    def _write(self, cur: Any, entity: str, e: _Entity, dropped: pa.Array) -> None:
        target = f"{fast.q(self.dest.dataset)}.{fast.q(entity)}"
        cols = [c for c in e.names if c != SEQ]
        source = _union(e.parts, e.part_columns, e.names, e.columns)
        if len(dropped):
            cur.adbc_ingest("wl_dropped", pa.table({"seq": dropped}), mode="replace", temporary=True)
            source = f"SELECT * FROM ({source}) AS u WHERE NOT EXISTS (SELECT 1 FROM wl_dropped d WHERE d.seq = u.{SEQ})"
        names = ", ".join(fast.q(c) for c in cols)
        if e.write != "upsert" or (e.empty and not len(e.seen)):
            cur.execute(f"INSERT INTO {target} ({names}) SELECT {names} FROM ({source}) AS s")
        else:  # the target has rows: earlier loads', or this load's direct parts
            cur.execute(fast.merge_sql(target, f"({source})", e.key, cols, list(e.columns)))
        log.debug("crm %s: load %s writes %d staged parts into %s", self.dest.name, self.load_id, len(e.parts), entity)

    # -- ending --------------------------------------------------------------------------------
    def abort(self) -> None:
        """Nothing of the load reached the targets (but parts committed before a mid-load DDL)."""
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


def _hashes(keys: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """64-bit hashes of key texts (the first 64 bits of their SHA-256), sorted and unique.

    A collision only sends a part down the staged path, which is correct for any part."""
    from connectors.base.hashing import sha256_u64

    h = np.sort(sha256_u64([keys]))
    return h[np.concatenate(([True], h[1:] != h[:-1]))] if len(h) else h  # np.unique: ~25x slower here


def _ids(batch: pa.Table, keys: pa.Array | None) -> pa.Table:
    """What a part's ``loaded`` edges need: the target key as text (``keys``), the record id, the subject."""
    n = batch.num_rows
    return pa.table({
        "target_key": keys if keys is not None else pa.nulls(n, pa.string()),
        RECORD_ID: batch.column(RECORD_ID),
        SUBJECT: batch.column(SUBJECT) if SUBJECT in batch.column_names else pa.nulls(n, pa.string()),
    })


def _written(e: _Entity, dropped: pa.Array) -> pa.Table:
    """The ids of the rows the load leaves: staged rows no later staged part replaced, and direct rows no
    staged part replaced (an upsert's staged parts come after its direct ones)."""
    staged = pa.concat_tables(e.keys) if e.keys else None
    if staged is not None and len(dropped):
        staged = staged.filter(pc.invert(pc.is_in(staged.column(SEQ), value_set=dropped)))
    direct = pa.concat_tables(e.direct) if e.direct else None
    if direct is not None and staged is not None and e.write == "upsert":
        direct = direct.filter(pc.invert(pc.is_in(direct.column("target_key"), value_set=staged.column("target_key"))))
    parts = [t.select(["target_key", RECORD_ID, SUBJECT]) for t in (direct, staged) if t is not None]
    return pa.concat_tables(parts) if parts else pa.table({"target_key": pa.array([], pa.string()),
                                                           RECORD_ID: pa.array([], pa.string()),
                                                           SUBJECT: pa.array([], pa.string())})


def _superseded(e: _Entity) -> pa.Array:
    """``_wl_seq`` of the staged upsert rows a later staged part replaced (same key), or an empty array."""
    if len(e.keys) < 2 or e.write != "upsert":
        return pa.array([], pa.int64())
    keys = pa.concat_tables(e.keys).select(["target_key", SEQ]).rename_columns(["k", SEQ])
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
