"""Nested columns (lists, structs, maps) as JSON text, for destinations without a native type.

dlt's PostgreSQL loader takes Arrow as CSV, which has no nested types, and ADBC's COPY has
no JSON mapping either; so a nested column reaches PostgreSQL as JSON text. DuckDB and
Parquet keep nested columns as they are. The conversion is one DuckDB ``to_json`` over the
nested columns only (vectorised; the other columns are not touched).

>>> import pyarrow as pa
>>> t = pa.table({"k": ["a", "b"], "tags": [["x", "y"], None], "n": [1, 2]})
>>> out = nested_to_json(t)
>>> out.column("tags").to_pylist(), out.schema.field("tags").type, out.column_names
(['["x","y"]', None], DataType(string), ['k', 'tags', 'n'])
"""

from __future__ import annotations

import duckdb
import pyarrow as pa


def is_nested(t: pa.DataType) -> bool:
    return pa.types.is_nested(t)


def nested_to_json(table: pa.Table) -> pa.Table:
    """``table`` with every nested column replaced by its JSON text (nulls stay null)."""
    names = [f.name for f in table.schema if is_nested(f.type)]
    if not names:
        return table
    con = duckdb.connect()
    try:
        con.register("wl_nested", table.select(names))
        select = ", ".join(f'CAST(to_json("{n}") AS VARCHAR) AS "{n}"' for n in names)
        as_json = con.sql(f"SELECT {select} FROM wl_nested").to_arrow_table()
    finally:
        con.close()
    for n in names:
        i = table.schema.get_field_index(n)
        table = table.set_column(i, pa.field(n, pa.string()), as_json.column(n).cast(pa.string()))
    return table
