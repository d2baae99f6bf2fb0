import pyarrow as pa
import pytest

from connectors.errors import ConfigError
from connectors.singer import schema as schemas


def test_nullable_unions_and_nested_shapes():
    s = schemas.to_arrow({"type": "object", "properties": {
        "q": {"type": ["array", "null"], "items": {"type": "object", "properties": {"score": {"type": ["number", "null"]}}}}}})
    assert s.field("q").type == pa.list_(pa.struct([("score", pa.float64())]))


def test_an_ambiguous_union_is_refused():
    with pytest.raises(ConfigError, match="union"):
        schemas.to_arrow_type({"type": ["string", "integer"]})


def test_events_schema_is_the_raw_event_schema_renamed():
    raw, ev = schemas.load("web_analytics.event"), schemas.load("web_analytics.events")
    back = {ev["x-renamed-from"].get(k, k): v for k, v in ev["properties"].items()}
    assert back == raw["properties"]


@pytest.mark.parametrize("name", ["call_analytics.calls", "call_analytics.turns", "call_analytics.analysis",
                                  "web_analytics.event", "web_analytics.events", "web_analytics.form_submissions"])
def test_every_schema_of_mine_is_valid_json_schema(name):
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(schemas.load(name))
