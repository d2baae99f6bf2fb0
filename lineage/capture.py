"""One load's lineage capture on a background thread, overlapping the run (docs/adr/0108).

The order of ADR 0100 is unchanged; only *where* the per-edge work runs moves::

    cap = Capture(store, load_id)     # store.begin(load_id, destination) already called
    cap.received(landed)              # queued at once: hashed + written while the engine maps
    result = plan.apply(landed)
    cap.mapped(spec, result)          # queued behind it (one worker: the ledger order is kept)
    cap.durable()                     # waits: received + mapped segments durable and in the ledger
    job = cap.prepare_loaded(...)     # files of the loaded segment written while the destination loads
    dest.load(...)                    # the destination commits
    cap.loaded(job)                   # only now is the loaded segment put in the ledger
    store.commit(load_id)

A loaded segment whose rows are exactly the mapped rows of its target (in order: the usual case) is
kept as ranges of the mapped segments (lineage/derived.py, docs/adr/0115); otherwise as edges.

``durable()`` is the guarantee ADR 0100 needs before the destination commits; a failure in the
background is raised there (or by ``loaded``), never lost. Files prepared for a loaded segment that
never reached the ledger (a crash during the load) are ignored by every reader, like any file
without a ledger row; ``recover()`` rebuilds the loaded edges from the mapped ones as before.

>>> import tempfile, pyarrow as pa
>>> from connectors.base.home import Home
>>> from connectors.base.identity import stamp
>>> from lineage.store import open_store
>>> store = open_store(Home(tempfile.mkdtemp())); store.begin("L1")
>>> landed = stamp(pa.table({"id": [1, 2]}), system="erp_sql", stream="orders", key=["id"],
...                position=None, load_id="L1")
>>> with Capture(store, "L1") as cap:
...     cap.received(landed)
...     _ = cap.durable()
...     [s["rows"] for s in store.segments()]
[2]
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pyarrow as pa

from lineage import derived
from lineage import edges as E


class Capture:
    def __init__(self, store: Any, load_id: str):
        self.store, self.load_id = store, load_id
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="lineage-capture")
        self._queued: list[Future] = []
        # entity → (mapped segment's ledger row, first row, its edges) not yet loaded; capture thread only
        self._mapped: dict[str, list[tuple[dict, int, pa.Table]]] = {}

    def __enter__(self) -> "Capture":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Wait for whatever is still running (its errors were or will be raised by durable/loaded)."""
        self._pool.shutdown(wait=True)

    def received(self, landed: pa.Table) -> None:
        self._queued.append(self._pool.submit(self.store.append_received, self.load_id, landed))

    def mapped(self, spec: Any, result: Any) -> None:
        self._queued.append(self._pool.submit(self._append_mapped, spec, result))

    def _append_mapped(self, spec: Any, result: Any) -> dict | None:
        edges = E.mapped_edges(self.load_id, result)  # kept: the loaded segment may be ranges of them
        rec = self.store.append_mapped(self.load_id, spec, result, edges)
        start = 0
        for out in result.outputs:  # mapped_edges puts each output's rows first, in this order
            n = out.table.num_rows
            if rec is not None and n:
                self._mapped.setdefault(out.entity, []).append((rec, start, edges.select(derived.COPIED).slice(start, n)))
            start += n
        return rec

    def _prepare_loaded(self, destination: str, entity: str, table: pa.Table, key: list[str] | None) -> Any:
        """On the capture thread: the loaded edges as ranges of the entity's mapped segments when they are
        exactly those rows (ADR 0115), else as edges."""
        edges = E.loaded_edges(self.load_id, destination, entity, table, key)
        parts = self._mapped.pop(entity, [])
        if derived.same_rows(edges, [p for _, _, p in parts]):
            ranges = [derived.Range(rec["seq"], rec["merkle_root"], start, p.num_rows) for rec, start, p in parts]
            return self.store.prepare_derived(self.load_id, edges, ranges)
        return self.store.prepare(self.load_id, edges)

    def loaded_pending(self, destination: str, entity: str, table: pa.Table, key: list[str] | None = None) -> None:
        """A loaded segment queued like the others, for a destination that commits the whole load later
        (weftline/loads.py): in the ledger as pending before the destination commits, which recovery
        judges by the destination's rows as for any pending load (ADR 0100, 0207)."""
        self._queued.append(self._pool.submit(
            lambda: self.store.record(self._prepare_loaded(destination, entity, table, key))))

    def wait(self, keep: int) -> None:
        """Block until at most ``keep`` segments are queued (bounds the memory the queue holds)."""
        while len(self._queued) > keep:
            self._queued.pop(0).result()

    def durable(self) -> list[dict | None]:
        """Block until every queued segment is written, fsynced and in the ledger; re-raise a failure."""
        queued, self._queued = self._queued, []
        return [f.result() for f in queued]

    def prepare_loaded(self, destination: str, entity: str, table: pa.Table, key: list[str] | None = None) -> Future:
        """Build, hash and write the loaded segment's files in the background; no ledger row yet."""
        return self._pool.submit(self._prepare_loaded, destination, entity, table, key)

    def loaded(self, job: Future) -> dict | None:
        """After the destination committed: put the prepared loaded segment in the ledger."""
        return self.store.record(job.result())
