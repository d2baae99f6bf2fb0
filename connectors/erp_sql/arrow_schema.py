"""A stream's JSON Schema → its Arrow schema, and conforming a fetched batch to it.

The JSON Schema file is the one declaration of a record's shape; ``x-arrow-type``
pins a type JSON Schema cannot say (a decimal's precision and scale).

>>> s = arrow_schema({"properties": {
...     "id": {"type": "integer"},
...     "at": {"type": ["string", "null"], "format": "date-time"},
...     "amount": {"type": "number", "x-arrow-type": "decimal128(14, 2)"}}})
>>> [str(t) for t in s.types]
['int64', 'timestamp[us, tz=UTC]', 'decimal128(14, 2)']
>>> import pyarrow as pa
>>> t = conform(pa.table({"id": [1], "at": ["2026-01-02 03:04:05"], "amount": ["12.5"]}), s)
>>> t.column("at")[0].as_py().isoformat(), str(t.column("amount")[0].as_py())
('2026-01-02T03:04:05+00:00', '12.50')
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

import pyarrow as pa

from connectors.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
UTC_TS = pa.timestamp("us", tz="UTC")

_SIMPLE = {"integer": pa.int64(), "number": pa.float64(), "boolean": pa.bool_(), "string": pa.string()}
_FORMATS = {"date-time": UTC_TS, "date": pa.date32()}
_DECIMAL = re.compile(r"decimal128\((\d+),\s*(\d+)\)")


def _arrow_type(name: str, prop: dict) -> pa.DataType:
    pinned = prop.get("x-arrow-type")
    if pinned:
        m = _DECIMAL.fullmatch(pinned)
        if not m:
            raise ConfigError(f"{name}: unsupported x-arrow-type {pinned!r} (only decimal128(p, s))")
        return pa.decimal128(int(m.group(1)), int(m.group(2)))
    types = [t for t in (prop.get("type") if isinstance(prop.get("type"), list) else [prop.get("type")]) if t != "null"]
    if len(types) != 1 or types[0] not in _SIMPLE:
        raise ConfigError(f"{name}: cannot derive an Arrow type from {prop.get('type')!r}")
    if types[0] == "string" and prop.get("format") in _FORMATS:
        return _FORMATS[prop["format"]]
    return _SIMPLE[types[0]]


def arrow_schema(json_schema: dict) -> pa.Schema:
    """The Arrow schema of a record, in the JSON Schema's property order."""
    required = set(json_schema.get("required", ()))
    return pa.schema([pa.field(n, _arrow_type(n, p), nullable=n not in required)
                      for n, p in json_schema["properties"].items()])


@lru_cache(maxsize=None)
def load_json_schema(path: str) -> dict:
    """Read a schema file named relative to the repository (``schemas/sources/...``)."""
    return json.loads((REPO / path).read_text())


def _storage(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """Unwrap extension types (ADBC's opaque PostgreSQL numeric is text underneath)."""
    if isinstance(col.type, pa.ExtensionType) or hasattr(col.type, "storage_type"):
        return pa.chunked_array([c.storage for c in col.chunks], col.type.storage_type)
    return col


def _cast(col: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    col = _storage(col)
    if col.type == target:
        return col
    if pa.types.is_null(col.type):
        return pa.chunked_array([pa.nulls(len(col), target)])
    if pa.types.is_timestamp(target) and target.tz:
        if pa.types.is_timestamp(col.type) and col.type.tz is None:
            return col.cast(pa.timestamp("us")).cast(target)  # naive = UTC (the ERP stores UTC)
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            try:
                return col.cast(target)
            except pa.ArrowInvalid:
                return col.cast(pa.timestamp("us")).cast(target)
    return col.cast(target)


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Cast each column to its declared type; a missing column or an impossible cast is a ConfigError."""
    cols = []
    for field in schema:
        if field.name not in table.column_names:
            raise ConfigError(f"column {field.name!r} is declared but the source has none "
                              f"(columns: {table.column_names})")
        try:
            cols.append(_cast(table.column(field.name), field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ConfigError(f"column {field.name!r}: cannot read {table.column(field.name).type} "
                              f"as declared {field.type}: {exc}") from exc
    return pa.Table.from_arrays(cols, schema=schema.remove_metadata().with_metadata(None)) if cols else table
