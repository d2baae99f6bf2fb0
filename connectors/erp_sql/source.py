"""The ERP source: SQL tables → Arrow batches, incremental by cursor, deletes as events.

One run of :meth:`ErpSqlSource.read` reads ``cursor >= last - lookback`` ordered by cursor
and key (see :mod:`connectors.erp_sql.incremental`), flags soft deletes, and — on reconciling
runs — appends hard-delete events for keys that vanished (:mod:`connectors.erp_sql.deletes`).
Each :class:`Batch` carries the state to persist once it has landed; the source never
persists state itself.

>>> import tempfile, os
>>> from connectors.base.home import Home
>>> from connectors.erp_sql.sample import create_sample_erp
>>> home = Home(tempfile.mkdtemp())
>>> url = f"sqlite:///{home.root}/erp.sqlite"
>>> create_sample_erp(url)["orders"]
300
>>> src = ErpSqlSource({"url": url, "batch_size": 200}, home)
>>> batches = list(src.read("orders", {}))
>>> [b.table.num_rows for b in batches]
[200, 100]
>>> sum(b.table.column("_op").to_pylist().count("delete") for b in batches)  # cancelled orders
30
>>> list(src.read("orders", batches[-1].state))[-1].table.num_rows  # nothing new
0
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from connectors.base.home import Home
from connectors.base.source import Batch, rejected
from connectors.erp_sql.arrow_schema import conform
from connectors.erp_sql.deletes import delete_events, load_keys, op_column, save_keys, vanished
from connectors.erp_sql.incremental import Cursor
from connectors.erp_sql.readers import Reader, open_reader
from connectors.erp_sql.settings import Settings
from connectors.erp_sql.streams import OP, STREAMS, ErpStream, by_name
from connectors.erp_sql.urls import masked
from connectors.errors import ConfigError

log = logging.getLogger(__name__)


class ErpSqlSource:
    system: ClassVar[str] = "erp_sql"
    streams: ClassVar[tuple[ErpStream, ...]] = STREAMS

    def __init__(self, config: dict, home: Home):
        self.settings = Settings.from_config(config)
        self.home = home

    def __repr__(self) -> str:
        return f"ErpSqlSource({self.settings!r})"

    def read(self, stream: str, state: Mapping[str, Any]) -> Iterator[Batch]:
        s = by_name(stream)
        column = self.settings.cursors.get(stream, s.position)
        if column not in s.columns:
            raise ConfigError(f"erp_sql {stream}: cursor column {column!r} is not declared in {s.schema_file}")
        if state.get("cursor_column", column) != column:
            raise ConfigError(f"erp_sql {stream}: the state was kept for cursor {state['cursor_column']!r}, "
                              f"the config now says {column!r}; reset the stream's state to switch")
        cursor = Cursor.from_state(dict(state), column, lookback_seconds=self.settings.lookback_seconds,
                                   max_seen=self.settings.max_seen)
        reader = open_reader(self.settings.url, self.settings.reader)
        log.info("erp_sql %s: reading from %s (cursor %s >= %s)", stream, masked(self.settings.url),
                 column, cursor.low())
        try:
            pending: Batch | None = None
            for raw in reader.batches(*self._query(reader, s, cursor), self.settings.batch_size):
                table, bad = self._split(s, raw)
                table = cursor.fresh(table, list(s.key))
                cursor = cursor.advance(table, list(s.key))
                if pending is not None:
                    yield pending
                pending = Batch(stream, table, cursor.to_state(), bad)
            yield self._finish(reader, s, cursor, pending)
        finally:
            reader.close()

    def _table(self, reader: Reader, s: ErpStream) -> str:
        name = reader.quote(self.settings.tables.get(s.name, s.table))
        return f"{reader.quote(self.settings.schema)}.{name}" if self.settings.schema else name

    def _query(self, reader: Reader, s: ErpStream, cursor: Cursor) -> tuple[str, list]:
        types = s.arrow_schema
        cols = ", ".join(reader.column(c, types.field(c).type) for c in s.columns)
        order = ", ".join(reader.quote(c) for c in dict.fromkeys((cursor.column, *s.key)))
        sql, params = f"SELECT {cols} FROM {self._table(reader, s)}", []
        if cursor.low() is not None:
            sql += f" WHERE {reader.quote(cursor.column)} >= {reader.placeholder(0)}"
            params.append(reader.bind(cursor.low()))
        return f"{sql} ORDER BY {order}", params

    def _split(self, s: ErpStream, raw: pa.Table) -> tuple[pa.Table, pa.Table]:
        """Conform to the declared schema, add ``_op``; rows without key or cursor are rejected."""
        schema = s.arrow_schema
        table = conform(raw, pa.schema([f for f in schema if f.name != OP]))
        table = table.append_column(schema.field(OP), op_column(table, s.soft_delete))
        ok = pc.and_(*[pc.is_valid(table.column(c)) for c in (*s.key, s.position)])
        if pc.all(ok).as_py() is not False:
            return table, rejected([])
        bad = table.filter(pc.invert(ok))
        rows = [(f"{s.table} row (no key or {s.position})", f"{s.name}: key {list(s.key)} or cursor {s.position} is null",
                 json.dumps(r, default=str, ensure_ascii=False).encode()) for r in bad.to_pylist()]
        return table.filter(ok), rejected(rows)

    def _finish(self, reader: Reader, s: ErpStream, cursor: Cursor, pending: Batch | None) -> Batch:
        """The last batch: the last rows read plus hard-delete events, and the reconciliation state."""
        table = pending.table if pending else s.arrow_schema.empty_table()
        bad = pending.rejected if pending else rejected([])
        extra = dict(cursor.extra)
        runs = int(extra.get("runs", 0)) + 1
        every = self.settings.reconcile_every
        if every and (runs % every == 0 or "keys" not in extra):
            events, extra["keys"] = self._reconcile(reader, s, extra.get("keys"))
            table = pa.concat_tables([table, events])
        extra["runs"] = runs
        state = {**cursor.to_state(), **extra}
        return Batch(s.name, table, state, bad)

    def _reconcile(self, reader: Reader, s: ErpStream, previous: str | None) -> tuple[pa.Table, str]:
        key = s.key[0]
        sql = f"SELECT {reader.quote(key)} FROM {self._table(reader, s)}"
        parts = list(reader.batches(sql, [], 1_000_000))
        key_type = s.arrow_schema.field(key).type
        current = pa.concat_arrays([p.column(0).combine_chunks().cast(key_type) for p in parts]) if parts \
            else pa.array([], key_type)
        name = save_keys(self.home, s.name, current)
        if previous is None:
            return s.arrow_schema.empty_table(), name
        gone = vanished(load_keys(self.home, s.name, previous), current)
        if len(gone):
            log.info("erp_sql %s: %d key(s) vanished since the last reconciliation", s.name, len(gone))
        at = datetime.now(timezone.utc)
        return delete_events(gone, key, s.position, at, s.arrow_schema), name
