"""The DuckDB fast path against real DuckDB files: the same tables as the dlt-only path.

Every scenario runs twice, once with the fast path and once with ``fast_path=False`` (dlt
loads every batch), each into its own file, and the tables are compared row by row.
"""

from __future__ import annotations

import datetime
import subprocess
import sys

import duckdb
import pyarrow as pa
import pytest

from connectors.base.home import Home
from connectors.base.reserved import MAPPED_COLUMNS
from connectors.crm import duckdb_fast as fast
from connectors.crm.duckdb_dlt import DuckDbDestination
from connectors.crm.evolution import SchemaChangeError
from connectors.errors import StageError

from .conftest import rows


def _pair(tmp_path):
    """A fast-path destination and a dlt-only one, each with its own home and file."""
    a, b = Home(tmp_path / "fast"), Home(tmp_path / "dlt")
    return (DuckDbDestination(a, a.crm_duckdb, "crm"),
            DuckDbDestination(b, b.crm_duckdb, "crm", fast_path=False))


def _both(pair, entity, table, key, write, load_id):
    return [d.load(entity, table, key=key, write=write, load_id=load_id) for d in pair]


def test_upsert_sequence_matches_dlt_row_for_row(tmp_path, batch):
    pair = _pair(tmp_path)
    steps = [
        (batch([1, 2, 3], "L1"), "L1"),
        (batch([2, 3, 4], "L2", version="v2", email=["a@x.org", "b@x.org", "c@x.org"]), "L2"),
        (batch([4, 5, 4, 6, 5], "L3", version="v3"), "L3"),  # duplicate keys: the last row wins
        (batch([1], "L4").drop_columns(["email"]), "L4"),  # a column the batch lacks becomes NULL
    ]
    paths, superseded = [], []
    for t, load_id in steps:
        f, d = _both(pair, "lead", t, ["external_id"], "upsert", load_id)
        assert (f.rows, f.superseded) == (d.rows, d.superseded)
        paths.append(f.path)
        superseded.append(f.superseded)
        assert rows(pair[0].read("lead")) == rows(pair[1].read("lead"))
    assert paths == ["fast", "fast", "fast", "fast"]  # the new table is created with dlt's DDL
    assert superseded == [0, 0, 2, 0]
    out = pair[0].read("lead")
    assert set(MAPPED_COLUMNS) <= set(out.column_names)
    by_key = {r["external_id"]: r for r in out.to_pylist()}
    assert by_key["WEB-1"]["email"] is None and by_key["WEB-1"]["_wl_load_id"] == "L4"
    assert by_key["WEB-2"]["email"] == "a@x.org" and by_key["WEB-5"]["_wl_load_id"] == "L3"
    assert pair[0].committed_load_ids("lead") == pair[1].committed_load_ids("lead") == {"L2", "L3", "L4"}


def test_append_and_replace_match_dlt(tmp_path, batch):
    pair = _pair(tmp_path)
    for t, write, load_id in [(batch([1, 2], "L1"), "append", "L1"), (batch([1, 2], "L2"), "append", "L2"),
                              (batch([7, 8], "L3"), "replace", "L3"), (batch([9], "L4"), "append", "L4")]:
        f, _ = _both(pair, "event", t, [], write, load_id)
        assert rows(pair[0].read("event")) == rows(pair[1].read("event"))
    assert f.path == "fast" and pair[0].read("event").num_rows == 3


def test_composite_key_upsert(tmp_path, batch):
    pair = _pair(tmp_path)
    key = ["external_id", "priority"]
    _both(pair, "lead", batch([1, 2, 3], "L1"), key, "upsert", "L1")
    f, _ = _both(pair, "lead", batch([2, 3], "L2", priority=["low", "zzz"]), key, "upsert", "L2")
    assert f.path == "fast"
    assert rows(pair[0].read("lead")) == rows(pair[1].read("lead"))
    assert pair[0].read("lead").num_rows == 4  # WEB-2/low is replaced, WEB-3/zzz is new beside WEB-3/high


def test_reloading_the_same_batch_is_idempotent(tmp_path, batch):
    dest, _ = _pair(tmp_path)
    t = batch([1, 2, 3], "L1")
    dest.load("lead", t, key=["external_id"], write="upsert", load_id="L1")
    for _ in range(2):
        assert dest.load("lead", t, key=["external_id"], write="upsert", load_id="L1").path == "fast"
        assert rows(dest.read("lead")) == rows(t)


