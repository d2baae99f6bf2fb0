"""PostgreSQL as the CRM: ADBC loads the tables (fast path), dlt evolves them.

A new table of plain column types is created with the DDL dlt would run
(``postgres_fast.create_sql``, docs/adr/0200); any other new table, and a batch column the
table lacks, is created or added by dlt from the batch's schema alone (an empty slice); then
the rows go through :mod:`connectors.crm.postgres_fast`. dlt loads the rows itself only when
the batch holds a type the fast path does not carry or when the fast path is switched off
(``?fast_path=false`` in the URL). Nested columns arrive as JSON text (nested.py). Both apply
the same checks and write the same rows.
Reads and deletes use ADBC: Arrow in, Arrow out.
"""

from __future__ import annotations

import logging
import os
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import adbc_driver_postgresql.dbapi as adbc
import pyarrow as pa

from connectors.base.home import Home
from connectors.base.reserved import LOAD_ID, RECORD_ID, WriteDisposition
from connectors.crm import postgres_fast as fast
from connectors.crm.batch import check_names, ids_table, prepare
from connectors.crm.destination import LoadResult, RecordIds
from connectors.crm.evolution import check_types
from connectors.crm.nested import nested_to_json
from connectors.errors import FatalError, RetriableError, StageError

log = logging.getLogger(__name__)


def with_password(url: str) -> str:
    """dlt needs a password in the URL even with trust auth: ``$PGPASSWORD`` or a placeholder.

    >>> with_password("postgresql://postgres@127.0.0.1:5432/test")
    'postgresql://postgres:unused@127.0.0.1:5432/test'
    """
    parts = urlsplit(url)
    if parts.password is not None:
        return url
    user = parts.username or "postgres"
    host = parts.hostname or "127.0.0.1"
    port = f":{parts.port}" if parts.port else ""
    secret = os.environ.get("PGPASSWORD", "unused")
    return urlunsplit(parts._replace(netloc=f"{user}:{secret}@{host}{port}"))


