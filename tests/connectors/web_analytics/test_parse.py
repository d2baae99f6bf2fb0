import json

from connectors.web_analytics.generator import generate_events
from connectors.web_analytics.parse import parse_jsonl


def _lines(evs):
    return [json.dumps(e).encode() for e in evs]


def test_fast_path_reads_every_line():
    evs = generate_events(300, seed=4)
    table, bad = parse_jsonl(b"\n".join(_lines(evs)), "f.jsonl")
    assert bad.num_rows == 0
    assert table.column("messageId").to_pylist() == [e["messageId"] for e in evs]


def test_malformed_line_is_rejected_with_file_and_line_and_the_rest_goes_on():
    lines = _lines(generate_events(10, seed=4))
    lines.insert(3, b'{"messageId": "x", "type": "page",')  # truncated: line 4
    table, bad = parse_jsonl(b"\n".join(lines) + b"\n", "drops/2026-11-24.jsonl")
    assert table.num_rows == 10
    (row,) = bad.to_pylist()
    assert row["position"] == "drops/2026-11-24.jsonl:4"
    assert "invalid JSON" in row["reason"] and row["raw"] == lines[3]


def test_changed_type_is_quarantined_with_the_path():
    evs = generate_events(10, seed=4)
    evs[6]["context"]["traits"] = {"email": "a@b.c", "engagement_score": "very high"}
    table, bad = parse_jsonl(b"\n".join(_lines(evs)), "f.jsonl")
    assert table.num_rows == 9
    (row,) = bad.to_pylist()
    assert row["position"] == "f.jsonl:7"
    assert "context.traits.engagement_score" in row["reason"] and "changed type" in row["reason"]


def test_new_fields_are_kept_nested():
    evs = generate_events(5, seed=4)
    evs[2]["properties"]["ab_variant"] = "green-button"
    evs[2]["consent"] = {"marketing": True}
    table, bad = parse_jsonl(b"\n".join(_lines(evs)), "f.jsonl")
    assert bad.num_rows == 0
    rows = table.to_pylist()
    assert rows[2]["properties"]["ab_variant"] == "green-button"
    assert rows[2]["consent"] == {"marketing": True} and rows[0]["consent"] is None


def test_a_new_field_with_conflicting_types_rejects_only_the_conflicting_line():
    evs = generate_events(4, seed=4)
    evs[1]["score_v2"] = 5
    evs[3]["score_v2"] = "five"
    table, bad = parse_jsonl(b"\n".join(_lines(evs)), "f.jsonl")
    assert table.num_rows == 3 and bad.column("position").to_pylist() == ["f.jsonl:4"]
