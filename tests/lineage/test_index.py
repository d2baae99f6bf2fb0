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


def _index_names(path: str) -> set[str]:
    import duckdb

    con = duckdb.connect(path, read_only=True)
    try:
        return {r[0] for r in con.execute("SELECT index_name FROM duckdb_indexes() WHERE table_name = 'edges'").fetchall()}
    finally:
        con.close()


def test_a_catch_up_bigger_than_the_index_rebuilds_its_indexes_and_a_smaller_one_inserts_into_them(monkeypatch):
    import lineage.index as ix_mod
    from lineage.index import INDEXED

    monkeypatch.setattr(ix_mod, "REBUILD_ROWS", 10)
    drops: list[bool] = []
    real = ix_mod._drop_indexes_for
    monkeypatch.setattr(ix_mod, "_drop_indexes_for", lambda con, n: drops.append(real(con, n)) or drops[-1])
    segments = [{"seq": 1, "segment_id": "a", "rows": 40}]
    data = {1: _edges(40)}
    ix = DuckIndex(str(Path(tempfile.mkdtemp()) / "index.duckdb"), lambda: (segments, lambda s: data[s["seq"]]),
                   lambda: (len(segments), segments[-1]["seq"]))
    assert ix.catch_up() == 1 and drops == [True]  # 40 edges into an empty index: built at the end
    assert _index_names(ix.path) == {f"ix_{c}" for c in INDEXED}
    assert [r["record_id"] for r in ix.rows("record_id", ["r0003", "r0039"])] == ["r0003", "r0039"]
    later = _edges(50).slice(20)  # 30 edges, fewer than the 40 indexed: inserted into the indexes
    later = later.set_column(later.schema.get_field_index("record_id"), "record_id",
                             pa.array([f"z{i:04d}" for i in range(30)]))
    segments.append({"seq": 2, "segment_id": "b", "rows": 30})
    data[2] = later
    assert ix.catch_up() == 1 and drops == [True, False]
    assert _index_names(ix.path) == {f"ix_{c}" for c in INDEXED}
    assert len(ix.rows("subject", ["s-even"])) == 20 + 15
    assert [r["record_id"] for r in ix.rows("record_id", ["z0000", "r0000"])] == ["r0000", "z0000"]


def test_indexes_a_crash_left_dropped_are_built_at_the_next_writable_open():
    import duckdb

    from lineage.index import INDEXED

    ix = DuckIndex(str(Path(tempfile.mkdtemp()) / "index.duckdb"))
    ix.append(1, _edges(5))
    con = duckdb.connect(ix.path)
    for c in INDEXED:  # what a process killed between the catch-up's commit and its index build leaves
        con.execute(f"DROP INDEX ix_{c}")
    con.close()
    assert _index_names(ix.path) == set()
    assert [r["record_id"] for r in ix.rows("record_id", ["r0002"])] == ["r0002"]  # correct without them
    ix.append(2, _edges(1))
    assert _index_names(ix.path) == {f"ix_{c}" for c in INDEXED}
