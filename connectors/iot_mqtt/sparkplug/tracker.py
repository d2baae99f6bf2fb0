"""Host-side Sparkplug B state: which edge nodes and devices are online, bdSeq, seq, aliases.

Fed the decoded messages in arrival order, it emits normalised ``device_status``
events and ``sparkplug_events`` (seq gaps, stale deaths...). Requirements implemented
(Sparkplug 3.0, ../shared/data/sparkplug/sparkplug-3.0-spec-chapters.adoc):

- tck-id-topics-nbirth-bdseq-included / tck-id-payloads-ndeath-bdseq: the NBIRTH and
  NDEATH carry a ``bdSeq`` metric; an NDEATH is matched to the NBIRTH by it, and one
  whose bdSeq differs from the current NBIRTH's is stale and ignored (a ``stale_death``
  event records that); so is a second death with the same bdSeq (the Will after an
  intentional NDEATH, see tck-id-operational-behavior-edge-node-intentional-disconnect-ndeath).
- tck-id-operational-behavior-edge-node-termination-host-action-ndeath-node-offline and
  ...-ndeath-devices-offline: a matching NDEATH marks the node offline (reason ``death``)
  and every device of the node offline (reason ``stale``), at the host's receive time.
- tck-id-payloads-sequence-num-always-included, ...-sequence-num-incrementing: every
  message but NDEATH carries seq, +1 per message per edge node, 255 wraps to 0; a
  missing seq or a jump is a ``seq_gap`` / ``missing_seq`` event (the data is kept).
- tck-id-operational-behavior-device-ddeath: DDEATH marks one device offline.

Redelivered messages (same record id, e.g. after a crash before the ack) are skipped,
so replaying a batch does not fake a seq gap. State is a plain dict, persisted by the worker.

>>> t = Tracker()
>>> birth = {"timestamp": 1000, "seq": 0, "metrics": [{"name": "bdSeq", "alias": None, "value": "5"}]}
>>> [e["status"] for e in t.feed("spBv1.0/g/NBIRTH/n1", birth, "r1", 1000)[0]]
['online']
>>> death = {"timestamp": 2000, "seq": None, "metrics": [{"name": "bdSeq", "alias": None, "value": "4"}]}
>>> status, events = t.feed("spBv1.0/g/NDEATH/n1", death, "r2", 2000)
>>> status, [e["kind"] for e in events]
([], ['stale_death'])
"""

from __future__ import annotations

from collections import deque
from typing import Any

from connectors.iot_mqtt.sparkplug.topic import SparkplugTopic, parse_topic

RECENT_IDS = 4096  # message ids remembered to skip redeliveries (> the unacked window)


def _bdseq(payload: dict[str, Any]) -> int | None:
    for m in payload["metrics"]:
        if m.get("name") == "bdSeq" and m.get("value") is not None:
            try:
                return int(m["value"])
            except ValueError:
                return None
    return None


