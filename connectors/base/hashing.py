"""Bulk hashing of Arrow columns: a C loop over the Arrow buffers (``sha256_text.c``), else DuckDB.

No per-row Python either way. The results equal Python's ``hashlib`` / ``hmac`` on the
same bytes, so any value can be recomputed by hand during an audit; the C loop and the
DuckDB path give identical digests (tests/connectors/base/test_hashing.py).

>>> import pyarrow as pa, hashlib
>>> got = sha256_hex([pa.array(["a", None]), pa.array(["b", "c"])])
>>> got[0].as_py() == hashlib.sha256("a\\x1fb".encode()).hexdigest()
True
>>> got[1].as_py() == hashlib.sha256("\\x1fc".encode()).hexdigest()  # null hashes as ""
True
"""

from __future__ import annotations

import ctypes
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectors.base.cbuild import load_library

SEPARATOR = "\x1f"  # ASCII unit separator between the parts of a hashed key


_local = threading.local()
_SOURCE = Path(__file__).with_name("sha256_text.c")
_SPLIT = 65_536  # rows: from here on the C loop runs on two threads (ctypes releases the GIL)


class _Text(ctypes.Structure):
    _fields_ = [("offset", ctypes.c_int64), ("validity", ctypes.c_void_p), ("offsets", ctypes.c_void_p),
                ("data", ctypes.c_void_p)]


def native() -> ctypes.CDLL | None:
    """The C loop, or None (then DuckDB hashes: same digests)."""
    lib = load_library(_SOURCE)
    if lib is not None and not getattr(lib, "_wl_typed", False):
        P, I = ctypes.c_void_p, ctypes.c_int64
        lib.joined_hex.argtypes = [ctypes.POINTER(_Text), I, I, P, I, ctypes.c_uint8, I, P]
        lib.joined_hex.restype = None
        lib.hmac_hex.argtypes = [ctypes.POINTER(_Text), I, P, P]
        lib.hmac_hex.restype = None
        lib.row_hex.argtypes = [ctypes.POINTER(_Text), I, I, P, P, P]
        lib.row_hex.restype = None
        lib._wl_typed = True
    return lib


