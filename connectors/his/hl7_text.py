"""HL7 v2 as text: decode bytes, normalise line endings, split a drop into messages.

Files and MLLP blocks arrive with CR, LF or CRLF between segments, in UTF-8 or
(older systems) latin-1. A file may hold one message, many, or an FHS/BHS batch;
the envelope segments (FHS, BHS, BTS, FTS) frame messages and are not part of them.

>>> decode(b"MSH|^~\\\\&|A\\xe9")
('MSH|^~\\\\&|Aé', 'latin-1')
>>> chunks = split_messages("FHS|^~\\\\&\\r\\nMSH|^~\\\\&|A\\nPID|1\\n\\nMSH|^~\\\\&|B\\r")
>>> [(c.line, c.text) for c in chunks]
[(2, 'MSH|^~\\\\&|A\\rPID|1'), (5, 'MSH|^~\\\\&|B')]
>>> split_messages("PID|1\\rMSH|^~\\\\&|A")[0].problem
'segments before the first MSH (line 1: PID|1)'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ENVELOPE = frozenset({"FHS", "BHS", "BTS", "FTS"})
_LINE = re.compile(r"([^\r\n]*)(?:\r\n|\n|\r|$)")
_PAD = " \t\x0b\x1c"


@dataclass(frozen=True)
class Chunk:
    """One message's text (segments joined by CR), where it started, or why it is not a message."""

    line: int  # 1-based line of its first segment in the drop
    text: str  # segments joined by CR, blank lines dropped
    problem: str | None = None
    raw: str = ""  # the span of the drop it came from, as received


def decode(data: bytes) -> tuple[str, str]:
    """UTF-8 (a BOM is dropped), else latin-1, which decodes any byte; returns (text, encoding)."""
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def _lines(text: str) -> list[tuple[int, str, int, int]]:
    """(line number, stripped line, start offset, end offset incl. its line break) of each non-blank line."""
    out = []
    for no, m in enumerate(_LINE.finditer(text), 1):
        line = m.group(1).strip(_PAD)
        if line:
            out.append((no, line, m.start(), m.end()))
        if m.end() == len(text):
            break
    return out


def split_messages(text: str) -> list[Chunk]:
    """Split a drop into messages at each MSH; text before the first MSH is a problem chunk."""
    groups: list[list[tuple[int, str, int, int]]] = []
    orphans: list[tuple[int, str, int, int]] = []
    for item in _lines(text):
        head = item[1][:3]
        if head in ENVELOPE:
            continue
        if head == "MSH":
            groups.append([item])
        elif groups:
            groups[-1].append(item)
        else:
            orphans.append(item)
    chunks = [_chunk(text, g) for g in groups]
    if orphans:
        no, first = orphans[0][:2]
        chunks.insert(0, _chunk(text, orphans, f"segments before the first MSH (line {no}: {first[:60]})"))
    return chunks


def _chunk(text: str, lines: list[tuple[int, str, int, int]], problem: str | None = None) -> Chunk:
    return Chunk(lines[0][0], "\r".join(line for _, line, _, _ in lines), problem, text[lines[0][2]:lines[-1][3]])
