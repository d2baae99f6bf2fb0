"""Quarantined rows leave no source value in lineage: edges carry ``field: code [rule]``, never the
engine's free-text reason (which quotes the value). Real engine (transforms/), real store files."""

from __future__ import annotations

import pyarrow as pa

from connectors.base.identity import stamp
from lineage.query import impact
from transforms import compile_spec
from transforms.spec import parse_spec

EMAIL = "ann.secret@example.com"
SPEC = """
mapping: pii_probe
version: 1
source: {connector: probe, stream: people}
target: {entity: contact, key: [external_id], write: upsert}
fields:
  external_id: {expr: "'P-' || id"}
  age: {from: age, type: int}
"""


def test_quarantined_email_value_leaves_no_trace_in_edges_or_index(store):
    spec = parse_spec(SPEC)
    landed = stamp(pa.table({"id": [1, 2], "age": ["41", EMAIL]}), system="probe", stream="people", key=["id"],
                   position=None, load_id="L1")
    result = compile_spec(spec).apply(landed, load_id="L1")
    q = result.quarantine
    assert q.num_rows == 1 and EMAIL in q.column("reason")[0].as_py()  # the engine's text does quote it
    store.begin("L1")
    store.append_received("L1", landed)
    store.append_mapped("L1", spec, result)
    store.commit("L1")
    outcome = impact(store, "probe.people:2")["outcomes"]  # read back through the query index
    assert [(o["step"], o["reason"]) for o in outcome] == [("quarantined", "age: cast [contact.age]")]
    cells = [v for s in store.segments() for col in store.read_segment(s).columns for v in col.to_pylist()]
    assert not [v for v in cells if isinstance(v, str) and "ann.secret" in v]
    files = [p for p in store.home.lineage.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in files) and any("index" in p.name for p in files)
    for p in files:
        data = p.read_bytes()
        assert EMAIL.encode() not in data and b"ann.secret" not in data, p
