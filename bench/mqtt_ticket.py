"""Publish → ticket committed in the CRM, at 1 k events/s, against a real Mosquitto (issue 5).

One run per configuration (lineage on, lineage off; ``--dlt-baseline`` adds the CRM loaded
through dlt only), each with a fresh WEFTLINE_HOME and MQTT session:

- a Mosquitto started here (``connectors.iot_mqtt.broker.start_broker``);
- the ``iot_fleet`` integration's stream worker as ``weftline stream iot_fleet`` runs it: landing + ack in
  this process, the runner's ``stream_processor`` in the worker's child process (ADR 0286; the stage
  timings are taken there); ``--thread``: on the worker's processing thread instead (ADR 0285);
- a publisher process sends device status events at ``--rate``/s for ``--seconds`` s, round
  robin over ``--devices`` devices; ``--offline`` of them report "offline" at random moments
  and then stay silent. Event times run on a simulated clock (``--speed`` × the wall clock,
  starting ahead of it, as the fleet demo does), so the rule's 120 s of *event time* pass in
  seconds. Every message carries its wall-clock publish time ``sent``.

A ticket is due when the stateful stage's frontier (newest event time − lateness) reaches
``offline_since + 120 s``: the event that makes it due is the first one published with an
event time ≥ ``offline_since + 120 s + 30 s``; the publish log gives its publish time. The
ticket is committed when ``map_and_load`` (load + lineage commit) returns for the load id
the ticket row carries. Latency = commit time − that publish time. The same run measures
publish → landed (durable Parquet + ack, as ``bench/mqtt.py``) for every message, and
per-stage times from wrappers (land, stateful, map, load, lineage, OpenLineage, rest).

    .venv/bin/python bench/mqtt_ticket.py [--seconds 20] [--rate 1000] [--dlt-baseline] [--keep-open]
"""

from __future__ import annotations

import argparse
import bisect
import json
import multiprocessing as mp
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# run as a script, bench/ comes first on sys.path and bench/lineage.py would shadow the lineage package
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
HOLD_S, LATENESS_S = 120, 30  # mappings/device_offline_ticket.yaml: for 120s, lateness 30s


# --- the publisher (its own process) ------------------------------------------------------

def publisher(port: int, rate: int, seconds: float, devices: int, offline: int, speed: float,
              sim0_iso: str, seed: int, out_path: str) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    rnd = random.Random(seed)
    n = int(rate * seconds)
    names = [f"bench-dev-{i:05d}" for i in range(devices)]
    # the message index at which each dropping device says "offline" (then stays silent);
    # late enough that its rotation has started, early enough for the ticket to open in the run
    due_wall = (HOLD_S + LATENESS_S) / speed
    drops = sorted(rnd.sample(range(devices, max(devices + 1, n - int((due_wall + 1.0) * rate))), offline))
    dropping = rnd.sample(names, offline)
    drop_at = dict(zip(drops, dropping))
    online = list(names)
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{uuid.uuid4().hex[:6]}")
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    sim0 = datetime.fromisoformat(sim0_iso)
    log_sent, log_event = [], []
    start_wall, start_mono, last, rr = time.time(), time.monotonic(), None, 0
    for i in range(n):
        if i in drop_at:
            device, status = drop_at[i], "offline"
            online.remove(device)
        else:
            device, status = online[rr % len(online)], "online"
            rr += 1
        sent = time.time()
        when = sim0 + timedelta(seconds=(sent - start_wall) * speed)
        body = json.dumps({"status": status, "event_time": when.isoformat(), "sent": sent})
        last = c.publish(f"devices/{device}/status", body, qos=1)
        log_sent.append(sent)
        log_event.append(when.timestamp())
        time.sleep(max(0.0, start_mono + (i + 1) / rate - time.monotonic()))
    last.wait_for_publish(120)
    c.disconnect()
    c.loop_stop()
    Path(out_path).write_text(json.dumps({"sent": log_sent, "event": log_event, "dropped": dropping,
                                          "seconds": time.monotonic() - start_mono}))


# --- timing wrappers around the real stages (this process) -------------------------------

class Timings:
    """Seconds per stage per load id, and when each load id's map_and_load returned."""

    def __init__(self) -> None:
        self.stage: dict[str, list[float]] = defaultdict(list)
        self.committed: dict[str, float] = {}
        self.load_path: dict[str, str] = {}
        self.land_latency: list[float] = []
        self.lock = threading.Lock()

    def add(self, name: str, seconds: float) -> None:
        with self.lock:
            self.stage[name].append(seconds)


