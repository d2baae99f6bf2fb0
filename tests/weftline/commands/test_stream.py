"""``weftline stream INTEGRATION``: a real process on the real Mosquitto, stopped with SIGTERM
after it landed what was published (the current micro-batch finished and acked)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.connectors.iot_mqtt.conftest import system_broker  # noqa: F401

pytestmark = pytest.mark.services
ROOT = Path(__file__).resolve().parents[3]


def test_stream_lands_until_sigterm_then_reports_counts(system_broker, tmp_path):  # noqa: F811
    prefix = f"wltest-{uuid.uuid4().hex[:8]}"
    mdir = tmp_path / "mappings"
    mdir.mkdir()
    (mdir / "fleet.integration.yaml").write_text(f"""
integration: fleet
source:
  connector: iot_mqtt
  config:
    client_id: {prefix}-cli
    port: {system_broker}
    password: {{env: WL_TEST_MQTT_PASSWORD, default: ""}}
    topics:
      - {{filter: "{prefix}/devices/+/telemetry", stream: telemetry, device_level: 2}}
streams:
  telemetry: {{mappings: [device_telemetry]}}
""")
    home = tmp_path / "home"
    p = subprocess.Popen([sys.executable, "-c", "from weftline.cli import main; main()", "stream", "fleet",
                          "--mappings-dir", str(mdir), "--home", str(home), "--land-only", "--format", "json",
                          "--verbose"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{prefix}-pub")
    pub.connect("127.0.0.1", system_broker)
    pub.loop_start()
    try:
        end = time.monotonic() + 30
        landed = 0
        i = 0
        while landed < 5:  # publish until the worker is subscribed and has landed some
            assert p.poll() is None and time.monotonic() < end, p.stderr.read() if p.poll() is not None else "slow"
            pub.publish(f"{prefix}/devices/d1/telemetry", json.dumps({"seq": i}), qos=1).wait_for_publish(5)
            i += 1
            time.sleep(0.05)
            landed = len(list((home / "landing" / "iot_mqtt" / "telemetry").rglob("part-*.parquet")))
    finally:
        pub.disconnect()
        pub.loop_stop()
    p.send_signal(signal.SIGTERM)
    out, errs = p.communicate(timeout=30)
    assert p.returncode == 0, errs[-2000:]
    counts = json.loads(out.strip().splitlines()[-1])
    assert counts["acked"] == counts["received"] >= 5 and counts["quarantined"] == 0
    assert counts["landed"]["telemetry"] == counts["received"]


def _cli(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "from weftline.cli import main; main()", "stream", *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _publish(port: int, client: str, messages: list[tuple[str, dict]]) -> None:
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    try:
        for topic, body in messages:
            pub.publish(topic, json.dumps(body), qos=1).wait_for_publish(5)
    finally:
        pub.disconnect()
        pub.loop_stop()


def _parts(home: Path, stream: str) -> list[Path]:
    return list((home / "landing" / "iot_mqtt" / stream).rglob("part-*.parquet"))


def _stop(p: subprocess.Popen) -> dict:
    p.send_signal(signal.SIGTERM)
    out, errs = p.communicate(timeout=120)
    assert p.returncode == 0, errs[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def test_stream_maps_loads_and_opens_a_ticket_in_its_processing_process(system_broker, tmp_path):  # noqa: F811
    """`weftline stream iot_fleet` as shipped: landing + ack in the worker, map → load → lineage in its child
    process (ADR 0286). A land-only run makes the persistent session; four faults queued while no worker runs
    arrive together on the next run and open one fault-spike ticket; SIGTERM processes what landed first."""
    import duckdb
    from datetime import datetime, timedelta, timezone

    from connectors.base.home import Home
    from lineage.store import open_store
    from lineage.verify import verify

    dev, home = f"wl-{uuid.uuid4().hex[:8]}", tmp_path / "home"
    env = {**os.environ, "WEFTLINE_HOME": str(home), "WEFTLINE_MQTT_PORT": str(system_broker),
           "WEFTLINE_MQTT_CLIENT_ID": f"{dev}-cli"}
    env.pop("WEFTLINE_CRM_URL", None)
    args = ["iot_fleet", "--mappings-dir", str(ROOT / "mappings"), "--home", str(home), "--format", "json"]
    old = datetime.now(timezone.utc) - timedelta(seconds=90)  # final (past the 30 s lateness) at once
    p = _cli([*args, "--land-only"], env)
    end = time.monotonic() + 60
    while not _parts(home, "device_status"):  # until it is subscribed and has landed a status
        assert p.poll() is None and time.monotonic() < end, p.stderr.read() if p.poll() is not None else "slow"
        _publish(system_broker, f"{dev}-pub", [(f"devices/{dev}/status",
                                                {"status": "online", "event_time": old.isoformat()})])
        time.sleep(0.2)
    assert _stop(p)["processed_parts"] == 0  # land only
    faults = [(f"devices/{dev}/telemetry", {"event_type": "fault", "severity": 3,
                                            "event_time": (old + timedelta(milliseconds=i)).isoformat()})
              for i in range(4)]
    _publish(system_broker, f"{dev}-pub", faults)  # queued in the worker's session
    p = _cli(args, env)
    end = time.monotonic() + 90
    while not _parts(home, "telemetry"):
        assert p.poll() is None and time.monotonic() < end, p.stderr.read() if p.poll() is not None else "slow"
        time.sleep(0.1)
    counts = _stop(p)
    assert counts["landed"]["telemetry"] == 4 and counts["processed_parts"] >= 2  # the status parts and these
    with duckdb.connect(str(home / "crm.duckdb"), read_only=True) as con:
        tickets = con.sql("SELECT device_id, category, status, fault_count FROM crm.crm.service_ticket").fetchall()
    assert tickets == [(dev, "device_fault_spike", "open", 3)]  # opened at the third fault (min_count 3)
    report = verify(open_store(Home(home)))
    assert report.ok and report.segments >= 2  # each pass's lineage, chained


def test_stream_with_a_broken_spec_exits_2_naming_it_before_it_subscribes(tmp_path):
    """The processing process compiles the specs; a broken one stops `weftline stream` with exit code 2 and
    the spec's error — no broker is contacted (port 1 would refuse)."""
    import shutil

    mdir = tmp_path / "mappings"
    shutil.copytree(ROOT / "mappings", mdir)
    spec = mdir / "device_fault_spike_ticket.yaml"
    spec.write_text(spec.read_text().replace("expr: \"'device_fault_spike'\"", "expr: \"nosuchfunction(device_id)\""))
    env = {**os.environ, "WEFTLINE_MQTT_PORT": "1", "WEFTLINE_MQTT_CLIENT_ID": f"wl-{uuid.uuid4().hex[:8]}"}
    p = _cli(["iot_fleet", "--mappings-dir", str(mdir), "--home", str(tmp_path / "home")], env)
    out, errs = p.communicate(timeout=120)
    assert p.returncode == 2, errs[-2000:]
    said = errs.replace("\n", "")  # the console wraps long lines
    assert "device_fault_spike_ticket.yaml:21: unknown function 'nosuchfunction'" in said
    assert "refused" not in said and not (tmp_path / "home" / "landing").exists()
