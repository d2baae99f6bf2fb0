"""OpenLineage run events for weftline runs, with column lineage read from the mapping specs.

Beside our own record-level store, each run is announced the way Marquez and Airflow's
lineage views understand: a ``START`` and a ``COMPLETE`` (or ``FAIL``) event per run, the
job being the integration (or the spec), inputs the source streams
(namespace ``weftline://<connector>``, name ``<stream>``), outputs the CRM entities
(``crm.<entity>``), and per output field the input fields it is computed from, read from
the spec itself (``from`` paths, the paths an ``expr`` reads, ``lookup`` tables, variants).
Events are plain dicts following the OpenLineage 2-0-2 spec (no client library).

Transports: a JSON-lines file ``$WEFTLINE_HOME/openlineage/events.jsonl`` (default), or an
HTTP POST to ``<url>/api/v1/lineage`` (Marquez) when ``url`` or ``$WEFTLINE_OPENLINEAGE_URL``
is set; an optional bearer token comes from ``$WEFTLINE_OPENLINEAGE_API_KEY``. An event
the endpoint does not accept is logged and kept in ``openlineage/undelivered.jsonl``
(:func:`redeliver` sends them later): lineage is never silently lost, and a lineage
server being down never fails a sync.

>>> spec = {"mapping": "m", "version": 1, "source": {"connector": "web_analytics", "stream": "forms"},
...         "target": {"entity": "lead", "key": ["id"]},
...         "fields": {"id": {"expr": "'W-' || submission_id"}, "email": {"from": "contact.email", "apply": ["lower"]}}}
>>> ev = run_event("START", run_id_for("L1"), "m", [spec], event_time="2026-11-24T08:00:00.000000Z")
>>> ev["inputs"][0]["namespace"], ev["inputs"][0]["name"], ev["outputs"][0]["name"]
('weftline://web_analytics', 'forms', 'crm.lead')
>>> cl = ev["outputs"][0]["facets"]["columnLineage"]["fields"]
>>> [(f, [i["field"] for i in cl[f]["inputFields"]]) for f in sorted(cl)]
[('email', ['contact.email']), ('id', ['submission_id'])]
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from connectors.base.home import Home
from transforms.expr import ast
from transforms.expr.parser import parse

log = logging.getLogger(__name__)

EventType = Literal["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"]
ENV_URL = "WEFTLINE_OPENLINEAGE_URL"
ENV_API_KEY = "WEFTLINE_OPENLINEAGE_API_KEY"
ENV_NAMESPACE = "WEFTLINE_OPENLINEAGE_NAMESPACE"
DEFAULT_NAMESPACE = "weftline"
CRM_NAMESPACE = "weftline://crm"
REFERENCE_NAMESPACE = "weftline://reference"
PRODUCER = "https://github.com/weftline/weftline"
SPEC = "https://openlineage.io/spec"
RUN_EVENT_SCHEMA = f"{SPEC}/2-0-2/OpenLineage.json#/$defs/RunEvent"
SPEC_FACET_SCHEMA = "https://weftline.dev/schemas/openlineage/WeftlineSpecsJobFacet.json"
RUN_FACET_SCHEMA = "https://weftline.dev/schemas/openlineage/WeftlineRunFacet.json"
MASKING_FUNCTIONS = frozenset({"hash", "mask", "mask_email"})  # transforms.functions, category "privacy"
SOURCE_SCHEMAS = Path(__file__).resolve().parents[1] / "schemas" / "sources"
_RUN_ID_NAMESPACE = uuid.UUID("6f1d9a52-3c1b-4e0f-9b7a-2f0c1d5e8a41")


# -- the event --------------------------------------------------------------------------------------


def run_id_for(load_id: str) -> str:
    """The OpenLineage run id (a UUID) of a weftline load id: the same every time it is asked.

    >>> run_id_for("20261124T080000000000Z-5e1f0a2b") == run_id_for("20261124T080000000000Z-5e1f0a2b")
    True
    >>> str(uuid.UUID(run_id_for("L1"))) == run_id_for("L1")
    True
    """
    return str(uuid.uuid5(_RUN_ID_NAMESPACE, load_id))


def run_event(
    event_type: EventType,
    run_id: str,
    job_name: str,
    specs: Iterable[Mapping[str, Any]],
    *,
    event_time: str | None = None,
    load_id: str | None = None,
    counts: Mapping[str, Mapping[str, int]] | None = None,
    error: BaseException | str | None = None,
    namespace: str | None = None,
    crm_namespace: str = CRM_NAMESPACE,
    streaming: bool = False,
) -> dict[str, Any]:
    """One OpenLineage RunEvent for a run of ``job_name`` over ``specs`` (normalised spec dicts).

    ``counts`` is the mapping engine's ``{entity: {"read", "mapped", "quarantined", "filtered"}}``
    (output row counts on COMPLETE); ``error`` fills the errorMessage facet on FAIL;
    ``crm_namespace`` names the destination (e.g. ``postgres://db.internal:5432``).
    """
    specs = list(specs)
    uuid.UUID(run_id)  # raises ValueError: OpenLineage needs a UUID
    run_facets: dict[str, Any] = {}
    if load_id is not None or counts:
        run_facets["weftline_run"] = _facet(RUN_FACET_SCHEMA, loadId=load_id, counts=dict(counts or {}))
    if error is not None:
        run_facets["errorMessage"] = _facet(f"{SPEC}/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet",
                                            message=str(error), programmingLanguage="python")
    return {
        "eventType": event_type,
        "eventTime": event_time or _now(),
        "producer": PRODUCER,
        "schemaURL": RUN_EVENT_SCHEMA,
        "run": {"runId": run_id, "facets": run_facets},
        "job": {"namespace": namespace or os.environ.get(ENV_NAMESPACE) or DEFAULT_NAMESPACE, "name": job_name,
                "facets": _job_facets(specs, streaming)},
        "inputs": _inputs(specs),
        "outputs": _outputs(specs, counts or {}, crm_namespace),
    }


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _facet(schema_url: str, **values: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": schema_url, **values}


def version_hash(spec: Mapping[str, Any]) -> str:
    """The spec's content hash, as ``transforms.spec.Spec.version_hash`` computes it from the same dict."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _job_facets(specs: list[Mapping[str, Any]], streaming: bool) -> dict[str, Any]:
    facets: dict[str, Any] = {
        "jobType": _facet(f"{SPEC}/facets/2-0-3/JobTypeJobFacet.json#/$defs/JobTypeJobFacet",
                          processingType="STREAMING" if streaming else "BATCH", integration="WEFTLINE",
                          jobType="MAPPING"),
        "weftline_specs": _facet(SPEC_FACET_SCHEMA, specs=[
            {"mapping": s["mapping"], "version": s["version"], "versionHash": version_hash(s)} for s in specs]),
    }
    docs = [f"{s['mapping']}: {s['description']}" for s in specs if s.get("description")]
    if docs:
        facets["documentation"] = _facet(f"{SPEC}/facets/1-1-0/DocumentationJobFacet.json#/$defs/DocumentationJobFacet",
                                         description="\n".join(docs))
    return facets


# -- datasets ---------------------------------------------------------------------------------------


def source_dataset(spec: Mapping[str, Any]) -> tuple[str, str]:
    """(namespace, name) of the spec's source stream.

    >>> source_dataset({"source": {"connector": "erp_sql", "stream": "orders"}})
    ('weftline://erp_sql', 'orders')
    """
    return f"weftline://{spec['source']['connector']}", spec["source"]["stream"]


def targets(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The spec's targets, whether written as ``target`` + ``fields`` or as ``targets: [...]``."""
    if "targets" in spec:
        return list(spec["targets"])
    return [{**spec["target"], "fields": spec.get("fields", {}), "variants": spec.get("variants", [])}]


def _inputs(specs: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    read: dict[tuple[str, str], dict[str, None]] = {}
    for spec in specs:
        fields = read.setdefault(source_dataset(spec), {})
        for lineage in column_lineage(spec).values():
            for sources in lineage["fields"].values():
                fields.update({i["field"]: None for i in sources["inputFields"] if i["namespace"] != REFERENCE_NAMESPACE})
    out = []
    for (ns, name), used in read.items():
        declared = _declared_fields(ns.removeprefix("weftline://"), name)
        fields = declared or [{"name": f} for f in used]
        out.append({"namespace": ns, "name": name, "facets": {"schema": _schema_facet(fields)}})
    return out


def _declared_fields(connector: str, stream: str) -> list[dict[str, str]]:
    """Top-level fields of ``schemas/sources/<connector>.<stream>.json``, when the connector declares them."""
    return [dict(f) for f in _schema_fields(connector, stream)]


@lru_cache(maxsize=256)
def _schema_fields(connector: str, stream: str) -> tuple[dict[str, str], ...]:
    """Read once per process: the schema files ship with the code (a stream worker emits two events per batch)."""
    path = SOURCE_SCHEMAS / f"{connector}.{stream}.json"
    if not path.exists():
        return ()
    props = json.loads(path.read_text()).get("properties", {})
    out = []
    for name, prop in props.items():
        t = prop.get("type", "")
        t = "|".join(x for x in t if x != "null") if isinstance(t, list) else t
        out.append({"name": name, "type": t} if t else {"name": name})
    return tuple(out)


def _schema_facet(fields: list[dict[str, str]]) -> dict[str, Any]:
    return _facet(f"{SPEC}/facets/1-1-1/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet", fields=fields)


def _outputs(specs: list[Mapping[str, Any]], counts: Mapping[str, Mapping[str, int]],
             crm_namespace: str) -> list[dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for spec in specs:
        types = {t["entity"]: t["fields"] for t in targets(spec)}
        for entity, lineage in column_lineage(spec).items():
            out = merged.setdefault(entity, {"fields": {}, "dataset": [], "types": {}})
            for field, sources in lineage["fields"].items():
                out["fields"].setdefault(field, {"inputFields": []})["inputFields"] += sources["inputFields"]
            out["dataset"] += lineage["dataset"]
            for name, f in types[entity].items():
                t = f.get("type") if isinstance(f, Mapping) else None
                out["types"].setdefault(name, t)
    result = []
    for entity, out in merged.items():
        facets: dict[str, Any] = {
            "schema": _schema_facet([{"name": n, "type": t} if t else {"name": n} for n, t in out["types"].items()]),
            "columnLineage": _facet(f"{SPEC}/facets/1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet",
                                    fields=out["fields"], dataset=out["dataset"]),
        }
        ds: dict[str, Any] = {"namespace": crm_namespace, "name": f"crm.{entity}", "facets": facets}
        if entity in counts:
            ds["outputFacets"] = {"outputStatistics": _facet(
                f"{SPEC}/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet",
                rowCount=int(counts[entity].get("mapped", 0)))}
        result.append(ds)
    return result


# -- column lineage from the spec -------------------------------------------------------------------


def column_lineage(spec: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per target entity: ``fields`` {target field: {"inputFields": [...]}} and ``dataset`` (filters).

    >>> spec = {"source": {"connector": "c", "stream": "s"}, "when": "level is not null",
    ...         "target": {"entity": "lead", "key": ["k"]}, "fields": {"k": "id"}}
    >>> cl = column_lineage(spec)["lead"]
    >>> cl["fields"]["k"]["inputFields"][0]["transformations"][0]["subtype"], cl["dataset"][0]["field"]
    ('IDENTITY', 'level')
    """
    ns, name = source_dataset(spec)
    out = {}
    for target in targets(spec):
        fields: dict[str, dict[str, list]] = {}
        for field, f in target["fields"].items():
            fields[field] = {"inputFields": _field_inputs(ns, name, f, None)}
        for variant in target.get("variants") or []:
            cond = [_input(ns, name, p, "INDIRECT", "CONDITIONAL", f"variant {variant['name']}: {variant['when']}")
                    for p in ast.paths(parse(variant["when"]))]
            for field, f in variant["fields"].items():
                entry = fields.setdefault(field, {"inputFields": []})
                entry["inputFields"] += _field_inputs(ns, name, f, variant["name"]) + cond
        filters = [w for w in (spec.get("when"), target.get("when")) if w]
        dataset = [_input(ns, name, p, "INDIRECT", "FILTER", f"when: {w}") for w in filters for p in ast.paths(parse(w))]
        out[target["entity"]] = {"fields": fields, "dataset": dataset}
    return out


def _field_inputs(ns: str, name: str, f: Any, variant: str | None) -> list[dict[str, Any]]:
    f = {"from": f} if isinstance(f, str) else dict(f)
    steps = _steps_text(f)
    masking = any((a if isinstance(a, str) else next(iter(a))) in MASKING_FUNCTIONS for a in f.get("apply") or [])
    where = f" (variant {variant})" if variant else ""
    if "from" in f:
        subtype = "TRANSFORMATION" if steps else "IDENTITY"
        return [_input(ns, name, f["from"], "DIRECT", subtype, f"from {f['from']}{steps}{where}", masking)]
    tree = parse(f["expr"])
    masking = masking or any(isinstance(n, ast.Call) and n.name in MASKING_FUNCTIONS for n in ast.walk(tree))
    text = f"expr: {f['expr']}{steps}{where}"
    inputs = [_input(ns, name, p, "DIRECT", "TRANSFORMATION", text, masking) for p in ast.paths(tree)]
    for n in ast.walk(tree):
        if isinstance(n, ast.Call) and n.name == "lookup" and all(isinstance(a, ast.Literal) for a in (n.args[0], n.args[2])):
            inputs.append(_input(REFERENCE_NAMESPACE, str(n.args[0].value), str(n.args[2].value), "DIRECT",
                                 "TRANSFORMATION", text, masking))
    return inputs


def _steps_text(f: Mapping[str, Any]) -> str:
    parts = []
    if f.get("apply"):
        parts.append("apply " + ", ".join(a if isinstance(a, str) else next(iter(a)) for a in f["apply"]))
    if f.get("map"):
        parts.append(f"map of {len(f['map'])} values")
    if "default" in f:
        parts.append("default given")
    if f.get("type"):
        parts.append(f"cast to {f['type']}")
    return "; " + "; ".join(parts) if parts else ""


def _input(ns: str, name: str, field: str, kind: str, subtype: str, text: str, masking: bool = False) -> dict[str, Any]:
    return {"namespace": ns, "name": name, "field": field,
            "transformations": [{"type": kind, "subtype": subtype, "description": text, "masking": masking}]}


# -- transports -------------------------------------------------------------------------------------


def emit_run(
    event_type: EventType,
    run_id: str,
    job_name: str,
    specs: Iterable[Mapping[str, Any]],
    *,
    home: Home | str | os.PathLike[str] | None = None,
    url: str | None = None,
    timeout: float = 5.0,
    **event_args: Any,
) -> dict[str, Any]:
    """Build a run event (:func:`run_event`; ``event_args`` go there) and send it; returns the event.

    ``url`` (else ``$WEFTLINE_OPENLINEAGE_URL``) selects HTTP; without one the event is appended
    to ``$WEFTLINE_HOME/openlineage/events.jsonl``.
    """
    event = run_event(event_type, run_id, job_name, specs, **event_args)
    home = home if isinstance(home, Home) else Home(home)
    target = url or os.environ.get(ENV_URL)
    if target:
        send_http(event, target, home=home, timeout=timeout)
    else:
        append_jsonl(event, events_file(home))
    return event


def events_file(home: Home) -> Path:
    return home.root / "openlineage" / "events.jsonl"


def undelivered_file(home: Home) -> Path:
    return home.root / "openlineage" / "undelivered.jsonl"


def append_jsonl(event: Mapping[str, Any], path: Path) -> None:
    """Append one event as one line, in one ``write`` on an ``O_APPEND`` file (concurrent writers keep whole lines)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(event, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def send_http(event: Mapping[str, Any], url: str, *, home: Home, timeout: float = 5.0) -> bool:
    """POST the event to ``<url>/api/v1/lineage``; True when accepted (2xx), else kept as undelivered."""
    import requests  # the HTTP transport only: the default file transport (a stream worker's) needs no import

    endpoint = url.rstrip("/") + "/api/v1/lineage"
    headers = {"Content-Type": "application/json"}
    key = os.environ.get(ENV_API_KEY)
    if key:
        headers["Authorization"] = f"Bearer {key}"
    try:
        resp = requests.post(endpoint, data=json.dumps(event), headers=headers, timeout=timeout)
        if 200 <= resp.status_code < 300:
            return True
        problem = f"HTTP {resp.status_code}: {resp.text[:200]}"
    except requests.RequestException as exc:
        problem = f"{type(exc).__name__}: {exc}"
    log.warning("OpenLineage endpoint %s did not take the %s event of run %s (%s); kept in %s",
                endpoint, event.get("eventType"), event["run"]["runId"], problem, undelivered_file(home))
    append_jsonl(event, undelivered_file(home))
    return False


def redeliver(home: Home, url: str | None = None, *, timeout: float = 5.0) -> tuple[int, int]:
    """Send the undelivered events again, in order; returns (delivered, still undelivered)."""
    path = undelivered_file(home)
    if not path.exists():
        return 0, 0
    target = url or os.environ.get(ENV_URL)
    if not target:
        raise ValueError(f"no OpenLineage URL: pass url or set {ENV_URL}")
    pending = path.with_suffix(".sending")
    path.replace(pending)  # new failures land in a fresh undelivered file
    events = [json.loads(line) for line in pending.read_text().splitlines() if line.strip()]
    sent = sum(send_http(e, target, home=home, timeout=timeout) for e in events)
    pending.unlink()
    return sent, len(events) - sent
