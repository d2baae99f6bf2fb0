"""Deterministic seed data for the sample ERP, and ``create_sample_erp(url)``.

The rows are the same on every run (a fixed random seed, fixed timestamps) and
include what real ERPs hold: cancelled orders and contracts, a soft-deleted
customer, a late-updated order (touched long after its neighbours), NULLs,
zero / negative / very large amounts, unicode and stray whitespace.

>>> rows = sample_rows()
>>> {t: len(r) for t, r in rows.items()}
{'customers': 60, 'orders': 300, 'contracts': 80, 'approval_steps': 240}
>>> sum(r["status"] == "cancelled" for r in rows["orders"])
30
>>> rows["orders"][0]["order_no"], rows["orders"][0]["net_amount"]
('SO-2026-00001', '0.00')
"""

from __future__ import annotations

import os
import random
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import sqlalchemy as sa

from connectors.erp_sql.urls import sqlalchemy_url

from connectors.erp_sql.sample.tables import METADATA

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=timezone.utc)
LATE_ORDER_ID = 7  # updated long after every other order (a late update)
LATE_AT = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
NAMES = ["Acme GmbH", "Zoë Ærø ApS", "東京商事株式会社", "Müller & Söhne KG", "O'Brien Ltd", "Łódź Sp. z o.o.",
         "Café ☕ Crème", "  Trailing Space Inc  ", "Ñandú S.A.", "Δέλτα ΑΕ"]
COUNTRIES = ["DE", "DK", "JP", "AT", "IE", "PL", "FR", None, "ES", "GR"]
STATUSES = ["open", "confirmed", "shipped", "invoiced"]
PRODUCTS = ["CRM Basic", "CRM Pro", "Support 24/7", "Analytics Add-on"]


def _money(rng: random.Random, lo: int, hi: int) -> Decimal:
    return (Decimal(rng.randint(lo * 100, hi * 100)) / 100).quantize(Decimal("0.01"))


def _customers(rng: random.Random) -> list[dict]:
    rows = []
    for i in range(1, 61):
        base = NAMES[i % len(NAMES)]
        rows.append({
            "customer_id": i, "customer_no": f"C-{i:05d}", "name": base if i <= 10 else f"{base.strip()} #{i}",
            "email": None if i % 17 == 0 else (f" Buyer{i}@Example.COM " if i % 5 == 0 else f"buyer{i}@example.com"),
            "phone": None if i % 3 == 0 else f"+49 30 {rng.randint(1000000, 9999999)}",
            "country": COUNTRIES[i % len(COUNTRIES)], "vat_id": None if i % 4 == 0 else f"DE{100000000 + i}",
            "credit_limit": str(_money(rng, 0, 50000)) if i != 13 else None,
            "deleted_at": T0 + timedelta(days=40) if i == 42 else None,
            "created_at": T0 + timedelta(hours=i), "updated_at": T0 + timedelta(hours=i, minutes=30),
        })
    rows[41]["updated_at"] = T0 + timedelta(days=40)  # the soft-deleted customer was touched when deleted
    return rows


def _order_amounts(rng: random.Random, i: int) -> tuple[str, str, str]:
    if i == 1:
        return "0.00", "0.00", "0.00"
    if i == 2:
        return "999999999999.99", "0.00", "999999999999.99"  # the largest NUMERIC(14,2)
    net = -_money(rng, 1, 500) if i % 23 == 0 else _money(rng, 10, 20000)  # a credit note now and then
    tax = (net * Decimal("0.19")).quantize(Decimal("0.01"))
    return str(net), str(tax), str(net + tax)


def _orders(rng: random.Random) -> list[dict]:
    rows = []
    for i in range(1, 301):
        net, tax, gross = _order_amounts(rng, i)
        at = T0 + timedelta(hours=3 * i, seconds=i % 7, microseconds=i * 11)
        rows.append({
            "order_id": i, "order_no": f"SO-2026-{i:05d}", "customer_id": rng.randint(1, 60),
            "order_date": None if i % 50 == 0 else (at - timedelta(days=1)).date(),
            "status": "cancelled" if i % 10 == 3 else STATUSES[rng.randrange(4)],
            "currency": "EUR" if i % 11 else "USD", "net_amount": net, "tax_amount": tax, "gross_amount": gross,
            "sales_rep": None if i % 6 == 0 else f"rep{i % 5}@example.com",
            "note": [None, "", "Lieferung bis Freitag", "急ぎ", "emoji 🚚 ok", "line1\nline2", "quote ' \" ;"][i % 7],
            "created_at": at, "updated_at": at,
        })
    rows[LATE_ORDER_ID - 1]["updated_at"] = LATE_AT
    return rows