class Tracker:
    """Sparkplug host state machine; ``state`` round-trips through JSON."""

    def __init__(self, state: dict[str, Any] | None = None):
        state = state or {}
        self.nodes: dict[str, dict[str, Any]] = state.get("nodes", {})
        self.recent: deque[str] = deque(state.get("recent", []), maxlen=RECENT_IDS)
        self._recent_set = set(self.recent)

    @property
    def state(self) -> dict[str, Any]:
        return {"nodes": self.nodes, "recent": list(self.recent)}

    def _node(self, t: SparkplugTopic) -> dict[str, Any]:
        return self.nodes.setdefault(t.node_id, {"bd_seq": None, "online": False, "seq": None,
                                                 "devices": {}, "aliases": {}})

    def feed(self, topic: str, payload: dict[str, Any], rid: str, received_ms: int
             ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """One message → (device_status events, sparkplug events). Resolves metric aliases in place."""
        if rid in self._recent_set:
            return [], []
        if len(self.recent) == self.recent.maxlen:
            self._recent_set.discard(self.recent[0])
        self.recent.append(rid)
        self._recent_set.add(rid)
        t = parse_topic(topic)
        node = self._node(t)
        ctx = {"topic": topic, "rid": rid, "t": t,
               "ms": payload["timestamp"] if payload["timestamp"] is not None else received_ms}
        kind = t.message_type
        if kind == "NDEATH":
            return self._ndeath(node, payload, ctx, received_ms)
        events = self._check_seq(node, payload, ctx)
        status: list[dict[str, Any]] = []
        if kind == "NBIRTH":
            status = self._nbirth(node, payload, ctx, events)
        elif kind == "DBIRTH":
            node["devices"][t.device] = True
            status = [self._status(ctx, t.device_id, "online", "birth", node["bd_seq"])]
        elif kind == "DDEATH":
            if node["devices"].get(t.device):
                node["devices"][t.device] = False
                status = [self._status(ctx, t.device_id, "offline", "death", node["bd_seq"])]
        elif not node["online"] and kind in ("NDATA", "DDATA"):
            events.append(self._event(ctx, "data_before_birth", None, payload["seq"]))
        if kind in ("NBIRTH", "DBIRTH"):
            self._learn_aliases(node, payload)
        else:
            self._resolve_aliases(node, payload)
        return status, events

    def _nbirth(self, node, payload, ctx, events) -> list[dict[str, Any]]:
        bd = _bdseq(payload)
        if bd is None:
            events.append(self._event(ctx, "missing_bdseq", None, None))
        node.update(bd_seq=bd, online=True, devices={}, aliases={})
        return [self._status(ctx, ctx["t"].node_id, "online", "birth", bd)]

    def _ndeath(self, node, payload, ctx, received_ms) -> tuple[list, list]:
        bd = _bdseq(payload)
        ctx = {**ctx, "ms": received_ms}  # the host's time (…-ndeath-node-offline)
        if bd is None or bd != node["bd_seq"]:
            return [], [self._event(ctx, "stale_death", node["bd_seq"], bd)]
        if not node["online"]:
            return [], [self._event(ctx, "duplicate_death", node["bd_seq"], bd)]
        node["online"] = False
        out = [self._status(ctx, ctx["t"].node_id, "offline", "death", bd)]
        for dev, online in sorted(node["devices"].items()):
            if online:
                node["devices"][dev] = False
                out.append(self._status(ctx, f"{ctx['t'].node_id}/{dev}", "offline", "stale", bd))
        return out, []

    def _check_seq(self, node, payload, ctx) -> list[dict[str, Any]]:
        seq, last = payload["seq"], node["seq"]
        if seq is None:
            return [self._event(ctx, "missing_seq", None, None)]
        node["seq"] = seq
        if ctx["t"].message_type == "NBIRTH" or last is None:
            return []
        expected = (last + 1) % 256
        return [] if seq == expected else [self._event(ctx, "seq_gap", expected, seq)]

    @staticmethod
    def _learn_aliases(node, payload) -> None:
        for m in payload["metrics"]:
            if m.get("alias") is not None and m.get("name"):
                node["aliases"][str(m["alias"])] = m["name"]

    @staticmethod
    def _resolve_aliases(node, payload) -> None:
        for m in payload["metrics"]:
            if m.get("name") is None and m.get("alias") is not None:
                m["name"] = node["aliases"].get(str(m["alias"]))

    @staticmethod
    def _status(ctx, device_id, status, reason, bd_seq) -> dict[str, Any]:
        return {"device_id": device_id, "status": status, "reason": reason, "event_ms": ctx["ms"],
                "topic": ctx["topic"], "bd_seq": bd_seq, "origin_record_id": ctx["rid"]}

    @staticmethod
    def _event(ctx, kind, expected, got) -> dict[str, Any]:
        return {"device_id": ctx["t"].device_id, "kind": kind, "expected": expected, "got": got,
                "event_ms": ctx["ms"], "topic": ctx["topic"], "origin_record_id": ctx["rid"]}
