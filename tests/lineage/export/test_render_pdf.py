"""render_pdf: a readable PDF of one subject's export, and nothing of anyone else.

Text is read back with pypdf. The payloads are real: the official FHIR R4 Patient example
(../shared/data/fhir) for the subject, an Amazon Connect chat analysis
(../shared/data/call_analytics) for the other subject.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from pypdf import PdfReader
from reportlab.pdfbase.pdfmetrics import stringWidth

from lineage.export.render_pdf import MARGIN, render_pdf
from lineage.export.sample import sample_export, synthetic_payloads

DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
PATIENT = json.loads((DATA / "fhir" / "Patient-example.json").read_text())
CHAT = json.loads((DATA / "call_analytics" / "chat_0.json").read_text())
A, B = "a1" * 32, "b2" * 32


def _merge(*exports: dict) -> dict:
    out = json.loads(json.dumps(exports[0]))
    for e in exports[1:]:
        for k in ("source_records", "crm_records", "steps"):
            out[k] += e[k]
        for k in ("sources", "recipients", "mapping_versions"):
            out["metadata"][k] += e["metadata"][k]
    return out


@pytest.fixture
def subject_a() -> dict:
    return _merge(sample_export(A, [PATIENT], system="his", stream="patients", entity="contact",
                                spec_id="fhir_patient_to_contact"),
                  sample_export(A, synthetic_payloads(40), quarantine_every=7))


@pytest.fixture
def subject_b() -> dict:
    chat = {"id": CHAT["CustomerMetadata"]["ContactId"], "email": "bob.other@example.net", "analysis": CHAT}
    return sample_export(B, [chat], system="call_analytics", stream="contacts", entity="activity",
                         spec_id="contact_lens_to_activity")


def _pages(path: Path) -> list[str]:
    return [p.extract_text() for p in PdfReader(path).pages]


def test_holds_the_subjects_values_and_no_other_subjects(tmp_path, subject_a, subject_b):
    out_a, out_b = tmp_path / "a.pdf", tmp_path / "b.pdf"
    render_pdf(subject_a, out_a, requested_id="peter.chalmers@example.org")
    render_pdf(subject_b, out_b)
    text_a, text_b = "\n".join(_pages(out_a)), "\n".join(_pages(out_b))
    for value in ("peter.chalmers@example.org", A, "Chalmers", "534 Erewhon", "jane.doe@example.org",
                  "fhir_patient_to_contact", "PAT-example", "priority: value 'Z' not in map"):
        assert value in text_a, value
    chat_id = CHAT["CustomerMetadata"]["ContactId"]
    for value in ("bob.other@example.net", B[:16], chat_id, "contact_lens_to_activity"):
        assert value in text_b, value  # the values are renderable: their absence from A means something
        assert value not in text_a, value
    assert "Chalmers" not in text_b and A[:16] not in text_b


def test_sections_and_page_numbers(tmp_path, subject_a):
    out = tmp_path / "a.pdf"
    render_pdf(subject_a, out)
    pages = _pages(out)
    assert "Personal data lineage export" in pages[0] and "not named by the requester" in pages[0]
    assert "1. Summary" in pages[1] and "2. Timeline" in pages[2]
    assert any("3. Derivation per record" in p for p in pages[3:])
    for n, page in enumerate(pages, 1):
        assert f"page {n} of {len(pages)}" in page
    summary = pages[1]
    assert "41" in summary and "his" in summary and "web_analytics" in summary  # 1 + 40 source records


def test_timeline_is_sorted_by_time_whatever_the_input_order(tmp_path, subject_a):
    random.Random(3).shuffle(subject_a["steps"])
    out = tmp_path / "a.pdf"
    render_pdf(subject_a, out)
    text = "\n".join(_pages(out))
    timeline = text[text.index("2. Timeline"):text.index("3. Derivation per record")]
    times = [line[:26] for line in timeline.splitlines() if line.startswith("2026-11-24 ")]
    assert len(times) == len(subject_a["steps"])
    assert times == sorted(times)


def test_long_values_are_cut_and_erased_records_say_so(tmp_path, subject_a):
    subject_a["source_records"][0]["payload"] = {"note": "lorem ipsum " * 500, "token": "f" * 3000}
    subject_a["crm_records"][0]["fields"] = None
    out = tmp_path / "a.pdf"
    render_pdf(subject_a, out)
    text = " ".join("\n".join(_pages(out)).split())  # where a cell wraps is not the point here
    assert "(+5600 characters)" in text and "(+2600 characters)" in text
    assert "erased" in text


def test_no_text_runs_outside_the_page_margins(tmp_path, subject_a):
    subject_a["source_records"][1]["payload"]["page"] = "https://x.example.org/" + "q" * 900  # one long word
    out = tmp_path / "a.pdf"
    render_pdf(subject_a, out)
    reader = PdfReader(out)
    right = float(reader.pages[0].mediabox.width) - MARGIN + 0.5
    runs = []

    def visit(text, cm, tm, font, size):
        if text.strip() and font is not None:
            name = str(font["/BaseFont"]).lstrip("/")
            x = tm[4] * cm[0] + cm[4]
            runs.append((x + stringWidth(text.rstrip("\n"), name, size * cm[0]), text))

    for page in reader.pages:
        page.extract_text(visitor_text=visit)
    assert len(runs) > 500
    too_wide = [text for end, text in runs if end > right]
    assert too_wide == []


def test_text_outside_latin1_still_renders(tmp_path):
    export = sample_export(A, [{"id": "z-1", "name": "Zoë Łukasiewicz 北京"}])
    out = tmp_path / "u.pdf"
    render_pdf(export, out)
    assert "Zoë" in "\n".join(_pages(out))


def test_rule_texts_name_the_rules_that_fired(tmp_path):
    export = sample_export(A, [{"id": "r-1", "level": "A"}], spec_version="0123456789abcdef")
    out = tmp_path / "r.pdf"
    render_pdf(export, out, rule_texts={"0123456789abcdef": ["priority: map", "email: lower", "x", "score: cast"]})
    text = " ".join("\n".join(_pages(out)).split())
    assert "rules fired 0 (priority: map), 1 (email: lower), 3 (score: cast)" in text
