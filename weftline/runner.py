"""The runner: compose the stages (read → land → map → load → lineage) for one load.

Each stage is a function of files on disk and the load id, so an Airflow task can
run any stage in its own process; the CLI and the DAGs call the same functions.
A stage failure is wrapped once in :class:`connectors.errors.StageError` naming the
stage and the load id.

>>> lid = new_load_id()
>>> len(lid), lid[8], lid[-9]
(31, 'T', '-')
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from connectors.base.home import Home
from connectors.base.identity import stamp
from connectors.errors import ConfigError, StageError
from connectors.landing import land, new_load_id
from transforms import MapResult, Plan, SpecInvalid, compile_spec, load_spec
from transforms.sources import SCHEMA_DIR

log = logging.getLogger("weftline.runner")


@dataclass
class TargetCounts:
    entity: str
    read: int
    mapped: int
    quarantined: int
    filtered: int
    loaded: int = 0  # rows written to the destination
    superseded: int = 0  # mapped rows replaced by a later row with the same key in the same batch (upsert)


@dataclass
class RunReport:
    load_id: str
    spec: str
    spec_version: str
    source: str
    read: int  # inputs read, including those rejected before mapping
    rejected: int  # inputs that could not be parsed (quarantined before mapping)
    targets: list[TargetCounts] = field(default_factory=list)
    destination: str = ""
    landing: str = ""
    quarantine: list[str] = field(default_factory=list)
    absorbed: int = 0  # stateful specs: events taken into keyed state (the targets count the incidents derived)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage (read, land, map, load, lineage, …)

    @property
    def reconciles(self) -> bool:
        if self.absorbed:
            return self.read == self.absorbed + self.rejected and all(
                t.read == t.mapped + t.quarantined + t.filtered and t.loaded + t.superseded == t.mapped for t in self.targets)
        return all(t.read == t.mapped + t.quarantined + t.filtered and t.loaded + t.superseded == t.mapped
                   for t in self.targets) and (
            not self.targets or self.read == self.targets[0].read + self.rejected)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["reconciles"] = self.reconciles
        return d


def source_identity(connector: str, stream: str) -> tuple[list[str] | None, str | None]:
    """Key and position columns declared in the source schema (``x-key``, ``x-position``), if any."""
    p = SCHEMA_DIR / f"{connector}.{stream}.json"
    if not p.exists():
        return None, None
    doc = json.loads(p.read_text())
    key = doc.get("x-key")
    return (list(key) if key else None), doc.get("x-position")


def compile_file(spec_path: str | Path, home: Home) -> Plan:
    try:
        return compile_spec(load_spec(spec_path), subject_key=home.subject_key())
    except SpecInvalid as err:
        raise ConfigError(str(err)) from None


def _write_quarantine(home: Home, system: str, stream: str, load_id: str, name: str, table: pa.Table) -> Path | None:
    if table.num_rows == 0:
        return None
    d = home.quarantine / system / stream / load_id
    d.mkdir(parents=True, exist_ok=True)
    p = d / f"{name}.parquet"
    tmp = p.with_suffix(".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, p)
    return p


def stamp_and_land(table: pa.Table, home: Home, system: str, stream: str, load_id: str,
                   landing_stream: str | None = None) -> tuple[pa.Table, Path]:
    """Stamp identity on a batch and land it durably. ``landing_stream`` lands it under another folder
    (file backfills: ``<stream>@file``) so the stream's live consumers do not drain it as new traffic."""
    stamped = stamp_batch(table, system, stream, load_id)
    return stamped, land(stamped, home, system, landing_stream or stream, load_id)


def stamp_batch(table: pa.Table, system: str, stream: str, load_id: str) -> pa.Table:
    """Stamp identity with the key/position the source schema declares, where the batch has those columns
    (otherwise the payload hash identifies a record)."""
    key, position = source_identity(system, stream)
    if key and not all(k in table.column_names for k in key):
        key = None
    if position and position not in table.column_names:
        position = None
    return stamp(table, system=system, stream=stream, key=key, position=position, load_id=load_id)


