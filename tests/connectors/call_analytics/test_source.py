"""CallAnalyticsSource against a real S3 protocol server (moto, loopback) with the real sample files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors.base.home import Home
from connectors.call_analytics.source import CallAnalyticsSource
from connectors.errors import ConfigError

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "call_analytics"
SAMPLES = sorted(DATA.glob("*.json"))
BROKEN = b'{\n "Channel": "VOICE",\n "Transcript": [\n  {"Content": "hi",}\n ]\n}\n'


def _upload(client, bucket, prefix="Analysis/"):
    for p in SAMPLES:
        client.put_object(Bucket=bucket, Key=prefix + p.name, Body=p.read_bytes())


def _source(server, bucket, tmp_path, **extra):
    cfg = {"bucket": bucket, "prefix": "Analysis/", "endpoint_url": server.endpoint_url, **extra}
    return CallAnalyticsSource(cfg, Home(tmp_path))


def _drain(src, stream, state):
    batches = list(src.read(stream, state))
    return batches, (batches[-1].state if batches else state)


def test_reads_every_sample_from_s3_and_keeps_the_facts(s3_bucket, tmp_path):
    server, client, bucket = s3_bucket
    _upload(client, bucket)
    batches, _ = _drain(_source(server, bucket, tmp_path), "calls", {})
    table = batches[0].table
    assert table.num_rows == len(SAMPLES) == 3
    rows = {r["source_file"]: r for r in table.to_pylist()}
    voice = json.loads((DATA / "call_0.json").read_text())
    cc = voice["ConversationCharacteristics"]
    v = rows["Analysis/call_0.json"]
    assert v["channel"] == "VOICE" and v["contact_id"] == "call_0"
    assert v["talk_time"]["total_ms"] == cc["TalkTime"]["TotalTimeMillis"]
    assert v["interruptions"]["count"] == cc["Interruptions"]["TotalCount"]
    assert v["non_talk_time"]["total_ms"] == cc["NonTalkTime"]["TotalTimeMillis"]
    assert [q["score"] for q in v["sentiment"]["customer"]["quarters"]] == [
        q["Score"] for q in cc["Sentiment"]["SentimentByPeriod"]["QUARTER"]["CUSTOMER"]]
    assert v["sentiment"]["customer"]["score"] == cc["Sentiment"]["OverallSentiment"]["CUSTOMER"]
    assert [t["content"] for t in v["transcript"]] == [t["Content"] for t in voice["Transcript"]]
    assert v["issues"] == [d["Text"] for t in voice["Transcript"] for d in t.get("IssuesDetected", [])]
    chat = json.loads((DATA / "chat_0.json").read_text())
    c = rows["Analysis/chat_0.json"]
    assert c["contact_id"] == chat["CustomerMetadata"]["ContactId"]
    assert c["categories"] == chat["Categories"]["MatchedCategories"]
    assert c["talk_time"] is None  # chats have no talk time; null, not zero
    assert c["turn_count"] == sum(1 for t in chat["Transcript"] if t["Type"] == "MESSAGE")
    assert rows["Analysis/chat_1.json"]["redacted"] is True and c["redacted"] is False


def test_customer_signals_follow_the_turns(s3_bucket, tmp_path):
    server, client, bucket = s3_bucket
    _upload(client, bucket)
    (batch,), _ = _drain(_source(server, bucket, tmp_path), "calls", {})
    for r in batch.table.to_pylist():
        mine = [t for t in r["transcript"] if t["role"] == "CUSTOMER"]
        s = r["customer_signals"]
        assert s["turns"] == len(mine)
        assert s["negative_turns"] == sum(t["sentiment"] == "NEGATIVE" for t in mine)
        assert 0 <= s["anger_score"] <= 1
        assert s["negative_turns"] >= 1  # every sample has an upset customer at some point


def test_turns_stream_explodes_the_transcripts(s3_bucket, tmp_path):
    server, client, bucket = s3_bucket
    _upload(client, bucket)
    src = _source(server, bucket, tmp_path)
    (calls,), _ = _drain(src, "calls", {})
    (turns,), _ = _drain(src, "turns", {})
    assert turns.table.num_rows == sum(calls.table.column("turn_count").to_pylist())
    keys = list(zip(turns.table.column("source_file").to_pylist(), turns.table.column("turn_index").to_pylist()))
    assert len(set(keys)) == len(keys)


def test_broken_file_is_rejected_with_line_and_column_and_the_rest_goes_on(s3_bucket, tmp_path):
    server, client, bucket = s3_bucket
    _upload(client, bucket)
    client.put_object(Bucket=bucket, Key="Analysis/broken.json", Body=BROKEN)
    (batch,), _ = _drain(_source(server, bucket, tmp_path), "calls", {})
    assert batch.table.num_rows == 3
    assert batch.rejected.num_rows == 1
    rej = batch.rejected.to_pylist()[0]
    with pytest.raises(json.JSONDecodeError) as err:
        json.loads(BROKEN)
    assert rej["position"] == f"Analysis/broken.json:{err.value.lineno}:{err.value.colno}"
    assert "invalid JSON" in rej["reason"] and rej["raw"] == BROKEN
    assert batch.read_count == 4  # read = good + rejected


def test_drift_changed_type_is_quarantined_new_field_is_kept(s3_bucket, tmp_path):
    server, client, bucket = s3_bucket
    doc = json.loads((DATA / "call_0.json").read_text())
    doc["ConversationCharacteristics"]["TalkTime"]["TotalTimeMillis"] = "28698ms"
    client.put_object(Bucket=bucket, Key="Analysis/changed.json", Body=json.dumps(doc).encode())
    doc = json.loads((DATA / "call_0.json").read_text())
    doc["ConversationCharacteristics"]["Loudness"] = {"Peak": 91.5}
    client.put_object(Bucket=bucket, Key="Analysis/newfield.json", Body=json.dumps(doc).encode())
    (batch,), _ = _drain(_source(server, bucket, tmp_path), "calls", {})
    assert batch.table.column("source_file").to_pylist() == ["Analysis/newfield.json"]
    row = batch.table.to_pylist()[0]
    assert row["new_fields"] == ["ConversationCharacteristics.Loudness"]
    assert json.loads(row["extra"]) == {"ConversationCharacteristics.Loudness": {"Peak": 91.5}}
    (reason,) = batch.rejected.column("reason").to_pylist()
    assert "ConversationCharacteristics.TalkTime.TotalTimeMillis" in reason and "changed type" in reason


def test_incremental_by_key_and_last_modified(s3_bucket, tmp_path):
    server, client, bucket = s3_bucket
    _upload(client, bucket)
    src = _source(server, bucket, tmp_path, batch_files=2)
    batches, state = _drain(src, "calls", {})
    assert [b.table.num_rows for b in batches] == [2, 1]
    assert _drain(src, "calls", state)[0] == []  # nothing new
    client.put_object(Bucket=bucket, Key="Analysis/late_analysis_2026.json", Body=(DATA / "call_0.json").read_bytes())
    again, state2 = _drain(src, "calls", state)
    assert [r["contact_id"] for b in again for r in b.table.to_pylist()] == ["late"]
    assert "Analysis/late_analysis_2026.json" in state2["keys"]


def test_same_instant_files_are_read_once_each(s3_bucket, tmp_path):
    """S3 LastModified has second precision: files in the same second are told apart by key."""
    server, client, bucket = s3_bucket
    _upload(client, bucket)
    src = _source(server, bucket, tmp_path, batch_files=1)
    seen, state = [], {}
    for _ in range(5):
        batches = list(src.read("calls", state))
        if not batches:
            break
        seen.append(batches[0].table.column("source_file")[0].as_py())
        state = batches[0].state  # land one batch, persist, "crash", resume
    assert sorted(seen) == ["Analysis/" + p.name for p in SAMPLES]


def test_folder_source_reads_the_samples_in_place(tmp_path):
    src = CallAnalyticsSource({"path": str(DATA)}, Home(tmp_path))
    (batch,) = list(src.read("calls", {}))
    assert sorted(batch.table.column("source_file").to_pylist()) == [p.name for p in SAMPLES]


def test_credentials_in_config_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="secrets do not belong"):
        CallAnalyticsSource({"bucket": "b", "aws_secret_access_key": "x"}, Home(tmp_path))


def test_batches_stamp_and_land_as_the_runner_does(tmp_path):
    from connectors.base.identity import record_id, stamp
    from connectors.landing import land, read_landed

    src = CallAnalyticsSource({"path": str(DATA)}, Home(tmp_path))
    for stream in src.streams:
        (batch,) = list(src.read(stream.name, {}))
        t = stamp(batch.table, system=src.system, stream=stream.name, key=list(stream.key),
                  position=stream.position, load_id="L1")
        land(t, src.home, src.system, stream.name, "L1")
        back = read_landed(src.home, src.system, stream.name, "L1")
        assert back.num_rows == batch.table.num_rows
        first = back.slice(0, 1).to_pylist()[0]
        key = "\x1f".join(str(first[k]) for k in stream.key)
        assert first["_wl_record_id"] == record_id(src.system, stream.name, key, first["version"])
    ids = read_landed(src.home, src.system, "calls", "L1").column("_wl_record_id").to_pylist()
    assert len(set(ids)) == 3  # raw and redacted chat: one contact, two versions, two ids


def test_s3_down_is_retriable(monkeypatch, tmp_path):
    import socket

    from connectors.errors import RetriableError

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    src = CallAnalyticsSource({"bucket": "b", "endpoint_url": f"http://127.0.0.1:{port}", "retries": 2, "timeout": 2},
                              Home(tmp_path))
    with pytest.raises(RetriableError, match="listing s3://b/"):
        list(src.read("calls", {}))


def test_missing_bucket_is_a_config_error(s3_bucket, tmp_path):
    server, _, _ = s3_bucket
    src = CallAnalyticsSource({"bucket": "wl-no-such-bucket", "endpoint_url": server.endpoint_url}, Home(tmp_path))
    with pytest.raises(ConfigError, match="NoSuchBucket"):
        list(src.read("calls", {}))
