"""Render a subject export (docs/lineage-export.md) as a PDF a person can read.

Sections, in order: a title page (the subject as the caller names it, its keyed hash,
the export time), a summary (counts, purposes, categories, retention, sources,
recipients, mapping versions), the timeline of every step sorted by time, and the
derivation of each source record: what was received, which mapping version made what
of it (rules fired) and the CRM record it became, with field values. Long values are
cut and wrapped (the JSON export holds them whole); every page is numbered.

>>> import tempfile, pathlib
>>> from lineage.export.sample import sample_export
>>> out = pathlib.Path(tempfile.mkdtemp()) / "e.pdf"
>>> render_pdf(sample_export("ab" * 32, [{"id": 1, "email": "a@example.org"}]), out)
>>> out.read_bytes()[:5]
b'%PDF-'
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from lineage.export.pdf_rows import RowTable
from lineage.export.pdf_text import cut, short_id, value_text

STEP_ORDER = {s: i for i, s in enumerate(("received", "mapped", "filtered", "quarantined", "loaded", "erased"))}
MARGIN = 16 * mm
FRAME_PADDING = 6  # SimpleDocTemplate's frame pads each side by 6 pt
WIDTH = A4[0] - 2 * MARGIN - 2 * FRAME_PADDING
_STYLES = getSampleStyleSheet()
BODY = ParagraphStyle("body", parent=_STYLES["BodyText"], fontSize=9, leading=11.5)
SMALL = ParagraphStyle("small", parent=BODY, fontSize=7.5, leading=9.5)
MONO = ParagraphStyle("mono", parent=BODY, fontName="Courier", fontSize=8, leading=11.5)
H1 = ParagraphStyle("h1", parent=_STYLES["Heading1"], fontSize=16, spaceAfter=6)
H2 = ParagraphStyle("h2", parent=_STYLES["Heading2"], fontSize=12, spaceBefore=8, spaceAfter=4)
TITLE = ParagraphStyle("title", parent=_STYLES["Title"], fontSize=22, leading=27, spaceAfter=14)


def render_pdf(export: dict[str, Any], out: Path, *, requested_id: str | None = None,
               rule_texts: Mapping[str, Sequence[str]] | None = None) -> None:
    """Write the PDF of ``export`` (one subject's export dict) to ``out``.

    ``requested_id`` is the subject as the person asking named it (e.g. an e-mail
    address); it is shown on the title page only, and only if given. ``rule_texts``
    maps a spec version hash to its compiled rules' texts (``plan.rules[i].text``), so
    the derivation names the rules that fired instead of only their numbers.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    label = short_id(export["subject"]["id_hash"], 16)
    doc = SimpleDocTemplate(str(out), pagesize=A4, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN,
                            bottomMargin=MARGIN + 4 * mm, title="Personal data lineage export",
                            author="weftline", subject=f"subject {label}")
    story = [*_title_page(export, requested_id), PageBreak(), *_summary(export), PageBreak(),
             *_timeline(export), PageBreak(), *_derivation(export, rule_texts or {})]
    doc.build(story, canvasmaker=_numbered_canvas(f"weftline lineage export · subject {label}"))


# -- title page and summary: few cells, so Paragraphs in reportlab Tables -----------------------------


def _p(text: Any, style: ParagraphStyle = BODY) -> Paragraph:
    return Paragraph(escape(str(text)), style)


def _title_page(export: dict[str, Any], requested_id: str | None) -> list:
    subject, meta = export["subject"], export["metadata"]
    rows = [
        ["Subject", _p(requested_id if requested_id is not None else "not named by the requester")],
        ["Keyed hash of the subject (HMAC-SHA256)", _p(subject["id_hash"], MONO)],
        ["Exported at (UTC)", _p(subject["exported_at"])],
        ["Document format", _p(export["format"])],
        ["Contents", _p(f"{len(export['source_records'])} source records, {len(export['crm_records'])} CRM records, "
                        f"{len(export['steps'])} processing steps, {len(meta['mapping_versions'])} mapping versions")],
    ]
    return [
        Spacer(1, 40 * mm),
        Paragraph("Personal data lineage export", TITLE),
        _p("Where this person's data came from, what weftline did with it, and where it went: "
           "an access report in the manner of GDPR Art. 15, rendered from the JSON export of the same time."),
        Spacer(1, 10 * mm),
        _grid(rows, [55 * mm, WIDTH - 55 * mm], header=False),
        Spacer(1, 10 * mm),
        _p("Sections: 1. Summary (purposes, categories, retention, sources, recipients, mapping versions) · "
           "2. Timeline of every processing step · 3. Derivation of each source record into CRM records. "
           "Long values are shortened here; the JSON export holds them in full.", SMALL),
    ]


def _grid(rows: list[list], widths: list[float], header: bool = True) -> Table:
    cells = [[c if isinstance(c, Paragraph) else _p(c, SMALL if header else BODY) for c in row] for row in rows]
    t = Table(cells, colWidths=widths, repeatRows=1 if header else 0, hAlign="LEFT")
    style = [("VALIGN", (0, 0), (-1, -1), "TOP"), ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#c4ccd6")),
             ("TOPPADDING", (0, 0), (-1, -1), 2), ("BOTTOMPADDING", (0, 0), (-1, -1), 2)]
    if header:
        style.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dfe6ee")))
    else:
        style.append(("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#eef1f5")))
    t.setStyle(TableStyle(style))
    return t


