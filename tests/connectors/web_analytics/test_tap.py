"""singer-sdk's built-in tap test suite against the paging REST server (which throttles and fails)."""

import pytest
from singer_sdk.testing import SuiteConfig, TapTestRunner, get_tap_test_class

from connectors.web_analytics.generator import generate_events
from connectors.web_analytics.tap import WebAnalyticsTap
from tests.servers.paging_api import start_paging_api

FAST = {"backoff": 0.05, "backoff_max": 0.2, "timeout": 0.5, "retries": 6, "page_size": 40}
# The suite builds its test class at import time; the server starts in the fixture below.
CONFIG = {"url": "http://127.0.0.1:9/v1/events", **FAST}

_Suite = get_tap_test_class(WebAnalyticsTap, config=CONFIG)


@pytest.fixture(scope="module")
def flaky_api():
    server, api = start_paging_api()
    api.reset(events=generate_events(200, seed=21), rates={"429": 0.05, "500": 0.1}, seed=5, retry_after=0)
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()


class TestWebAnalyticsTap(_Suite):
    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def _api(cls, flaky_api):
        CONFIG["url"] = flaky_api.url
        yield


def test_tap_resumes_from_its_bookmark(flaky_api):
    everything = SuiteConfig(max_records_limit=None)
    runner = TapTestRunner(WebAnalyticsTap, config={**CONFIG, "url": flaky_api.url}, suite_config=everything)
    runner.sync_all()
    events = runner.records["events"]
    assert [e["message_id"] for e in events] == [e["messageId"] for e in flaky_api.state.events]
    forms = runner.records["form_submissions"]
    assert forms and all(f["contact"]["email"] and f["activity"]["level"] in "ABC" for f in forms)
    bookmark = runner.state_messages[-1]["value"]["bookmarks"]["events"]["replication_key_value"]
    resumed = TapTestRunner(WebAnalyticsTap, config={**CONFIG, "url": flaky_api.url}, suite_config=everything,
                            state={"bookmarks": {"events": {"replication_key": "received_at",
                                                            "replication_key_value": bookmark}}})
    resumed.sync_all()
    assert 0 < len(resumed.records["events"]) < len(events)  # only the last instant again (inclusive)
    assert {"429", "500"} & {h.fault for h in flaky_api.state.hits}  # it was read through real faults
