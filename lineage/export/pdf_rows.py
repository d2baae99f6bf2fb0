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

import numpy as np
from reportlab.lib import colors
from reportlab.lib.rl_accel import escapePDF
from reportlab.pdfgen.textobject import PDFTextObject
from reportlab.platypus import Flowable

from lineage.export.pdf_text import text_widths, winansi_bytes, wrap_many

FONT, BOLD, ITALIC = "Helvetica", "Helvetica-Bold", "Helvetica-Oblique"
_BY_CODE = (FONT, BOLD, ITALIC)  # a cell's font as 0 / 1 / 2 while laying out
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
    """Rows laid out once for a width, shared by all pieces: each cell's text (a ``str`` when it is one
    line, else its list of lines), flat, row after row; where each row's cells start; cumulative heights.
    (Flat, so that laying out 100 k cells does not leave 100 k small lists for the garbage collector.)"""

    kinds: list[str]
    cells: list[str | list[str]]
    first: list[int]  # row i's cells are cells[first[i]:first[i + 1]]
    tops: list[float]  # tops[i] = height of rows [0, i)


def _layout(widths: Sequence[float], rows: Sequence[tuple]) -> _Laid:
    """Break every cell into lines: widths measured for all cells at once, only wide cells wrapped."""
    inner = [w - 2 * PAD for w in widths]
    full = sum(widths) - 2 * PAD
    kinds = [kind for kind, _ in rows]
    texts, fonts, room, counts = [], [], [], []
    for kind, content in rows:
        if kind == "row":
            texts += map(str, content)
            fonts += [0] * len(content)
            room += inner
            counts.append(len(content))
        else:
            texts.append(str(content))
            fonts.append(1 if kind == "head" else 2)
            room.append(full if kind == "head" else full - INDENT)
            counts.append(1)
    first = [0, *accumulate(counts)]
    if not texts:
        return _Laid(kinds, [], first, [0.0] * len(first))
    font_of, room_of = np.array(fonts, dtype=np.int8), np.array(room)
    cells: list[str | list[str]] = texts.copy()
    lines = np.ones(len(texts), dtype=np.int64)
    newline = np.fromiter(("\n" in t for t in texts), dtype=bool, count=len(texts))
    for code, font in enumerate(_BY_CODE):
        pick = np.flatnonzero(font_of == code)
        if not len(pick):
            continue
        w = text_widths([texts[i] for i in pick], font, SIZE)
        wide = pick[~(w <= room_of[pick]) | newline[pick]].tolist()  # NaN (not WinAnsi) is "wide": measured one by one
        for i, cell in zip(wide, wrap_many([texts[i] for i in wide], font, SIZE, [room[i] for i in wide])):
            cells[i] = cell[0] if len(cell) == 1 else cell
            lines[i] = len(cell)
    heights = np.maximum.reduceat(lines, first[:-1]) * LEADING + 2 * PAD
    return _Laid(kinds, cells, first, [0.0, *accumulate(heights.tolist())])


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
        """Shading (one path per colour), a frame, then all text in one text object."""
        c, total = self.canv, sum(self.widths)
        rows = self._page_rows()
        for colour, want in ((HEADER_BG, "header"), (HEAD_BG, "head"), (ZEBRA_BG, "zebra")):
            boxes = [(y - h, h) for kind, y, h, _ in rows if kind == want]
            if boxes:
                path = c.beginPath()
                for bottom, h in boxes:
                    path.rect(0, bottom, total, h)
                c.setFillColor(colour)
                c.drawPath(path, stroke=0, fill=1)
        c.setFillColor(colors.black)
        c.setStrokeColor(RULE)
        c.setLineWidth(0.25)
        c.lines([(0, y - h, total, y - h) for kind, y, h, _ in rows if kind in ("header", "head")])
        c.setLineWidth(0.4)
        c.rect(0, 0, total, self.height, stroke=1, fill=0)
        text = c.beginText()
        xs = [x + PAD for x in accumulate([0.0, *self.widths[:-1]])]
        at_x, note_x = [f"{x:.2f}" for x in xs], [f"{INDENT + PAD:.2f}"]
        code, font = text._code, None  # the operator list textLine appends to (see _lines_at)
        for kind, y, _, cells in rows:
            if _FONTS.get(kind, FONT) != font:
                font = _FONTS.get(kind, FONT)
                text.setFont(font, SIZE, LEADING)
            base = y - PAD - SIZE
            line_y = f"{base:.2f}"
            for x, cell in zip(note_x if kind == "note" else at_x, cells):
                raw = winansi_bytes(cell) if type(cell) is str else None
                if raw is not None:  # most cells: one line of WinAnsi text, one operator string
                    code.append(f"1 0 0 1 {x} {line_y} Tm ({escapePDF(raw)}) Tj T*")
                else:
                    _lines_at(text, float(x), base, [cell] if type(cell) is str else cell)
        c.drawText(text)

    def _page_rows(self) -> list[tuple[str, float, float, list[str | list[str]]]]:
        """(kind, top y, height, cells) of each row drawn on this page, header first; zebra marks odd rows."""
        out, y = [], self.height
        if self.header:
            out.append(("header", y, self._header_h, list(self.header)))
            y -= self._header_h
        tops, kinds, cells, first = self._laid.tops, self._laid.kinds, self._laid.cells, self._laid.first
        for n, i in enumerate(range(self._start, self._end)):
            h = tops[i + 1] - tops[i]
            kind = kinds[i]
            out.append(("zebra" if kind == "row" and n % 2 else kind, y, h, cells[first[i]:first[i + 1]]))
            y -= h
        return out


_FONTS = {"header": BOLD, "head": BOLD, "note": ITALIC}


def _lines_at(text: PDFTextObject, x: float, y: float, lines: list[str]) -> None:
    """``setTextOrigin`` + ``textLines``, with the PDF operators written directly for WinAnsi text.

    reportlab's per-line path (font-substitution runs, generic number formatting) is most
    of the drawing time; lines of the built-in fonts' WinAnsi (cp1252) characters need none of
    it. Any other line goes through ``textLine`` unchanged.
    """
    code = text._code  # the text object's operator list (reportlab's own textLine appends here too)
    code.append(f"1 0 0 1 {x:.2f} {y:.2f} Tm")
    text._x0 = text._x = x
    text._y0 = text._y = y
    for line in lines:
        raw = winansi_bytes(line)
        if raw is None:
            text.textLine(line)
            continue
        code.append(f"({escapePDF(raw)}) Tj T*")
        text._y -= LEADING
