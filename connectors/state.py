"""Incremental state (cursors) per integration and stream, one small JSON file each.

Written atomically (tmp + fsync + rename) so a crash leaves the old or the new
cursor, never half of one. The runner persists a cursor only after the batch it
covers has landed.

>>> import tempfile
>>> from connectors.base.home import Home
>>> st = StateStore(Home(tempfile.mkdtemp()))
>>> st.get("erp", "orders")
{}
>>> st.set("erp", "orders", {"updated_at": "2026-11-24T08:00:00"})
>>> st.get("erp", "orders")
{'updated_at': '2026-11-24T08:00:00'}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from connectors.base.files import write_atomic
from connectors.base.home import Home


class StateStore:
    def __init__(self, home: Home, sync_dir: bool = True):
        self.dir = home.state / "cursors"
        self.sync_dir = sync_dir  # False: see connectors.base.files.write_atomic (consumer cursors only)

    def _path(self, integration: str, stream: str):
        return self.dir / integration / f"{stream}.json"

    def get(self, integration: str, stream: str) -> dict[str, Any]:
        p = self._path(integration, stream)
        return json.loads(p.read_text()) if p.exists() else {}

    def set(self, integration: str, stream: str, state: Mapping[str, Any]) -> None:
        write_atomic(self._path(integration, stream), json.dumps(dict(state), sort_keys=True, default=str).encode(),
                     sync_dir=self.sync_dir)
