"""Merkle trees: the bulk computation equals RFC 6962 computed by hand with hashlib."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pytest

from lineage.edges import EDGE_SCHEMA, build
from lineage.merkle import EMPTY_ROOT, first_mismatch, leaf_hashes, root_of


def mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 section 2.1, literally (recursive, k = largest power of two < n)."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 7, 8, 9, 31, 600, 1025])
def test_root_equals_rfc6962(n):
    data = [f"edge {i}".encode() for i in range(n)]
    leaves = np.frombuffer(b"".join(hashlib.sha256(b"\x00" + d).digest() for d in data), np.uint8).reshape(n, 32)
    assert root_of(leaves) == mth(data)
    assert n or root_of(leaves) == EMPTY_ROOT


def canonical(row: dict) -> bytes:
    parts = []
    for f in EDGE_SCHEMA:
        v = row[f.name]
        if v is None:
            parts.append("n")
        elif f.name == "at":
            parts.append("v" + str(int(v.timestamp() * 1_000_000)))
        else:
            parts.append("v" + str(v))
    return "\x1f".join(parts).encode()


def test_leaf_bytes_are_the_documented_canonical_text():
    at = datetime(2026, 11, 24, 8, 15, 0, 123456, tzinfo=timezone.utc)
    t = build(3, "mapped", record_id=pa.array(["r1", "r2", "ü"]), rules=pa.array([3, None, -1], pa.int64()),
              reason=pa.array(["", None, "x"]), at=at)
    got = leaf_hashes(t)
    want = [hashlib.sha256(b"\x00" + canonical(r)).digest() for r in t.to_pylist()]
    assert [g.tobytes() for g in got] == want


def test_null_and_empty_text_hash_differently():
    a = build(1, "received", reason=pa.array([""]), at=datetime(2026, 1, 1, tzinfo=timezone.utc))
    b = build(1, "received", reason=pa.array([None], pa.string()), at=datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert leaf_hashes(a).tobytes() != leaf_hashes(b).tobytes()


def test_first_mismatch_names_changed_missing_and_extra_rows():
    a = np.arange(5 * 32, dtype=np.uint8).reshape(5, 32)
    b = a.copy()
    b[3, 0] ^= 1
    assert first_mismatch(a, b) == 3
    assert first_mismatch(a, a[:4]) == 4
    assert first_mismatch(a, a) is None