def map_spec(plan: Plan, table: pa.Table, home: Home, load_id: str, source: str, read: int, rejected: int,
             destination_url: str | None = None, **kwargs) -> RunReport:
    """map_and_load one spec over a landed table, with its report saved beside the run's state."""
    report = RunReport(load_id, plan.spec.id, plan.spec.version_hash, source, read=read, rejected=rejected)
    map_and_load(plan, table, home, load_id, report, destination_url, **kwargs)
    _save_report(home, report)
    return report


class KeptStateful:
    """A long-lived worker's stateful stage of one spec: compiled once, its state kept between batches
    (``transforms.stateful.state.KeptState``)."""

    def __init__(self, plan: Plan, home: Home):
        from transforms.stateful import compile_stateful
        from transforms.stateful.rates import connect
        from transforms.stateful.state import KeptState

        self.splan = compile_stateful(plan.spec.stateful, plan.spec.id)
        self.state = KeptState(home.root, plan.spec.id)
        self.con = connect() if self.splan.section.rates else None  # the rate rules' DuckDB, opened once

    def close(self) -> None:
        self.state.close()
        if self.con is not None:
            self.con.close()


def stateful_stage(plan: Plan, landed: pa.Table, home: Home, load_id: str, now: datetime | None = None,
                   kept: KeptStateful | None = None):
    """Events → incidents through the spec's keyed state; returns (incidents stamped as records, quarantined
    events, the new state's :class:`~transforms.stateful.state.StateSave` — committed only after the load
    committed; a kept stage writes its files while the load runs, docs/adr/0305)."""
    from transforms.stateful import compile_stateful, load_state
    from transforms.stateful.state import StateSave

    spec = plan.spec
    if kept is not None:
        splan, state, con = kept.splan, kept.state.load(), kept.con
    else:
        splan, state, con = compile_stateful(spec.stateful, spec.id), load_state(home.root, spec.id), None
    incidents, quarantined, new_state = splan.apply(landed, state, now=now, con=con)
    system, stream = spec.source["connector"], spec.source["stream"]
    stamped = stamp(incidents, system=system, stream=f"{stream}.incidents", key=["incident_key"],
                    position="row_id" if "row_id" in incidents.column_names else None, load_id=load_id)
    if kept is not None:
        return stamped, quarantined, kept.state.saving(new_state)
    return stamped, quarantined, StateSave(home.root, spec.id, new_state, pool=None)


