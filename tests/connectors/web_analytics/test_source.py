"""WebAnalyticsSource over the paging REST server and over JSONL drops (folder and S3)."""

import json

import pytest

from connectors.base.home import Home
from connectors.errors import RetriableError
from connectors.web_analytics.generator import generate_events, write_jsonl
from connectors.web_analytics.source import WebAnalyticsSource

FAST = {"backoff": 0.05, "backoff_max": 0.2, "timeout": 0.5}


def test_rest_batches_per_page_with_cursor_state_and_incremental(paging_api, tmp_path):
    evs = generate_events(120, seed=8)
    paging_api.reset(events=evs[:100])
    src = WebAnalyticsSource({"url": paging_api.url, "page_size": 30, **FAST}, Home(tmp_path))
    batches = list(src.read("events", {}))
    assert [b.table.num_rows for b in batches] == [30, 30, 30, 10]
    assert [m for b in batches for m in b.table.column("message_id").to_pylist()] == [e["messageId"] for e in evs[:100]]
    paging_api.state.events = evs
    more = list(src.read("events", batches[-1].state))
    assert [m for b in more for m in b.table.column("message_id").to_pylist()] == [e["messageId"] for e in evs[100:]]


def test_rest_form_submissions_stream(paging_api, tmp_path):
    evs = generate_events(150, seed=8)
    paging_api.reset(events=evs)
    src = WebAnalyticsSource({"url": paging_api.url, "page_size": 50, **FAST}, Home(tmp_path))
    got = [r for b in src.read("form_submissions", {}) for r in b.table.to_pylist()]
    assert [r["submission_id"] for r in got] == [
        e["properties"]["submission_id"] for e in evs if e.get("event") == "form_submitted"]


def test_rest_failure_mid_run_keeps_the_state_of_the_last_landed_page(paging_api, tmp_path):
    paging_api.reset(events=generate_events(90, seed=8), script=["ok"] + ["500"] * 20)
    src = WebAnalyticsSource({"url": paging_api.url, "page_size": 30, **FAST, "retries": 1}, Home(tmp_path))
    landed_state = {}
    with pytest.raises(RetriableError):
        for b in src.read("events", {}):
            landed_state = b.state  # the runner persists this after landing
    paging_api.reset(events=paging_api.state.events)
    rest = [b.table.num_rows for b in src.read("events", landed_state)]
    assert rest == [30, 30]  # resumed after the one page that landed


def test_drops_reject_bad_lines_and_read_each_file_once(tmp_path):
    drops = tmp_path / "drops"
    drops.mkdir()
    evs = generate_events(50, seed=8)
    write_jsonl(evs[:25], drops / "a.jsonl")
    lines = [json.dumps(e) for e in evs[25:]]
    lines[4] = lines[4][:-7]  # cut short
    (drops / "b.jsonl").write_text("\n".join(lines) + "\n")
    src = WebAnalyticsSource({"path": str(drops)}, Home(tmp_path / "home"))
    batches = list(src.read("events", {}))
    assert [(b.table.num_rows, b.rejected.num_rows) for b in batches] == [(25, 0), (24, 1)]
    assert batches[1].rejected.column("position").to_pylist() == ["b.jsonl:5"]
    assert sum(b.read_count for b in batches) == 50
    assert list(src.read("events", batches[-1].state)) == []


def test_drops_from_s3(s3_bucket, tmp_path):
    server, client, bucket = s3_bucket
    evs = generate_events(40, seed=8)
    body = "".join(json.dumps(e) + "\n" for e in evs).encode()
    client.put_object(Bucket=bucket, Key="web/2026-11-24.jsonl", Body=body)
    src = WebAnalyticsSource({"bucket": bucket, "prefix": "web/", "endpoint_url": server.endpoint_url}, Home(tmp_path))
    (b,) = list(src.read("form_submissions", {}))
    assert b.table.num_rows == sum(1 for e in evs if e.get("event") == "form_submitted")


def test_batches_stamp_and_land_as_the_runner_does(tmp_path):
    from connectors.base.identity import stamp
    from connectors.landing import land, read_landed

    evs = generate_events(60, seed=8)
    evs[3]["properties"]["ab_variant"] = "b"  # a new field travels through landing too
    write_jsonl(evs, tmp_path / "a.jsonl")
    src = WebAnalyticsSource({"path": str(tmp_path)}, Home(tmp_path / "home"))
    for stream in src.streams:
        (batch,) = list(src.read(stream.name, {}))
        t = stamp(batch.table, system=src.system, stream=stream.name, key=list(stream.key),
                  position=stream.position, load_id="L1")
        land(t, src.home, src.system, stream.name, "L1")
        back = read_landed(src.home, src.system, stream.name, "L1")
        assert back.num_rows == batch.table.num_rows
        assert len(set(back.column("_wl_record_id").to_pylist())) == back.num_rows
    assert read_landed(src.home, src.system, "events", "L1").to_pylist()[3]["properties"]["ab_variant"] == "b"
