"""`weftline run INTEGRATION`: a full sync on the sample ERP, incremental re-runs, and a process killed
between landing and loading that the next run repairs (no loss, no duplicates)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb

from connectors.erp_sql.sample.seed import ensure_sample_erp
from weftline.integrations import pending_loads, run_integration

ROOT = Path(__file__).resolve().parents[2]
MAPPINGS = ROOT / "mappings"


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


def test_kill_between_landing_and_loading_is_repaired_by_the_next_run(home, tmp_path):
    url = ensure_sample_erp(home)
    child = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(ROOT)!r})
        from connectors.base.home import Home
        import weftline.integrations as wi
        def die(*a, **k):
            os._exit(137)          # the process dies after the batch landed and the cursor moved
        wi._finish = die
        wi.run_integration("erp_orders", Home({str(home.root)!r}), {str(MAPPINGS)!r})
    """)
    proc = subprocess.run([sys.executable, "-c", child], env={"WEFTLINE_SUBJECT_KEY": "k", "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 137, proc.stderr
    assert len(pending_loads(home, "erp_orders")) == 1
    assert not home.crm_duckdb.exists() or not crm_rows_safe(home)
    reports = run_integration("erp_orders", home, MAPPINGS)
    assert pending_loads(home, "erp_orders") == []
    rows = crm_rows(home, "account_order")
    assert len(rows) == erp_order_count(url) == len({r[0] for r in rows})
    assert all(r.reconciles for r in reports if r.targets)


def crm_rows_safe(home):
    try:
        return crm_rows(home, "account_order")
    except duckdb.Error:
        return []
