"""Leaf format 2 (docs/adr/0114): ids as their bytes; a segment's constant columns kept and hashed once.

A format-2 segment file holds only the columns that vary in the segment. The others — every column the
writer found constant (all null, or one value), except ``record_id`` — are its *constants*, kept in the
Parquet key-value metadata (:data:`META_KEY`: JSON ``{"format": 2, "constants": {column: value}}``, text as
text, ``rules`` and ``at`` as integers, ``at`` in microseconds). The leaf bytes of a row are::

    0x00 || enc(constants, schema order) || zero bytes up to a multiple of 64 || enc(the row's columns)

(no padding without constants), where ``enc`` of one value is ``n`` when null, else ``v`` and: text as its
LEB128 byte length and UTF-8 bytes; ``rules`` and ``at`` as 8 bytes little-endian; a column stored as
``fixed_size_binary`` in the file (the hex ids, ADR 0107) as its bytes. ``leaf = sha256(leaf bytes)``,
nodes as RFC 6962. Every value is self-delimiting, so the bytes are unambiguous. Since the padded prefix
is whole SHA-256 blocks, the C loop compresses it once per segment and then only each row's own bytes:
a mapped edge is 2 blocks instead of ~5; and the file writes a constant once instead of once per row.

:func:`reference_leaves` is the definition in plain Python (hashlib, one row at a time): the tests' oracle
and how ``verify`` reads format 2 where the C loop cannot be built (writers there keep format 1).

>>> import pyarrow as pa
>>> t = pa.table({"step": pa.array(["mapped", "mapped"]).dictionary_encode(), "rules": pa.array([1, 1]),
...               "record_id": pa.array(["00", "00"])})
>>> constants(t)
{'step': 'mapped', 'rules': 1}
>>> _value(pa.binary(2), b"\\x01\\x02"), _value(pa.string(), "ab"), _value(pa.string(), None)
(b'v\\x01\\x02', b'v\\x02ab', b'n')
>>> len(head({"step": "mapped", "rules": 1}))
64
"""

from __future__ import annotations

import ctypes
import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa

from lineage import native
from lineage.edges import EDGE_SCHEMA, constant_array
from lineage.merkle import SPLIT, HexTarget, binary_column, fill_column, hex_targets, pieces

META_KEY = b"weftline.leaf"
FORMAT = 2
_TYPES = {f.name: f.type for f in EDGE_SCHEMA}
_KEEP = "record_id"  # always a column of the file: it holds the row count (Parquet needs one column)


def meta(consts: dict[str, Any]) -> dict[bytes, bytes]:
    """The Parquet key-value metadata of a format-2 segment with these constants."""
    return {META_KEY: json.dumps({"format": FORMAT, "constants": consts}, ensure_ascii=False).encode()}


def read_meta(metadata: dict[bytes, bytes] | None) -> dict[str, Any] | None:
    """The constants of a format-2 file from its schema metadata; None for a format-1 file (no key). Raises
    ValueError when the metadata is not what a writer writes.

    >>> read_meta(meta({"step": "mapped", "rules": None})), read_meta(None)
    ({'step': 'mapped', 'rules': None}, None)
    """
    raw = (metadata or {}).get(META_KEY)
    if raw is None:
        return None
    doc = json.loads(raw)
    consts = doc.get("constants") if isinstance(doc, dict) else None
    if doc.get("format") != FORMAT or not isinstance(consts, dict):
        raise ValueError(f"unknown leaf format {doc.get('format')!r}")
    for name, v in consts.items():
        typ = _TYPES.get(name)
        ok = v is None or (isinstance(v, str) if pa.types.is_string(typ or pa.null()) else
                           isinstance(v, int) and not isinstance(v, bool))
        if typ is None or name == _KEEP or not ok:
            raise ValueError(f"leaf constants: {name!r} is not a constant edge column of its type")
    return consts


