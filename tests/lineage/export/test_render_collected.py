"""The PDF of a subject export collected from a real run (landing, DuckDB, lineage store).

The run is the lineage tests' pipeline (tests/lineage/lineage_pipeline.py, fixture ``ran``):
ann submits twice, bob once, cy's record is quarantined, di's filtered.
"""

from __future__ import annotations

import json
from pathlib import Path

from jsonschema import Draft202012Validator
from pypdf import PdfReader

from lineage.erase import erase_subject
from lineage.export.collect import collect_subject
from lineage.export.render_pdf import render_pdf

from lineage_pipeline import ROWS

SCHEMA = json.loads((Path(__file__).resolve().parents[3] / "schemas/lineage-export.schema.json").read_text())


def _text(path: Path) -> str:
    return "\n".join(p.extract_text() for p in PdfReader(path).pages)


def test_pdf_of_a_collected_export_holds_only_its_subject(ran, tmp_path):
    doc = collect_subject(ran, "ann@example.org")
    out = tmp_path / "ann.pdf"
    render_pdf(doc, out, requested_id="ann@example.org")
    text = _text(out)
    assert doc["subject"]["id_hash"] in text
    for value in ("Ann Lee", "Ann@Example.org", "WEB-1", "WEB-3", "web_activity_to_lead", "Lead management"):
        assert value in text, value
    for other in ROWS:
        if "ann" in other["contact_email"].lower():
            continue
        assert other["contact_email"] not in text and other["name"] not in text
        assert f"WEB-{other['submission_id']}" not in text


def test_pdf_after_erasure_says_erased_and_holds_no_values(ran, tmp_path):
    erase_subject(ran, "ann@example.org")
    doc = collect_subject(ran, "ann@example.org")
    assert list(Draft202012Validator(SCHEMA).iter_errors(doc)) == []
    out = tmp_path / "ann-erased.pdf"
    render_pdf(doc, out)
    text = _text(out)
    assert "erased" in text and "Ann Lee" not in text and "Ann@Example.org" not in text
