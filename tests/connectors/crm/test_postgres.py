"""PostgreSQL through dlt and through the ADBC fast path, against the real server at 127.0.0.1:5432.

Every scenario runs on both paths, and the paths must leave identical tables.
"""

from __future__ import annotations

import json

import adbc_driver_postgresql.dbapi as adbc
import pyarrow as pa
import pytest

from connectors.base.reserved import MAPPED_COLUMNS, RECORD_ID
from connectors.crm import open_destination
from connectors.crm.evolution import SchemaChangeError
from connectors.crm.postgres import PostgresDestination
from connectors.errors import StageError

from .conftest import PG_URL, rows

UPSERT = {"key": ["external_id"], "write": "upsert"}


def scenario(dest, batch) -> list[str]:
    """The same sequence of loads on any destination; returns the path each load took."""
    paths = [
        dest.load("lead", batch([1, 2, 3], "L1"), load_id="L1", **UPSERT).path,
        dest.load("lead", batch([1, 2, 3], "L1"), load_id="L1", **UPSERT).path,  # idempotent
        dest.load("lead", batch([3, 4], "L2", email=["n3@example.org", "n4@example.org"]), load_id="L2", **UPSERT).path,
        dest.load("lead", batch([5], "L3", segment=["vip"]), load_id="L3", **UPSERT).path,  # new column
        dest.load("lead", batch([5, 6], "L4"), load_id="L4", **UPSERT).path,  # without it: null (as dlt)
        dest.load("event", batch([1, 2], "L1"), key=[], write="append", load_id="L1").path,
        dest.load("event", batch([1, 2], "L2"), key=[], write="append", load_id="L2").path,
        dest.load("snapshot", batch([1, 2], "L1"), key=[], write="replace", load_id="L1").path,
        dest.load("snapshot", batch([3], "L2"), key=[], write="replace", load_id="L2").path,
    ]
    return paths


def expected_leads(batch) -> list[dict]:
    t = pa.concat_tables([batch([1, 2], "L1"), batch([3, 4], "L2", email=["n3@example.org", "n4@example.org"]),
                          batch([5, 6], "L4")])
    return rows(t.append_column("segment", pa.nulls(t.num_rows, pa.string())))


def test_fast_path_and_dlt_leave_the_same_tables(home, batch, pg_url):
    via_dlt = open_destination(home, pg_url(fast_path=False))
    via_fast = open_destination(home, pg_url(fast_path=True))
    assert set(scenario(via_dlt, batch)) == {"dlt"}
    assert set(scenario(via_fast, batch)) == {"fast"}  # dlt only created and altered the tables
    for entity in ("lead", "event", "snapshot"):
        assert rows(via_fast.read(entity)) == rows(via_dlt.read(entity)), entity
    assert rows(via_fast.read("lead")) == expected_leads(batch)
    assert via_fast.read("event").num_rows == 4
    assert rows(via_fast.read("snapshot")) == rows(batch([3], "L2"))
    assert set(MAPPED_COLUMNS) <= set(via_fast.read("lead").column_names)


@pytest.mark.parametrize("fast_path", [False, True])
def test_changed_type_is_refused_on_both_paths(home, batch, pg_url, fast_path):
    dest = open_destination(home, pg_url(fast_path=fast_path))
    dest.load("lead", batch([1], "L1"), load_id="L1", **UPSERT)
    bad = batch([2], "L2").set_column(3, "score", pa.array(["lots"]))
    with pytest.raises(SchemaChangeError, match="'score' changes type double -> text"):
        dest.load("lead", bad, load_id="L2", **UPSERT)
    dest.load("lead", batch([3], "L3"), load_id="L3", **UPSERT)  # not wedged
    assert dest.committed_load_ids("lead") == {"L1", "L3"}


