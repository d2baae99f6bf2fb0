"""connectors/crm/batch.py: the name check agrees with dlt's naming convention, with or without dlt."""

from __future__ import annotations

import random
import string

import pytest
from dlt.common.normalizers.naming.snake_case import NamingConvention

from connectors.crm.batch import _PLAIN, check_names
from connectors.errors import ConfigError


def _names(n: int) -> list[str]:
    rng = random.Random(7)
    alphabet = string.ascii_lowercase[:6] + "09_AZ -"
    fixed = ["_wl_record_id", "order_ref", "a", "a1", "x__y", "_x", "__x", "a_", "1a", "Email", "a-b", "a b", "_1"]
    return fixed + ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 7))) for _ in range(n)]


def test_a_name_passes_exactly_when_dlt_keeps_it_unchanged():
    naming = NamingConvention()
    for name in _names(5000):
        try:
            kept = naming.normalize_identifier(name) == name
        except ValueError:  # e.g. only separators: dlt refuses the name itself
            continue
        if _PLAIN.fullmatch(name):  # checked without dlt: must be a name dlt keeps
            assert kept, name
        if kept:
            check_names([name])
        else:
            with pytest.raises(ConfigError, match="would rename"):
                check_names(["ok", name])


def test_dlt_types_of_arrow_columns_match_dlt_itself():
    """evolution.arrow_types maps flat types without importing dlt: the same answer as dlt's own mapping."""
    import pyarrow as pa
    from dlt.common.libs.pyarrow import py_arrow_to_table_schema_columns

    from connectors.crm.evolution import arrow_types

    kinds = [pa.string(), pa.large_string(), pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint64(),
             pa.float16(), pa.float32(), pa.float64(), pa.bool_(), pa.date32(), pa.timestamp("s"),
             pa.timestamp("ms", "UTC"), pa.timestamp("us", "Europe/Berlin"), pa.timestamp("ns"),
             pa.decimal128(14, 2), pa.decimal128(38, 0), pa.null()]
    schema = pa.schema([(f"c{i}", t) for i, t in enumerate(kinds)])
    want = {n: c.get("data_type") for n, c in py_arrow_to_table_schema_columns(schema).items()}
    assert arrow_types(schema) == want
    nested = pa.schema([("l", pa.list_(pa.int64())), ("b", pa.binary()), ("t", pa.time64("us"))])
    assert arrow_types(nested) == {"l": "json", "b": "binary", "t": "time"}
