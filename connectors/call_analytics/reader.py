"""Analysis files → Arrow batches of calls (one row per file) and turns (one row per turn).

A file that is not JSON, or whose known fields changed type, becomes a rejected row
(``connectors.base.source.rejected``) with the file name and the JSON error's
line:column or the drift reason; the rest of the batch goes on. New fields are kept
in ``new_fields`` / ``extra`` (docs/adr/0261).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from connectors.base.source import Batch, rejected
from connectors.call_analytics import drift, incremental
from connectors.call_analytics.analysis import to_call
from connectors.call_analytics.objects import ObjectRef, ObjectStore
from connectors.singer import schema as schemas

log = logging.getLogger(__name__)

CALLS = "calls"
TURNS = "turns"
SCHEMAS = {CALLS: "call_analytics.calls", TURNS: "call_analytics.turns"}
CALL_COLUMNS_IN_TURNS = ("contact_id", "source_file", "last_modified", "version", "channel")


def version(ref: ObjectRef) -> str:
    """The position of a call row: ``<LastModified ISO>|<key>``."""
    return f"{ref.last_modified.isoformat()}|{ref.key}"


def parse_file(ref: ObjectRef, raw: bytes) -> tuple[dict[str, Any] | None, tuple[str, str, bytes] | None]:
    """(call row, None) or (None, rejected triple) for one file."""
    try:
        doc = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = f"{ref.key}:{exc.lineno}:{exc.colno}" if isinstance(exc, json.JSONDecodeError) else ref.key
        return None, (where, f"{where}: invalid JSON: {exc.msg if hasattr(exc, 'msg') else exc}", raw)
    if not isinstance(doc, dict):
        return None, (ref.key, f"{ref.key}: expected a JSON object, got {type(doc).__name__}", raw)
    errors = drift.type_errors(doc)
    if errors:
        return None, (ref.key, f"{ref.key}: schema drift (changed type): {'; '.join(errors)}", raw)
    row = to_call(doc, ref.key)
    extra = drift.new_fields(doc)
    if extra:
        log.warning("%s: new fields kept in 'extra': %s", ref.key, ", ".join(extra))
    row.update(last_modified=ref.last_modified, version=version(ref),
               new_fields=list(extra), extra=json.dumps(extra, sort_keys=True, default=str) if extra else None)
    return row, None


def calls_table(rows: list[dict[str, Any]]) -> tuple[pa.Table, list[tuple[str, str, bytes]]]:
    """Rows → Arrow in the calls schema; a row Arrow cannot convert is rejected, not the batch."""
    schema = schemas.arrow_schema(SCHEMAS[CALLS])
    try:
        return pa.Table.from_pylist(rows, schema=schema), []
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        good, bad = [], []
        for r in rows:
            try:
                pa.Table.from_pylist([r], schema=schema)
                good.append(r)
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
                bad.append((r["source_file"], f"{r['source_file']}: schema drift (changed type): {exc}",
                            json.dumps(r, default=str).encode()))
        return pa.Table.from_pylist(good, schema=schema), bad


def turns_table(calls: pa.Table) -> pa.Table:
    """One row per transcript turn, exploded with Arrow kernels (no Python loop)."""
    schema = schemas.arrow_schema(SCHEMAS[TURNS])
    transcript = calls.column("transcript")
    parents = pc.list_parent_indices(transcript)
    turns = pc.list_flatten(transcript)
    if isinstance(turns, pa.ChunkedArray):
        turns = turns.combine_chunks()
    cols = {}
    for f in schema:
        if f.name in CALL_COLUMNS_IN_TURNS:
            cols[f.name] = pc.take(calls.column(f.name), parents)
        else:
            cols[f.name] = turns.field(f.name)
    return pa.table(cols, schema=schema)


def read_batches(store: ObjectStore, stream: str, state: Mapping[str, Any], batch_files: int = 500) -> Iterator[Batch]:
    """Batches of the files not covered by ``state`` (oldest first), each with the state after it."""
    if stream not in SCHEMAS:
        raise KeyError(f"call_analytics has no stream {stream!r}; streams: {sorted(SCHEMAS)}")
    todo = incremental.select(store.list(), state)
    for i in range(0, len(todo), batch_files):
        chunk = todo[i: i + batch_files]
        yield _batch(store, stream, chunk, state)
        state = incremental.advance(state, chunk)


def _batch(store: ObjectStore, stream: str, chunk: Sequence[ObjectRef], state: Mapping[str, Any]) -> Batch:
    rows, bad = [], []
    for ref in chunk:
        row, rej = parse_file(ref, store.read(ref))
        if row is not None:
            rows.append(row)
        else:
            bad.append(rej)
    calls, unconvertible = calls_table(rows)
    bad += unconvertible
    table = calls if stream == CALLS else turns_table(calls)
    return Batch(stream=stream, table=table, state=incremental.advance(state, chunk), rejected=rejected(bad))
