"""Running one Arrow table into a dlt destination: the part every destination shares.

One dlt pipeline per (destination, entity): its name is derived from where the
data goes, so two destinations (or two entities loaded by parallel tasks) never
share a dlt working folder. Pipelines live under ``$WEFTLINE_HOME/dlt``.

>>> pipeline_name("duckdb", "/tmp/x/crm.duckdb", "crm", "lead")
'wl_crm_duckdb_29b24363_lead'
>>> DISPOSITIONS["upsert"]
{'disposition': 'merge', 'strategy': 'upsert'}
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import dlt
import pyarrow as pa
from dlt.common.destination.exceptions import TransientException
from dlt.common.normalizers.naming.snake_case import NamingConvention

from connectors.base.home import Home
from connectors.base.reserved import WriteDisposition
from connectors.crm.evolution import check_types
from connectors.errors import FatalError, RetriableError, StageError

log = logging.getLogger(__name__)

DISPOSITIONS: dict[str, Any] = {
    "upsert": {"disposition": "merge", "strategy": "upsert"},
    "append": "append",
    "replace": "replace",
}
# New tables and columns evolve; a changed type is refused before dlt sees it (evolution.py),
# and dlt's own contract refuses it again.
CONTRACT = {"tables": "evolve", "columns": "evolve", "data_type": "freeze"}


def pipeline_name(kind: str, location: str, dataset: str, entity: str) -> str:
    """A stable, collision-free dlt pipeline name (no secrets: the location is hashed)."""
    digest = hashlib.sha256(f"{location}\x1f{dataset}".encode()).hexdigest()[:8]
    return f"wl_crm_{kind}_{digest}_{NamingConvention().normalize_identifier(entity)}"


def make_pipeline(home: Home, name: str, destination: Any, dataset: str) -> dlt.Pipeline:
    return dlt.pipeline(
        pipeline_name=name,
        pipelines_dir=str(home.root / "dlt"),
        destination=destination,
        dataset_name=dataset,
        progress=None,
    )


def stored_columns(pipeline: dlt.Pipeline, entity: str) -> dict[str, Any]:
    """The columns dlt knows for ``entity`` (from its local schema, else the destination's)."""
    for attempt in range(2):
        schema = pipeline.schemas.get(pipeline.pipeline_name) if pipeline.default_schema_name else None
        if schema is not None and entity in schema.tables:
            return dict(schema.get_table_columns(entity))
        if attempt == 0:
            pipeline.sync_destination()  # a lost working folder: restore the schema from the destination
    return {}


def run(
    pipeline: dlt.Pipeline, entity: str, table: pa.Table, key: list[str], write: WriteDisposition, load_id: str
) -> None:
    """Load ``table`` into ``entity`` through dlt; a failure leaves no pending package behind."""
    try:
        stored = stored_columns(pipeline, entity)
    except Exception as exc:  # reaching the destination failed before anything was written
        raise StageError.wrap("load", load_id, _sorted(exc)) from exc
    check_types(entity, stored, table.schema)
    hints = {"primary_key": key} if write == "upsert" else {}
    try:
        pipeline.run(table, table_name=entity, write_disposition=DISPOSITIONS[write],
                     schema_contract=CONTRACT, **hints)
    except Exception as exc:  # dlt wraps every step failure; sort it for the runner
        _abort(pipeline)
        raise StageError.wrap("load", load_id, _sorted(exc)) from exc


def _abort(pipeline: dlt.Pipeline) -> None:
    """Abort what the failed run left pending and restore dlt's local schema, so the next
    load starts clean (dlt would otherwise retry the old package and ignore new data)."""
    try:
        pipeline.abort_packages()
    except Exception:  # the destination may still be down; a plain delete is enough then
        log.warning("crm: aborting dlt packages of %s failed; deleting them", pipeline.pipeline_name, exc_info=True)
        pipeline.drop_pending_packages()


def _retriable() -> tuple[type[BaseException], ...]:
    import psycopg2  # dlt's PostgreSQL client raises its errors unwrapped when connecting

    return (TransientException, ConnectionError, TimeoutError, psycopg2.OperationalError)


_RETRIABLE = _retriable()


def _sorted(exc: BaseException) -> Exception:
    cause: BaseException | None = exc
    for _ in range(10):  # the chain is short; bounded in case it loops
        if cause is None:
            break
        if isinstance(cause, _RETRIABLE):
            return RetriableError(f"crm load: {cause}")
        cause = cause.__cause__ or getattr(cause, "exception", None)
    return FatalError(f"crm load: {exc}")
