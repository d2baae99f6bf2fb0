"""A small load's lineage as one segment, written once, pending before the destination commits (docs/adr/0109).

For a micro-batch of the stream worker (tens to hundreds of edges) the fixed cost of a segment (its two
files, Merkle root, ledger transaction, a hop to the capture thread) is most of the lineage's cost, and
such a load paid it three to four times (``received`` events, ``received`` incidents, ``mapped``,
``loaded``). :class:`OneSegment` gathers the edges of every step and writes them as **one** segment in
**one** ledger transaction, together with the pending load (a deferred ``begin``), right before the
destination load — the same place ADR 0100 needs ``received`` and ``mapped`` durable. The ``loaded``
edges are in that segment too, pending like the rest: as for a load of many parts (ADR 0207) they
are built from the rows handed to the destination, and stay pending until :meth:`Store.commit`
after the destination committed; ``recover()`` judges the load by the destination's rows as for
any pending load. Only a load with **one** destination write may use it (``len(plan.targets) == 1``):
that write commits all of the load's rows or none, so a crash leaves either every row with its
``loaded`` edge or none of them.

Same interface as :class:`lineage.capture.Capture` for what the runner calls on it; nothing runs in
the background (for a few hundred edges a thread hop costs more than it overlaps)::

    cap = OneSegment(store, load_id)  # store.begin(load_id, destination, defer=True) already called
    cap.received(landed)
    cap.mapped(spec, result)
    cap.loaded_pending(destination, entity, table, key)  # before dest.load
    cap.durable()                     # the one segment, durable and in the ledger with the pending load
    dest.load(...)
    store.commit(load_id)

>>> import tempfile, pyarrow as pa
>>> from connectors.base.home import Home
>>> from connectors.base.identity import stamp
>>> from lineage.store import open_store
>>> store = open_store(Home(tempfile.mkdtemp())); store.begin("L1", defer=True)
>>> landed = stamp(pa.table({"id": [1, 2]}), system="erp_sql", stream="orders", key=["id"],
...                position=None, load_id="L1")
>>> with OneSegment(store, "L1") as cap:
...     cap.received(landed)
...     cap.loaded_pending("duckdb", "account", landed, ["id"])
...     [seg["rows"] for seg in cap.durable()]
[4]
>>> store.commit("L1"); [(s["rows"], s["state"]) for s in store.segments()]
[(4, 'committed')]
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from lineage import edges as E

MAX_ROWS = 20_000  # landed rows up to which the runner may use one segment (above: the capture thread)


class OneSegment:
    def __init__(self, store: Any, load_id: str):
        self.store, self.load_id = store, load_id
        self._parts: list[pa.Table] = []

    def __enter__(self) -> "OneSegment":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Nothing runs in the background; edges not yet written are dropped (the load never committed)."""
        self._parts = []

    def received(self, landed: pa.Table) -> None:
        self._parts.append(E.received_edges(landed))

    def mapped(self, spec: Any, result: Any) -> None:
        self.store.put_spec(spec)
        self._parts.append(E.mapped_edges(self.load_id, result))

    def loaded_pending(self, destination: str, entity: str, table: pa.Table, key: list[str] | None = None) -> None:
        """``loaded`` edges of the rows about to be handed to the destination; written with the rest by
        :meth:`durable`, so the caller calls this before the destination load."""
        self._parts.append(E.loaded_edges(self.load_id, destination, entity, table, key))

    def wait(self, keep: int) -> None:  # Capture's interface: nothing is queued here
        return None

    def durable(self) -> list[dict | None]:
        """Write every edge gathered so far as one segment (files fsynced, then one ledger transaction)."""
        parts, self._parts = [p for p in self._parts if p.num_rows], []
        if not parts:
            return []
        return [self.store.append(self.load_id, E.concat(parts) if len(parts) > 1 else parts[0])]
