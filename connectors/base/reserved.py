"""Reserved column names and fixed choices, gathered in one module.

Every stage stamps or reads these columns on whole Arrow batches, never per row.
A source column whose name starts with ``_wl_`` is refused at landing: the
prefix belongs to weftline.

>>> RECORD_ID
'_wl_record_id'
>>> is_reserved("_wl_load_id"), is_reserved("email")
(True, False)
"""

from __future__ import annotations

from typing import Final, Literal

PREFIX: Final = "_wl_"

# Stamped by the connectors when a record is received (see connectors.base.identity).
RECORD_ID: Final = "_wl_record_id"  # sha256(system, stream, source key, position)[:32], hex
SOURCE_SYSTEM: Final = "_wl_source_system"  # e.g. "erp_sql", "his", "iot_mqtt"
STREAM: Final = "_wl_stream"  # e.g. "orders", "form_submissions"
SOURCE_KEY: Final = "_wl_source_key"  # the record's key in its source, as text
POSITION: Final = "_wl_position"  # version / offset / cursor value, as text
PAYLOAD_HASH: Final = "_wl_payload_hash"  # sha256 of the raw payload (or the row's canonical text, ADR 0003)
RECEIVED_AT: Final = "_wl_received_at"  # timestamp[us, UTC] when weftline received it
LOAD_ID: Final = "_wl_load_id"  # the run that produced the row

# Stamped by the mapping engine on its outputs.
INPUT_RECORD_ID: Final = "_wl_input_record_id"  # the source record a mapped row came from
SPEC_ID: Final = "_wl_spec_id"
SPEC_VERSION: Final = "_wl_spec_version"  # content hash of the normalised spec
RULES: Final = "_wl_rules"  # int64 bit set: bit i set when rule i of the compiled spec fired
SUBJECT: Final = "_wl_subject"  # keyed hash (HMAC) of the data subject, never the raw id

RECEIVED_COLUMNS: Final = (
    RECORD_ID,
    SOURCE_SYSTEM,
    STREAM,
    SOURCE_KEY,
    POSITION,
    PAYLOAD_HASH,
    RECEIVED_AT,
    LOAD_ID,
)
MAPPED_COLUMNS: Final = (RECORD_ID, INPUT_RECORD_ID, SPEC_ID, SPEC_VERSION, RULES, SUBJECT, LOAD_ID)

WriteDisposition = Literal["upsert", "append", "replace"]
Step = Literal["received", "mapped", "filtered", "quarantined", "loaded", "erased"]
ErrorKind = Literal["fatal", "retriable", "skippable", "config"]


def is_reserved(name: str) -> bool:
    """True for a column name that belongs to weftline."""
    return name.startswith(PREFIX)
