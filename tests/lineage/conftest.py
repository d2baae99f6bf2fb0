"""Fixtures for the lineage tests: homes, stores, PostgreSQL and a local S3 server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from connectors.base.home import Home
from lineage.store import open_store

sys.path.insert(0, str(Path(__file__).parent))  # the pipeline helpers, also for child processes
from lineage_pipeline import run_pipeline  # noqa: E402

@pytest.fixture
def home(tmp_path, monkeypatch) -> Home:
    monkeypatch.delenv("WEFTLINE_SUBJECT_KEY", raising=False)
    monkeypatch.delenv("WEFTLINE_LINEAGE_URL", raising=False)
    monkeypatch.delenv("WEFTLINE_LINEAGE_SEGMENTS", raising=False)
    return Home(tmp_path / "home")


@pytest.fixture
def store(home):
    return open_store(home)


@pytest.fixture
def ran(store):
    """A store after one full run of :data:`ROWS` (load id L1)."""
    run_pipeline(store, "20261124T080000000000Z-0000000a")
    return store


# -- services: PostgreSQL + a local S3 server ------------------------------------------------------

PG_URL = "postgresql://postgres:x@127.0.0.1:5432/test"


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session")
def postgres() -> str:
    if not _port_open(5432):
        versions = os.listdir("/etc/postgresql")
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", versions[0], "main", "start"], check=False)
        for _ in range(50):
            if _port_open(5432):
                break
            time.sleep(0.2)
    if not _port_open(5432):
        pytest.fail("PostgreSQL at 127.0.0.1:5432 is down and could not be started")
    return PG_URL


@pytest.fixture(scope="session")
def s3_server():
    """moto in server mode on a free loopback port: a real HTTP S3 API (served from a thread)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def remote(s3_server, postgres, monkeypatch):
    """(url, segments, schema) of a fresh PostgreSQL schema + S3 bucket for this test."""
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    name = "wl_lin_" + uuid.uuid4().hex[:10]
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=name.replace("_", "-"))
    yield postgres, f"s3://{name.replace('_', '-')}/lineage", name
    import psycopg2

    con = psycopg2.connect(postgres)
    con.autocommit = True
    con.cursor().execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    con.close()


@pytest.fixture
def remote_store(home, remote):
    url, segments, schema = remote
    return open_store(home, url=url, segments=segments, schema=schema)


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]
