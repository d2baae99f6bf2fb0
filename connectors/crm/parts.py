"""A load of several parts: the runner adds each mapped part as it lands, then commits the load once.

A destination that can stage (PostgreSQL: ``postgres_parts.py``) writes the whole load into its
targets at commit, in one transaction, whatever the number of parts. Any other destination gets
:class:`PartByPart`, which loads each part as it is added (what a one-part load always did), so
the runner has one code path. Either way a later part's row wins over an earlier one with the
same key, and ``commit`` returns one :class:`LoadResult` per entity with the rows written and the
rows superseded, so ``rows + superseded`` is every row added.

>>> import tempfile, pyarrow as pa
>>> from connectors.base.home import Home
>>> from connectors.crm import open_destination
>>> dest = open_destination(Home(tempfile.mkdtemp()))
>>> load = open_load(dest, "L1")
>>> part = lambda k, v: pa.table({"k": k, "v": v, "_wl_record_id": ["r-" + x for x in k]})
>>> load.add("lead", part(["a", "b"], [1, 2]), ["k"], "upsert")
>>> load.add("lead", part(["b", "c"], [3, 4]), ["k"], "upsert")
>>> r = load.commit()["lead"]; (r.rows, r.superseded)
(4, 0)
>>> sorted(dest.read("lead").select(["k", "v"]).to_pylist(), key=lambda r: r["k"])
[{'k': 'a', 'v': 1}, {'k': 'b', 'v': 3}, {'k': 'c', 'v': 4}]
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Protocol

import pyarrow as pa

from connectors.base.reserved import WriteDisposition
from connectors.crm.destination import LoadResult


class PartLoad(Protocol):
    def add(self, entity: str, table: pa.Table, key: list[str], write: WriteDisposition) -> None: ...

    def commit(self) -> dict[str, LoadResult]: ...

    def abort(self) -> None: ...


class PartByPart:
    """Each part is loaded when it is added (its rows are committed then); ``commit`` sums them.

    Across parts the destination's own upsert lets the later row win, and the earlier row is
    counted as written: it was, until the later part overwrote it.
    """

    def __init__(self, dest: Any, load_id: str):
        self.dest, self.load_id = dest, load_id
        self._results: dict[str, LoadResult] = {}

    def add(self, entity: str, table: pa.Table, key: list[str], write: WriteDisposition) -> None:
        got = self.dest.load(entity, table, key=key, write=write, load_id=self.load_id)
        had = self._results.get(entity)
        self._results[entity] = got if had is None else replace(
            had, rows=had.rows + got.rows, superseded=had.superseded + got.superseded)

    def commit(self) -> dict[str, LoadResult]:
        return dict(self._results)

    def abort(self) -> None:
        """Parts already loaded stay: lineage recovery judges the load by its ``_wl_load_id`` rows."""


def open_load(dest: Any, load_id: str) -> PartLoad:
    """The destination's own staged load when it has one, else :class:`PartByPart`."""
    opener = getattr(dest, "open_load", None)
    return opener(load_id) if opener is not None else PartByPart(dest, load_id)
