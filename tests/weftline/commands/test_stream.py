"""``weftline stream INTEGRATION``: a real process on the real Mosquitto, stopped with SIGTERM
after it landed what was published (the current micro-batch finished and acked)."""

from __future__ import annotations

import json
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