def _contracts(rng: random.Random) -> list[dict]:
    return [{
        "contract_id": i, "contract_no": f"K-{i:04d}", "customer_id": (i * 7) % 60 + 1,
        "product": PRODUCTS[i % 4], "start_date": date(2025, 1 + i % 12, 1),
        "end_date": None if i % 5 == 0 else date(2027, 1 + i % 12, 1),
        "annual_value": str(_money(rng, 1000, 120000)),
        "status": "cancelled" if i % 9 == 4 else ("draft" if i % 13 == 0 else "active"),
        "updated_at": T0 + timedelta(hours=5 * i),
    } for i in range(1, 81)]


def _approval_steps(rng: random.Random) -> list[dict]:
    rows = []
    for i in range(1, 241):
        order_id, step_no = (i - 1) // 2 + 1, (i - 1) % 2 + 1
        decision = ["approved", "approved", "rejected", "pending"][rng.randrange(4)]
        at = T0 + timedelta(hours=3 * order_id, minutes=10 * step_no)
        rows.append({
            "step_id": i, "order_id": order_id, "step_no": step_no, "approver": f"manager{step_no}@example.com",
            "decision": decision, "decided_at": None if decision == "pending" else at,
            "comment": None if i % 4 else "Bitte prüfen – Rabatt > 10 %", "updated_at": at,
        })
    return rows


def sample_rows() -> dict[str, list[dict]]:
    """The sample ERP's rows per table (timestamps aware, UTC; amounts as decimal text)."""
    rng = random.Random(20261124)
    return {"customers": _customers(rng), "orders": _orders(rng), "contracts": _contracts(rng),
            "approval_steps": _approval_steps(rng)}


def _for_dialect(rows: list[dict], dialect: str) -> list[dict]:
    if dialect == "postgresql":
        return rows
    # MariaDB DATETIME and SQLite text hold naive UTC
    return [{k: v.replace(tzinfo=None) if isinstance(v, datetime) else v for k, v in r.items()} for r in rows]


def create_sample_erp(url: str, *, schema: str | None = None, replace: bool = True) -> dict[str, int]:
    """Create the sample ERP tables at ``url`` (SQLAlchemy URL) and seed them; returns rows per table.

    ``schema``: a PostgreSQL schema to create the tables in (created if missing).
    """
    engine = sa.create_engine(sqlalchemy_url(url))
    try:
        meta = METADATA
        if schema:
            meta = sa.MetaData(schema=schema)
            for t in METADATA.tables.values():
                t.to_metadata(meta)
        with engine.begin() as con:
            if schema:
                con.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            if replace:
                meta.drop_all(con)
            meta.create_all(con)
            counts = {}
            for name, rows in sample_rows().items():
                table = meta.tables[f"{schema}.{name}" if schema else name]
                con.execute(table.insert(), _for_dialect(rows, engine.dialect.name))
                counts[name] = len(rows)
        return counts
    finally:
        engine.dispose()


def ensure_sample_erp(home) -> str:
    """The SQLite sample ERP at ``<home>/erp.sqlite`` (the erp_orders default), created once; its URL.

    >>> import tempfile
    >>> from connectors.base.home import Home
    >>> home = Home(tempfile.mkdtemp())
    >>> url = ensure_sample_erp(home)
    >>> url == f"sqlite:///{home.root}/erp.sqlite", ensure_sample_erp(home) == url
    (True, True)
    """
    path = home.root / "erp.sqlite"
    url = f"sqlite:///{path}"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".erp.sqlite.tmp-{os.getpid()}")
        create_sample_erp(f"sqlite:///{tmp}")
        os.replace(tmp, path)
    return url
