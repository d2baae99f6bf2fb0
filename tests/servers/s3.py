"""A local S3 server: moto in server mode on a free loopback port, one per test session.

Use from a conftest: ``from tests.servers.s3 import s3_server, s3_bucket  # noqa: F401``.
``s3_bucket`` gives each test its own bucket (so tests running side by side never share
objects) and sets dummy credentials in the environment (boto3's default chain reads them;
the connector config never holds them).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest
from moto.server import ThreadedMotoServer


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str

    def client(self):
        return boto3.session.Session().client("s3", endpoint_url=self.endpoint_url, region_name="us-east-1")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield S3Server(f"http://{host}:{port}")
    finally:
        server.stop()


AWS_TEST_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def new_bucket(server: S3Server) -> str:
    """Create a uniquely named bucket (call with AWS_TEST_ENV set)."""
    name = f"wl-{uuid.uuid4().hex[:12]}"
    server.client().create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_bucket(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch):
    """(server, client, bucket name): a fresh bucket; AWS_* env set to moto's dummy credentials."""
    for k, v in AWS_TEST_ENV.items():
        monkeypatch.setenv(k, v)
    name = new_bucket(s3_server)
    return s3_server, s3_server.client(), name
