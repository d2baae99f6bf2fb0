"""One stream pass at a time, on one thread, no broker: where a micro-batch's processing time goes (issue 5).

The `iot_fleet` worker's code (``Worker._land_and_ack`` + ``process_pending`` with the runner's
``stream_processor``) on ``--batches`` micro-batches of ``--size`` status events, each landed then processed
before the next; event times advance 60 ms per event over 1 000 devices, and 200 of them say "offline" and go
silent, so about 40 % of the passes open a ticket. Prints the median time per stage of the passes that loaded a
ticket and of the others (wrappers around the runner's functions; a stage missing in the code under test is
skipped, so the same script measures an older checkout).

    .venv/bin/python bench/stream_pass.py [--batches 150] [--size 50]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]

STAGES = [  # (module, object, attribute, label)
    ("weftline.runner", None, "stateful_stage", "stateful (apply + stamp)"),
    ("weftline.runner", None, "stamp", "  stamping the incidents"),
    ("transforms.compile", "Plan", "apply", "map"),
    ("weftline.runner", None, "_openlineage", "OpenLineage"),
    ("lineage.one_segment", "OneSegment", "durable", "lineage: one segment durable"),
    ("lineage.capture", "Capture", "durable", "lineage: capture durable"),
    ("connectors.crm.duckdb_dlt", "DuckDbDestination", "load", "CRM load"),
    ("lineage.store", "Store", "commit", "lineage commit"),
    ("transforms.stateful.state", "StateSave", "commit", "state save after the commit"),
    ("transforms.stateful.state", None, "save_state", "state save after the commit (save_state)"),
]


def instrument(rec: dict, current: dict) -> None:
    import importlib

    import weftline.runner as runner

    for mod_name, obj_name, attr, label in STAGES:
        try:
            mod = importlib.import_module(mod_name)
        except ImportError:
            continue
        obj = getattr(mod, obj_name, None) if obj_name else mod
        fn = getattr(obj, attr, None) if obj is not None else None
        if fn is None:
            continue

        def wrapped(*a, _fn=fn, _label=label, **k):
            t0 = time.perf_counter()
            try:
                return _fn(*a, **k)
            finally:
                rec[current["load"]][_label] += time.perf_counter() - t0
        setattr(obj, attr, wrapped)
    orig = runner.map_and_load

    def map_and_load(*a, **k):
        current["load"] = a[3]
        t0 = time.perf_counter()
        result = orig(*a, **k)
        rec[a[3]]["pass (map_and_load)"] = time.perf_counter() - t0
        rec[a[3]]["_tickets"] = sum(o.table.num_rows for o in result.outputs)
        return result
    runner.map_and_load = map_and_load


def messages(k: int, size: int, sim0: datetime, rnd_offline: set, silent: set, devices: list, mid: list):
    from connectors.iot_mqtt.decode import Message

    out = []
    for j in range(size):
        i = k * size + j
        device = devices[i % len(devices)]
        if device in silent:
            continue
        status = "offline" if i in rnd_offline else "online"
        if status == "offline":
            silent.add(device)
        mid[0] += 1
        body = json.dumps({"status": status, "event_time": (sim0 + timedelta(seconds=i * 0.06)).isoformat()})
        out.append((0, Message(f"devices/{device}/status", body.encode(), 0, False, False, mid[0],
                               int(time.time() * 1000))))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=150)
    ap.add_argument("--size", type=int, default=50)
    a = ap.parse_args()
    from connectors.base.home import Home
    from connectors.integration import load_integration
    from connectors.iot_mqtt.config import MqttConfig
    from connectors.iot_mqtt.worker import Worker
    from weftline.runner import stream_processor

    rec: dict = defaultdict(lambda: defaultdict(float))
    current = {"load": None}
    instrument(rec, current)
    home = Home(tempfile.mkdtemp(prefix="bench-pass-"))
    os.environ["WEFTLINE_HOME"] = str(home.root)
    integ = load_integration("iot_fleet", REPO / "mappings", home=home)
    process = stream_processor(integ, home)
    worker = Worker(MqttConfig.from_dict(dict(integ.config)), home, process, "bench-pass")
    rnd = random.Random(1)
    offline, silent, mid = set(rnd.sample(range(a.batches * a.size), 200)), set(), [0]
    devices = [f"dev-{i:04d}" for i in range(1000)]
    sim0 = datetime.now(timezone.utc) + timedelta(seconds=5)
    land = []
    try:
        for k in range(a.batches):
            batch = messages(k, a.size, sim0, offline, silent, devices, mid)
            t0 = time.perf_counter()
            worker._land_and_ack(batch)
            land.append(time.perf_counter() - t0)
            worker.process_pending()
    finally:
        process.close()
    passes = [r for r in list(rec.values())[10:] if "pass (map_and_load)" in r]  # the first ones create tables
    tickets = [r for r in passes if r["_tickets"]]
    others = [r for r in passes if not r["_tickets"]]
    labels = [k for k in ["pass (map_and_load)"] + [s[3] for s in STAGES] if any(k in r for r in passes)]
    print(f"{len(tickets)} ticket passes, {len(others)} others (after the first 10); load average "
          f"{os.getloadavg()[0]:.2f}; landing median {statistics.median(land) * 1000:.1f} ms")
    print(f"{'median per pass':44s} {'ticket':>8s} {'other':>8s}")
    for k in labels:
        print(f"{k:44s} {statistics.median([r[k] for r in tickets]) * 1000:6.2f} ms "
              f"{statistics.median([r[k] for r in others]) * 1000:6.2f} ms")


if __name__ == "__main__":
    main()
