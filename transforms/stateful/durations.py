"""Durations and percentages as they are written in a stateful section: ``120s``, ``30m``, ``1h``, ``300%``.

Durations become whole microseconds (event times are ``timestamp[us, UTC]``), so all
window arithmetic is exact integer arithmetic.

>>> parse_duration("120s"), parse_duration("1h") == 3_600_000_000, parse_duration("1d12h") == parse_duration("36h")
(120000000, True, True)
>>> parse_percent("300%"), parse_percent(2.5)
(3.0, 2.5)
>>> parse_duration("2 weeks")
Traceback (most recent call last):
...
ValueError: '2 weeks' is not a duration like 90s, 30m, 1h30m, 2d (units ms, s, m, h, d)
"""

from __future__ import annotations

import re

US = {"ms": 1_000, "s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000}
_PART = re.compile(r"(\d+)(ms|s|m|h|d)")
_WHOLE = re.compile(r"^(?:\d+(?:ms|s|m|h|d))+$")


def parse_duration(text: object) -> int:
    """A duration in microseconds. A bare number means seconds."""
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a duration")
    if isinstance(text, (int, float)):
        if text < 0:
            raise ValueError(f"{text!r} is negative; a duration cannot be")
        return int(round(text * US["s"]))
    s = str(text).strip().replace(" ", "") if isinstance(text, str) else ""
    if not s or not _WHOLE.match(s):
        raise ValueError(f"{text!r} is not a duration like 90s, 30m, 1h30m, 2d (units ms, s, m, h, d)")
    return sum(int(n) * US[u] for n, u in _PART.findall(s))


def parse_percent(value: object) -> float:
    """``300%`` -> 3.0; a bare number is already a ratio."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a percentage")
    if isinstance(value, (int, float)):
        ratio = float(value)
    elif isinstance(value, str) and re.match(r"^\s*\d+(\.\d+)?\s*%\s*$", value):
        ratio = float(value.strip().rstrip("%")) / 100.0
    else:
        raise ValueError(f"{value!r} is not a percentage like 300% (or a ratio like 3.0)")
    if ratio <= 0:
        raise ValueError(f"{value!r} must be above zero")
    return ratio


def format_duration(us: int) -> str:
    """The shortest text for a duration, for messages and ``detail``.

    >>> format_duration(5_400_000_000), format_duration(0)
    ('1h30m', '0s')
    """
    out, rest = "", us
    for unit in ("d", "h", "m", "s", "ms"):
        n, rest = divmod(rest, US[unit])
        if n:
            out += f"{n}{unit}"
    return out or "0s"
