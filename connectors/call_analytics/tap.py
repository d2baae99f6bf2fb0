"""tap-weftline-call-analytics: the call-analytics source as a Singer tap (singer-sdk).

Run: ``python -m connectors.call_analytics.tap --config config.json [--state state.json]``
with ``{"path": DIR}`` or ``{"bucket": B, "prefix": P, "endpoint_url": U}``; AWS credentials
from the environment (boto3's default chain), never from the config file.
Streams ``calls`` and ``turns`` are incremental on ``last_modified``.

>>> tap = CallAnalyticsTap(config={"path": "../shared/data/call_analytics"}, validate_config=True)
>>> sorted(tap.streams), tap.streams["calls"].primary_keys
(['calls', 'turns'], ['contact_id', 'source_file'])
"""

from __future__ import annotations

from typing import Any

from singer_sdk import Tap
from singer_sdk import typing as th

from connectors.base.home import Home
from connectors.call_analytics.reader import CALLS, SCHEMAS, TURNS
from connectors.call_analytics.source import CallAnalyticsSource
from connectors.singer.stream import SourceStream


class _CallStream(SourceStream):
    replication_key = "last_modified"
    is_sorted = True  # files are read oldest first

    def source_state(self, start: Any):
        return {"last_modified": str(start), "keys": []}  # inclusive, as Singer bookmarks are


class CallsStream(_CallStream):
    name = CALLS
    schema_name = SCHEMAS[CALLS]
    primary_keys = ["contact_id", "source_file"]  # a raw and a redacted analysis of one contact are two files


class TurnsStream(_CallStream):
    name = TURNS
    schema_name = SCHEMAS[TURNS]
    primary_keys = ["contact_id", "source_file", "turn_index"]


class CallAnalyticsTap(Tap):
    name = "tap-weftline-call-analytics"
    config_jsonschema = th.PropertiesList(
        th.Property("path", th.StringType, description="A local folder of analysis files."),
        th.Property("bucket", th.StringType, description="S3 bucket (credentials from the environment)."),
        th.Property("prefix", th.StringType, description="S3 key prefix, e.g. Analysis/Voice/."),
        th.Property("endpoint_url", th.StringType, description="S3-compatible endpoint (MinIO, a local server)."),
        th.Property("region", th.StringType),
        th.Property("batch_files", th.IntegerType, description="Files per batch (default 500)."),
    ).to_dict()

    def discover_streams(self) -> list[SourceStream]:
        source = CallAnalyticsSource(dict(self.config), Home())
        return [CallsStream(self, source), TurnsStream(self, source)]


if __name__ == "__main__":
    CallAnalyticsTap.cli()
