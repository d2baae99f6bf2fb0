"""The sample ERP: deterministic, and holding the awkward rows the connector must survive."""

from __future__ import annotations

from connectors.erp_sql import ErpSqlSource
from connectors.erp_sql.sample import create_sample_erp, ensure_sample_erp, sample_rows
from connectors.erp_sql.sample.seed import LATE_AT, LATE_ORDER_ID


def test_seed_is_deterministic_and_has_the_edge_cases(tmp_path, home):
    a, b = f"sqlite:///{tmp_path}/a.sqlite", f"sqlite:///{tmp_path}/b.sqlite"
    create_sample_erp(a)
    create_sample_erp(b)
    for stream in ("customers", "orders", "contracts", "approval_steps"):
        ta = ErpSqlSource({"url": a}, home).read(stream, {})
        tb = ErpSqlSource({"url": b}, home).read(stream, {})
        assert [x.table for x in ta] == [y.table for y in tb]
    orders = sample_rows()["orders"]
    assert max(orders, key=lambda r: r["updated_at"])["order_id"] == LATE_ORDER_ID
    assert max(r["updated_at"] for r in orders if r["order_id"] != LATE_ORDER_ID) < LATE_AT
    assert any(r["net_amount"].startswith("-") for r in orders)
    assert any(r["sales_rep"] is None for r in orders) and any(r["order_date"] is None for r in orders)
    assert any(any(ord(c) > 0xFFFF for c in (r["note"] or "")) for r in orders)  # outside the BMP


def test_ensure_sample_erp_creates_once(home):
    url = ensure_sample_erp(home)
    (home.root / "erp.sqlite").touch()
    mtime = (home.root / "erp.sqlite").stat().st_mtime_ns
    assert ensure_sample_erp(home) == url
    assert (home.root / "erp.sqlite").stat().st_mtime_ns == mtime
    assert sum(x.table.num_rows for x in ErpSqlSource({"url": url}, home).read("orders", {})) == 300