def map_and_load(plan: Plan, landed: pa.Table, home: Home, load_id: str, report: RunReport,
                 destination_url: str | None = None, lineage: bool = True, now: datetime | None = None,
                 destination=None, lineage_store=None, stateful: KeptStateful | None = None,
                 one_segment: bool = False) -> MapResult:
    """Map a landed table and load it, with lineage around the load (begin → append → load → commit).

    A long-lived worker passes what it keeps between loads: ``destination`` (an open CRM destination),
    ``lineage_store`` (an open lineage store) and ``stateful`` (the compiled stateful stage and its state);
    otherwise each is opened / compiled / read for this load. ``one_segment``: a small load of a
    one-target spec writes its lineage as one segment right before the destination load
    (:mod:`lineage.one_segment`, docs/adr/0109) instead of three on the capture thread.
    """
    system, stream = plan.spec.source["connector"], plan.spec.source["stream"]
    received = landed
    try:
        from connectors.crm import open_destination

        dest = destination or open_destination(home, destination_url)
        report.destination = dest.name
    except Exception as err:
        raise StageError.wrap("load", load_id, err) from err
    store = cap = None
    one = False
    if lineage:
        from lineage import open_store
        from lineage.capture import Capture
        from lineage.one_segment import MAX_ROWS, OneSegment

        store = lineage_store if lineage_store is not None else open_store(home)
        store.recover()
        store.begin(load_id, dest.name, defer=True)  # recorded with the first segment (one ledger commit less)
        one = one_segment and len(plan.targets) == 1 and landed.num_rows <= MAX_ROWS
        # one segment for a small load (docs/adr/0109), else per-edge work on a background thread (0108)
        cap = OneSegment(store, load_id) if one else Capture(store, load_id)
        cap.received(received)  # (Capture: hashed and written while the engine maps)
    loading = False  # once the destination was called, only recover() may judge the load
    state_save = None
    try:
        result, state_save = _map(plan, landed, received, home, load_id, report, now, cap, stateful)
        if state_save is not None:  # a kept stage: the new state's files are written while the load runs
            state_save.start()      # (current only after the commit below)
        q = _write_quarantine(home, system, stream, load_id, f"mapped-{plan.spec.id}", result.quarantine)
        if q:
            report.quarantine.append(str(q))
        _openlineage("START", plan, home, load_id)
        if cap is not None:
            cap.mapped(plan.spec, result)
            if one:  # the loaded edges go into the one pending segment, before the destination load (0109)
                for out in result.outputs:
                    cap.loaded_pending(dest.name, out.entity, out.table, out.key)
            cap.durable()  # ADR 0100: received + mapped durable and in the ledger before the destination commits
            store.ensure_begun(load_id)  # the load is in the ledger before any of its rows can be in the CRM
        for out in result.outputs:
            counts = result.counts[out.entity]
            tc = TargetCounts(out.entity, **counts)
            job = cap.prepare_loaded(dest.name, out.entity, out.table, out.key) if cap is not None and not one \
                else None
            loading = True
            try:
                loaded = dest.load(out.entity, out.table, key=out.key, write=out.write, load_id=load_id)
            except Exception as err:
                raise StageError.wrap("load", load_id, err) from err
            tc.loaded = loaded.rows
            tc.superseded = getattr(loaded, "superseded", 0)
            if job is not None:
                cap.loaded(job)  # the loaded segment enters the ledger only after the destination committed
            report.targets.append(tc)
        if store is not None:
            store.commit(load_id)
    except BaseException:
        if state_save is not None:
            state_save.abort()  # the old state stays current: the parts are processed again
        if cap is not None:
            cap.close()
            if not loading:  # the destination never saw this load: nothing for recover() to judge
                store.rollback(load_id)
        raise
    finally:
        if cap is not None:
            cap.close()
    if state_save is not None:
        state_save.commit()  # after the CRM and the lineage committed (docs/adr/0285)
    _openlineage("COMPLETE", plan, home, load_id, counts=result.counts)
    return result


def _map(plan: Plan, landed: pa.Table, received: pa.Table, home: Home, load_id: str, report: RunReport,
         now: datetime | None, cap, stateful: KeptStateful | None = None):
    """The map stage (stateful events → incidents first, when the spec has state); returns the result and
    the save of the new keyed state (a ``StateSave``, committed once the load committed), or None."""
    system, stream = plan.spec.source["connector"], plan.spec.source["stream"]
    state_save = None
    try:
        if plan.spec.stateful:
            landed, events_q, state_save = stateful_stage(plan, landed, home, load_id, now, kept=stateful)
            q = _write_quarantine(home, system, stream, load_id, f"events-{plan.spec.id}", events_q)
            if q:
                report.quarantine.append(str(q))
            report.rejected += events_q.num_rows
            report.absorbed = received.num_rows - events_q.num_rows  # events taken into keyed state
            if cap is not None:
                cap.received(landed)  # the incidents the stateful stage derived
        result = plan.apply(landed, load_id=load_id)
    except Exception as err:
        raise StageError.wrap("map", load_id, err) from err
    return result, state_save


def _openlineage(event: str, plan: Plan, home: Home, load_id: str, counts: dict | None = None) -> None:
    """OpenLineage run events beside our own store (file transport by default; never fails a sync)."""
    from lineage import openlineage as ol

    try:
        ol.emit_run(event, ol.run_id_for(load_id), plan.spec.id, [plan.spec.raw], home=home, load_id=load_id, counts=counts)
    except Exception as err:  # the emitter keeps undelivered events itself; a bug here must not stop a load
        log.warning("OpenLineage %s event for %s not emitted: %s", event, load_id, err)


