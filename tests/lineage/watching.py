"""A destination wrapper for lineage tests: what the ledger held at the moment ``load`` was called."""

from __future__ import annotations

from connectors.base.home import Home
from lineage import open_store


class Watching:
    """The real destination; ``seen``: (state, sorted steps, file complete) per segment, ``loads``:
    (load id, state) per load, both as the ledger had them when the rows were handed over."""

    def __init__(self, inner, home: Home):
        self.inner, self.home, self.seen, self.loads = inner, home, None, None

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def load(self, *a, **k):
        store = open_store(self.home)
        self.seen = [(s["state"], sorted(set(store.read_segment(s).column("step").to_pylist())),
                      store.blobs.size(s["file"]) == s["bytes"]) for s in store.segments()]
        self.loads = [(x["load_id"], x["state"]) for x in store.ledger.loads()]
        return self.inner.load(*a, **k)
