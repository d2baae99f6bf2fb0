"""The compiled engine on real Arrow batches: values, quarantine with reasons, counts, rules, identity."""

from __future__ import annotations

import textwrap

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.base.identity import record_id
from transforms import compile_spec, parse_spec
from transforms.checks import check_spec


def plan_of(yaml_text: str, tmp_path=None):
    spec = parse_spec(textwrap.dedent(yaml_text), tmp_path / "s.yaml" if tmp_path else None)
    issues = check_spec(spec)
    assert not issues, issues
    return compile_spec(spec, subject_key=b"k")


HEAD = """
mapping: t
version: 1
source: {connector: file, stream: rows}
"""


def test_casts_quarantine_bad_values_never_null_them():
    plan = plan_of(HEAD + """
target: {entity: e, key: [id]}
fields:
  id: {from: id}
  n: {from: n, type: int}
  d: {from: d, type: date, format: "%d.%m.%Y"}
  ts: {from: ts, type: timestamp, tz: Europe/Berlin}
""")
    t = pa.table({"id": ["1", "2", "3", "4"], "n": ["10", "x", "30", None], "d": ["24.11.2026", "24.11.2026", "31.02.2026", None],
                  "ts": ["2026-11-24 10:00:00", "2026-11-24T10:00:00Z", "2026-11-24 10:00", "nope"]})
    r = plan.apply(t)
    out = r.outputs[0].table
    assert out.column("id").to_pylist() == ["1"]
    assert out.column("n").to_pylist() == [10]
    assert out.column("ts")[0].as_py().hour == 9  # Berlin 10:00 is 09:00 UTC
    q = {row["row"]: row for row in r.quarantine.to_pylist()}
    assert q[1]["field"] == "n" and "cannot cast 'x' to int" in q[1]["reason"]
    assert q[2]["field"] == "d" and "31.02.2026" in q[2]["reason"]
    assert q[3]["field"] == "ts" and "'nope'" in q[3]["reason"]
    assert r.counts["e"] == {"read": 4, "mapped": 1, "quarantined": 3, "filtered": 0}


def test_variants_override_fields_for_their_segment_and_record_the_rule():
    plan = plan_of(HEAD + """
target: {entity: lead, key: [id]}
fields:
  id: {from: id}
  priority: {from: level, map: {A: high, B: medium, C: low}}
variants:
  - name: vip
    when: "tier = 'VIP'"
    fields:
      priority: {from: level, map: {A: urgent, B: high, C: medium}}
""")
    t = pa.table({"id": ["1", "2", "3"], "level": ["A", "A", "C"], "tier": ["VIP", None, "VIP"]})
    r = plan.apply(t)
    assert r.outputs[0].table.column("priority").to_pylist() == ["urgent", "high", "medium"]
    vip_bit = next(rule.index for rule in plan.rules if rule.kind == "variant")
    rules = r.outputs[0].table.column("_wl_rules").to_pylist()
    assert [bool(x & (1 << vip_bit)) for x in rules] == [True, False, True]


def test_one_source_feeds_several_targets_with_their_own_when():
    plan = plan_of(HEAD + """
targets:
  - entity: account
    key: [account_id]
    fields:
      account_id: {expr: "'ACC-' || customer_id"}
  - entity: order
    key: [order_id]
    when: "status != 'draft'"
    fields:
      order_id: {from: id}
      amount: {from: amount, type: "decimal(12,2)"}
""")
    t = pa.table({"id": [1, 2], "customer_id": [7, 7], "status": ["open", "draft"], "amount": ["10.50", "3"]})
    r = plan.apply(t)
    by = {o.entity: o.table for o in r.outputs}
    assert by["account"].column("account_id").to_pylist() == ["ACC-7", "ACC-7"]
    assert [str(x) for x in by["order"].column("amount").to_pylist()] == ["10.50"]
    assert r.counts["order"]["filtered"] == 1 and r.counts["account"]["filtered"] == 0


def test_output_record_id_is_the_documented_hash_of_entity_and_key():
    plan = plan_of(HEAD + """
target: {entity: lead, key: [id]}
fields:
  id: {from: id}
""")
    r = plan.apply(pa.table({"id": ["42"]}))
    assert r.outputs[0].table.column("_wl_record_id")[0].as_py() == record_id("crm", "lead", "42", None)


def test_subject_is_an_hmac_never_the_raw_value():
    import hashlib
    import hmac

    plan = plan_of(HEAD + """
subject: email
target: {entity: lead, key: [id]}
fields:
  id: {from: id}
""")
    r = plan.apply(pa.table({"id": ["1"], "email": [" Ann@Example.com "]}))
    got = r.outputs[0].table.column("_wl_subject")[0].as_py()
    assert got == hmac.new(b"k", b"ann@example.com", hashlib.sha256).hexdigest()


