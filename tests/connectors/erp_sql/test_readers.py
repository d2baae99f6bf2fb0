"""Failures keep the cursor where it was: a dead server or a killed connection is a RetriableError."""

from __future__ import annotations

import socket

import pytest
import sqlalchemy as sa

from connectors.erp_sql import ErpSqlSource
from connectors.erp_sql.readers import open_reader
from connectors.errors import ConfigError, RetriableError

pytestmark = pytest.mark.services


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("scheme", ["postgresql", "mysql"])
def test_dead_server_is_retriable_and_names_it_without_the_password(scheme, home):
    url = f"{scheme}://erp:topsecret@127.0.0.1:{free_port()}/erp"
    state = {"cursor": "2026-01-01T00:00:00+00:00", "seen": []}
    with pytest.raises(RetriableError) as info:
        list(ErpSqlSource({"url": url}, home).read("orders", state))
    msg = str(info.value)
    assert f"erp:***@127.0.0.1" in msg and "topsecret" not in msg
    assert state == {"cursor": "2026-01-01T00:00:00+00:00", "seen": []}  # untouched


def test_unopenable_sqlite_is_retriable(home, tmp_path):
    with pytest.raises(RetriableError, match="unable to open"):
        list(ErpSqlSource({"url": f"sqlite:///{tmp_path}/no/such/dir/erp.sqlite"}, home).read("orders", {}))


def test_adbc_only_for_postgresql():
    with pytest.raises(ConfigError, match="PostgreSQL only"):
        open_reader("sqlite:///x.db", "adbc")


def _grow(erp, rows: int) -> None:
    """Add many approval steps so a read spans several batches and network round trips."""
    t = erp.table("approval_steps")
    if erp.kind == "postgresql":
        erp.execute(f"INSERT INTO {t} (step_id, order_id, step_no, approver, comment, updated_at) "
                    f"SELECT 1000 + g, 1, 1, 'bulk@example.com', repeat('x', 200), "
                    f"timestamptz '2026-05-01' + g * interval '1 second' FROM generate_series(1, {rows}) g")
    else:
        erp.execute(f"INSERT INTO {t} (step_id, order_id, step_no, approver, comment, updated_at) "
                    f"SELECT 1000 + seq, 1, 1, 'bulk@example.com', repeat('x', 200), "
                    f"timestamp '2026-05-01 00:00:00' + interval seq second FROM seq_1_to_{rows}")


def _kill(erp) -> int:
    if erp.kind == "postgresql":
        sql = ("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
               "WHERE application_name = 'wl_erp_kill_test' AND pid <> pg_backend_pid()")
        with erp.engine.begin() as con:
            return con.execute(sa.text(sql)).scalar()
    db = erp.url.rsplit("/", 1)[1]
    with erp.engine.begin() as con:
        ids = con.execute(sa.text("SELECT id FROM information_schema.processlist WHERE db = :db "
                                  "AND id <> CONNECTION_ID() AND info LIKE 'SELECT%'"), {"db": db}).scalars().all()
        for i in ids:
            con.execute(sa.text(f"KILL {int(i)}"))
    return len(ids)


@pytest.mark.parametrize("erp", ["postgresql", "mariadb"], indirect=True)
def test_killed_connection_mid_read_is_retriable_and_earlier_batches_keep_their_state(erp, home):
    _grow(erp, 60_000)
    url = erp.url + ("?application_name=wl_erp_kill_test" if erp.kind == "postgresql" else "")
    config = {**erp.config, "url": url, "reader": "sqlalchemy", "batch_size": 1000}
    batches = ErpSqlSource(config, home).read("approval_steps", {})
    first = next(batches)
    assert first.table.num_rows == 1000
    assert _kill(erp) >= 1
    with pytest.raises(RetriableError, match="unreachable or failed"):
        for _ in batches:
            pass
    # only what was yielded (and so landed) may advance the cursor: batch 1's state covers batch 1 only
    top = max(first.table.column("updated_at").to_pylist())
    assert first.state["cursor"] == top.isoformat() < "2026-05-01T16:40:00"  # the last bulk row's time


def test_the_postgresql_reader_reads_without_jit_or_parallel_workers():
    """One ordered scan per read: no JIT compile, no parallel workers on the ERP's server."""
    reader = open_reader("postgresql://postgres:x@127.0.0.1:5432/test")
    try:
        got = [t.to_pylist() for t in reader.batches("SELECT current_setting('jit') AS jit, "
                                                    "current_setting('max_parallel_workers_per_gather') AS workers",
                                                    [], batch_size=10)]
    finally:
        reader.close()
    assert got == [[{"jit": "off", "workers": "0"}]]
