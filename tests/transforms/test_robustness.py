"""Any spec ends in a validation error or a mapped batch whose counts reconcile — never a crash.

Hypothesis builds expressions from the grammar's pieces and fields from every field key,
with a source that declares no schema (so the static checks know no types and the run-time
paths are exercised), and applies them to a batch holding every column type. The pinned
examples are crashes these properties found (each fixed in transforms/).
"""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from transforms import SpecInvalid, compile_spec, parse_spec
from transforms.checks import check_spec
from transforms.functions import REGISTRY

BATCH = pa.table({
    "a": [1, None, -3, 2**62], "b": [0.5, 2.0, None, 0.0], "s": ["Ä b", None, "x", " 12 "],
    "n": ["1", "x", None, "2026-11-24"], "d": pa.array([None, 1, 2, 3], pa.int32()).cast(pa.date32()),
    "l": [["a"], None, [], ["b", None]], "x": [{"y": 1}, None, {"y": None}, {"y": 3}],
    "t": pa.array([None, 0, 10**12, 1], pa.timestamp("us", "UTC")), "f": [True, None, False, True],
})
COLUMNS = ["a", "b", "s", "n", "d", "l", "x.y", "l[0]", "t", "f", "absent"]


def outcome(field: dict, when: str | None = None) -> str:
    """'invalid' (a clear SpecInvalid) or 'mapped' (counts reconcile); anything else raises."""
    doc = {"mapping": "t", "version": 1, "source": {"connector": "file", "stream": "rows"},
           "target": {"entity": "e", "key": ["id"]}, "fields": {"id": {"expr": "'k'"}, "v": field}}
    if when:
        doc["when"] = when
    try:
        spec = parse_spec(json.dumps(doc))
        if check_spec(spec):
            return "invalid"
        result = compile_spec(spec).apply(BATCH, identity=False)
    except SpecInvalid:
        return "invalid"
    c = result.counts["e"]
    assert c["read"] == BATCH.num_rows == c["mapped"] + c["quarantined"] + c["filtered"]
    assert result.quarantine.num_rows == c["quarantined"]
    assert all(result.quarantine.column("reason").to_pylist())
    return "mapped"


leaf = st.sampled_from(COLUMNS + ["1", "0", "2.5", "-1", "'t'", "''", "null", "true", "false", "'%Y'", "'day'", "2"])


def _compose(children):
    return st.one_of(
        st.tuples(children, st.sampled_from(["+", "-", "*", "/", "%", "||", "=", "!=", "<", ">=", "and", "or"]), children)
        .map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(st.sampled_from(sorted(REGISTRY)), st.lists(children, min_size=1, max_size=3))
        .map(lambda t: f"{t[0]}({', '.join(t[1])})"),
        children.map(lambda c: f"not {c}"),
        children.map(lambda c: f"{c} is null"),
        st.tuples(children, children, children).map(lambda t: f"case when {t[0]} then {t[1]} else {t[2]} end"),
        children.map(lambda c: f"{c} in (1, 'a')"),
        children.map(lambda c: f"{c} like 'a%'"),
    )


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.recursive(leaf, _compose, max_leaves=6))
@example("not case when a then a else a end in (1, 'a')")  # mixed literal types in IN
@example("not not date_trunc(2.5)")  # wrong arity: the checker asked a result type for missing arguments
@example("case when f then 2.5 else a end")  # int64 beyond 2**53 unified with a float
@example("lower(a) || round(s) || list_join(s, ',') || year(n)")  # column types the spec did not expect
def test_any_expression_validates_or_maps(expr):
    assert outcome({"expr": expr}) in ("invalid", "mapped")


