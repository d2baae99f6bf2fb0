"""HL7 original-mode acknowledgements, built with ``hl7``'s ``Message.create_ack``.

``AA`` — stored durably; ``AE`` — the message itself is wrong (it was quarantined;
resending it unchanged will not help); ``AR`` — we could not store it (resend later).
A reason goes in MSA-3 and in ERR (ERR-3 error code from HL7 table 0357, ERR-4
severity, ERR-8 user message), escaped with the message's own separators.

>>> text = build_ack("MSH|^~\\\\&|LAB|HOSP|WL|WLF|2023||ORU^R01|42|P|2.5.1", "AE", "MSH-9 | bad", "101")
>>> [seg.split("|")[:4] for seg in text.rstrip("\\r").split("\\r")][1:]
[['MSA', 'AE', '42', 'MSH-9 \\\\F\\\\ bad'], ['ERR', '', '', '101^Required field missing^HL70357']]
>>> a = parse_ack(text)
>>> (a.code, a.control_id, a.reason)
('AE', '42', 'MSH-9 | bad')
>>> parse_ack(build_ack(None, "AE", "no MSH")).control_id   # nothing to echo back
''
>>> parse_ack(build_ack("MSH|^~\\\\&|NBS|TN|||||ACK|A0|D|2.5.1", "AA")).control_id   # MSH-9 without components
'A0'
"""

from __future__ import annotations

from dataclasses import dataclass

import hl7

ERROR_TEXT = {
    "100": "Segment sequence error",
    "101": "Required field missing",
    "102": "Data type error",
    "207": "Application internal error",
}
APPLICATION_INTERNAL_ERROR = "207"
_FALLBACK_MSH = "MSH|^~\\&|||||||ACK^^ACK||P|2.5.1"


@dataclass(frozen=True)
class Ack:
    code: str  # MSA-1: AA / AE / AR
    control_id: str  # MSA-2: the acknowledged message's MSH-10
    reason: str | None  # MSA-3 (unescaped)
    text: str  # the whole ACK message


def _source(msh_line: str | None) -> tuple[hl7.Message, hl7.Message]:
    """(the message to answer, the ACK skeleton); our own header when theirs cannot be read."""
    try:
        msg = hl7.parse(msh_line) if msh_line else None
        return msg, msg.create_ack()
    except Exception:  # no MSH, no encoding characters, an MSH-9 without components …
        fallback = hl7.parse(_FALLBACK_MSH)
        ack = fallback.create_ack()
        control_id = _control_id(msh_line)
        ack.segment("MSA").assign_field(fallback.escape(control_id), 2)
        return fallback, ack


def _control_id(msh_line: str | None) -> str:
    if not msh_line or len(msh_line) < 4:
        return ""
    fields = msh_line.split(msh_line[3])
    return fields[9] if len(fields) > 9 else ""


def build_ack(msh_line: str | None, code: str, reason: str | None = None, error_code: str = "100") -> str:
    """The ACK for a message whose MSH segment is ``msh_line`` (or None when there was none)."""
    source, ack = _source(msh_line)
    ack.segment("MSA").assign_field(code, 1)
    if reason:
        ack.segment("MSA").assign_field(source.escape(reason), 3)
        err = ack.create_segment([ack.create_field(["ERR"])])
        ack.append(err)
        err.assign_field(error_code, 3, 1, 1)
        err.assign_field(ERROR_TEXT.get(error_code, ""), 3, 1, 2)
        err.assign_field("HL70357", 3, 1, 3)
        err.assign_field("E", 4)
        err.assign_field(source.escape(reason), 8)
    return str(ack)


def parse_ack(text: str) -> Ack:
    """Read an ACK's MSA: code, acknowledged control id, reason."""
    msg = hl7.parse(text.replace("\r\n", "\r").replace("\n", "\r"))
    msa = msg.segment("MSA")
    reason = str(msa(3)) if len(msa) > 3 and str(msa(3)) else None
    return Ack(str(msa(1)), str(msa(2)) if len(msa) > 2 else "", msg.unescape(reason) if reason else None, text)
