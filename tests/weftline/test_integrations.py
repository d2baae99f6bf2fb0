"""`weftline run INTEGRATION`: a full sync on the sample ERP, incremental re-runs, and a process killed
between landing and loading that the next run repairs (no loss, no duplicates)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
import pytest
import yaml

from connectors.erp_sql.sample.seed import ensure_sample_erp
from weftline.integrations import pending_loads, run_integration

from tests.mapping_copies import copy_mappings

ROOT = Path(__file__).resolve().parents[2]
MAPPINGS = ROOT / "mappings"
PG = "postgresql://postgres:x@127.0.0.1:5432/test"


def crm_rows(home, table: str) -> list[tuple]:
    con = duckdb.connect(str(home.crm_duckdb), read_only=True)
    try:
        return con.sql(f"SELECT order_ref, stage, _wl_load_id FROM crm.crm.{table} ORDER BY order_ref").fetchall()
    finally:
        con.close()


def erp_order_count(url: str) -> int:
    import sqlite3

    con = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        return con.execute("SELECT count(*) FROM orders").fetchone()[0]
    finally:
        con.close()


def test_sync_then_incremental_rerun_reads_nothing_new(home):
    url = ensure_sample_erp(home)
    reports = run_integration("erp_orders", home, MAPPINGS)
    loaded = [r for r in reports if r.targets]
    assert loaded and all(r.reconciles for r in loaded)
    n = erp_order_count(url)
    rows = crm_rows(home, "account_order")
    assert len(rows) == n == len({r[0] for r in rows})
    again = run_integration("erp_orders", home, MAPPINGS)
    assert sum(t.mapped for r in again for t in r.targets) == 0
    assert crm_rows(home, "account_order") == rows


@pytest.fixture
def crm_url(request):
    """None (the embedded DuckDB) or a fresh schema on the real PostgreSQL, dropped afterwards."""
    if request.param == "duckdb":
        yield None
        return
    schema = f"wl_integ_{uuid.uuid4().hex[:10]}"
    yield f"{PG}?schema={schema}"
    import adbc_driver_postgresql.dbapi as adbc

    with adbc.connect(PG) as con, con.cursor() as cur:
        for name in (schema, f"{schema}_staging"):
            cur.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        con.commit()


def crm_order_refs(home, url) -> list[str]:
    from connectors.crm import open_destination

    t = open_destination(home, url).read("account_order")
    return sorted(t.column("order_ref").to_pylist()) if t.num_rows else []


def small_batches(tmp_path, batch_size: int, load_rows: int | None = None) -> Path:
    """A copy of the ERP integration and its spec that reads in batches of ``batch_size`` rows."""
    def edit(doc: dict) -> None:
        doc["source"]["config"]["batch_size"] = batch_size
        if load_rows:
            doc["load_rows"] = load_rows
    return copy_mappings(tmp_path, "erp_orders", edit)


@pytest.mark.parametrize("step,crm_url", [("add", "duckdb"), ("add", "postgres"), ("commit", "duckdb"),
                                          ("commit", "postgres")], indirect=["crm_url"])
def test_kill_between_landing_and_loading_is_repaired_by_the_next_run(home, tmp_path, step, crm_url, monkeypatch):
    """Batches of 50 rows, one load. ``add``: the process dies while the second part is mapped (the
    first landed, was mapped and staged, the cursor moved past it); ``commit``: after every part was
    mapped and staged, before the load committed. PostgreSQL stages the parts, so nothing of the load
    is in the CRM; DuckDB loaded them part by part. The next run finishes the load: every order once."""
    url = ensure_sample_erp(home)
    mappings = small_batches(tmp_path, 50)
    env = {"WEFTLINE_SUBJECT_KEY": "k", "PATH": "/usr/bin:/bin", **({"WEFTLINE_CRM_URL": crm_url} if crm_url else {})}
    child = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(ROOT)!r})
        from connectors.base.home import Home
        import weftline.integrations as wi
        import weftline.loads as wl
        real, calls = getattr(wl.Load, {step!r}), []
        def die(*a, **k):
            calls.append(1)
            if {step!r} == "commit" or len(calls) == 2:
                os._exit(137)
            return real(*a, **k)
        setattr(wl.Load, {step!r}, die)
        wi.run_integration("erp_orders", Home({str(home.root)!r}), {str(mappings)!r})
    """)
    proc = subprocess.run([sys.executable, "-c", child], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 137, proc.stderr
    pending = pending_loads(home, "erp_orders")
    assert len(pending) == 1 and pending[0]["read"] >= 50
    if crm_url:
        assert crm_order_refs(home, crm_url) == []
    elif step == "add":
        assert len(crm_order_refs(home, None)) == 50  # the first part, loaded part by part
    if crm_url:
        monkeypatch.setenv("WEFTLINE_CRM_URL", crm_url)
    reports = run_integration("erp_orders", home, mappings)
    assert pending_loads(home, "erp_orders") == []
    refs = crm_order_refs(home, crm_url)
    assert len(refs) == erp_order_count(url) == len(set(refs))
    assert reports and all(r.reconciles for r in reports if r.targets)


def crm_rows_safe(home):
    try:
        return crm_rows(home, "account_order")
    except duckdb.Error:
        return []


def test_a_sync_in_many_parts_and_loads_reconciles_and_matches_one_in_a_single_part(home, tmp_path):
    """Batches of 7 rows in loads of at most 20 rows: every load holds several parts, and the CRM ends
    exactly as after a sync in one part; each load's report reconciles."""
    ensure_sample_erp(home)
    reports = run_integration("erp_orders", home, small_batches(tmp_path, 7, load_rows=20))
    loads = [r for r in reports if r.targets]
    assert len(loads) >= 2 and all(r.reconciles for r in loads)
    assert all(r.read <= 20 + 6 for r in loads)  # a load closes at the first part that reaches 20 rows
    parts = {r.load_id: len(list(home.landing.glob(f"erp_sql/orders/{r.load_id}/part-*.parquet"))) for r in loads}
    assert list(parts.values())[:-1] == [3] * (len(parts) - 1), parts  # 7 + 7 + 7 ≥ 20; the last takes the rest
    many = crm_rows(home, "account_order")
    one = type(home)(tmp_path / "one")
    ensure_sample_erp(one)
    run_integration("erp_orders", one, MAPPINGS)
    assert [r[:2] for r in many] == [r[:2] for r in crm_rows(one, "account_order")]
    assert {r[2] for r in many} == set(parts)  # every row carries the load id of its load


@pytest.mark.parametrize("crm_url", ["postgres"], indirect=True)
def test_a_staged_load_has_one_loaded_edge_per_row_it_left_in_the_crm(home, tmp_path, crm_url, monkeypatch):
    """Accounts repeat across parts (an account keeps its last order): the superseded orders were mapped
    into the account but never written, so they get no loaded edge; every CRM row has exactly one."""
    from connectors.crm import open_destination
    from lineage import open_store

    ensure_sample_erp(home)
    monkeypatch.setenv("WEFTLINE_CRM_URL", crm_url)
    reports = run_integration("erp_orders", home, small_batches(tmp_path, 40))
    (report,) = [r for r in reports if r.targets]
    account = next(t for t in report.targets if t.entity == "account")
    assert account.superseded > 0 and account.loaded + account.superseded == account.mapped
    store = open_store(home)
    edges = pa.concat_tables([store.read_segment(s) for s in store.segments(("committed",))])
    loaded = edges.filter(pa.compute.and_(pa.compute.equal(edges.column("step"), "loaded"),
                                          pa.compute.equal(edges.column("entity"), "account")))
    crm = open_destination(home, crm_url).read("account")
    assert loaded.num_rows == crm.num_rows == account.loaded
    assert sorted(loaded.column("target_key").to_pylist()) == sorted(crm.column("account_ref").to_pylist())


def test_a_sync_without_lineage_loads_the_same_rows_and_writes_no_lineage(home, tmp_path):
    """``lineage=False`` (the benchmarks' lineage-off run) changes nothing in the CRM and leaves the
    lineage store without a segment."""
    from lineage import open_store

    ensure_sample_erp(home)
    reports = run_integration("erp_orders", home, MAPPINGS, lineage=False)
    assert [r for r in reports if r.targets] and all(r.reconciles for r in reports if r.targets)
    assert open_store(home).segments() == []
    with_lineage = type(home)(tmp_path / "with")
    ensure_sample_erp(with_lineage)
    run_integration("erp_orders", with_lineage, MAPPINGS)
    assert [r[:2] for r in crm_rows(home, "account_order")] == [r[:2] for r in crm_rows(with_lineage, "account_order")]
    assert open_store(with_lineage).segments()


def test_two_specs_of_one_stream_writing_one_entity_are_a_config_error(home, tmp_path):
    """They would upsert the same rows within one load (and on PostgreSQL wait for each other's lock)."""
    from connectors.errors import ConfigError

    mappings = small_batches(tmp_path, 50)
    twin = (mappings / "erp_order_to_account.yaml").read_text().replace("mapping: erp_order_to_account",
                                                                        "mapping: erp_order_twin")
    (mappings / "erp_order_twin.yaml").write_text(twin)
    doc = yaml.safe_load((mappings / "erp_orders.integration.yaml").read_text())
    doc["streams"]["orders"]["mappings"].append("erp_order_twin")
    (mappings / "erp_orders.integration.yaml").write_text(yaml.safe_dump(doc))
    ensure_sample_erp(home)
    with pytest.raises(ConfigError, match="'erp_order_to_account' and 'erp_order_twin' both write entity 'account_order'"):
        run_integration("erp_orders", home, mappings)
    assert not home.landing.exists() or not any(home.landing.rglob("*.parquet"))  # refused before reading
