"""One consumer's processing passes over the landing zone: drain every stream, hand the tables to
``process``, then mark the parts done. A failing ``process`` keeps the parts pending and backs off
(0.5 s doubling to 30 s); landing goes on meanwhile. The stream worker runs these passes on its own
thread (docs/adr/0285) or in a child process (:mod:`connectors.iot_mqtt.child`, docs/adr/0286).

>>> import tempfile, pyarrow as pa
>>> from connectors.base.home import Home
>>> from connectors.landing import land
>>> home, seen = Home(tempfile.mkdtemp()), []
>>> _ = land(pa.table({"a": [1, 2]}), home, "iot_mqtt", "telemetry", "L1")
>>> p = Passes(home, "w", ("telemetry",), lambda tables: seen.append(tables["telemetry"].num_rows))
>>> p.run(force=True), seen, p.run(force=True), (p.stats.processed_parts, p.stats.processed_rows)
(1, [2], 0, (1, 2))
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from connectors.base.home import Home
from connectors.iot_mqtt.consumers import Listing, drain, mark_done
from connectors.iot_mqtt.ingest import SYSTEM

log = logging.getLogger(__name__)
Process = Callable[[dict[str, pa.Table]], object]


@dataclass
class Stats:
    received: int = 0
    acked: int = 0
    quarantined: int = 0
    landed: dict[str, int] = field(default_factory=dict)
    processed_parts: int = 0
    processed_rows: int = 0
    process_failures: int = 0
    connects: int = 0


class Passes:
    """Not safe to run twice at once: one thread (or one process, :mod:`connectors.iot_mqtt.child`) runs them."""

    def __init__(self, home: Home, consumer: str, streams: tuple[str, ...], process: Process,
                 stats: Stats | None = None, written: dict[Path, pa.Table] | None = None,
                 load_parts: int | None = None):
        self.home, self.consumer, self.streams, self.process = home, consumer, streams, process
        self.load_parts = load_parts  # the writer's parts_per_load: complete loads are not listed again
        self.listings = {s: Listing() for s in streams}  # each stream's load folders, read again when they change
        self.stats = stats if stats is not None else Stats()
        self.written = written  # part path -> the table just landed there (a hand-off on the same process)
        self.dirty = threading.Event()  # something landed (or failed) since the last pass
        self.busy = threading.Event()  # a pass is running
        self.retry_at = 0.0
        self.backoff = 0.5

    def run(self, force: bool = False) -> int:
        """One pass if something landed (``force``: in any case, also during a backoff); the parts processed."""
        if not force and (not self.dirty.is_set() or time.monotonic() < self.retry_at):
            return 0
        self.dirty.clear()  # before draining: a part landed from now on sets it again
        self.busy.set()
        try:
            pending = {s: list(drain(self.home, SYSTEM, s, self.consumer, self.written, self.load_parts,
                                     self.listings[s])) for s in self.streams}
            pending = {s: parts for s, parts in pending.items() if parts}
            if not pending:
                return 0
            tables = {s: pa.concat_tables([t for _, _, t in parts], promote_options="permissive")
                      for s, parts in pending.items()}
            self.process(tables)
        except Exception:  # the runner's failure (or an unreadable part): keep the parts pending, retry
            self.dirty.set()
            self.stats.process_failures += 1
            self.retry_at = time.monotonic() + self.backoff
            log.exception("iot_mqtt: processing failed; the landed parts stay pending, retry in %.1fs", self.backoff)
            self.backoff = min(self.backoff * 2, 30.0)
            return 0
        finally:
            self.busy.clear()
        self.backoff = 0.5
        for s, parts in pending.items():
            last = {load_id: path for load_id, path, _ in parts}  # parts in order: marks every earlier one too
            for load_id, path in last.items():
                mark_done(self.home, SYSTEM, s, self.consumer, load_id, path)
            self.stats.processed_parts += len(parts)
        self.stats.processed_rows += sum(t.num_rows for t in tables.values())
        return sum(len(p) for p in pending.values())

    def wait(self) -> float:
        """How long a processing loop waits for the next landed part: until a due retry, else a short tick."""
        return max(0.0, self.retry_at - time.monotonic()) if self.dirty.is_set() else 0.2
