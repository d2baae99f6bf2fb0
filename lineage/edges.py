"""The edge schema and the capture functions that build edge tables from whole Arrow tables.

One edge per record per step. Every column is an id, a hash, a name or a time:
**no raw personal data** (subjects only as the engine's HMAC ``_wl_subject``).

=================  ===========================================================
column             meaning
=================  ===========================================================
step               received | mapped | filtered | quarantined | loaded | erased
load_id            the run that produced the edge
record_id          the record the step is about (received: the source record;
                   mapped/loaded: the output record; filtered/quarantined: the input)
input_record_id    mapped only: the source record the output came from
source_system      received: connector name
stream             received: stream name
source_key         received: the key in the source, as text
position           received: version / offset / cursor value, as text
payload_hash       received: sha256 of the raw payload
spec_id            mapped/filtered/quarantined: the mapping name
spec_version       mapped/filtered/quarantined: content hash of the normalised spec
rules              mapped: int64 bit set of the compiled spec's rules that fired
reason             quarantined: why (``field: code [rule]``, never the engine's free
                   text, which can quote source values); erased: what was erased
destination        loaded/erased: the destination name (e.g. ``duckdb``)
entity             mapped/filtered/quarantined/loaded: the target entity
target_key         mapped/loaded: the target key, as text (parts joined by U+001F)
subject            HMAC hex of the data subject, or null
at                 when the step happened (received: ``_wl_received_at``)
=================  ===========================================================

A text column that is one value for the whole table (``step``, ``load_id``, ``entity``, …, given to
:func:`build` as a constant) is a one-entry dictionary array (``dictionary<int32, string>``) rather than
the value repeated: the same edges, built in O(1) and written by Parquet without hashing every row
(docs/adr/0110); a segment of leaf format 2 keeps such columns in its file's metadata only (ADR 0114).
:func:`conform` accepts either form; :func:`plain` gives exactly :data:`EDGE_SCHEMA`.

>>> import pyarrow as pa
>>> from datetime import datetime, timezone
>>> from connectors.base.identity import stamp
>>> landed = stamp(pa.table({"id": [1, 2]}), system="erp_sql", stream="orders", key=["id"],
...                position=None, load_id="L1")
>>> e = received_edges(landed)
>>> plain(e).schema.equals(EDGE_SCHEMA), e.column("step").to_pylist(), e.column("source_key").to_pylist()
(True, ['received', 'received'], ['1', '2'])
>>> e.schema.field("step").type
DictionaryType(dictionary<values=string, indices=int32, ordered=0>)
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectors.base import reserved as R
from connectors.base.identity import key_text

STEPS = ("received", "mapped", "filtered", "quarantined", "loaded", "erased")

EDGE_SCHEMA = pa.schema(
    [
        ("step", pa.string()),
        ("load_id", pa.string()),
        ("record_id", pa.string()),
        ("input_record_id", pa.string()),
        ("source_system", pa.string()),
        ("stream", pa.string()),
        ("source_key", pa.string()),
        ("position", pa.string()),
        ("payload_hash", pa.string()),
        ("spec_id", pa.string()),
        ("spec_version", pa.string()),
        ("rules", pa.int64()),
        ("reason", pa.string()),
        ("destination", pa.string()),
        ("entity", pa.string()),
        ("target_key", pa.string()),
        ("subject", pa.string()),
        ("at", pa.timestamp("us", tz="UTC")),
    ]
)


def _now() -> datetime:
    return datetime.now(timezone.utc)


CONST_TEXT = pa.dictionary(pa.int32(), pa.string())  # a constant text column (see the module docstring)


def constant_array(value: Any, n: int, typ: pa.DataType) -> pa.Array:
    """n rows of one value (None: nulls); text as a one-entry dictionary (CONST_TEXT)."""
    if value is None:
        return pa.nulls(n, typ)
    if pa.types.is_string(typ):  # one entry, n zero indices (calloc'd pages): no copy of the value per row
        return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([value], typ))
    return pa.repeat(pa.scalar(value, typ), n)


def _conform_column(col: pa.ChunkedArray | pa.Array, field: pa.Field) -> pa.ChunkedArray | pa.Array:
    if col.type == field.type:
        return col
    if col.type == CONST_TEXT and pa.types.is_string(field.type):
        chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
        if all(c.dictionary.null_count == 0 for c in chunks):  # nulls are in the indices, never the entries
            return col
    return col.cast(field.type)


def conform(edges: pa.Table) -> pa.Table:
    """The :data:`EDGE_SCHEMA` columns in order and type, a text column kept as ``dictionary<int32, string>``
    when it is one (no decoding); anything else cast."""
    edges = edges.select(EDGE_SCHEMA.names)
    if all(_conform_column(edges.column(i), f) is edges.column(i) for i, f in enumerate(EDGE_SCHEMA)):
        return edges
    cols = [_conform_column(edges.column(i), f) for i, f in enumerate(EDGE_SCHEMA)]
    return pa.table(cols, schema=pa.schema([pa.field(f.name, c.type) for f, c in zip(EDGE_SCHEMA, cols)]))


def plain(edges: pa.Table) -> pa.Table:
    """Exactly :data:`EDGE_SCHEMA` (dictionary columns decoded to text)."""
    return edges.select(EDGE_SCHEMA.names).cast(EDGE_SCHEMA)


def _null_const(col: pa.ChunkedArray) -> pa.Array:
    """An all-null text column as an all-null one-entry-less dictionary (so it concatenates with constants)."""
    return pa.DictionaryArray.from_arrays(pa.nulls(len(col), pa.int32()), pa.array([], pa.string()))


def concat(parts: list[pa.Table]) -> pa.Table:
    """Edge tables one after the other (several steps or targets in one segment). A column that is a
    constant in some parts stays a dictionary when it is null in the others (the usual case: another
    step's columns); when another part has real text there, it is decoded to text."""
    parts = [conform(p) for p in parts]
    for name in EDGE_SCHEMA.names:
        types = {p.schema.field(name).type for p in parts}
        if len(types) < 2:
            continue
        fits = all(p.column(name).type == CONST_TEXT or p.column(name).null_count == p.num_rows for p in parts)
        for k, p in enumerate(parts):
            col, i = p.column(name), p.schema.get_field_index(name)
            if fits and col.type != CONST_TEXT:
                parts[k] = p.set_column(i, name, _null_const(col))
            elif not fits and col.type == CONST_TEXT:
                parts[k] = p.set_column(i, name, col.cast(pa.string()))
    return pa.concat_tables(parts)


def one_array(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A column as one array, copying only when it has several chunks (``combine_chunks`` always copies)."""
    if isinstance(col, pa.ChunkedArray):
        return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
    return col


def _col(table: pa.Table, name: str, typ: pa.DataType) -> pa.Array:
    if name not in table.column_names:
        return pa.nulls(table.num_rows, typ)
    return one_array(table.column(name)).cast(typ)


def build(n: int, step: str, **columns: Any) -> pa.Table:
    """An edge table of ``n`` rows: each column an Arrow array, a constant, or absent (null).

    ``at`` defaults to now. Absent columns of one type share one all-null array (a fresh one per column
    zeroed 4 bytes of offsets per row each time: ~8 such columns per edge table).
    """
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}; one of {STEPS}")
    cols = {"step": constant_array(step, n, pa.string())}
    if columns.get("at") is None:
        columns["at"] = _now()
    nulls: dict[pa.DataType, pa.Array] = {}
    for field in EDGE_SCHEMA:
        if field.name == "step":
            continue
        v = columns.get(field.name)
        if isinstance(v, (pa.Array, pa.ChunkedArray)):
            cols[field.name] = _conform_column(one_array(v), field)
        elif v is None:
            if field.type not in nulls:
                nulls[field.type] = pa.nulls(n, field.type)
            cols[field.name] = nulls[field.type]
        else:
            cols[field.name] = constant_array(v, n, field.type)
    return pa.table(cols, schema=pa.schema([pa.field(f.name, cols[f.name].type) for f in EDGE_SCHEMA]))


def received_edges(landed: pa.Table) -> pa.Table:
    """One ``received`` edge per landed row (the reserved received columns)."""
    s = pa.string()
    return build(
        landed.num_rows,
        "received",
        load_id=_col(landed, R.LOAD_ID, s),
        record_id=_col(landed, R.RECORD_ID, s),
        source_system=_col(landed, R.SOURCE_SYSTEM, s),
        stream=_col(landed, R.STREAM, s),
        source_key=_col(landed, R.SOURCE_KEY, s),
        position=_col(landed, R.POSITION, s),
        payload_hash=_col(landed, R.PAYLOAD_HASH, s),
        at=_col(landed, R.RECEIVED_AT, pa.timestamp("us", tz="UTC")),
    )


def _output_edges(load_id: str, out: Any, at: datetime) -> pa.Table:
    t = out.table
    s = pa.string()
    return build(
        t.num_rows,
        "mapped",
        at=at,
        load_id=load_id,
        record_id=_col(t, R.RECORD_ID, s),
        input_record_id=_col(t, R.INPUT_RECORD_ID, s),
        spec_id=_col(t, R.SPEC_ID, s),
        spec_version=_col(t, R.SPEC_VERSION, s),
        rules=_col(t, R.RULES, pa.int64()),
        subject=_col(t, R.SUBJECT, s),
        entity=out.entity,
        target_key=key_text(t, list(out.key)) if t.num_rows else pa.array([], s),
    )


def _code(q: pa.Table) -> pa.Array:
    """The engine's quarantine ``code`` (``cast``, ``map``, ``required``, …), never its free-text ``reason``.

    The free text can quote the source value (``cannot cast 'ann@x.com' to int``), so it never enters
    an edge. A code that is not a plain lower-case word becomes ``other``; no code column → ``quarantined``.
    """
    if "code" not in q.column_names:
        return pa.repeat(pa.scalar("quarantined"), q.num_rows)
    code = pc.fill_null(_col(q, "code", pa.string()), "other")
    return pc.if_else(pc.match_substring_regex(code, r"^[a-z_]{1,32}$"), code, "other")


def _reason(q: pa.Table) -> pa.Array:
    """``field: code [rule]`` — names from the spec and the engine's code only (no source values).

    >>> q = pa.table({"field": ["email"], "code": ["cast"], "rule": ["lead.email"],
    ...               "reason": ["cannot cast 'ann@x.com' to int"]})
    >>> _reason(q).to_pylist()
    ['email: cast [lead.email]']
    """
    field, rule = (pc.fill_null(_col(q, c, pa.string()), "") for c in ("field", "rule"))
    return pc.binary_join_element_wise(field, ": ", _code(q), " [", rule, "]", "")


def mapped_edges(load_id: str, result: Any, at: datetime | None = None) -> pa.Table:
    """``mapped``, ``filtered`` and ``quarantined`` edges from the engine's ``MapResult``."""
    at = at or _now()
    s = pa.string()
    parts = [_output_edges(load_id, out, at) for out in result.outputs]
    f = result.filtered
    if f is not None and f.num_rows:
        parts.append(build(f.num_rows, "filtered", at=at, load_id=load_id, record_id=_col(f, R.RECORD_ID, s),
                           spec_id=_col(f, R.SPEC_ID, s), spec_version=_col(f, R.SPEC_VERSION, s),
                           entity=_col(f, "target", s)))
    q = result.quarantine
    if q is not None and q.num_rows:
        parts.append(build(q.num_rows, "quarantined", at=at, load_id=load_id, record_id=_col(q, R.RECORD_ID, s),
                           spec_id=_col(q, R.SPEC_ID, s), spec_version=_col(q, R.SPEC_VERSION, s),
                           entity=_col(q, "target", s), reason=_reason(q)))
    return concat(parts) if parts else EDGE_SCHEMA.empty_table()


def loaded_edges(load_id: str, destination: str, entity: str, table: pa.Table,
                 key: list[str] | None = None, at: datetime | None = None) -> pa.Table:
    """One ``loaded`` edge per row the destination accepted (``_wl_record_id`` + target key)."""
    s = pa.string()
    tk = key_text(table, key) if key and table.num_rows else _col(table, "target_key", s)
    return build(table.num_rows, "loaded", at=at, load_id=load_id, record_id=_col(table, R.RECORD_ID, s),
                 subject=_col(table, R.SUBJECT, s), destination=destination, entity=entity, target_key=tk)


def erased_edges(load_id: str, edges: pa.Table, reason: str, at: datetime | None = None) -> pa.Table:
    """Tombstones: one ``erased`` edge per erased record (ids, subject, where it was; no data)."""
    return build(edges.num_rows, "erased", at=at, load_id=load_id, record_id=edges.column("record_id"),
                 subject=edges.column("subject"), destination=edges.column("destination"),
                 entity=edges.column("entity"), target_key=edges.column("target_key"),
                 source_system=edges.column("source_system"), stream=edges.column("stream"),
                 source_key=edges.column("source_key"), reason=reason)
