"""The lineage store: append edge segments (Parquet + leaf hashes), chain their Merkle roots in the ledger.

The runner calls, in order (see docs/adr/0100-lineage-consistency.md)::

    store.begin(load_id)                       # the load is pending
    store.append_received(load_id, landed)     # segments written as pending
    store.append_mapped(load_id, spec, result)
    dest.load(...)                             # the destination commits rows with _wl_load_id
    store.append_loaded(load_id, "duckdb", entity, table, key=[...])
    store.commit(load_id)                      # the load's segments become committed
    ...
    store.recover()                            # at the start of the next run: finish or roll back

>>> import tempfile, pyarrow as pa
>>> from connectors.base.home import Home
>>> from connectors.base.identity import stamp
>>> store = open_store(Home(tempfile.mkdtemp()))
>>> store.begin("L1")
>>> landed = stamp(pa.table({"id": [1, 2]}), system="erp_sql", stream="orders", key=["id"],
...                position=None, load_id="L1")
>>> seg = store.append_received("L1", landed)
>>> seg["rows"], seg["state"]
(2, 'pending')
>>> store.commit("L1"); [s["state"] for s in store.segments()]
['committed']
"""

from __future__ import annotations

import logging
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlparse

import pyarrow as pa

from connectors.base.home import Home
from lineage import derived
from lineage import destination as dest_mod
from lineage import edges as E
from lineage import segment_file
from lineage.blobs import LocalBlobs, S3Blobs
from lineage.index import DuckIndex, PostgresIndex
from lineage.ledger import Ledger, PostgresLedger, SqliteLedger, now_text
from lineage.merkle import chain
from lineage.segment_put import put_segment

log = logging.getLogger(__name__)

ENV_URL = "WEFTLINE_LINEAGE_URL"  # postgresql://… for the ledger + index of many workers
ENV_SEGMENTS = "WEFTLINE_LINEAGE_SEGMENTS"  # s3://bucket/prefix for the segment files
INLINE_ROWS = 20_000  # segments below this are written on the calling thread (docs/adr/0285)


@dataclass
class Prepared:
    """A segment whose files are written (:meth:`Store.prepare`) but which is not in the ledger yet."""

    load_id: str
    segment_id: str
    file: str
    edges: pa.Table
    bytes: int
    root: bytes
    leaves_sha256: str


