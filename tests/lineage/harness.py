"""Lineage test helpers: random hex ids, the runner's one-part path, and a destination that looks at the ledger
as it loads."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from connectors.base.home import Home
from lineage import open_store


def hex_ids(n: int, width: int, seed: int, nulls: int = 0) -> pa.Array:
    """``n`` random lower-case hex ids of ``width`` characters; every ``nulls``-th one null (0: none)."""
    rng = np.random.default_rng(seed)
    vals = [rng.bytes(width // 2).hex() for _ in range(n)]
    for i in range(0, n, nulls or n + 1):
        vals[i] = None
    return pa.array(vals, pa.string())


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


def map_and_load_once(home: Home, spec_path, table, stream: str, destination=None, **kwargs):
    """The runner's one-part path on ``table``: stamp and land as ``file.<stream>``, then map_and_load
    (``kwargs`` go to it); returns (load id, run report)."""
    from weftline import runner

    plan = runner.compile_file(spec_path, home)
    lid = runner.new_load_id()
    landed, _ = runner.stamp_and_land(table, home, "file", stream, lid)
    report = runner.RunReport(lid, plan.spec.id, plan.spec.version_hash, f"file.{stream}", read=landed.num_rows,
                              rejected=0)
    runner.map_and_load(plan, landed, home, lid, report, destination=destination, **kwargs)
    return lid, report
