"""Parquet files as the CRM: a local folder, and a local S3 server (moto in server mode)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connectors.base.reserved import RECORD_ID
from connectors.crm import open_destination
from connectors.crm.evolution import SchemaChangeError

from .conftest import rows

UPSERT = {"key": ["external_id"], "write": "upsert"}


def exercise(dest, batch) -> None:
    """Upsert twice (idempotent), update + new column, append, then erase by record id."""
    dest.load("lead", batch([1, 2, 3], "L1"), load_id="L1", **UPSERT)
    dest.load("lead", batch([1, 2, 3], "L1"), load_id="L1", **UPSERT)
    assert rows(dest.read("lead")) == rows(batch([1, 2, 3], "L1"))
    dest.load("lead", batch([3, 4], "L2", segment=["vip", None]), load_id="L2", **UPSERT)
    got = {r["external_id"]: r for r in dest.read("lead").to_pylist()}
    assert sorted(got) == ["WEB-1", "WEB-2", "WEB-3", "WEB-4"]
    assert (got["WEB-1"]["segment"], got["WEB-3"]["segment"], got["WEB-3"]["_wl_load_id"]) == (None, "vip", "L2")
    assert dest.committed_load_ids("lead") == {"L1", "L2"}
    dest.load("event", batch([1], "L1"), key=[], write="append", load_id="L1")
    dest.load("event", batch([1], "L2"), key=[], write="append", load_id="L2")
    assert dest.read("event").num_rows == 2
    ids = batch([1, 2], "L1").column(RECORD_ID)
    assert rows(dest.read("lead", where_record_ids=ids)) == rows(
        batch([1, 2], "L1").append_column("segment", pa.nulls(2, pa.string())))
    assert dest.delete_records("lead", ids) == 2
    assert dest.delete_records("lead", ids) == 0
    assert sorted(r["external_id"] for r in dest.read("lead").to_pylist()) == ["WEB-3", "WEB-4"]


def test_local_folder(home, batch, tmp_path):
    dest = open_destination(home, f"file://{tmp_path / 'crm_files'}")
    assert dest.name == "filesystem:crm"
    exercise(dest, batch)
    files = sorted((tmp_path / "crm_files" / "crm" / "lead").glob("*.parquet"))
    assert files and sum(pq.read_metadata(f).num_rows for f in files) == 2


def test_changed_type_is_refused(home, batch, tmp_path):
    dest = open_destination(home, f"file://{tmp_path / 'crm_files'}")
    dest.load("lead", batch([1], "L1"), load_id="L1", **UPSERT)
    with pytest.raises(SchemaChangeError, match="'score'"):
        dest.load("lead", batch([2], "L2").set_column(3, "score", pa.array(["lots"])), load_id="L2", **UPSERT)
    assert rows(dest.read("lead")) == rows(batch([1], "L1"))


def test_s3_bucket(home, batch, s3_bucket, monkeypatch):
    server, client, bucket = s3_bucket
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", server.endpoint_url)
    dest = open_destination(home, f"s3://{bucket}/weftline?dataset=crm_s3")
    assert dest.name == "filesystem:crm_s3"
    exercise(dest, batch)
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="weftline/crm_s3/lead/")["Contents"]]
    assert keys and all(k.endswith(".parquet") for k in keys)
