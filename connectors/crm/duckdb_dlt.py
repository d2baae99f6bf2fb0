"""The embedded CRM: a DuckDB file loaded through dlt, one table per entity in schema ``crm``.

dlt evolves the tables (and creates those with a type only it decides); a new table of plain
types is created with the DDL dlt would run, and once a table holds every column of a batch, the
rows go in through :mod:`connectors.crm.duckdb_fast` (Arrow registered in DuckDB, one
transaction), unless ``fast_path=False`` (``duckdb:///file?fast_path=false``). One writer
per DuckDB file: DuckDB lets one process write it, and the fast path opens a connection per
load and closes it after the commit, so readers in the same process get their turn.
``keep_open=True`` keeps that connection (~30-40 ms less per load; reads go through it)
until :meth:`DuckDbDestination.close`, for a long-lived worker that owns the file.

The file ``crm.duckdb`` is itself a DuckDB catalog named ``crm``, the same name as
the schema, and DuckDB refuses ``crm.lead`` as ambiguous. dlt writes
schema-qualified SQL, so its SQL client is given the catalog too
(``"crm"."crm"."lead"``); anyone querying the file by hand writes the same, or
``USE crm.crm`` first. See docs/adr/0202-duckdb-catalog-qualified.md.

>>> import tempfile, pyarrow as pa
>>> from connectors.base.home import Home
>>> home = Home(tempfile.mkdtemp())
>>> dest = DuckDbDestination(home, home.crm_duckdb, "crm")
>>> t = pa.table({"external_id": ["a"], "email": ["x@example.org"], "_wl_record_id": ["r1"]})
>>> dest.load("lead", t, key=["external_id"], write="upsert", load_id="L1").rows
1
>>> dest.read("lead").select(["external_id", "_wl_load_id"]).to_pylist()
[{'external_id': 'a', '_wl_load_id': 'L1'}]
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Type

import duckdb
import pyarrow as pa
from dlt.destinations.impl.duckdb.duck import DuckDbClient
from dlt.destinations.impl.duckdb.factory import duckdb as duckdb_factory
from dlt.destinations.impl.duckdb.sql_client import DuckDbSqlClient

from connectors.base.home import Home
from connectors.base.reserved import LOAD_ID, RECORD_ID, WriteDisposition
from connectors.crm import duckdb_fast as fast
from connectors.crm import pipeline as dltrun
from connectors.crm.batch import check_names, ids_table, prepare
from connectors.crm.destination import LoadResult, RecordIds
from connectors.crm.evolution import check_types
from connectors.errors import FatalError, RetriableError, StageError

log = logging.getLogger(__name__)


def catalog_of(path: str | os.PathLike[str]) -> str:
    """DuckDB's catalog name for a database file: its name up to the first dot."""
    return Path(path).name.split(".")[0]


class _CatalogSqlClient(DuckDbSqlClient):
    def catalog_name(self, quote: bool = True, casefold: bool = True) -> str:
        name = catalog_of(self.credentials.database)
        return self.capabilities.escape_identifier(name) if quote else name

    def warn_if_catalog_equals_dataset_name(self) -> None:
        """Qualified names make the clash harmless; nothing to warn about."""


class _CatalogClient(DuckDbClient):
    def __init__(self, schema: Any, config: Any, capabilities: Any) -> None:
        super().__init__(schema, config, capabilities)
        self.sql_client = _CatalogSqlClient(
            self.sql_client.dataset_name, self.sql_client.staging_dataset_name, config.credentials, capabilities
        )


class catalog_duckdb(duckdb_factory):
    """dlt's DuckDB destination writing catalog-qualified names."""

    @property
    def client_class(self) -> Type[DuckDbClient]:
        return _CatalogClient


