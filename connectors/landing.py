"""Durable landing of raw records, as Parquet, before anything is acknowledged.

Layout: ``<home>/landing/<system>/<stream>/<load_id>/part-<seq>.parquet``.
A part is written to a temporary name, fsynced and renamed, so a reader in
another process (an Airflow task, a second stream consumer) only ever sees
whole files. Only after :func:`land` returns may a connector ack a message or
advance its cursor.

>>> import pyarrow as pa, tempfile
>>> from connectors.base.home import Home
>>> home = Home(tempfile.mkdtemp())
>>> p = land(pa.table({"a": [1, 2]}), home, "web_analytics", "events", "L1")
>>> p.relative_to(home.landing).as_posix()
'web_analytics/events/L1/part-00000.parquet'
>>> read_landed(home, "web_analytics", "events", "L1").num_rows
2
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from connectors.base.files import write_atomic
from connectors.base.home import Home


def new_load_id() -> str:
    """A load id that sorts by time, ``YYYYMMDDTHHMMSSffffffZ-<8 hex>``: a load's landing folder is named
    by it, so listing the folders lists the loads oldest first (retention and the consumers rely on it).

    >>> a = new_load_id(); len(a), a[8], a[21] == "Z", a < new_load_id()
    (31, 'T', True, True)
    """
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(4)


IDLE_ROTATE_S = 600  # a writer starts a new load after this long without a part (retention relies on it)
PARTS_PER_LOAD = 500  # and after this many parts (a folder's listing stays small)


class LoadRotation:
    """The load id a long-lived writer (the MQTT ingestor, the MLLP listener) lands its next part into: a new
    one after ``parts`` parts, or when the last part is older than ``idle`` seconds. So no load is extended
    once it has been idle for ten minutes — landing retention (``connectors.retention``, which keeps an hour
    at least) never removes a folder a writer could still add to, even with several writers on one stream.

    >>> now = [0.0]
    >>> r = LoadRotation(parts=2, idle=600, clock=lambda: now[0], first="L0")
    >>> a, b, c = r.next(), r.next(), r.next()  # two parts per load
    >>> (a, b) == ("L0", "L0") and c != "L0"
    True
    >>> now[0] = 601.0; r.next() != c  # idle for longer than ``idle``: a new load
    True
    """

    def __init__(self, parts: int = PARTS_PER_LOAD, idle: float = IDLE_ROTATE_S,
                 clock: Callable[[], float] = time.monotonic, first: str | None = None):
        self.parts, self.idle, self.clock = parts, idle, clock
        self.current, self._n, self._last = first, 0, clock()

    def next(self) -> str:
        now = self.clock()
        if self.current is None or self._n >= self.parts or (self._n and now - self._last > self.idle):
            self.current, self._n = new_load_id(), 0
        self._n += 1
        self._last = now
        return self.current


def load_dir(home: Home, system: str, stream: str, load_id: str) -> Path:
    return home.landing / system / stream / load_id


def land(table: pa.Table, home: Home, system: str, stream: str, load_id: str) -> Path:
    """Write ``table`` as the next part of this load; durable when it returns."""
    d = load_dir(home, system, stream, load_id)
    d.mkdir(parents=True, exist_ok=True)
    seq = len(list(d.glob("part-*.parquet")))
    final = d / f"part-{seq:05d}.parquet"
    if table.num_rows < SMALL_PART_ROWS:  # a micro-batch: choosing dictionaries and statistics costs more
        low, stats = False, False           # than they save on a few hundred rows (0.9 → 0.5 ms per part)
    else:
        low = dictionary_columns(table)
        stats = low + [f.name for f in table.schema if not (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))]
    codec = part_codec(table.num_rows)
    write_atomic(final, lambda fh: pq.write_table(table, fh, compression=codec, use_dictionary=low,
                                                  write_statistics=stats))
    return final


SMALL_PART_ROWS = 10_000


def part_codec(rows: int) -> str:
    """zstd, except for a small part (a stream's micro-batch): lz4. zstd costs ~0.6–1.5 ms more on a part of
    50–2 000 rows of ~18 columns (measured 2026-12-02, bench/README-mqtt-ticket.md) for a few KB saved;
    every reader takes either.

    >>> part_codec(50), part_codec(1_000_000)
    ('lz4', 'zstd')
    """
    return "lz4" if rows < SMALL_PART_ROWS else "zstd"


def dictionary_columns(table: pa.Table, sample: int = 2048) -> list[str]:
    """Text columns whose first ``sample`` values repeat (fewer than 1 in 8 distinct): dictionary-encode
    those only. Building a dictionary for ids and hashes costs time and is then thrown away.

    >>> dictionary_columns(pa.table({"status": ["open", "shipped"] * 600, "id": [str(i) for i in range(1200)]}))
    ['status']
    """
    out = []
    for f in table.schema:
        if pa.types.is_string(f.type) or pa.types.is_large_string(f.type) or pa.types.is_dictionary(f.type):
            head = table.column(f.name).slice(0, sample)
            if len(head) and pc.count_distinct(head).as_py() * 8 < len(head):
                out.append(f.name)
    return out


def landed_parts(home: Home, system: str, stream: str, load_id: str) -> list[Path]:
    return sorted(load_dir(home, system, stream, load_id).glob("part-*.parquet"))


def read_landed(home: Home, system: str, stream: str, load_id: str) -> pa.Table:
    """All parts of one load, as one table (schemas unified; new columns become nulls)."""
    parts = landed_parts(home, system, stream, load_id)
    if not parts:
        raise FileNotFoundError(f"nothing landed for {system}.{stream} load {load_id}")
    tables = [pq.read_table(p) for p in parts]
    return pa.concat_tables(tables, promote_options="permissive")