def run_file(spec_path: str | Path, input_path: str | Path, home: Home | None = None,
             destination_url: str | None = None, lineage: bool = True) -> RunReport:
    """Map a file and load it: a backfill, or the replay of an export."""
    from connectors.file.read import read_file

    home = home or Home()
    plan = compile_file(spec_path, home)
    load_id = new_load_id()
    system, stream = plan.spec.source["connector"], plan.spec.source["stream"]
    try:
        table, rejected = read_file(input_path)
    except ConfigError:
        raise
    except Exception as err:
        raise StageError.wrap("read", load_id, err) from err
    report = RunReport(load_id, plan.spec.id, plan.spec.version_hash, f"{system}.{stream}",
                       read=table.num_rows + rejected.num_rows, rejected=rejected.num_rows)
    q = _write_quarantine(home, system, stream, load_id, "rejected", rejected)
    if q:
        report.quarantine.append(str(q))
    try:
        landed, path = stamp_and_land(table, home, system, stream, load_id, landing_stream=f"{stream}@file")
    except Exception as err:
        raise StageError.wrap("land", load_id, err) from err
    report.landing = str(path.parent)
    map_and_load(plan, landed, home, load_id, report, destination_url, lineage)
    _save_report(home, report)
    return report


def _save_report(home: Home, report: RunReport) -> None:
    d = home.state / "runs"
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{report.load_id}.json").write_text(json.dumps(report.to_dict(), indent=2))


def stream_processor_of(integration: str, mappings_dir: str, home_root: str):
    """:func:`stream_processor` from picklable arguments: what the stream worker's processing process
    builds once it started (``connectors.iot_mqtt.child.InChild``, docs/adr/0286)."""
    from connectors.integration import load_integration

    home = Home(home_root)
    return stream_processor(load_integration(integration, Path(mappings_dir), home=home, check_specs=False), home)


def stream_processor(integration, home: Home):
    """The `weftline stream` worker's processing step: each drained micro-batch → map → load → lineage.

    Specs are compiled once here; the returned function is called with ``{stream: landed table}``
    and raises on failure, so the worker keeps the parts pending and retries them.
    """
    from pathlib import Path

    from connectors.crm import open_destination
    from connectors.retention import Periodic
    from lineage import open_store

    mappings_dir = Path(integration.path).parent if integration.path else Path("mappings")
    plans = {stream: [compile_file(mappings_dir / f"{name}.yaml", home) for name in specs]
             for stream, specs in integration.streams.items()}
    # one destination for the worker's life; DuckDB keeps its connection open (docs/adr/0206): ~30 ms less
    # per micro-batch, and no other process opens the CRM file while the worker runs
    dest = open_destination(home, integration.destination)
    if hasattr(dest, "keep_open"):
        dest.keep_open = True
    # and one lineage store (its ledger connection kept), each stateful spec compiled once with its state
    # kept in memory between batches (docs/adr/0285)
    store = open_store(home, keep_open=True)
    stateful = {id(p): KeptStateful(p, home) for ps in plans.values() for p in ps if p.spec.stateful}
    retention = Periodic(home, integration.connector, integration.streams, integration.landing_keep)

    def process(tables: dict[str, pa.Table]) -> list[RunReport]:
        reports = []
        for stream, table in tables.items():
            for plan in plans.get(stream, []):
                # live: the wall clock is a heartbeat, so a silent device's offline timer fires on time
                reports.append(map_spec(plan, table, home, new_load_id(), f"{integration.connector}.{stream}",
                                        table.num_rows, 0, integration.destination,
                                        now=datetime.now(timezone.utc), destination=dest, lineage_store=store,
                                        stateful=stateful.get(id(plan)), one_segment=True))
        retention()  # landing.keep: finished loads past it go (at most once a minute; never raises)
        return reports

    def close() -> None:  # the worker's owner calls it when the worker stopped
        try:
            getattr(dest, "close", lambda: None)()
        finally:
            store.close()
            for kept in stateful.values():
                kept.close()

    process.close = close
    return process
