"""The call-analytics source: Contact Lens analysis files from a folder or S3, incremental by key + LastModified.

Config: ``{"path": DIR}`` or ``{"bucket": B, "prefix": P, "endpoint_url": U, "region": R}``, plus
optional ``batch_files`` (files per batch, default 500). Credentials: boto3's default chain.

>>> from connectors.base.home import Home
>>> src = CallAnalyticsSource({"path": "../shared/data/call_analytics"}, Home("/tmp/wl-doctest"))
>>> [s.name for s in src.streams], src.streams[0].key, src.streams[0].position
(['calls', 'turns'], ('contact_id',), 'version')
>>> b = next(src.read("calls", {}))
>>> sorted(b.table.column("channel").to_pylist()), b.rejected.num_rows
(['CHAT', 'CHAT', 'VOICE'], 0)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from connectors.base.home import Home
from connectors.base.source import Batch, Stream
from connectors.call_analytics.objects import open_store
from connectors.call_analytics.reader import CALLS, SCHEMAS, TURNS, read_batches


class CallAnalyticsSource:
    system: ClassVar[str] = "call_analytics"
    streams: ClassVar[tuple[Stream, ...]] = (
        Stream(CALLS, key=("contact_id",), position="version", schema=f"schemas/sources/{SCHEMAS[CALLS]}.json"),
        Stream(TURNS, key=("contact_id", "turn_index"), position="version",
               schema=f"schemas/sources/{SCHEMAS[TURNS]}.json"),
    )

    def __init__(self, config: Mapping[str, Any], home: Home):
        self.config = dict(config)
        self.home = home
        self.store = open_store(self.config)
        self.batch_files = int(self.config.get("batch_files") or 500)

    def read(self, stream: str, state: Mapping[str, Any]) -> Iterator[Batch]:
        """Batches of new files; ``batch.state`` is the cursor to persist once the batch landed."""
        return read_batches(self.store, stream, state, self.batch_files)
