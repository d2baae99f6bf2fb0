"""tap-weftline-web-analytics: the web-analytics source as a Singer tap (singer-sdk).

Run: ``python -m connectors.web_analytics.tap --config config.json [--state state.json]``
with ``{"url": API}`` (paging REST; a bearer token only through ``token_env``, the name of an
environment variable) or ``{"path": DIR}`` / ``{"bucket": B, ...}`` (JSONL drops).
Streams ``events`` and ``form_submissions``, incremental on ``received_at`` for the REST API
(the bookmark is sent as ``since``). JSONL drops are re-read in full by the tap (targets
upsert on the key); weftline's own runner keeps a per-file cursor.

>>> tap = WebAnalyticsTap(config={"url": "http://127.0.0.1:9/v1/events"}, validate_config=True)
>>> sorted(tap.streams), tap.streams["form_submissions"].primary_keys
(['events', 'form_submissions'], ['submission_id'])
"""

from __future__ import annotations

from typing import Any

from singer_sdk import Tap
from singer_sdk import typing as th

from connectors.base.home import Home
from connectors.singer.stream import SourceStream
from connectors.web_analytics.source import WebAnalyticsSource
from connectors.web_analytics.streams import EVENTS, FORM_SUBMISSIONS, SCHEMAS


class _WebStream(SourceStream):
    replication_key = "received_at"

    @property
    def is_sorted(self) -> bool:
        return self.source.rest is not None  # the API pages in received_at order; drops need not

    def source_state(self, start: Any):
        return {"since": str(start)} if self.source.rest is not None else {}


class EventsStream(_WebStream):
    name = EVENTS
    schema_name = SCHEMAS[EVENTS]
    primary_keys = ["message_id"]


class FormSubmissionsStream(_WebStream):
    name = FORM_SUBMISSIONS
    schema_name = SCHEMAS[FORM_SUBMISSIONS]
    primary_keys = ["submission_id"]


class WebAnalyticsTap(Tap):
    name = "tap-weftline-web-analytics"
    config_jsonschema = th.PropertiesList(
        th.Property("url", th.StringType, description="Events endpoint of the paging REST API."),
        th.Property("page_size", th.IntegerType),
        th.Property("timeout", th.NumberType, description="Seconds per request."),
        th.Property("retries", th.IntegerType),
        th.Property("backoff", th.NumberType, description="Seconds; doubles per retry."),
        th.Property("backoff_max", th.NumberType),
        th.Property("token_env", th.StringType, description="Name of the env variable holding a bearer token."),
        th.Property("path", th.StringType, description="Folder of JSONL drops."),
        th.Property("bucket", th.StringType),
        th.Property("prefix", th.StringType),
        th.Property("endpoint_url", th.StringType),
        th.Property("region", th.StringType),
    ).to_dict()

    def discover_streams(self) -> list[SourceStream]:
        source = WebAnalyticsSource(dict(self.config), Home())
        return [EventsStream(self, source), FormSubmissionsStream(self, source)]


if __name__ == "__main__":
    WebAnalyticsTap.cli()
