"""DuckIndex.rows answers ``at`` as ISO-8601 UTC text, the same as ``datetime.isoformat`` with Z,
on both of its paths (an IN list of few values, a join for more than MANY)."""

import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pytest

from lineage.edges import EDGE_SCHEMA
from lineage.index import MANY, DuckIndex
from lineage.query import _iso

BASE = datetime(2026, 3, 1, 23, 59, 59, tzinfo=timezone(timedelta(hours=2)))


def _edges(n: int) -> pa.Table:
    ats = [BASE + timedelta(microseconds=7 * i if i % 2 else 0) for i in range(n)]
    cols = {f.name: pa.nulls(n, f.type) for f in EDGE_SCHEMA}
    cols.update(step=pa.array(["received"] * n), record_id=pa.array([f"r{i:04d}" for i in range(n)]),
                at=pa.array(ats, pa.timestamp("us", "UTC")))
    return pa.table(cols, schema=EDGE_SCHEMA)


@pytest.fixture
def index():
    ix = DuckIndex(str(Path(tempfile.mkdtemp()) / "index.duckdb"))
    ix.append(1, _edges(3 * MANY))
    return ix


@pytest.mark.parametrize("count", [3, 2 * MANY])
def test_rows_give_at_as_isoformat_utc_text(index, count):
    wanted = [f"r{i:04d}" for i in range(count)]
    got = {r["record_id"]: r["at"] for r in index.rows("record_id", wanted)}
    expected = {f"r{i:04d}": _iso(BASE + timedelta(microseconds=7 * i if i % 2 else 0)) for i in range(count)}
    assert got == expected
    assert got["r0000"] == "2026-03-01T21:59:59Z" and got["r0001"] == "2026-03-01T21:59:59.000007Z"


def test_rows_keep_every_other_column(index):
    (row,) = index.rows("record_id", ["r0002"])
    assert (row["step"], row["seq"], row["row"], row["subject"]) == ("received", 1, 2, None)