def _timed(t: Timings, name: str, fn):
    def wrapper(*a, **kw):
        t0 = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            t.add(name, time.perf_counter() - t0)
    return wrapper


class _TimedStore:
    """The lineage store with every call timed (as one "lineage" figure per call)."""

    def __init__(self, store, t: Timings) -> None:
        self._store, self._t = store, t

    def __getattr__(self, name):
        attr = getattr(self._store, name)
        return _timed(self._t, "lineage", attr) if callable(attr) else attr


def instrument(t: Timings, lineage: bool):
    """Patch the runner's stage functions for this process; returns an undo function."""
    import lineage as lineage_pkg
    import weftline.runner as runner
    from connectors.crm.duckdb_dlt import DuckDbDestination
    from transforms.compile import Plan

    saved = [(runner, "map_and_load"), (runner, "stateful_stage"), (runner, "_openlineage"),
             (Plan, "apply"), (DuckDbDestination, "load"), (lineage_pkg, "open_store")]
    saved = [(obj, name, getattr(obj, name)) for obj, name in saved]
    orig_mal, orig_load, orig_open = runner.map_and_load, DuckDbDestination.load, lineage_pkg.open_store

    def map_and_load(*a, **kw):
        kw["lineage"] = lineage
        t0 = time.perf_counter()
        out = orig_mal(*a, **kw)
        t.committed[a[3]] = time.time()  # load id: rows and lineage committed
        t.add("map_and_load", time.perf_counter() - t0)
        return out

    def load(self, entity, table, key, write, load_id):
        t0 = time.perf_counter()
        r = orig_load(self, entity, table, key=key, write=write, load_id=load_id)
        t.add("load", time.perf_counter() - t0)
        t.load_path[load_id] = r.path
        return r

    runner.map_and_load = map_and_load
    runner.stateful_stage = _timed(t, "stateful", runner.stateful_stage)
    runner._openlineage = _timed(t, "openlineage", runner._openlineage)
    Plan.apply = _timed(t, "map", Plan.apply)
    DuckDbDestination.load = load
    lineage_pkg.open_store = lambda *a, **kw: _TimedStore(_timed(t, "lineage", orig_open)(*a, **kw), t)

    def undo():
        for obj, name, value in saved:
            setattr(obj, name, value)
    return undo


def child_processor(mappings: str, home_root: str, lineage: bool, out_path: str):
    """The processing process's step (``weftline stream``'s child, ADR 0286) with the stage timings of this
    module; after each pass the timings so far are written to ``out_path`` for the parent to read."""
    from weftline.runner import stream_processor_of

    t = Timings()
    instrument(t, lineage)
    inner = stream_processor_of("iot_fleet", mappings, home_root)

    def process(tables):
        out = inner(tables)
        tmp = Path(out_path + ".tmp")
        tmp.write_text(json.dumps({"committed": t.committed, "load_path": t.load_path, "stage": t.stage}))
        tmp.replace(out_path)
        return out

    process.close = inner.close
    return process


# --- one run ---------------------------------------------------------------------------

