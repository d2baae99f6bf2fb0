"""Fixtures for the MQTT connector tests: the real Mosquitto on 127.0.0.1:1883 (started if
down, never skipped), a private Mosquitto per test that must stop or restart its broker,
a unique topic prefix and client id per test, and a publisher."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from connectors.base.home import Home
from connectors.iot_mqtt.broker import LocalBroker, start_broker

SYSTEM_PORT = 1883


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def system_broker() -> int:
    """The machine's Mosquitto on 1883; started with the system config if it is down."""
    if not _listening(SYSTEM_PORT):
        subprocess.run(["mosquitto", "-d", "-c", "/etc/mosquitto/mosquitto.conf"], check=False)
        for _ in range(50):
            if _listening(SYSTEM_PORT):
                break
            time.sleep(0.1)
        else:
            pytest.fail("Mosquitto is not listening on 127.0.0.1:1883 and could not be started")
    return SYSTEM_PORT


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """A private Mosquitto (persistence on, temp dir) on a free port, for stop/restart tests."""
    b = start_broker(workdir=tmp_path / "broker")
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def prefix() -> str:
    return f"wltest-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path / "home")


class Publisher:
    """A QoS 1 paho publisher (persistent session, so a broker restart does not drop its queue)."""

    def __init__(self, port: int, client_id: str):
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        self.client.max_queued_messages_set(0)
        self.client.max_inflight_messages_set(100)
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.infos: list[mqtt.MQTTMessageInfo] = []

    def publish(self, topic: str, payload: bytes | str | dict, retain: bool = False) -> None:
        if isinstance(payload, dict):
            payload = json.dumps(payload)
        end = time.monotonic() + 30
        while True:  # while the broker is away, wait and publish again (a duplicate is fine: same payload)
            info = self.client.publish(topic, payload, qos=1, retain=retain)
            if info.rc == mqtt.MQTT_ERR_SUCCESS:
                self.infos.append(info)
                return
            if time.monotonic() > end:
                raise AssertionError(f"publisher: cannot publish: {mqtt.error_string(info.rc)}")
            time.sleep(0.05)

    def wait(self, timeout: float = 30) -> None:
        end = time.monotonic() + timeout
        for info in self.infos:
            while not info.is_published():
                if time.monotonic() > end:
                    raise AssertionError("publisher: messages not acknowledged by the broker in time")
                time.sleep(0.01)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher_factory() -> Iterator:
    made: list[Publisher] = []

    def make(port: int) -> Publisher:
        p = Publisher(port, f"wlpub-{uuid.uuid4().hex[:8]}")
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()
