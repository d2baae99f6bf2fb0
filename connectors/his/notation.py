"""HL7 v2 field notation (``PID-5.1``) → the mapping engine's record path.

A landed HL7 message keeps its segments in one struct column, ``segments``:
one list per segment type, each element a segment with fields ``f1``, ``f2``, …,
each field a list of repetitions, each repetition a struct of components ``c1``,
``c2``, … (see ``docs/hl7-notation.md``). In the notation every number counts
from 1, as in HL7 itself; engine list indexes count from 0.

    SEG[n]-F[r].C      SEG: segment id; [n]: the n-th such segment (default 1)
                       F: field; [r]: the r-th repetition (default 1)
                       C: component (default 1: a field alone means its first component)

>>> hl7_path("PID-5.1")
'segments.PID[0].f5[0].c1'
>>> hl7_path("OBX[2]-5")
'segments.OBX[1].f5[0].c1'
>>> hl7_path("MSH-9.2")
'segments.MSH[0].f9[0].c2'
>>> hl7_path("PID-3[2].4")
'segments.PID[0].f3[1].c4'
>>> hl7_path("PID-3.4.2")
Traceback (most recent call last):
...
ValueError: 'PID-3.4.2': sub-components are not addressable; the component text keeps them joined by '&'
"""

from __future__ import annotations

import re

_NOTATION = re.compile(
    r"^(?P<seg>[A-Z][A-Z0-9]{2})(?:\[(?P<n>\d+)\])?"
    r"-(?P<field>\d+)(?:\[(?P<rep>\d+)\])?"
    r"(?:\.(?P<comp>\d+))?(?P<sub>\.\d+)?$"
)
SEGMENTS_COLUMN = "segments"


def _index(notation: str, what: str, text: str | None) -> int:
    value = int(text) if text is not None else 1
    if value < 1:
        raise ValueError(f"{notation!r}: {what} counts from 1, got {value}")
    return value


def hl7_path(notation: str) -> str:
    """Translate ``SEG[n]-F[r].C`` into ``segments.SEG[n-1].fF[r-1].cC`` (raises ValueError)."""
    m = _NOTATION.match(notation.strip())
    if not m:
        raise ValueError(f"{notation!r} is not HL7 field notation (expected e.g. PID-5.1, OBX[2]-5, PID-3[2].1)")
    if m["sub"]:
        raise ValueError(f"{notation!r}: sub-components are not addressable; the component text keeps them joined by '&'")
    n = _index(notation, "the segment index", m["n"])
    field = _index(notation, "the field number", m["field"])
    rep = _index(notation, "the repetition index", m["rep"])
    comp = _index(notation, "the component number", m["comp"])
    return f"{SEGMENTS_COLUMN}.{m['seg']}[{n - 1}].f{field}[{rep - 1}].c{comp}"
