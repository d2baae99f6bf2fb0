"""The iot_mqtt connector as the registry builds it: ``MqttSource(config, home)``.

Push-style: messages are landed by the stream worker (``weftline stream``), not pulled by
``read``. Batch consumers (Airflow, ``weftline run``) drain the landing with their own cursor.

>>> import tempfile
>>> from connectors.base.home import Home
>>> src = MqttSource({"client_id": "w", "topics": [{"filter": "d/+/t", "stream": "telemetry"}]}, Home(tempfile.mkdtemp()))
>>> [s.name for s in MqttSource.streams]
['sparkplug', 'device_status', 'sparkplug_events', 'telemetry']
>>> list(src.drain("telemetry", "airflow"))
[]
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from connectors.base.home import Home
from connectors.base.source import Batch, Stream
from connectors.errors import ConfigError
from connectors.iot_mqtt import consumers
from connectors.iot_mqtt.config import MqttConfig
from connectors.iot_mqtt.ingest import SYSTEM


def _stream(name: str, key: tuple[str, ...], position: str | None) -> Stream:
    return Stream(name=name, key=key, position=position, schema=f"schemas/sources/{SYSTEM}.{name}.json")


class MqttSource:
    system: ClassVar[str] = SYSTEM
    streams: ClassVar[tuple[Stream, ...]] = (
        _stream("sparkplug", ("topic",), "payload_sha256"),
        _stream("device_status", ("event_key",), None),
        _stream("sparkplug_events", ("event_key",), None),
        _stream("telemetry", ("topic",), "payload_sha256"),  # any JSON stream has this shape
    )

    def __init__(self, config: Mapping[str, Any], home: Home):
        self.config = MqttConfig.from_dict(dict(config))
        self.home = home

    def read(self, stream: str, state: Mapping[str, Any]) -> Iterator[Batch]:
        raise ConfigError("iot_mqtt is push-style: run `weftline stream INTEGRATION` to land messages, "
                          "and drain the landing (MqttSource.drain / connectors.iot_mqtt.consumers.drain)")

    def drain(self, stream: str, consumer: str) -> Iterator[tuple[str, Path, pa.Table]]:
        """Landed, stamped parts this consumer has not processed; :meth:`mark_done` each after use."""
        return consumers.drain(self.home, SYSTEM, stream, consumer)

    def mark_done(self, stream: str, consumer: str, load_id: str, part: Path) -> None:
        consumers.mark_done(self.home, SYSTEM, stream, consumer, load_id, part)