def _leb128(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _value(typ: pa.DataType, v: Any) -> bytes:
    if v is None:
        return b"n"
    if pa.types.is_fixed_size_binary(typ):
        return b"v" + v
    if pa.types.is_integer(typ) or pa.types.is_timestamp(typ):
        return b"v" + int(v).to_bytes(8, "little", signed=True)
    data = v.encode()
    return b"v" + _leb128(len(data)) + data


def _plain_type(typ: pa.DataType) -> pa.DataType:
    return typ.value_type if pa.types.is_dictionary(typ) else typ


def _values(arr: pa.Array | pa.ChunkedArray) -> list:
    """Python values of a column as :func:`_value` reads them (times as integer microseconds)."""
    if pa.types.is_timestamp(_plain_type(arr.type)):
        arr = arr.cast(pa.int64())
    return arr.to_pylist()


def head(consts: dict[str, Any]) -> bytes:
    """``0x00`` and the constants' encoded values in schema order, zero-padded to whole 64-byte blocks;
    b"" without constants (the C loop then starts each row with 0x00 itself)."""
    if not consts:
        return b""
    body = b"\x00" + b"".join(_value(f.type, consts[f.name]) for f in EDGE_SCHEMA if f.name in consts)
    return body + bytes((-len(body)) % 64)


def _constant(col: pa.ChunkedArray) -> bool:
    """All null, or one value without nulls, judged from the buffers (no per-row Python): a one-entry
    dictionary (lineage.edges.CONST_TEXT), text of one value, or an 8-byte integer / time column of one value."""
    n = len(col)
    if n == 0 or col.null_count == n:
        return True
    if col.null_count:
        return False
    typ = col.type
    if pa.types.is_dictionary(typ):
        firsts = set()
        for c in col.chunks:
            if len(c) == 0:
                continue
            if len(c.dictionary) != 1:
                return False
            firsts.add(c.dictionary[0].as_py())
        return len(firsts) == 1
    if pa.types.is_string(typ):
        return _same_text(col)
    if pa.types.is_int64(typ) or pa.types.is_timestamp(typ):
        first = None
        for c in col.chunks:
            if len(c) == 0:
                continue
            v = np.frombuffer(c.buffers()[1], np.int64)[c.offset: c.offset + len(c)]
            first = v[0] if first is None else first
            if not np.all(v == first):
                return False
        return True
    return False


def _same_text(col: pa.ChunkedArray) -> bool:
    """A text column without nulls of one value: a few sampled rows first (random ids differ there at once),
    then the lengths, then every byte."""
    first = None
    for c in col.chunks:
        n = len(c)
        if n == 0:
            continue
        offsets = np.frombuffer(c.buffers()[1], np.int32)[c.offset: c.offset + n + 1]
        data = np.frombuffer(c.buffers()[2], np.uint8) if c.buffers()[2] is not None else np.zeros(0, np.uint8)
        width = int(offsets[1] - offsets[0])
        if first is None:
            first = data[offsets[0]: offsets[0] + width]
        for k in range(0, n, max(n // 16, 1)):  # ~16 rows: random ids are told apart here, before any full pass
            if not np.array_equal(data[offsets[k]: offsets[k + 1]], first):
                return False
        if not np.all(np.diff(offsets) == width):
            return False
        if width and not (data[offsets[0]: offsets[-1]].reshape(n, width) == first).all():
            return False
    return True


def constants(edges: pa.Table) -> dict[str, Any]:
    """The columns of ``edges`` that are the same in every row, with their value (the writer's constants);
    never ``record_id``."""
    return {name: _values(col.slice(0, 1))[0] if len(col) else None
            for name, col in zip(edges.column_names, edges.columns) if name != _KEEP and _constant(col)}


def with_constants(table: pa.Table, consts: dict[str, Any]) -> pa.Table:
    """A format-2 file's table with its constants back as columns, in :data:`EDGE_SCHEMA` order (text
    constants as one-entry dictionaries, lineage.edges.CONST_TEXT)."""
    _check_columns(table, consts)
    n = table.num_rows
    cols, fields = [], []
    for f in EDGE_SCHEMA:
        col = constant_array(consts[f.name], n, f.type) if f.name in consts else table.column(f.name)
        cols.append(col)
        fields.append(pa.field(f.name, col.type))
    return pa.table(cols, schema=pa.schema(fields))


def _check_columns(table: pa.Table, consts: dict[str, Any]) -> None:
    expected = [n for n in EDGE_SCHEMA.names if n not in consts]
    if table.column_names != expected:
        raise ValueError(f"a format-2 segment holds the columns {expected}, not {table.column_names}")


def reference_leaves(table: pa.Table, consts: dict[str, Any]) -> np.ndarray:
    """``(n, 32)`` leaves by the definition above, one row at a time in Python (``table``: the file's columns)."""
    _check_columns(table, consts)
    lead = head(consts) or b"\x00"
    cols = [(_plain_type(table.schema.field(i).type), _values(table.column(i))) for i in range(table.num_columns)]
    out = np.empty((table.num_rows, 32), np.uint8)
    for i in range(table.num_rows):
        body = b"".join(_value(typ, vals[i]) for typ, vals in cols)
        out[i] = np.frombuffer(hashlib.sha256(lead + body).digest(), np.uint8)
    return out


def _native(lib, batch: pa.RecordBatch, out: np.ndarray, lead: bytes, targets: dict[int, HexTarget], start: int,
            use_ni: bool) -> list[int]:
    """The C loop over one batch, rows ``start`` on (its columns in order after ``lead``, the rendered constants);
    the ``targets`` columns' hex also decoded. Returns the targets whose hex was bad."""
    cols = (native.Column * max(batch.num_columns, 1))()
    for i, c in enumerate(cols[: batch.num_columns]):
        fill_column(c, batch.column(i), targets.get(i), start)
    buf = ctypes.create_string_buffer(lead, max(len(lead), 1))
    if lib.leaf_hashes_v2(cols, batch.num_columns, batch.num_rows, out.ctypes.data, buf, len(lead), int(use_ni)):
        raise ValueError("unexpected column type for the C leaf hashes")
    return [i for i, c in enumerate(cols[: batch.num_columns]) if i in targets and c.hex_bad]


def _run(lib, table: pa.Table, out: np.ndarray, lead: bytes, targets: dict[int, HexTarget],
         use_ni: bool = True) -> set[int]:
    """Leaves of the whole table into ``out`` (two threads from SPLIT rows); the bad hex targets."""
    parts = pieces(table)

    def one(piece: tuple[int, pa.RecordBatch]) -> list[int]:
        start, batch = piece
        return _native(lib, batch, out[start: start + batch.num_rows], lead, targets, start, use_ni)

    if table.num_rows < SPLIT:
        bad = [one(p) for p in parts]
    else:
        with ThreadPoolExecutor(2) as pool:  # ctypes releases the GIL: two cores
            bad = list(pool.map(one, parts))
    return {i for b in bad for i in b}


def file_leaves(table: pa.Table, consts: dict[str, Any], use_ni: bool = True) -> np.ndarray:
    """The leaves of a format-2 file's rows (``table`` as read: its columns, ids as ``fixed_size_binary``)."""
    _check_columns(table, consts)
    lib = native.load()
    if lib is None:
        return reference_leaves(table, consts)
    out = np.empty((table.num_rows, 32), np.uint8)
    if table.num_rows:
        _run(lib, table, out, head(consts), {}, use_ni)
    return out


def hash_and_decode(edges: pa.Table, hex_columns: tuple[str, ...], take, use_ni: bool = True
                    ) -> tuple[np.ndarray, dict[str, pa.ChunkedArray], dict[str, Any]] | None:
    """The writer's pass (``edges`` conformed, ids as hex text): the leaves, the hex columns decoded to bytes in
    the same pass (as ``fixed_size_binary``, for the file), and the constants (the file leaves them out).
    ``take(key, nbytes)`` gives the buffers. None when the C loop cannot run here (the caller writes format 1)."""
    lib = native.load()
    n = edges.num_rows
    if lib is None or n == 0:
        return None
    consts = constants(edges)
    rest = edges.drop_columns(list(consts))
    out = take("leaves", n * 32).reshape(n, 32)
    targets = hex_targets(rest, hex_columns, take)
    lead = head(consts)
    while True:  # a hex column with a bad value is hashed as text (and written as text): hash again without it
        bad = _run(lib, rest, out, lead, targets, use_ni)
        if not bad:
            break
        targets = {i: t for i, t in targets.items() if i not in bad}
    decoded = {rest.schema.field(i).name: binary_column(rest.column(i), t) for i, t in targets.items()}
    return out, decoded, consts
