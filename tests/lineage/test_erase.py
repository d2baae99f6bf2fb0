"""Erasure: the subject's rows leave landing and the destination, tombstones stay, verify passes."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from connectors.landing import read_landed
from lineage.erase import erase_subject
from lineage.export.collect import collect_subject, subject_hash
from lineage.query import UnknownRef, impact
from lineage.verify import verify

from lineage_pipeline import STREAM, SYSTEM

LOAD = "20261124T080000000000Z-0000000a"


def _crm_emails(home) -> list[str]:
    con = duckdb.connect(str(home.crm_duckdb), read_only=True)
    try:
        return sorted(r[0] for r in con.execute("SELECT email FROM crm.crm.lead").fetchall())
    finally:
        con.close()


def test_erase_removes_the_subject_everywhere_and_keeps_the_chain(ran):
    result = erase_subject(ran, "ann@example.org")
    assert result["recipients"] == [{"destination": "duckdb", "entity": "lead"}]
    assert (result["landing_rows"], result["destination_rows"], result["tombstones"]) == (2, 2, 4)
    landed = read_landed(ran.home, SYSTEM, STREAM, LOAD)
    assert sorted(landed.column("submission_id").to_pylist()) == [2, 4, 5]
    assert _crm_emails(ran.home) == ["bob@example.org"]
    assert verify(ran).ok
    steps = [s["step"] for s in impact(ran, f"{SYSTEM}.{STREAM}:1")["outcomes"]]
    assert steps == ["erased"]


def test_export_after_erasure_shows_no_data_but_the_tombstones(ran):
    erase_subject(ran, "ann@example.org")
    doc = collect_subject(ran, "ann@example.org")
    assert all(r["payload"] is None for r in doc["source_records"])
    assert all(r["fields"] is None for r in doc["crm_records"])
    assert [s["step"] for s in doc["steps"]].count("erased") == 4
    assert "Ann@Example.org" not in repr(doc) and "ann@example.org" not in repr(doc)


def test_erase_leaves_other_subjects_alone(ran):
    erase_subject(ran, "ann@example.org")
    doc = collect_subject(ran, "bob@example.org")
    assert doc["source_records"][0]["payload"]["contact_email"] == "bob@example.org"
    assert doc["subject"]["id_hash"] == subject_hash(ran, "bob@example.org")


def test_erasing_an_unknown_subject_is_a_clear_error(ran):
    with pytest.raises(UnknownRef):
        erase_subject(ran, "nobody@example.org")
