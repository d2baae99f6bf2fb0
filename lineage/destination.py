"""What lineage needs from the CRM destination: which rows a load wrote, read rows, delete rows.

The default destination is DuckDB at ``$WEFTLINE_HOME/crm.duckdb``, schema ``crm``, one table
per entity, each row carrying ``_wl_record_id`` and ``_wl_load_id``. When
``connectors.crm.open_destination(home)`` offers ``delete_records(entity, record_ids)`` erasure
goes through it, and with ``$WEFTLINE_CRM_URL`` set (another destination) every read does too;
otherwise the DuckDB file is read directly (one small function each).

>>> import tempfile
>>> from connectors.base.home import Home
>>> h = Home(tempfile.mkdtemp())
>>> record_ids_of_load(h, "lead", "L1")   # no destination yet
[]
"""

from __future__ import annotations

import logging
import os

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from connectors.base.home import Home
from connectors.base.reserved import LOAD_ID, RECORD_ID
from lineage.index import MANY

log = logging.getLogger(__name__)
SCHEMA = "crm"
DESTINATION = "duckdb"


def _configured(home: Home):
    """The colleague's destination when one is configured by URL (``$WEFTLINE_CRM_URL``), else None."""
    if not os.environ.get("WEFTLINE_CRM_URL"):
        return None
    from connectors.crm.destination import open_destination

    return open_destination(home)


def _connect(home: Home, read_only: bool) -> duckdb.DuckDBPyConnection | None:
    if not home.crm_duckdb.exists():
        return None
    return duckdb.connect(str(home.crm_duckdb), read_only=read_only)


def _has_table(con: duckdb.DuckDBPyConnection, entity: str) -> bool:
    q = "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?"
    return con.execute(q, [SCHEMA, entity]).fetchall()[0][0] > 0


def _table(con: duckdb.DuckDBPyConnection, entity: str) -> str:
    """Fully qualified: the file ``crm.duckdb`` is itself the catalog ``crm``, as is the schema."""
    db = con.execute("SELECT current_database()").fetchall()[0][0]
    return f'"{db}".{SCHEMA}."{entity}"'


def record_ids_of_load(home: Home, entity: str, load_id: str) -> list[str]:
    """The ``_wl_record_id`` of every row of ``entity`` whose ``_wl_load_id`` is ``load_id``."""
    dest = _configured(home)
    if dest is not None:
        t = dest.read(entity)
        if RECORD_ID not in t.column_names:  # no such table (e.g. created by a load that never committed)
            return []
        return pc.filter(t.column(RECORD_ID), pc.equal(t.column(LOAD_ID), load_id)).to_pylist()
    con = _connect(home, read_only=True)
    if con is None:
        return []
    try:
        if not _has_table(con, entity):
            return []
        q = f'SELECT {RECORD_ID} FROM {_table(con, entity)} WHERE {LOAD_ID} = ?'
        return [r[0] for r in con.execute(q, [load_id]).fetchall()]
    finally:
        con.close()


def read_records(home: Home, entity: str, record_ids: list[str]) -> pa.Table | None:
    """The destination rows of ``entity`` with these record ids (None when there is no such table)."""
    dest = _configured(home)
    if dest is not None:
        return dest.read(entity, where_record_ids=list(record_ids))
    con = _connect(home, read_only=True)
    if con is None or not record_ids:
        return None
    try:
        if not _has_table(con, entity):
            return None
        if len(record_ids) <= MANY:
            marks = ", ".join("?" * len(record_ids))
            return con.sql(f'SELECT * FROM {_table(con, entity)} WHERE {RECORD_ID} IN ({marks})',
                           params=list(record_ids)).to_arrow_table()
        con.register("wanted_ids", pa.table({"v": pa.array(list(record_ids), pa.string())}))
        return con.sql(f'SELECT * FROM {_table(con, entity)} t SEMI JOIN wanted_ids w '
                       f'ON t.{RECORD_ID} = w.v').to_arrow_table()
    finally:
        con.close()


def delete_records(home: Home, entity: str, record_ids: list[str]) -> int:
    """Delete the rows of ``entity`` with these record ids; returns how many were deleted."""
    if not record_ids:
        return 0
    dest = _configured(home)
    if dest is None:
        try:
            from connectors.crm import open_destination  # the colleague's destination, once it is exported
        except ImportError:
            open_destination = None
        dest = open_destination(home) if open_destination is not None else None
    if dest is not None and hasattr(dest, "delete_records"):
        return int(dest.delete_records(entity, list(record_ids)) or 0)
    con = _connect(home, read_only=False)
    if con is None:
        return 0
    try:
        if not _has_table(con, entity):
            return 0
        marks = ", ".join("?" * len(record_ids))
        rows = con.execute(f'DELETE FROM {_table(con, entity)} WHERE {RECORD_ID} IN ({marks})',
                           list(record_ids)).fetchall()
        return int(rows[0][0]) if rows else 0
    finally:
        con.close()