def test_dlt_and_fast_loads_interleave_with_a_new_column(tmp_path, batch):
    """Fast load creating the table, fast load, dlt load adding a column, fast load again: rows and dlt's
    schema stay right."""
    dest, _ = _pair(tmp_path)
    key = ["external_id"]
    assert dest.load("lead", batch([1, 2], "L1"), key=key, write="upsert", load_id="L1").path == "fast"
    assert dest.load("lead", batch([2, 3], "L2"), key=key, write="upsert", load_id="L2").path == "fast"
    third = batch([3, 4], "L3", segment=["vip", "std"])
    assert dest.load("lead", third, key=key, write="upsert", load_id="L3").path == "dlt"
    fourth = batch([1, 5], "L4", segment=["new", None])
    assert dest.load("lead", fourth, key=key, write="upsert", load_id="L4").path == "fast"
    expected = pa.concat_tables([batch([2], "L2").append_column("segment", pa.array([None], pa.string())),
                                 third, fourth])
    assert rows(dest.read("lead")) == rows(expected)
    # a fresh process's dlt (working folder gone) restores the schema, knows the new column, still loads
    again = DuckDbDestination(Home(tmp_path / "other"), dest.path, "crm", fast_path=False)
    again.load("lead", batch([6], "L5", segment=["late"]), key=key, write="upsert", load_id="L5")
    assert dest.read("lead").num_rows == 6
    with duckdb.connect(str(dest.path), read_only=True) as con:
        loads = con.sql("SELECT count(*) FROM crm.crm._dlt_loads").fetchall()[0][0]
    assert loads == 2  # only dlt's own loads (L3, L5) are in its bookkeeping


def test_changed_type_is_refused_on_the_fast_path_too(tmp_path, batch):
    dest, _ = _pair(tmp_path)
    dest.load("lead", batch([1], "L1"), key=["external_id"], write="upsert", load_id="L1")
    bad = batch([2], "L2").set_column(3, "score", pa.array(["lots"]))
    with pytest.raises(SchemaChangeError, match="'score' changes type double -> text"):
        dest.load("lead", bad, key=["external_id"], write="upsert", load_id="L2")
    assert rows(dest.read("lead")) == rows(batch([1], "L1"))


def test_nested_columns_go_through_dlt(tmp_path, batch):
    dest, _ = _pair(tmp_path)
    dest.load("lead", batch([1], "L1", tags=[["a"]]), key=["external_id"], write="upsert", load_id="L1")
    result = dest.load("lead", batch([2], "L2", tags=[["b", "c"]]), key=["external_id"], write="upsert",
                       load_id="L2")
    assert result.path == "dlt" and dest.read("lead").num_rows == 2


def test_a_failure_mid_transaction_leaves_the_old_rows(tmp_path, batch):
    dest, _ = _pair(tmp_path)
    dest.load("lead", batch([1, 2], "L1"), key=["external_id"], write="upsert", load_id="L1")
    before = rows(dest.read("lead"))
    # the DELETE of keys WEB-1/WEB-2 runs, then the INSERT hits dlt's NOT NULL on the key: all rolled back
    bad = batch([1, 2], "L2").set_column(0, "external_id", pa.array(["WEB-1", None]))
    with duckdb.connect(str(dest.path)) as con:
        with pytest.raises(duckdb.ConstraintException):
            fast.write(con, '"crm"."crm"."lead"', bad, ["external_id"], "upsert")
    assert rows(dest.read("lead")) == before
    assert dest.load("lead", batch([3], "L3"), key=["external_id"], write="upsert", load_id="L3").path == "fast"


def test_a_locked_file_is_a_retriable_load_error(tmp_path, batch):
    dest, _ = _pair(tmp_path)
    dest.load("lead", batch([1], "L1"), key=["external_id"], write="upsert", load_id="L1")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True);"
         " sys.stdin.read()", str(dest.path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StageError) as err:
            dest.load("lead", batch([2], "L2"), key=["external_id"], write="upsert", load_id="L2")
        assert err.value.kind == "retriable" and err.value.stage == "load"
    finally:
        holder.stdin.close()
        holder.wait(10)
    assert dest.load("lead", batch([2], "L2"), key=["external_id"], write="upsert", load_id="L2").path == "fast"
    assert dest.read("lead").num_rows == 2


def test_keep_open_reuses_one_connection_and_still_falls_back_to_dlt(tmp_path, batch):
    h = Home(tmp_path / "kept")
    dest = DuckDbDestination(h, h.crm_duckdb, "crm", keep_open=True)
    _, ref = _pair(tmp_path)
    key = ["external_id"]
    steps = [(batch([1, 2], "L1"), "fast"), (batch([2, 3], "L2"), "fast"), (batch([3, 4], "L3"), "fast"),
             (batch([5], "L4", segment=["vip"]), "dlt"), (batch([1, 5], "L5", segment=["a", "b"]), "fast")]
    try:
        for t, path in steps:
            load_id = t.column("_wl_load_id")[0].as_py()
            assert dest.load("lead", t, key=key, write="upsert", load_id=load_id).path == path
            ref.load("lead", t, key=key, write="upsert", load_id=load_id)
            assert rows(dest.read("lead")) == rows(ref.read("lead"))  # reads go through the kept connection
        assert dest._con is not None
        assert dest.committed_load_ids("lead") == {"L2", "L3", "L5"}
    finally:
        dest.close()
    with duckdb.connect(str(h.crm_duckdb), read_only=True) as con:  # closed: the file is free again
        assert con.sql("SELECT count(*) FROM crm.crm.lead").fetchall() == [(5,)]


