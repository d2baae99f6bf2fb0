"""The REST reader against a real HTTP server on loopback that pages, throttles and fails (seeded)."""

import time

import pytest

from connectors.errors import ConfigError, RetriableError
from connectors.web_analytics.generator import generate_events
from connectors.web_analytics.rest import RestConfig, pages

FAST = {"backoff": 0.05, "backoff_max": 0.2, "timeout": 0.5}


def _cfg(api, **kw):
    return RestConfig.from_config({"url": api.url, **FAST, **kw})


def test_pages_through_everything_in_order(paging_api):
    evs = generate_events(230, seed=1)
    paging_api.reset(events=evs)
    got = list(pages(_cfg(paging_api, page_size=50), {}))
    assert [p.count for p in got] == [50, 50, 50, 50, 30]
    assert paging_api.statuses() == [200] * 5


def test_cursor_resumes_after_the_last_page_and_picks_up_new_events(paging_api):
    evs = generate_events(60, seed=1)
    paging_api.reset(events=evs[:40])
    first = list(pages(_cfg(paging_api, page_size=25), {}))
    cursor = first[-1].cursor
    assert list(pages(_cfg(paging_api, page_size=25), {"cursor": cursor})) == []
    paging_api.state.events = evs  # 20 more arrive
    later = list(pages(_cfg(paging_api, page_size=25), {"cursor": cursor}))
    assert sum(p.count for p in later) == 20


def test_429_is_retried_after_retry_after(paging_api):
    paging_api.reset(events=generate_events(10, seed=1), script=["429"], retry_after=1)
    (page,) = list(pages(_cfg(paging_api), {}))
    assert page.count == 10
    hits = paging_api.state.hits
    assert [h.status for h in hits] == [429, 200]
    assert hits[1].at - hits[0].at >= 0.95  # waited Retry-After, not the 0.05 s backoff


def test_5xx_and_slow_responses_are_retried(paging_api):
    paging_api.reset(events=generate_events(10, seed=1), script=["500", "slow", "500"], slow_seconds=1.0)
    (page,) = list(pages(_cfg(paging_api, retries=4), {}))
    assert page.count == 10
    assert [h.fault for h in paging_api.state.hits] == ["500", "slow", "500", "ok"]


def test_seeded_flaky_server_still_yields_every_event_once(paging_api):
    evs = generate_events(300, seed=3)
    paging_api.reset(events=evs, rates={"429": 0.1, "500": 0.15, "slow": 0.05}, seed=11, retry_after=0, slow_seconds=0.7)
    got = list(pages(_cfg(paging_api, page_size=15, retries=8), {}))
    assert sum(p.count for p in got) == 300
    faults = [h.fault for h in paging_api.state.hits]
    assert {"429", "500"} <= set(faults)  # the seed really produced faults


def test_persistent_failure_is_retriable_and_the_cursor_stays(paging_api):
    paging_api.reset(events=generate_events(100, seed=1), script=["ok"] + ["500"] * 10)
    it = pages(_cfg(paging_api, page_size=40, retries=2), {})
    first = next(it)
    with pytest.raises(RetriableError, match="after 2 retries"):
        next(it)
    assert first.count == 40  # the first page's cursor is the last one handed out
    assert paging_api.statuses() == [200, 500, 500, 500]


def test_unauthorised_is_a_config_error_and_token_comes_from_env(paging_api, monkeypatch):
    paging_api.reset(events=generate_events(3, seed=1), token="s3cret")
    with pytest.raises(ConfigError, match="401"):
        list(pages(_cfg(paging_api), {}))
    monkeypatch.setenv("WL_TEST_WEB_TOKEN", "s3cret")
    (page,) = list(pages(_cfg(paging_api, token_env="WL_TEST_WEB_TOKEN"), {}))
    assert page.count == 3
    with pytest.raises(ConfigError, match="does not belong"):
        RestConfig.from_config({"url": paging_api.url, "token": "s3cret"})


def test_dead_server_is_retriable():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    t0 = time.monotonic()
    with pytest.raises(RetriableError):
        list(pages(RestConfig.from_config({"url": f"http://127.0.0.1:{port}/v1/events", **FAST, "retries": 2}), {}))
    assert time.monotonic() - t0 < 10