@pytest.mark.parametrize("fast_path", [False, True])
def test_read_delete_and_load_ids(home, batch, pg_url, fast_path):
    dest = open_destination(home, pg_url(fast_path=fast_path))
    assert isinstance(dest, PostgresDestination) and dest.name.startswith("postgres:wl_crm_test_")
    assert dest.read("lead").num_rows == 0 and dest.committed_load_ids("lead") == set()
    t = batch([1, 2, 3, 4], "L1")
    dest.load("lead", t, load_id="L1", **UPSERT)
    dest.load("lead", batch([4], "L2"), load_id="L2", **UPSERT)
    assert dest.committed_load_ids("lead") == {"L1", "L2"}
    ids = t.column(RECORD_ID)
    assert rows(dest.read("lead", where_record_ids=ids.slice(0, 2))) == rows(t.slice(0, 2))
    assert dest.delete_records("lead", ids.slice(0, 2)) == 2
    assert dest.delete_records("lead", [ids[0].as_py()]) == 0
    assert rows(dest.read("lead")) == rows(pa.concat_tables([t.slice(2, 1), batch([4], "L2")]))
    assert dest.delete_records("nothing_here", ids) == 0


def test_fast_path_casts_through_staging_when_types_differ(home, batch, pg_url):
    """int32 cannot be COPYed into dlt's bigint column as is: the staged path casts it."""
    dest = open_destination(home, pg_url())
    dest.load("lead", batch([1], "L1"), load_id="L1", **UPSERT)
    narrow = batch([2], "L2").set_column(8, "_wl_rules", pa.array([7], pa.int32()))
    assert dest.load("lead", narrow, load_id="L2", **UPSERT).path == "fast"
    assert {r["external_id"]: r["_wl_rules"] for r in dest.read("lead").to_pylist()} == {"WEB-1": 1, "WEB-2": 7}


def test_a_url_without_password_still_works_for_dlt(home, batch, pg_url):
    """dlt wants a password even with trust auth; the destination supplies a placeholder."""
    dest = open_destination(home, pg_url(fast_path=False).replace("postgres:x@", "postgres@"))
    assert dest.load("lead", batch([1], "L1"), load_id="L1", **UPSERT).rows == 1
    with adbc.connect(PG_URL) as con, con.cursor() as cur:
        cur.execute(f'SELECT count(*) FROM "{dest.dataset}"."lead"')
        assert cur.fetchall() == [(1,)]


def test_the_url_password_never_shows(home, pg_url):
    dest = open_destination(home, pg_url().replace(":x@", ":s3cret@"))
    assert "s3cret" not in repr(dest) and "s3cret" not in dest.name


@pytest.mark.parametrize("fast_path", [False, True])
def test_nested_columns_arrive_as_json_text(home, batch, pg_url, fast_path):
    dest = open_destination(home, pg_url(fast_path=fast_path))
    result = dest.load("lead", batch([1, 2], "L1", tags=[["a", "b"], None]), load_id="L1", **UPSERT)
    assert result.path == ("fast" if fast_path else "dlt")
    tags = {r["external_id"]: r["tags"] for r in dest.read("lead").to_pylist()}
    assert json.loads(tags["WEB-1"]) == ["a", "b"] and tags["WEB-2"] is None


@pytest.mark.parametrize("fast_path", [False, True])
def test_an_unreachable_server_is_a_retriable_load_error(home, batch, fast_path):
    """Nothing listens on port 9 of the loopback: the runner must retry later, not quarantine."""
    url = f"postgresql://postgres:x@127.0.0.1:9/test?schema=wl_crm_nowhere&fast_path={str(fast_path).lower()}"
    dest = open_destination(home, url)
    with pytest.raises(StageError) as err:
        dest.load("lead", batch([1], "L1"), load_id="L1", **UPSERT)
    assert (err.value.stage, err.value.load_id, err.value.kind) == ("load", "L1", "retriable")