def test_a_process_killed_mid_load_leaves_the_old_rows(tmp_path, batch):
    """The writer dies (os._exit, no rollback, no close) after the DELETE of an upsert: the
    uncommitted transaction is not in the file or its WAL when DuckDB opens it again."""
    dest, _ = _pair(tmp_path)
    dest.load("lead", batch([1, 2, 3], "L1"), key=["external_id"], write="upsert", load_id="L1")
    dest.load("lead", batch([4], "L2"), key=["external_id"], write="upsert", load_id="L2")  # a committed fast load
    before = rows(dest.read("lead"))
    script = (
        "import os, sys, duckdb\n"
        "con = duckdb.connect(sys.argv[1])\n"
        "con.execute('BEGIN TRANSACTION')\n"
        "con.execute('DELETE FROM \"crm\".\"crm\".\"lead\"')\n"
        "con.execute(\"INSERT INTO \\\"crm\\\".\\\"crm\\\".\\\"lead\\\" (external_id) VALUES ('WEB-9')\")\n"
        "print(con.sql('SELECT count(*) FROM \"crm\".\"crm\".\"lead\"').fetchall()[0][0], flush=True)\n"
        "os._exit(9)\n")
    done = subprocess.run([sys.executable, "-c", script, str(dest.path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 9 and done.stdout.strip() == "1", done.stderr  # it had deleted them, uncommitted
    assert rows(dest.read("lead")) == before
    assert dest.load("lead", batch([5], "L3"), key=["external_id"], write="upsert", load_id="L3").path == "fast"
    assert dest.read("lead").num_rows == 5


def _every_plain_type() -> pa.Table:
    from decimal import Decimal

    one = {"k": (pa.string(), "a"), "big": (pa.int64(), 1), "mid": (pa.int32(), 1), "small": (pa.int16(), 1),
           "tiny": (pa.int8(), 1), "ratio": (pa.float64(), 0.5), "f32": (pa.float32(), 0.5), "flag": (pa.bool_(), True),
           "day": (pa.date32(), datetime.date(2026, 1, 2)), "at": (pa.timestamp("us", "UTC"), 1),
           "naive_at": (pa.timestamp("us"), 1), "at_ms": (pa.timestamp("ms", "UTC"), 1), "at_s": (pa.timestamp("s"), 1),
           "money": (pa.decimal128(14, 2), Decimal("1.25")), "wide": (pa.decimal128(38, 9), Decimal("1")),
           "long_text": (pa.large_string(), "x"), "required": (pa.int64(), 3),
           "_wl_record_id": (pa.string(), "r"), "_wl_load_id": (pa.string(), "L1")}
    schema = pa.schema([pa.field(n, t, nullable=n not in ("k", "required")) for n, (t, _) in one.items()])
    return pa.table({n: pa.array([v], t) for n, (t, v) in one.items()}, schema=schema)


def _column_defs(path) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("SELECT column_name, data_type, is_nullable FROM duckdb_columns()"
                           " WHERE schema_name = 'crm' AND table_name = 'thing' ORDER BY column_index").fetchall()


def test_a_new_table_created_without_dlt_has_dlts_column_types(tmp_path):
    """The fast path creates a new target itself: the same columns, types and NOT NULLs as dlt's DDL."""
    pair, t = _pair(tmp_path), _every_plain_type()
    via_fast, via_dlt = _both(pair, "thing", t, ["k"], "upsert", "L1")
    assert (via_fast.path, via_dlt.path) == ("fast", "dlt")
    assert _column_defs(pair[0].path) == _column_defs(pair[1].path)
    assert len(_column_defs(pair[0].path)) == t.num_columns
    assert ("required", "BIGINT", False) in _column_defs(pair[0].path)
    assert rows(pair[0].read("thing")) == rows(pair[1].read("thing"))


def test_a_type_only_dlt_decides_leaves_the_new_table_to_dlt(tmp_path, batch):
    """A nanosecond timestamp is cast by dlt: dlt creates that table, and the next batch goes the fast way."""
    dest, _ = _pair(tmp_path)
    t = batch([1], "L1", seen=pa.array([1_000], pa.timestamp("ns", "UTC")))
    assert fast.create_sql('"crm"."lead"', t.schema, ["external_id"]) is None
    assert dest.load("lead", t, key=["external_id"], write="upsert", load_id="L1").path == "dlt"
    assert dest.load("lead", batch([2], "L2"), key=["external_id"], write="upsert", load_id="L2").path == "fast"
    assert dest.read("lead").num_rows == 2
