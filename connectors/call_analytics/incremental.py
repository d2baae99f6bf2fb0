"""Incremental selection by (LastModified, key).

State: ``{"last_modified": ISO, "keys": [keys seen at exactly that instant]}``. A file
is new when it is newer than the cursor, or equally new and not among the keys (two
files written in the same second are both read, once).

>>> from datetime import datetime, timezone
>>> t1, t2 = (datetime(2026, 1, 1, 0, 0, s, tzinfo=timezone.utc) for s in (1, 2))
>>> refs = [ObjectRef(t1, "a"), ObjectRef(t2, "b"), ObjectRef(t2, "c")]
>>> st = advance({}, refs[:2])
>>> st
{'last_modified': '2026-01-01T00:00:02+00:00', 'keys': ['b']}
>>> [r.key for r in select(refs, st)]
['c']
>>> advance(st, [refs[2]])["keys"]
['b', 'c']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from connectors.call_analytics.objects import ObjectRef


def _cursor(state: Mapping[str, Any]) -> tuple[datetime | None, set[str]]:
    lm = state.get("last_modified")
    return (datetime.fromisoformat(lm) if lm else None), set(state.get("keys") or ())


def select(refs: Sequence[ObjectRef], state: Mapping[str, Any]) -> list[ObjectRef]:
    """The refs not covered by ``state``, oldest first."""
    lm, keys = _cursor(state)
    if lm is None:
        return sorted(refs)
    return sorted(r for r in refs if r.last_modified > lm or (r.last_modified == lm and r.key not in keys))


def advance(state: Mapping[str, Any], done: Sequence[ObjectRef]) -> dict[str, Any]:
    """The state after ``done`` (taken from :func:`select`, in order) has landed."""
    if not done:
        return dict(state)
    lm, keys = _cursor(state)
    top = max(r.last_modified for r in done)
    at_top = {r.key for r in done if r.last_modified == top}
    if lm == top:
        at_top |= keys
    return {"last_modified": top.isoformat(), "keys": sorted(at_top)}
