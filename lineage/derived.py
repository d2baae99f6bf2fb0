"""A ``loaded`` segment kept as ranges of the load's ``mapped`` segments (docs/adr/0115).

When the rows a destination accepted are exactly the mapped rows of that target, in order — the usual
case — their ``loaded`` edges repeat what the mapped edges hold (record id, subject, target key) plus a few
constants. Such a segment's file then holds one row per range of a mapped segment, and the constants in
its metadata::

    seq   root (hex Merkle root of that mapped segment)   start   count
    12    9f…                                             0       131072

Its leaves are one per range (RFC 6962 leaf hash of the range and the constants), so the chain, the
Merkle root and ``verify`` cover it like any segment, and each range names the root of the segment it
reads: altering either one is found. Readers never see the ranges: :func:`materialise` gives the same
``loaded`` edges an explicit segment would hold (``Store.read_segment``).

>>> from datetime import datetime, timezone
>>> consts = {"load_id": "L1", "destination": "duckdb", "entity": "account",
...           "at": datetime(2026, 12, 6, tzinfo=timezone.utc)}
>>> raw = table(consts, [Range(3, "ab" * 32, 0, 2)])
>>> is_derived(raw.schema.metadata), read_meta(raw.schema.metadata)["entity"], ranges_of(raw)[0].count
(True, 'account', 2)
>>> leaves(raw).shape
(1, 32)
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Callable, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lineage import edges as E

META_KEY = b"weftline.loaded_of"
FORMAT = 1
CONSTANTS = ("load_id", "destination", "entity", "at")
SCHEMA = pa.schema([("seq", pa.int64()), ("root", pa.string()), ("start", pa.int64()), ("count", pa.int64())])
COPIED = ("record_id", "subject", "target_key")  # what a loaded edge takes from its mapped edge


class Range(NamedTuple):
    seq: int  # the mapped segment
    root: str  # its Merkle root, hex
    start: int  # first row of the range in that segment
    count: int


def is_derived(metadata: dict[bytes, bytes] | None) -> bool:
    return META_KEY in (metadata or {})


def _at_text(at: datetime) -> str:
    return at.isoformat(timespec="microseconds")


def table(consts: dict[str, Any], ranges: list[Range]) -> pa.Table:
    """The segment file's table: one row per range, the constants (``CONSTANTS``) in its metadata."""
    doc = {"format": FORMAT, "step": "loaded", **{k: consts[k] for k in CONSTANTS if k != "at"},
           "at": _at_text(consts["at"])}
    cols = [pa.array([getattr(r, f.name) for r in ranges], f.type) for f in SCHEMA]
    return pa.table(cols, schema=SCHEMA.with_metadata({META_KEY: json.dumps(doc, sort_keys=True).encode()}))


def read_meta(metadata: dict[bytes, bytes] | None) -> dict[str, Any]:
    """The constants of a derived segment file; ValueError when they are not what a writer writes."""
    doc = json.loads((metadata or {})[META_KEY])
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("step") != "loaded" \
            or not all(isinstance(doc.get(k), str) for k in CONSTANTS):
        raise ValueError("derived segment: unknown format or constants")
    return {**doc, "at": datetime.fromisoformat(doc["at"])}


def ranges_of(raw: pa.Table) -> list[Range]:
    if raw.schema.remove_metadata() != SCHEMA:
        raise ValueError(f"derived segment: columns {raw.schema.names}, expected {SCHEMA.names}")
    return [Range(*row.values()) for row in raw.to_pylist()]


def leaves(raw: pa.Table) -> np.ndarray:
    """One RFC 6962 leaf per range: ``sha256(0x00 || canonical JSON of the constants and the range)``."""
    doc = json.loads(raw.schema.metadata[META_KEY])
    head = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    out = np.empty((raw.num_rows, 32), np.uint8)
    for i, r in enumerate(ranges_of(raw)):
        text = f"{head}|{r.seq}|{r.root}|{r.start}|{r.count}".encode()
        out[i] = np.frombuffer(hashlib.sha256(b"\x00" + text).digest(), np.uint8)
    return out


def same_rows(loaded: pa.Table, parts: list[pa.Table]) -> bool:
    """Whether ``loaded`` edges carry exactly the ``COPIED`` columns of ``parts`` (mapped edges) one after
    the other — the condition for keeping them as ranges.

    >>> m = E.build(2, "mapped", record_id=pa.array(["a", "b"]), target_key=pa.array(["1", "2"]))
    >>> l = E.build(2, "loaded", record_id=pa.array(["a", "b"]), target_key=pa.array(["1", "2"]))
    >>> same_rows(l, [m.slice(0, 1), m.slice(1, 1)]), same_rows(l, [m.slice(0, 1)])
    (True, False)
    """
    if not parts or loaded.num_rows != sum(p.num_rows for p in parts) or loaded.num_rows == 0:
        return False
    for name in COPIED:
        want = loaded.column(name).cast(pa.string())
        have = pa.chunked_array([c for p in parts for c in p.column(name).cast(pa.string()).chunks], pa.string())
        if not want.equals(have):
            return False
    return True


def materialise(raw: pa.Table, read_mapped: Callable[[int, str], pa.Table]) -> pa.Table:
    """The ``loaded`` edges of a derived segment file. ``read_mapped(seq, root)``: that mapped segment's
    edges (raising when its ledger root is not ``root``). ValueError when a range is not mapped rows of
    the entity."""
    consts = read_meta(raw.schema.metadata)
    parts = []
    for r in ranges_of(raw):
        mapped = read_mapped(r.seq, r.root)
        if r.start < 0 or r.count <= 0 or r.start + r.count > mapped.num_rows:
            raise ValueError(f"derived segment: rows {r.start}+{r.count} outside segment {r.seq}")
        part = mapped.slice(r.start, r.count)
        steps_ok = pc.all(pc.equal(part.column("step").cast(pa.string()), "mapped")).as_py()
        entity_ok = pc.all(pc.equal(part.column("entity").cast(pa.string()), consts["entity"])).as_py()
        if not (steps_ok and entity_ok):
            raise ValueError(f"derived segment: rows {r.start}+{r.count} of segment {r.seq} are not "
                             f"mapped {consts['entity']} rows")
        parts.append(E.build(r.count, "loaded", at=consts["at"], load_id=consts["load_id"],
                             destination=consts["destination"], entity=consts["entity"],
                             **{c: part.column(c) for c in COPIED}))
    return E.plain(E.concat(parts)) if parts else E.EDGE_SCHEMA.empty_table()


def put(blobs: Any, file: str, raw: pa.Table) -> tuple[int, bytes, str]:
    """Write the file and its ``.leaves`` (4-byte prefixes, one per range: ADR 0113) durably; returns
    (size, Merkle root, hex sha256 of the leaf file)."""
    import pyarrow.parquet as pq

    from lineage.merkle import root_of
    from lineage.segment_put import LEAF_PREFIX

    size = blobs.put_with(file, lambda sink: pq.write_table(raw, sink))
    lv = leaves(raw)
    prefixes = np.ascontiguousarray(lv[:, :LEAF_PREFIX]).tobytes()
    blobs.put(file + ".leaves", prefixes)
    return size, root_of(lv), hashlib.sha256(prefixes).hexdigest()
