"""RFC 6962 Merkle trees over edge rows, hashed in bulk (a C loop, else DuckDB sha256; no per-row Python).

Leaf bytes of an edge row (its canonical encoding): for each column of
:data:`lineage.edges.EDGE_SCHEMA` in order, ``"n"`` when null, else ``"v"`` followed by
the value as text (``at`` as integer microseconds since the epoch, ``rules`` as a
decimal integer), the fields joined by U+001F, UTF-8 encoded.
``leaf = sha256(0x00 || leaf bytes)``; ``node = sha256(0x01 || left || right)``;
an odd node at the end of a level is carried up unchanged, which gives exactly the
RFC 6962 ``MTH`` (the left subtree is always the largest power of two).

That text is leaf format 1 (ADR 0102): every segment before ADR 0114, and the segments of a writer
without the C loop. Segments written with it use leaf format 2 (:mod:`lineage.leaf2`); the nodes, the
root and :func:`chain` are the same for both.

>>> import hashlib
>>> a, b, c = (hashlib.sha256(b"\\x00" + x).digest() for x in (b"a", b"b", b"c"))
>>> ab = hashlib.sha256(b"\\x01" + a + b).digest()
>>> root_of(np.frombuffer(a + b + c, np.uint8).reshape(3, 32)) == hashlib.sha256(b"\\x01" + ab + c).digest()
True
>>> chain(bytes(32), bytes(32)).hex()[:16]
'f5a5fd42d16a2030'
"""

from __future__ import annotations

import ctypes
import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from lineage import native
from lineage.edges import EDGE_SCHEMA, conform, plain

EMPTY_ROOT = hashlib.sha256(b"").digest()  # RFC 6962: MTH({}) = SHA-256()
_SMALL = 256  # below this many pairs, hashlib is cheaper than a DuckDB round trip
SPLIT = 200_000  # from this many edges, the C loop runs on two threads


def _connect() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()  # all cores: hashing is the floor of capture


def canonical_sql() -> str:
    """The SQL text expression of a row's leaf bytes (see the module docstring)."""
    parts = []
    for f in EDGE_SCHEMA:
        q = f'"{f.name}"'
        val = f"epoch_us({q})::VARCHAR" if pa.types.is_timestamp(f.type) else f"{q}::VARCHAR"
        parts.append(f"coalesce('v' || {val}, 'n')")
    return "concat_ws(chr(31), " + ", ".join(parts) + ")"


_HEX = np.zeros(256, np.uint8)
_HEX[np.frombuffer(b"0123456789abcdef", np.uint8)] = np.arange(16, dtype=np.uint8)


