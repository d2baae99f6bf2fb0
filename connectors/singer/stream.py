"""A singer-sdk stream over a weftline source stream: the tap reuses the source's readers and schemas.

A Singer stream here is declared data — ``name``, ``schema_name`` (a file in
``schemas/sources``), ``primary_keys``, ``replication_key`` — plus one hook,
:meth:`SourceStream.source_state`, that turns the Singer bookmark into the source's
state. Records come from the same Arrow batches the weftline runner lands, so there
is one parser per system. Rejected inputs are logged as warnings with their position
and reason (a Singer tap has no quarantine; weftline's runner keeps them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from singer_sdk import Stream

from connectors.singer import schema as schemas


class SourceStream(Stream):
    """Subclasses declare ``name``, ``schema_name``, ``primary_keys``, ``replication_key``."""

    schema_name: ClassVar[str]
    source_stream: ClassVar[str | None] = None  # the weftline stream name; default: ``name``

    def __init__(self, tap, source) -> None:
        self.source = source
        super().__init__(tap, schema=_singer_schema(self.schema_name), name=self.name)

    def source_state(self, start: Any) -> Mapping[str, Any]:
        """The source state to start from, given the Singer bookmark (or start_date) value."""
        return {}

    def get_records(self, context: Mapping[str, Any] | None) -> Iterable[dict[str, Any]]:
        start = self.get_starting_replication_key_value(context)
        state = self.source_state(start) if start else {}
        for batch in self.source.read(self.source_stream or self.name, state):
            for bad in batch.rejected.select(["position", "reason"]).to_pylist():
                self.logger.warning("rejected %s: %s", bad["position"], bad["reason"])
            yield from batch.table.to_pylist()


def _singer_schema(name: str) -> dict[str, Any]:
    """The record JSON Schema without the weftline ``x-*`` annotations and ``$id`` / ``$schema``."""
    s = schemas.load(name)
    return {k: v for k, v in s.items() if not k.startswith(("x-", "$"))}
