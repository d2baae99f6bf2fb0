"""HL7 records → one Arrow table, one row per message; and HL7 drops (bytes) → records + rejects.

The header columns have fixed types; ``segments`` is a struct whose children
(one per segment type seen, fields ``fN``, components ``cN``) follow the batch, so
batches with other segment types unify when read back (``promote_options="permissive"``).

>>> t, rej = read_drop(b"MSH|^~\\\\&|A|F|||20230101||ADT^A01|1|P|2.5\\nPID|1||7\\n", origin="x.hl7")
>>> t.num_rows, rej.num_rows, t.column("origin")[0].as_py()
(1, 0, 'x.hl7#1')
>>> t, rej = read_drop(b"", origin="empty.hl7")
>>> t.num_rows, rej.column("reason")[0].as_py()
(0, 'no HL7 message in the input (0 bytes)')
"""

from __future__ import annotations

import logging
from typing import Any

import pyarrow as pa

from connectors.base.source import rejected
from connectors.errors import SkippableError
from connectors.his.hl7_record import parse_message
from connectors.his.hl7_text import decode, split_messages

log = logging.getLogger(__name__)

# System, stream and identity of a landed message (see docs/adr/0240-hl7-record-shape.md).
SYSTEM = "his"
STREAM = "hl7_messages"
KEY = ("sending_application", "sending_facility", "message_control_id")
POSITION = "message_sha256"

# the segments type of a batch with no message (every message has an MSH; Parquet needs a child)
EMPTY_SEGMENTS = pa.struct([("MSH", pa.list_(pa.struct([("f1", pa.list_(pa.struct([("c1", pa.string())])))])))])
HEADER = pa.schema(
    [
        ("message_control_id", pa.string()),
        ("message_type", pa.string()),
        ("trigger_event", pa.string()),
        ("message_structure", pa.string()),
        ("version", pa.string()),
        ("processing_id", pa.string()),
        ("sending_application", pa.string()),
        ("sending_facility", pa.string()),
        ("receiving_application", pa.string()),
        ("receiving_facility", pa.string()),
        ("sent_at", pa.timestamp("us", tz="UTC")),
        ("segment_ids", pa.list_(pa.string())),
    ]
)
TRAILER = pa.schema(
    [
        ("issues", pa.list_(pa.string())),
        ("encoding", pa.string()),
        ("origin", pa.string()),
        ("message_sha256", pa.string()),
        ("raw", pa.large_string()),
    ]
)


def to_table(records: list[dict[str, Any]]) -> pa.Table:
    """Records from :func:`~connectors.his.hl7_record.parse_message` (plus ``origin``) as one table."""
    cols = {f.name: pa.array([r.get(f.name) for r in records], f.type) for f in HEADER}
    segs = pa.array([r["segments"] for r in records]) if records else pa.array([], EMPTY_SEGMENTS)
    cols["segments"] = segs
    cols.update({f.name: pa.array([r.get(f.name) for r in records], f.type) for f in TRAILER})
    return pa.table(cols)


def read_drop(data: bytes, origin: str) -> tuple[pa.Table, pa.Table]:
    """Every message in one drop (a file, an MLLP block): (good records, rejected inputs)."""
    text, encoding = decode(data)
    chunks = split_messages(text)
    if not chunks:
        return to_table([]), rejected([(origin, f"no HL7 message in the input ({len(data)} bytes)", data)])
    good, bad = [], []
    for n, chunk in enumerate(chunks, 1):
        where = f"{origin}#{n}"
        try:
            if chunk.problem:
                raise SkippableError(chunk.problem)
            rec = parse_message(chunk.text, encoding, raw=chunk.raw)
        except SkippableError as err:
            log.info("HL7 message rejected at %s (line %d): %s", where, chunk.line, err)
            bad.append((f"{where}:line {chunk.line}", str(err), chunk.raw.encode(encoding)))
            continue
        rec["origin"] = where
        good.append(rec)
    return to_table(good), rejected(bad)
