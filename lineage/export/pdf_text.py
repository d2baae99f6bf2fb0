"""Values as short text, and text broken into lines that fit a column, for the export PDF.

Long values are cut (the JSON export holds them whole); lines are broken at spaces,
and words longer than a line (hashes, URLs) are broken by character, so no text runs
outside its cell.

>>> value_text({"given": ["Peter", "James"]})
'{"given": ["Peter", "James"]}'
>>> value_text("x" * 30, limit=10)
'xxxxxxxxxx … (+20 characters)'
>>> fit_lines("a" * 50, "Helvetica", 8, 60)
['aaaaaaaaaaaaa', 'aaaaaaaaaaaaa', 'aaaaaaaaaaaaa', 'aaaaaaaaaaa']
>>> fit_lines("short", "Helvetica", 8, 60)
['short']
"""

from __future__ import annotations

import json
from bisect import bisect_right
from functools import cache
from typing import Any

import numpy as np

from reportlab.pdfbase.pdfmetrics import getFont, stringWidth

VALUE_LIMIT = 400
MAX_LINES = 12
_WIDEST_EM = 1.02  # no Helvetica/Courier glyph used here is wider than this many ems ('@' is 1.015)


def value_text(value: Any, limit: int = VALUE_LIMIT) -> str:
    """One value as text: scalars as written in JSON (text unquoted), nested values as compact JSON."""
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = value
    elif isinstance(value, (int, float)):
        text = repr(value)
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return cut(text, limit)


def cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]} … (+{len(text) - limit} characters)"


def short_id(hex_id: str | None, n: int = 12) -> str:
    """The first ``n`` characters of an id, marked as shortened.

    >>> short_id("0123456789abcdef0123"), short_id(None)
    ('0123456789ab…', '—')
    """
    if not hex_id:
        return "—"
    return hex_id if len(hex_id) <= n else hex_id[:n] + "…"


def fit_lines(text: str, font: str, size: float, width: float, max_lines: int = MAX_LINES) -> list[str]:
    """``text`` broken into at most ``max_lines`` lines no wider than ``width`` points."""
    if "\n" not in text and (len(text) * size * _WIDEST_EM <= width or text_width(text, font, size) <= width):
        return [text]  # the fast path: most cells fit on one line
    lines: list[str] = []
    for para in text.splitlines() or [""]:
        lines.extend(_wrap(para, font, size, width))
        if len(lines) > max_lines:
            break
    return _capped(lines, font, size, width, max_lines)


def _capped(lines: list[str], font: str, size: float, width: float, max_lines: int) -> list[str]:
    if len(lines) > max_lines:
        lines = lines[: max_lines - 1] + [_ellipsis(lines[max_lines - 1], font, size, width)]
    return lines


def wrap_many(texts: list[str], font: str, size: float, widths: list[float],
              max_lines: int = MAX_LINES) -> list[list[str]]:
    """:func:`fit_lines` of many texts at once: one encode and one running sum of glyph widths for
    all of them, then each text's breaks found by bisection in that sum (no array per text).

    >>> texts = ["aaa bbb " + "c" * 40, "short", "line one\\nline two"]
    >>> wrap_many(texts, "Helvetica", 10, [60, 60, 60]) == [fit_lines(t, "Helvetica", 10, 60) for t in texts]
    True
    """
    if not texts:
        return []
    buf, all_winansi = _cp1252("\x00".join(texts))
    cum = np.concatenate(([0.0], np.cumsum(_width_table(font)[np.frombuffer(buf, dtype=np.uint8)]))).tolist()
    out, base = [], 0
    for text, width in zip(texts, widths):
        if text.splitlines() != [text] or not (all_winansi or text.isascii() or _winansi(text)):  # breaks, or not WinAnsi
            out.append(fit_lines(text, font, size, width, max_lines))
        else:
            lines = _greedy(text, cum, base, width * 1000 / size)
            out.append(_capped(lines, font, size, width, max_lines))
        base += len(text) + 1
    return out


def _greedy(para: str, cum: list[float], base: int, room: float) -> list[str]:
    """Lines of ``para`` no wider than ``room`` (in 1/1000 em): broken at the last space that fits, else
    by character. ``cum[base + i]`` is the width of ``para[:i]`` plus a constant, so one running sum
    serves many texts."""
    out, start, n = [], 0, len(para)
    while start < n:
        end = bisect_right(cum, cum[base + start] + room, base + start, base + n + 1) - 1 - base
        if end >= n:
            out.append(para[start:])
            break
        cut = para.rfind(" ", start + 1, end + 1)  # a space may sit just past the fitting part
        if cut > start:
            out.append(para[start:cut])
            start = cut + 1
        else:
            end = max(end, start + 1)
            out.append(para[start:end])
            start = end
    return out or [""]


