"""The orders the connector yields fit the lead's spec mappings/erp_order_to_account.yaml (field names, types).

Real parts end to end: the SQLite sample ERP, ErpSqlSource, identity.stamp and the transforms engine.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pyarrow as pa

from connectors.base.identity import stamp
from connectors.erp_sql import ErpSqlSource
from connectors.erp_sql.sample import ensure_sample_erp
from transforms import compile_spec, load_spec

SPEC = Path(__file__).resolve().parents[3] / "mappings" / "erp_order_to_account.yaml"


def test_sample_orders_map_through_the_account_spec(home):
    src = ErpSqlSource({"url": ensure_sample_erp(home)}, home)
    batches = list(src.read("orders", {}))
    table = pa.concat_tables([b.table for b in batches])
    stamped = stamp(table, system="erp_sql", stream="orders", key=["order_id"], position="updated_at", load_id="L1")
    result = compile_spec(load_spec(SPEC), subject_key=b"test-key").apply(stamped, load_id="L1")
    counts = result.counts["account_order"]
    assert counts["read"] == 300 and counts["quarantined"] == 0 and counts["mapped"] == 300
    rows = {r["order_ref"]: r for r in next(o for o in result.outputs if o.entity == "account_order").table.to_pylist()}
    assert rows["ERP-3"]["stage"] == "cancelled" and rows["ERP-3"]["net_revenue"] == Decimal("0.00")
    assert rows["ERP-3"]["is_deleted"] is True and rows["ERP-2"]["gross_amount"] == Decimal("999999999999.99")
    for c in result.counts.values():
        assert c["read"] == c["mapped"] + c["quarantined"] + c["filtered"]
