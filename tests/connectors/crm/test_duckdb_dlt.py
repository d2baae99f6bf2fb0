"""The embedded default: DuckDB at $WEFTLINE_HOME/crm.duckdb, schema crm, through dlt."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from connectors.base.reserved import MAPPED_COLUMNS, RECORD_ID
from connectors.crm import LoadResult, open_destination
from connectors.crm.duckdb_dlt import DuckDbDestination
from connectors.crm.evolution import SchemaChangeError
from connectors.errors import ConfigError

from .conftest import rows


def test_default_is_duckdb_in_home_schema_crm(home, batch):
    dest = open_destination(home)
    result = dest.load("lead", batch([1, 2, 3], "L1"), key=["external_id"], write="upsert", load_id="L1")
    # a new table of plain types is created with dlt's DDL by the fast path: no dlt run, no dlt folder
    assert result == LoadResult("duckdb:crm", "lead", "lead", "L1", rows=3, superseded=0, path="fast")
    assert home.crm_duckdb.is_file()
    assert not (home.root / "dlt").exists()
    with duckdb.connect(str(home.crm_duckdb), read_only=True) as con:
        assert con.sql("SELECT count(*) FROM crm.crm.lead").fetchall() == [(3,)]


def test_upsert_twice_leaves_the_same_rows(home, batch):
    dest = open_destination(home)
    t = batch([1, 2, 3], "L1")
    dest.load("lead", t, key=["external_id"], write="upsert", load_id="L1")
    first = rows(dest.read("lead"))
    dest.load("lead", t, key=["external_id"], write="upsert", load_id="L1")
    assert rows(dest.read("lead")) == first == rows(t)


def test_upsert_updates_by_key_and_keeps_reserved_columns(home, batch):
    dest = open_destination(home)
    dest.load("lead", batch([1, 2], "L1"), key=["external_id"], write="upsert", load_id="L1")
    second = batch([2, 3], "L2", version="v2", email=["new2@example.org", "new3@example.org"])
    dest.load("lead", second, key=["external_id"], write="upsert", load_id="L2")
    out = dest.read("lead")
    assert set(MAPPED_COLUMNS) <= set(out.column_names)
    assert rows(out) == rows(pa.concat_tables([batch([1], "L1"), second]))


def test_append_adds_and_replace_swaps(home, batch):
    dest = open_destination(home)
    dest.load("event", batch([1, 2], "L1"), key=[], write="append", load_id="L1")
    dest.load("event", batch([1, 2], "L2"), key=[], write="append", load_id="L2")
    assert dest.read("event").num_rows == 4
    dest.load("event", batch([7], "L3"), key=[], write="replace", load_id="L3")
    assert rows(dest.read("event")) == rows(batch([7], "L3"))


def test_new_column_is_added(home, batch):
    dest = open_destination(home)
    dest.load("lead", batch([1], "L1"), key=["external_id"], write="upsert", load_id="L1")
    dest.load("lead", batch([2], "L2", segment=["vip"]), key=["external_id"], write="upsert", load_id="L2")
    out = {r["external_id"]: r for r in dest.read("lead").to_pylist()}
    assert out["WEB-1"]["segment"] is None and out["WEB-2"]["segment"] == "vip"


def test_changed_type_is_refused_and_the_table_is_untouched(home, batch):
    dest = open_destination(home)
    dest.load("lead", batch([1], "L1"), key=["external_id"], write="upsert", load_id="L1")
    bad = batch([2], "L2").set_column(3, "score", pa.array(["lots"]))
    with pytest.raises(SchemaChangeError, match="'score' changes type double -> text"):
        dest.load("lead", bad, key=["external_id"], write="upsert", load_id="L2")
    assert rows(dest.read("lead")) == rows(batch([1], "L1"))
    dest.load("lead", batch([3], "L3"), key=["external_id"], write="upsert", load_id="L3")  # not wedged
    assert dest.committed_load_ids("lead") == {"L1", "L3"}


def test_duplicate_keys_in_one_batch_keep_the_last(home, batch):
    dest = open_destination(home)
    t = pa.concat_tables([batch([1, 2], "L1"), batch([1], "L1", email=["last@example.org"])])
    result = dest.load("lead", t, key=["external_id"], write="upsert", load_id="L1")
    assert (result.rows, result.superseded) == (2, 1)
    assert {r["external_id"]: r["email"] for r in dest.read("lead").to_pylist()}["WEB-1"] == "last@example.org"


def test_bad_batches_are_clear_errors(home, batch):
    dest = open_destination(home)
    with pytest.raises(ConfigError, match="'Email' -> 'email'"):
        dest.load("lead", batch([1], "L1").rename_columns(
            ["external_id", "Email", *batch([1], "L1").column_names[2:]]), key=["external_id"],
            write="upsert", load_id="L1")
    nulls = batch([1, 2], "L1").set_column(0, "external_id", pa.array(["WEB-1", None]))
    with pytest.raises(ConfigError, match="hold nulls"):
        dest.load("lead", nulls, key=["external_id"], write="upsert", load_id="L1")
    with pytest.raises(ConfigError, match=RECORD_ID):
        dest.load("lead", batch([1], "L1").drop_columns([RECORD_ID]), key=["external_id"],
                  write="upsert", load_id="L1")
    assert dest.read("lead").num_rows == 0


def test_read_and_delete_by_record_id(home, batch):
    dest = open_destination(home)
    t = batch([1, 2, 3, 4], "L1")
    dest.load("lead", t, key=["external_id"], write="upsert", load_id="L1")
    ids = t.column(RECORD_ID).chunk(0)
    assert rows(dest.read("lead", where_record_ids=ids.slice(1, 2))) == rows(t.slice(1, 2))
    assert dest.delete_records("lead", ids.slice(0, 2)) == 2
    assert dest.delete_records("lead", [ids[0].as_py()]) == 0  # already gone
    assert rows(dest.read("lead")) == rows(t.slice(2))
    assert dest.delete_records("no_such_entity", ids) == 0
    assert dest.read("no_such_entity").num_rows == 0


def test_committed_load_ids(home, batch):
    dest = open_destination(home)
    assert dest.committed_load_ids("lead") == set()
    dest.load("lead", batch([1], "L1"), key=["external_id"], write="upsert", load_id="L1")
    dest.load("lead", batch([2], "L2"), key=["external_id"], write="upsert", load_id="L2")
    assert dest.committed_load_ids("lead") == {"L1", "L2"}
    dest.load("lead", batch([1, 2], "L3"), key=["external_id"], write="upsert", load_id="L3")
    assert dest.committed_load_ids("lead") == {"L3"}


def test_url_and_env_pick_another_file_without_collisions(home, batch, tmp_path, monkeypatch):
    other = tmp_path / "other" / "sales.duckdb"
    monkeypatch.setenv("WEFTLINE_CRM_URL", f"duckdb://{other}")
    env_dest = open_destination(home)
    env_dest.load("lead", batch([1], "L1"), key=["external_id"], write="upsert", load_id="L1")
    monkeypatch.delenv("WEFTLINE_CRM_URL")
    default = open_destination(home)
    default.load("lead", batch([2, 3], "L2"), key=["external_id"], write="upsert", load_id="L2")
    assert env_dest.read("lead").num_rows == 1 and default.read("lead").num_rows == 2
    for dest in (env_dest, default):  # a new column: dlt adds it, in a pipeline of each file's own
        assert dest.load("lead", batch([4], "L3", segment=["vip"]), key=["external_id"], write="upsert",
                         load_id="L3").path == "dlt"
    assert len(list((home.root / "dlt").iterdir())) == 2  # one dlt pipeline each
    assert env_dest.read("lead").num_rows == 2 and default.read("lead").num_rows == 3


def test_type_check_survives_a_lost_dlt_working_folder(home, batch):
    """dlt's local state is a cache: with $WEFTLINE_HOME/dlt gone, the stored types come back
    from the destination and a changed type is still refused."""
    import shutil

    via_dlt = DuckDbDestination(home, home.crm_duckdb, "crm", fast_path=False)
    via_dlt.load("lead", batch([1], "L1"), key=["external_id"], write="upsert", load_id="L1")
    shutil.rmtree(home.root / "dlt")
    dest = open_destination(home)
    bad = batch([2], "L2").set_column(3, "score", pa.array(["lots"]))
    with pytest.raises(SchemaChangeError, match="'score'"):
        dest.load("lead", bad, key=["external_id"], write="upsert", load_id="L2")
    dest.load("lead", batch([2], "L2"), key=["external_id"], write="upsert", load_id="L2")
    assert dest.committed_load_ids("lead") == {"L1", "L2"}
