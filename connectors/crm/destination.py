"""The CRM destination contract and the factory that picks one from a URL.

A destination takes whole Arrow tables (one per target entity) and keeps the
reserved ``_wl_*`` columns beside the mapped fields, so lineage can find, read,
export and erase a loaded record by its ``_wl_record_id``.

``open_destination(home)`` gives the embedded default, DuckDB at
``$WEFTLINE_HOME/crm.duckdb`` (schema ``crm``); a URL (argument, else
``$WEFTLINE_CRM_URL``) picks another:

- ``duckdb:///path/to/file.duckdb`` (``fast_path=false`` loads through dlt only)
- ``postgresql://user:password@host:5432/db?schema=crm`` (``fast_path=false`` loads through dlt only)
- ``file:///path/to/dir?dataset=crm`` or ``s3://bucket/prefix?dataset=crm`` (Parquet files)

>>> import tempfile
>>> from connectors.base.home import Home
>>> dest = open_destination(Home(tempfile.mkdtemp()))
>>> dest.name
'duckdb:crm'
>>> parse_url("postgresql://u:secret@h:5432/db?schema=s1&fast_path=false")
('postgresql', 'postgresql://u:secret@h:5432/db', {'schema': 's1', 'fast_path': 'false'})
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol, Sequence, runtime_checkable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pyarrow as pa

from connectors.base.home import Home
from connectors.base.reserved import WriteDisposition
from connectors.errors import ConfigError

ENV_CRM_URL = "WEFTLINE_CRM_URL"
DEFAULT_DATASET = "crm"
RecordIds = pa.Array | pa.ChunkedArray | Sequence[str]


@dataclass(frozen=True)
class LoadResult:
    """What one ``Destination.load`` wrote.

    ``rows`` rows were written; ``superseded`` input rows were replaced by a later
    row with the same key in the same batch (upsert keeps the last one), so
    ``rows + superseded`` is the number of input rows.
    """

    destination: str  # e.g. "duckdb:crm", "postgres:crm", "filesystem:crm"
    entity: str
    table: str  # the table name in the destination
    load_id: str
    rows: int
    superseded: int = 0
    path: str = "dlt"  # "dlt" or "fast" (the PostgreSQL / DuckDB Arrow-native paths)


@runtime_checkable
class Destination(Protocol):
    """Where mapped CRM records go. One table per entity."""

    name: str

    def load(
        self, entity: str, table: pa.Table, key: list[str], write: WriteDisposition, load_id: str
    ) -> LoadResult: ...

    def read(self, entity: str, where_record_ids: RecordIds | None = None) -> pa.Table: ...

    def delete_records(self, entity: str, record_ids: RecordIds) -> int: ...

    def committed_load_ids(self, entity: str) -> set[str]: ...


def parse_url(url: str) -> tuple[str, str, dict[str, str]]:
    """Split a destination URL into (scheme, URL without weftline's options, options)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    ours = {k: query.pop(k) for k in ("schema", "dataset", "fast_path") if k in query}
    rest = urlunsplit(parts._replace(query=urlencode(query)))
    return parts.scheme, rest, ours


def open_destination(home: Home, url: str | None = None) -> Destination:
    """The destination for ``url``, else ``$WEFTLINE_CRM_URL``, else DuckDB in ``home``."""
    url = url or os.environ.get(ENV_CRM_URL) or None
    if url is None:
        from connectors.crm.duckdb_dlt import DuckDbDestination

        return DuckDbDestination(home, home.crm_duckdb, DEFAULT_DATASET)
    scheme, rest, opts = parse_url(url)
    dataset = opts.get("schema") or opts.get("dataset") or DEFAULT_DATASET
    fast = opts.get("fast_path", "true").lower() not in ("false", "0", "no", "off")
    if scheme == "duckdb":
        from connectors.crm.duckdb_dlt import DuckDbDestination

        return DuckDbDestination(home, urlsplit(rest).path, dataset, fast_path=fast)
    if scheme in ("postgresql", "postgres"):
        from connectors.crm.postgres import PostgresDestination

        return PostgresDestination(home, rest, dataset, fast_path=fast)
    if scheme in ("file", "s3"):
        from connectors.crm.filesystem import FilesystemDestination

        return FilesystemDestination(home, rest, dataset)
    raise ConfigError(f"unknown CRM destination scheme {scheme!r} (duckdb, postgresql, file, s3)")
