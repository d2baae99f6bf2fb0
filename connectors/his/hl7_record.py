"""One HL7 v2 message → one record (a dict shaped for Arrow), parsed tolerantly.

The ``hl7`` package reads the separators a message declares (MSH-1/MSH-2) and
decodes escape sequences; the split itself follows ``hl7.parse``'s rules with
``str.split`` (its object tree costs ~10x more and is thrown away here).

Only what a receiver cannot do without is required: a segment structure, MSH-2
(the encoding characters), MSH-9 (message type) and MSH-10 (control id, which
identifies a message for ACKs and de-duplication). Anything else that is odd
(a malformed MSH-7, an unusual version) is kept and noted in ``issues``.

>>> rec = parse_message("MSH|^~\\\\&|LAB|HOSP^1.2^ISO|||20230101120000-0500||ORU^R01^ORU_R01|42|P|2.5.1\\r"
...                     "PID|1||123^^^MRN||Doe^Jane~Roe^J|||F\\rOBX|1|ST|x||a\\\\T\\\\b\\rOBX|2|NM|y||7")
>>> rec["message_type"], rec["trigger_event"], rec["message_control_id"], rec["sending_facility"]
('ORU', 'R01', '42', 'HOSP')
>>> rec["sent_at"].isoformat()
'2023-01-01T17:00:00+00:00'
>>> rec["segments"]["PID"][0]["f5"][1]["c1"], rec["segments"]["OBX"][1]["f5"][0]["c1"]
('Roe', '7')
>>> rec["segments"]["OBX"][0]["f5"][0]["c1"]   # escapes are decoded
'a&b'
>>> rec["segment_ids"]
['MSH', 'PID', 'OBX', 'OBX']
>>> parse_message("MSH|^~\\\\&|LAB|HOSP|||2023||ORU^R01||P|2.5.1")
Traceback (most recent call last):
...
connectors.his.hl7_record.MessageRejected: MSH-10 (message control id) is empty: the message cannot be acknowledged or de-duplicated
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timezone
from typing import Any

from hl7.datatypes import parse_datetime
from hl7.parser import create_parse_plan

from connectors.errors import SkippableError


class MessageRejected(SkippableError):
    """A message a receiver cannot take; ``code`` is its HL7 error code (table 0357) for the ACK's ERR-3."""

    def __init__(self, reason: str, code: str = "100"):  # 100: segment sequence error
        super().__init__(reason)
        self.code = code


REQUIRED_FIELD_MISSING = "101"

_SEGMENT = re.compile(r"^[A-Z][A-Z0-9]{2}$")
_DTM = re.compile(r"^\d{4}(\d{2}){0,5}(\.\d{1,4})?([+-]\d{4})?$")  # YYYY[MM[DD[HH[MM[SS[.S+]]]]]][+/-ZZZZ]


class _Grammar:
    """The separators a message declares in MSH-1/MSH-2 (read by ``hl7``), and its unescaping."""

    def __init__(self, text: str):
        plan = create_parse_plan(text)
        self.msg = plan.container([])  # an empty hl7.Message carrying separators and escape char
        _, self.fs, self.rs, self.cs, self.ss = plan.separators
        self.esc = plan.esc

    def component(self, text: str) -> str | None:
        if not text:
            return None
        if self.esc in text:
            text = "&".join(self.msg.unescape(p) for p in text.split(self.ss))
        elif self.ss != "&":
            text = text.replace(self.ss, "&")
        return text

    def subcomponents(self, text: str) -> list[str | None]:
        """Each sub-component on its own, unescaped (an escaped ``\\T\\`` is a literal ``&`` inside one)."""
        return [(self.msg.unescape(p) if self.esc in p else p) or None for p in text.split(self.ss)]

    def repetition(self, text: str) -> dict[str, Any] | None:
        comps: dict[str, Any] = {}
        for i, raw in enumerate(text.split(self.cs), 1):
            if raw and self.ss in raw:  # sub-components: also one by one, as the list c<i>s (docs/hl7-notation.md)
                subs = comps[f"c{i}s"] = self.subcomponents(raw)
                comps[f"c{i}"] = "&".join(p or "" for p in subs)  # what component() gives, split once
            elif c := self.component(raw):
                comps[f"c{i}"] = c
        return comps or None

    def field(self, text: str) -> list[dict[str, str] | None] | None:
        if not text:
            return None
        out = [self.repetition(r) for r in text.split(self.rs)]
        return out if any(r is not None for r in out) else None

    def segment(self, line: str) -> tuple[str, dict[str, Any]]:
        sid = line[:3]
        values = line.split(self.fs)
        out: dict[str, Any] = {}
        if sid == "MSH":  # MSH-1 is the field separator itself and MSH-2 the encoding characters: never split
            out["f1"] = [{"c1": self.fs}]
            out["f2"] = [{"c1": values[1]}]
            first, values = 3, values[2:]
        else:
            first, values = 1, values[1:]
        for n, raw in enumerate(values, first):
            if (value := self.field(raw)) is not None:
                out[f"f{n}"] = value
        return sid, out or {"f1": None}  # Parquet cannot store a struct without children


