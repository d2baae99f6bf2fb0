"""The C hashing loop (connectors/base/sha256_text.c) gives exactly DuckDB's and hashlib's digests:
nulls, empty text, non-ASCII, long values, sliced and chunked inputs, the two-thread split."""

from __future__ import annotations

import hashlib
import hmac

import pyarrow as pa
import pytest

from connectors.base import hashing
from connectors.base.hashing import SEPARATOR, hmac_sha256_hex, sha256_hex

TEXT = [None, "", "ünï–cødé", "x" * 9000, "a\x1fb", "ERP-42"]


@pytest.fixture(scope="module", autouse=True)
def lib():
    lib = hashing.native()
    assert lib is not None, "the C loop must build on this machine (gcc + OpenSSL headers)"
    return lib


def _parts(n: int) -> list[pa.ChunkedArray]:
    a = pa.array([TEXT[i % 6] for i in range(n + 3)])
    b = pa.array([None if i % 7 == 0 else str(i) for i in range(n)])
    # chunked, with array offsets inside the chunks
    return [pa.chunked_array([a.slice(3, n // 2), a.slice(n // 2 + 3)]), pa.chunked_array([b.slice(0, n // 2 - 3), b.slice(n // 2 - 3)])]


def _by_hand(parts, prefix="", length=64) -> list[str]:
    cols = [p.to_pylist() for p in parts]
    return [hashlib.sha256((prefix + SEPARATOR.join(v or "" for v in row)).encode()).hexdigest()[:length]
            for row in zip(*cols)]


@pytest.mark.parametrize("n", [13, hashing._SPLIT + 5])
def test_joined_equals_duckdb_and_hashlib(n):
    parts = _parts(n)
    c = sha256_hex(parts, length=32, prefix="erp_sql\x1forders\x1f")
    d = sha256_hex(parts, length=32, prefix="erp_sql\x1forders\x1f", use_native=False)
    assert c.equals(d)
    assert c.to_pylist()[:50] == _by_hand([p.slice(0, 50) for p in parts], "erp_sql\x1forders\x1f", 32)
    assert c.null_count == 0 and len(c) == n


def test_a_changed_value_changes_only_its_digest():
    parts = _parts(40)
    changed = [pa.array(["y"] + parts[0].to_pylist()[1:]), parts[1]]
    a, b = sha256_hex(parts).to_pylist(), sha256_hex(changed).to_pylist()
    assert a[0] != b[0] and a[1:] == b[1:]


def test_non_text_parts_are_cast_like_the_duckdb_path():
    parts = [pa.array([1, None, -3], pa.int64()), pa.array([1.5, 2.0, None])]
    assert sha256_hex(parts).equals(sha256_hex(parts, use_native=False))


@pytest.mark.parametrize("key", [b"k", b"x" * 80])
@pytest.mark.parametrize("n", [11, hashing._SPLIT + 1])
def test_hmac_equals_duckdb_and_python_and_keeps_nulls(key, n):
    values = pa.chunked_array([pa.array([TEXT[i % 6] for i in range(n)]).slice(1)])
    c = hmac_sha256_hex(values, key)
    assert c.equals(hmac_sha256_hex(values, key, use_native=False))
    k = hashlib.sha256(key).digest() if len(key) > 64 else key
    want = [None if v is None else hmac.new(k, v.encode(), hashlib.sha256).hexdigest()
            for v in values.to_pylist()[:30]]
    assert c.to_pylist()[:30] == want
    assert c.null_count == values.null_count


def test_empty_input_and_bad_length():
    assert len(sha256_hex([pa.array([], pa.string())])) == 0
    with pytest.raises(ValueError):
        sha256_hex([pa.array(["a"])], length=65)


@pytest.mark.parametrize("tz", [None, "UTC"])
def test_timestamp_text_equals_arrow_strftime(tz):
    import numpy as np

    from connectors.base.identity import timestamp_text

    rng = np.random.default_rng(3)
    lo, hi = -62_167_219_200_000_000, 253_402_300_799_999_999  # years 0..9999
    us = np.concatenate([rng.integers(lo, hi, 20_000), [lo, hi, 0, -1, 1, 951_782_400_000_000]])
    arr = pa.array(us, pa.int64()).cast(pa.timestamp("us", tz=tz))
    arr = pa.chunked_array([arr.slice(5, 100), pa.array([None], arr.type), arr.slice(105)])
    got = timestamp_text(arr)
    want = pa.compute.strftime(arr.combine_chunks(), format="%Y-%m-%dT%H:%M:%S")
    assert got.equals(want)
    assert timestamp_text(arr, use_native=False).equals(want)
    far = pa.array([hi + 1], pa.int64()).cast(pa.timestamp("us"))  # year 10000: Arrow's path
    assert timestamp_text(far).equals(pa.compute.strftime(far, format="%Y-%m-%dT%H:%M:%S"))
