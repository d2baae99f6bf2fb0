"""No message lost, none duplicated downstream: kill -9 the worker mid-stream, restart the
broker mid-stream. The worker runs in its own process (tests/connectors/iot_mqtt/worker_proc.py)
and loads into a real DuckDB file, deduplicating by the stable record id; its processing passes run on
its own thread, or in its child process (docs/adr/0286, as ``weftline stream`` runs them)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.connectors.iot_mqtt.duck_sink import rows

pytestmark = pytest.mark.services
WORKER = Path(__file__).with_name("worker_proc.py")


def start_worker(cfg: dict, tmp: Path, db: str, mode: str = "thread") -> subprocess.Popen:
    cf = tmp / "cfg.json"
    cf.write_text(json.dumps(cfg))
    home = tmp / "home"
    (home / "ready").unlink(missing_ok=True)
    log = open(tmp / "worker.log", "ab")
    p = subprocess.Popen([sys.executable, str(WORKER), str(cf), str(home), db, mode], stdout=log, stderr=log)
    end = time.monotonic() + 60
    while not (home / "ready").exists():
        assert p.poll() is None and time.monotonic() < end, (tmp / "worker.log").read_text()[-2000:]
        time.sleep(0.05)
    return p


def landed_seqs(home: Path) -> list[int]:
    out = []
    for part in (home / "landing" / "iot_mqtt" / "telemetry").rglob("part-*.parquet"):
        out += [json.loads(s)["seq"] for s in pq.read_table(part).column("payload_json").to_pylist()]
    return out


def wait_landed(home: Path, n: int, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while len(set(landed_seqs(home))) < n:
        assert time.monotonic() < end, f"only {len(set(landed_seqs(home)))} of {n} landed"
        time.sleep(0.2)


def stop_gracefully(p: subprocess.Popen) -> None:
    p.send_signal(signal.SIGTERM)
    assert p.wait(30) == 0


def cfg_for(prefix: str, port: int) -> dict:
    return {"client_id": f"{prefix}-worker", "port": port, "batch": {"max_messages": 100, "max_ms": 100},
            "topics": [{"filter": f"{prefix}/devices/+/telemetry", "stream": "telemetry"}]}


def publish_stream(pub, prefix: str, n: int, rate: float) -> threading.Thread:
    def go():
        for i in range(n):
            pub.publish(f"{prefix}/devices/d{i % 10}/telemetry", {"seq": i, "temp": i % 50})
            time.sleep(1 / rate)

    th = threading.Thread(target=go, daemon=True)
    th.start()
    return th


def gone(pid: int) -> bool:
    """The process has exited (a zombie not yet reaped by whoever adopted it counts as exited)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.parametrize("mode", ["thread", "child"])
def test_kill_9_mid_stream_then_restart_loses_and_duplicates_nothing(own_broker, prefix, tmp_path,
                                                                     publisher_factory, mode):
    """On our own Mosquitto with the no-loss settings (docs/mqtt-broker.md): the system one keeps
    Mosquitto's default max_queued_messages 1000, which drops what an offline session misses beyond it.
    With the passes in a child process, the child of the killed worker ends by itself (its pipe closed)."""
    n, db = 3000, str(tmp_path / "crm.duckdb")
    cfg = cfg_for(prefix, own_broker.port)
    worker = start_worker(cfg, tmp_path, db, mode)
    pub = publisher_factory(own_broker.port)
    th = publish_stream(pub, prefix, n, rate=1500)
    wait_landed(tmp_path / "home", 800)
    os.kill(worker.pid, signal.SIGKILL)  # mid-stream: some landed and not acked, some not landed
    worker.wait(10)
    if mode == "child":
        child = int((tmp_path / "home" / "child.pid").read_text())
        end = time.monotonic() + 60
        while not gone(child):
            assert time.monotonic() < end, "the processing process outlived its killed worker"
            time.sleep(0.1)
    th.join(30)
    pub.wait()
    worker = start_worker(cfg, tmp_path, db, mode)
    wait_landed(tmp_path / "home", n)
    stop_gracefully(worker)
    got = rows(db, "telemetry")
    seqs = sorted(json.loads(r[1])["seq"] for r in got)
    assert seqs == list(range(n))  # 0 lost, 0 duplicated after dedup by record id
    assert len(landed_seqs(tmp_path / "home")) >= n  # the landing may hold redelivered copies


def test_broker_restart_mid_stream_loses_nothing(own_broker, prefix, tmp_path, publisher_factory):
    n, db = 3000, str(tmp_path / "crm.duckdb")
    cfg = cfg_for(prefix, own_broker.port)
    worker = start_worker(cfg, tmp_path, db)
    pub = publisher_factory(own_broker.port)
    th = publish_stream(pub, prefix, n, rate=1000)
    wait_landed(tmp_path / "home", 700)
    own_broker.restart()  # mid-stream; SIGTERM: mosquitto saves its persistence db, sessions survive
    th.join(60)
    pub.wait(60)
    wait_landed(tmp_path / "home", n)
    stop_gracefully(worker)
    stats = json.loads((tmp_path / "home" / "stats.json").read_text())
    assert stats["connects"] >= 2  # the worker did reconnect to the restarted broker
    got = rows(db, "telemetry")
    assert sorted(json.loads(r[1])["seq"] for r in got) == list(range(n))
