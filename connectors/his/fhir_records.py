"""FHIR R4 resources → validated Arrow rows, one stream per resource type.

Each resource is validated with the ``fhir.resources`` R4B model of its type
(``Model.model_validate``); a failure is a rejected input carrying the
validation error. A row keeps the resource nested as it came (``resource``,
a struct; ``resource_json``, its canonical JSON text) plus flat keys:
``id``, ``resource_type``, ``last_updated`` (meta.lastUpdated as a UTC
timestamp), ``version`` (meta.versionId, else meta.lastUpdated, else
``sha256:<canonical JSON hash>``), ``origin`` and ``_op`` (``'upsert'``). MedicationRequest rows
also get the columns a CRM mapping needs without chasing references (see ``DERIVED``). A Bundle
entry ``request.method = DELETE`` becomes a delete event of its stream (see
:mod:`connectors.his.fhir_deletes`): ``id``, ``resource_type``, ``last_updated`` (the delete time),
``version``, ``origin``, ``_op = 'delete'``, every other column null.

>>> good, bad = to_tables([("a.json#1", {"resourceType": "Patient", "id": "p1", "meta": {"lastUpdated": "2024-01-02T03:04:05+02:00"}}),
...                        ("a.json#2", {"resourceType": "Patient", "id": "p2", "birthDate": "yesterday"})])
>>> t = good["fhir_patient"]
>>> t.column("id").to_pylist(), str(t.column("last_updated")[0].as_py())
(['p1'], '2024-01-02 01:04:05+00:00')
>>> t.column("_op").to_pylist()
['upsert']
>>> bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
...     {"request": {"method": "DELETE", "url": "Patient/p1"}, "response": {"lastModified": "2024-02-01T00:00:00Z"}}]}
>>> d = to_tables(resources_in(bundle, "t.json"))[0]["fhir_patient"].to_pylist()[0]
>>> d["id"], d["_op"], d["version"], d["origin"], d["resource_json"]
('p1', 'delete', '2024-02-01T00:00:00Z', 't.json/entry[1]', None)
>>> print(bad["fhir_patient"].column("reason")[0].as_py())
Patient a.json#2 is not valid FHIR R4: 1 validation error for Patient
birthDate
  Value error, Date value string does not match spec regex. [type=value_error, input_value='yesterday', input_type=str]
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from fhir.resources.R4B import get_fhir_model_class

from connectors.base.source import rejected
from connectors.his.fhir_deletes import OP, Deleted, deleted_entry, is_delete

log = logging.getLogger(__name__)

# resource type → stream (declared, not coded)
STREAMS: dict[str, str] = {
    "MedicationRequest": "fhir_medication_request",
    "Patient": "fhir_patient",
    "Practitioner": "fhir_practitioner",
    "Organization": "fhir_organization",
}
KEY = ("id",)
POSITION = "version"

BASE = pa.schema(
    [
        ("id", pa.string()),
        ("resource_type", pa.string()),
        ("last_updated", pa.timestamp("us", tz="UTC")),
        ("version", pa.string()),
        ("origin", pa.string()),
        (OP, pa.string()),  # "upsert" | "delete"
    ]
)


def _contained(resource: dict, ref: str | None) -> dict:
    """The contained resource a local reference (``#id``) points at, or {}."""
    if not ref or not ref.startswith("#"):
        return {}
    return next((c for c in resource.get("contained", []) if c.get("id") == ref[1:]), {})


def _medication_coding(r: dict) -> dict:
    concept = r.get("medicationCodeableConcept") or _contained(r, (r.get("medicationReference") or {}).get("reference")).get("code") or {}
    return (concept.get("coding") or [{}])[0]


def _medication_display(r: dict) -> str | None:
    concept = r.get("medicationCodeableConcept") or {}
    return _medication_coding(r).get("display") or concept.get("text") or (r.get("medicationReference") or {}).get("display")


DERIVED: dict[str, dict[str, Callable[[dict], Any]]] = {
    "MedicationRequest": {
        "status": lambda r: r.get("status"),
        "intent": lambda r: r.get("intent"),
        "authored_on": lambda r: r.get("authoredOn"),
        "requester_reference": lambda r: (r.get("requester") or {}).get("reference"),
        "requester_display": lambda r: (r.get("requester") or {}).get("display"),
        "subject_reference": lambda r: (r.get("subject") or {}).get("reference"),
        "medication_system": lambda r: _medication_coding(r).get("system"),
        "medication_code": lambda r: _medication_coding(r).get("code"),
        "medication_display": _medication_display,
    },
}


def canonical(resource: dict) -> str:
    return json.dumps(resource, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def validate(resource: dict, origin: str) -> str | None:
    """None when ``resource`` is valid R4 (R4B models), else the reason."""
    rtype = resource.get("resourceType")
    try:
        model = get_fhir_model_class(rtype)
    except (KeyError, ValueError, TypeError):
        return f"{origin}: unknown FHIR resource type {rtype!r}"
    try:
        model.model_validate(resource)
    except Exception as err:  # pydantic.ValidationError, or a model's own ValueError
        text = "\n".join(line for line in str(err).splitlines() if "errors.pydantic.dev" not in line)
        return f"{rtype} {origin} is not valid FHIR R4: {text}"
    return None


def last_updated(resource: dict) -> datetime | None:
    text = (resource.get("meta") or {}).get("lastUpdated")
    if not text:
        return None
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def _row(origin: str, resource: dict, text: str) -> dict[str, Any]:
    meta = resource.get("meta") or {}
    version = meta.get("versionId") or meta.get("lastUpdated") or "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    row = {"id": resource.get("id"), "resource_type": resource["resourceType"], "last_updated": last_updated(resource),
           "version": version, "origin": origin, OP: "upsert"}
    row.update({name: fn(resource) for name, fn in DERIVED.get(resource["resourceType"], {}).items()})
    return row


def _prune(value: Any) -> Any:
    """Empty JSON objects become null (no data; Parquet cannot store a struct without children)."""
    if isinstance(value, dict):
        return {k: _prune(v) for k, v in value.items()} or None
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


def _table(rtype: str, rows: list[dict], resources: list[dict], texts: list[str]) -> pa.Table:
    cols = {f.name: pa.array([r[f.name] for r in rows], f.type) for f in BASE}
    cols.update({name: pa.array([r[name] for r in rows], pa.string()) for name in DERIVED.get(rtype, {})})
    try:
        cols["resource"] = pa.array([_prune(r) for r in resources]) if resources else pa.array([], pa.struct([]))
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:  # conflicting JSON types across resources
        log.warning("FHIR %s: resources kept as JSON text only (no common struct type: %s)", rtype, err)
    cols["resource_json"] = pa.array(texts, pa.large_string())
    return pa.table(cols)


def empty_table(stream: str) -> pa.Table:
    """A stream's columns with no rows (``resource`` is left out: its type comes from the data)."""
    rtype = {s: t for t, s in STREAMS.items()}[stream]
    return _table(rtype, [], [], []).drop_columns(["resource"])


def delete_table(stream: str, events: list[tuple[str, Deleted]]) -> pa.Table:
    """Delete events as rows of ``stream``: key, type, time, version, origin, ``_op = 'delete'``; the rest null."""
    empty = empty_table(stream)
    given = {"id": [d.id for _, d in events], "resource_type": [d.resource_type for _, d in events],
             "last_updated": [d.last_updated for _, d in events], "version": [d.version for _, d in events],
             "origin": [o for o, _ in events], OP: ["delete"] * len(events)}
    return pa.table({f.name: pa.array(given[f.name], f.type) if f.name in given else pa.nulls(len(events), f.type)
                     for f in empty.schema})


def _in_order(parts: list[tuple[pa.Table, list[int]]]) -> pa.Table:
    """Tables whose rows came at the given item indices → one table in item order."""
    full = [(t, i) for t, i in parts if t.num_rows]
    if len(full) <= 1:
        return (full or parts)[0][0]
    parts = full
    table = pa.concat_tables([t for t, _ in parts], promote_options="permissive")
    order = pa.array([n for _, idx in parts for n in idx], pa.int64())
    return table.take(pc.sort_indices(order))


def to_tables(items: Iterable[tuple[str, Any]]) -> tuple[dict[str, pa.Table], dict[str, pa.Table]]:
    """(origin, resource or Deleted) pairs → ({stream: good rows}, {stream: rejected}), rows in item order;
    other types are logged and skipped."""
    rows: dict[str, tuple[list, list, list, list]] = {}
    deletes: dict[str, tuple[list, list]] = {}
    bad: dict[str, list] = {}
    for n, (origin, resource) in enumerate(items):
        if isinstance(resource, Deleted):
            stream = STREAMS.get(resource.resource_type)
            if stream is None:
                log.info("FHIR %s: DELETE of type %r has no stream; skipped", origin, resource.resource_type)
            elif resource.problem:
                bad.setdefault(stream, []).append((origin, resource.problem, resource.raw.encode()))
            else:
                ev, idx = deletes.setdefault(stream, ([], []))
                ev.append((origin, resource)), idx.append(n)
            continue
        rtype = resource.get("resourceType") if isinstance(resource, dict) else None
        stream = STREAMS.get(rtype)
        if stream is None:
            log.info("FHIR %s: resource type %r has no stream; skipped", origin, rtype)
            continue
        text = canonical(resource)
        reason = validate(resource, origin)
        if reason:
            bad.setdefault(stream, []).append((origin, reason, text.encode()))
            continue
        r, res, txt, idx = rows.setdefault(stream, ([], [], [], []))
        r.append(_row(origin, resource, text)), res.append(resource), txt.append(text), idx.append(n)
    types = {s: t for t, s in STREAMS.items()}
    good = {}
    for s in {*rows, *deletes}:
        r, res, txt, idx = rows.get(s, ([], [], [], []))
        ev, del_idx = deletes.get(s, ([], []))
        good[s] = _in_order([(_table(types[s], r, res, txt), idx), (delete_table(s, ev), del_idx)])
    return good, {s: rejected(v) for s, v in bad.items()}


def resources_in(doc: Any, origin: str) -> Iterator[tuple[str, Any]]:
    """The resources in a parsed JSON document: itself, or a Bundle's entries (nested Bundles too);
    a ``DELETE`` entry (transaction, batch, history Bundles) is yielded as a :class:`Deleted`."""
    if isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
        for n, entry in enumerate(doc.get("entry") or [], 1):
            if not isinstance(entry, dict):
                continue
            if "resource" in entry:
                yield from resources_in(entry["resource"], f"{origin}/entry[{n}]")
            elif is_delete(entry):
                yield f"{origin}/entry[{n}]", deleted_entry(entry, f"{origin}/entry[{n}]", doc)
    else:
        yield origin, doc
