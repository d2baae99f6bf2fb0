"""Schema evolution policy: new columns are added, a changed type is refused.

A column that appears in a batch is added to the destination table (dlt evolves
the schema). A column whose type differs from the one the destination already
holds stops the load with :class:`SchemaChangeError` before anything is written:
dlt's Arrow path would otherwise rewrite its own schema and then fail in the
database (or split the column into variants), and either hides a spec change that
a person should decide on. See docs/adr/0201-crm-schema-evolution.md.

>>> import pyarrow as pa
>>> stored = {"n": {"name": "n", "data_type": "double"}, "k": {"name": "k", "data_type": "text"}}
>>> check_types("lead", stored, pa.schema([("k", pa.string()), ("n", pa.float64()), ("new", pa.int64())]))
>>> check_types("lead", stored, pa.schema([("k", pa.string()), ("n", pa.string())]))
Traceback (most recent call last):
...
connectors.crm.evolution.SchemaChangeError: crm entity 'lead': column 'n' changes type double -> text; change the spec's type back, or migrate the column and load again
"""

from __future__ import annotations

from typing import Any, Mapping

import pyarrow as pa

from connectors.errors import ConfigError


class SchemaChangeError(ConfigError):
    """A column changes type between loads; a person decides (spec fix or migration)."""


# flat Arrow types -> dlt's data type, without importing dlt (tests compare with dlt's own mapping)
_PLAIN = ((pa.types.is_string, "text"), (pa.types.is_large_string, "text"), (pa.types.is_integer, "bigint"),
          (pa.types.is_floating, "double"), (pa.types.is_boolean, "bool"), (pa.types.is_date32, "date"),
          (pa.types.is_timestamp, "timestamp"), (pa.types.is_decimal128, "decimal"))


def _plain_type(t: pa.DataType) -> str | None:
    """dlt's data type of a flat Arrow type; None: ask dlt."""
    return next((name for test, name in _PLAIN if test(t)), None)


def arrow_types(schema: pa.Schema) -> dict[str, str | None]:
    """dlt's data type for each Arrow column (None for an all-null column).

    >>> arrow_types(pa.schema([("n", pa.int32()), ("at", pa.timestamp("us")), ("x", pa.null())]))
    {'n': 'bigint', 'at': 'timestamp', 'x': None}
    """
    plain = {f.name: _plain_type(f.type) for f in schema}
    if all(v is not None or pa.types.is_null(f.type) for f, v in zip(schema, plain.values())):
        return plain
    from dlt.common.libs.pyarrow import py_arrow_to_table_schema_columns  # lists, structs, binary, time, ...

    return {n: c.get("data_type") for n, c in py_arrow_to_table_schema_columns(schema).items()}


def type_changes(stored: Mapping[str, Mapping[str, Any]], schema: pa.Schema) -> list[tuple[str, str, str]]:
    """(column, stored type, new type) for every column whose type would change."""
    changes = []
    for name, new in arrow_types(schema).items():
        old = stored.get(name, {}).get("data_type")
        if old and new and old != new:
            changes.append((name, old, new))
    return changes


def check_types(entity: str, stored: Mapping[str, Mapping[str, Any]], schema: pa.Schema) -> None:
    """Raise :class:`SchemaChangeError` when a column of ``schema`` changes its stored type."""
    changes = type_changes(stored, schema)
    if changes:
        text = "; ".join(f"column {n!r} changes type {o} -> {t}" for n, o, t in changes)
        raise SchemaChangeError(
            f"crm entity {entity!r}: {text}; change the spec's type back, or migrate the column and load again"
        )
