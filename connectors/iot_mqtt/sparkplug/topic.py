"""The Sparkplug B topic namespace: ``spBv1.0/<group>/<type>/<edge node>[/<device>]``.

>>> parse_topic("spBv1.0/plant1/DDATA/gw7/pump-3")
SparkplugTopic(group='plant1', message_type='DDATA', edge_node='gw7', device='pump-3')
>>> parse_topic("spBv1.0/plant1/NBIRTH/gw7").device is None
True
>>> parse_topic("spBv1.0/plant1/NDATA/gw7/x/y")
Traceback (most recent call last):
...
connectors.errors.SkippableError: not a Sparkplug B topic: 'spBv1.0/plant1/NDATA/gw7/x/y'
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from connectors.errors import SkippableError

NAMESPACE = "spBv1.0"
MessageType = Literal["NBIRTH", "NDEATH", "DBIRTH", "DDEATH", "NDATA", "DDATA", "NCMD", "DCMD"]
NODE_TYPES = frozenset({"NBIRTH", "NDEATH", "NDATA", "NCMD"})
DEVICE_TYPES = frozenset({"DBIRTH", "DDEATH", "DDATA", "DCMD"})


class SparkplugTopic(NamedTuple):
    group: str
    message_type: MessageType
    edge_node: str
    device: str | None

    @property
    def device_id(self) -> str:
        """The id weftline uses for the thing: ``group/node`` or ``group/node/device``."""
        base = f"{self.group}/{self.edge_node}"
        return f"{base}/{self.device}" if self.device else base

    @property
    def node_id(self) -> str:
        return f"{self.group}/{self.edge_node}"


def parse_topic(topic: str) -> SparkplugTopic:
    """Split a Sparkplug B topic; a STATE topic or any other shape is a :class:`SkippableError`."""
    parts = topic.split("/")
    ok = len(parts) in (4, 5) and parts[0] == NAMESPACE and all(parts)
    if ok and len(parts) == 4 and parts[2] in NODE_TYPES:
        return SparkplugTopic(parts[1], parts[2], parts[3], None)  # type: ignore[arg-type]
    if ok and len(parts) == 5 and parts[2] in DEVICE_TYPES:
        return SparkplugTopic(parts[1], parts[2], parts[3], parts[4])  # type: ignore[arg-type]
    raise SkippableError(f"not a Sparkplug B topic: {topic!r}")
