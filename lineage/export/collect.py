"""Collect one data subject's export (docs/lineage-export.md) from the store, landing and destination.

Only the asked subject: edges are found by its keyed hash, source rows are read from landing
by the record ids of those edges, CRM rows from the destination by the output record ids.
The subject id is hashed with the home's subject key (never stored or returned raw).

>>> import tempfile
>>> from connectors.base.home import Home
>>> from lineage.store import open_store
>>> store = open_store(Home(tempfile.mkdtemp()))
>>> try:
...     collect_subject(store, "nobody@example.org")
... except UnknownRef as e:
...     print(str(e)[:41])
no lineage for this subject (subject hash
"""

from __future__ import annotations

import base64
import json
import logging
from collections import Counter
from datetime import date, datetime, time, timezone
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from connectors.base.hashing import hmac_sha256_hex
from connectors.base.reserved import RECORD_ID, is_reserved
from connectors.landing import landed_parts
from connectors.retention import pruned_loads
from lineage import destination as dest_mod
from lineage.query import UnknownRef, rule_bits, subject_edges

log = logging.getLogger(__name__)
FORMAT = "weftline.lineage-export/1"
STEP_KEYS = ("step", "at", "load_id", "record_id", "input_record_id", "source_system", "stream", "source_key",
             "position", "payload_hash", "spec_id", "spec_version", "rules", "reason", "destination", "entity",
             "target_key")
DEFAULT_RETENTION = ("Kept in the CRM destination under its retention policy; the landing copy is kept until "
                     "erased, or until the integration's landing retention (landing.keep) removes it. "
                     "Lineage edges hold no personal data and are kept for audit.")


def iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def subject_hash(store: Any, subject_id: str) -> str:
    """HMAC-SHA256 hex of a subject id under the home's subject key."""
    return hmac_sha256_hex(pa.array([subject_id]), store.home.subject_key())[0].as_py()


def jsonable(v: Any) -> Any:
    """A record value as JSON: times as ISO text, binary as base64, decimals as numbers."""
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, datetime):
        return iso(v) if v.tzinfo else v.isoformat()
    if isinstance(v, (date, time)):
        return v.isoformat()
    if isinstance(v, (bytes, bytearray)):
        return base64.b64encode(v).decode()
    if isinstance(v, Decimal):
        return float(v)
    return v


def _native(t: pa.DataType) -> bool:
    """True for an Arrow type whose Python values are already JSON (no :func:`jsonable` pass)."""
    return (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_integer(t)
            or pa.types.is_floating(t) or pa.types.is_boolean(t) or pa.types.is_null(t))


def _public_rows(t: pa.Table) -> list[tuple[str, dict]]:
    """(record id, public fields as JSON values) of each row: reserved columns dropped per table,
    and :func:`jsonable` run only over the columns whose values need it.

    >>> t = pa.table({"_wl_record_id": ["r1"], "n": [1], "d": [date(2026, 1, 2)]})
    >>> _public_rows(t)
    [('r1', {'n': 1, 'd': '2026-01-02'})]
    """
    ids = t.column(RECORD_ID).to_pylist()
    public = t.select([n for n in t.column_names if not is_reserved(n)])
    convert = [n for n, f in zip(public.column_names, public.schema) if not _native(f.type)]
    rows = public.to_pylist()
    for row in rows if convert else ():
        for n in convert:
            row[n] = jsonable(row[n])
    return list(zip(ids, rows))


def _landed_rows(store: Any, received: list[dict]) -> dict[str, dict]:
    """record id → landed row, read only from the loads these records arrived in."""
    out: dict[str, dict] = {}
    groups: dict[tuple, set] = {}
    for r in received:
        groups.setdefault((r["source_system"], r["stream"], r["load_id"]), set()).add(r["record_id"])
    for (system, stream, load_id), ids in groups.items():
        for part in landed_parts(store.home, system, stream, load_id):
            try:
                t = pq.read_table(part)
            except FileNotFoundError:  # removed by landing retention while we read
                continue
            t = t.filter(pc.is_in(t.column(RECORD_ID), pa.array(sorted(ids))))
            out.update(_public_rows(t))
    return out


def _pruned_at(store: Any, received: list[dict]) -> dict[str, str]:
    """record id → when landing retention removed the load it arrived in (docs/adr/0287)."""
    logs: dict[tuple, dict] = {}
    out = {}
    for r in received:
        key = (r["source_system"], r["stream"])
        if key not in logs:
            logs[key] = pruned_loads(store.home, *key)
        entry = logs[key].get(r["load_id"])
        if entry is not None:
            out[r["record_id"]] = iso(datetime.fromisoformat(entry["pruned_at"]))
    return out


