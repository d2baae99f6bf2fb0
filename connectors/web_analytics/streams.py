"""Raw events → the ``events`` and ``form_submissions`` streams, with Arrow kernels only.

``events``: top-level names in snake_case (renamed per ``x-renamed-from`` in its schema),
``context`` / ``properties`` nested as received (new fields included).
``form_submissions``: track events named ``form_submitted``, shaped for lead mappings:
``submission_id``, ``contact.email``, ``activity.level``, ``engagement_score``, ``utm.*``, ``page.*``.

>>> from connectors.web_analytics.generator import generate_events
>>> from connectors.web_analytics.parse import parse_jsonl
>>> import json
>>> raw, _ = parse_jsonl("\\n".join(json.dumps(e) for e in generate_events(40, seed=3)).encode(), "x")
>>> f = form_submissions(raw)
>>> f.num_rows == sum(1 for e in generate_events(40, seed=3) if e.get("event") == "form_submitted")
True
>>> f.column_names[:4]
['submission_id', 'message_id', 'submitted_at', 'received_at']
"""

from __future__ import annotations

from functools import lru_cache

import pyarrow as pa
import pyarrow.compute as pc

from connectors.singer import schema as schemas

EVENTS = "events"
FORM_SUBMISSIONS = "form_submissions"
SCHEMAS = {EVENTS: "web_analytics.events", FORM_SUBMISSIONS: "web_analytics.form_submissions"}


@lru_cache(maxsize=1)
def _renames() -> dict[str, str]:
    return {raw: snake for snake, raw in schemas.load(SCHEMAS[EVENTS])["x-renamed-from"].items()}


def events(raw: pa.Table) -> pa.Table:
    """Every event; new top-level fields stay as extra columns."""
    names = _renames()
    return raw.rename_columns([names.get(c, c) for c in raw.column_names])


def _field(arr: pa.Array, *path: str) -> pa.Array:
    for p in path:
        arr = pc.struct_field(arr, p)
    return arr


def _struct(fields: dict[str, pa.Array], like: pa.DataType) -> pa.StructArray:
    arrays = [fields[f.name].cast(f.type) for f in like]
    return pa.StructArray.from_arrays(arrays, fields=list(like))


def form_submissions(raw: pa.Table) -> pa.Table:
    """Form submissions in the ``web_analytics.form_submissions`` schema."""
    schema = schemas.arrow_schema(SCHEMAS[FORM_SUBMISSIONS])
    mask = pc.and_kleene(pc.equal(raw.column("type"), "track"), pc.equal(raw.column("event"), "form_submitted"))
    t = raw.filter(pc.fill_null(mask, False)).combine_chunks()
    if not t.num_rows:
        return schema.empty_table()
    ctx, props = t.column("context").chunk(0), t.column("properties").chunk(0)
    traits, campaign, page = _field(ctx, "traits"), _field(ctx, "campaign"), _field(ctx, "page")
    cols = {
        "submission_id": pc.coalesce(_field(props, "submission_id"), t.column("messageId").chunk(0)),
        "message_id": t.column("messageId").chunk(0),
        "submitted_at": t.column("timestamp").chunk(0),
        "received_at": t.column("receivedAt").chunk(0),
        "form_id": _field(props, "form_id"),
        "form_name": _field(props, "form_name"),
        "contact": _struct({"email": _field(traits, "email"), "anonymous_id": t.column("anonymousId").chunk(0),
                            "user_id": t.column("userId").chunk(0), "first_name": _field(traits, "first_name"),
                            "last_name": _field(traits, "last_name"), "company": _field(traits, "company")},
                           schema.field("contact").type),
        "activity": _struct({"level": _field(traits, "activity_level")}, schema.field("activity").type),
        "engagement_score": _field(traits, "engagement_score"),
        "utm": _struct({"source": _field(campaign, "source"), "medium": _field(campaign, "medium"),
                        "campaign": _field(campaign, "name"), "term": _field(campaign, "term"),
                        "content": _field(campaign, "content")}, schema.field("utm").type),
        "page": _struct({k: _field(page, k) for k in ("url", "path", "referrer", "title")}, schema.field("page").type),
    }
    return pa.table([cols[f.name].cast(f.type) for f in schema], schema=schema)


SHAPERS = {EVENTS: events, FORM_SUBMISSIONS: form_submissions}
