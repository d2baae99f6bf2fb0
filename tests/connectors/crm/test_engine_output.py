"""The real mapping engine's output on the sample spec goes into each destination unchanged:
every field and every reserved ``_wl_*`` column keeps its name and its values."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import yaml

from connectors.base.identity import stamp
from connectors.base.reserved import MAPPED_COLUMNS
from connectors.crm import open_destination
from transforms import compile_spec, load_spec

from .conftest import rows

SPEC = Path(__file__).resolve().parents[3] / "mappings" / "web_activity_to_lead.yaml"


def mapped_leads(load_id: str) -> tuple[pa.Table, list[str], str]:
    cases = yaml.safe_load(SPEC.with_suffix(".test.yaml").read_text())["cases"]
    inputs = pa.Table.from_pylist([row for case in cases for row in case["input"]])
    received = stamp(inputs, system="web_analytics", stream="form_submissions",
                     key=["submission_id"], position=None, load_id=load_id)
    out = compile_spec(load_spec(SPEC), subject_key=b"test-subject-key").apply(received).outputs[0]
    return out.table, out.key, out.write


def test_engine_output_round_trips_through_duckdb_and_postgres(home, pg_url):
    table, key, write = mapped_leads("L1")
    assert table.num_rows > 0 and set(MAPPED_COLUMNS) <= set(table.column_names)
    for dest in (open_destination(home), open_destination(home, pg_url())):
        dest.load("lead", table, key=key, write=write, load_id="L1")
        dest.load("lead", table, key=key, write=write, load_id="L1")  # a replay changes nothing
        back = dest.read("lead")
        assert sorted(back.column_names) == sorted(table.column_names), dest.name
        assert rows(back) == rows(table), dest.name
