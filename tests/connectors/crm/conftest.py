"""Fixtures for the CRM destination tests: mapped batches in the engine's output shape,
a real PostgreSQL schema per test (started if it is down), a local S3 server.

The batches are built here rather than by the mapping engine so that each destination test
controls exactly which keys, values and types it loads; ``test_engine_output.py`` loads the
real engine's output on the sample spec.
"""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator

import adbc_driver_postgresql.dbapi as adbc
import pyarrow as pa
import pytest

from connectors.base.identity import record_id
from connectors.base.reserved import (
    INPUT_RECORD_ID,
    LOAD_ID,
    RECORD_ID,
    RULES,
    SPEC_ID,
    SPEC_VERSION,
    SUBJECT,
)
from tests.servers.s3 import s3_bucket, s3_server  # noqa: F401

PG_URL = "postgresql://postgres:x@127.0.0.1:5432/test"
PG_START = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"


def lead_batch(keys: list[int], load_id: str, *, version: str = "v1", **extra: list) -> pa.Table:
    """Mapped leads ``WEB-<k>`` with every reserved column the engine stamps."""
    ext = [f"WEB-{k}" for k in keys]
    cols = {
        "external_id": pa.array(ext, pa.string()),
        "email": pa.array([f"user{k}@example.org" for k in keys], pa.string()),
        "priority": pa.array([("high", "medium", "low")[k % 3] for k in keys], pa.string()),
        "score": pa.array([k * 1.5 for k in keys], pa.float64()),
        RECORD_ID: pa.array([record_id("crm", "lead", e, None) for e in ext], pa.string()),
        INPUT_RECORD_ID: pa.array([record_id("web_analytics", "form_submissions", str(k), version) for k in keys]),
        SPEC_ID: pa.array(["web_activity_to_lead"] * len(keys)),
        SPEC_VERSION: pa.array([version] * len(keys)),
        RULES: pa.array([k % 4 for k in keys], pa.int64()),
        SUBJECT: pa.array([f"{k:064x}" for k in keys]),
        LOAD_ID: pa.array([load_id] * len(keys)),
    }
    cols.update({name: pa.array(values) for name, values in extra.items()})
    return pa.table(cols)


def rows(table: pa.Table) -> list[dict]:
    """Rows sorted by record id, columns in name order: comparable across destinations."""
    t = table.select(sorted(table.column_names))
    return sorted(t.to_pylist(), key=lambda r: r[RECORD_ID])


@pytest.fixture
def batch() -> Callable[..., pa.Table]:
    return lead_batch


def _pg_up() -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", 5432)) == 0


@pytest.fixture(scope="session")
def postgres() -> str:
    """The real PostgreSQL at 127.0.0.1:5432, started when it is down; fails clearly otherwise."""
    if not _pg_up():
        subprocess.run(PG_START, shell=True, check=False, capture_output=True)
        for _ in range(60):
            if _pg_up():
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"PostgreSQL is down at 127.0.0.1:5432 and `{PG_START}` did not start it", pytrace=False)
    return PG_URL


@pytest.fixture
def pg_url(postgres: str) -> Iterator[Callable[..., str]]:
    """``pg_url(fast_path=True)``: a destination URL on a fresh schema, dropped (with dlt's
    staging schema) after the test."""
    made: list[str] = []

    def new(fast_path: bool = True) -> str:
        made.append(f"wl_crm_test_{uuid.uuid4().hex[:10]}")
        return f"{postgres}?schema={made[-1]}&fast_path={str(fast_path).lower()}"

    yield new
    with adbc.connect(postgres) as con, con.cursor() as cur:
        for name in made:
            for schema in (name, f"{name}_staging"):
                cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        con.commit()
