"""JSONL file drops (a folder or an S3 prefix), incremental by key + LastModified like call analytics.

>>> import tempfile, pathlib
>>> from connectors.web_analytics.generator import generate_events, write_jsonl
>>> d = pathlib.Path(tempfile.mkdtemp()); write_jsonl(generate_events(5, seed=1), d / "a.jsonl")
>>> [(f.key, t.num_rows, bad.num_rows) for f, t, bad in read_drops(open_store({"path": str(d)}, ".jsonl"), {})]
[('a.jsonl', 5, 0)]
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pyarrow as pa

from connectors.call_analytics import incremental
from connectors.call_analytics.objects import ObjectRef, ObjectStore, open_store  # noqa: F401  (re-exported)
from connectors.web_analytics.parse import parse_jsonl


def read_drops(store: ObjectStore, state: Mapping[str, Any]) -> Iterator[tuple[ObjectRef, pa.Table, pa.Table]]:
    """(file, raw events, rejected lines) for each new file, oldest first."""
    for ref in incremental.select(store.list(), state):
        table, bad = parse_jsonl(store.read(ref), ref.key)
        yield ref, table, bad