scalar = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([2.5, "A", "x", "1", "", "2026-11-24", " 12 "]))
fn = st.sampled_from(sorted(REGISTRY))
FIELDS = st.fixed_dictionaries({"from": st.sampled_from(COLUMNS)}, optional={
    "apply": st.lists(st.one_of(fn, st.dictionaries(fn, st.one_of(scalar, st.lists(scalar, max_size=2)), min_size=1, max_size=1)),
                      max_size=2),
    "map": st.dictionaries(st.one_of(st.sampled_from(["A", "x", "1"]), st.integers(-2, 2), st.booleans()), scalar,
                           min_size=1, max_size=3),
    "default": scalar,
    "type": st.sampled_from(["string", "int", "float", "bool", "decimal", "decimal(5,1)", "date", "timestamp"]),
    "required": st.booleans(),
})


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(FIELDS, st.one_of(st.none(), st.sampled_from(["f", "a > 0", "s is not null", "n"])))
@example({"from": "b", "type": "decimal(5,1)", "default": 2}, None)  # the default crashed compile
@example({"from": "d", "type": "date", "default": "2026-01-01"}, None)
@example({"from": "b", "default": "x"}, None)  # a default that does not fit the column
@example({"from": "l", "map": {"A": None}}, "f")  # a map over lists
@example({"from": "f", "type": "date"}, None)  # a type that can never be a date
@example({"from": "n", "apply": [{"contains_any": None}]}, None)  # a null literal argument
@example({"from": "b", "apply": [{"substr": None}]}, None)
def test_any_field_validates_or_maps(field, when):
    assert outcome(field, when) in ("invalid", "mapped")


@pytest.mark.parametrize("field,reason", [
    ({"from": "b", "default": "x"}, "default 'x' does not fit the values of field 'v' (double)"),
    ({"from": "l", "map": {"A": "a"}}, "field 'v' holds list<item: string> values, which a map cannot look up"),
    ({"from": "f", "type": "date"}, "cannot cast "),  # then the value: True or False
])
def test_run_time_type_problems_are_quarantine_reasons(field, reason):
    spec = parse_spec(json.dumps({"mapping": "t", "version": 1, "source": {"connector": "file", "stream": "rows"},
                                  "target": {"entity": "e", "key": ["id"]}, "fields": {"id": {"expr": "'k'"}, "v": field}}))
    result = compile_spec(spec).apply(BATCH, identity=False)
    reasons = result.quarantine.column("reason").to_pylist()
    assert reasons and all(r.startswith(reason) for r in reasons), reasons


@pytest.mark.parametrize("field,message", [
    ({"from": "b", "type": "int", "default": "x"}, "default 'x' cannot be cast to int"),
    ({"from": "s", "apply": [{"left": None}]}, "argument 'n' of left must be a value, not null"),
])
def test_static_problems_are_reported_not_raised(field, message):
    spec = parse_spec(json.dumps({"mapping": "t", "version": 1, "source": {"connector": "file", "stream": "rows"},
                                  "target": {"entity": "e", "key": ["id"]}, "fields": {"id": {"expr": "'k'"}, "v": field}}))
    assert any(message in i.message for i in check_spec(spec)), check_spec(spec)


def test_a_typed_default_is_cast_like_data():
    spec = parse_spec(json.dumps({"mapping": "t", "version": 1, "source": {"connector": "file", "stream": "rows"},
                                  "target": {"entity": "e", "key": ["id"]}, "fields": {
                                      "id": {"from": "id"}, "m": {"from": "m", "type": "decimal(5,1)", "default": 2},
                                      "d": {"from": "d", "type": "date", "default": "2026-01-01"}}}))
    assert not check_spec(spec)
    out = compile_spec(spec).apply(pa.table({"id": ["1", "2"], "m": ["1.5", None], "d": ["2026-11-24", None]}), identity=False)
    from datetime import date
    from decimal import Decimal

    assert out.outputs[0].table.select(["m", "d"]).to_pylist() == [
        {"m": Decimal("1.5"), "d": date(2026, 11, 24)}, {"m": Decimal("2.0"), "d": date(2026, 1, 1)}]


def test_in_over_a_column_null_in_the_whole_batch_is_null_not_an_error():
    """A batch where a column has no value at all comes as Arrow's null type (e.g. a batch of FHIR delete
    events): ``x in (...)`` is null there, as in SQL, so a ``when:`` with ``or x is null`` keeps the rows."""
    plan = compile_spec(parse_spec("""
mapping: t
version: 1
source: {connector: web_analytics, stream: form_submissions}
target: {entity: lead, key: [k], write: upsert}
when: "intent in ('order', 'plan') or intent is null"
fields:
  k: {from: id}
  known: {expr: "intent not in ('order')"}
"""))
    r = plan.apply(pa.table({"id": pa.array(["1", "2"]), "intent": pa.nulls(2)}))
    out = r.outputs[0].table
    assert out.column("k").to_pylist() == ["1", "2"] and out.column("known").to_pylist() == [None, None]