def text_width(text: str, font: str, size: float) -> float:
    """``stringWidth`` for the built-in Type 1 fonts by table look-up (3x faster), else reportlab's.

    >>> text_width("jane.doe@example.org", "Helvetica", 10) == stringWidth("jane.doe@example.org", "Helvetica", 10)
    True
    """
    try:
        codes = text.encode("cp1252")
    except UnicodeEncodeError:
        return stringWidth(text, font, size)
    return sum(map(_widths(font).__getitem__, codes)) * size / 1000


@cache
def _widths(font: str) -> tuple[float, ...]:
    return tuple(getFont(font).widths)


@cache
def _width_table(font: str) -> np.ndarray:
    table = np.array(_widths(font), dtype=np.float64)
    table[0] = 0.0  # the separator below
    return table


def text_widths(texts: list[str], font: str, size: float) -> np.ndarray:
    """Widths of many texts at once (one encode, one table look-up); NaN where a text is not WinAnsi.

    >>> text_widths(["ab", "", "é…", "W", "北"], "Helvetica", 10).round(2).tolist()
    [11.12, 0.0, 15.56, 9.44, nan]
    """
    if not texts:
        return np.zeros(0)
    buf, all_winansi = _cp1252("\x00".join(texts))
    cum = np.concatenate([[0.0], np.cumsum(_width_table(font)[np.frombuffer(buf, dtype=np.uint8)])])
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    starts = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]])
    out = (cum[starts + lengths] - cum[starts]) * size / 1000
    if not all_winansi:
        for i in np.flatnonzero(~np.fromiter(map(str.isascii, texts), dtype=bool, count=len(texts))):
            if not _winansi(texts[i]):
                out[i] = np.nan
    return out


def _cp1252(text: str) -> tuple[bytes, bool]:
    """``text`` as cp1252, one byte per character ("?" for what it lacks), and whether nothing was lacking."""
    try:
        return text.encode("cp1252"), True
    except UnicodeEncodeError:
        return text.encode("cp1252", "replace"), False


def winansi_bytes(text: str) -> bytes | None:
    """``text`` as cp1252 bytes when the built-in fonts can show it (WinAnsi), else None.

    >>> winansi_bytes("Zoë €5"), winansi_bytes("北京")
    (b'Zo\\xeb \\x805', None)
    """
    if text.isascii():
        return text.encode("ascii")
    try:
        return text.encode("cp1252")
    except UnicodeEncodeError:
        return None


def _winansi(text: str) -> bool:
    return winansi_bytes(text) is not None


def _wrap(para: str, font: str, size: float, width: float) -> list[str]:
    """Greedy lines at spaces, words wider than a line broken by character (:func:`_greedy`).

    >>> _wrap("aaa bbb " + "c" * 40, "Helvetica", 10, 60)
    ['aaa bbb', 'cccccccccccc', 'cccccccccccc', 'cccccccccccc', 'cccc']
    """
    try:
        codes = para.encode("cp1252")
    except UnicodeEncodeError:
        return [piece for line in _wrap_words(para, font, size, width) for piece in _break_word(line, font, size, width)]
    cum = np.concatenate(([0.0], np.cumsum(_width_table(font)[np.frombuffer(codes, dtype=np.uint8)]))).tolist()
    return _greedy(para, cum, 0, width * 1000 / size)


def _wrap_words(para: str, font: str, size: float, width: float) -> list[str]:
    """Greedy line filling at spaces for text outside WinAnsi (reportlab measures it, with substitutions)."""
    space = stringWidth(" ", font, size)
    lines, line, used = [], [], 0.0
    for word in para.split(" "):
        w = stringWidth(word, font, size)
        if line and used + space + w > width:
            lines.append(" ".join(line))
            line, used = [], 0.0
        used += (space if line else 0.0) + w
        line.append(word)
    lines.append(" ".join(line))
    return lines


def _break_word(line: str, font: str, size: float, width: float) -> list[str]:
    out = []
    while stringWidth(line, font, size) > width:
        n = max(1, int(len(line) * width / stringWidth(line, font, size)))
        while n > 1 and stringWidth(line[:n], font, size) > width:
            n -= 1
        out.append(line[:n])
        line = line[n:]
    out.append(line)
    return out


def _ellipsis(line: str, font: str, size: float, width: float) -> str:
    while line and stringWidth(line + " …", font, size) > width:
        line = line[:-1]
    return line + " …"
