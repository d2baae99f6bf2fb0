"""HL7 v2 field notation (``PID-5.1``, ``PID-3.4.2``) → the mapping engine's record path.

A landed HL7 message keeps its segments in one struct column, ``segments``:
one list per segment type, each element a segment with fields ``f1``, ``f2``, …,
each field a list of repetitions, each repetition a struct of components ``c1``,
``c2``, …; a component that has sub-components also has them one by one in the list
``c<N>s`` (see ``docs/hl7-notation.md``). In the notation every number counts
from 1, as in HL7 itself; engine list indexes count from 0.

    SEG[n]-F[r].C.S    SEG: segment id; [n]: the n-th such segment (default 1)
                       F: field; [r]: the r-th repetition (default 1)
                       C: component (default 1: a field alone means its first component)
                       S: sub-component (none: the whole component)

>>> hl7_path("PID-5.1")
'segments.PID[0].f5[0].c1'
>>> hl7_path("OBX[2]-5")
'segments.OBX[1].f5[0].c1'
>>> hl7_path("MSH-9.2")
'segments.MSH[0].f9[0].c2'
>>> hl7_path("PID-3[2].4")
'segments.PID[0].f3[1].c4'
>>> hl7_path("PID-3.4.2")
'segments.PID[0].f3[0].c4s[1]'

Sub-component 1 is the component itself when it has no sub-components, so it is an expression:

>>> hl7_path("PID-3.4.1")
'case when segments.PID[0].f3[0].c4s is null then segments.PID[0].f3[0].c4 else segments.PID[0].f3[0].c4s[0] end'
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
    """Translate ``SEG[n]-F[r].C[.S]`` into ``segments.SEG[n-1].fF[r-1].cC`` (``….cCs[S-1]`` for a
    sub-component; for sub-component 1 an expression, see above); raises ValueError."""
    m = _NOTATION.match(notation.strip())
    if not m:
        raise ValueError(f"{notation!r} is not HL7 field notation (expected e.g. PID-5.1, OBX[2]-5, PID-3[2].1)")
    n = _index(notation, "the segment index", m["n"])
    field = _index(notation, "the field number", m["field"])
    rep = _index(notation, "the repetition index", m["rep"])
    comp = _index(notation, "the component number", m["comp"])
    path = f"{SEGMENTS_COLUMN}.{m['seg']}[{n - 1}].f{field}[{rep - 1}].c{comp}"
    if m["sub"] is None:
        return path
    sub = _index(notation, "the sub-component number", m["sub"][1:])
    if sub > 1:
        return f"{path}s[{sub - 1}]"
    return f"case when {path}s is null then {path} else {path}s[0] end"
