"""A fast text table for platypus: rows of pre-wrapped lines, split across pages in O(log n).

reportlab's ``Table`` with ``Paragraph`` cells takes ~14 s for a 10 k-row timeline here
and plain-string cells ~1.5 s; the export must render 10 k events in under 2 s with room
for the derivation section (docs/adr/0150-export-pdf-fast-rows.md). This flowable keeps
what a person needs from a table — a header repeated on every page, wrapped cells that
never overflow, shaded section rows kept with what follows — and draws each page's text
in one text object.

Rows are ``("row", [cell, ...])`` with one text per column, or ``("head", text)`` /
``("note", text)`` spanning the whole width (a bold section bar / an indented remark).

>>> t = RowTable([100, 200], ["Field", "Value"], [("head", "Record 1"), ("row", ["email", "a@b.org"])])
>>> w, h = t.wrap(300, 800)
>>> (w, round(h, 1))
(300, 40.5)
>>> t.split(300, 20)  # not even the header and one row fit
[]
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

from reportlab.lib import colors
from reportlab.platypus import Flowable

from lineage.export.pdf_text import fit_lines

FONT, BOLD, ITALIC = "Helvetica", "Helvetica-Bold", "Helvetica-Oblique"
SIZE = 7.5
LEADING = SIZE * 1.2
PAD = 2.25
HEADER_BG = colors.HexColor("#dfe6ee")
HEAD_BG = colors.HexColor("#eef1f5")
ZEBRA_BG = colors.HexColor("#f7f8fa")
RULE = colors.HexColor("#c4ccd6")
INDENT = 10


@dataclass(frozen=True)
class _Laid:
    """Rows laid out once for a width: lines per cell and cumulative heights, shared by all pieces."""

    kinds: list[str]
    cells: list[list[list[str]]]
    tops: list[float]  # tops[i] = height of rows [0, i)


def _layout(widths: Sequence[float], rows: Sequence[tuple]) -> _Laid:
    inner = [w - 2 * PAD for w in widths]
    full = sum(widths) - 2 * PAD
    kinds, cells, heights = [], [], []
    for kind, content in rows:
        if kind == "row":
            laid = [fit_lines(str(c), FONT, SIZE, w) for c, w in zip(content, inner, strict=True)]
        else:
            font, width = (BOLD, full) if kind == "head" else (ITALIC, full - INDENT)
            laid = [fit_lines(str(content), font, SIZE, width)]
        kinds.append(kind)
        cells.append(laid)
        heights.append(max(len(c) for c in laid) * LEADING + 2 * PAD)
    return _Laid(kinds, cells, [0.0, *accumulate(heights)])


class RowTable(Flowable):
    """A table of text rows that splits across pages cheaply (see the module docstring)."""

    def __init__(self, widths: Sequence[float], header: Sequence[str] | None, rows: Sequence[tuple],
                 *, _laid: _Laid | None = None, _span: tuple[int, int] | None = None):
        super().__init__()
        self.widths = list(widths)
        self.header = list(header) if header else None
        self._laid = _laid or _layout(self.widths, rows)
        self._start, self._end = _span or (0, len(self._laid.kinds))
        self._header_h = (LEADING + 2 * PAD) if self.header else 0.0

    def _rows_height(self, start: int, end: int) -> float:
        return self._laid.tops[end] - self._laid.tops[start]

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:  # noqa: N803 (platypus API)
        self.width = sum(self.widths)
        self.height = self._header_h + self._rows_height(self._start, self._end)
        return self.width, self.height

    def split(self, availWidth: float, availHeight: float) -> list[Flowable]:  # noqa: N803 (platypus API)
        tops = self._laid.tops
        room = availHeight - self._header_h
        k = bisect_right(tops, tops[self._start] + room, lo=self._start, hi=self._end + 1) - 1
        while k > self._start and self._laid.kinds[k - 1] == "head":
            k -= 1  # a section bar stays with its first row
        if k <= self._start:
            return []
        return [self._piece(self._start, k), self._piece(k, self._end)]

    def _piece(self, start: int, end: int) -> RowTable:
        return RowTable(self.widths, self.header, (), _laid=self._laid, _span=(start, end))

    def draw(self) -> None:
        c = self.canv
        total = sum(self.widths)
        y = self.height
        text = c.beginText()
        if self.header:
            y = self._draw_row(c, text, y, "header", [[h] for h in self.header], LEADING + 2 * PAD, 0)
        for i in range(self._start, self._end):
            h = self._laid.tops[i + 1] - self._laid.tops[i]
            y = self._draw_row(c, text, y, self._laid.kinds[i], self._laid.cells[i], h, i - self._start)
        c.drawText(text)
        c.setStrokeColor(RULE)
        c.setLineWidth(0.4)
        c.rect(0, 0, total, self.height, stroke=1, fill=0)

    def _draw_row(self, c, text, y: float, kind: str, cells: list[list[str]], h: float, n: int) -> float:
        total = sum(self.widths)
        fill = {"header": HEADER_BG, "head": HEAD_BG}.get(kind, ZEBRA_BG if n % 2 else None)
        if fill is not None:
            c.setFillColor(fill)
            c.rect(0, y - h, total, h, stroke=0, fill=1)
            c.setFillColor(colors.black)
        c.setStrokeColor(RULE)
        c.setLineWidth(0.25)
        c.line(0, y - h, total, y - h)
        font = {"header": BOLD, "head": BOLD, "note": ITALIC}.get(kind, FONT)
        text.setFont(font, SIZE, LEADING)
        xs = [INDENT] if kind == "note" else list(accumulate([0.0, *self.widths[:-1]]))
        for x, lines in zip(xs, cells):
            text.setTextOrigin(x + PAD, y - PAD - SIZE)
            for line in lines:
                text.textLine(line)
        return y - h
