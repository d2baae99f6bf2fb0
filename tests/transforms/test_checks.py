"""Static checks: every problem is `file:line: message`, never a traceback."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transforms import SpecInvalid, load_spec

GOOD = """mapping: web_activity_to_lead_x
version: 1
source: {connector: web_analytics, stream: form_submissions}
target: {entity: lead, key: [external_id]}
fields:
  external_id: {expr: "'WEB-' || submission_id"}
"""


def issues_of(tmp_path, text: str) -> list[str]:
    p = tmp_path / "spec.yaml"
    p.write_text(text)
    with pytest.raises(SpecInvalid) as e:
        load_spec(p)
    return [str(i) for i in e.value.issues]


def test_a_good_spec_loads(tmp_path):
    p = tmp_path / "spec.yaml"
    p.write_text(GOOD)
    assert load_spec(p).id == "web_activity_to_lead_x"


@pytest.mark.parametrize("extra,line,needle", [
    ("  email: {from: contact.mail}\n", 7, "unknown source field 'contact.mail'"),
    ("  x: {expr: \"shell('rm -rf /')\"}\n", 7, "unknown function 'shell'"),
    ("  x: {expr: \"lower(engagement_score)\"}\n", 7, "must be string, not float"),
    ("  x: {expr: \"submission_id +\"}\n", 7, "cannot parse expression"),
    ("  x: {expr: \"case when true then 1 when submission_id = 'a' then 2 end\"}\n", 7, "unreachable rule"),
    ("  external_id: {from: submission_id}\n", 7, "duplicate key"),
    ("  x: {from: submission_id, type: money}\n", 7, "type"),
    ("  x: {from: submission_id, map: {a: 1, b: two}}\n", 7, "different types"),
    ("  x: {expr: \"lookup('../../etc/passwd', submission_id, 'a')\"}\n", 7, "unknown reference table"),
    ("  x: {expr: \"regex_extract(submission_id, '(', 1)\"}\n", 7, "invalid regular expression"),
    ("  x: {frm: submission_id}\n", 7, "unknown key"),
])
def test_each_problem_names_file_and_line(tmp_path, extra, line, needle):
    found = issues_of(tmp_path, GOOD + extra)
    assert any(needle in i and f"spec.yaml:{line}:" in i for i in found), found


def test_unreachable_variant_after_an_always_true_one(tmp_path):
    text = GOOD + """variants:
  - {name: everyone, when: "true", fields: {external_id: {from: submission_id}}}
  - {name: vip, when: "activity.level = 'A'", fields: {external_id: {from: submission_id}}}
"""
    found = issues_of(tmp_path, text)
    assert any("unreachable rule: variant 'vip'" in i and ":9:" in i for i in found), found


def test_duplicate_target_entity(tmp_path):
    text = """mapping: m
version: 1
source: {connector: web_analytics, stream: form_submissions}
targets:
  - {entity: lead, key: [a], fields: {a: {from: submission_id}}}
  - {entity: lead, key: [a], fields: {a: {from: submission_id}}}
"""
    found = issues_of(tmp_path, text)
    assert any("duplicate target" in i and ":6:" in i for i in found), found


def test_yaml_alias_bombs_and_python_tags_are_refused(tmp_path):
    bomb = "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n"
    assert any("anchors" in i for i in issues_of(tmp_path, bomb))
    tag = "mapping: !!python/object/apply:os.system ['id']\n"
    assert any("spec.yaml:1:" in i for i in issues_of(tmp_path, tag))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=300))
def test_fuzz_any_file_content_is_a_spec_or_clear_issues(tmp_path, text):
    p = tmp_path / "fuzz.yaml"
    p.write_text(text)
    try:
        load_spec(p)
    except SpecInvalid as e:
        assert e.issues and all(str(i).startswith(f"{p}:") for i in e.issues)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["from", "expr", "map", "type", "apply", "default", "required", "tz", "format"]),
                       st.one_of(st.text(max_size=20), st.integers(), st.booleans(), st.none(),
                                 st.lists(st.text(max_size=8), max_size=3), st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=3)),
                       max_size=5))
def test_fuzz_field_definitions(tmp_path, field):
    import yaml

    doc = yaml.safe_load(GOOD)
    doc["fields"]["x"] = field
    p = tmp_path / "fuzz.yaml"
    p.write_text(yaml.safe_dump(doc))
    try:
        load_spec(p)
    except SpecInvalid as e:
        assert e.issues
