"""The ERP streams, declared: table, key, cursor, soft-delete rule, schema file.

A soft-delete rule names a column and the values that mean "deleted"
(``None``: any non-null value, e.g. a ``deleted_at`` timestamp). Such rows are
still emitted, with ``_op = 'delete'``; they never disappear.

>>> by_name("orders").soft_delete
SoftDelete(column='status', values=('cancelled',))
>>> by_name("orders").arrow_schema.field("net_amount").type
Decimal128Type(decimal128(14, 2))
>>> [s.name for s in STREAMS]
['customers', 'orders', 'contracts', 'approval_steps']
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from connectors.base.source import Stream
from connectors.erp_sql.arrow_schema import arrow_schema, load_json_schema
from connectors.errors import ConfigError

OP = "_op"  # added by the connector: "upsert" | "delete"


@dataclass(frozen=True)
class SoftDelete:
    column: str
    values: tuple[str, ...] | None = None  # None: deleted when the column is not null


@dataclass(frozen=True)
class ErpStream(Stream):
    table: str = ""
    soft_delete: SoftDelete | None = None

    @property
    def arrow_schema(self) -> pa.Schema:
        return arrow_schema(load_json_schema(self.schema_file))

    @property
    def columns(self) -> list[str]:
        """The columns read from the table (everything declared but ``_op``)."""
        return [n for n in self.arrow_schema.names if n != OP]


def _stream(name: str, key: str, soft_delete: SoftDelete | None) -> ErpStream:
    return ErpStream(name=name, key=(key,), position="updated_at", schema=f"schemas/sources/erp_sql.{name}.json",
                     table=name, soft_delete=soft_delete)


STREAMS: tuple[ErpStream, ...] = (
    _stream("customers", "customer_id", SoftDelete("deleted_at")),
    _stream("orders", "order_id", SoftDelete("status", ("cancelled",))),
    _stream("contracts", "contract_id", SoftDelete("status", ("cancelled",))),
    _stream("approval_steps", "step_id", None),
)


def by_name(name: str) -> ErpStream:
    for s in STREAMS:
        if s.name == name:
            return s
    raise ConfigError(f"erp_sql has no stream {name!r}; streams: {', '.join(s.name for s in STREAMS)}")