def run_once(a, lineage: bool, dlt_only: bool, keep_open: bool = False, thread: bool = False) -> dict:
    """One run: the worker as ``weftline stream`` runs it (processing in its child process), or with
    ``thread`` the embedded mode (a function on the worker's processing thread, ADR 0285)."""
    from functools import partial

    from connectors.base.home import Home
    from connectors.iot_mqtt.child import InChild
    from connectors.integration import load_integration
    from connectors.iot_mqtt.broker import start_broker
    from connectors.iot_mqtt.config import MqttConfig
    from connectors.iot_mqtt.worker import Worker
    from weftline.runner import stream_processor

    root = Path(tempfile.mkdtemp(prefix="bench-ticket-"))
    home = Home(root)
    os.environ["WEFTLINE_HOME"] = str(root)
    if dlt_only:
        os.environ["WEFTLINE_CRM_URL"] = f"duckdb://{home.crm_duckdb}?fast_path=false"
    else:
        os.environ.pop("WEFTLINE_CRM_URL", None)
    broker = start_broker()
    os.environ["WEFTLINE_MQTT_PORT"] = str(broker.port)
    os.environ["WEFTLINE_MQTT_CLIENT_ID"] = f"bench-ticket-{uuid.uuid4().hex[:6]}"
    t = Timings()
    undo = instrument(t, lineage) if thread else (lambda: None)
    timings_path = root / "child-timings.json"
    kept = None
    if keep_open:  # what a runner hook would do: one destination (one connection) for the worker's life
        import connectors.crm as crm
        from connectors.crm.duckdb_dlt import DuckDbDestination

        kept = DuckDbDestination(home, home.crm_duckdb, "crm", keep_open=True)
        orig_open_destination = crm.open_destination
        crm.open_destination = lambda home, url=None: kept
    try:
        integ = load_integration("iot_fleet", REPO / "mappings", home=home)
        process = stream_processor(integ, home) if thread else \
            InChild(partial(child_processor, str(REPO / "mappings"), str(root), lineage, str(timings_path)))
        cfg_dict = dict(integ.config)
        if a.max_ms:
            cfg_dict["batch"] = {**cfg_dict.get("batch", {}), "max_ms": a.max_ms}
        cfg = MqttConfig.from_dict(cfg_dict)

        class TimedWorker(Worker):
            def _land_and_ack(self, batch):
                t0 = time.perf_counter()
                super()._land_and_ack(batch)
                now = time.time()
                t.add("land", time.perf_counter() - t0)
                t.land_latency.extend(now - json.loads(m.payload)["sent"] for _, m in batch)

        worker = TimedWorker(cfg, home, process, "bench")
        stop = threading.Event()
        th = threading.Thread(target=worker.run, args=(stop,), daemon=True)
        th.start()
        if not worker.connected.wait(30):
            raise RuntimeError("the worker did not subscribe")
        sim0 = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=5)
        log_path = root / "publish-log.json"
        ctx = mp.get_context("spawn")
        pub = ctx.Process(target=publisher, args=(broker.port, a.rate, a.seconds, a.devices, a.offline, a.speed,
                                                  sim0.isoformat(), a.seed, str(log_path)))
        load_before = os.getloadavg()
        pub.start()
        pub.join()
        load_after = os.getloadavg()
        n_sent = int(a.rate * a.seconds)
        deadline = time.monotonic() + 60
        while worker.stats.acked < n_sent and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # the last micro-batch is processed
        stop.set()
        th.join(60)
        if thread:
            process.close()  # the runner's stream processor keeps its destination open until the worker stops
        else:  # the child's stage timings (it has ended: the stop waited for its last pass)
            got = json.loads(timings_path.read_text())
            t.committed.update(got["committed"])
            t.load_path.update(got["load_path"])
            for k, v in got["stage"].items():
                t.stage[k].extend(v)
    finally:
        undo()
        broker.stop()
        if kept is not None:
            kept.close()
            crm.open_destination = orig_open_destination
    log = json.loads(log_path.read_text())
    return measure(home, t, log, worker.stats, load_before, load_after)


def _tickets(home) -> list[tuple]:
    import duckdb

    with duckdb.connect(str(home.crm_duckdb), read_only=True) as con:
        return con.sql("SELECT device_id, epoch_us(offline_since), _wl_load_id FROM crm.crm.service_ticket"
                       " WHERE status = 'open'").fetchall()


def measure(home, t: Timings, log: dict, stats, load_before, load_after) -> dict:
    sent, event = log["sent"], log["event"]
    lat, paths, missing = [], [], 0
    for device, since_us, load_id in _tickets(home):
        due = since_us / 1e6 + HOLD_S + LATENESS_S
        i = bisect.bisect_left(event, due)
        if i >= len(event) or load_id not in t.committed:
            missing += 1
            continue
        lat.append(t.committed[load_id] - sent[i])
        paths.append(t.load_path.get(load_id, "?"))
    return {"ticket": lat, "ticket_paths": paths, "unmeasured": missing, "dropped": len(log["dropped"]),
            "landed": t.land_latency, "stages": dict(t.stage), "acked": stats.acked,
            "publish_s": log["seconds"], "load": (load_before, load_after)}


# --- report ------------------------------------------------------------------------------

def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(p / 100 * len(xs))) - 1))] * 1000 if xs else float("nan")


