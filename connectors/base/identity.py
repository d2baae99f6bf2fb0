"""Stable record identity, stamped on whole Arrow batches.

A record id is the first 32 hex digits of
``sha256(source_system \\x1f stream \\x1f source_key \\x1f position)``:
the same record at the same source version always gets the same id, in any
process, so a replay deduplicates and lineage can point at it.

>>> import pyarrow as pa, hashlib
>>> t = pa.table({"id": [7, 8], "updated": ["2026-01-01", "2026-01-02"]})
>>> s = stamp(t, system="erp_sql", stream="orders", key=["id"], position="updated", load_id="L1")
>>> s.column(RECORD_ID)[0].as_py() == record_id("erp_sql", "orders", "7", "2026-01-01")
True
>>> s.column(LOAD_ID).to_pylist()
['L1', 'L1']
"""

from __future__ import annotations

import ctypes
import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectors.base.cbuild import load_library

from connectors.base.hashing import SEPARATOR, native, row_sha256_hex, sha256_hex
from connectors.base.reserved import (
    LOAD_ID,
    PAYLOAD_HASH,
    POSITION,
    RECEIVED_AT,
    RECEIVED_COLUMNS,
    RECORD_ID,
    SOURCE_KEY,
    SOURCE_SYSTEM,
    STREAM,
    is_reserved,
)
from connectors.errors import ConfigError

RECORD_ID_LENGTH = 32


def record_id(system: str, stream: str, source_key: str, position: str | None) -> str:
    """The record id for one record, computed in Python (for audits and tests)."""
    raw = SEPARATOR.join([system, stream, source_key, position or ""])
    return hashlib.sha256(raw.encode()).hexdigest()[:RECORD_ID_LENGTH]


_ISO_SOURCE = Path(__file__).with_name("timestamp_text.c")
_YEARS_0_9999_US = (-62_167_219_200_000_000, 253_402_300_799_999_999)


def timestamp_text(col: pa.ChunkedArray | pa.Array, use_native: bool = True) -> pa.Array:
    """Timestamps as ISO text, as Arrow's ``strftime("%Y-%m-%dT%H:%M:%S")`` writes them (for unit us:
    ``2026-01-01T00:00:01.000000``), through a C loop when it is built and the years are 0..9999.

    >>> from datetime import datetime
    >>> timestamp_text(pa.array([datetime(2026, 1, 2, 3, 4, 5, 6), None], pa.timestamp("us"))).to_pylist()
    ['2026-01-02T03:04:05.000006', None]
    """
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    utc = arr.type.tz in (None, "UTC", "+00:00", "Etc/UTC")  # Arrow writes other zones' local time
    lib = load_library(_ISO_SOURCE) if use_native and utc and arr.type.unit == "us" and len(arr) else None
    values = arr.cast(pa.int64()) if lib is not None else None
    lo, hi = (pc.min_max(values).values() if lib is not None else (None, None))
    if lib is None or (lo.is_valid and (lo.as_py() < _YEARS_0_9999_US[0] or hi.as_py() > _YEARS_0_9999_US[1])):
        return pc.strftime(arr, format="%Y-%m-%dT%H:%M:%S")  # Arrow's %S carries the fraction (us: 6 digits)
    n = len(values)
    ints = np.frombuffer(values.buffers()[1], np.int64)[values.offset: values.offset + n]
    ints = np.ascontiguousarray(ints)
    out = np.empty(n * 26, np.uint8)
    lib.iso_us.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
    lib.iso_us(ints.ctypes.data, n, out.ctypes.data)
    text = pa.StringArray.from_buffers(n, pa.py_buffer(np.arange(0, (n + 1) * 26, 26, dtype=np.int32)),
                                       pa.py_buffer(out))
    return pc.if_else(arr.is_valid(), text, pa.scalar(None, pa.string())) if arr.null_count else text


def _text(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    if pa.types.is_struct(col.type) or pa.types.is_list(col.type) or pa.types.is_map(col.type):
        raise ConfigError(f"a key or position column must be scalar, not {col.type}")
    text = value_text(col)
    return (col if text is None else text).cast(pa.string())


def key_text(table: pa.Table, key: list[str]) -> pa.Array:
    """The source key as text: one column as is, several joined by U+001F."""
    missing = [k for k in key if k not in table.column_names]
    if missing:
        raise ConfigError(f"key column(s) {missing} not in the batch (columns: {table.column_names})")
    cols = [_text(table.column(k)) for k in key]
    if len(cols) == 1:
        return pc.fill_null(cols[0], "")
    return pc.binary_join_element_wise(*[pc.fill_null(c, "") for c in cols], SEPARATOR)


def value_text(col: pa.ChunkedArray | pa.Array) -> pa.Array | pa.ChunkedArray | None:
    """A flat column as the text the payload hash reads (Arrow's casts; timestamps as ISO text), or
    None for a type that has no plain text (nested, binary): those rows hash their JSON instead.

    >>> import datetime as dt
    >>> [value_text(pa.array(v)).to_pylist() for v in ([1, None], [1.5], [True], [dt.date(2026, 1, 2)])]
    [['1', None], ['1.5'], ['true'], ['2026-01-02']]
    """
    t = col.type
    if pa.types.is_dictionary(t):
        return value_text(col.cast(t.value_type))
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return col
    if pa.types.is_null(t):
        return pa.nulls(len(col), pa.string())
    if pa.types.is_timestamp(t):
        return timestamp_text(col)
    if (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) or pa.types.is_boolean(t)
            or pa.types.is_date(t) or pa.types.is_time(t)):
        return col.cast(pa.string())
    return None


