"""Recompute every segment's Merkle root and the chain of roots; name the first thing that does not match.

Checks, in ledger order: sequence numbers have no gaps, each ``prev_root`` is the previous
``chained_root``, each ``chained_root = sha256(prev || merkle_root)``, the segment file exists and
reads, its leaves (recomputed from the rows, in the leaf format the file names: ADR 0102 or 0114) give the
recorded root and row count. When a root
differs, the leaf file written beside the segment (its sha256 is in the ledger) names the first
row that changed: an altered, deleted, inserted or reordered edge. A derived ``loaded`` segment (ranges of
mapped segments, ADR 0115) is checked the same way over its ranges, and each range must name an earlier
mapped segment of its load by that segment's root, and read as mapped rows of its entity.

>>> import tempfile, pyarrow as pa
>>> from connectors.base.home import Home
>>> from lineage.store import open_store
>>> from lineage.edges import build
>>> store = open_store(Home(tempfile.mkdtemp()))
>>> _ = store.append("L1", build(3, "received", record_id=pa.array(["a", "b", "c"]), load_id="L1"))
>>> r = verify(store); r.ok, r.segments, r.edges
(True, 1, 3)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from lineage import derived, leaf2, segment_file
from lineage.edges import EDGE_SCHEMA
from lineage.ledger import GENESIS
from lineage.merkle import chain, first_mismatch, leaf_hashes, root_of
from lineage.segment_put import LEAF_PREFIX


@dataclass
class Problem:
    seq: int
    segment_id: str
    file: str
    row: int | None
    message: str

    def __str__(self) -> str:
        where = f"segment {self.seq} ({self.file})" + (f" row {self.row}" if self.row is not None else "")
        return f"{where}: {self.message}"


@dataclass
class Report:
    segments: int = 0
    edges: int = 0
    head: str = GENESIS
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return {"ok": self.ok, "segments": self.segments, "edges": self.edges, "head": self.head,
                "problems": [{"seq": p.seq, "segment_id": p.segment_id, "file": p.file, "row": p.row,
                              "message": p.message} for p in self.problems]}


def _chain_problem(seg: dict, expected_seq: int, prev: str) -> str | None:
    if seg["seq"] != expected_seq:
        return f"ledger gap: expected segment {expected_seq}, found {seg['seq']} (a segment was removed)"
    if seg["prev_root"] != prev:
        return "chain broken: previous root does not match the segment before it"
    if chain(bytes.fromhex(prev), bytes.fromhex(seg["merkle_root"])).hex() != seg["chained_root"]:
        return "chain broken: chained root does not match its Merkle root"
    return None


def file_leaves(raw: pa.Table) -> np.ndarray:
    """The leaves of a segment file's rows (``raw``: the Parquet as read), as its writer hashed them: leaf
    format 2 when the file's metadata names it (lineage/leaf2.py, ADR 0114), else the text of ADR 0102."""
    consts = leaf2.read_meta(raw.schema.metadata)
    if consts is None:
        return leaf_hashes(segment_file.from_file(raw).select(EDGE_SCHEMA.names).cast(EDGE_SCHEMA))
    return leaf2.file_leaves(raw, consts)


def _raw(store, seg: dict) -> pa.Table:
    return segment_file.read_raw(store.blobs.get(seg["file"]))


def segment_leaves(store, seg: dict) -> np.ndarray:
    """The recomputed leaves of one ledger segment (raises when its file is missing or unreadable)."""
    return file_leaves(_raw(store, seg))


def _read(store, seg: dict) -> tuple[pa.Table | None, str | None]:
    if store.blobs.size(seg["file"]) is None:
        return None, f"segment file missing ({store.blobs.describe(seg['file'])})"
    try:
        return _raw(store, seg), None
    except Exception as exc:  # any damage to the file is a finding, not a crash
        return None, f"segment file unreadable: {exc}"


def _stored_leaves(store, seg: dict, derived_ranges: bool = False) -> np.ndarray | None:
    """The leaves stored at append time, one row each: whole (32 bytes, older segments) or their first
    ``LEAF_PREFIX`` bytes (ADR 0113) — the file's size over the ledger's row count says which. A derived
    segment's (one per range, always prefixes) are as many as the file holds."""
    name = seg["file"] + ".leaves"
    if store.blobs.size(name) is None:
        return None
    data = store.blobs.get(name)
    rows = (len(data) // LEAF_PREFIX if derived_ranges else seg["rows"]) or 1
    if hashlib.sha256(data).hexdigest() != seg["leaves_sha256"] or len(data) not in (32 * rows, LEAF_PREFIX * rows):
        return None
    return np.frombuffer(data, np.uint8).reshape(-1, len(data) // rows)


def _derived_problem(store, seg: dict, raw: pa.Table) -> tuple[int | None, str | None, int]:
    """A derived loaded segment: its range leaves against the root, then the edges they stand for."""
    ranges = derived.ranges_of(raw)
    starts = np.cumsum([0] + [r.count for r in ranges])
    n = int(starts[-1])
    leaves = derived.leaves(raw)
    if root_of(leaves).hex() != seg["merkle_root"]:
        stored = _stored_leaves(store, seg, derived_ranges=True)
        if stored is None:
            return None, "Merkle root does not match (the leaf file is altered too)", n
        k = first_mismatch(stored, leaves[:, :stored.shape[1]])
        return (None if k is None else int(starts[min(k, len(ranges))])), \
            "Merkle root does not match: a range of mapped rows altered", n
    if n != seg["rows"]:
        return None, f"{n} rows, ledger says {seg['rows']}", n
    try:
        store.read_segment(seg, raw)
    except Exception as exc:
        return None, str(exc), n
    return None, None, n


def _segment_problem(store, seg: dict) -> tuple[int | None, str | None, int]:
    raw, err = _read(store, seg)
    if err:
        return None, err, 0
    try:
        if derived.is_derived(raw.schema.metadata):
            return _derived_problem(store, seg, raw)
        leaves = file_leaves(raw)
    except Exception as exc:  # any damage to the file is a finding, not a crash
        return None, f"segment file unreadable: {exc}", 0
    n = len(leaves)
    if root_of(leaves).hex() == seg["merkle_root"] and n == seg["rows"]:
        return None, None, n
    stored = _stored_leaves(store, seg)
    if stored is None:
        return None, "Merkle root does not match (the leaf file is altered too)", n
    row = first_mismatch(stored, leaves[:, :stored.shape[1]])
    detail = f"{n} rows, ledger says {seg['rows']}" if n != seg["rows"] else "edge altered"
    return row, f"Merkle root does not match: {detail}", n


def verify(store, stop_at_first: bool = True) -> Report:
    """Recompute the whole store; ``report.problems[0]`` is the first mismatch."""
    report = Report()
    prev = GENESIS
    for i, seg in enumerate(store.segments(), start=1):
        msg = _chain_problem(seg, i, prev)
        row, n = None, 0
        if msg is None:
            row, msg, n = _segment_problem(store, seg)
        report.segments += 1
        report.edges += n
        if msg:
            report.problems.append(Problem(seg["seq"], seg["segment_id"], seg["file"], row, msg))
            if stop_at_first:
                break
        prev = seg["chained_root"]
    report.head = prev
    return report