def _crm_rows(store: Any, loaded: list[dict]) -> dict[tuple, dict]:
    out: dict[tuple, dict] = {}
    for entity in sorted({r["entity"] for r in loaded}):
        ids = sorted({r["record_id"] for r in loaded if r["entity"] == entity})
        t = dest_mod.read_records(store.home, entity, ids)
        if t is not None:
            out.update(((entity, rid), row) for rid, row in _public_rows(t))
    return out


def _spec_meta(store: Any, versions: list[tuple[str, str]], steps: list[dict]) -> tuple[list, list, str]:
    purposes, categories, retention = set(), set(), None
    for spec_id, version in versions:
        text = store.spec_text(spec_id, version)
        spec = json.loads(text) if text else {}
        purposes.add(spec.get("purpose") or f"CRM synchronisation by mapping {spec_id}")
        categories.update(spec.get("categories") or [])
        retention = retention or spec.get("retention")
        if not spec.get("categories"):
            ent = (spec.get("target") or {}).get("entity")
            categories.update(f"{ent}.{f}" for f in (spec.get("fields") or {}) if ent)
    return sorted(purposes), sorted(categories), retention or DEFAULT_RETENTION


def _mapping_versions(steps: list[dict]) -> list[dict]:
    used: dict[tuple, list[str]] = {}
    for s in steps:
        if s["step"] == "mapped":
            used.setdefault((s["spec_id"], s["spec_version"]), []).append(s["at"])
    return [{"spec_id": k[0], "version_hash": k[1], "first_used": min(v), "last_used": max(v)}
            for k, v in sorted(used.items())]


def collect_subject(store: Any, subject_id: str, now: datetime | None = None) -> dict:
    """The export document of one subject (raises :class:`UnknownRef` when it has no lineage)."""
    h = subject_hash(store, subject_id)
    edges, warnings = subject_edges(store, h)
    if not edges:
        raise UnknownRef(f"no lineage for this subject (subject hash {h[:12]}…)"
                         + (f" ({'; '.join(warnings)})" if warnings else ""))
    received = [e for e in edges if e["step"] == "received"]
    loaded = [e for e in edges if e["step"] == "loaded"]
    landed, crm = _landed_rows(store, received), _crm_rows(store, loaded)
    pruned = _pruned_at(store, received)
    steps = [{k: (rule_bits(e["rules"]) if k == "rules" else e[k]) for k in STEP_KEYS} for e in edges]
    versions = [(m["spec_id"], m["version_hash"]) for m in _mapping_versions(steps)]
    purposes, categories, retention = _spec_meta(store, versions, steps)
    latest_load: dict[tuple, dict] = {}
    for r in loaded:
        latest_load[(r["destination"], r["entity"], r["record_id"])] = r
    doc = {
        "format": FORMAT,
        "subject": {"id_hash": h, "exported_at": iso(now or datetime.now(timezone.utc))},
        "metadata": {
            "purposes": purposes, "categories": categories,
            "sources": [{"system": s, "stream": st, "records": n} for (s, st), n in sorted(
                Counter((r["source_system"], r["stream"]) for r in {r["record_id"]: r for r in received}.values()).items())],
            "recipients": [{"destination": d, "entity": e, "records": n} for (d, e), n in sorted(
                Counter((d, e) for d, e, _ in latest_load).items())],
            "retention": retention,
            "mapping_versions": _mapping_versions(steps),
        },
        "source_records": [
            {"record_id": r["record_id"], "system": r["source_system"], "stream": r["stream"],
             "source_key": r["source_key"] or "", "position": r["position"], "received_at": r["at"],
             "load_id": r["load_id"], "payload_hash": r["payload_hash"], "payload": landed.get(r["record_id"]),
             "payload_pruned_at": pruned.get(r["record_id"]) if r["record_id"] not in landed else None}
            for r in sorted({r["record_id"]: r for r in received}.values(), key=lambda r: (r["at"], r["record_id"]))],
        "crm_records": [
            {"destination": d, "entity": e, "record_id": rid, "target_key": r["target_key"] or "",
             "load_id": r["load_id"], "fields": crm.get((e, rid))}
            for (d, e, rid), r in sorted(latest_load.items(), key=lambda kv: (kv[0][1], kv[1]["target_key"] or ""))],
        "steps": steps,
    }
    if warnings:
        log.warning("export: %s", "; ".join(warnings))
    return doc