def payload_hash_of_rows(table: pa.Table) -> pa.Array:
    """sha256 of each row's canonical text, in bulk (docs/adr/0003): the non-reserved columns in name
    order, each as ``name U+001E`` + ``n`` (null) or ``v`` + its text, joined by U+001F. A row with a
    nested or binary column hashes its canonical JSON instead (DuckDB's ``to_json`` of the row).

    >>> t = pa.table({"b": [None], "a": [7]})
    >>> payload_hash_of_rows(t)[0].as_py() == hashlib.sha256("a\x1ev7\x1fb\x1en".encode()).hexdigest()
    True
    """
    names = sorted(c for c in table.column_names if not is_reserved(c))
    texts = [value_text(table.column(n)) for n in names]
    if names and all(t is not None for t in texts):
        return row_sha256_hex(names, texts)
    return _json_payload_hash(table)


def _json_payload_hash(table: pa.Table) -> pa.Array:
    """sha256 of each row's canonical JSON (DuckDB's to_json of the row struct), in bulk."""
    from connectors.base.hashing import _connect

    con = _connect()
    rel = "__wl_row"  # the row struct's name: a source column may well be called ``t``
    con.register(rel, table.select([c for c in table.column_names if not is_reserved(c)]))
    try:  # DuckDB writes the JSON text; the C loop (when built) hashes it: the same digests, ~2x sooner
        if native() is not None:
            return sha256_hex([con.sql(f"SELECT to_json({rel})::VARCHAR AS j FROM {rel}").to_arrow_table().column("j")])
        out = con.sql(f"SELECT sha256(to_json({rel})::VARCHAR) AS h FROM {rel}").to_arrow_table().column("h")
    finally:
        con.unregister(rel)
    return out.combine_chunks()


def stamp(
    table: pa.Table,
    *,
    system: str,
    stream: str,
    key: list[str] | None,
    position: str | None,
    load_id: str,
    payload_hash: pa.Array | None = None,
    received_at: datetime | None = None,
) -> pa.Table:
    """Add the received columns (see :mod:`connectors.base.reserved`) to a batch.

    ``key`` names the source key column(s); ``None`` uses the payload hash as key
    (an event with no natural key). ``position`` names the version/offset column,
    or ``None`` when the key alone identifies the version.
    """
    clash = [c for c in table.column_names if is_reserved(c)]
    if clash:
        raise ConfigError(f"source columns use the reserved prefix _wl_: {clash}")
    n = table.num_rows
    if payload_hash is None:
        payload_hash = payload_hash_of_rows(table) if n else pa.array([], pa.string())
    keys = key_text(table, key) if key else payload_hash
    pos = _text(table.column(position)) if position else pa.nulls(n, pa.string())
    const = lambda value, typ=pa.string(): pa.repeat(pa.scalar(value, typ), n)  # noqa: E731 (no per-row lists)
    ids = (sha256_hex([keys, pos], length=RECORD_ID_LENGTH, prefix=f"{system}{SEPARATOR}{stream}{SEPARATOR}")
           if n else pa.array([], pa.string()))
    when = received_at or datetime.now(timezone.utc)
    cols = {
        RECORD_ID: ids,
        SOURCE_SYSTEM: const(system),
        STREAM: const(stream),
        SOURCE_KEY: keys,
        POSITION: pos,
        PAYLOAD_HASH: payload_hash,
        RECEIVED_AT: const(when, pa.timestamp("us", tz="UTC")),
        LOAD_ID: const(load_id),
    }
    out = table
    for name in RECEIVED_COLUMNS:
        out = out.append_column(name, cols[name])
    return out


def with_load_id(table: pa.Table, load_id: str) -> pa.Table:
    """The stamped ``table`` with its ``_wl_load_id`` set to ``load_id`` (stamping can run before the
    load it will belong to is opened, e.g. while the source reads ahead).

    >>> t = stamp(pa.table({"id": [1]}), system="s", stream="t", key=["id"], position=None, load_id="?")
    >>> with_load_id(t, "L2").column(LOAD_ID).to_pylist()
    ['L2']
    """
    i = table.schema.get_field_index(LOAD_ID)
    return table.set_column(i, table.schema.field(i), pa.repeat(pa.scalar(load_id, pa.string()), table.num_rows))


def canonical_json(value: object) -> str:
    """Canonical JSON text of a payload (sorted keys, no spaces), for payload hashes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
