from jsonschema import Draft202012Validator

from connectors.singer import schema as schemas
from connectors.web_analytics.generator import generate_events, level


def test_same_seed_same_events_other_seed_other_events():
    assert generate_events(200, seed=5) == generate_events(200, seed=5)
    assert generate_events(200, seed=5) != generate_events(200, seed=6)


def test_every_event_matches_the_declared_event_schema():
    v = Draft202012Validator(schemas.load("web_analytics.event"))
    errors = [e.message for ev in generate_events(500, seed=1) for e in v.iter_errors(ev)]
    assert errors == []


def test_realistic_mix_and_consistent_traits():
    evs = generate_events(1000, seed=2)
    kinds = {k: sum(1 for e in evs if (e["type"], e.get("event")) == k)
             for k in [("page", None), ("track", "form_submitted"), ("track", "feature_used")]}
    assert all(n > 50 for n in kinds.values()), kinds
    assert sum(kinds.values()) == len(evs)
    for e in evs:
        t = (e["context"] or {}).get("traits")
        if t:
            assert t["activity_level"] == level(t["engagement_score"])
            assert "@" in t["email"]
        if e.get("event") == "form_submitted":
            assert t is not None and e["properties"]["submission_id"].startswith("sub-")
    assert len({e["messageId"] for e in evs}) == len(evs)
    assert any(e["context"]["campaign"] for e in evs) and any(not e["context"]["campaign"] for e in evs)
