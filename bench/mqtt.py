"""MQTT ingest benchmark against a real Mosquitto (ours, on a free port, no-loss settings).

Prints, in one run:
1. drain rate of a backlog of N queued QoS 1 messages: the stream worker (decode + durable
   Parquet landing + ack after landing) vs a bare paho subscriber that only counts (auto ack);
   the ratio is the figure (target ≥ 0.7);
   with ``--process``, also the whole ``weftline stream iot_fleet`` pass: the same backlog as device
   telemetry, landed, acked, then mapped (the stateful fault-spike spec), loaded into the CRM and its
   lineage committed — the rate at which the last message's pass returns;
2. publish → landed latency p50/p99 at 1 k events/s (publisher in another process);
3. peak RSS of each subscriber process.

    .venv/bin/python bench/mqtt.py [--n 50000] [--port PORT] [--process]   # --port: an existing broker
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import statistics
import tempfile
import threading
import time
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the package `lineage`, not bench/lineage.py

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402


def _props(receive_max: int) -> Properties:
    p = Properties(PacketTypes.CONNECT)
    p.SessionExpiryInterval = 3600
    p.ReceiveMaximum = receive_max
    return p


def publish(port: int, topic: str, n: int, rate: float | None) -> None:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{uuid.uuid4().hex[:6]}")
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    start, last = time.monotonic(), None
    for i in range(n):
        last = c.publish(f"{topic}/d{i % 100}/telemetry",
                         json.dumps({"seq": i, "sent": time.time(), "temp": 20.5, "fault": i % 97 == 0}), qos=1)
        if rate:
            time.sleep(max(0.0, start + (i + 1) / rate - time.monotonic()))
    last.wait_for_publish(120)
    c.disconnect()
    c.loop_stop()


def _run_worker(w, done, limit: float = 600, from_subscribed: bool = False) -> float:
    """Run worker ``w`` on a thread until ``done()`` (or ``limit`` s); the seconds from its start, or from its
    subscription (``from_subscribed``: a start-up that spawns the processing process is not timed)."""
    stop = threading.Event()
    th = threading.Thread(target=w.run, args=(stop,))
    t0 = time.monotonic()
    th.start()
    w.connected.wait(120)
    if from_subscribed:
        t0 = time.monotonic()
    while not done() and time.monotonic() - t0 < limit:
        time.sleep(0.005)
    t1 = time.monotonic()
    stop.set()
    th.join()
    return t1 - t0


def publish_telemetry(port: int, n: int) -> None:
    """A backlog of ``n`` telemetry events of 100 devices on ``devices/<id>/telemetry`` (the iot_fleet
    topics), one in 97 a fault. Event time is the send time: the live worker's watermark follows the wall
    clock (the spec's lateness is 30 s), so older event times would all be quarantined as late events."""
    from datetime import datetime, timezone

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{uuid.uuid4().hex[:6]}")
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    last = None
    for i in range(n):
        body = {"event_time": datetime.now(timezone.utc).isoformat(), "event_type": "fault" if i % 97 == 0 else "reading",
                "temp": 20.5, "sent": time.time()}
        last = c.publish(f"devices/bench-d{i % 100:03d}/telemetry", json.dumps(body), qos=1)
    last.wait_for_publish(120)
    c.disconnect()
    c.loop_stop()


def processing_session(port: int, client_id: str, topic: str, n: int, q: mp.Queue, prime: bool) -> None:
    """The ``weftline stream iot_fleet`` worker as the CLI runs it: landing + ack here, the processing passes
    (map → load → lineage) in its child process (ADR 0286); done when the passes returned from ``n`` rows.
    Timed from the subscription (the child is ready by then); the bare subscriber from its connect, a few ms earlier."""
    import os
    from functools import partial

    import duckdb
    import pyarrow.parquet as pq

    from connectors.base.home import Home
    from connectors.integration import load_integration
    from connectors.iot_mqtt.child import InChild
    from connectors.iot_mqtt.config import MqttConfig
    from connectors.iot_mqtt.worker import Worker
    from weftline.runner import stream_processor_of

    home = Home(tempfile.mkdtemp(prefix="bench-mqtt-proc-"))
    os.environ.update({"WEFTLINE_HOME": str(home.root), "WEFTLINE_MQTT_PORT": str(port),
                       "WEFTLINE_MQTT_CLIENT_ID": client_id})
    os.environ.pop("WEFTLINE_CRM_URL", None)
    mappings = Path(__file__).resolve().parents[1] / "mappings"
    integ = load_integration("iot_fleet", mappings, home=home)
    child = InChild(partial(stream_processor_of, "iot_fleet", str(mappings), str(home.root)))
    w = Worker(MqttConfig.from_dict(dict(integ.config)), home, child, "bench")
    seconds = _run_worker(w, lambda: w.stats.processed_rows >= n or prime, from_subscribed=True)
    quarantined = sum(pq.read_metadata(p).num_rows for p in (home.quarantine / "iot_mqtt").rglob("events-*.parquet"))
    tickets = 0
    if home.crm_duckdb.exists():
        with duckdb.connect(str(home.crm_duckdb), read_only=True) as con:
            if con.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'service_ticket'").fetchall()[0][0]:
                tickets = con.sql("SELECT count(*) FROM crm.crm.service_ticket").fetchall()[0][0]
    q.put({"count": w.stats.processed_rows, "seconds": seconds, "acked": w.stats.acked,
           "tally": {"processed": w.stats.processed_rows, "quarantined": quarantined, "tickets": tickets},
           "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "child_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024})


def bare_session(port: int, client_id: str, topic: str, n: int, q: mp.Queue, prime: bool) -> None:
    """A bare paho subscriber (auto ack) that counts; ``prime``: only create the session."""
    done = threading.Event()
    got = [0, 0.0]

    def on_message(client, userdata, msg):
        got[0] += 1
        if got[0] == n:
            got[1] = time.monotonic()
            done.set()

    ready = threading.Event()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.on_message = on_message
    c.on_subscribe = lambda *a: ready.set()
    c.on_connect = lambda client, *a: client.subscribe(f"{topic}/+/telemetry", qos=1)
    t0 = time.monotonic()
    c.connect("127.0.0.1", port, clean_start=False, properties=_props(5000))
    c.loop_start()
    ready.wait(10)
    if not prime:
        done.wait(600)
    c.disconnect()
    c.loop_stop()
    q.put({"count": got[0], "seconds": got[1] - t0, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})


def worker_session(port: int, client_id: str, topic: str, n: int, q: mp.Queue, prime: bool,
                   latency: bool = False) -> None:
    from connectors.base.home import Home
    from connectors.iot_mqtt.config import MqttConfig
    from connectors.iot_mqtt.worker import Worker

    cfg = MqttConfig.from_dict({"client_id": client_id, "port": port,  # default batch / receive maximum
                                "topics": [{"filter": f"{topic}/+/telemetry", "stream": "telemetry"}]})
    lat: list[float] = []

    class Timed(Worker):
        def _land_and_ack(self, batch):
            super()._land_and_ack(batch)
            if latency:
                now = time.time()
                lat.extend(now - json.loads(m.payload)["sent"] for _, m in batch)

    w = Timed(cfg, Home(tempfile.mkdtemp(prefix="bench-mqtt-")))
    seconds = _run_worker(w, lambda: w.stats.acked >= n or prime)
    q.put({"count": w.stats.acked, "seconds": seconds, "latency": lat,
           "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})


def in_child(fn, *args, **kw) -> dict:
    q: mp.Queue = mp.Queue()
    p = mp.Process(target=fn, args=(*args, q), kwargs=kw)
    p.start()
    while True:  # a child that dies would otherwise leave this waiting for its answer
        try:
            out = q.get(timeout=1)
            break
        except Exception:
            if not p.is_alive():
                raise RuntimeError(f"{fn.__name__} died (exit code {p.exitcode})")
    p.join()
    return out


def drain_rate(fn, port: int, n: int) -> dict:
    topic, cid = f"bench-{uuid.uuid4().hex[:8]}", f"bench-{uuid.uuid4().hex[:8]}"
    in_child(fn, port, cid, topic, n, prime=True)  # create the persistent session
    if fn is processing_session:
        publish_telemetry(port, n)  # backlog queued at the broker, on the integration's own topics
    else:
        publish(port, topic, n, None)
    r = in_child(fn, port, cid, topic, n, prime=False)
    r["rate"] = r["count"] / r["seconds"]
    return r


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50000)
    ap.add_argument("--port", type=int)
    ap.add_argument("--latency-seconds", type=float, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--process", action="store_true", help="also drain through the whole stream pass")
    a = ap.parse_args()
    broker = None
    if a.port is None:
        from connectors.iot_mqtt.broker import start_broker

        broker = start_broker()
    port = a.port or broker.port
    try:
        rounds = []  # interleaved, so both see the same background load (a shared 2-core machine)
        proc_rounds = []
        for _ in range(a.rounds):
            rounds.append((drain_rate(bare_session, port, a.n), drain_rate(worker_session, port, a.n)))
            if a.process:
                proc_rounds.append(drain_rate(processing_session, port, a.n))
        ratios = sorted(w["rate"] / b["rate"] for b, w in rounds)
        bare, work = sorted(rounds, key=lambda r: r[1]["rate"] / r[0]["rate"])[len(rounds) // 2]
        rate, n_lat = 1000, int(1000 * a.latency_seconds)
        topic, cid = f"bench-{uuid.uuid4().hex[:8]}", f"bench-{uuid.uuid4().hex[:8]}"
        q: mp.Queue = mp.Queue()
        wp = mp.Process(target=worker_session, args=(port, cid, topic, n_lat, q, False), kwargs={"latency": True})
        wp.start()
        time.sleep(2.0)  # the worker subscribes
        publish(port, topic, n_lat, rate)
        lat_run = q.get(timeout=600)
        wp.join()
    finally:
        if broker:
            broker.stop()
    lat = sorted(lat_run["latency"])
    p50, p99 = statistics.median(lat) * 1000, lat[int(len(lat) * 0.99) - 1] * 1000
    print(f"mosquitto on 127.0.0.1:{port}, MQTT 5, QoS 1, backlog of {a.n} messages drained")
    print(f"median of {len(rounds)} interleaved rounds:")
    print(f"bare paho subscriber (count only):   {bare['rate']:>9,.0f} msg/s  peak RSS {bare['rss_mb']:.0f} MiB")
    print(f"stream worker (land durably + ack):  {work['rate']:>9,.0f} msg/s  peak RSS {work['rss_mb']:.0f} MiB")
    print(f"ratio worker / bare (median round):  {work['rate'] / bare['rate']:>9.2f}  (target >= 0.7); "
          f"all rounds: {', '.join(f'{r:.2f}' for r in ratios)}")
    if proc_rounds:
        pr = sorted(p["rate"] / b["rate"] for (b, _), p in zip(rounds, proc_rounds))
        med = sorted(zip(rounds, proc_rounds), key=lambda r: r[1]["rate"] / r[0][0]["rate"])[len(rounds) // 2]
        print(f"stream pass (land + ack + map + load + lineage, iot_fleet telemetry): {med[1]['rate']:>9,.0f} msg/s "
              f"peak RSS {med[1]['rss_mb']:.0f} MiB; ratio to bare (median round) {med[1]['rate'] / med[0][0]['rate']:.2f}; "
              f"all rounds: {', '.join(f'{r:.2f}' for r in pr)}")
        print(f"  rows processed / events quarantined / tickets in the CRM (median round): "
              f"{' / '.join(f'{v:,}' for v in med[1]['tally'].values())}; processing process peak RSS "
              f"{med[1]['child_rss_mb']:.0f} MiB")
    print(f"publish -> landed at {rate}/s for {a.latency_seconds:.0f}s ({len(lat)} msgs): "
          f"p50 {p50:.0f} ms, p99 {p99:.0f} ms; worker peak RSS {lat_run['rss_mb']:.0f} MiB")


if __name__ == "__main__":
    main()
