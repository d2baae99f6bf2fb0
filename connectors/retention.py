"""Landing retention: delete the landed loads every reader is done with, once older than the period.

An integration may declare ``landing: {keep: 30d}`` (``d``, ``h`` or ``m``; docs/adr/0287). A load
folder ``landing/<system>/<stream>/<load_id>/`` is deleted by :func:`prune` when all of these hold:

- its newest part is older than ``keep`` (at least an hour: a writer starts a new load after ten idle
  minutes, :class:`connectors.landing.LoadRotation`, so no writer still adds to it — even with several
  writers on one stream, e.g. MQTT workers of a shared subscription on one home);
- it is not the stream's newest load (belt and braces);
- it is finished. A pulled load (``weftline run``) has a status file (:mod:`connectors.load_status`):
  it must say ``loaded`` (a ``landed`` load is still to be finished from these very files). A pushed
  load (MQTT, MLLP) has none: at least one consumer must read the stream
  (``state/consumers/<system>/<consumer>.json``) and every consumer that does must have done all of
  its parts. A consumer that lags holds the retention back; :func:`prune` says which one.

The folder is first renamed out of the stream's folder (one atomic step: a reader lists it whole or
not at all), then removed; its status file goes with it. Consumer cursors are not written here: each
consumer drops the entries of loads that are gone on its own next pass
(:func:`connectors.iot_mqtt.consumers.pending`), so no process writes another's cursor. Every
deletion is appended to ``state/retention/<system>/<stream>/<YYYY-MM>.jsonl`` — when, which load, how many
parts and bytes, the newest part's time: the audit trail of what the policy removed. The lineage
edges of those records stay (they hold no personal data); a subject export lists the records
received in a pruned load as past retention.

>>> import os, tempfile, pyarrow as pa
>>> from datetime import datetime, timedelta, timezone
>>> from connectors.base.home import Home
>>> from connectors.landing import land
>>> from connectors.iot_mqtt.consumers import mark_done
>>> home = Home(tempfile.mkdtemp())
>>> old, new = land(pa.table({"a": [1]}), home, "iot_mqtt", "s", "L1"), land(pa.table({"a": [2]}), home, "iot_mqtt", "s", "L2")
>>> mark_done(home, "iot_mqtt", "s", "worker", "L1", old); mark_done(home, "iot_mqtt", "s", "worker", "L2", new)
>>> later = datetime.now(timezone.utc) + timedelta(days=31)
>>> r = prune(home, "iot_mqtt", "s", parse_keep("30d"), now=later)
>>> r.loads, old.parent.exists(), new.parent.exists()  # L2 is the newest load: a writer may extend it
(['L1'], False, True)
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from connectors import load_status
from connectors.base.home import Home
from connectors.errors import ConfigError
from connectors.iot_mqtt.consumers import Listing, cursors, done_parts

log = logging.getLogger(__name__)
_KEEP = re.compile(r"^\s*([1-9][0-9]*)\s*([dhm])\s*$")
MIN_KEEP = timedelta(hours=1)  # > connectors.landing.IDLE_ROTATE_S: no writer still adds to a load this old
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
TRASH = ".pruned"  # under the landing root, outside every stream's folder


def parse_keep(text: str) -> timedelta:
    """``30d`` / ``12h`` / ``90m`` as a period.

    >>> parse_keep("30d"), parse_keep("90m")
    (datetime.timedelta(days=30), datetime.timedelta(seconds=5400))
    >>> parse_keep("1w")
    Traceback (most recent call last):
    connectors.errors.ConfigError: landing.keep '1w': use a whole number of days, hours or minutes, e.g. 30d, 12h, 90m
    >>> parse_keep("30m")
    Traceback (most recent call last):
    connectors.errors.ConfigError: landing.keep '30m': at least 1h (a writer may add to a load for ten idle minutes)
    """
    m = _KEEP.match(str(text))
    if not m:
        raise ConfigError(f"landing.keep {text!r}: use a whole number of days, hours or minutes, e.g. 30d, 12h, 90m")
    keep = timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    if keep < MIN_KEEP:
        raise ConfigError(f"landing.keep {text!r}: at least 1h (a writer may add to a load for ten idle minutes)")
    return keep


@dataclass
class Pruned:
    """What one :func:`prune` call removed, and what it had to keep although it is old enough."""
    system: str
    stream: str
    loads: list[str] = field(default_factory=list)
    parts: int = 0
    bytes: int = 0
    held: dict[str, str] = field(default_factory=dict)  # load id → why it stays (the first old load held only)


def _why_held(home: Home, load_id: str, parts: int, consumers: dict[str, dict]) -> str | None:
    """None when the load is finished for every reader, else why it stays."""
    status = load_status.read_status(home, load_id)
    if status is not None:
        return None if status.get("status") == load_status.DONE else f"its load is {status.get('status')}, not loaded"
    if not consumers:
        return "no consumer reads this stream"
    behind = sorted(c for c, cursor in consumers.items() if done_parts(cursor, load_id, parts) < parts)
    return f"consumer(s) {', '.join(behind)} have not processed all its parts" if behind else None


def prune(home: Home, system: str, stream: str, keep: timedelta, now: datetime | None = None) -> Pruned:
    """Delete this stream's finished loads whose newest part is older than ``keep`` (module docstring)."""
    now = now or datetime.now(timezone.utc)
    cutoff = (now - keep).timestamp()
    root = home.landing / system / stream
    out = Pruned(system, stream)
    loads = Listing().names(root)
    consumers = None
    for load_id in loads[:-1]:  # load ids sort by time; the newest stays
        files = [(p, p.stat()) for p in (root / load_id).glob("part-*.parquet")]
        newest = max((st.st_mtime for _, st in files), default=0.0)
        if newest >= cutoff:
            break  # this and every later load are younger
        consumers = cursors(home, system, stream) if consumers is None else consumers
        why = _why_held(home, load_id, len(files), consumers)
        if why is not None:
            out.held.setdefault(load_id, why)
            continue
        size = sum(st.st_size for _, st in files)
        _audit(home, system, stream, now, {  # first: a crash after it only repeats the entry on the next prune
            "pruned_at": now.isoformat(), "load_id": load_id, "parts": len(files), "bytes": size,
            "newest_part": datetime.fromtimestamp(newest, timezone.utc).isoformat(),
            "keep_seconds": int(keep.total_seconds())})
        _remove(home, root / load_id, system, stream)
        load_status.forget(home, load_id)
        out.loads.append(load_id)
        out.parts += len(files)
        out.bytes += size
    if out.held:
        load_id, why = next(iter(out.held.items()))
        log.warning("landing retention %s.%s: %d old load(s) kept, e.g. %s: %s", system, stream, len(out.held), load_id, why)
    if out.loads:
        log.info("landing retention %s.%s: removed %d load(s), %d part(s), %d bytes", system, stream,
                 len(out.loads), out.parts, out.bytes)
    return out


