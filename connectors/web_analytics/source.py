"""The web-analytics source: events from a paginated REST API or from JSONL file drops.

Config, REST: ``{"url": U, "page_size": 500, "timeout": 10, "retries": 5, "backoff": 0.5,
"token_env": "NAME"}`` (state ``{"cursor": C}``; ``{"since": ISO}`` starts from a time).
Config, drops: ``{"path": DIR}`` or ``{"bucket": B, "prefix": P, "endpoint_url": U}``
(state: ``{"last_modified": ISO, "keys": [...]}``). One batch per page or per file.

>>> import tempfile, pathlib
>>> from connectors.base.home import Home
>>> from connectors.web_analytics.generator import generate_events, write_jsonl
>>> d = pathlib.Path(tempfile.mkdtemp()); write_jsonl(generate_events(30, seed=2), d / "day1.jsonl")
>>> src = WebAnalyticsSource({"path": str(d)}, Home(d / "home"))
>>> [s.name for s in src.streams]
['events', 'form_submissions']
>>> b = next(src.read("events", {}))
>>> b.table.num_rows, b.state["keys"]
(30, ['day1.jsonl'])
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from connectors.base.home import Home
from connectors.base.source import Batch, Stream
from connectors.call_analytics import incremental
from connectors.errors import ConfigError
from connectors.web_analytics import rest
from connectors.web_analytics.drops import open_store, read_drops
from connectors.web_analytics.parse import parse_jsonl
from connectors.web_analytics.streams import EVENTS, FORM_SUBMISSIONS, SCHEMAS, SHAPERS


class WebAnalyticsSource:
    system: ClassVar[str] = "web_analytics"
    streams: ClassVar[tuple[Stream, ...]] = (
        Stream(EVENTS, key=("message_id",), position="received_at", schema=f"schemas/sources/{SCHEMAS[EVENTS]}.json"),
        Stream(FORM_SUBMISSIONS, key=("submission_id",), position="received_at",
               schema=f"schemas/sources/{SCHEMAS[FORM_SUBMISSIONS]}.json"),
    )

    def __init__(self, config: Mapping[str, Any], home: Home):
        self.config = dict(config)
        self.home = home
        if self.config.get("url"):
            self.rest: rest.RestConfig | None = rest.RestConfig.from_config(self.config)
            self.store = None
        elif self.config.get("path") or self.config.get("bucket"):
            self.rest = None
            self.store = open_store({k: v for k, v in self.config.items() if k != "suffix"},
                                    self.config.get("suffix") or ".jsonl")
        else:
            raise ConfigError("web_analytics needs 'url' (REST API) or 'path' / 'bucket' (JSONL drops)")

    def read(self, stream: str, state: Mapping[str, Any]) -> Iterator[Batch]:
        """One batch per page (REST) or file (drops); ``batch.state`` is the cursor after it."""
        if stream not in SHAPERS:
            raise KeyError(f"web_analytics has no stream {stream!r}; streams: {sorted(SHAPERS)}")
        shape = SHAPERS[stream]
        if self.rest is not None:
            for page in rest.pages(self.rest, state):
                table, bad = parse_jsonl(page.body, page.origin)
                yield Batch(stream, shape(table), {"cursor": page.cursor}, bad)
        else:
            for ref, table, bad in read_drops(self.store, state):
                state = incremental.advance(state, [ref])
                yield Batch(stream, shape(table), state, bad)