def _digests(col: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """``(n, 32)`` uint8 from DuckDB's ``sha256`` output (64 lower-case hex characters each), decoded in numpy."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if len(arr) == 0:
        return np.zeros((0, 32), np.uint8)
    if not pa.types.is_binary(arr.type):
        arr = arr.cast(pa.binary())
    offsets = np.frombuffer(arr.buffers()[1], np.int32)[arr.offset: arr.offset + len(arr) + 1]
    if not np.all(np.diff(offsets) == 64):
        raise ValueError("expected 64 hex characters per digest")
    nib = _HEX[np.frombuffer(arr.buffers()[2], np.uint8)[offsets[0]: offsets[-1]].reshape(len(arr), 64)]
    return (nib[:, 0::2] << 4) | nib[:, 1::2]


def address(buf: pa.Buffer | None) -> int | None:
    return None if buf is None else buf.address


@dataclass
class HexTarget:
    """A hex id column the C leaf loop decodes in the same pass: ``out`` holds ``width // 2`` bytes per row
    of the whole table; ``bad`` is set when a value was not lower-case hex of ``width`` characters."""

    width: int
    out: np.ndarray
    bad: bool = False


def _same_bytes(arr: pa.Array) -> bytes | None:
    """A column's marker and value when they are the same in every row of the batch: all null → ``n``; a
    one-entry dictionary without nulls (a constant, lineage.edges.CONST_TEXT) → ``v`` + the entry; an integer
    or time column of one value without nulls (the edges' ``at``) → ``v`` + its decimal text. Else None.

    >>> _same_bytes(pa.nulls(3, pa.string())), _same_bytes(pa.array(["a", "a"])), _same_bytes(pa.array(["a"]).dictionary_encode())
    (b'n', None, b'va')
    >>> _same_bytes(pa.array([-5, -5], pa.int64())), _same_bytes(pa.array([1, 2], pa.int64()))
    (b'v-5', None)
    """
    n = len(arr)
    if arr.null_count == n:
        return b"n"
    if arr.null_count:
        return None
    if pa.types.is_dictionary(arr.type) and len(arr.dictionary) == 1:
        return b"v" + arr.dictionary[0].as_py().encode()
    if pa.types.is_int64(arr.type) or pa.types.is_timestamp(arr.type):  # 8-byte integers, as the C loop reads them
        values = np.frombuffer(arr.buffers()[1], np.int64)[arr.offset: arr.offset + n]
        if np.all(values == values[0]):
            return b"v" + str(int(values[0])).encode()
    return None


def fill_column(c: native.Column, arr: pa.Array, target: HexTarget | None = None, start: int = 0) -> None:
    """One Arrow array as the C loop's ``column`` struct (lineage/sha256_bulk.c): text (kind 0; with ``target``,
    its hex also decoded into ``target.out`` from row ``start`` on), text dictionary (2), fixed-width bytes (4,
    leaf format 2 only), 8-byte integers and times (1)."""
    bufs = arr.buffers()
    c.offset, c.validity = arr.offset, (address(bufs[0]) if arr.null_count else None)
    typ = arr.type
    if pa.types.is_string(typ):
        c.kind, c.offsets, c.data = 0, address(bufs[1]), address(bufs[2])
        if target is not None:
            c.hex_out, c.hex_width = target.out[start * (target.width // 2):].ctypes.data, target.width
    elif pa.types.is_dictionary(typ) and pa.types.is_string(typ.value_type) and pa.types.is_int32(typ.index_type):
        d = arr.dictionary  # a constant text column (lineage.edges.CONST_TEXT), or a file's dictionary
        if d.null_count:
            raise ValueError("a dictionary column with null entries")
        dbufs = d.buffers()
        c.kind, c.indices, c.data = 2, address(arr.indices.buffers()[1]), address(dbufs[2])
        c.offsets = dbufs[1].address + 4 * d.offset
    elif pa.types.is_fixed_size_binary(typ):
        c.kind, c.data, c.hex_width = 4, address(bufs[1]), typ.byte_width
    elif pa.types.is_int64(typ) or pa.types.is_timestamp(typ):
        c.kind, c.offsets, c.data = 1, None, address(bufs[1])
    else:
        raise ValueError(f"unexpected column type {typ} for a leaf")


def _native_leaves(lib, batch: pa.RecordBatch, out: np.ndarray, start: int = 0,
                   targets: dict[int, HexTarget] | None = None, use_ni: bool = True) -> None:
    """The C loop over one batch's Arrow buffers (lineage/sha256_bulk.c) into ``out``: the bytes of
    :func:`canonical_sql`; the columns of ``targets`` (by index) also decoded from hex, rows from ``start``.
    ``use_ni=False``: OpenSSL instead of the CPU's SHA instructions (the same leaves; for the tests).

    Neighbouring columns that are the same in every row (nulls, constants) are written out once, with their
    separators, and copied into each row as one piece (``kind 3``) instead of being looked at row by row."""
    targets = targets or {}
    specs: list[tuple[str, Any]] = []  # ("bytes", rendered piece) or ("column", index)
    for i, arr in enumerate(batch.columns):
        same = None if i in targets else _same_bytes(arr)
        if same is None:
            specs.append(("column", i))
            continue
        sep = b"\x1f" if i else b""
        if specs and specs[-1][0] == "bytes":
            specs[-1] = ("bytes", specs[-1][1] + sep + same)
        else:
            specs.append(("bytes", sep + same))
    cols = (native.Column * len(specs))()
    keep, where = [], {}  # the rendered pieces stay alive during the call; original index → struct
    for c, (what, v) in zip(cols, specs):
        if what == "bytes":
            piece = ctypes.create_string_buffer(v, len(v))
            keep.append(piece)
            c.kind, c.offset, c.data = 3, len(v), ctypes.addressof(piece)
            continue
        where[v] = c
        fill_column(c, batch.column(v), targets.get(v), start)
    if lib.leaf_hashes_with(cols, len(specs), batch.num_rows, out.ctypes.data, int(use_ni)) != 0:
        raise ValueError("unexpected column type for the C leaf hashes")
    for i, t in targets.items():
        t.bad = t.bad or bool(where[i].hex_bad)


def pieces(edges: pa.Table) -> list[tuple[int, pa.RecordBatch]]:
    """(first row, batch) covering the table without copying; big batches halved for two threads."""
    out, start = [], 0
    for b in edges.to_batches():
        cut = [b] if b.num_rows < SPLIT else [b.slice(0, b.num_rows // 2), b.slice(b.num_rows // 2)]
        for p in cut:
            out.append((start, p))
            start += p.num_rows
    return out


def _hex_width(col: pa.ChunkedArray) -> int | None:
    """The character width of the column's first value, when it can be a hex id column (even, not 0)."""
    if not pa.types.is_string(col.type):
        return None
    for arr in col.chunks:
        if arr.null_count == len(arr):
            continue
        first = 0 if arr.null_count == 0 else int(np.argmax(np.asarray(arr.is_valid())))
        offsets = np.frombuffer(arr.buffers()[1], np.int32)
        width = int(offsets[arr.offset + first + 1] - offsets[arr.offset + first])
        return width if width and width % 2 == 0 else None
    return None  # all null: stays text (nothing to gain)


def binary_column(col: pa.ChunkedArray, t: HexTarget) -> pa.ChunkedArray:
    """The decoded bytes as ``fixed_size_binary(width / 2)``, chunked like ``col``, nulls kept."""
    w, chunks, start = t.width // 2, [], 0
    data = pa.py_buffer(t.out)
    for arr in col.chunks:
        n = len(arr)
        validity = arr.is_valid().buffers()[1] if arr.null_count else None  # a fresh bitmap at offset 0
        chunks.append(pa.FixedSizeBinaryArray.from_buffers(pa.binary(w), n, [validity, data.slice(start * w, n * w)],
                                                           null_count=arr.null_count))
        start += n
    return pa.chunked_array(chunks, pa.binary(w))


def hex_targets(edges: pa.Table, hex_columns: tuple[str, ...], take) -> dict[int, HexTarget]:
    """Column index → where its hex is decoded to, for the ``hex_columns`` of ``edges`` that can be hex ids
    (``take(key, nbytes)`` gives the buffers)."""
    targets = {}
    for name in hex_columns:
        i = edges.schema.get_field_index(name)
        width = _hex_width(edges.column(i)) if i >= 0 else None
        if width is not None:
            targets[i] = HexTarget(width, take(name, edges.num_rows * (width // 2)))
    return targets


def leaf_hashes(edges: pa.Table) -> np.ndarray:
    """``(n, 32)`` uint8: the RFC 6962 leaf hash of each edge row, in row order."""
    return hash_and_decode(edges)[0]


class Scratch:
    """Output buffers kept for the next segment a thread hashes: a fresh buffer costs its page faults (and
    the kernel zeroing its pages) every time, ~1 ms per MB on the bench machine, more than the hashing of
    the ids it holds. Whoever passes one to :func:`hash_and_decode` must be done with the results before
    passing it again (``lineage.segment_put.put_segment`` is: both files are written when it returns).

    >>> s = Scratch(); a = s.take("leaves", 64); b = s.take("leaves", 32)
    >>> a.base is b.base or a.base is b, len(b)
    (True, 32)
    """

    def __init__(self) -> None:
        self._bufs: dict[str, np.ndarray] = {}

    def take(self, key: str, nbytes: int) -> np.ndarray:
        buf = self._bufs.get(key)
        if buf is None or len(buf) < nbytes:
            buf = self._bufs[key] = np.empty(nbytes, np.uint8)
        return buf[:nbytes]


def hash_and_decode(edges: pa.Table, hex_columns: tuple[str, ...] = (),
                    scratch: Scratch | None = None) -> tuple[np.ndarray, dict[str, pa.ChunkedArray]]:
    """:func:`leaf_hashes`, and the ``hex_columns`` whose every value is lower-case hex of one even width as
    ``fixed_size_binary`` (decoded by the C loop while it reads them for the leaves; docs/adr/0110).

    A column missing from the dict (not hex, mixed widths, all null, or no C loop) is left to the caller.
    ``scratch``: the results are written into its buffers (see :class:`Scratch`) instead of fresh ones.
    """
    edges = conform(edges)
    lib = native.load()
    if lib is None or not edges.num_rows:
        return duckdb_leaf_hashes(edges), {}
    n = edges.num_rows
    take = scratch.take if scratch is not None else (lambda key, nbytes: np.empty(nbytes, np.uint8))
    out = take("leaves", n * 32).reshape(n, 32)
    targets = hex_targets(edges, hex_columns, take)
    parts = pieces(edges)
    piece_targets = [{i: HexTarget(t.width, t.out) for i, t in targets.items()} for _ in parts]

    def run(k: int) -> None:
        start, batch = parts[k]
        _native_leaves(lib, batch, out[start: start + batch.num_rows], start, piece_targets[k])

    if n < SPLIT:
        for k in range(len(parts)):
            run(k)
    else:
        with ThreadPoolExecutor(2) as pool:  # ctypes releases the GIL: two cores
            list(pool.map(run, range(len(parts))))
    decoded = {edges.schema.field(i).name: binary_column(edges.column(i), t) for i, t in targets.items()
               if not any(pt[i].bad for pt in piece_targets)}
    return out, decoded


def duckdb_leaf_hashes(edges: pa.Table) -> np.ndarray:
    """:func:`leaf_hashes` computed by DuckDB (no C loop): the fallback, and the reference in tests."""
    con = _connect()
    con.register("e", plain(edges))
    out = con.sql(f"SELECT sha256('\\x00'::BLOB || encode({canonical_sql()})) AS h FROM e").to_arrow_table()
    return _digests(out.column("h"))


def _level(nodes: np.ndarray, con: duckdb.DuckDBPyConnection | None, lib=None) -> np.ndarray:
    m = len(nodes) // 2
    if lib is not None:
        pairs = np.ascontiguousarray(nodes[: 2 * m])
        up = np.empty((m + len(nodes) % 2, 32), np.uint8)  # an odd last node is carried up unchanged
        if m < SPLIT:
            lib.node_hashes(pairs.ctypes.data, m, up.ctypes.data)
        else:  # big levels on two threads (ctypes releases the GIL); the halves are independent pairs
            h = m // 2
            with ThreadPoolExecutor(2) as pool:
                list(pool.map(lambda r: lib.node_hashes(pairs[2 * r[0]:].ctypes.data, r[1] - r[0],
                                                        up[r[0]:].ctypes.data), [(0, h), (h, m)]))
        up[m:] = nodes[2 * m:]
        return up
    msgs = np.empty((m, 65), np.uint8)
    msgs[:, 0] = 1
    msgs[:, 1:] = nodes[: 2 * m].reshape(m, 64)
    if m < _SMALL:
        up = np.frombuffer(b"".join(hashlib.sha256(r.tobytes()).digest() for r in msgs), np.uint8).reshape(m, 32)
    else:
        offs = pa.py_buffer(np.arange(0, 65 * (m + 1), 65, dtype=np.int32).tobytes())
        arr = pa.Array.from_buffers(pa.binary(), m, [None, offs, pa.py_buffer(msgs.tobytes())])
        con.register("m", pa.table({"m": arr}))
        up = _digests(con.sql("SELECT sha256(m) AS h FROM m").to_arrow_table().column("h"))
    return np.vstack([up, nodes[2 * m:]]) if len(nodes) % 2 else up


def root_of(leaves: np.ndarray, use_native: bool = True) -> bytes:
    """The Merkle tree head over ``(n, 32)`` leaf hashes (``use_native=False``: DuckDB only)."""
    if len(leaves) == 0:
        return EMPTY_ROOT
    lib = native.load() if use_native else None
    con = None if lib is not None else _connect()
    nodes = leaves
    while len(nodes) > 1:
        nodes = _level(nodes, con, lib)
    return nodes[0].tobytes()


def chain(previous: bytes, root: bytes) -> bytes:
    """The chained root: ``sha256(previous chained root || this segment's Merkle root)``."""
    return hashlib.sha256(previous + root).digest()


def first_mismatch(expected: np.ndarray, actual: np.ndarray) -> int | None:
    """Index of the first leaf that differs (a missing or extra row counts), or None."""
    n = min(len(expected), len(actual))
    diff = np.nonzero(np.any(expected[:n] != actual[:n], axis=1))[0]
    if len(diff):
        return int(diff[0])
    return None if len(expected) == len(actual) else n
