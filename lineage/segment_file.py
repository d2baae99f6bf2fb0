"""The segment file: edge rows as Parquet, with the random hex id columns stored as their bytes.

The edges themselves (``lineage.edges.EDGE_SCHEMA``, the leaf text of ADR 0102, every query and
export) always carry ids as lower-case hex text. Only the *file* differs (docs/adr/0107): a column
of :data:`ID_COLUMNS` whose values in a chunk are all lower-case hex of one even width is written as
``fixed_size_binary`` (half the bytes, no compression — random bytes do not compress — no
dictionary, no statistics); any other column, or an id column holding anything else (``r1``, upper
case, mixed widths), stays text, lz4 (zstd before 2026-12-02; both read). Reading turns every ``fixed_size_binary`` column
back into the same hex text, so files written before this format read unchanged, and the leaves
recomputed by ``verify`` are those of the text that was hashed at append time.

A segment of leaf format 2 (lineage/leaf2.py, ADR 0114) also leaves its constant columns out of the file
(they are in its metadata, put back by :func:`from_file`); its leaves hash the id columns as the bytes
the file stores.

>>> import pyarrow as pa
>>> from lineage.edges import build, plain
>>> e = build(3, "received", record_id=pa.array(["00ff", None, "a1b2"]), payload_hash=pa.array(["x", "y", None]))
>>> f = to_file(e)
>>> f.schema.field("record_id").type, f.schema.field("payload_hash").type
(FixedSizeBinaryType(fixed_size_binary[2]), DataType(string))
>>> from_file(f).column("record_id").to_pylist()
['00ff', None, 'a1b2']
>>> read(write(e)).equals(plain(e))  # constants (one-entry dictionaries) come back as plain text
True
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lineage import leaf2, native

# hex ids and hashes: record ids (32 hex), payload hashes and subject HMACs (64 hex)
ID_COLUMNS = ("record_id", "input_record_id", "payload_hash", "subject")
# dictionary-encode only the columns with few distinct values (ids and hashes would just waste the attempt)
LOW_CARDINALITY = ("step", "load_id", "source_system", "stream", "spec_id", "spec_version", "rules", "reason",
                   "destination", "entity", "at")
WRITE_BATCH = 16_384  # values the Parquet writer takes at a time (its default 1,024 costs ~10 % more CPU here)
_PIECE = 1 << 20  # rows per decoded chunk: keeps 32-bit string offsets far from overflowing

_NIBBLE = np.full(256, 255, np.uint8)
_NIBBLE[np.frombuffer(b"0123456789abcdef", np.uint8)] = np.arange(16, dtype=np.uint8)
_DIGITS = np.frombuffer(b"0123456789abcdef", np.uint8)


def _decode_hex(chars: np.ndarray) -> np.ndarray | None:
    """Bytes of lower-case hex characters (``len(chars)`` even), or None if any is not lower-case hex."""
    n = len(chars) // 2
    out = np.empty(n, np.uint8)
    lib = native.load()
    if lib is not None:
        chars = np.ascontiguousarray(chars)
        return out if lib.hex_decode(chars.ctypes.data, n, out.ctypes.data) < 0 else None
    nib = _NIBBLE[chars]
    if n and nib.max() == 255:
        return None
    return (nib[0::2] << 4) | nib[1::2]


def _encode_hex(data: np.ndarray) -> np.ndarray:
    out = np.empty(2 * len(data), np.uint8)
    lib = native.load()
    if lib is not None:
        data = np.ascontiguousarray(data)
        lib.hex_encode(data.ctypes.data, len(data), out.ctypes.data)
        return out
    out[0::2], out[1::2] = _DIGITS[data >> 4], _DIGITS[data & 15]
    return out


def _validity(arr: pa.Array) -> pa.Buffer | None:
    return arr.is_valid().buffers()[1] if arr.null_count else None  # a fresh bitmap at offset 0


def hex_to_binary(arr: pa.Array) -> pa.Array | str | None:
    """One text chunk as ``fixed_size_binary(width)``; ``"null"`` when every value is null; None when
    the values are not all lower-case hex of one even width (the chunk then stays text)."""
    n = len(arr)
    if arr.null_count == n:
        return "null"
    if not pa.types.is_string(arr.type):
        return None
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], np.int32)[arr.offset: arr.offset + n + 1]
    lens = np.diff(offsets)
    chars = np.frombuffer(bufs[2], np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    if arr.null_count == 0:
        width = int(lens[0])
        if width == 0 or width % 2 or not np.all(lens == width):
            return None
        dec = _decode_hex(chars[offsets[0]: offsets[-1]])
        if dec is None:
            return None
        return pa.FixedSizeBinaryArray.from_buffers(pa.binary(width // 2), n, [None, pa.py_buffer(dec)])
    valid = np.asarray(arr.is_valid(), dtype=bool)
    width = int(lens[valid][0])
    if width == 0 or width % 2 or not np.all(lens[valid] == width):
        return None
    if np.all(lens[~valid] == 0):  # the usual layout: null slots hold no characters
        dec = _decode_hex(chars[offsets[0]: offsets[-1]])
        if dec is None:
            return None
        full = np.zeros((n, width // 2), np.uint8)
        full[valid] = dec.reshape(-1, width // 2)
        dec = full.reshape(-1)
    elif np.all(lens == width):  # null slots padded to the width (e.g. text decoded from a file)
        dec = _decode_hex(chars[offsets[0]: offsets[-1]])
        if dec is None:
            return None
    else:
        return None
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(width // 2), n, [_validity(arr), pa.py_buffer(dec)],
                                                null_count=arr.null_count)


def binary_to_hex(arr: pa.Array) -> pa.ChunkedArray:
    """A ``fixed_size_binary`` chunk as lower-case hex text (null stays null)."""
    w = arr.type.byte_width
    pieces = []
    for start in range(0, max(len(arr), 1), _PIECE):
        part = arr.slice(start, _PIECE)
        n = len(part)
        data = np.frombuffer(part.buffers()[1], np.uint8)[part.offset * w: (part.offset + n) * w] \
            if part.buffers()[1] is not None else np.zeros(n * w, np.uint8)
        if len(data) < n * w:  # an all-null chunk may come without its zero bytes
            data = np.zeros(n * w, np.uint8)
        offsets = np.arange(0, 2 * w * (n + 1), 2 * w, dtype=np.int32)
        pieces.append(pa.Array.from_buffers(pa.string(), n, [_validity(part), pa.py_buffer(offsets),
                                                            pa.py_buffer(_encode_hex(data))],
                                            null_count=part.null_count))
    return pa.chunked_array(pieces, pa.string())


def _encode_column(col: pa.ChunkedArray) -> pa.ChunkedArray | None:
    chunks = [hex_to_binary(c) for c in col.chunks]
    if any(c is None for c in chunks):
        return None
    widths = {c.type.byte_width for c in chunks if not isinstance(c, str)}
    if len(widths) != 1:  # all null (nothing to gain) or widths that differ between chunks
        return None
    typ = pa.binary(widths.pop())
    return pa.chunked_array([_nulls(len(src), typ) if isinstance(c, str) else c
                             for c, src in zip(chunks, col.chunks)], typ)


def _nulls(n: int, typ: pa.DataType) -> pa.Array:
    """An all-null ``fixed_size_binary`` chunk on zeroed buffers (``pa.nulls`` fills them byte by byte)."""
    zeros = np.zeros(max(n * typ.byte_width, (n + 7) // 8), np.uint8)  # lazily zeroed pages
    buf = pa.py_buffer(zeros)
    return pa.FixedSizeBinaryArray.from_buffers(typ, n, [buf, buf], null_count=n)


def to_file(edges: pa.Table, decoded: dict[str, pa.ChunkedArray] | None = None,
            leaf_constants: dict[str, Any] | None = None) -> pa.Table:
    """The table as written: hex id columns as bytes where that is lossless (see the module docstring).

    ``decoded``: id columns already turned into bytes by the C leaf loop (``merkle.hash_and_decode``),
    used as they are; the others are decoded here. ``leaf_constants``: a format-2 segment (lineage/leaf2.py,
    docs/adr/0114) — its constant columns are left out (they are in the file's metadata) and exactly the
    ``decoded`` columns become bytes (its leaves hashed those as bytes, every other column as text).
    """
    if leaf_constants is not None:
        edges = edges.drop_columns(list(leaf_constants))
    for name in ID_COLUMNS:
        if name in edges.column_names:
            enc = (decoded or {}).get(name)
            if enc is None and leaf_constants is None:
                enc = _encode_column(edges.column(name))
            if enc is not None:
                edges = edges.set_column(edges.schema.get_field_index(name), name, enc)
    if leaf_constants is not None:
        edges = edges.replace_schema_metadata(leaf2.meta(leaf_constants))
    return edges


def from_file(table: pa.Table) -> pa.Table:
    """The edge table of a file: a format-2 file's constants back as columns (ADR 0114), every
    ``fixed_size_binary`` column back to its hex text, every dictionary column (a constant,
    ``lineage.edges.CONST_TEXT``) back to plain text."""
    consts = leaf2.read_meta(table.schema.metadata)
    if consts is not None:
        table = leaf2.with_constants(table, consts)
    for i, f in enumerate(table.schema):
        if pa.types.is_dictionary(f.type):
            table = table.set_column(i, f.name, table.column(i).cast(f.type.value_type))
        elif pa.types.is_fixed_size_binary(f.type):
            col = table.column(i)
            chunks = [c for ch in col.chunks for c in binary_to_hex(ch).chunks] or [pa.array([], pa.string())]
            table = table.set_column(i, f.name, pa.chunked_array(chunks, pa.string()))
    return table


def write(edges: pa.Table, sink: Any = None, decoded: dict[str, pa.ChunkedArray] | None = None,
          leaf_constants: dict[str, Any] | None = None) -> pa.Buffer | None:
    """Parquet of ``edges``: binary id columns uncompressed, the rest lz4; an Arrow buffer (bytes-like, not
    copied into a ``bytes``), or into ``sink``. ``decoded``, ``leaf_constants``: see :func:`to_file`."""
    t = to_file(edges, decoded, leaf_constants)
    binary = {f.name for f in t.schema if pa.types.is_fixed_size_binary(f.type)}
    # lz4, not zstd, for the rest: ~60 ms less per million edges for ~7 % more bytes (ADR 0107)
    compression = {name: ("none" if name in binary else "lz4") for name in t.column_names}
    low = [c for c in LOW_CARDINALITY if c in t.column_names]  # min/max of random ids helps no reader
    # an Arrow buffer, not io.BytesIO: the writer's page writes need neither the GIL nor a growing copy
    out = sink if sink is not None else pa.BufferOutputStream()
    # 16 k values per internal write batch instead of 1 k: ~10 % less CPU, pages still near 1 MB (ADR 0110)
    pq.write_table(t, out, compression=compression, use_dictionary=low, write_statistics=low, write_batch_size=WRITE_BATCH)
    return out.getvalue() if sink is None else None


def read_raw(data: bytes | pa.Buffer) -> pa.Table:
    """The file's table as written (for :func:`from_file`, or a derived segment: lineage/derived.py)."""
    return pq.read_table(pa.BufferReader(data))


def read(data: bytes | pa.Buffer) -> pa.Table:
    return from_file(read_raw(data))
