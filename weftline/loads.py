"""One spec's load over several landed parts: map each part as it lands, commit the load once.

A sync reads in batches (bounded memory), but loading each batch as its own load makes the
destination join every batch against the whole target. A :class:`LoadSession` keeps one load
open across the parts of a sync: each part is mapped, its rejected rows quarantined, its lineage
written (pending) and its rows handed to the destination's part load
(:mod:`connectors.crm.parts`: PostgreSQL stages them); :meth:`LoadSession.commit` commits the
destination, then the lineage — the order of docs/adr/0100, per load (docs/adr/0207).

The parts come from the landing zone, so a crash at any point is finished by the next run from
what landed (weftline/integrations.py); nothing passes in memory that another process could
not read back.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import pyarrow as pa

from connectors.base.home import Home
from connectors.errors import StageError
from transforms import Plan
from weftline.runner import RunReport, TargetCounts, _openlineage, _save_report, _write_quarantine

MAX_QUEUED = 6  # lineage segments waiting for the capture thread (two parts' worth): bounds memory


class LoadSession:
    """See the module docstring. ``timings`` holds seconds per stage (map, lineage, load, quarantine)."""

    def __init__(self, plan: Plan, home: Home, load_id: str, source: str, destination_url: str | None = None,
                 lineage: bool = True, destination=None):
        from connectors.crm import open_destination
        from connectors.crm.parts import open_load

        self.plan, self.home, self.load_id = plan, home, load_id
        self.system, self.stream = plan.spec.source["connector"], plan.spec.source["stream"]
        self.report = RunReport(load_id, plan.spec.id, plan.spec.version_hash, source, read=0, rejected=0)
        self.timings = self.report.timings  # seconds per stage, saved with the run report
        self._counts: dict[str, TargetCounts] = {}
        self.parts = 0
        try:
            self.dest = destination or open_destination(home, destination_url)
            self.report.destination = self.dest.name
        except Exception as err:
            raise StageError.wrap("load", load_id, err) from err
        self.store = self.cap = None
        if lineage:
            from lineage import open_store
            from lineage.capture import Capture

            with self._timed("lineage"):
                self.store = open_store(home)
                self.store.recover()
                self.store.begin(load_id, self.dest.name)
            self.cap = Capture(self.store, load_id)  # per-edge work on a background thread (ADR 0108)
        try:
            self.load = open_load(self.dest, load_id)
        except Exception as err:
            self._close_capture()
            raise StageError.wrap("load", load_id, err) from err
        # a load that commits at the end lets its lineage run behind; one that commits each part waits
        self.deferred = bool(getattr(self.load, "deferred", False))
        _openlineage("START", plan, home, load_id)

    @contextmanager
    def _timed(self, stage: str):
        t = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - t

    def add(self, landed: pa.Table, read: int, rejected: int) -> None:
        """Map one landed part (``read`` inputs, of which ``rejected`` never parsed) and stage its rows."""
        self.report.read += read
        self.report.rejected += rejected
        if self.cap is not None:
            with self._timed("lineage"):
                self.cap.wait(MAX_QUEUED)
                self.cap.received(landed)  # hashed and written while the engine maps
        with self._timed("map"):
            try:
                result = self.plan.apply(landed, load_id=self.load_id)
            except Exception as err:
                self.abort()
                raise StageError.wrap("map", self.load_id, err) from err
        with self._timed("quarantine"):
            name = f"mapped-{self.plan.spec.id}" + (f"-{self.parts:05d}" if self.parts else "")
            q = _write_quarantine(self.home, self.system, self.stream, self.load_id, name, result.quarantine)
            if q:
                self.report.quarantine.append(str(q))
        if self.cap is not None:
            with self._timed("lineage"):
                self.cap.mapped(self.plan.spec, result)
                if not self.deferred:  # ADR 0100: durable before this part's rows commit
                    self.cap.durable()
        for out in result.outputs:
            c = result.counts[out.entity]
            tc = self._counts.setdefault(out.entity, TargetCounts(out.entity, 0, 0, 0, 0))
            tc.read, tc.mapped = tc.read + c["read"], tc.mapped + c["mapped"]
            tc.quarantined, tc.filtered = tc.quarantined + c["quarantined"], tc.filtered + c["filtered"]
            job = None
            if self.cap is not None and not self.deferred:
                job = self.cap.prepare_loaded(self.dest.name, out.entity, out.table, out.key)
            with self._timed("load"):
                try:
                    self.load.add(out.entity, out.table, key=out.key, write=out.write)
                except Exception as err:
                    self.abort()
                    raise StageError.wrap("load", self.load_id, err) from err
            if job is not None:  # this part's rows are committed: its loaded segment follows (pending)
                with self._timed("lineage"):
                    self.cap.loaded(job)
            # a deferred load: loaded edges at commit, for the rows the load leaves written
        self.parts += 1

    def commit(self) -> RunReport:
        """Commit the destination (every entity of the load at once where it can), then the lineage."""
        self.commit_destination()
        return self.commit_lineage()

    def commit_destination(self) -> None:
        if self.cap is not None:
            try:
                if self.deferred:  # the rows this load leaves written, known before its commit
                    with self._timed("lineage"):
                        self.load.seal()
                        for entity in self._counts:
                            self.cap.loaded_pending(self.dest.name, entity, self.load.written(entity))
                    with self._timed("load_commit"):
                        try:
                            self.load.write()  # uncommitted: the server writes while the lineage finishes
                        except Exception as err:
                            raise StageError.wrap("load", self.load_id, err) from err
                with self._timed("lineage"):
                    self.cap.durable()  # every segment of the load in the ledger (pending) before the commit
            except BaseException:
                self.abort()
                raise
        with self._timed("load_commit"):
            try:
                results = self.load.commit()
            except Exception as err:
                raise StageError.wrap("load", self.load_id, err) from err
        for entity, tc in self._counts.items():
            r = results.get(entity)
            tc.loaded, tc.superseded = (r.rows, r.superseded) if r is not None else (0, 0)
        self.report.targets = list(self._counts.values())

    def commit_lineage(self) -> RunReport:
        """After :meth:`commit_destination` of every session of the load: its lineage becomes visible."""
        if self.store is not None:
            with self._timed("lineage"):
                self.store.commit(self.load_id)
            self._close_capture()
        _openlineage("COMPLETE", self.plan, self.home, self.load_id,
                     counts={e: {"read": t.read, "mapped": t.mapped, "quarantined": t.quarantined,
                                 "filtered": t.filtered} for e, t in self._counts.items()})
        _save_report(self.home, self.report)
        return self.report

    def abort(self) -> None:
        """Drop what the destination staged; the pending lineage rolls back at the next ``recover()``."""
        self.load.abort()
        self._close_capture()

    def _close_capture(self) -> None:
        if self.cap is not None:
            self.cap.close()


class Load:
    """The sessions of every spec a stream feeds, under one load id: added to together, committed
    together (every destination first, then the lineage, so no spec's lineage commits before its rows)."""

    def __init__(self, sessions: list[LoadSession]):
        self.sessions = sessions

    @property
    def deferred(self) -> bool:
        """True when no session's destination commits before :meth:`commit` (PostgreSQL's staged loads)."""
        return all(s.deferred for s in self.sessions)

    def time(self, stage: str, seconds: float) -> None:
        """Stage time spent for the whole load (reading, landing), recorded in every session's report."""
        for s in self.sessions:
            s.timings[stage] = s.timings.get(stage, 0.0) + seconds

    def add(self, landed: pa.Table, read: int, rejected: int) -> None:
        try:
            for s in self.sessions:
                s.add(landed, read, rejected)
        except BaseException:
            self.abort()
            raise

    def commit(self) -> list[RunReport]:
        try:
            for s in self.sessions:
                s.commit_destination()
        except BaseException:
            self.abort()
            raise
        return [s.commit_lineage() for s in self.sessions]

    def abort(self) -> None:
        for s in self.sessions:
            s.abort()
