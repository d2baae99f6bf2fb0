"""HIS connector: HL7 v2 (file drops, MLLP) and FHIR R4 (files, REST) into Arrow records.

Public API (the rest of the package is internal):

- :class:`HisSource` — ``HisSource(config, home)``, streams ``hl7_messages``, ``fhir_medication_request``,
  ``fhir_patient``, ``fhir_practitioner``, ``fhir_organization``.
- :func:`hl7_path` — ``"PID-5.1"`` → ``"segments.PID[0].f5[0].c1"`` (see docs/hl7-notation.md).
- :func:`read_hl7` — bytes of a drop → (records, rejected), e.g. for ``weftline preview --input x.hl7``.
- :func:`read_fhir` — a JSON / Bundle / NDJSON file → ({stream: records}, {stream: rejected}).
- :func:`serve_mllp` (async), :func:`start_in_thread` (sync, background), :func:`run_mllp` (blocking
  worker until SIGTERM), :func:`send_messages` (client) — MLLP.
- :func:`read_stream` — everything landed for a stream, one row per record id.

>>> hl7_path("OBX[2]-5.1")
'segments.OBX[1].f5[0].c1'
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from connectors.base.source import rejected
from connectors.his.fhir_files import read_fhir_file
from connectors.his.fhir_records import to_tables
from connectors.his.hl7_table import read_drop as read_hl7
from connectors.his.landing import read_stream
from connectors.his.mllp import run_mllp, send_messages, serve_mllp, start_in_thread
from connectors.his.notation import hl7_path
from connectors.his.source import HisSource


def read_fhir(path: str | Path) -> tuple[dict[str, pa.Table], dict[str, pa.Table]]:
    """One FHIR file → ({stream: valid records}, {stream: rejected}); unreadable files under ``"file"``."""
    items, bad = read_fhir_file(Path(path))
    good, invalid = to_tables(items)
    if bad:
        invalid["file"] = rejected(bad)
    return good, invalid


__all__ = ["HisSource", "hl7_path", "read_hl7", "read_fhir", "serve_mllp", "start_in_thread", "run_mllp",
           "send_messages", "read_stream"]
