"""Decode a Sparkplug B payload (protobuf) into plain values, metric by metric.

Each metric becomes ``{name, alias, datatype, timestamp, is_null, value, value_num}``:
``value`` is the value as text (any type), ``value_num`` the number for numeric and
boolean types (else null), so rules can compute on it without a union type.

>>> from connectors.iot_mqtt.sparkplug.sparkplug_b_pb2 import Payload
>>> p = Payload(timestamp=1700000000000, seq=4)
>>> m = p.metrics.add(name="temp", alias=2, datatype=DATATYPES["Double"], double_value=21.5)
>>> d = decode_payload(p.SerializeToString())
>>> d["seq"], d["metrics"][0]["name"], d["metrics"][0]["value"], d["metrics"][0]["value_num"]
(4, 'temp', '21.5', 21.5)
>>> decode_payload(b"\\xff\\xff")
Traceback (most recent call last):
...
connectors.errors.SkippableError: bad Sparkplug B protobuf: Error parsing message...
"""

from __future__ import annotations

from typing import Any

from google.protobuf.message import DecodeError

from connectors.errors import SkippableError
from connectors.iot_mqtt.sparkplug.sparkplug_b_pb2 import DataType, Payload

DATATYPES: dict[str, int] = {name: DataType.Value(name) for name in DataType.keys()}
DATATYPE_NAMES: dict[int, str] = {v: k for k, v in DATATYPES.items()}
_NUMERIC = {"Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64", "Float", "Double",
            "Boolean", "DateTime"}
_SIGNED_BITS = {"Int8": 8, "Int16": 16, "Int32": 32, "Int64": 64}


def _signed(raw: int, bits: int) -> int:
    """Sparkplug carries signed ints in unsigned fields (two's complement)."""
    return raw - (1 << bits) if raw >= 1 << (bits - 1) else raw


def _value(metric: Any, dtype: str) -> tuple[str | None, float | None]:
    field = metric.WhichOneof("value")
    if metric.is_null or field is None:
        return None, None
    raw = getattr(metric, field)
    if field in ("dataset_value", "template_value", "extension_value"):
        return str(raw).strip(), None
    if field == "bytes_value":
        return raw.hex(), None
    if dtype in _SIGNED_BITS and isinstance(raw, int):
        raw = _signed(raw, _SIGNED_BITS[dtype])
    if isinstance(raw, bool):
        return ("true" if raw else "false"), float(raw)
    num = float(raw) if dtype in _NUMERIC and isinstance(raw, (int, float)) else None
    return str(raw), num


def decode_metric(metric: Any) -> dict[str, Any]:
    dtype = DATATYPE_NAMES.get(metric.datatype, "Unknown") if metric.HasField("datatype") else None
    value, num = _value(metric, dtype or "Unknown")
    return {
        "name": metric.name if metric.HasField("name") else None,
        "alias": metric.alias if metric.HasField("alias") else None,
        "datatype": dtype,
        "timestamp": metric.timestamp if metric.HasField("timestamp") else None,
        "is_null": bool(metric.is_null),
        "value": value,
        "value_num": num,
    }


def decode_payload(raw: bytes) -> dict[str, Any]:
    """``{timestamp, seq, uuid, metrics}`` of one payload; bad bytes are a :class:`SkippableError`."""
    p = Payload()
    try:
        p.ParseFromString(raw)
    except DecodeError as exc:
        raise SkippableError(f"bad Sparkplug B protobuf: {exc}") from None
    return {
        "timestamp": p.timestamp if p.HasField("timestamp") else None,
        "seq": p.seq if p.HasField("seq") else None,
        "uuid": p.uuid if p.HasField("uuid") else None,
        "metrics": [decode_metric(m) for m in p.metrics],
    }


def encode_payload(metrics: list[dict[str, Any]], *, timestamp: int, seq: int | None) -> bytes:
    """Build a payload (used by the simulator and tests): metrics as ``{name, datatype, value}``.

    >>> decode_payload(encode_payload([{"name": "bdSeq", "datatype": "Int64", "value": 3}], timestamp=1, seq=None))["metrics"][0]["value"]
    '3'
    """
    p = Payload(timestamp=timestamp)
    if seq is not None:
        p.seq = seq
    for m in metrics:
        dtype = m["datatype"]
        pm = p.metrics.add(datatype=DATATYPES[dtype], timestamp=m.get("timestamp", timestamp))
        if m.get("name") is not None:
            pm.name = m["name"]
        if m.get("alias") is not None:
            pm.alias = m["alias"]
        v = m.get("value")
        if v is None:
            pm.is_null = True
        elif dtype in ("Float",):
            pm.float_value = v
        elif dtype == "Double":
            pm.double_value = v
        elif dtype == "Boolean":
            pm.boolean_value = v
        elif dtype in ("String", "Text", "UUID"):
            pm.string_value = v
        elif dtype in ("Int64", "UInt64", "DateTime"):
            pm.long_value = v & ((1 << 64) - 1)
        else:
            pm.int_value = v & ((1 << 32) - 1)
    return p.SerializeToString()
