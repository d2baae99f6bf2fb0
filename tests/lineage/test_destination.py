"""lineage.destination.read_records on the embedded CRM file: a short id list and a long one
(above lineage.index.MANY, read through a join) return exactly the asked rows."""

import tempfile

import duckdb
import pyarrow as pa
import pytest

from connectors.base.home import Home
from lineage.destination import read_records
from lineage.index import MANY


@pytest.fixture
def home(monkeypatch):
    monkeypatch.delenv("WEFTLINE_CRM_URL", raising=False)
    h = Home(tempfile.mkdtemp())
    ids = [f"r{i:04d}" for i in range(5 * MANY)]
    con = duckdb.connect(str(h.crm_duckdb))
    con.execute("CREATE SCHEMA IF NOT EXISTS crm.crm")
    con.register("t", pa.table({"_wl_record_id": ids, "n": list(range(len(ids)))}))
    con.execute("CREATE TABLE crm.crm.account AS SELECT * FROM t")
    con.close()
    return h


@pytest.mark.parametrize("count", [3, MANY + 1, 2 * MANY])
def test_read_records_returns_exactly_the_asked_ids(home, count):
    wanted = [f"r{i:04d}" for i in range(0, 2 * count, 2)] + ["absent"]
    t = read_records(home, "account", wanted)
    got = sorted(zip(t.column("_wl_record_id").to_pylist(), t.column("n").to_pylist()))
    assert got == [(f"r{i:04d}", i) for i in range(0, 2 * count, 2)]


def test_read_records_of_a_missing_table_is_none(home):
    assert read_records(home, "contact", ["r0001"]) is None
