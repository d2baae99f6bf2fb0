"""A simulated fleet for the demo and the benchmark: N devices behind one Sparkplug B edge
node, each also publishing JSON status and telemetry; one device drops offline mid-run.

Topics (``prefix`` may be empty): ``<prefix>devices/<id>/status`` ({"status", "ts"}),
``<prefix>devices/<id>/telemetry`` ({"ts", "seq", "temp", "event_type": reading|fault}), and the Sparkplug B
namespace ``spBv1.0/<group>/{NBIRTH,DBIRTH,DDATA,DDEATH,NDEATH}/<node>[/<device>]`` (the
NDEATH is also registered as the node's MQTT Will, with the same bdSeq).

>>> plan = Fleet(devices=3, drop_device=1).device_ids
>>> plan
['dev-000', 'dev-001', 'dev-002']
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from connectors.iot_mqtt.sparkplug.payload import encode_payload

log = logging.getLogger(__name__)


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Fleet:
    devices: int = 5
    group: str = "fleet"
    node: str = "gw-1"
    prefix: str = ""
    drop_device: int | None = 0  # index of the device that goes offline mid-run (None: nobody)
    bd_seq: int = 0

    @property
    def device_ids(self) -> list[str]:
        return [f"dev-{i:03d}" for i in range(self.devices)]

    def _sp(self, kind: str, device: str | None = None) -> str:
        return f"spBv1.0/{self.group}/{kind}/{self.node}" + (f"/{device}" if device else "")


class FleetPublisher:
    """Publishes a :class:`Fleet` over one QoS 1 connection (the edge node's)."""

    def __init__(self, fleet: Fleet, host: str = "127.0.0.1", port: int = 1883):
        self.fleet, self.seq, self.n = fleet, 0, 0
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sim-{fleet.group}-{fleet.node}")
        c.will_set(fleet._sp("NDEATH"), self._bd_payload(seq=None), qos=1)  # the node's death certificate
        c.max_inflight_messages_set(200)
        c.max_queued_messages_set(0)
        c.connect(host, port, keepalive=30)
        c.loop_start()
        self.client = c

    def _bd_payload(self, seq: int | None) -> bytes:
        return encode_payload([{"name": "bdSeq", "datatype": "Int64", "value": self.fleet.bd_seq}],
                              timestamp=_now_ms(), seq=seq)

    def _next_seq(self) -> int:
        s, self.seq = self.seq, (self.seq + 1) % 256
        return s

    def _pub(self, topic: str, payload: bytes | str) -> mqtt.MQTTMessageInfo:
        self.n += 1
        return self.client.publish(topic, payload, qos=1)

    def birth(self) -> None:
        f = self.fleet
        self.seq = 0
        self._pub(f._sp("NBIRTH"), encode_payload(
            [{"name": "bdSeq", "datatype": "Int64", "value": f.bd_seq},
             {"name": "Node Control/Rebirth", "datatype": "Boolean", "value": False}],
            timestamp=_now_ms(), seq=self._next_seq()))
        for dev in f.device_ids:
            self._pub(f._sp("DBIRTH", dev), encode_payload(
                [{"name": "temp", "alias": 1, "datatype": "Double", "value": 20.0},
                 {"name": "fault", "alias": 2, "datatype": "Boolean", "value": False}],
                timestamp=_now_ms(), seq=self._next_seq()))
            self.status(dev, "online")

    def status(self, device: str, status: str) -> None:
        self._pub(f"{self.fleet.prefix}devices/{device}/status", json.dumps({"status": status, "ts": _now_ms()}))

    def telemetry(self, device: str, i: int, fault: bool = False) -> mqtt.MQTTMessageInfo:
        temp = 20.0 + (i % 17) * 0.5
        self._pub(self.fleet._sp("DDATA", device), encode_payload(
            [{"alias": 1, "datatype": "Double", "value": temp}, {"alias": 2, "datatype": "Boolean", "value": fault}],
            timestamp=_now_ms(), seq=self._next_seq()))
        return self._pub(f"{self.fleet.prefix}devices/{device}/telemetry",
                         json.dumps({"ts": _now_ms(), "seq": i, "temp": temp,
                                     "event_type": "fault" if fault else "reading"}))

    def drop(self, device: str) -> None:
        """The device goes offline: a DDEATH and a JSON offline status."""
        self._pub(self.fleet._sp("DDEATH", device), encode_payload([], timestamp=_now_ms(), seq=self._next_seq()))
        self.status(device, "offline")

    def death(self) -> None:
        """An intentional node death: NDEATH with the birth's bdSeq, then disconnect (no Will sent)."""
        self._pub(self.fleet._sp("NDEATH"), self._bd_payload(seq=None)).wait_for_publish(10)
        self.client.disconnect()
        self.client.loop_stop()


def run_fleet(fleet: Fleet, host: str = "127.0.0.1", port: int = 1883, seconds: float = 10.0,
              rate: float = 50.0, stop: threading.Event | None = None) -> int:
    """Birth, then telemetry round-robin at ``rate`` msg pairs/s; the drop device leaves halfway. Returns messages sent."""
    pub = FleetPublisher(fleet, host, port)
    pub.birth()
    devices = list(fleet.device_ids)
    start, i, dropped = time.monotonic(), 0, False
    while time.monotonic() - start < seconds and not (stop and stop.is_set()):
        if not dropped and fleet.drop_device is not None and time.monotonic() - start >= seconds / 2:
            gone = devices.pop(fleet.drop_device)
            pub.drop(gone)
            log.info("simulator: %s dropped offline", gone)
            dropped = True
        if devices:
            pub.telemetry(devices[i % len(devices)], i)
        i += 1
        time.sleep(max(0.0, start + i / rate - time.monotonic()))
    pub.death()
    return pub.n


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description="Simulate a device fleet over MQTT (JSON + Sparkplug B).")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("--devices", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--rate", type=float, default=50)
    ap.add_argument("--group", default="fleet")
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO)
    n = run_fleet(Fleet(devices=a.devices, group=a.group), a.host, a.port, a.seconds, a.rate)
    log.info("simulator: %d messages published", n)


if __name__ == "__main__":
    main()
