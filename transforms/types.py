"""Static types of the mapping language and their Arrow counterparts.

A static type is one of a few names; ``any`` means "not known before data arrives",
and is compatible with everything (checked at run time, row by row, with quarantine).

>>> compatible("string", "any"), compatible("int", "float"), compatible("string", "int")
(True, True, False)
>>> arrow_type("decimal(12,2)")
Decimal128Type(decimal128(12, 2))
"""

from __future__ import annotations

import re

import pyarrow as pa

SCALARS = ("string", "int", "float", "decimal", "bool", "date", "timestamp")
NUMERIC = ("int", "float", "decimal")
TYPES = SCALARS + ("list", "struct", "any", "null")

_DECIMAL = re.compile(r"^decimal(?:\((\d{1,2}),\s*(\d{1,2})\))?$")
CAST_TARGETS = ("string", "int", "float", "bool", "decimal", "decimal(P,S)", "date", "timestamp")


def base(t: str) -> str:
    return "decimal" if t.startswith("decimal") else t


def compatible(a: str, b: str) -> bool:
    a, b = base(a), base(b)
    if "any" in (a, b) or "null" in (a, b) or a == b:
        return True
    return a in NUMERIC and b in NUMERIC or {a, b} == {"date", "timestamp"}


def is_cast_target(t: str) -> bool:
    return t in SCALARS or bool(_DECIMAL.match(t))


def arrow_type(t: str) -> pa.DataType:
    """The Arrow type a cast target produces (timestamps are UTC, microseconds)."""
    m = _DECIMAL.match(t)
    if m:
        p, s = (int(m.group(1)), int(m.group(2))) if m.group(1) else (38, 9)
        return pa.decimal128(p, s)
    return {
        "string": pa.string(),
        "int": pa.int64(),
        "float": pa.float64(),
        "bool": pa.bool_(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }[t]


def of_arrow(t: pa.DataType) -> str:
    """The static type of an Arrow type."""
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_decimal(t):
        return "decimal"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return "list"
    if pa.types.is_struct(t):
        return "struct"
    if pa.types.is_null(t):
        return "null"
    return "any"


def of_json_schema(node: dict) -> str:
    """The static type of a JSON Schema node (as declared for a source field)."""
    t = node.get("type", "any")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), "null")
    fmt = node.get("format")
    if t == "string" and fmt == "date":
        return "any"  # may arrive as text or as a parsed date
    if t == "string" and fmt == "date-time":
        return "any"
    return {"string": "string", "integer": "int", "number": "float", "boolean": "bool",
            "array": "list", "object": "struct", "null": "null"}.get(t, "any")