def _utf8(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One ``string`` array (int32 offsets), copying only when it has several chunks or another type."""
    if isinstance(col, pa.ChunkedArray):
        col = col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
    return col if pa.types.is_string(col.type) else col.cast(pa.string())


def _describe(arrays: list[pa.Array]) -> ctypes.Array:
    cols = (_Text * len(arrays))()
    for c, arr in zip(cols, arrays):
        validity, offsets, data = arr.buffers()[:3]
        c.offset = arr.offset
        c.validity = validity.address if (validity is not None and arr.null_count) else None
        c.offsets = offsets.address if offsets is not None else None
        c.data = data.address if data is not None else None
    return cols


def _hex_strings(chars: np.ndarray, n: int, width: int) -> pa.Array:
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(chars))


def _in_pieces(n: int, run) -> None:
    """``run(start, stop)`` over the rows, on two threads for big inputs."""
    if n < _SPLIT:
        run(0, n)
        return
    half = n // 2
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda r: run(*r), [(0, half), (half, n)]))


def _native_joined(lib, parts: list, length: int, prefix: str) -> pa.Array:
    arrays = [_utf8(p) for p in parts]
    n = len(arrays[0])
    out = np.empty(n * length, np.uint8)
    pre = prefix.encode()

    def run(start: int, stop: int) -> None:
        cols = _describe([a.slice(start, stop - start) for a in arrays])
        lib.joined_hex(cols, len(arrays), stop - start, pre, len(pre), ord(SEPARATOR), length,
                       out[start * length:].ctypes.data)

    _in_pieces(n, run)
    return _hex_strings(out, n, length)


def _native_hmac(lib, values, key64: bytes) -> pa.Array:
    arr = _utf8(values)
    n = len(arr)
    out = np.empty(n * 64, np.uint8)

    def run(start: int, stop: int) -> None:
        lib.hmac_hex(_describe([arr.slice(start, stop - start)]), stop - start, key64, out[start * 64:].ctypes.data)

    _in_pieces(n, run)
    hexed = _hex_strings(out, n, 64)
    return pc.if_else(arr.is_null(), pa.scalar(None, pa.string()), hexed) if arr.null_count else hexed


def _connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection per thread (opening one costs tens of ms; it holds no data)."""
    con = getattr(_local, "con", None)
    if con is None:
        con = duckdb.connect()
        con.execute(f"SET threads = {max(1, min(4, os.cpu_count() or 1))}")  # hashes are independent: use the cores
        _local.con = con
    return con


def _as_text(parts: list[pa.Array | pa.ChunkedArray]) -> pa.Table:
    cols = {}
    for i, p in enumerate(parts):
        if not pa.types.is_string(p.type) and not pa.types.is_large_string(p.type):
            p = p.cast(pa.string())
        cols[f"p{i}"] = p
    return pa.table(cols)


def sha256_hex(parts: list[pa.Array | pa.ChunkedArray], length: int = 64, prefix: str = "",
               use_native: bool = True) -> pa.Array:
    """sha256 over ``prefix`` + the parts joined by U+001F (nulls as empty text), as hex, cut to ``length``.

    ``prefix`` is text hashed before the first part (constant parts, e.g. ``"erp_sql\x1forders\x1f"``,
    without an array of n copies).

    >>> sha256_hex([pa.array(["b"])], prefix="a\x1f")[0] == sha256_hex([pa.array(["a"]), pa.array(["b"])])[0]
    True
    """
    if not parts:
        raise ValueError("sha256_hex needs at least one column")
    if not 1 <= length <= 64:
        raise ValueError("length must be 1..64 hex characters")
    lib = native() if use_native else None
    if lib is not None and len(parts[0]):
        return _native_joined(lib, parts, length, prefix)
    if prefix:
        parts = [_prefixed(prefix, parts[0])] + list(parts[1:])
    tbl = _as_text(parts)
    args = ", ".join(f"coalesce(p{i}, '')" for i in range(len(parts)))
    expr = f"sha256(concat_ws('{SEPARATOR}', {args}))"
    if length < 64:
        expr = f"substr({expr}, 1, {int(length)})"
    con = _connect()
    con.register("t", tbl)
    try:
        out = con.sql(f"SELECT {expr} AS h FROM t").to_arrow_table().column("h")
    finally:
        con.unregister("t")
    return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out


_NIBBLE = np.zeros(256, np.uint8)
_NIBBLE[np.frombuffer(b"0123456789abcdef", np.uint8)] = np.arange(16, dtype=np.uint8)


def sha256_u64(parts: list[pa.Array | pa.ChunkedArray], prefix: str = "") -> np.ndarray:
    """The first 64 bits of :func:`sha256_hex` as unsigned integers: a cheap, well-spread key hash for
    set membership (e.g. "has this key been loaded already?"), decoded without a per-row loop.

    >>> h = sha256_u64([pa.array(["a", "b", "a"])])
    >>> bool(int(h[0]) == int(sha256_hex([pa.array(["a"])])[0].as_py()[:16], 16) and h[0] == h[2] != h[1])
    True
    """
    hexed = sha256_hex(parts, length=16, prefix=prefix)
    n = len(hexed)
    if not n:
        return np.empty(0, np.uint64)
    nib = _NIBBLE[np.frombuffer(hexed.buffers()[2], np.uint8, count=n * 16, offset=hexed.offset * 16).reshape(n, 16)]
    digest = (nib[:, 0::2] << 4) | nib[:, 1::2]  # the first 8 digest bytes, big-endian
    return np.ascontiguousarray(digest).view(">u8").ravel().astype(np.uint64)


ROW_LABEL_END = "\x1e"  # ends a column's name in the canonical row text


def row_sha256_hex(names: list[str], texts: list[pa.Array | pa.ChunkedArray], use_native: bool = True) -> pa.Array:
    """sha256 hex of each row's canonical text: per column ``name U+001E`` then ``n`` (null) or ``v`` + its
    text, the columns joined by U+001F (docs/adr/0003). ``texts`` are the columns already as text.

    >>> import hashlib
    >>> got = row_sha256_hex(["a", "b"], [pa.array(["1"]), pa.array([None], pa.string())])
    >>> got[0].as_py() == hashlib.sha256("a\x1ev1\x1fb\x1en".encode()).hexdigest()
    True
    """
    arrays = [_utf8(t) for t in texts]
    n = len(arrays[0]) if arrays else 0
    lib = native() if use_native else None
    if lib is None or not n:
        parts = [pc.if_else(a.is_null(), pa.scalar(f"{name}{ROW_LABEL_END}n"),
                            pc.binary_join_element_wise(pa.scalar(f"{name}{ROW_LABEL_END}v"), a, ""))
                 for name, a in zip(names, arrays)]
        return sha256_hex(parts, use_native=False) if n else pa.array([], pa.string())
    labels = [(name + ROW_LABEL_END).encode() for name in names]
    blob, lens = b"".join(labels), np.array([len(x) for x in labels], np.int64)
    out = np.empty(n * 64, np.uint8)

    def run(start: int, stop: int) -> None:
        cols = _describe([a.slice(start, stop - start) for a in arrays])
        lib.row_hex(cols, len(arrays), stop - start, blob, lens.ctypes.data, out[start * 64:].ctypes.data)

    _in_pieces(n, run)
    return _hex_strings(out, n, 64)


def _prefixed(prefix: str, col: pa.Array | pa.ChunkedArray) -> pa.Array:
    return pc.binary_join_element_wise(pa.scalar(prefix), pc.fill_null(_utf8(col), ""), "")


def hmac_sha256_hex(values: pa.Array | pa.ChunkedArray, key: bytes, use_native: bool = True) -> pa.Array:
    """HMAC-SHA256 (RFC 2104) of each text value under ``key``, as hex; nulls stay null.

    >>> import hmac, hashlib, pyarrow as pa
    >>> got = hmac_sha256_hex(pa.array(["ann@example.com", None]), b"k")
    >>> got[0].as_py() == hmac.new(b"k", b"ann@example.com", hashlib.sha256).hexdigest()
    True
    >>> got[1].as_py() is None
    True
    """
    if len(key) > 64:
        import hashlib

        key = hashlib.sha256(key).digest()
    k = key.ljust(64, b"\0")
    lib = native() if use_native else None
    if lib is not None and len(values):
        return _native_hmac(lib, values, k)
    ipad = bytes(b ^ 0x36 for b in k)
    opad = bytes(b ^ 0x5C for b in k)
    tbl = _as_text([values])
    con = _connect()
    con.register("t", tbl)
    try:
        out = con.sql(
            "SELECT CASE WHEN p0 IS NULL THEN NULL ELSE sha256($o || unhex(sha256($i || encode(p0)))) END AS h FROM t",
            params={"o": opad, "i": ipad},
        ).to_arrow_table().column("h")
    finally:
        con.unregister("t")
    return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out
