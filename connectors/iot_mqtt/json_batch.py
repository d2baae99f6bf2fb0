"""The fast path for JSON telemetry: a micro-batch of payloads parsed at once by Arrow's
JSON reader (C++, outside the GIL), event time and device id computed as Arrow kernels.

Returns ``None`` when the batch does not fit the fast path (a bad or non-object payload, a
payload spanning lines, clashing types, an odd time field): the caller then decodes message
by message, which quarantines exactly the bad ones.

>>> from connectors.iot_mqtt.config import TopicRoute
>>> from connectors.iot_mqtt.decode import Message
>>> r = TopicRoute("devices/+/telemetry", "telemetry")
>>> ms = [Message("devices/d1/telemetry", b'{"ts": 1700000000, "temp": 20.5}', 1, False, False, 1, 5),
...       Message("devices/d2/telemetry", b'{"temp": 21}', 1, False, False, 2, 6)]
>>> t = json_table(r, [(m, "h") for m in ms])
>>> t.column("device_id").to_pylist(), t.column("event_time").cast("int64").to_pylist()
(['d1', 'd2'], [1700000000000, 6])
>>> json_table(r, [(Message("devices/d1/telemetry", b'{"ts": ', 1, False, False, 1, 5), "h")]) is None
True
"""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as paj

from connectors.iot_mqtt.records import JSON_MESSAGE, TS

TIME_FIELDS = ("timestamp", "ts", "time", "event_time")


def _ms(col: pa.ChunkedArray) -> pa.Array | None:
    """A time column as epoch ms (int64): numbers (ms if > 1e11, else seconds), timestamps, or ISO 8601 text
    with a zone offset (``Z``, ``+01:00``; Arrow's reader already gives zone-less ISO text as timestamps); None
    for anything else (the message-by-message path quarantines a bad value).

    >>> _ms(pa.chunked_array([["2026-12-03T12:00:00.9999+01:00", None]])).to_pylist()
    [1796295600999, None]
    """
    t = col.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        try:
            us = col.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
        return _floor_div(us, 1000)
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        f = col.cast(pa.float64())
        return pc.if_else(pc.greater(f, 1e11), f, pc.multiply(f, 1000.0)).cast(pa.int64(), safe=False)
    if pa.types.is_timestamp(t):
        return col.cast(pa.timestamp("ms", tz="UTC") if t.tz else pa.timestamp("ms")).cast(pa.int64())
    if pa.types.is_null(t):
        return pa.nulls(len(col), pa.int64())
    return None


def _floor_div(values: pa.ChunkedArray, by: int) -> pa.ChunkedArray:
    """Integer division rounding down (``pc.divide`` truncates toward zero: wrong before 1970)."""
    q = pc.divide(values, by)
    return pc.if_else(pc.greater(pc.multiply(q, by), values), pc.subtract(q, 1), q)


def _has_empty_struct(t: pa.DataType) -> bool:
    if pa.types.is_struct(t):
        return t.num_fields == 0 or any(_has_empty_struct(t.field(i).type) for i in range(t.num_fields))
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _has_empty_struct(t.value_type)
    return False


def json_table(route: Any, items: list[tuple[Any, str]]) -> pa.Table | None:
    """``items`` = (Message, payload sha256) of one route; the landed table, or None (use the slow path)."""
    payloads = [m.payload for m, _ in items]
    if any(b"\n" in p or b"\r" in p or not p.strip() for p in payloads):
        return None
    buf = b"\n".join(payloads)
    try:
        parsed = paj.read_json(io.BytesIO(buf), read_options=paj.ReadOptions(use_threads=False,
                                                                            block_size=len(buf) + 1))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if parsed.num_rows != len(items):
        return None
    received = pa.array([m.received_ms for m, _ in items], pa.int64())
    event = None
    for name in ((route.time_field,) if route.time_field else TIME_FIELDS):
        if name in parsed.column_names:
            ms = _ms(parsed.column(name))
            if ms is None:
                return None
            event = ms if event is None else pc.coalesce(event, ms)
    event = received if event is None else pc.coalesce(event, received)
    topics = pa.array([m.topic for m, _ in items], pa.string())
    level = route.device_level
    if level is None:
        plus = [i for i, p in enumerate(route.filter.split("/")) if p == "+"]
        level = plus[0] if plus else None
    device = (pc.list_element(pc.split_pattern(topics, "/"), level) if level is not None
              else pa.nulls(len(items), pa.string()))
    cols = {
        "topic": topics, "device_id": device, "event_time": event.cast(TS), "received_time": received.cast(TS),
        "qos": pa.array([m.qos for m, _ in items], pa.int8()),
        "retain": pa.array([m.retain for m, _ in items], pa.bool_()),
        "dup": pa.array([m.dup for m, _ in items], pa.bool_()),
        "mid": pa.array([m.mid for m, _ in items], pa.int32()),
        "payload_sha256": pa.array([s for _, s in items], pa.string()),
        "payload_json": pa.array(payloads, pa.binary()).cast(pa.string()),
    }
    return spread(pa.table(cols, schema=JSON_MESSAGE), parsed.column_names, parsed.columns)


def spread(table: pa.Table, names: list[str], columns: list) -> pa.Table:
    """Add the payload's top-level fields as columns (nested ones stay structs / lists).

    A field named like a message column (``topic``, ``device_id``, …) or starting with ``_wl_``
    becomes ``payload_<name>``; a field whose type Parquet cannot hold (an empty object) stays
    only in ``payload_json``.

    >>> t = spread(pa.table({"topic": ["a"]}), ["topic", "temp"], [pa.array(["x"]), pa.array([1.5])])
    >>> t.column_names
    ['topic', 'payload_topic', 'temp']
    """
    taken = set(table.column_names)
    for name, col in zip(names, columns):
        if _has_empty_struct(col.type) or pa.types.is_null(col.type):
            continue
        out = f"payload_{name}" if name in taken or name.startswith("_wl_") or name.startswith("payload_") else name
        if out in taken:
            continue
        table = table.append_column(out, col)
        taken.add(out)
    return table
