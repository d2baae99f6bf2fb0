"""Optional strict conformance check with ``hl7apy`` — advice for a report, never the gate.

Real traffic rarely passes a strict HL7 validation (6 of the 132 sample files
do), so the connector lands tolerantly-parsed messages and this check only says
what a strict reader would complain about. Run it offline over landed ``raw`` text.

>>> check_profile("MSH|^~\\\\&|A|F|||20230101||ADT^A01^ADT_A01|1|P|2.5\\rEVN|A01|20230101\\rPID|1||7||Doe^J\\rPV1|1|I")
[]
>>> check_profile("MSH|^~\\\\&|A|F|||20230101||ADT^A01^ADT_A01|1|P|2.5\\rZZZ|1")[0].split(":")[0]
'ADT^A01^ADT_A01 v2.5 fails a strict hl7apy check'
"""

from __future__ import annotations

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.exceptions import HL7apyException
from hl7apy.parser import parse_message


def check_profile(raw: str) -> list[str]:
    """Problems a strict ``hl7apy`` parse + validate finds in one message (empty: it conforms)."""
    text = raw.replace("\r\n", "\r").replace("\n", "\r").strip("\r")
    head = text.split("\r", 1)[0].split("|")
    label = f"{head[8] if len(head) > 8 else '?'} v{head[11] if len(head) > 11 else '?'}"
    try:
        msg = parse_message(text, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
        msg.validate()
    except HL7apyException as err:
        return [f"{label} fails a strict hl7apy check: {err}"]
    except Exception as err:  # hl7apy raises plain errors on some inputs
        return [f"{label} could not be checked by hl7apy: {type(err).__name__}: {err}"]
    return []
