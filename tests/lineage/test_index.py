"""DuckIndex.rows: the same edges on both of its paths (an IN list fetched as rows; a join fetched as
Arrow for long lists and for subjects), with ``at`` the same instant — ISO-8601 UTC text as the
queries show it (``datetime.isoformat`` with Z) once ``lineage.query._iso`` has seen it."""

import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pytest

from lineage.edges import EDGE_SCHEMA
from lineage.index import MANY, DuckIndex
from lineage.query import _iso

BASE = datetime(2026, 3, 1, 23, 59, 59, tzinfo=timezone(timedelta(hours=2)))
N = 3 * MANY


def _at(i: int) -> datetime:
    return BASE + timedelta(microseconds=7 * i if i % 2 else 0)


def _edges(n: int) -> pa.Table:
    cols = {f.name: pa.nulls(n, f.type) for f in EDGE_SCHEMA}
    cols.update(step=pa.array(["received"] * n), record_id=pa.array([f"r{i:04d}" for i in range(n)]),
                subject=pa.array(["s-even" if i % 2 == 0 else "s-odd" for i in range(n)]),
                at=pa.array([_at(i) for i in range(n)], pa.timestamp("us", "UTC")))
    return pa.table(cols, schema=EDGE_SCHEMA)


@pytest.fixture
def index():
    ix = DuckIndex(str(Path(tempfile.mkdtemp()) / "index.duckdb"))
    ix.append(1, _edges(N))
    return ix


@pytest.mark.parametrize("count", [3, 2 * MANY])
def test_rows_by_record_id_give_each_edge_its_time(index, count):
    got = {r["record_id"]: _iso(r["at"]) for r in index.rows("record_id", [f"r{i:04d}" for i in range(count)])}
    assert got == {f"r{i:04d}": _iso(_at(i)) for i in range(count)}
    assert got["r0000"] == "2026-03-01T21:59:59Z" and got["r0001"] == "2026-03-01T21:59:59.000007Z"


def test_rows_of_a_subject_come_as_iso_text(index):
    rows = index.rows("subject", ["s-odd"])
    assert sorted(r["record_id"] for r in rows) == [f"r{i:04d}" for i in range(1, N, 2)]
    assert all(isinstance(r["at"], str) for r in rows)
    assert {r["record_id"]: r["at"] for r in rows} == {f"r{i:04d}": _iso(_at(i)) for i in range(1, N, 2)}


def test_both_paths_keep_every_other_column(index):
    few = {r["record_id"]: r for r in index.rows("record_id", ["r0002", "r0003"])}
    many = {r["record_id"]: r for r in index.rows("record_id", [f"r{i:04d}" for i in range(2 * MANY)])}
    for rid in ("r0002", "r0003"):
        assert {k: v for k, v in few[rid].items() if k != "at"} == {k: v for k, v in many[rid].items() if k != "at"}
    assert (few["r0002"]["step"], few["r0002"]["seq"], few["r0002"]["row"], few["r0002"]["subject"]) == \
        ("received", 1, 2, "s-even")
