"""The simulated fleet through the real Mosquitto and the worker: births, a device dropping
offline (JSON status + Sparkplug DDEATH), the node's death — as normalised device_status events."""

from __future__ import annotations

import threading

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connectors.iot_mqtt.config import MqttConfig
from connectors.iot_mqtt.consumers import pending
from connectors.iot_mqtt.simulator import Fleet, run_fleet
from connectors.iot_mqtt.worker import Worker

pytestmark = pytest.mark.services


def landed(home, stream: str) -> pa.Table:
    parts = [pq.read_table(p) for _, p in pending(home, "iot_mqtt", stream, "check")]
    return pa.concat_tables(parts, promote_options="permissive")


def test_fleet_drop_becomes_offline_events_and_nothing_is_lost(system_broker, prefix, home):
    cfg = MqttConfig.from_dict({"client_id": f"{prefix}-w", "port": system_broker, "topics": [
        {"filter": f"spBv1.0/{prefix}/#", "stream": "sparkplug", "format": "sparkplug"},
        {"filter": f"{prefix}/devices/+/status", "stream": "device_status", "format": "json_status",
         "device_level": 2},
        {"filter": f"{prefix}/devices/+/telemetry", "stream": "telemetry", "device_level": 2}]})
    w = Worker(cfg, home)
    stop = threading.Event()
    th = threading.Thread(target=w.run, args=(stop,), daemon=True)
    th.start()
    assert w.connected.wait(10)
    sent = run_fleet(Fleet(devices=4, group=prefix, prefix=f"{prefix}/", drop_device=2), port=system_broker,
                     seconds=1.5, rate=100)
    import time
    end = time.monotonic() + 20
    while w.stats.acked < sent and time.monotonic() < end:
        time.sleep(0.05)
    stop.set()
    th.join(20)
    assert w.stats.acked == sent and w.stats.quarantined == 0
    st = landed(home, "device_status").sort_by([("event_time", "ascending")])
    offline = [(d, r, s) for d, r, s, st_ in zip(st.column("device_id").to_pylist(), st.column("reason").to_pylist(),
                                                  st.column("source").to_pylist(), st.column("status").to_pylist())
               if st_ == "offline"]
    node = f"{prefix}/gw-1"
    assert sorted(offline) == sorted([
        ("dev-002", "death", "json"), (f"{node}/dev-002", "death", "sparkplug"),  # the drop
        (node, "death", "sparkplug"),  # the intentional NDEATH (bdSeq matches)
        *[(f"{node}/dev-00{i}", "stale", "sparkplug") for i in (0, 1, 3)],  # its devices go with it
    ])
    assert "sparkplug_events" not in {p.parent.parent.name for p in (home.landing / "iot_mqtt").rglob("*.parquet")}
    sp = landed(home, "sparkplug")
    names = {m["name"] for ms in sp.column("metrics").to_pylist() for m in ms}
    assert {"temp", "fault", "bdSeq"} <= names  # DDATA aliases resolved to names
