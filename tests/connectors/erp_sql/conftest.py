"""Real ERP databases for the erp_sql tests: PostgreSQL (127.0.0.1:5432), MariaDB (:3306), SQLite.

The services are started if they are down and the session fails clearly if they cannot be.
Each test gets its own PostgreSQL schema / MariaDB database / SQLite file, seeded with the
sample ERP, and drops it afterwards.
"""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from connectors.base.home import Home
from connectors.erp_sql.sample import create_sample_erp
from connectors.erp_sql.urls import sqlalchemy_url

PG_URL = "postgresql://postgres:x@127.0.0.1:5432/test"
MARIA_ROOT = "mysql://root@127.0.0.1:3306/test"
START = {
    5432: "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    3306: "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd",
}


def _up(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def ensure_service(port: int) -> None:
    if _up(port):
        return
    subprocess.run(START[port], shell=True, check=False, capture_output=True)
    for _ in range(60):
        if _up(port):
            return
        time.sleep(0.5)
    pytest.fail(f"service on 127.0.0.1:{port} is down and `{START[port]}` did not start it", pytrace=False)


@pytest.fixture(scope="session")
def postgres() -> str:
    ensure_service(5432)
    return PG_URL


@pytest.fixture(scope="session")
def mariadb() -> str:
    ensure_service(3306)
    return MARIA_ROOT


@dataclass
class Erp:
    """One seeded sample ERP: its config for ErpSqlSource and a way to change its rows."""

    kind: str
    url: str
    schema: str | None
    engine: sa.Engine

    @property
    def config(self) -> dict:
        return {"url": self.url, "schema": self.schema} if self.schema else {"url": self.url}

    def table(self, name: str) -> str:
        q = "`" if self.kind == "mariadb" else '"'
        return f'{q}{self.schema}{q}.{q}{name}{q}' if self.schema else f"{q}{name}{q}"

    def ts(self, value: datetime):
        """A bind value for a UTC timestamp column in this database."""
        if self.kind == "postgresql":
            return value
        naive = value.astimezone(timezone.utc).replace(tzinfo=None)
        return naive.strftime("%Y-%m-%d %H:%M:%S.%f") if self.kind == "sqlite" else naive

    def execute(self, sql: str, **params) -> None:
        with self.engine.begin() as con:
            con.execute(sa.text(sql), params)


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path / "home")


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def erp(request, tmp_path: Path):
    name = f"erp_{uuid.uuid4().hex[:10]}"
    kind = request.param
    if kind == "sqlite":
        url, schema = f"sqlite:///{tmp_path}/erp.sqlite", None
        drop = None
    elif kind == "postgresql":
        url, schema = request.getfixturevalue("postgres"), name
        drop = f'DROP SCHEMA IF EXISTS "{name}" CASCADE'
    else:
        root = sa.create_engine(sqlalchemy_url(request.getfixturevalue("mariadb")))
        with root.begin() as con:
            con.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
        root.dispose()
        url, schema = f"mysql://root@127.0.0.1:3306/{name}", None
        drop = f"DROP DATABASE IF EXISTS `{name}`"
    create_sample_erp(url, schema=schema)
    engine = sa.create_engine(sqlalchemy_url(url))
    try:
        yield Erp(kind, url, schema, engine)
    finally:
        if drop:
            with engine.begin() as con:
                con.execute(sa.text(drop))
        engine.dispose()