def prune_streams(home: Home, system: str, streams: Iterable[str], keep: timedelta | None) -> list[Pruned]:
    """:func:`prune` each stream (nothing when no ``keep`` is declared): what a sync runs at its end."""
    return [prune(home, system, s, keep) for s in streams] if keep is not None else []


class Periodic:
    """A long-lived worker's retention: :func:`prune` each stream at most once per ``interval`` seconds
    (default: a tenth of ``keep``, at most a minute). Never raises: a failed prune is logged and retried
    on a later call, and processing goes on.

    >>> import tempfile
    >>> from connectors.base.home import Home
    >>> p = Periodic(Home(tempfile.mkdtemp()), "iot_mqtt", ["s"], timedelta(days=1), clock=lambda: 5.0)
    >>> [r.stream for r in p()], p()  # the second call is within the interval
    (['s'], [])
    >>> Periodic(Home(tempfile.mkdtemp()), "iot_mqtt", ["s"], None)()  # no retention declared
    []
    """

    def __init__(self, home: Home, system: str, streams: Iterable[str], keep: timedelta | None,
                 interval: float | None = None, clock: Callable[[], float] = time.monotonic):
        self.home, self.system, self.streams, self.keep, self.clock = home, system, tuple(streams), keep, clock
        self.interval = interval if interval is not None else (min(60.0, keep.total_seconds() / 10) if keep else 0.0)
        self.next = float("-inf")

    def __call__(self) -> list[Pruned]:
        if self.keep is None or self.clock() < self.next:
            return []
        self.next = self.clock() + self.interval
        try:
            return prune_streams(self.home, self.system, self.streams, self.keep)
        except Exception:  # a disk or permission problem: the data stays, processing goes on
            log.exception("landing retention of %s failed; retried in %.0f s", self.system, self.interval)
            return []


def _remove(home: Home, folder: Path, system: str, stream: str) -> None:
    """Rename the folder out of the stream's listing (atomic), then delete it; leftovers of a crash too."""
    trash = home.landing / TRASH
    trash.mkdir(parents=True, exist_ok=True)
    target = trash / f"{system}.{stream}.{folder.name}"
    os.replace(folder, target)
    for left in trash.iterdir():
        shutil.rmtree(left, ignore_errors=True)


def _log_dir(home: Home, system: str, stream: str) -> Path:
    return home.state / "retention" / system / stream


def _audit(home: Home, system: str, stream: str, now: datetime, entry: dict) -> None:
    """Append one line to the stream's retention log of the month (``<YYYY-MM>.jsonl``), fsynced."""
    d = _log_dir(home, system, stream)
    d.mkdir(parents=True, exist_ok=True)
    with open(d / f"{now:%Y-%m}.jsonl", "ab") as fh:
        fh.write(json.dumps(entry, sort_keys=True).encode() + b"\n")
        fh.flush()
        os.fsync(fh.fileno())


def pruned_loads(home: Home, system: str, stream: str) -> dict[str, dict]:
    """load id → its entry in the retention log (for a subject export's past-retention records)."""
    out = {}
    for p in sorted(_log_dir(home, system, stream).glob("*.jsonl")):
        for line in p.read_text().splitlines():
            try:
                e = json.loads(line)
            except ValueError:  # a line torn by a crash mid-append: its load is pruned again, and logged again
                continue
            out[e["load_id"]] = e
    return out
