"""Benchmark: the stateful stage (transforms/stateful) on a device-status stream, vs a per-event loop.

In one run, on the same events (devices flapping online/offline, event time ≈ arrival order):
  * weftline: the offline rule of mappings/device_offline_ticket.yaml (cooldown and lateness set
    to 0 so both sides decide the same), applied per Arrow batch with state carried over,
    once in memory and once with save_state after every batch (the streaming worker's cost);
  * baseline: a hand-written per-event Python loop with a timer heap, the same semantics.
Both must produce the same number of open / close rows (checked, printed). Prints events/s and ratios.

    uv run python bench/stateful.py [--events 1000000] [--devices 10000] [--batch 50000] [--flip 0.005]
    uv run python bench/stateful.py --rule rate     # the fault-spike rate rule vs a per-event deque loop
"""

from __future__ import annotations

import argparse
import heapq
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
pa.set_cpu_count(1)

from transforms.spec import load_spec  # noqa: E402
from transforms.stateful import State, compile_stateful, save_state  # noqa: E402

US = 1_000_000


def make_events(n: int, devices: int, flip: float, seed: int = 11) -> pa.Table:
    """Status reports (heartbeats) of a fleet; each report changes the device's status with ``flip``."""
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.integers(0, 2 * US * 1000 // devices, n))  # each device reports about every 1000 s
    dev = rng.integers(0, devices, n)
    order = np.argsort(dev, kind="stable")
    flips = (rng.random(n) < flip).astype(np.int64)[order]
    csum = np.cumsum(flips)
    starts = np.flatnonzero(np.r_[True, dev[order][1:] != dev[order][:-1]])
    base = np.repeat(csum[starts] - flips[starts], np.diff(np.r_[starts, n]))
    offline = np.empty(n, dtype=bool)
    offline[order] = (csum - base) % 2 == 1
    status = np.where(offline, "offline", "online")
    return pa.table({
        "device_id": pa.array(np.char.add("dev-", dev.astype(str))),
        "event_time": pa.array(t, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        "status": pa.array(status),
    })


def baseline(events: pa.Table, hold_us: int) -> tuple[int, int]:
    """Per-event loop: runs per device, offline timers in a heap fired by the global clock."""
    dev = events.column("device_id").to_pylist()
    ts = events.column("event_time").cast(pa.int64()).to_pylist()
    st = events.column("status").to_pylist()
    last: dict[str, tuple[str, int, str | None]] = {}  # device -> (status, run start, status before the run)
    open_: dict[str, int] = {}
    timers: list[tuple[int, str, int]] = []
    opens = closes = 0

    for d, t, s in zip(dev, ts, st):
        while timers and timers[0][0] <= t:  # the clock (newest event time) reached a deadline
            _, dd, t0 = heapq.heappop(timers)
            if last[dd] == ("offline", t0, "online") and dd not in open_:
                open_[dd] = t0
                opens += 1
        prev = last.get(d)
        if prev is None or prev[0] != s:
            if s == "online" and d in open_:
                del open_[d]
                closes += 1
            last[d] = (s, t, prev[0] if prev else None)
            if s == "offline":
                heapq.heappush(timers, (t + hold_us, d, t))
    return opens, closes


def make_telemetry(n: int, devices: int, seed: int = 3) -> pa.Table:
    """Telemetry of a fleet, ~10 events/s, 30 % faults, spanning ~28 h (so the 24 h baseline fills)."""
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.integers(0, 200_000 * 1_000_000 // n, n))
    return pa.table({
        "device_id": pa.array(np.char.add("dev-", rng.integers(0, devices, n).astype(str))),
        "event_time": pa.array(t, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        "event_type": pa.array(np.where(rng.random(n) < 0.3, "fault", "info")),
        "severity": pa.array(np.ones(n, np.int64)),
    })


def rate_baseline(events: pa.Table, window: int, baseline: int, threshold: float, min_count: int,
                  cooldown: int) -> int:
    """Per-event loop: a deque of fault times per device; returns the number of open rows."""
    from collections import deque

    dev = events.column("device_id").to_pylist()
    ts = events.column("event_time").cast(pa.int64()).to_pylist()
    kind = events.column("event_type").to_pylist()
    hist: dict[str, deque] = {}
    firing: dict[str, bool] = {}
    last_fire: dict[str, int] = {}
    opens = 0
    for d, t, k in zip(dev, ts, kind):
        if k != "fault":
            continue
        q = hist.setdefault(d, deque())
        q.append(t)
        while q[0] <= t - window - baseline:
            q.popleft()
        cnt = sum(1 for x in q if x > t - window)
        base = len(q) - cnt
        fired = cnt >= min_count and (base == 0 or cnt * baseline >= threshold * base * window)
        if fired and not firing.get(d, False) and not (d in last_fire and t - last_fire[d] < cooldown):
            opens += 1
        if fired:
            last_fire[d] = t
        firing[d] = fired
    return opens


def rate_main(a) -> None:
    spec = load_spec(ROOT / "mappings" / "device_fault_spike_ticket.yaml")
    plan = compile_stateful({**spec.stateful, "lateness": "0s"}, spec.id)
    r = plan.section.rules[0]
    events = make_telemetry(a.events, a.devices)
    print(f"{a.events:,} telemetry events, {a.devices:,} devices, rule {r.name}, batches of {a.batch:,}")
    t = time.perf_counter()
    base = rate_baseline(events, r.window_us, r.baseline_us, r.threshold, r.min_count, plan.section.cooldown_us)
    t_base = time.perf_counter() - t
    t = time.perf_counter()
    state, opens = State.empty(), 0
    for lo in range(0, events.num_rows, a.batch):
        inc, _, state = plan.apply(events.slice(lo, a.batch), state)
        opens += inc.column("action").to_pylist().count("open")
    t_w = time.perf_counter() - t
    print(f"baseline  per-event Python loop (deques)  {a.events / t_base:>12,.0f} events/s  opens {base}")
    print(f"weftline  batches, state in memory        {a.events / t_w:>12,.0f} events/s  opens {opens}   "
          f"{t_base / t_w:5.1f}x baseline")
    print("same opens as the baseline:", base == opens)


def run_weftline(plan, events: pa.Table, batch: int, home: str | None) -> tuple[int, int]:
    state, opens, closes = State.empty(), 0, 0
    for lo in range(0, events.num_rows, batch):
        inc, _, state = plan.apply(events.slice(lo, batch), state)
        acts = inc.column("action").to_pylist()
        opens, closes = opens + acts.count("open"), closes + acts.count("close")
        if home:
            state = save_state(home, plan.spec_id, state)
    return opens, closes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--batch", type=int, default=50_000)
    ap.add_argument("--flip", type=float, default=0.05, help="share of reports that change the status")
    ap.add_argument("--rule", choices=["offline", "rate"], default="offline")
    a = ap.parse_args()
    if a.rule == "rate":
        return rate_main(a)
    spec = load_spec(ROOT / "mappings" / "device_offline_ticket.yaml")
    section = {**spec.stateful, "cooldown": "0s", "lateness": "0s"}
    plan = compile_stateful(section, spec.id)
    events = make_events(a.events, a.devices, a.flip)
    hold = plan.section.rules[0].hold_us
    print(f"{a.events:,} status events, {a.devices:,} devices, {a.flip:.0%} status changes, batches of {a.batch:,}")

    t = time.perf_counter()
    base = baseline(events, hold)
    t_base = time.perf_counter() - t
    t = time.perf_counter()
    mem = run_weftline(plan, events, a.batch, None)
    t_mem = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as home:
        t = time.perf_counter()
        saved = run_weftline(plan, events, a.batch, home)
        t_saved = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    rate = lambda s: f"{a.events / s:>12,.0f} events/s"  # noqa: E731
    print(f"baseline  per-event Python loop      {rate(t_base)}  opens/closes {base}")
    print(f"weftline  batches, state in memory   {rate(t_mem)}  opens/closes {mem}   {t_base / t_mem:5.1f}x baseline")
    print(f"weftline  batches + save_state each  {rate(t_saved)}  opens/closes {saved}   {t_base / t_saved:5.1f}x baseline")
    print(f"peak RSS of the whole run: {peak / 2**20:.0f} MiB")
    print("same incidents as the baseline:", base == mem == saved)


if __name__ == "__main__":
    main()
