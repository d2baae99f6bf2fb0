"""The fixed schema of the incident table a stateful stage emits, and the incident key.

One row per action on an incident. ``<key>`` is the spec's key column (e.g. ``device_id``)
as text; the other names are fixed, so a ticket spec's ``fields:`` can read them:

=================  ======================  ==================================================
column             type                    meaning
=================  ======================  ==================================================
<key>              string                  the state key (the spec's ``stateful.key``)
rule               string                  the rule's name
kind               string                  ``transition`` | ``rate``
action             string                  ``open`` | ``annotate`` | ``close``
incident_key       string (32 hex)         one incident = one key (= one ticket)
since              timestamp[us, UTC]      start of the run / the spike that this row is about
at                 timestamp[us, UTC]      event time the action happened (open: since + for)
from_status        string                  transition: status before; null for rates
to_status          string                  transition: status after; null for rates
duration_s         float64                 transition: at − since, in seconds
window_start/_end  timestamp[us, UTC]      rate: the counted window (window_end = at)
count              int64                   rate: matching events in the window
baseline           float64                 rate: trailing events per window length
ratio              float64                 rate: count / baseline (null when baseline is 0)
detail             string                  a sentence for people
evidence           list<string>            record ids of the events behind this row
row_id             string (32 hex)         this row's own id, unique and stable across replays
=================  ======================  ==================================================

No ``_wl_`` columns: the runner stamps the incidents as a derived stream (``connectors.base.identity.stamp``
with key ``incident_key`` and position ``row_id``), which gives them record ids and lineage.

Rows come in event order (``at``, then key, rule); for one incident the last row is its
current state, so a loader that upserts on ``incident_key`` keeps the newest.

>>> incident_key("device_offline_ticket", "dev-1", "offline", 1_700_000_000_000_000)
'a77a5e91f780c9e2f12629618e6c2d27'
>>> incident_schema("device_id").names[:4]
['device_id', 'rule', 'kind', 'action']
"""

from __future__ import annotations

import hashlib

import pyarrow as pa

from connectors.base.hashing import SEPARATOR
from transforms.stateful.state import TS

ACTIONS = ("open", "annotate", "close")
_FIXED = [
    ("rule", pa.string()), ("kind", pa.string()), ("action", pa.string()), ("incident_key", pa.string()),
    ("since", TS), ("at", TS), ("from_status", pa.string()), ("to_status", pa.string()),
    ("duration_s", pa.float64()), ("window_start", TS), ("window_end", TS), ("count", pa.int64()),
    ("baseline", pa.float64()), ("ratio", pa.float64()), ("detail", pa.string()),
    ("evidence", pa.list_(pa.string())), ("row_id", pa.string()),
]


def incident_schema(key: str) -> pa.Schema:
    """The incident table's schema for a spec keyed by ``key``."""
    return pa.schema([(key, pa.string()), *_FIXED])


def _h(*parts: object) -> str:
    return hashlib.sha256(SEPARATOR.join("" if p is None else str(p) for p in parts).encode()).hexdigest()[:32]


def incident_key(spec_id: str, key: str, rule: str, since_us: int) -> str:
    """sha256(spec id, key, rule, start in µs)[:32]: the same incident gets the same key in every replay."""
    return _h(spec_id, key, rule, since_us)


def row_id(spec_id: str, incident: str, action: str, at_us: int, seq: int) -> str:
    """The id of one incident row, stable across replays."""
    return _h("stateful", spec_id, incident, action, at_us, seq)


def to_table(rows: list[dict], key: str) -> pa.Table:
    """Rows (dicts with the fixed names and ``key``) as the incident table, in event order."""
    schema = incident_schema(key)
    rows = sorted(rows, key=lambda r: (r["at"], r[key], r["rule"], r["_order"]))
    return pa.table([pa.array([r.get(f.name) for r in rows], f.type) for f in schema], schema=schema)
