"""A self-consistent subject export built from given payloads, for demos, tests and benchmarks.

The real export comes from the store (``lineage.export.collect``); this builds the same
shape (docs/lineage-export.md) without one, so the renderer and the schema can be
exercised on any number of records. Ids and hashes are computed the way the pipeline
computes them (:func:`connectors.base.identity.record_id`, sha256 of canonical JSON).

Per payload: a ``received`` step, then either ``mapped`` + ``loaded`` (one CRM record)
or, for every ``quarantine_every``-th payload, a ``quarantined`` step.

>>> e = sample_export("ab" * 32, [{"id": 7, "email": "a@example.org"}])
>>> [s["step"] for s in e["steps"]], e["crm_records"][0]["fields"]["email"]
(['received', 'mapped', 'loaded'], 'a@example.org')
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

from connectors.base.identity import canonical_json, record_id

FORMAT = "weftline.lineage-export/1"
_T0 = datetime(2026, 11, 24, 8, 0, tzinfo=timezone.utc)


def iso(t: datetime) -> str:
    """UTC ISO 8601 text with a ``Z`` suffix, microseconds always shown.

    >>> iso(datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc))
    '2026-01-02T03:04:05.000000Z'
    """
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _scalars(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if isinstance(v, (str, int, float, bool)) or v is None}


def sample_export(
    subject_hash: str,
    payloads: Iterable[dict[str, Any]],
    *,
    system: str = "web_analytics",
    stream: str = "form_submissions",
    key_field: str = "id",
    entity: str = "lead",
    destination: str = "duckdb",
    spec_id: str = "web_activity_to_lead",
    spec_version: str = "3f2a9c0d1e4b5a69",
    quarantine_every: int = 0,
    start: datetime = _T0,
) -> dict[str, Any]:
    """The export of one subject whose source records carry ``payloads``."""
    sources, crm, steps = [], [], []
    load_id = "20261124T080000000000Z-5e1f0a2b"
    for i, payload in enumerate(payloads):
        at = start + timedelta(seconds=i)
        key = str(payload.get(key_field, i))
        rid = record_id(system, stream, key, None)
        phash = hashlib.sha256(canonical_json(payload).encode()).hexdigest()
        sources.append({"record_id": rid, "system": system, "stream": stream, "source_key": key,
                        "position": None, "received_at": iso(at), "load_id": load_id,
                        "payload_hash": phash, "payload": payload})
        steps.append(_step("received", at, load_id, rid, source_system=system, stream=stream,
                           source_key=key, payload_hash=phash))
        base = {"spec_id": spec_id, "spec_version": spec_version, "entity": entity}
        if quarantine_every and i % quarantine_every == quarantine_every - 1:
            steps.append(_step("quarantined", at + timedelta(milliseconds=5), load_id, rid, **base,
                               reason="priority: value 'Z' not in map [rule 2]"))
            continue
        target_key = f"{stream.upper()[:3]}-{key}"
        out_id = record_id("crm", entity, target_key, None)
        steps.append(_step("mapped", at + timedelta(milliseconds=5), load_id, out_id, **base,
                           input_record_id=rid, rules=[0, 1, 3], target_key=target_key))
        steps.append(_step("loaded", at + timedelta(milliseconds=9), load_id, out_id, entity=entity,
                           destination=destination, target_key=target_key))
        crm.append({"destination": destination, "entity": entity, "record_id": out_id,
                    "target_key": target_key, "load_id": load_id,
                    "fields": {"external_id": target_key, **_scalars(payload)}})
    crm.sort(key=lambda r: (r["entity"], r["target_key"]))
    last = iso(start + timedelta(seconds=max(len(sources) - 1, 0)))
    return {
        "format": FORMAT,
        "subject": {"id_hash": subject_hash, "exported_at": iso(start + timedelta(days=1))},
        "metadata": {
            "purposes": [f"CRM synchronisation by mapping {spec_id}"],
            "categories": sorted({f"{entity}.{f}" for r in crm for f in r["fields"]}),
            "sources": [{"system": system, "stream": stream, "records": len(sources)}] if sources else [],
            "recipients": [{"destination": destination, "entity": entity, "records": len(crm)}] if crm else [],
            "retention": f"Kept in {destination} until erased on request or by the CRM's retention policy.",
            "mapping_versions": [{"spec_id": spec_id, "version_hash": spec_version,
                                  "first_used": iso(start), "last_used": last}] if sources else [],
        },
        "source_records": sources,
        "crm_records": crm,
        "steps": steps,
    }


def _step(step: str, at: datetime, load_id: str, rid: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(
        ("input_record_id", "source_system", "stream", "source_key", "position", "payload_hash",
         "spec_id", "spec_version", "reason", "destination", "entity", "target_key"))
    row.update(step=step, at=iso(at), load_id=load_id, record_id=rid, rules=[])
    row.update(values)
    return row


def synthetic_payloads(n: int, *, seed: str = "s") -> list[dict[str, Any]]:
    """``n`` web form submissions of one person, for load tests.

    >>> synthetic_payloads(2)[1]["id"]
    's-1'
    """
    return [{"id": f"{seed}-{i}", "email": "jane.doe@example.org", "name": "Jane Doe",
             "level": "ABC"[i % 3], "engagement_score": i % 97,
             "page": f"https://shop.example.org/products/{i % 50}?utm_source=newsletter&utm_campaign=nov"}
            for i in range(n)]