@dataclass
class Store:
    home: Home
    ledger: Ledger
    blobs: Any
    index: Any
    _final: dict = field(default_factory=dict, repr=False)  # seq → ledger row of a committed/rolled-back segment
    _specs: set = field(default_factory=set, repr=False)  # (spec id, version hash) this store has put
    _pool: Any = field(default=None, repr=False)  # the segment writer thread, started once per store
    _pool_pid: int = field(default=0, repr=False)
    _deferred: dict = field(default_factory=dict, repr=False)  # load id → destination: begun, not yet recorded

    # -- writing -------------------------------------------------------------------------------
    def begin(self, load_id: str, destination: str = dest_mod.DESTINATION, defer: bool = False) -> None:
        """Open a load: its segments stay pending until :meth:`commit` (or :meth:`recover`).

        ``defer``: record the pending load in the same ledger transaction as its first segment (one commit
        less per load) — the caller must call :meth:`ensure_begun` before the destination load, so the
        load is in the ledger before any row of it can be in the destination (ADR 0100, docs/adr/0285).
        """
        if defer:
            self._deferred[load_id] = destination
            return
        self.ledger.set_load(load_id, "pending", destination)

    def ensure_begun(self, load_id: str) -> None:
        """Record a deferred :meth:`begin` now, unless a segment already recorded it."""
        if load_id in self._deferred:
            self.ledger.set_load(load_id, "pending", self._deferred[load_id])
            del self._deferred[load_id]

    def commit(self, load_id: str) -> None:
        if load_id in self._deferred:  # nothing appended: the load is recorded as it commits
            self.ledger.set_load(load_id, "committed", self._deferred.pop(load_id))
            return
        self.ledger.set_load(load_id, "committed")

    def rollback(self, load_id: str) -> None:
        self.ledger.set_load(load_id, "rolled_back", self._deferred.pop(load_id, None))

    def append(self, load_id: str, edges: pa.Table) -> dict | None:
        """Write one segment of ``edges`` and chain it; returns its ledger row (None if empty)."""
        return self.record(self.prepare(load_id, edges))

    def prepare(self, load_id: str, edges: pa.Table) -> Prepared | None:
        """The per-edge half of :meth:`append`: the segment and leaf files written and durable, the Merkle
        root computed; nothing in the ledger yet (an unrecorded file is ignored by every reader)."""
        if edges.num_rows == 0:
            return None
        edges = E.conform(edges)  # constant text columns stay one-entry dictionaries (docs/adr/0110)
        segment_id = f"{load_id}-{uuid.uuid4().hex[:12]}"
        file = f"{segment_id}.parquet"
        pool = None if edges.num_rows < INLINE_ROWS else self._writer()  # a small segment: no thread hop
        w = put_segment(self.blobs, file, edges, pool)  # hashing, both files and their fsyncs overlap
        return Prepared(load_id, segment_id, file, edges, w.bytes, w.root, w.leaves_sha256)

    def prepare_derived(self, load_id: str, edges: pa.Table, ranges: list[derived.Range]) -> Prepared:
        """Like :meth:`prepare` for ``loaded`` edges that are exactly the mapped rows of ``ranges``: the file
        holds the ranges, not the edges (docs/adr/0115); ``edges`` (one destination, entity and time) go to
        a PostgreSQL index as they are."""
        one = {c: edges.column(c)[0].as_py() for c in ("destination", "entity", "at")}
        segment_id = f"{load_id}-{uuid.uuid4().hex[:12]}"
        file = f"{segment_id}.parquet"
        size, root, leaves_sha256 = derived.put(self.blobs, file, derived.table({"load_id": load_id, **one}, ranges))
        return Prepared(load_id, segment_id, file, edges, size, root, leaves_sha256)

    def record(self, prep: Prepared | None) -> dict | None:
        """The ledger half of :meth:`append`: chain a prepared segment after the current head."""
        if prep is None:
            return None
        with self.ledger.tx(lock=True) as cur:
            if prep.load_id in self._deferred:  # a deferred begin: the pending load and its first segment together
                self.ledger.set_load(prep.load_id, "pending", self._deferred[prep.load_id], cur=cur)
            seq, prev = self.ledger.head(cur)
            cur.execute("SELECT state FROM loads WHERE load_id = ?", [prep.load_id])
            row = cur.fetchone()
            rec = {
                "seq": seq + 1, "segment_id": prep.segment_id, "file": prep.file, "load_id": prep.load_id,
                "rows": prep.edges.num_rows, "bytes": prep.bytes, "merkle_root": prep.root.hex(), "prev_root": prev,
                "chained_root": chain(bytes.fromhex(prev), prep.root).hex(), "leaves_sha256": prep.leaves_sha256,
                "state": "pending" if row and row[0] == "pending" else "committed", "created_at": now_text(),
            }
            self.ledger.insert_segment(cur, rec)
            if isinstance(self.index, PostgresIndex):
                self.index.append(rec["seq"], prep.edges, cur)
            # the embedded DuckIndex catches up lazily, at the next look-up (ADR 0104)
        self._deferred.pop(prep.load_id, None)  # committed with the segment
        log.debug("lineage segment %s: %d edges, root %s", prep.segment_id, rec["rows"], rec["merkle_root"])
        return rec

    def _writer(self) -> ThreadPoolExecutor:
        """Two writer threads (segment and leaf file) for this store's life (a pool per segment cost more
        than a micro-batch's write; threads start on first use)."""
        if self._pool is None or self._pool_pid != os.getpid():  # a forked child has no thread of its parent's
            self._pool, self._pool_pid = ThreadPoolExecutor(2, thread_name_prefix="lineage-segment"), os.getpid()
        return self._pool

    def append_received(self, load_id: str, landed: pa.Table) -> dict | None:
        """``received`` edges from a landed table (with the reserved received columns)."""
        return self.append(load_id, E.received_edges(landed))

    def append_mapped(self, load_id: str, spec: Any, result: Any, edges: pa.Table | None = None) -> dict | None:
        """Store the spec version's text once, then ``mapped`` / ``filtered`` / ``quarantined`` edges
        (``edges``: ``mapped_edges(load_id, result)`` when the caller built them already)."""
        self.put_spec(spec)
        return self.append(load_id, edges if edges is not None else E.mapped_edges(load_id, result))

    def append_loaded(self, load_id: str, destination: str, entity: str, table: pa.Table,
                      key: list[str] | None = None) -> dict | None:
        """``loaded`` edges for the rows the destination accepted (``_wl_record_id``; target key from ``key``)."""
        return self.append(load_id, E.loaded_edges(load_id, destination, entity, table, key))

    def put_spec(self, spec: Any) -> None:
        """Once per spec version and store (a spec version's row is never changed or removed)."""
        if (spec.id, spec.version_hash) in self._specs:
            return
        self.ledger.put_spec(spec.id, spec.version_hash, spec.normalized)
        self._specs.add((spec.id, spec.version_hash))

    def close(self) -> None:
        """Release what a long-lived store keeps open (the writer thread, the embedded ledger's connection)."""
        if self._pool is not None and self._pool_pid == os.getpid():
            self._pool.shutdown()
        self._pool = None
        getattr(self.ledger, "close", lambda: None)()

    # -- reading -------------------------------------------------------------------------------
    def segments(self, states: tuple[str, ...] | None = None, seqs: list[int] | None = None,
                 load_id: str | None = None) -> list[dict]:
        return self.ledger.segments(states, seqs, load_id)

    def segment_rows(self, seqs: list[int]) -> dict[int, dict]:
        """Ledger rows by seq, for queries. A segment's row never changes once it is committed or rolled
        back, so those are kept for this store's lifetime; pending ones are read again each time."""
        out = {q: self._final[q] for q in seqs if q in self._final}
        todo = [q for q in seqs if q not in out]
        for seg in self.segments(seqs=todo) if todo else []:
            out[seg["seq"]] = seg
            if seg["state"] != "pending":
                self._final[seg["seq"]] = seg
        return out

    def read_segment(self, seg: dict, raw: pa.Table | None = None) -> pa.Table:
        """A segment's edges; a derived ``loaded`` segment's are made from the mapped ones it names (ADR 0115).
        ``raw``: its file's table when the caller has read it already (``verify``)."""
        raw = raw if raw is not None else segment_file.read_raw(self.blobs.get(seg["file"]))
        if derived.is_derived(raw.schema.metadata):
            return derived.materialise(raw, self._mapped_for(seg))
        return segment_file.from_file(raw)

    def _mapped_for(self, seg: dict) -> Callable[[int, str], pa.Table]:
        def read(seq: int, root: str) -> pa.Table:
            ref = self.segment_rows([seq]).get(seq)
            if ref is None or seq >= seg["seq"] or ref["merkle_root"] != root or ref["load_id"] != seg["load_id"]:
                raise ValueError(f"derived segment: segment {seq} is not the mapped segment of load "
                                 f"{seg['load_id']} it names")
            return self.read_segment(ref)
        return read

    def spec_text(self, spec_id: str, version_hash: str) -> str | None:
        return self.ledger.spec_text(spec_id, version_hash)

    # -- consistency ---------------------------------------------------------------------------
    def recover(self, loaded_ids: Callable[[str, str], list[str]] | None = None) -> list[tuple[str, str]]:
        """Finish or roll back every pending load, judged by the destination's ``_wl_load_id``.

        Rows of the load in the destination → any missing ``loaded`` edges are rebuilt from the
        load's ``mapped`` edges, then the load commits. None → the load rolls back (its segments
        stay in the chain, marked ``rolled_back``, and queries ignore them). Returns
        ``[(load_id, "committed" | "rolled_back")]``.
        """
        loaded_ids = loaded_ids or (lambda entity, load_id: dest_mod.record_ids_of_load(self.home, entity, load_id))
        self._deferred.clear()  # deferred begins of loads that never reached a segment or the destination
        done = []
        for load in self.ledger.loads("pending"):
            lid = load["load_id"]
            edges = [self.read_segment(s) for s in self.segments(("pending",), load_id=lid)]
            t = pa.concat_tables(edges) if edges else E.EDGE_SCHEMA.empty_table()
            action = self._recover_load(lid, load.get("destination") or dest_mod.DESTINATION, t, loaded_ids)
            done.append((lid, action))
            log.warning("lineage recovery: load %s %s", lid, action)
        return done

    def _recover_load(self, load_id: str, destination: str, t: pa.Table,
                      loaded_ids: Callable[[str, str], list[str]]) -> str:
        rows = t.to_pylist()
        mapped = {(r["entity"], r["record_id"]): r for r in rows if r["step"] == "mapped"}
        have = {(r["entity"], r["record_id"]) for r in rows if r["step"] == "loaded"}
        in_dest = {(ent, rid) for ent in {e for e, _ in mapped} for rid in loaded_ids(ent, load_id)}
        if not in_dest:
            self.rollback(load_id)
            return "rolled_back"
        missing = [mapped[k] for k in sorted(in_dest - have) if k in mapped]
        for entity in sorted({m["entity"] for m in missing}):
            part = [m for m in missing if m["entity"] == entity]
            table = pa.table({"_wl_record_id": [m["record_id"] for m in part],
                              "_wl_subject": [m["subject"] for m in part],
                              "target_key": [m["target_key"] for m in part]})
            self.append_loaded(load_id, destination, entity, table)
        self.commit(load_id)
        return "committed"


