"""Source record JSON Schemas (``schemas/sources/*.json``) and the Arrow schema derived from them.

One declaration serves three readers: the weftline source (Arrow), the Singer tap
(JSON Schema in the catalog) and the spec author's editor (completion). Every
field is nullable in Arrow; ``required`` is checked by the JSON Schema, not here.

>>> s = to_arrow({"type": "object", "properties": {
...     "id": {"type": "string"}, "at": {"type": ["string", "null"], "format": "date-time"},
...     "tags": {"type": "array", "items": {"type": "string"}},
...     "who": {"type": "object", "properties": {"n": {"type": "integer"}, "ok": {"type": "boolean"}}}}})
>>> [str(f.type) for f in s]
['string', 'timestamp[us, tz=UTC]', 'list<item: string>', 'struct<n: int64, ok: bool>']
>>> load("call_analytics.calls")["x-key"]
['contact_id']
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa

from connectors.errors import ConfigError

SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas" / "sources"

_SCALARS = {"string": pa.string(), "integer": pa.int64(), "number": pa.float64(), "boolean": pa.bool_()}


@lru_cache(maxsize=None)
def _load_text(name: str) -> str:
    path = SCHEMAS_DIR / f"{name}.json"
    if not path.exists():
        raise ConfigError(f"no source schema {path}")
    return path.read_text()


def load(name: str) -> dict[str, Any]:
    """The JSON Schema ``schemas/sources/<name>.json`` as a fresh dict (callers may change it)."""
    return json.loads(_load_text(name))


def _type_name(node: dict[str, Any]) -> str:
    t = node.get("type", "string")
    if isinstance(t, list):
        named = [x for x in t if x != "null"]
        if len(named) != 1:
            raise ConfigError(f"cannot derive an Arrow type from a union of {t}")
        t = named[0]
    return t


def to_arrow_type(node: dict[str, Any]) -> pa.DataType:
    """The Arrow type of one JSON Schema node (objects → struct, arrays → list)."""
    t = _type_name(node)
    if t == "object":
        return pa.struct([pa.field(k, to_arrow_type(v)) for k, v in node.get("properties", {}).items()])
    if t == "array":
        return pa.list_(to_arrow_type(node.get("items", {"type": "string"})))
    if t == "string" and node.get("format") == "date-time":
        return pa.timestamp("us", tz="UTC")
    try:
        return _SCALARS[t]
    except KeyError:
        raise ConfigError(f"unsupported JSON Schema type {t!r}") from None


def to_arrow(schema: dict[str, Any]) -> pa.Schema:
    """The Arrow schema of a record JSON Schema (top-level properties become columns)."""
    return pa.schema([pa.field(k, to_arrow_type(v)) for k, v in schema["properties"].items()])


def arrow_schema(name: str) -> pa.Schema:
    """``to_arrow(load(name))``."""
    return to_arrow(load(name))
