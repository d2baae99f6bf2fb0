"""Backward (``trace``) and forward (``impact``) lineage, answered from the index.

Only edges of committed segments count. A segment whose file is missing or changed size is
named in ``warnings`` and its edges are left out: the answer comes from the rest.

>>> parse_target_ref("lead:WEB-17#priority")
('lead', 'WEB-17', 'priority')
>>> parse_source_ref("web_analytics.form_submissions:17")
('web_analytics', 'form_submissions', '17')
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timezone
from typing import Any, Iterator

from lineage.derivation import field_derivation
from lineage.edges import STEPS


class UnknownRef(LookupError):
    """A REF or subject with no lineage: the CLI prints it and exits 1."""


def parse_target_ref(ref: str) -> tuple[str, str, str | None]:
    """``<entity>:<key>[#field]``."""
    entity, sep, rest = ref.partition(":")
    key, _, field = rest.partition("#")
    if not sep or not entity or not key:
        raise UnknownRef(f"bad reference {ref!r}: expected <entity>:<key>[#field], e.g. lead:WEB-17#priority")
    return entity, key, field or None


def parse_source_ref(ref: str) -> tuple[str, str, str]:
    """``<connector>.<stream>:<key>``."""
    left, sep, key = ref.partition(":")
    system, dot, stream = left.partition(".")
    if not sep or not dot or not system or not stream or not key:
        raise UnknownRef(f"bad reference {ref!r}: expected <connector>.<stream>:<key>, e.g. erp_sql.orders:42")
    return system, stream, key


class Segments:
    """The ledger's segments, read once per query; which of them answer (committed, file intact)."""

    def __init__(self, store: Any):
        self.store = store
        self.by_seq: dict[int, dict] = {}  # read from the ledger only for the seqs a query touches
        self.ok: dict[int, bool] = {}
        self.warnings: list[str] = []
        skipped = getattr(store.index, "skipped", {})
        self.fetch(list(skipped))
        for seq, what in sorted(skipped.items()):  # the lazy index could not read it
            seg = self.by_seq.get(seq)
            if seg is not None and seg["state"] == "committed":
                self.ok[seq] = False
                self.warnings.append(f"segment {seq} ({store.blobs.describe(seg['file'])}) {what}: "
                                     "its edges are left out")

    def fetch(self, seqs: list[int]) -> None:
        """Read the ledger rows of ``seqs`` not read yet (one query)."""
        todo = sorted({int(q) for q in seqs} - set(self.by_seq))
        if todo:
            self.by_seq.update(self.store.segment_rows(todo))

    def usable(self, seq: int) -> bool:
        if seq not in self.ok:
            self.fetch([seq])
            seg = self.by_seq.get(seq)
            good = seg is not None and seg["state"] == "committed"
            if good:
                size = self.store.blobs.size(seg["file"])
                if size != seg["bytes"]:
                    what = "missing" if size is None else "damaged (size changed)"
                    self.warnings.append(f"segment {seq} ({self.store.blobs.describe(seg['file'])}) {what}: "
                                         "its edges are left out")
                    good = False
            self.ok[seq] = good
        return self.ok[seq]


def _lookup(segs: Segments, column: str, values: list[str], con: Any = None) -> list[dict]:
    """Index rows (dicts) whose ``column`` is one of ``values``, from committed segments with intact files."""
    rows = segs.store.index.rows(column, values, con)
    if not rows:
        return []
    segs.fetch([r["seq"] for r in rows])
    return [r for r in rows if segs.usable(r["seq"])]


def _iso(at: Any) -> str | None:
    if at is None or isinstance(at, str):
        return at
    return at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


_ORDER = {s: i for i, s in enumerate(STEPS)}


def _rows(rows: list[dict], *steps: str) -> list[dict]:
    """Copies of the rows of ``steps`` (all when none), ``at`` as ISO text, in time and step order."""
    out = [dict(r, at=_iso(r["at"])) for r in rows if not steps or r["step"] in steps]
    return sorted(out, key=lambda r: (r["at"] or "", _ORDER[r["step"]], r["record_id"] or ""))


def _source(r: dict) -> dict:
    keys = ("record_id", "source_system", "stream", "source_key", "position", "payload_hash", "load_id", "at")
    return {k: r[k] for k in keys}


def rule_bits(rules: int | None) -> list[int]:
    """The bit indices set in a ``_wl_rules`` bit set.

    >>> rule_bits(0b1010), rule_bits(None)
    ([1, 3], [])
    """
    return [] if not rules else [i for i in range(64) if (rules >> i) & 1]


@contextmanager
def _connection(store: Any, con: Any) -> Iterator[Any]:
    """One index connection per query (or the caller's, left open)."""
    if con is not None:
        yield con
        return
    con = store.index.connect()
    try:
        yield con
    finally:
        if con is not None:
            con.close()


def trace(store: Any, ref: str, con: Any = None) -> dict:
    """Backward lineage of a CRM record (or one of its fields)."""
    parse_target_ref(ref)
    with _connection(store, con) as c:
        return _trace(store, ref, c)


def _trace(store: Any, ref: str, con: Any) -> dict:
    entity, key, field = parse_target_ref(ref)
    segs = Segments(store)
    warnings = segs.warnings
    hits = [r for r in _lookup(segs, "target_key", [key], con) if r["entity"] == entity]
    mapped = _rows(hits, "mapped")
    if not mapped:
        raise UnknownRef(f"no lineage for {entity} record {key!r}" + (f" ({'; '.join(warnings)})" if warnings else ""))
    loaded = _rows(hits, "loaded", "erased")
    received = {r["record_id"]: r for r in _rows(
        _lookup(segs, "record_id", [m["input_record_id"] for m in mapped], con), "received")}
    chains = []
    for m in mapped:
        src = received.get(m["input_record_id"])
        link = {
            "record_id": m["record_id"],
            "source": _source(src) if src else {"record_id": m["input_record_id"], "missing": True},
            "mapping": {"spec_id": m["spec_id"], "spec_version": m["spec_version"], "rules": rule_bits(m["rules"]),
                        "load_id": m["load_id"], "at": m["at"]},
            "loads": [{"step": r["step"], "destination": r["destination"], "load_id": r["load_id"], "at": r["at"]}
                      for r in loaded if r["load_id"] == m["load_id"] or r["step"] == "erased"],
        }
        if field:
            text = store.spec_text(m["spec_id"], m["spec_version"])
            link["field"] = field_derivation(text, entity, field) if text else None
        chains.append(link)
    return {"ref": ref, "entity": entity, "key": key, "field": field, "chains": chains, "warnings": warnings}


def impact(store: Any, ref: str, con: Any = None) -> dict:
    """Forward lineage of a source record: every derived record and every destination (recipients)."""
    parse_source_ref(ref)
    with _connection(store, con) as c:
        return _impact(store, ref, c)


def _impact(store: Any, ref: str, con: Any) -> dict:
    system, stream, key = parse_source_ref(ref)
    segs = Segments(store)
    warnings = segs.warnings
    hits = [r for r in _lookup(segs, "source_key", [key], con) if (r["source_system"], r["stream"]) == (system, stream)]
    received = _rows(hits, "received")
    if not received:
        raise UnknownRef(f"no lineage for source record {ref!r}" + (f" ({'; '.join(warnings)})" if warnings else ""))
    ids = [r["record_id"] for r in received]
    derived = _rows(_lookup(segs, "input_record_id", ids, con), "mapped")
    outs = [d["record_id"] for d in derived]
    both = _lookup(segs, "record_id", ids + outs, con)
    outcomes = [r for r in _rows(both, "filtered", "quarantined", "erased") if r["record_id"] in set(ids)]
    loaded = [r for r in _rows(both, "loaded", "erased") if r["record_id"] in set(outs)]
    recipients = sorted({(r["destination"], r["entity"]) for r in loaded if r["step"] == "loaded"})
    return {
        "ref": ref, "received": [_source(r) for r in received],
        "derived": [{"record_id": d["record_id"], "entity": d["entity"], "target_key": d["target_key"],
                     "spec_id": d["spec_id"], "spec_version": d["spec_version"], "rules": rule_bits(d["rules"]),
                     "load_id": d["load_id"], "at": d["at"]} for d in derived],
        "outcomes": [{"step": o["step"], "record_id": o["record_id"], "entity": o["entity"], "reason": o["reason"],
                      "spec_id": o["spec_id"], "load_id": o["load_id"], "at": o["at"]} for o in outcomes],
        "loaded": [{"step": r["step"], "record_id": r["record_id"], "destination": r["destination"],
                    "entity": r["entity"], "target_key": r["target_key"], "load_id": r["load_id"], "at": r["at"]}
                   for r in loaded],
        "recipients": [{"destination": d, "entity": e} for d, e in recipients],
        "warnings": warnings,
    }


def subject_edges(store: Any, subject_hash: str, con: Any = None) -> tuple[list[dict], list[str]]:
    """Every edge about one subject: its mapped/loaded/erased edges, the received, filtered and
    quarantined edges of the source records they came from, and the loads of its outputs.

    Each edge dict carries its ``seq`` and ``row`` (where it sits in the store)."""
    with _connection(store, con) as c:
        return _subject_edges(store, subject_hash, c)


def _subject_edges(store: Any, subject_hash: str, con: Any) -> tuple[list[dict], list[str]]:
    segs = Segments(store)
    warnings = segs.warnings
    own = _lookup(segs, "subject", [subject_hash], con)
    rows = _rows(own)
    inputs = [r["input_record_id"] for r in rows if r["step"] == "mapped"]
    outs = [r["record_id"] for r in rows if r["step"] == "mapped"]
    by_input = _rows(_lookup(segs, "record_id", inputs, con), "received", "filtered", "quarantined", "erased")
    by_output = _rows(_lookup(segs, "record_id", outs, con), "loaded", "erased")
    by_output = [r for r in by_output if r["subject"] in (None, subject_hash)]
    seen, out = set(), []
    for r in rows + by_input + by_output:
        k = (r["seq"], r["row"])
        if k not in seen:
            seen.add(k)
            out.append(r)
    order = {s: i for i, s in enumerate(STEPS)}
    return sorted(out, key=lambda r: (r["at"] or "", order[r["step"]], r["record_id"] or "")), warnings