def report(name: str, r: dict) -> None:
    tick, land = r["ticket"], r["landed"]
    fast = [x for x, p in zip(tick, r["ticket_paths"]) if p == "fast"]
    print(f"\n== {name}: {r['acked']} events acked in {r['publish_s']:.1f} s of publishing; "
          f"load average {r['load'][0][0]:.1f} before, {r['load'][1][0]:.1f} after")
    by_path = ", ".join(f"{p} {r['ticket_paths'].count(p)}" for p in sorted(set(r["ticket_paths"])))
    print(f"tickets: {len(tick)} measured of {r['dropped']} devices dropped ({r['unmeasured']} unmeasured); "
          f"loaded by: {by_path}")
    print(f"publish -> landed   p50 {pct(land, 50):7.0f} ms  p99 {pct(land, 99):7.0f} ms  ({len(land)} msgs)")
    print(f"publish -> ticket   p50 {pct(tick, 50):7.0f} ms  p99 {pct(tick, 99):7.0f} ms  (targets 100 / 500)")
    if fast and len(fast) != len(tick):
        print(f"  fast-path loads    p50 {pct(fast, 50):7.0f} ms  p99 {pct(fast, 99):7.0f} ms  ({len(fast)} tickets)")
    print(f"ratio ticket/landed p50 {pct(tick, 50) / pct(land, 50):7.2f}    p99 {pct(tick, 99) / pct(land, 99):7.2f}")
    st = r["stages"]
    total = sum(st.get("map_and_load", []))
    parts = {k: sum(st.get(k, [])) for k in ("stateful", "map", "load", "lineage", "openlineage")}
    calls = len(st.get("map_and_load", [])) or 1
    print(f"per micro-batch (mean of {calls} map_and_load calls; land: {len(st.get('land', []))} batches):")
    print(f"  land {statistics.fmean(st.get('land', [0])) * 1000:6.1f} ms (p99 {pct(st.get('land', []), 99):.0f})",
          end="")
    for k, v in parts.items():
        print(f" | {k} {v / calls * 1000:6.1f} ms", end="")
    print(f" | rest {(total - sum(parts.values())) / calls * 1000:6.1f} ms | map_and_load "
          f"{total / calls * 1000:6.1f} ms (p99 {pct(st.get('map_and_load', []), 99):.0f})")
    if st.get("load"):
        print(f"  load p50 {pct(st['load'], 50):.0f} ms, p99 {pct(st['load'], 99):.0f} ms, max {max(st['load']) * 1000:.0f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--offline", type=int, default=200, help="devices that drop off and stay silent")
    ap.add_argument("--speed", type=float, default=60.0, help="simulated event-time seconds per wall second")
    ap.add_argument("--max-ms", type=int, default=0, help="override the integration's micro-batch max_ms")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--dlt-baseline", action="store_true", help="also run with the CRM loaded through dlt only")
    ap.add_argument("--only", choices=["on", "off"], help="only the lineage-on or lineage-off run")
    ap.add_argument("--keep-open", action="store_true",
                    help="also run with one kept DuckDB connection for the worker's life (keep_open=True; with --thread)")
    ap.add_argument("--thread", action="store_true",
                    help="the embedded mode: processing on the worker's thread (ADR 0285), not in its child process")
    a = ap.parse_args()
    runs = [("lineage on, DuckDB fast path", True, False, False),
            ("lineage off, DuckDB fast path", False, False, False)]
    if a.keep_open and not a.thread:
        ap.error("--keep-open needs --thread (the child process keeps its connection anyway)")
    if a.keep_open:
        runs += [("lineage on, fast path, kept connection", True, False, True),
                 ("lineage off, fast path, kept connection", False, False, True)]
    if a.only:
        runs = [r for r in runs if r[1] == (a.only == "on")]
    if a.dlt_baseline:
        runs.append(("lineage on, DuckDB through dlt only (before)", True, True, False))
    mode = "processing on its thread (--thread)" if a.thread else "processing in its child process"
    print(f"iot_fleet stream worker ({mode}), Mosquitto, QoS 1, {a.rate} events/s for {a.seconds:.0f} s, "
          f"{a.devices} devices ({a.offline} drop off), event clock x{a.speed:.0f}; 2-core shared machine")
    for name, lineage, dlt_only, keep_open in runs:
        report(name, run_once(a, lineage, dlt_only, keep_open, a.thread))


if __name__ == "__main__":
    main()