class DuckDbDestination:
    """DuckDB through dlt; reads and deletes go straight to the file."""

    def __init__(self, home: Home, path: str | os.PathLike[str], dataset: str, *, fast_path: bool = True,
                 keep_open: bool = False):
        self.home, self.path, self.dataset, self.fast_path = home, Path(path), dataset, fast_path
        self.keep_open = keep_open  # one connection for every fast load until close() (a long-lived worker)
        self._con: duckdb.DuckDBPyConnection | None = None
        self._columns: dict[str, dict[str, str]] = {}  # entity -> columns, while the kept connection lives
        self.name = f"duckdb:{dataset}"
        self._pipelines: dict[str, Any] = {}

    def _pipeline(self, entity: str) -> Any:
        if entity not in self._pipelines:
            name = dltrun.pipeline_name("duckdb", str(self.path), self.dataset, entity)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._pipelines[entity] = dltrun.make_pipeline(
                self.home, name, catalog_duckdb(str(self.path)), self.dataset)
        return self._pipelines[entity]

    def load(
        self, entity: str, table: pa.Table, key: list[str], write: WriteDisposition, load_id: str
    ) -> LoadResult:
        check_names([entity])
        batch, superseded = prepare(table, key, write, load_id)
        how = self._fast(entity, batch, key, write, load_id) if self.fast_path else None
        if how is None:
            self.close()  # dlt opens the file itself
            dltrun.run(self._pipeline(entity), entity, batch, key, write, load_id)
        return LoadResult(self.name, entity, entity, load_id, batch.num_rows, superseded,
                          path="dlt" if how is None else "fast")

    def _fast(self, entity: str, batch: pa.Table, key: list[str], write: WriteDisposition,
              load_id: str) -> str | None:
        """Load through DuckDB directly, or return None when dlt must: a column is new (dlt adds it
        and records it in its schema), a type is nested, or the table is new and has a type only
        dlt decides (a new table of plain types is created here, with dlt's DDL)."""
        if not fast.carries(batch.schema):
            return None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            con = self._writer()
        except duckdb.Error as exc:  # e.g. another process holds the file's write lock
            raise StageError.wrap("load", load_id, _sorted(exc)) from exc
        try:
            # kept connection: the catalog read once per table (only dlt changes a table, and it runs after
            # close(), which forgets them; no other process can open the file meanwhile)
            columns = self._columns.get(entity) if self.keep_open else None
            if columns is None:
                columns = fast.table_columns(con, self.dataset, entity)
            if not columns:
                columns = self._create(con, entity, batch.schema, key, load_id)
            if not columns or not set(batch.column_names) <= set(columns):
                return None
            if self.keep_open:
                self._columns[entity] = columns
            # the table as it is (ADR 0201's refusal), not dlt's memory of it: no dlt on the steady path
            check_types(entity, fast.as_dlt_columns(columns), batch.schema)
            target = f'{fast.q(catalog_of(self.path))}.{fast.q(self.dataset)}.{fast.q(entity)}'
            try:
                if batch.num_rows or write == "replace":  # nothing to upsert or append: no empty transaction
                    fast.write(con, target, batch, key, write)
            except Exception as exc:
                raise StageError.wrap("load", load_id, _sorted(exc)) from exc
        finally:
            if not self.keep_open:
                con.close()
        log.debug("crm %s: %d rows into %s (fast)", self.name, batch.num_rows, entity)
        return "fast"

    def _create(self, con: duckdb.DuckDBPyConnection, entity: str, schema: pa.Schema, key: list[str],
                load_id: str) -> dict[str, str]:
        """Create a new table of plain types as dlt would; its columns, or {} when dlt must create it."""
        try:
            if not fast.create(con, catalog_of(self.path), self.dataset, entity, schema, key):
                return {}
            return fast.table_columns(con, self.dataset, entity)
        except duckdb.Error as exc:
            raise StageError.wrap("load", load_id, _sorted(exc)) from exc

    def _writer(self) -> duckdb.DuckDBPyConnection:
        """A read-write connection: the kept one (``keep_open``), else a new one the caller closes."""
        if not self.keep_open:
            return duckdb.connect(str(self.path))
        if self._con is None:
            self._con = duckdb.connect(str(self.path))
        return self._con

    def close(self) -> None:
        """Close the kept connection (``keep_open``); the next load opens it again."""
        self._columns.clear()
        if self._con is not None:
            self._con.close()
            self._con = None

    # --- reads and deletes: plain DuckDB, Arrow in and out -------------------------------

    def _connect(self, read_only: bool) -> duckdb.DuckDBPyConnection | None:
        if self._con is not None:  # this process holds the file open: a cursor on it, closed after use
            return self._con.cursor()
        if not self.path.exists():
            return None
        return duckdb.connect(str(self.path), read_only=read_only)

    def _table(self, con: duckdb.DuckDBPyConnection, entity: str) -> str | None:
        q = ("SELECT count(*) FROM information_schema.tables"
             " WHERE table_catalog = current_database() AND table_schema = ? AND table_name = ?")
        if con.execute(q, [self.dataset, entity]).fetchall()[0][0] == 0:
            return None
        return f'"{catalog_of(self.path)}"."{self.dataset}"."{entity}"'

    def read(self, entity: str, where_record_ids: RecordIds | None = None) -> pa.Table:
        con = self._connect(read_only=True)
        if con is None:
            return pa.table({})
        with con:
            name = self._table(con, entity)
            if name is None:
                return pa.table({})
            if where_record_ids is None:
                return con.sql(f"SELECT * FROM {name}").to_arrow_table()
            con.register("wl_ids", ids_table(where_record_ids))
            return con.sql(f"SELECT * FROM {name} WHERE {RECORD_ID} IN (SELECT id FROM wl_ids)").to_arrow_table()

    def delete_records(self, entity: str, record_ids: RecordIds) -> int:
        con = self._connect(read_only=False)
        if con is None:
            return 0
        with con:
            name = self._table(con, entity)
            if name is None:
                return 0
            con.register("wl_ids", ids_table(record_ids))
            rows = con.execute(f"DELETE FROM {name} WHERE {RECORD_ID} IN (SELECT id FROM wl_ids)").fetchall()
            return int(rows[0][0]) if rows else 0

    def committed_load_ids(self, entity: str) -> set[str]:
        con = self._connect(read_only=True)
        if con is None:
            return set()
        with con:
            name = self._table(con, entity)
            if name is None:
                return set()
            col = con.sql(f"SELECT DISTINCT {LOAD_ID} FROM {name} WHERE {LOAD_ID} IS NOT NULL").to_arrow_table()
            return set(col.column(0).to_pylist())


def _sorted(exc: Exception) -> Exception:
    """A lock held by another process or an I/O failure is worth retrying; anything else is fatal.

    >>> _sorted(duckdb.IOException("Could not set lock on file")).kind
    'retriable'
    """
    cls = RetriableError if isinstance(exc, (duckdb.IOException, duckdb.TransactionException)) else FatalError
    return cls(f"crm load (duckdb fast path): {exc}")
