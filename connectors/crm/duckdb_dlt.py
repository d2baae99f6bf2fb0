"""The embedded CRM: a DuckDB file loaded through dlt, one table per entity in schema ``crm``.

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
from connectors.crm import pipeline as dltrun
from connectors.crm.batch import check_names, ids_table, prepare
from connectors.crm.destination import LoadResult, RecordIds


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

    def __init__(self, home: Home, path: str | os.PathLike[str], dataset: str):
        self.home, self.path, self.dataset = home, Path(path), dataset
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
        dltrun.run(self._pipeline(entity), entity, batch, key, write, load_id)
        return LoadResult(self.name, entity, entity, load_id, batch.num_rows, superseded)

    # --- reads and deletes: plain DuckDB, Arrow in and out -------------------------------

    def _connect(self, read_only: bool) -> duckdb.DuckDBPyConnection | None:
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