class PostgresDestination:
    def __init__(self, home: Home, url: str, dataset: str, *, fast_path: bool = True):
        self.home, self.dataset, self.fast_path = home, dataset, fast_path
        self._url = with_password(url)
        self.name = f"postgres:{dataset}"
        parts = urlsplit(self._url)  # where the data goes, without user or password
        self._location = urlunsplit(parts._replace(netloc=f"{parts.hostname}:{parts.port or 5432}"))
        self._pipelines: dict[str, Any] = {}

    def __repr__(self) -> str:  # never the URL: it holds the password
        return f"PostgresDestination({self.name!r}, fast_path={self.fast_path})"

    def _pipeline(self, entity: str) -> Any:
        import dlt  # only for DDL dlt owns and for ?fast_path=false: a sync into existing tables never imports it

        from connectors.crm import pipeline as dltrun

        if entity not in self._pipelines:
            name = dltrun.pipeline_name("postgres", self._location, self.dataset, entity)
            self._pipelines[entity] = dltrun.make_pipeline(
                self.home, name, dlt.destinations.postgres(credentials=self._url), self.dataset)
        return self._pipelines[entity]

    def _connect(self) -> Any:
        try:
            return adbc.connect(self._url)
        except Exception as exc:  # the driver's errors name the host, never the password
            raise RetriableError(f"{self.name}: cannot connect: {exc}") from exc

    def load(
        self, entity: str, table: pa.Table, key: list[str], write: WriteDisposition, load_id: str
    ) -> LoadResult:
        check_names([entity])
        batch, superseded = prepare(nested_to_json(table), key, write, load_id)
        path = self._fast(entity, batch, key, write, load_id) if self.fast_path else None
        if path is None:
            from connectors.crm import pipeline as dltrun

            dltrun.run(self._pipeline(entity), entity, batch, key, write, load_id)
        return LoadResult(self.name, entity, entity, load_id, batch.num_rows, superseded,
                          path="dlt" if path is None else "fast")

    def open_load(self, load_id: str) -> Any:
        """A load of several parts, written into the targets at commit in one transaction (ADR 0207)."""
        from connectors.crm.parts import PartByPart
        from connectors.crm.postgres_parts import PostgresPartLoad

        if not self.fast_path:
            return PartByPart(self, load_id)
        try:
            return PostgresPartLoad(self, load_id)
        except RetriableError as exc:
            raise StageError.wrap("load", load_id, exc) from exc

    def _fast(self, entity: str, batch: pa.Table, key: list[str], write: WriteDisposition,
              load_id: str) -> str | None:
        """Load through ADBC, or return None when dlt must load the batch (a type ADBC can't carry).

        A missing table is created as dlt would create it (``fast.create_sql``); a missing column
        is added by dlt from the batch's schema alone (an empty slice: DDL only), so the data
        itself always takes the fast path.
        """
        if not fast.carries(batch.schema):
            return None
        try:
            con = self._connect()
        except RetriableError as exc:
            raise StageError.wrap("load", load_id, exc) from exc
        with con:
            columns = self._columns(con, entity)
            if not columns and fast.create(con, self.dataset, entity, batch.schema, key):
                con.commit()
                columns = self._columns(con, entity)
            if not set(batch.column_names) <= set(columns):
                from connectors.crm import pipeline as dltrun

                dltrun.run(self._pipeline(entity), entity, batch.slice(0, 0), key, write, load_id)
                columns = self._columns(con, entity)
                if not set(batch.column_names) <= set(columns):  # e.g. an all-null column dlt skips
                    return None
            # the table as it is, not dlt's memory of it: no dlt pipeline on the steady path
            check_types(entity, fast.as_dlt_columns(columns), batch.schema)
            try:
                how = fast.write(con, self.dataset, entity, batch, key, write, columns)
            except Exception as exc:
                raise StageError.wrap("load", load_id, _sorted(exc, f"{self.name} fast path")) from exc
        log.debug("crm %s: %d rows into %s (%s)", self.name, batch.num_rows, entity, how)
        return how

    def _columns(self, con: Any, entity: str) -> dict[str, str]:
        with con.cursor() as cur:
            return fast.table_columns(cur, self.dataset, entity)

    # --- reads and deletes ------------------------------------------------------------

    def _exists(self, cur: Any, entity: str) -> bool:
        return bool(fast.table_columns(cur, self.dataset, entity))

    def _target(self, entity: str) -> str:
        return f"{fast.q(self.dataset)}.{fast.q(entity)}"

    def read(self, entity: str, where_record_ids: RecordIds | None = None) -> pa.Table:
        with self._connect() as con, con.cursor() as cur:
            if not self._exists(cur, entity):
                return pa.table({})
            where = ""
            if where_record_ids is not None:
                cur.adbc_ingest("wl_ids", ids_table(where_record_ids), mode="replace", temporary=True)
                where = f" WHERE {RECORD_ID} IN (SELECT id FROM wl_ids)"
            cur.execute(f"SELECT * FROM {self._target(entity)}{where}")
            return _plain(cur.fetch_arrow_table())

    def delete_records(self, entity: str, record_ids: RecordIds) -> int:
        with self._connect() as con, con.cursor() as cur:
            if not self._exists(cur, entity):
                return 0
            cur.adbc_ingest("wl_ids", ids_table(record_ids), mode="replace", temporary=True)
            cur.execute(f"DELETE FROM {self._target(entity)} WHERE {RECORD_ID} IN (SELECT id FROM wl_ids)")
            deleted = cur.rowcount
            con.commit()
            return int(deleted)

    def committed_load_ids(self, entity: str) -> set[str]:
        with self._connect() as con, con.cursor() as cur:
            if not self._exists(cur, entity):
                return set()
            cur.execute(f"SELECT DISTINCT {LOAD_ID} FROM {self._target(entity)} WHERE {LOAD_ID} IS NOT NULL")
            return set(cur.fetch_arrow_table().column(0).to_pylist())


def _sorted(exc: Exception, where: str) -> Exception:
    """Connection loss, a deadlock or serialization failure, or a server running out of
    resources are worth retrying (SQLSTATE classes 08, 40, 53, 57); anything else is fatal.

    >>> _sorted(Exception("boom"), "x").kind
    'fatal'
    """
    state = str(getattr(exc, "sqlstate", "") or "")
    cls = RetriableError if state[:2] in ("08", "40", "53", "57") else FatalError
    return cls(f"{where}: {exc}")


def _plain(table: pa.Table) -> pa.Table:
    """Drop the driver's field metadata; numeric (an opaque extension type) becomes its text."""
    arrays = [pa.chunked_array([ch.storage for ch in c.chunks], type=c.type.storage_type)
              if isinstance(c.type, pa.BaseExtensionType) else c for c in table.columns]
    return pa.table(arrays, names=table.column_names)