def _summary(export: dict[str, Any]) -> list:
    meta, steps = export["metadata"], export["steps"]
    by_step = Counter(s["step"] for s in steps)
    times = sorted(s["at"] for s in steps)
    counts = [["Source records received", len(export["source_records"])],
              ["CRM records produced", len(export["crm_records"])],
              ["Processing steps", ", ".join(f"{n} {k}" for k, n in sorted(by_step.items(), key=_step_rank)) or "none"],
              ["Runs (load ids)", len({s["load_id"] for s in steps})],
              ["First / last step", f"{times[0]}  —  {times[-1]}" if times else "none"]]
    third = WIDTH / 3
    out = [Paragraph("1. Summary", H1), _grid(counts, [55 * mm, WIDTH - 55 * mm], header=False),
           Paragraph("Purposes of the processing", H2), *_bullets(meta["purposes"]),
           Paragraph("Categories of personal data", H2), _p(", ".join(meta["categories"]) or "none"),
           Paragraph("Retention", H2), _p(meta["retention"]),
           Paragraph("Sources", H2),
           _grid([["System", "Stream", "Records"]] + [[s["system"], s["stream"], s["records"]] for s in meta["sources"]],
                 [third, third, third]),
           Paragraph("Recipients", H2),
           _grid([["Destination", "Entity", "Records"]]
                 + [[r["destination"], r["entity"], r["records"]] for r in meta["recipients"]], [third, third, third]),
           Paragraph("Mapping versions used", H2),
           _grid([["Mapping", "Version hash", "First used", "Last used"]]
                 + [[m["spec_id"], m["version_hash"], m["first_used"], m["last_used"]] for m in meta["mapping_versions"]],
                 [WIDTH * 0.31, WIDTH * 0.21, WIDTH * 0.24, WIDTH * 0.24])]
    return out


def _bullets(items: list[str]) -> list:
    return [_p(f"• {i}") for i in items] or [_p("none given")]


def _step_rank(item: tuple[str, int]) -> int:
    return STEP_ORDER.get(item[0], 99)


# -- timeline and derivation: thousands of rows, so the fast RowTable ----------------------------------


def _timeline(export: dict[str, Any]) -> list:
    steps = sorted(export["steps"], key=lambda s: (s["at"], STEP_ORDER.get(s["step"], 99)))
    rows = [("row", [s["at"].replace("T", " ").rstrip("Z"), s["step"], short_id(s["record_id"]), _step_detail(s)])
            for s in steps]
    widths = [37 * mm, 17 * mm, 22 * mm, WIDTH - 76 * mm]
    intro = _p(f"Every processing step about the subject, oldest first ({len(steps)} steps). "
               "Record ids are shortened to their first 12 hex digits.", SMALL)
    return [Paragraph("2. Timeline", H1), intro, Spacer(1, 3 * mm),
            RowTable(widths, ["Time (UTC)", "Step", "Record", "Details"], rows or [("note", "No steps recorded.")])]


def _step_detail(s: dict[str, Any]) -> str:
    step = s["step"]
    if step == "received":
        pos = f" at position {s['position']}" if s["position"] else ""
        return f"from {s['source_system']}/{s['stream']}, key {s['source_key']}{pos}"
    if step == "mapped":
        return (f"{_spec(s)} made {s['entity']} {s['target_key']} from {short_id(s['input_record_id'])}"
                f"{_rules(s['rules'])}")
    if step in ("filtered", "quarantined"):
        why = f": {s['reason']}" if s["reason"] else ""
        return f"{_spec(s)}, target {s['entity']}{why}"
    if step == "loaded":
        return f"into {s['destination']} {s['entity']} {s['target_key']} (load {s['load_id']})"
    return f"{s['destination'] or ''} {s['entity'] or ''} {s['reason'] or ''}".strip() or "erased"