def _check_lines(text: str) -> None:
    for no, line in enumerate(text.split("\r"), 1):
        sid = line[:3]
        if not _SEGMENT.match(sid) or (len(line) > 3 and line[3] != text[3]):
            raise MessageRejected(f"line {no} of the message is not an HL7 segment: {line[:60]!r}")


def _first(segments: dict, sid: str, field: int, comp: int = 1) -> str | None:
    try:
        return segments[sid][0][f"f{field}"][0][f"c{comp}"]
    except (KeyError, IndexError, TypeError):
        return None


def _sent_at(value: str | None, issues: list[str]) -> datetime | None:
    if not value:
        return None
    try:
        if not _DTM.match(value):
            raise ValueError("expected YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]")
        dt = parse_datetime(value)
    except (ValueError, OverflowError) as err:
        issues.append(f"MSH-7 {value!r} is not an HL7 timestamp ({err}); sent_at left empty")
        return None
    return (dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt).astimezone(timezone.utc)


def _require(text: str) -> None:
    if not text.startswith("MSH") or len(text) < 4:
        raise MessageRejected("no MSH segment with a field separator")
    sep = text[3]
    end = text.find(sep, 4)
    if end in (-1, 4) or "\r" in text[4:end]:
        raise MessageRejected("MSH-2 (encoding characters) is empty: components cannot be read", REQUIRED_FIELD_MISSING)


def message_sha256(text: str) -> str:
    """sha256 of the message text with segments joined by CR (the form every drop normalises to)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def parse_message(text: str, encoding: str = "utf-8", raw: str | None = None) -> dict[str, Any]:
    """Parse one message (segments joined by CR); raises SkippableError with a clear reason.

    ``raw`` is the message as received (original line endings); it defaults to ``text``.
    """
    _require(text)
    _check_lines(text)
    try:
        grammar = _Grammar(text)
    except Exception as err:  # the hl7 parser raises plain errors on malformed input
        raise MessageRejected(f"not parseable as HL7 v2: {err}") from err
    segments: dict[str, list] = {}
    ids = []
    for line in text.split("\r"):
        sid, seg = grammar.segment(line)
        ids.append(sid)
        segments.setdefault(sid, []).append(seg)
    if not _first(segments, "MSH", 9):
        raise MessageRejected("MSH-9 (message type) is empty: the message cannot be routed", REQUIRED_FIELD_MISSING)
    if not _first(segments, "MSH", 10):
        raise MessageRejected(
            "MSH-10 (message control id) is empty: the message cannot be acknowledged or de-duplicated",
            REQUIRED_FIELD_MISSING,
        )
    issues: list[str] = []
    return {
        "message_control_id": _first(segments, "MSH", 10),
        "message_type": _first(segments, "MSH", 9, 1),
        "trigger_event": _first(segments, "MSH", 9, 2),
        "message_structure": _first(segments, "MSH", 9, 3),
        "version": _first(segments, "MSH", 12),
        "processing_id": _first(segments, "MSH", 11),
        "sending_application": _first(segments, "MSH", 3),
        "sending_facility": _first(segments, "MSH", 4),
        "receiving_application": _first(segments, "MSH", 5),
        "receiving_facility": _first(segments, "MSH", 6),
        "sent_at": _sent_at(_first(segments, "MSH", 7), issues),
        "segment_ids": ids,
        "segments": segments,
        "issues": issues,
        "encoding": encoding,
        "message_sha256": message_sha256(text),
        "raw": text if raw is None else raw,
    }
