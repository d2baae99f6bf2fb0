"""One sync of an integration: read → land → (cursor) → map → load → lineage, resumable.

The landing zone is the queue between reading and loading. Each landed load gets a
small status file (``state/loads/<load_id>.json``: landed → loaded, then moved to ``done/``;
:mod:`connectors.load_status`). A run first
finishes every load a crash left landed but not loaded, then reads new data; the
cursor advances only after the batch it covers has landed. Upserts on the target
key make finishing a load twice harmless, so a crash at any point loses nothing
and duplicates nothing.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from connectors.base.identity import with_load_id
from connectors.base.prefetch import prefetch
from connectors.base.home import Home
from connectors.errors import ConfigError
from connectors import load_status
from connectors.integration import Integration, load_integration
from connectors.landing import land, landed_parts
from connectors.state import StateStore
from weftline.runner import RunReport, _write_quarantine, compile_file, map_spec, new_load_id, stamp_batch

log = logging.getLogger("weftline.integrations")


def pending_loads(home: Home, integration: str) -> list[dict]:
    """The integration's loads a crash left landed and not loaded (connectors/load_status.py)."""
    return load_status.pending(home, integration)


class _timed_iter:
    """An iterator that keeps the seconds its last ``next`` took (the source's read of a batch)."""

    def __init__(self, it):
        self.it, self.seconds = it, 0.0

    def __iter__(self):
        return self

    def __next__(self):
        t = time.perf_counter()
        try:
            return next(self.it)
        finally:
            self.seconds = time.perf_counter() - t


def _open_load(integ: Integration, plans: list, home: Home, load_id: str, stream: str, lineage: bool = True):
    from weftline.loads import Load, LoadSession

    return Load([LoadSession(plan, home, load_id, f"{integ.connector}.{stream}", integ.destination, lineage=lineage)
                 for plan in plans])


def _commit(load, home: Home, load_id: str) -> list[RunReport]:
    reports = load.commit()
    load_status.set_status(home, load_id, status="loaded")
    return reports


def _finish(integ: Integration, home: Home, load_id: str, stream: str, read: int, rejected: int,
            plans: list) -> list[RunReport]:
    """Map and load every part a crashed run left landed for ``load_id``, as one load."""
    load = _open_load(integ, plans, home, load_id, stream)
    for i, part in enumerate(landed_parts(home, integ.connector, stream, load_id)):
        table = pq.read_table(part)  # what landed is what was read, plus the rejected rows (with the first part)
        load.add(table, table.num_rows + (rejected if i == 0 else 0), rejected if i == 0 else 0)
    return _commit(load, home, load_id)


def run_integration(name: str, home: Home | None = None, mappings_dir: str | Path = "mappings",
                    max_batches: int | None = None, lineage: bool = True) -> list[RunReport]:
    """One sync: finish loads a crash left behind, then read what is new.

    The connector's batches land as parts of one load until it holds ``load_rows`` rows; each part
    is mapped and staged as it lands and the load commits once (docs/adr/0207). The cursor advances
    after each part has landed, so a crash re-reads nothing and the next run finishes the load.
    ``lineage=False`` skips lineage capture (for measuring what it costs; the CLI always captures).
    """
    home = home or Home()
    mappings_dir = Path(mappings_dir)
    integ = load_integration(name, mappings_dir, home=home)
    plans = {stream: [compile_file(mappings_dir / f"{spec}.yaml", home) for spec in specs]
             for stream, specs in integ.streams.items()}  # compiled once for the run
    _check_entities(integ.name, plans)
    reports: list[RunReport] = []
    for doc in pending_loads(home, integ.name):
        log.warning("finishing load %s of %s.%s left landed by an earlier run", doc["load_id"], integ.name, doc["stream"])
        reports += _finish(integ, home, doc["load_id"], doc["stream"], doc["read"], doc["rejected"],
                           plans[doc["stream"]])
    if integ.connector == "iot_mqtt":  # push-style: `weftline stream` lands; a run maps what was landed
        reports += drain_landed(name, home, mappings_dir)
        apply_retention(integ, home)
        return reports
    source = integ.source(home)
    states = StateStore(home)
    with ThreadPoolExecutor(1, thread_name_prefix="wl-land") as lander:  # Parquet + fsync beside the map
        for stream in integ.streams:
            reports += _sync_stream(integ, home, source, states, stream, plans[stream], lander, max_batches,
                                    lineage)
    apply_retention(integ, home)
    return reports


def apply_retention(integ: Integration, home: Home) -> list:
    """Prune each stream's landing by the integration's ``landing.keep`` (nothing when unset; ADR 0287)."""
    from connectors.retention import prune_streams

    return prune_streams(home, integ.connector, integ.streams, integ.landing_keep)


def _check_entities(name: str, plans: dict[str, list]) -> None:
    """Two specs of one stream may not write the same entity: their loads would upsert the same rows in
    one load (each nulling the fields the other sets), and on PostgreSQL the second would wait for the
    first one's writer lock, which is held until the load commits."""
    for stream, specs in plans.items():
        seen: dict[str, str] = {}
        for plan in specs:
            for t in plan.targets:
                if t.entity in seen and seen[t.entity] != plan.spec.id:
                    raise ConfigError(f"integration {name!r}, stream {stream!r}: specs {seen[t.entity]!r} and "
                                      f"{plan.spec.id!r} both write entity {t.entity!r}; merge them into one spec "
                                      "(one target per entity)")
                seen[t.entity] = plan.spec.id