def _spec(s: dict[str, Any]) -> str:
    return f"{s['spec_id']}@{s['spec_version']}"


def _rules(rules: list[int]) -> str:
    return f"; rules fired {', '.join(map(str, rules))}" if rules else "; no rules fired"


def _named_rules(s: dict[str, Any], rule_texts: Mapping[str, Sequence[str]]) -> str:
    texts = rule_texts.get(s["spec_version"] or "")
    if not texts or not s["rules"]:
        return _rules(s["rules"])
    named = [f"{i} ({texts[i]})" if i < len(texts) else str(i) for i in s["rules"]]
    return f"; rules fired {', '.join(named)}"


def _derivation(export: dict[str, Any], rule_texts: Mapping[str, Sequence[str]]) -> list:
    crm = {(r["entity"], r["record_id"]): r for r in export["crm_records"]}
    after: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in export["steps"]:
        if s["step"] != "received" and s["step"] != "loaded":
            after[s["input_record_id"] if s["step"] == "mapped" else s["record_id"]].append(s)
    loads = defaultdict(list)
    for s in export["steps"]:
        if s["step"] == "loaded":
            loads[s["record_id"]].append(s)
    rows: list[tuple] = []
    records = export["source_records"]
    for n, src in enumerate(records, 1):
        rows += _source_rows(n, len(records), src)
        for s in after.get(src["record_id"], []):
            rows += _outcome_rows(s, crm, loads, rule_texts)
    intro = _p("For each source record: what was received, which mapping version turned it into which CRM "
               "record (with the rules that fired), and the values the CRM record holds.", SMALL)
    body = RowTable([42 * mm, WIDTH - 42 * mm], ["Field", "Value"], rows or [("note", "No source records.")])
    return [Paragraph("3. Derivation per record", H1), intro, Spacer(1, 3 * mm), body]


def _source_rows(n: int, total: int, src: dict[str, Any]) -> list[tuple]:
    rows: list[tuple] = [
        ("head", f"Source record {n} of {total}: {src['system']}/{src['stream']}, key {cut(src['source_key'], 80)}"),
        ("row", ["record id", src["record_id"]]),
        ("row", ["received at / load", f"{src['received_at']} / {src['load_id']}"]),
        ("row", ["payload hash (sha256)", src["payload_hash"]]),
    ]
    if src["position"] is not None:
        rows.append(("row", ["position", src["position"]]))
    if src["payload"] is None and src.get("payload_pruned_at"):
        rows.append(("note", f"payload: removed by the landing retention policy at {src['payload_pruned_at']}"))
    else:
        rows += _values(src["payload"], "payload")
    return rows


def _outcome_rows(s: dict[str, Any], crm: dict, loads: dict, rule_texts: Mapping[str, Sequence[str]]) -> list[tuple]:
    if s["step"] != "mapped":
        return [("note", f"» {s['step']} by {_spec(s)} (target {s['entity']}) at {s['at']}: {s['reason'] or ''}")]
    rows: list[tuple] = [("note", f"» mapped by {_spec(s)} at {s['at']}{_named_rules(s, rule_texts)}; "
                                  f"became {s['entity']} {s['target_key']} (record {s['record_id']})")]
    for ld in loads.get(s["record_id"], []):
        rows.append(("note", f"» loaded into {ld['destination']} at {ld['at']}, load {ld['load_id']}"))
    record = crm.get((s["entity"], s["record_id"]))
    if record is not None:
        rows += _values(record["fields"], f"{record['entity']}")
    return rows


def _values(values: dict[str, Any] | None, prefix: str) -> list[tuple]:
    if values is None:
        return [("note", f"{prefix}: erased")]
    return [("row", [f"{prefix}.{cut(k, 60)}", value_text(v)]) for k, v in values.items()]


# -- page numbers: "page N of M" needs the count, so pages are kept and stamped on save ---------------


def _numbered_canvas(footer: str) -> type[Canvas]:
    class NumberedCanvas(Canvas):
        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self._pages: list[dict] = []

        def showPage(self) -> None:  # noqa: N802 (reportlab API)
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self.setFont("Helvetica", 7)
                self.setFillColor(colors.HexColor("#555555"))
                self.drawString(MARGIN, MARGIN - 2 * mm, footer)
                self.drawRightString(A4[0] - MARGIN, MARGIN - 2 * mm, f"page {self._pageNumber} of {total}")
                super().showPage()
            super().save()

    return NumberedCanvas
