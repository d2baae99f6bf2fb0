"""The MQTT connector's configuration: declared data, validated once.

Secrets never sit in the file: ``password`` is either already resolved by the runner
(from ``{env: NAME}``) or given here as ``{env: NAME}`` and read from the environment.

>>> c = MqttConfig.from_dict({"client_id": "w1", "topics": [
...     {"filter": "devices/+/status", "stream": "device_status", "format": "json_status"}]})
>>> c.port, c.protocol, c.batch_max_ms, c.topics[0].format
(1883, '5', 50, 'json_status')
>>> c.subscription("devices/+/status")
'devices/+/status'
>>> MqttConfig.from_dict({"client_id": "w1", "shared_group": "g", "topics": []}).subscription("a/#")
'$share/g/a/#'
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from connectors.errors import ConfigError

Format = Literal["json", "json_status", "sparkplug"]
FORMATS = ("json", "json_status", "sparkplug")


@dataclass(frozen=True)
class TopicRoute:
    """One topic filter → one stream, with how its payload is read."""

    filter: str
    stream: str
    format: Format = "json"
    device_level: int | None = None  # topic level holding the device id (default: first '+')
    time_field: str | None = None  # payload field with the event time (epoch s/ms or ISO text)
    status_field: str = "status"  # json_status: field holding online/offline (or true/false)

    def device_from(self, topic: str) -> str | None:
        levels = topic.split("/")
        idx = self.device_level
        if idx is None:
            plus = [i for i, p in enumerate(self.filter.split("/")) if p == "+"]
            idx = plus[0] if plus else None
        return levels[idx] if idx is not None and idx < len(levels) else None


@dataclass(frozen=True)
class MqttConfig:
    client_id: str
    topics: tuple[TopicRoute, ...]
    host: str = "127.0.0.1"
    port: int = 1883
    protocol: Literal["5", "3.1.1"] = "5"
    keepalive: int = 30
    session_expiry: int = 7 * 24 * 3600  # seconds the broker keeps our session (MQTT 5)
    receive_maximum: int = 5000  # MQTT 5: unacked QoS 1 in flight to us; > batch so the broker keeps sending while we land
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: dict[str, Any] | None = None  # {ca_certs, certfile, keyfile, insecure}
    shared_group: str | None = None
    qos: int = 1
    max_payload_bytes: int = 256 * 1024
    batch_max_messages: int = 1000
    batch_max_ms: int = 50  # ≤ 200; small keeps latency low at low rates, full batches form anyway under load
    parts_per_load: int = 500  # a new load id after this many parts per stream

    def subscription(self, topic_filter: str) -> str:
        return f"$share/{self.shared_group}/{topic_filter}" if self.shared_group else topic_filter

    @property
    def streams(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.stream for r in self.topics))

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "MqttConfig":
        raw = dict(raw)
        if not raw.get("client_id"):
            raise ConfigError("iot_mqtt: client_id is required (a fixed id keeps the persistent session)")
        routes = tuple(_route(t) for t in raw.pop("topics", []) or [])
        batch = raw.pop("batch", {}) or {}
        raw.setdefault("batch_max_messages", batch.get("max_messages", 1000))
        raw.setdefault("batch_max_ms", batch.get("max_ms", 50))
        raw["password"] = _secret(raw.get("password"))
        raw["protocol"] = str(raw.get("protocol", "5"))
        if "port" in raw:  # an {env: ...} reference resolves to text
            try:
                raw["port"] = int(raw["port"])
            except (TypeError, ValueError):
                raise ConfigError(f"iot_mqtt: port must be a number, not {raw['port']!r}") from None
        if raw["protocol"] not in ("5", "3.1.1"):
            raise ConfigError(f"iot_mqtt: protocol must be 5 or 3.1.1, not {raw['protocol']!r}")
        if int(raw.get("qos", 1)) != 1:
            raise ConfigError("iot_mqtt: only QoS 1 is supported (at-least-once, acked after landing)")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"iot_mqtt: unknown config key(s) {unknown}")
        if int(raw["batch_max_ms"]) > 200 or int(raw["batch_max_ms"]) <= 0:
            raise ConfigError("iot_mqtt: batch.max_ms must be in 1..200")
        return cls(topics=routes, **raw)


def _filter_regex(topic_filter: str) -> re.Pattern[str]:
    """MQTT filter → regex: ``+`` one level, a trailing ``#`` any levels (also none)."""
    levels = topic_filter.split("/")
    out = []
    for i, lv in enumerate(levels):
        if lv == "#" and i == len(levels) - 1:
            return re.compile("^" + "".join(out) + ("(?:/.*)?$" if out else ".*$"))
        part = "[^/]*" if lv == "+" else re.escape(lv)
        out.append(part if i == 0 else "/" + part)
    return re.compile("^" + "".join(out) + "$")


class Router:
    """Topic → route, first matching filter wins; compiled once, answers cached per topic.

    >>> r = Router((TopicRoute("spBv1.0/#", "sparkplug", "sparkplug"), TopicRoute("devices/+/status", "device_status")))
    >>> r.route("spBv1.0/g/NDATA/n").stream, r.route("devices/d1/status").stream, r.route("devices/d1/x/status")
    ('sparkplug', 'device_status', None)
    """

    MAX_CACHED = 100_000

    def __init__(self, routes: tuple[TopicRoute, ...]):
        self._compiled = [(_filter_regex(r.filter), r) for r in routes]
        self._cache: dict[str, TopicRoute | None] = {}

    def route(self, topic: str) -> TopicRoute | None:
        try:
            return self._cache[topic]
        except KeyError:
            pass
        if len(self._cache) >= self.MAX_CACHED:
            self._cache.clear()
        found = next((r for rx, r in self._compiled if rx.match(topic) and not topic.startswith("$")), None)
        self._cache[topic] = found
        return found


def _route(t: dict[str, Any]) -> TopicRoute:
    try:
        r = TopicRoute(**t)
    except TypeError as exc:
        raise ConfigError(f"iot_mqtt: bad topic route {t!r}: {exc}") from None
    if r.format not in FORMATS:
        raise ConfigError(f"iot_mqtt: topic {r.filter!r}: format must be one of {FORMATS}")
    return r


def _secret(value: Any) -> str | None:
    if isinstance(value, dict) and "env" in value:
        got = os.environ.get(value["env"])
        if got is None:
            raise ConfigError(f"iot_mqtt: password: environment variable {value['env']} is not set")
        return got
    if value is None or isinstance(value, str):
        return value
    raise ConfigError("iot_mqtt: password must be {env: NAME}")
