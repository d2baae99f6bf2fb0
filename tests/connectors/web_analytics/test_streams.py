import json

from connectors.singer import schema as schemas
from connectors.web_analytics.generator import generate_events
from connectors.web_analytics.parse import parse_jsonl
from connectors.web_analytics.streams import events, form_submissions


def _raw(evs):
    return parse_jsonl(b"\n".join(json.dumps(e).encode() for e in evs), "t")[0]


def test_form_submissions_carry_the_names_the_lead_spec_uses():
    evs = generate_events(400, seed=9)
    got = form_submissions(_raw(evs)).to_pylist()
    want = [e for e in evs if e.get("event") == "form_submitted"]
    assert len(got) == len(want) > 0
    for g, w in zip(got, want):
        traits = w["context"]["traits"]
        assert g["submission_id"] == w["properties"]["submission_id"]
        assert g["contact"]["email"] == traits["email"]
        assert g["activity"]["level"] == traits["activity_level"]
        assert g["engagement_score"] == traits["engagement_score"]
        assert g["utm"]["campaign"] == ((w["context"]["campaign"] or {}).get("name"))
        assert g["page"]["path"] == w["context"]["page"]["path"]


def test_form_submissions_match_their_declared_schema_exactly():
    t = form_submissions(_raw(generate_events(100, seed=9)))
    assert t.schema == schemas.arrow_schema("web_analytics.form_submissions")


def test_events_are_renamed_to_snake_case_and_keep_nesting():
    evs = generate_events(20, seed=9)
    t = events(_raw(evs))
    assert t.column_names == list(schemas.load("web_analytics.events")["properties"])
    assert t.column("message_id").to_pylist() == [e["messageId"] for e in evs]
    assert t.to_pylist()[0]["context"]["page"]["url"] == evs[0]["context"]["page"]["url"]
