"""singer-sdk's built-in tap test suite, against the real sample files in a local S3 server (moto)."""

from pathlib import Path

import pytest
from singer_sdk.testing import get_tap_test_class

from connectors.call_analytics.tap import CallAnalyticsTap
from tests.servers.s3 import AWS_TEST_ENV, new_bucket

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "call_analytics"

# The suite builds its test class at import time; the server starts later, so the fixture
# below fills in the bucket and endpoint before the suite's class-scoped runner syncs.
CONFIG = {"bucket": "placeholder", "prefix": "Analysis/", "endpoint_url": "http://127.0.0.1:9"}

_Suite = get_tap_test_class(CallAnalyticsTap, config=CONFIG)


class TestCallAnalyticsTap(_Suite):
    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def _bucket_with_samples(cls, s3_server):
        with pytest.MonkeyPatch.context() as mp:
            for k, v in AWS_TEST_ENV.items():
                mp.setenv(k, v)
            bucket = new_bucket(s3_server)
            client = s3_server.client()
            for p in sorted(DATA.glob("*.json")):
                client.put_object(Bucket=bucket, Key=f"Analysis/{p.name}", Body=p.read_bytes())
            CONFIG.update(bucket=bucket, endpoint_url=s3_server.endpoint_url)
            yield


def test_suite_really_read_the_samples(s3_bucket):
    """The suite above passes vacuously if nothing is read; check a sync returns every file."""
    server, client, bucket = s3_bucket
    for p in sorted(DATA.glob("*.json")):
        client.put_object(Bucket=bucket, Key=f"Analysis/{p.name}", Body=p.read_bytes())
    from singer_sdk.testing import TapTestRunner

    runner = TapTestRunner(CallAnalyticsTap, config={"bucket": bucket, "prefix": "Analysis/",
                                                     "endpoint_url": server.endpoint_url})
    runner.sync_all()
    assert sorted(r["source_file"] for r in runner.records["calls"]) == [f"Analysis/{p.name}" for p in sorted(DATA.glob("*.json"))]
    assert len(runner.records["turns"]) == sum(r["turn_count"] for r in runner.records["calls"])
    assert runner.state_messages[-1]["value"]["bookmarks"]["calls"]["replication_key_value"]
