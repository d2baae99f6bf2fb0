"""SourceStream: records come from the source's batches; rejected inputs become warnings."""

import json
import logging

from singer_sdk.testing import SuiteConfig, TapTestRunner

from connectors.web_analytics.generator import generate_events, write_jsonl
from connectors.web_analytics.tap import WebAnalyticsTap


def test_rejected_lines_are_logged_and_good_ones_emitted(tmp_path, caplog):
    evs = generate_events(12, seed=4)
    write_jsonl(evs[:6], tmp_path / "a.jsonl")
    (tmp_path / "b.jsonl").write_text("\n".join([json.dumps(e) for e in evs[6:]] + ["{broken"]) + "\n")
    runner = TapTestRunner(WebAnalyticsTap, config={"path": str(tmp_path)}, suite_config=SuiteConfig(max_records_limit=None))
    with caplog.at_level(logging.WARNING):
        runner.sync_all()
    assert [r["message_id"] for r in runner.records["events"]] == [e["messageId"] for e in evs]
    assert any("rejected b.jsonl:7" in m for m in caplog.messages)
