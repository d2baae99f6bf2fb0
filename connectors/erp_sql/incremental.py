"""The cursor, the lookback window for late rows, and dropping rows already emitted.

Policy (docs/adr/0220-erp-extraction.md): a run reads ``cursor >= last - lookback``, ordered
by cursor then key. Rows already emitted are remembered as ``key \\x1f position`` while their
position is inside the window (``seen``), and dropped when read again; a row committed late
with a cursor inside the window is therefore read exactly once. State is plain JSON.

>>> import pyarrow as pa
>>> from datetime import datetime, timezone
>>> t = pa.table({"id": [1, 2], "at": pa.array([datetime(2026, 1, 1, tzinfo=timezone.utc),
...                                              datetime(2026, 1, 2, tzinfo=timezone.utc)])})
>>> c = Cursor.from_state({}, "at", lookback_seconds=86400)
>>> c.low() is None
True
>>> c = c.advance(t, ["id"])
>>> c.to_state()["cursor"], c.to_state()["seen"]
('2026-01-02T00:00:00+00:00', ['1\\x1f2026-01-01T00:00:00.000000', '2\\x1f2026-01-02T00:00:00.000000'])
>>> c.low().isoformat()
'2026-01-01T00:00:00+00:00'
>>> c.fresh(t, ["id"]).num_rows
0
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectors.base.hashing import SEPARATOR
from connectors.base.identity import key_text


def version_ids(table: pa.Table, key: list[str], cursor: str) -> pa.Array:
    """``key \\x1f cursor`` as text per row: what one emitted version of a record is."""
    return pc.binary_join_element_wise(key_text(table, key), key_text(table, [cursor]), SEPARATOR)


def _parse(value: Any) -> Any:
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    return value


@dataclass(frozen=True)
class Cursor:
    column: str
    value: Any = None  # datetime (aware) or int; None before the first run
    lookback: timedelta = timedelta(0)
    seen: tuple[str, ...] = ()
    max_seen: int = 10_000
    extra: dict = field(default_factory=dict)  # other state keys, carried through

    @classmethod
    def from_state(cls, state: dict, column: str, *, lookback_seconds: float = 300, max_seen: int = 10_000):
        extra = {k: v for k, v in state.items() if k not in ("cursor", "seen", "cursor_column")}
        return cls(column, _parse(state.get("cursor")), timedelta(seconds=lookback_seconds),
                   tuple(state.get("seen", ())), max_seen, extra)

    def low(self) -> Any:
        """The lower bound (inclusive) of the next read, or None for a full read."""
        if self.value is None:
            return None
        return self.value - self.lookback if isinstance(self.value, datetime) else self.value

    def fresh(self, table: pa.Table, key: list[str]) -> pa.Table:
        """The rows of ``table`` not emitted before."""
        if not self.seen or not table.num_rows or self.value is None:
            return table
        col = table.column(self.column)
        # only a row at or below the cursor can have been emitted: the version ids of those alone
        maybe = pc.fill_null(pc.less_equal(col, pa.scalar(self.value, col.type)), True)
        if not pc.any(maybe).as_py():
            return table
        at = pc.indices_nonzero(maybe)
        again = pc.is_in(version_ids(table.take(at), key, self.column), pa.array(self.seen, pa.string()))
        if not pc.any(again).as_py():
            return table
        drop = np.zeros(table.num_rows, dtype=bool)
        drop[pc.filter(at, again).to_numpy()] = True
        return table.filter(pa.array(~drop))

    def advance(self, emitted: pa.Table, key: list[str]) -> "Cursor":
        """The cursor after ``emitted`` (sorted by cursor) has landed."""
        if not emitted.num_rows:
            return self
        top = pc.max(emitted.column(self.column)).as_py()
        value = top if self.value is None or top > self.value else self.value
        low = value - self.lookback if isinstance(value, datetime) else value
        inside = emitted.filter(pc.greater_equal(emitted.column(self.column), pa.scalar(low, emitted.schema.field(self.column).type)))
        kept = [s for s in self.seen if self._still_inside(s, low)]
        seen = tuple(dict.fromkeys(kept + version_ids(inside, key, self.column).to_pylist()))
        if len(seen) > self.max_seen:
            seen = ()  # too many to remember: re-read rows are deduplicated downstream by record id
        return Cursor(self.column, value, self.lookback, seen, self.max_seen, self.extra)

    def _still_inside(self, seen_id: str, low: Any) -> bool:
        pos = seen_id.rsplit(SEPARATOR, 1)[1]
        if isinstance(low, datetime):
            return pos >= low.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")  # as identity.key_text
        return int(pos) >= low

    def to_state(self) -> dict:
        value = self.value.isoformat() if isinstance(self.value, datetime) else self.value
        return {**self.extra, "cursor_column": self.column, "cursor": value, "seen": list(self.seen)}
