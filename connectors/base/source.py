"""What every source connector declares and yields.

A stream is declared data (name, key, position column, schema), as in singer-sdk;
behaviour lives in one hook, :meth:`Source.read`, which yields :class:`Batch` es of
Arrow data. The runner stamps identity, lands the batch durably, and only then
persists ``batch.state`` (the cursor) — a connector never advances its own cursor.

>>> s = Stream(name="orders", key=("id",), position="updated_at")
>>> s.schema_file
'schemas/sources/orders.json'
>>> Stream(name="orders", key=("id",), position=None, schema="schemas/sources/erp_sql.orders.json").schema_file
'schemas/sources/erp_sql.orders.json'
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import pyarrow as pa

REJECTED_SCHEMA = pa.schema(
    [
        ("position", pa.string()),  # file:line / offset / message control id / topic — where it was
        ("reason", pa.string()),  # a clear, human-readable reason
        ("raw", pa.large_binary()),  # the bytes as received (quarantine keeps them; lineage never does)
    ]
)


@dataclass(frozen=True)
class Stream:
    name: str
    key: tuple[str, ...] | None  # source key column(s); None: the payload hash identifies a record
    position: str | None  # version / cursor column, or None
    schema: str | None = None  # path of the JSON Schema of a record (schemas/sources/...)

    @property
    def schema_file(self) -> str:
        return self.schema or f"schemas/sources/{self.name}.json"


@dataclass
class Batch:
    """One batch read from a stream: good records as Arrow, rejected raw inputs beside them."""

    stream: str
    table: pa.Table
    state: Mapping[str, Any] = field(default_factory=dict)  # cursor to persist once landed
    rejected: pa.Table = field(default_factory=lambda: REJECTED_SCHEMA.empty_table())

    @property
    def read_count(self) -> int:
        return self.table.num_rows + self.rejected.num_rows


def rejected(rows: list[tuple[str, str, bytes]]) -> pa.Table:
    """Build a rejected-inputs table from (position, reason, raw) triples."""
    if not rows:
        return REJECTED_SCHEMA.empty_table()
    pos, reason, raw = zip(*rows)
    return pa.table([pa.array(pos, pa.string()), pa.array(reason, pa.string()), pa.array(raw, pa.large_binary())],
                    schema=REJECTED_SCHEMA)


class Source(Protocol):
    """A pull-style source. Push-style ones (MLLP, MQTT) land directly and expose the same streams."""

    system: ClassVar[str]
    streams: ClassVar[tuple[Stream, ...]]

    def read(self, stream: str, state: Mapping[str, Any]) -> Iterator[Batch]: ...
