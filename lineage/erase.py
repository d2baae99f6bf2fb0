"""Erase one data subject everywhere: landing rows, destination rows, then tombstone edges.

Forward lineage finds the subject's source records (landing) and output records
(destination). Landing parts that hold them are rewritten without those rows (temporary
file + rename); destination rows are deleted by ``_wl_record_id``. The edges stay (they hold
no personal data), so the hash chain still verifies; ``erased`` tombstones are appended.

>>> import tempfile
>>> from connectors.base.home import Home
>>> from lineage.store import open_store
>>> try:
...     erase_subject(open_store(Home(tempfile.mkdtemp())), "nobody@example.org")
... except UnknownRef as e:
...     print(str(e)[:30])
no lineage for this subject (s
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from connectors.base.reserved import RECORD_ID
from connectors.landing import landed_parts
from lineage import destination as dest_mod
from lineage.edges import EDGE_SCHEMA, erased_edges
from lineage.export.collect import subject_hash
from lineage.query import UnknownRef, subject_edges

log = logging.getLogger(__name__)


def _rewrite_without(part: Path, ids: pa.Array) -> int:
    """Rewrite one landing part without the rows whose record id is in ``ids``; rows removed."""
    t = pq.read_table(part)
    keep = pc.invert(pc.is_in(t.column(RECORD_ID), ids))
    kept = t.filter(keep)
    removed = t.num_rows - kept.num_rows
    if removed == 0:
        return 0
    tmp = part.with_name(f".{part.name}.erase-{os.getpid()}")
    with open(tmp, "wb") as fh:
        pq.write_table(kept, fh, compression="zstd")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, part)
    return removed


def erase_landing(store: Any, received: list[dict]) -> int:
    groups: dict[tuple, set] = {}
    for r in received:
        groups.setdefault((r["source_system"], r["stream"], r["load_id"]), set()).add(r["record_id"])
    removed = 0
    for (system, stream, load_id), ids in groups.items():
        arr = pa.array(sorted(ids))
        removed += sum(_rewrite_without(p, arr) for p in landed_parts(store.home, system, stream, load_id))
    return removed


def erase_subject(store: Any, subject_id: str) -> dict:
    """Erase the subject; returns recipients to notify and what was removed."""
    h = subject_hash(store, subject_id)
    edges, warnings = subject_edges(store, h)
    if not edges:
        raise UnknownRef(f"no lineage for this subject (subject hash {h[:12]}…)")
    received = {e["record_id"]: e for e in edges if e["step"] == "received"}
    loaded = {(e["destination"], e["entity"], e["record_id"]): e for e in edges if e["step"] == "loaded"}
    landing_rows = erase_landing(store, list(received.values()))
    dest_rows = 0
    for entity in sorted({k[1] for k in loaded}):
        dest_rows += dest_mod.delete_records(store.home, entity, sorted({k[2] for k in loaded if k[1] == entity}))
    erase_id = "erase-" + datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    gone = [{**e, "subject": h} for e in list(received.values()) + list(loaded.values())]
    tomb = pa.Table.from_pylist([{k: e.get(k) for k in EDGE_SCHEMA.names if k != "at"} for e in gone],
                                schema=EDGE_SCHEMA.remove(EDGE_SCHEMA.get_field_index("at")))
    store.append(erase_id, erased_edges(erase_id, tomb, reason="erased on request of the data subject"))
    recipients = sorted({(d, e) for d, e, _ in loaded})
    log.info("erased subject %s…: %d landing rows, %d destination rows", h[:12], landing_rows, dest_rows)
    return {"subject_hash": h, "erase_id": erase_id, "landing_rows": landing_rows, "destination_rows": dest_rows,
            "tombstones": len(gone), "recipients": [{"destination": d, "entity": e} for d, e in recipients],
            "warnings": warnings}
