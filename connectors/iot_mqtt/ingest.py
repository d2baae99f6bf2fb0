"""Land one decoded micro-batch durably: stamp identity, one Parquet part per stream,
rejected messages to quarantine, then the Sparkplug state. Only after :meth:`Ingestor.ingest`
returns may the worker ack the messages.

Layout: ``landing/iot_mqtt/<stream>/<load_id>/part-N.parquet`` and
``quarantine/iot_mqtt/messages/<load_id>/part-N.parquet`` (position = topic, reason, raw).

>>> import tempfile
>>> from connectors.base.home import Home
>>> from connectors.iot_mqtt.config import MqttConfig, Router
>>> from connectors.iot_mqtt.decode import Message
>>> cfg = MqttConfig.from_dict({"client_id": "w", "topics": [{"filter": "d/+/t", "stream": "telemetry"}]})
>>> ing = Ingestor(cfg, Home(tempfile.mkdtemp()))
>>> res = ing.ingest([Message("d/x/t", b'{"v": 1}', 1, False, False, 1, 1700000000000),
...                   Message("d/x/t", b'nope', 1, False, False, 2, 1700000000001)])
>>> res.counts, res.parts["telemetry"].name
({'telemetry': 1, 'quarantined': 1}, 'part-00000.parquet')
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa

from connectors.base.home import Home
from connectors.base.identity import stamp
from connectors.iot_mqtt.config import MqttConfig, Router
from connectors.iot_mqtt.decode import EVENTS_STREAM, STATUS_STREAM, Message, decode_batch
from connectors.iot_mqtt.sparkplug.tracker import Tracker
from connectors.landing import LoadRotation, land
from connectors.state import StateStore

SYSTEM = "iot_mqtt"
QUARANTINE_STREAM = "messages"
log = logging.getLogger(__name__)


@dataclass
class Ingested:
    counts: dict[str, int]
    parts: dict[str, Path] = field(default_factory=dict)  # stream -> landed part
    tables: dict[str, pa.Table] = field(default_factory=dict)  # stream -> the table written as that part
    quarantine_part: Path | None = None


class Ingestor:
    """Owns the load ids (rotated every ``parts_per_load`` parts or after ten idle minutes,
    :class:`connectors.landing.LoadRotation`) and the Sparkplug tracker state."""

    def __init__(self, cfg: MqttConfig, home: Home):
        self.cfg, self.home = cfg, home
        self.state = StateStore(home)
        self._state_key = f"{cfg.client_id}.sparkplug"
        self.tracker = Tracker(self.state.get(SYSTEM, self._state_key))
        self.router = Router(cfg.topics)
        self._loads: dict[str, LoadRotation] = {}  # stream -> its load ids (new after parts_per_load or idle)

    def _load_id(self, stream: str) -> str:
        if stream not in self._loads:
            self._loads[stream] = LoadRotation(self.cfg.parts_per_load)
        return self._loads[stream].next()

    def _stamped(self, stream: str, table: pa.Table, load_id: str) -> pa.Table:
        if stream in (STATUS_STREAM, EVENTS_STREAM) or "event_key" in table.column_names:
            return stamp(table, system=SYSTEM, stream=stream, key=["event_key"], position=None, load_id=load_id)
        return stamp(table, system=SYSTEM, stream=stream, key=["topic"], position="payload_sha256",
                     load_id=load_id, payload_hash=table.column("payload_sha256").combine_chunks())

    def ingest(self, messages: list[Message]) -> Ingested:
        """Decode, land every stream, quarantine the rejects, save the tracker; durable on return."""
        decoded = decode_batch(messages, self.cfg, self.tracker, self.router)
        out = Ingested(counts=decoded.counts)
        for stream, table in decoded.tables.items():
            if table.num_rows:
                lid = self._load_id(stream)
                out.tables[stream] = stamped = self._stamped(stream, table, lid)
                out.parts[stream] = land(stamped, self.home, SYSTEM, stream, lid)
        if decoded.rejected.num_rows:
            qhome = SimpleNamespace(landing=self.home.quarantine)  # same durable writer, quarantine root
            out.quarantine_part = land(decoded.rejected, qhome, SYSTEM, QUARANTINE_STREAM,
                                       self._load_id("_quarantine"))
            log.warning("iot_mqtt: %d message(s) quarantined, e.g. %s: %s", decoded.rejected.num_rows,
                        decoded.rejected.column("position")[0], decoded.rejected.column("reason")[0])
        if decoded.sparkplug:
            self.state.set(SYSTEM, self._state_key, self.tracker.state)
        return out
