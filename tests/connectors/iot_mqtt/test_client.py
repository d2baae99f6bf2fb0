"""Credentials and TLS from configuration, against our own Mosquitto with a password file and
a TLS listener (a throwaway CA made with the openssl CLI); the password comes from the environment."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

from connectors.errors import ConfigError
from connectors.iot_mqtt.broker import start_broker
from connectors.iot_mqtt.config import MqttConfig
from connectors.iot_mqtt.worker import Worker

pytestmark = pytest.mark.services


def _cfg(port: int, **extra) -> MqttConfig:
    return MqttConfig.from_dict({"client_id": "wl-auth-test", "port": port, "username": "weftline",
                                 "password": {"env": "WL_TEST_MQTT_PASSWORD"},
                                 "topics": [{"filter": "t/#", "stream": "telemetry"}], **extra})


def _run_briefly(w: Worker) -> None:
    stop = threading.Event()
    stop.set()  # connect, subscribe, then stop at once
    w.run(stop, connect_timeout=10)


@pytest.fixture
def auth_broker(tmp_path: Path):
    pw = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pw), "weftline", "s3cret-pw"], check=True)
    pw.chmod(0o600)
    b = start_broker(workdir=tmp_path / "b", extra_conf=f"allow_anonymous false\npassword_file {pw}\n")
    yield b
    b.stop()


def test_password_from_env_connects_and_a_wrong_one_is_a_config_error(auth_broker, home, monkeypatch):
    monkeypatch.setenv("WL_TEST_MQTT_PASSWORD", "s3cret-pw")
    w = Worker(_cfg(auth_broker.port), home)
    _run_briefly(w)
    assert w.stats.connects == 1
    assert "s3cret" not in repr(w.cfg)
    monkeypatch.setenv("WL_TEST_MQTT_PASSWORD", "wrong")
    with pytest.raises(ConfigError, match="refused the connection: Not authorized"):
        _run_briefly(Worker(_cfg(auth_broker.port), home))


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def test_tls_with_the_configured_ca(tmp_path, home, monkeypatch):
    d = tmp_path / "pki"
    d.mkdir()
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
             "-subj", "/CN=weftline test CA", cwd=d)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=127.0.0.1", cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.pem", "-days", "1", "-extfile", "san.ext", cwd=d)
    for f in d.iterdir():
        f.chmod(0o644)
    b = start_broker(workdir=tmp_path / "b", extra_conf=f"certfile {d / 'server.pem'}\nkeyfile {d / 'server.key'}\n")
    try:
        monkeypatch.setenv("WL_TEST_MQTT_PASSWORD", "unused")
        w = Worker(_cfg(b.port, tls={"ca_certs": str(d / "ca.pem")}), home)
        _run_briefly(w)
        assert w.stats.connects == 1
    finally:
        b.stop()
