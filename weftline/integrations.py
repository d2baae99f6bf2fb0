"""One sync of an integration: read → land → (cursor) → map → load → lineage, resumable.

The landing zone is the queue between reading and loading. Each landed load gets a
small status file (``state/loads/<load_id>.json``: landed → loaded). A run first
finishes every load a crash left landed but not loaded, then reads new data; the
cursor advances only after the batch it covers has landed. Upserts on the target
key make finishing a load twice harmless, so a crash at any point loses nothing
and duplicates nothing.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pyarrow as pa

from connectors.base.files import write_atomic
from connectors.base.home import Home
from connectors.integration import Integration, load_integration
from connectors.landing import read_landed
from connectors.state import StateStore
from weftline.runner import RunReport, _write_quarantine, compile_file, map_spec, new_load_id, stamp_and_land

log = logging.getLogger("weftline.integrations")


def _status_path(home: Home, load_id: str) -> Path:
    return home.state / "loads" / f"{load_id}.json"


def _set_status(home: Home, load_id: str, **fields) -> None:
    p = _status_path(home, load_id)
    doc = json.loads(p.read_text()) if p.exists() else {}
    doc.update(fields, load_id=load_id)
    write_atomic(p, json.dumps(doc, sort_keys=True).encode())


def pending_loads(home: Home, integration: str) -> list[dict]:
    d = home.state / "loads"
    if not d.is_dir():
        return []
    docs = [json.loads(p.read_text()) for p in sorted(d.glob("*.json"))]
    return [doc for doc in docs if doc.get("integration") == integration and doc.get("status") == "landed"]


def _finish(integ: Integration, home: Home, load_id: str, stream: str, read: int, rejected: int,
            mappings_dir: Path) -> list[RunReport]:
    landed = read_landed(home, integ.connector, stream, load_id)
    reports = []
    for spec_name in integ.streams[stream]:
        plan = compile_file(mappings_dir / f"{spec_name}.yaml", home)
        reports.append(map_spec(plan, landed, home, load_id, f"{integ.connector}.{stream}", read, rejected,
                                integ.destination))
    _set_status(home, load_id, status="loaded")
    return reports


def run_integration(name: str, home: Home | None = None, mappings_dir: str | Path = "mappings",
                    max_batches: int | None = None) -> list[RunReport]:
    """One sync: finish loads a crash left behind, then read what is new."""
    home = home or Home()
    mappings_dir = Path(mappings_dir)
    integ = load_integration(name, mappings_dir, home=home)
    reports: list[RunReport] = []
    for doc in pending_loads(home, integ.name):
        log.warning("finishing load %s of %s.%s left landed by an earlier run", doc["load_id"], integ.name, doc["stream"])
        reports += _finish(integ, home, doc["load_id"], doc["stream"], doc["read"], doc["rejected"], mappings_dir)
    if integ.connector == "iot_mqtt":  # push-style: `weftline stream` lands; a run maps what was landed
        return reports + drain_landed(name, home, mappings_dir)
    source = integ.source(home)
    states = StateStore(home)
    for stream in integ.streams:
        for i, batch in enumerate(source.read(stream, states.get(integ.name, stream))):
            if max_batches is not None and i >= max_batches:
                break
            load_id = new_load_id()
            _write_quarantine(home, integ.connector, stream, load_id, "rejected", batch.rejected)
            if batch.table.num_rows == 0:
                states.set(integ.name, stream, batch.state)
                reports.append(RunReport(load_id, "-", "-", f"{integ.connector}.{stream}", read=batch.read_count,
                                         rejected=batch.rejected.num_rows))
                continue
            stamp_and_land(batch.table, home, integ.connector, stream, load_id)
            _set_status(home, load_id, integration=integ.name, stream=stream, status="landed",
                        read=batch.read_count, rejected=batch.rejected.num_rows)
            states.set(integ.name, stream, batch.state)  # only now: the batch is durable
            reports += _finish(integ, home, load_id, stream, batch.read_count, batch.rejected.num_rows, mappings_dir)
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
