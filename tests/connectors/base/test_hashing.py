"""The C hashing loop (connectors/base/sha256_text.c) gives exactly DuckDB's and hashlib's digests:
nulls, empty text, non-ASCII, long values, sliced and chunked inputs, the two-thread split."""

from __future__ import annotations

import hashlib
import hmac

import numpy as np
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


@pytest.mark.parametrize("n", [7, hashing._SPLIT + 3])
def test_u64_is_the_digests_first_64_bits_also_for_a_sliced_array(n):
    keys = pa.array([f"ACC-{i % 97}" for i in range(n + 5)]).slice(5)  # an offset into the buffers
    got = hashing.sha256_u64([keys])
    want = [int(hashlib.sha256(k.encode()).hexdigest()[:16], 16) for k in keys.to_pylist()]
    assert got.dtype == np.uint64 and got.tolist() == want
    assert len(hashing.sha256_u64([pa.array([], pa.string())])) == 0


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


def _flat(n: int) -> pa.Table:
    import datetime as dt
    from decimal import Decimal

    return pa.table({
        "id": pa.array([i if i % 5 else None for i in range(n)], pa.int32()),
        "name": pa.array([TEXT[i % 6] for i in range(n)]),
        "amount": pa.array([Decimal(i) / 100 for i in range(n)], pa.decimal128(14, 2)),
        "score": pa.array([i * 0.5 for i in range(n)]),
        "ok": pa.array([i % 2 == 0 for i in range(n)]),
        "day": pa.array([dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(n)]),
        "at": pa.array([dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=i) for i in range(n)],
                       pa.timestamp("us", tz="UTC")),
        "none": pa.nulls(n),
    })


@pytest.mark.parametrize("n", [9, hashing._SPLIT + 3])
def test_payload_hash_of_flat_rows_equals_the_fallback_and_the_documented_text(n):
    from connectors.base.identity import payload_hash_of_rows, value_text

    t = _flat(n)
    got = payload_hash_of_rows(t)
    names = sorted(t.column_names)
    fallback = hashing.row_sha256_hex(names, [value_text(t.column(c)) for c in names], use_native=False)
    assert got.equals(fallback)
    row = {c: value_text(t.column(c))[1].as_py() for c in names}
    text = "\x1f".join(f"{c}\x1e" + ("n" if row[c] is None else "v" + row[c]) for c in names)
    assert got[1].as_py() == hashlib.sha256(text.encode()).hexdigest()
    assert row["amount"] == "0.01" and row["at"] == "2026-01-01T00:00:01.000000" and row["ok"] == "false"


def test_payload_hash_ignores_column_order_and_reserved_columns_but_sees_every_value():
    from connectors.base.identity import payload_hash_of_rows

    t = _flat(50)
    h = payload_hash_of_rows(t)
    shuffled = t.select(list(reversed(t.column_names))).append_column("_wl_load_id", pa.array(["L"] * 50))
    assert payload_hash_of_rows(shuffled).equals(h)
    changed = t.set_column(1, "name", pa.array(["other"] + t.column("name").to_pylist()[1:]))
    a, b = h.to_pylist(), payload_hash_of_rows(changed).to_pylist()
    assert a[0] != b[0] and a[1:] == b[1:]
    assert len(set(a)) == 50


def test_rows_with_nested_columns_hash_their_json():
    from connectors.base.identity import _json_payload_hash, payload_hash_of_rows

    t = pa.table({"id": [1, 2], "tags": [["a"], None]})
    assert payload_hash_of_rows(t).equals(_json_payload_hash(t))
