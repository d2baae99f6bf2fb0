"""Record-level lineage: capture edges, store them tamper-evidently, trace, impact, export, erase.

The runner-facing API (see docs/adr/0100-lineage-consistency.md for the order of calls)::

    from lineage import open_store
    store = open_store(home)                 # embedded; open_store(home, url=..., segments="s3://b/p")
    store.recover()                          # first: finish or roll back loads a crash left pending
    store.begin(load_id)
    store.append_received(load_id, landed_table)
    store.append_mapped(load_id, spec, map_result)
    # ... destination load ...
    store.append_loaded(load_id, "duckdb", entity, output_table, key=[...])
    store.commit(load_id)

Queries: :func:`trace`, :func:`impact`, :func:`collect_subject`, :func:`verify`, :func:`erase_subject`.
"""

from lineage.edges import EDGE_SCHEMA
from lineage.erase import erase_subject
from lineage.export.collect import collect_subject
from lineage.query import UnknownRef, impact, trace
from lineage.store import Store, open_store
from lineage.verify import verify

__all__ = ["EDGE_SCHEMA", "Store", "UnknownRef", "collect_subject", "erase_subject", "impact", "open_store",
           "trace", "verify"]
