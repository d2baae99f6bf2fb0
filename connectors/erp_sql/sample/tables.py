"""The sample ERP's DDL, once for PostgreSQL, MariaDB and SQLite (SQLAlchemy Core).

Timestamps are UTC: ``timestamptz`` in PostgreSQL, ``DATETIME(6)`` in MariaDB,
ISO text in SQLite. Decimals are ``NUMERIC(14,2)``, but text in SQLite (it has
no exact decimal type; REAL would round).

>>> sorted(METADATA.tables)
['approval_steps', 'contracts', 'customers', 'orders']
"""

from __future__ import annotations

from sqlalchemy import Column, Date, DateTime, Integer, MetaData, Numeric, String, Table, Text
from sqlalchemy.dialects import mysql

METADATA = MetaData()


def _ts() -> DateTime:
    return DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def _money() -> Numeric:
    return Numeric(14, 2).with_variant(String(40), "sqlite")


customers = Table(
    "customers", METADATA,
    Column("customer_id", Integer, primary_key=True, autoincrement=False),
    Column("customer_no", String(20)),
    Column("name", String(200)),
    Column("email", String(200)),
    Column("phone", String(40)),
    Column("country", String(2)),
    Column("vat_id", String(30)),
    Column("credit_limit", _money()),
    Column("deleted_at", _ts()),
    Column("created_at", _ts()),
    Column("updated_at", _ts(), nullable=False, index=True),
)

orders = Table(
    "orders", METADATA,
    Column("order_id", Integer, primary_key=True, autoincrement=False),
    Column("order_no", String(20)),
    Column("customer_id", Integer),
    Column("order_date", Date),
    Column("status", String(20)),
    Column("currency", String(3)),
    Column("net_amount", _money()),
    Column("tax_amount", _money()),
    Column("gross_amount", _money()),
    Column("sales_rep", String(200)),
    Column("note", Text),
    Column("created_at", _ts()),
    Column("updated_at", _ts(), nullable=False, index=True),
)

contracts = Table(
    "contracts", METADATA,
    Column("contract_id", Integer, primary_key=True, autoincrement=False),
    Column("contract_no", String(20)),
    Column("customer_id", Integer),
    Column("product", String(100)),
    Column("start_date", Date),
    Column("end_date", Date),
    Column("annual_value", _money()),
    Column("status", String(20)),
    Column("updated_at", _ts(), nullable=False, index=True),
)

approval_steps = Table(
    "approval_steps", METADATA,
    Column("step_id", Integer, primary_key=True, autoincrement=False),
    Column("order_id", Integer),
    Column("step_no", Integer),
    Column("approver", String(200)),
    Column("decision", String(20)),
    Column("decided_at", _ts()),
    Column("comment", Text),
    Column("updated_at", _ts(), nullable=False, index=True),
)