def test_runtime_errors_in_expressions_quarantine_only_the_bad_rows():
    plan = plan_of(HEAD + """
target: {entity: e, key: [id]}
fields:
  id: {from: id}
  ratio: {expr: "a / b"}
  big: {expr: "a * 4611686018427387904"}
""")
    t = pa.table({"id": ["1", "2", "3"], "a": [1, 2, 3], "b": [2, 0, 1]})
    r = plan.apply(t)
    reasons = {q["row"]: q["reason"] for q in r.quarantine.to_pylist()}
    assert "division by zero" in reasons[1]
    assert "overflow" in reasons[2].lower()  # 3 * 2**62 does not fit int64
    assert 0 not in reasons  # 1 * 2**62 does, and row 0 is mapped
    assert r.outputs[0].table.column("id").to_pylist() == ["1"]


def test_a_case_branch_no_row_takes_is_not_computed_and_keeps_its_type():
    """`then a / b` fails where b = 0, but no row of the second batch takes it; the field's type is that
    of both branches in every batch (text here, even when only the null ELSE is taken)."""
    plan = plan_of(HEAD + """
target: {entity: e, key: [id]}
fields:
  id: {from: id}
  ratio: {expr: "case when b = 0 then 'none' when b > 0 then 'x' || (a / b) end"}
""")
    taken = plan.apply(pa.table({"id": ["1", "2"], "a": [1, 2], "b": [2, 0]}))
    untaken = plan.apply(pa.table({"id": ["3", "4"], "a": [1, 2], "b": [-1, -2]}))
    assert taken.outputs[0].table.column("ratio").to_pylist() == ["x0.5", "none"]
    assert untaken.outputs[0].table.column("ratio").to_pylist() == [None, None]
    assert untaken.outputs[0].table.schema.field("ratio").type == taken.outputs[0].table.schema.field("ratio").type
    assert untaken.quarantine.num_rows == 0 == taken.quarantine.num_rows


def test_lookup_reads_reference_data_beside_the_spec(tmp_path):
    (tmp_path / "reference").mkdir()
    (tmp_path / "reference" / "regions.csv").write_text("country,region\nDE,EMEA\nUS,AMER\n")
    plan = plan_of(HEAD + """
target: {entity: e, key: [id]}
fields:
  id: {from: id}
  region: {expr: "coalesce(lookup('regions', country, 'region'), 'OTHER')"}
""", tmp_path)
    r = plan.apply(pa.table({"id": ["1", "2"], "country": ["DE", "FR"]}))
    assert r.outputs[0].table.column("region").to_pylist() == ["EMEA", "OTHER"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["A", "B", "C", "Z", None]), st.one_of(st.none(), st.text(max_size=5)),
                          st.sampled_from(["1", "x", None, "-3"])), max_size=40))
def test_counts_always_reconcile(rows):
    plan = plan_of(HEAD + """
when: level is not null
target: {entity: e, key: [id]}
fields:
  id: {expr: "'R' || coalesce(email, '?')"}
  p: {from: level, map: {A: high, B: medium, C: low}}
  n: {from: n, type: int}
""")
    t = pa.table({"level": pa.array([r[0] for r in rows], pa.string()), "email": pa.array([r[1] for r in rows], pa.string()),
                  "n": pa.array([r[2] for r in rows], pa.string())})
    r = plan.apply(t)
    c = r.counts["e"]
    assert c["read"] == len(rows) == c["mapped"] + c["quarantined"] + c["filtered"]
    assert r.outputs[0].table.num_rows == c["mapped"] and r.quarantine.num_rows == c["quarantined"]
    assert c["filtered"] == sum(1 for x in rows if x[0] is None)


def test_every_cast_works_on_an_empty_batch_and_when_all_rows_are_filtered():
    """A batch where `when` lets nothing through must not fail in any cast (it once recursed forever)."""
    plan = plan_of(HEAD + """
when: "keep"
target: {entity: e, key: [id]}
fields:
  id: {from: id}
  b: {from: b, type: bool}
  d: {from: d, type: date, format: "%Y%m%d"}
  t: {from: t, type: timestamp}
  n: {from: n, type: "decimal(10,2)"}
""")
    t = pa.table({"keep": [False, False], "id": ["1", "2"], "b": ["yes", "x"], "d": ["20260101", "nope"],
                  "t": ["2026-01-01T00:00:00Z", "x"], "n": ["1.5", "x"]})
    r = plan.apply(t)
    assert r.counts["e"] == {"read": 2, "mapped": 0, "quarantined": 0, "filtered": 2}
