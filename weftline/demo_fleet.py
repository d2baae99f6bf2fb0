"""The IoT part of `weftline demo`: a simulated fleet on a local broker, a device drops off, a ticket opens.

A local Mosquitto starts on a free loopback port; the `iot_fleet` integration's stream worker
(the same code as `weftline stream iot_fleet`) subscribes, lands, maps and loads. The fleet reports
status with event times on a simulated clock (a minute per step, running ahead of the wall clock),
so the "offline for two minutes" rule fires in seconds of wall time: the rules run on event time.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb

from connectors.base.home import Home

DEVICES = [f"acme-pump-{i:02d}" for i in range(5)]
DROPPED = "acme-pump-03"
FAULTY = "acme-pump-01"


def _tickets(home: Home) -> list[tuple]:
    if not home.crm_duckdb.exists():
        return []
    try:
        con = duckdb.connect(str(home.crm_duckdb), read_only=True)
    except duckdb.Error:
        return []  # the worker holds the write lock right now; ask again
    try:
        return con.sql("SELECT ticket_id, device_id, status, category, coalesce(offline_for_s, fault_count) "
                       "FROM crm.crm.service_ticket WHERE category IS NOT NULL ORDER BY category, ticket_id").fetchall()
    except duckdb.Error:
        return []
    finally:
        con.close()


def _timeline(start: datetime) -> list[tuple[datetime, str, str]]:
    """(event time, device, status): all online at the start, one device drops at +1 min, the rest keep reporting, it returns at +6."""
    events = [(start, d, "online") for d in DEVICES]
    events.append((start + timedelta(minutes=1), DROPPED, "offline"))
    for m in range(2, 6):
        events += [(start + timedelta(minutes=m), d, "online") for d in DEVICES if d != DROPPED]
    events.append((start + timedelta(minutes=6), DROPPED, "online"))
    events += [(start + timedelta(minutes=m), d, "online") for m in (7, 8) for d in DEVICES]  # time moves on
    return events


def _telemetry(start: datetime) -> list[tuple[datetime, str, str]]:
    """(event time, device, event type): heartbeats from every device, and three faults in ten minutes from one."""
    events = [(start + timedelta(minutes=m), d, "heartbeat") for m in range(1, 9) for d in DEVICES if d != DROPPED]
    events += [(start + timedelta(minutes=m), FAULTY, "fault") for m in (2, 3, 4)]
    return sorted(events)


def _publish(port: int, messages: list[tuple[str, dict]], client_id: str) -> list[float]:
    """Publish (topic, payload) pairs with QoS 1, each acknowledged before the next; their send times."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    c.connect("127.0.0.1", port)
    c.loop_start()
    try:
        sent = []
        for topic, payload in messages:
            c.publish(topic, json.dumps(payload), qos=1).wait_for_publish(5)
            sent.append(time.monotonic())
        return sent
    finally:
        c.disconnect()
        c.loop_stop()


def _status_messages(events) -> list[tuple[str, dict]]:
    return [(f"devices/{d}/status", {"status": st, "event_time": when.isoformat()}) for when, d, st in events]


def _telemetry_messages(events) -> list[tuple[str, dict]]:
    return [(f"devices/{d}/telemetry", {"event_type": kind, "event_time": when.isoformat(), "severity": 2})
            for when, d, kind in events]


def _all_processed(reports, spec: str, events) -> bool:
    """Every event went through the spec's stateful stage (absorbed, or quarantined as a duplicate/late)."""
    return sum(r.absorbed + r.rejected for r in reports if r.spec == spec) >= len(events)


def run_fleet_demo(home: Home, mappings: Path, console, timeout: float = 60.0) -> dict:
    from connectors.integration import load_integration
    from connectors.iot_mqtt.broker import start_broker
    from connectors.iot_mqtt.config import MqttConfig
    from connectors.iot_mqtt.worker import Worker
    from weftline.runner import stream_processor

    broker = start_broker()
    client = f"weftline-demo-{uuid.uuid4().hex[:6]}"
    os.environ["WEFTLINE_MQTT_PORT"] = str(broker.port)
    os.environ["WEFTLINE_MQTT_CLIENT_ID"] = client
    stop = threading.Event()
    reports: list = []
    try:
        integ = load_integration("iot_fleet", mappings, home=home)
        process = stream_processor(integ, home)
        mqtt = Worker(MqttConfig.from_dict(dict(integ.config)), home, lambda t: reports.extend(process(t)), "demo")
        worker = threading.Thread(target=mqtt.run, args=(stop,), daemon=True)
        worker.start()
        # the fleet talks once the worker's subscription stands (SUBACK): from then on the broker keeps every
        # message for it, so each one published below is processed exactly once and the counts can be awaited
        if not mqtt.connected.wait(30):
            raise RuntimeError(f"the stream worker did not subscribe to the local broker on port {broker.port} in 30 s")
        # the simulated clock starts now and runs a minute per step ahead of the wall clock (the worker
        # treats the wall clock as a heartbeat, so events from the past would count as late)
        start = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=5)
        timeline, telemetry = _timeline(start), _telemetry(start)
        times = _publish(broker.port, _status_messages(timeline), f"{client}-fleet")
        sent = times[timeline.index((start + timedelta(minutes=1), DROPPED, "offline"))]
        _publish(broker.port, _telemetry_messages(telemetry), f"{client}-telemetry")
        opened_at, deadline = None, time.monotonic() + timeout
        while time.monotonic() < deadline:
            if opened_at is None and any(t.loaded for r in reports for t in r.targets):
                opened_at = time.monotonic()
            if opened_at is not None and _all_processed(reports, "device_offline_ticket", timeline) \
                    and _all_processed(reports, "device_fault_spike_ticket", telemetry):
                break
            time.sleep(0.05)
    finally:
        stop.set()
        worker_thread = locals().get("worker")
        if worker_thread is not None:
            worker_thread.join(timeout=30)
        if "process" in locals():
            process.close()  # release the CRM file the worker kept open
        broker.stop()
    tickets = _tickets(home)  # the worker is stopped: the CRM file is ours to read
    for t in tickets:
        n = "?" if t[4] is None else f"{t[4]:.0f}"
        what = f"offline {n} s of simulated time" if t[3] == "device_offline" else f"{n} faults in the hour"
        console.print(f"service ticket {t[0][:12]}… {t[3]}: device {t[1]} {t[2]} ({what})")
    if not tickets:
        console.print(f"[red]no service ticket within {timeout:.0f} s[/red]")
    else:
        latency = f"{opened_at - sent:.2f} s" if opened_at else "n/a"
        console.print(f"device {DROPPED} dropped off → ticket opened ({latency} after its offline message was published), "
                      "and closed when it came back")
    return {"tickets": tickets, "reports": reports}