def _blobs_for(spec: str | None, root: Any) -> Any:
    if not spec:
        return LocalBlobs(root)
    u = urlparse(spec)
    if u.scheme != "s3":
        return LocalBlobs(spec)
    return S3Blobs(u.netloc, u.path)


def open_store(home: Home | str | None = None, url: str | None = None, segments: str | None = None,
               schema: str = "weftline_lineage", s3_client: Any = None, keep_open: bool = False) -> Store:
    """The embedded store under ``$WEFTLINE_HOME/lineage``, or PostgreSQL (``url``) + S3 (``segments``).

    ``url`` / ``segments`` default to ``$WEFTLINE_LINEAGE_URL`` / ``$WEFTLINE_LINEAGE_SEGMENTS``.
    ``keep_open``: a long-lived writer (the stream worker) keeps the embedded ledger's connection; call
    :meth:`Store.close` when done.
    """
    home = home if isinstance(home, Home) else Home(home)
    url = url or os.environ.get(ENV_URL)
    segments = segments or os.environ.get(ENV_SEGMENTS)
    root = home.lineage
    root.mkdir(parents=True, exist_ok=True)
    blobs = _blobs_for(segments, root / "segments")
    if s3_client is not None and isinstance(blobs, S3Blobs):
        blobs.client = s3_client
    if url:
        ledger: Ledger = PostgresLedger(url, schema)
        index: Any = PostgresIndex(ledger)
    else:
        ledger = SqliteLedger(str(root / "ledger.sqlite"), keep_open=keep_open)
        store = Store(home, ledger, blobs, None)
        store.index = DuckIndex(str(root / "index.duckdb"), lambda: (store.segments(), store.read_segment),
                                ledger.size)
        return store
    return Store(home, ledger, blobs, index)
