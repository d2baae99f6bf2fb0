"""A local MQTT broker for the demo, the benchmark and the broker-restart tests.

Prefers the real ``mosquitto`` binary on a free loopback port with a temporary config
(persistence on, so a restart keeps sessions and queued QoS 1 messages). Only when no
binary exists does it fall back to ``amqtt`` if that package is installed (see
docs/adr/0284-embedded-broker.md for its QoS quirks); otherwise a clear error.

>>> "persistence true" in mosquitto_conf(18830, "/tmp/p")
True
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from connectors.errors import FatalError

log = logging.getLogger(__name__)

# The settings that matter for no loss (docs/mqtt-broker.md explains each).
NO_LOSS_SETTINGS = {
    "persistence": "true",
    "autosave_interval": "1",  # seconds between saves of the in-memory db
    "autosave_on_changes": "false",
    "max_queued_messages": "100000",  # per offline persistent session; 0 = unlimited
    "max_queued_bytes": "0",
    "max_inflight_messages": "1000",  # MQTT 3.1.1 clients: unacked QoS 1 in flight to one client
    "persistent_client_expiration": "7d",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mosquitto_conf(port: int, persistence_dir: str, extra: str = "") -> str:
    import getpass

    anon = [] if "allow_anonymous" in extra else ["allow_anonymous true"]
    lines = [f"listener {port} 127.0.0.1", *anon, f"persistence_location {persistence_dir}/",
             f"user {getpass.getuser()}",  # as root, mosquitto would switch to 'mosquitto' and fail to save
             "log_dest stderr", "log_type error", "log_type warning"]
    lines += [f"{k} {v}" for k, v in NO_LOSS_SETTINGS.items()]
    return "\n".join(lines) + "\n" + extra


def wait_port(host: str, port: int, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise FatalError(f"no MQTT broker listening on {host}:{port} after {timeout:.0f}s")


@dataclass
class LocalBroker:
    """A broker we started; ``restart()`` keeps its port and persistence directory."""

    port: int
    workdir: Path
    kind: str = "mosquitto"
    host: str = "127.0.0.1"
    extra_conf: str = ""  # appended to the config, e.g. password_file / TLS listener settings
    proc: subprocess.Popen | None = field(default=None, repr=False)
    _amqtt: object | None = field(default=None, repr=False)

    def start(self) -> "LocalBroker":
        if self.kind == "mosquitto":
            conf = self.workdir / "mosquitto.conf"
            conf.write_text(mosquitto_conf(self.port, str(self.workdir), self.extra_conf))
            log_file = open(self.workdir / "mosquitto.log", "ab")
            self.proc = subprocess.Popen([shutil.which("mosquitto"), "-c", str(conf)],
                                         stdout=log_file, stderr=log_file)
        else:
            self._amqtt = _start_amqtt(self.port)
        wait_port(self.host, self.port)
        return self

    def stop(self, kill: bool = False) -> None:
        if self.proc is not None:
            (self.proc.kill if kill else self.proc.terminate)()
            self.proc.wait(10)
            self.proc = None
        if self._amqtt is not None:
            self._amqtt.stop()  # type: ignore[attr-defined]
            self._amqtt = None

    def restart(self) -> None:
        self.stop()
        self.start()


def start_broker(port: int | None = None, workdir: str | Path | None = None, extra_conf: str = "") -> LocalBroker:
    """Start mosquitto (or, without the binary, amqtt) on a free loopback port.

    ``extra_conf`` lines apply to the one listener (e.g. ``password_file``, ``certfile``).
    """
    wd = Path(workdir or tempfile.mkdtemp(prefix="weftline-mqtt-"))
    wd.mkdir(parents=True, exist_ok=True)
    kind = "mosquitto" if shutil.which("mosquitto") else "amqtt"
    if kind == "amqtt":
        log.warning("no mosquitto binary: falling back to amqtt (slower; QoS quirks, see docs/mqtt-broker.md)")
    return LocalBroker(port or free_port(), wd, kind, extra_conf=extra_conf).start()


def _start_amqtt(port: int):
    try:
        import asyncio

        from amqtt.broker import Broker  # optional; not a dependency
    except ImportError:
        raise FatalError("no mosquitto binary and amqtt is not installed: install mosquitto "
                         "(apt-get install mosquitto) or `uv add amqtt`") from None
    import threading

    loop = asyncio.new_event_loop()
    broker = Broker({"listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
                     "sys_interval": 0, "auth": {"allow-anonymous": True}}, loop=loop)
    threading.Thread(target=loop.run_forever, daemon=True).start()
    asyncio.run_coroutine_threadsafe(broker.start(), loop).result(10)

    class _Handle:
        def stop(self) -> None:
            asyncio.run_coroutine_threadsafe(broker.shutdown(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)

    return _Handle()