def _stamped(batches, system: str, stream: str):
    """Each batch with its rows stamped (identity, payload hash; the load id is set when the load is known):
    run by the read-ahead thread, so stamping overlaps the mapping of the batch before."""
    for batch in batches:
        t = time.perf_counter()
        stamped = stamp_batch(batch.table, system, stream, "") if batch.table.num_rows else None
        yield batch, stamped, time.perf_counter() - t


def _land_part(stamped: pa.Table, home: Home, integ: Integration, stream: str, load_id: str, states: StateStore,
               state: dict, read: int, rejected: int) -> None:
    """Land one part durably, then record it: the load's status (landed) and the cursor past it."""
    land(stamped, home, integ.connector, stream, load_id)
    load_status.set_status(home, load_id, integration=integ.name, stream=stream, status="landed", read=read,
                           rejected=rejected)
    states.set(integ.name, stream, state)  # only now: the part is durable


def _wait_landed(landing, load) -> None:
    t = time.perf_counter()
    landing.result()
    load.time("land", time.perf_counter() - t)


def _sync_stream(integ: Integration, home: Home, source, states: StateStore, stream: str, plans: list, lander,
                 max_batches: int | None, lineage: bool = True) -> list[RunReport]:
    """Read one stream into loads of up to ``load_rows`` rows (see :func:`run_integration`)."""
    reports: list[RunReport] = []
    load_id, load, rows, read, rejected = None, None, 0, 0, 0
    try:
        # the source reads the next batch on a thread of its own while this one is landed and mapped
        batches = _timed_iter(enumerate(prefetch(_stamped(source.read(stream, states.get(integ.name, stream)),
                                                          integ.connector, stream))))
        for i, (batch, stamped, stamp_seconds) in batches:
            if max_batches is not None and i >= max_batches:
                break
            if batch.table.num_rows == 0:
                lid = load_id or new_load_id()
                _write_quarantine(home, integ.connector, stream, lid, f"rejected-{i:05d}", batch.rejected)
                states.set(integ.name, stream, batch.state)
                reports.append(RunReport(lid, "-", "-", f"{integ.connector}.{stream}", read=batch.read_count,
                                         rejected=batch.rejected.num_rows))
                continue
            if load_id is None:
                lid = new_load_id()
                load = _open_load(integ, plans, home, lid, stream, lineage)
                load_id, rows, read, rejected = lid, 0, 0, 0
            load.time("read", batches.seconds)  # what the read-ahead did not hide
            load.time("stamp (read-ahead thread)", stamp_seconds)
            _write_quarantine(home, integ.connector, stream, load_id, f"rejected-{i:05d}", batch.rejected)
            stamped = with_load_id(stamped, load_id)
            read, rejected = read + batch.read_count, rejected + batch.rejected.num_rows
            landing = lander.submit(_land_part, stamped, home, integ, stream, load_id, states, batch.state,
                                    read=read, rejected=rejected)
            try:
                if not load.deferred:  # this part's rows commit in add(): durable first
                    _wait_landed(landing, load)
                load.add(stamped, batch.read_count, batch.rejected.num_rows)  # a deferred load maps meanwhile
            finally:
                _wait_landed(landing, load)
            rows += stamped.num_rows
            if rows >= integ.load_rows:
                reports += _commit(load, home, load_id)
                load_id = None
        if load_id is not None:
            reports += _commit(load, home, load_id)
    except BaseException:
        if load_id is not None:  # what landed stays; the next run finishes the load from the landing zone
            load.abort()
        raise
    return reports


def drain_landed(name: str, home: Home | None = None, mappings_dir: str | Path = "mappings",
                 consumer: str = "runner", streams: list[str] | None = None) -> list[RunReport]:
    """Map and load what push-style listeners (MLLP, MQTT) landed and ``consumer`` has not processed yet.

    Each consumer keeps its own offsets over the landing zone, so the stream worker, this runner and
    an Airflow task can each drain the same landing independently. A part is marked done only after
    its load committed; a crash re-drains it, and the upsert makes that harmless.
    """
    from connectors.iot_mqtt.consumers import drain, mark_done

    home = home or Home()
    mappings_dir = Path(mappings_dir)
    integ = load_integration(name, mappings_dir, home=home)
    reports: list[RunReport] = []
    for stream, specs in integ.streams.items():
        if streams is not None and stream not in streams:
            continue
        parts = list(drain(home, integ.connector, stream, consumer))
        if not parts:
            continue
        table = pa.concat_tables([t for _, _, t in parts], promote_options="permissive")
        load_id = new_load_id()
        for spec_name in specs:
            plan = compile_file(mappings_dir / f"{spec_name}.yaml", home)
            reports.append(map_spec(plan, table, home, load_id, f"{integ.connector}.{stream}", table.num_rows, 0,
                                    integ.destination))
        for part_load, path, _ in parts:
            mark_done(home, integ.connector, stream, consumer, part_load, path)
    return reports
