"""A micro-batch of raw MQTT messages → one Arrow table per stream, plus rejected inputs.

Parsing is per message (JSON / protobuf); the tables are then built column-wise.
A bad payload, an unknown topic or an oversized message becomes a rejected row
(``connectors.base.source.rejected`` shape: position = topic, reason, raw), never an exception.

>>> from connectors.iot_mqtt.config import MqttConfig
>>> cfg = MqttConfig.from_dict({"client_id": "w", "topics": [
...     {"filter": "devices/+/status", "stream": "device_status", "format": "json_status"},
...     {"filter": "devices/+/telemetry", "stream": "telemetry", "format": "json"}]})
>>> msgs = [Message("devices/d1/status", b'{"status": "offline", "ts": 1700000000000}', 1, False, False, 1, 1700000000500),
...         Message("devices/d1/telemetry", b'{"temp": 21.5}', 1, False, False, 2, 1700000000600),
...         Message("devices/d1/telemetry", b'{"temp": ', 1, False, False, 3, 1700000000700),
...         Message("other/topic", b'{}', 1, False, False, 4, 1700000000800)]
>>> out = decode_batch(msgs, cfg, Tracker())
>>> out.tables["device_status"].column("status").to_pylist(), out.tables["telemetry"].num_rows
(['offline'], 1)
>>> sorted(r.split(":")[0] for r in out.rejected.column("reason").to_pylist())
['bad JSON', 'unknown topic']
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

import pyarrow as pa

from connectors.base.source import REJECTED_SCHEMA, rejected
from connectors.errors import SkippableError
from connectors.iot_mqtt.config import MqttConfig, Router, TopicRoute
from connectors.iot_mqtt.json_batch import json_table, spread
from connectors.iot_mqtt.records import DEVICE_STATUS, JSON_MESSAGE, SPARKPLUG, SPARKPLUG_EVENTS, STATUS_REASONS
from connectors.iot_mqtt.sparkplug.payload import decode_payload
from connectors.iot_mqtt.sparkplug.topic import parse_topic
from connectors.iot_mqtt.sparkplug.tracker import Tracker

STATUS_STREAM = "device_status"
EVENTS_STREAM = "sparkplug_events"
TIME_FIELDS = ("timestamp", "ts", "time", "event_time")
_ONLINE = {"online", "up", "connected", "true", "1"}
_OFFLINE = {"offline", "down", "disconnected", "lost", "false", "0"}
_EPOCH, _MS = datetime(1970, 1, 1, tzinfo=timezone.utc), timedelta(milliseconds=1)


class Message(NamedTuple):
    """One MQTT message as received (copied out of paho's object in its callback)."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    dup: bool
    mid: int
    received_ms: int


@dataclass
class Decoded:
    tables: dict[str, pa.Table] = field(default_factory=dict)
    rejected: pa.Table = field(default_factory=REJECTED_SCHEMA.empty_table)
    sparkplug: bool = False  # the Sparkplug tracker changed: persist its state

    @property
    def counts(self) -> dict[str, int]:
        return {**{s: t.num_rows for s, t in self.tables.items()}, "quarantined": self.rejected.num_rows}


def _event_ms(value: Any) -> int:
    if isinstance(value, bool):
        raise SkippableError(f"bad event time {value!r}")
    if isinstance(value, (int, float)):
        return int(value) if value > 1e11 else int(value * 1000)  # epoch ms, else epoch seconds
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:  # exact milliseconds, rounded down (no float): the same as the batch path's (json_batch._ms)
            return (when.astimezone() - _EPOCH) // _MS if when.tzinfo is None else (when - _EPOCH) // _MS
    raise SkippableError(f"bad event time {value!r}")


def _json_time(doc: Any, route: TopicRoute, received_ms: int) -> int:
    if not isinstance(doc, dict):
        return received_ms
    names = (route.time_field,) if route.time_field else TIME_FIELDS
    for n in names:
        if doc.get(n) is not None:
            return _event_ms(doc[n])
    return received_ms


def _base(m: Message, route: TopicRoute, sha: str, event_ms: int, device: str | None) -> dict[str, Any]:
    return {"topic": m.topic, "device_id": device, "event_time": event_ms, "received_time": m.received_ms,
            "qos": m.qos, "retain": m.retain, "dup": m.dup, "mid": m.mid, "payload_sha256": sha}


def _parse_json(m: Message) -> Any:
    try:
        return json.loads(m.payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SkippableError(f"bad JSON: {exc}") from None


def _status(doc: Any, route: TopicRoute) -> tuple[str, str]:
    raw = doc.get(route.status_field) if isinstance(doc, dict) else doc
    text = str(raw).strip().lower() if raw is not None else ""
    if text in _ONLINE:
        status = "online"
    elif text in _OFFLINE:
        status = "offline"
    else:
        raise SkippableError(f"bad status: {route.status_field}={raw!r} is neither online nor offline")
    reason = doc.get("reason") if isinstance(doc, dict) else None
    if reason not in STATUS_REASONS:
        reason = "birth" if status == "online" else "death"
    return status, reason


class _Rows:
    """Rows per stream, collected while decoding one micro-batch."""

    def __init__(self) -> None:
        self.by_stream: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.json_payloads: dict[str, list[Any]] = defaultdict(list)
        self.json_pending: dict[TopicRoute, list[tuple[Message, str]]] = {}  # for the vectorised path
        self.json_fast: dict[str, list[pa.Table]] = defaultdict(list)
        self.rejected: list[tuple[str, str, bytes]] = []
        self.sparkplug = False  # did the batch touch the Sparkplug tracker?


def _one(m: Message, cfg: MqttConfig, router: Router, tracker: Tracker, rows: _Rows, slow: bool = False) -> None:
    route = router.route(m.topic)
    if route is None:
        raise SkippableError("unknown topic: no configured topic filter matches")
    if len(m.payload) > cfg.max_payload_bytes:
        raise SkippableError(f"oversized message: {len(m.payload)} bytes > max_payload_bytes {cfg.max_payload_bytes}")
    sha = hashlib.sha256(m.payload).hexdigest()
    if route.format == "sparkplug":
        _sparkplug(m, route, sha, tracker, rows)
        rows.sparkplug = True
        return
    if route.format == "json" and not slow:
        rows.json_pending.setdefault(route, []).append((m, sha))
        return
    doc = _parse_json(m)
    ms = _json_time(doc, route, m.received_ms)
    device = route.device_from(m.topic)
    if route.format == "json_status":
        status, reason = _status(doc, route)
        rows.by_stream[route.stream].append({
            "device_id": device, "status": status, "reason": reason, "event_time": ms,
            "received_time": m.received_ms, "topic": m.topic, "source": "json", "bd_seq": None,
            "event_key": f"{m.topic}/{sha}", "payload_json": m.payload.decode()})
        return
    row = _base(m, route, sha, ms, device)
    row["payload_json"] = m.payload.decode()
    rows.by_stream[route.stream].append(row)
    rows.json_payloads[route.stream].append(doc)


def _sparkplug(m: Message, route: TopicRoute, sha: str, tracker: Tracker, rows: _Rows) -> None:
    t = parse_topic(m.topic)
    p = decode_payload(m.payload)
    rid = f"{m.topic}/{sha}"
    status, events = tracker.feed(m.topic, p, hashlib.sha256(rid.encode()).hexdigest()[:24], m.received_ms)
    ms = p["timestamp"] if p["timestamp"] is not None else m.received_ms
    rows.by_stream[route.stream].append({
        **_base(m, route, sha, ms, t.device_id), "group_id": t.group, "message_type": t.message_type,
        "edge_node_id": t.edge_node, "sparkplug_device": t.device, "seq": p["seq"], "uuid": p["uuid"],
        "metrics": p["metrics"]})
    for s in status:
        rows.by_stream[STATUS_STREAM].append({
            "device_id": s["device_id"], "status": s["status"], "reason": s["reason"], "event_time": s["event_ms"],
            "received_time": m.received_ms, "topic": m.topic, "source": "sparkplug", "bd_seq": s["bd_seq"],
            "event_key": f"{rid}/{s['device_id']}/{s['status']}", "payload_json": None})
    for e in events:
        rows.by_stream[EVENTS_STREAM].append({
            "device_id": e["device_id"], "kind": e["kind"], "expected": e["expected"], "got": e["got"],
            "event_time": e["event_ms"], "received_time": m.received_ms, "topic": m.topic,
            "event_key": f"{rid}/{e['device_id']}/{e['kind']}"})


def _json_table(rows: list[dict[str, Any]], payloads: list[Any]) -> pa.Table:
    t = pa.Table.from_pylist(rows, schema=JSON_MESSAGE)
    try:
        parsed = pa.array(payloads)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        return t  # payloads whose types clash within the batch keep only payload_json
    if not pa.types.is_struct(parsed.type):
        return t  # not objects (a bare number, a list): payload_json only
    return spread(t, [f.name for f in parsed.type], parsed.flatten())


def decode_batch(messages: list[Message], cfg: MqttConfig, tracker: Tracker, router: Router | None = None
                 ) -> Decoded:
    """Decode one micro-batch; updates ``tracker`` (Sparkplug state) as it goes."""
    rows = _Rows()
    router = router or Router(cfg.topics)
    for m in messages:
        try:
            _one(m, cfg, router, tracker, rows)
        except SkippableError as exc:
            raw = m.payload[: cfg.max_payload_bytes]
            rows.rejected.append((m.topic, str(exc), raw))
    for route, items in rows.json_pending.items():
        fast = json_table(route, items)
        if fast is not None:
            rows.json_fast[route.stream].append(fast)
            continue
        for m, _ in items:  # the slow path finds and quarantines the bad ones
            try:
                _one(m, cfg, router, tracker, rows, slow=True)
            except SkippableError as exc:
                rows.rejected.append((m.topic, str(exc), m.payload[: cfg.max_payload_bytes]))
    out = Decoded(rejected=rejected(rows.rejected), sparkplug=rows.sparkplug)
    fmt = {r.stream: r.format for r in cfg.topics}
    for stream, recs in rows.by_stream.items():
        if stream == STATUS_STREAM or fmt.get(stream) == "json_status":
            out.tables[stream] = pa.Table.from_pylist(recs, schema=DEVICE_STATUS)
        elif stream == EVENTS_STREAM:
            out.tables[stream] = pa.Table.from_pylist(recs, schema=SPARKPLUG_EVENTS)
        elif fmt.get(stream) == "sparkplug":
            out.tables[stream] = pa.Table.from_pylist(recs, schema=SPARKPLUG)
        else:
            out.tables[stream] = _json_table(recs, rows.json_payloads[stream])
    for stream, tables in rows.json_fast.items():
        if stream in out.tables:
            tables = [out.tables[stream], *tables]
        out.tables[stream] = pa.concat_tables(tables, promote_options="permissive")
    return out