def _column_defs(dataset: str, entity: str) -> list[tuple]:
    with adbc.connect(PG_URL) as con, con.cursor() as cur:
        cur.execute("SELECT column_name, data_type, character_maximum_length, numeric_precision, numeric_scale,"
                    " datetime_precision, is_nullable FROM information_schema.columns"
                    f" WHERE table_schema = '{dataset}' AND table_name = '{entity}' ORDER BY ordinal_position")
        return cur.fetchall()


def _every_plain_type() -> pa.Table:
    import datetime
    from decimal import Decimal

    return pa.table({
        "k": pa.array(["a"]), "big": pa.array([1], pa.int64()), "mid": pa.array([1], pa.int32()),
        "small": pa.array([1], pa.int16()), "ratio": pa.array([0.5]), "flag": pa.array([True]),
        "day": pa.array([datetime.date(2026, 1, 2)]), "at": pa.array([1], pa.timestamp("us", "UTC")),
        "naive_at": pa.array([1], pa.timestamp("us")), "money": pa.array([Decimal("1.25")], pa.decimal128(14, 2)),
        "wide": pa.array([Decimal("1")], pa.decimal128(38, 9)), "long_text": pa.array(["x"], pa.large_string()),
    }).cast(pa.schema([pa.field("k", pa.string(), nullable=False)] + [
        pa.field(n, t) for n, t in zip(["big", "mid", "small", "ratio", "flag", "day", "at", "naive_at", "money",
                                        "wide", "long_text"],
                                       [pa.int64(), pa.int32(), pa.int16(), pa.float64(), pa.bool_(), pa.date32(),
                                        pa.timestamp("us", "UTC"), pa.timestamp("us"), pa.decimal128(14, 2),
                                        pa.decimal128(38, 9), pa.large_string()])]))


def test_a_new_table_created_without_dlt_has_dlts_column_types(home, pg_url):
    """The fast path creates a new target itself (no dlt run): exactly the columns dlt's DDL gives."""
    from connectors.crm import postgres_fast as fast

    t = _every_plain_type().append_column(RECORD_ID, pa.array(["r"])).append_column("_wl_load_id", pa.array(["L1"]))
    via_dlt, via_fast = open_destination(home, pg_url(fast_path=False)), open_destination(home, pg_url())
    assert via_dlt.load("thing", t, key=["k"], write="upsert", load_id="L1").path == "dlt"
    assert fast.create_sql(via_fast.dataset, "thing", t.schema, ["k"]) is not None
    assert via_fast.load("thing", t, key=["k"], write="upsert", load_id="L1").path == "fast"
    assert _column_defs(via_fast.dataset, "thing") == _column_defs(via_dlt.dataset, "thing")
    assert len(_column_defs(via_fast.dataset, "thing")) == t.num_columns
    assert rows(via_fast.read("thing")) == rows(via_dlt.read("thing"))


def test_dlt_loads_and_evolves_a_table_the_fast_path_created(home, batch, pg_url):
    url = pg_url()
    open_destination(home, url).load("lead", batch([1, 2], "L1"), load_id="L1", **UPSERT)
    via_dlt = PostgresDestination(home, url.split("?")[0], open_destination(home, url).dataset, fast_path=False)
    assert via_dlt.load("lead", batch([2, 3], "L2", segment=["a", "b"]), load_id="L2", **UPSERT).path == "dlt"
    got = {r["external_id"]: r["segment"] for r in via_dlt.read("lead").to_pylist()}
    assert got == {"WEB-1": None, "WEB-2": "a", "WEB-3": "b"}


def test_a_type_only_dlt_decides_leaves_the_new_table_to_dlt(home, batch, pg_url):
    """An all-null column has no type yet: dlt creates the table (without it) and dlt loads the batch."""
    from connectors.crm import postgres_fast as fast

    t = batch([1], "L1", note=pa.nulls(1))
    assert fast.create_sql("s", "lead", t.schema, ["external_id"]) is None
    dest = open_destination(home, pg_url())
    assert dest.load("lead", t, load_id="L1", **UPSERT).rows == 1
    assert "note" not in dest.read("lead").column_names
