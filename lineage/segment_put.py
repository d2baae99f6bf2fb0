"""The per-edge half of a segment append: hash, write both files durably, compute the Merkle root.

``Store.prepare`` (lineage/store.py) calls :func:`put_segment` and keeps the ledger half. The order is
chosen so the two cores and the disk are busy at once (docs/adr/0110)::

    leaf hashes + hex ids → bytes     the C loop, two threads (one pass over the characters; leaf format 2,
                                      ADR 0114: the constant columns hashed and written once, ids as bytes)
      ├─ writer thread:  Parquet of the segment → write + fsync
      ├─ writer thread:  the .leaves file (a 4-byte prefix per leaf, ADR 0113) → write + fsync
      └─ this thread:    Merkle root (two threads for big levels), sha256 of the leaf file

Nothing here touches the ledger: an unrecorded file is ignored by every reader (docs/adr/0108).

>>> import tempfile
>>> from concurrent.futures import ThreadPoolExecutor
>>> import pyarrow as pa
>>> from lineage.blobs import LocalBlobs
>>> from lineage.edges import build
>>> blobs, pool = LocalBlobs(tempfile.mkdtemp()), ThreadPoolExecutor(2)
>>> e = build(2, "received", record_id=pa.array(["00ff", "a1b2"]))
>>> w = put_segment(blobs, "s.parquet", e, pool)
>>> w.bytes == blobs.size("s.parquet"), len(blobs.get("s.parquet.leaves")), len(w.root)
(True, 8, 32)
>>> put_segment(blobs, "t.parquet", e, None) == w  # the same files, written on the calling thread
True
"""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from lineage import leaf2, segment_file
from lineage.edges import conform
from lineage.merkle import Scratch, hash_and_decode, root_of


@dataclass(frozen=True)
class Written:
    bytes: int  # size of the segment file
    root: bytes  # its Merkle root (RFC 6962)
    leaves_sha256: str  # hex sha256 of the .leaves file


LEAF_PREFIX = 4  # bytes of each leaf kept in the .leaves file: enough to name a changed row (ADR 0113)


_local = threading.local()  # each thread's Scratch: its buffers are reused by the next segment it writes


def _scratch() -> Scratch:
    """This thread's buffers for leaf hashes and decoded ids, freed with the thread: a capture thread lives
    for one load; a long-lived thread keeps what its largest segment needed (the stream worker's loads are
    at most 20 000 landed rows, lineage.one_segment.MAX_ROWS: a few MB)."""
    s = getattr(_local, "scratch", None)
    if s is None:
        s = _local.scratch = Scratch()
    return s


def _put_parquet(blobs: Any, file: str, edges: pa.Table, ids: dict, consts: dict | None) -> int:
    # hex ids as bytes in the file (ADR 0107); Parquet straight into the file (no copy of it in memory first)
    return blobs.put_with(file, lambda sink: segment_file.write(edges, sink=sink, decoded=ids, leaf_constants=consts))


def _leaves(edges: pa.Table) -> tuple[np.ndarray, dict, dict | None]:
    """Leaf format 2 with the C loop (ADR 0114), else format 1 (DuckDB; no constants), into this thread's buffers."""
    scratch = _scratch()
    v2 = leaf2.hash_and_decode(edges, segment_file.ID_COLUMNS, scratch.take)
    if v2 is not None:
        return v2
    leaves, ids = hash_and_decode(edges, segment_file.ID_COLUMNS, scratch)
    return leaves, ids, None


def put_segment(blobs: Any, file: str, edges: pa.Table, pool: Executor | None) -> Written:
    """Write ``file`` (Parquet) and ``file + ".leaves"`` durably; ``pool``: at least two writer threads, or
    None to write both on the calling thread (a small segment: a thread hop costs more than it overlaps)."""
    edges = conform(edges)
    # into this thread's buffers: both files are written before this returns, so the next segment may reuse them
    leaves, ids, consts = _leaves(edges)
    leaf_bytes = np.ascontiguousarray(leaves[:, :LEAF_PREFIX]).data  # verify names a changed row by these
    if pool is None:
        size = _put_parquet(blobs, file, edges, ids, consts)
        blobs.put(file + ".leaves", leaf_bytes)
        return Written(size, root_of(leaves), hashlib.sha256(leaf_bytes).hexdigest())
    parquet = pool.submit(_put_parquet, blobs, file, edges, ids, consts)
    leaf_file = pool.submit(blobs.put, file + ".leaves", leaf_bytes)
    try:
        root = root_of(leaves)
        leaves_sha256 = hashlib.sha256(leaf_bytes).hexdigest()
    finally:  # both files are durable (or their error raised) before this returns
        size = parquet.result()
        leaf_file.result()
    return Written(size, root, leaves_sha256)
