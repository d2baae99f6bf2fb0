"""``stamp``'s payload hashes and record ids must be exactly those of the two separate computations
(payload_hash_of_rows, then sha256_hex over system, stream, key, position) and of the documented text,
or replays would stop deduplicating against older landings."""

from __future__ import annotations

import datetime as dt
import hashlib

import pyarrow as pa
import pytest

from connectors.base.hashing import SEPARATOR, sha256_hex
from connectors.base.identity import _text, key_text, payload_hash_of_rows, stamp

TS = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
TABLES = {
    "nulls and a timestamp": pa.table({"id": [1, 2, None], "s": ["a", None, 'é"x'], "ts": [TS, None, TS]}),
    "a column named t": pa.table({"id": [1, 2, None], "s": ["a", None, "x"], "t": [TS, None, TS]}),
    "nested": pa.table({"event_key": ["k1", "k2"], "f": [1.5, None], "nested": [{"a": 1, "b": [1, 2]}, None]}),
    "columns named like the query's": pa.table({"event_key": ["x"] * 300, "v": list(range(300)), "k": [1] * 300,
                                                "h": ["z"] * 300, "p": [None] * 300}),
    "chunked": pa.concat_tables([pa.table({"event_key": ["a"], "v": [1]}), pa.table({"event_key": ["b"], "v": [2]})]),
}


def two_queries(table, key, position):
    n = table.num_rows
    ph = payload_hash_of_rows(table)
    keys = key_text(table, key) if key else ph
    pos = _text(table.column(position)) if position else pa.nulls(n, pa.string())
    const = lambda v: pa.repeat(pa.scalar(v, pa.string()), n)  # noqa: E731
    return ph, sha256_hex([const("iot_mqtt"), const("device_status"), keys, pos], length=32)


@pytest.mark.parametrize("name", TABLES)
@pytest.mark.parametrize("key_pos", [(False, False), (True, False), (True, True), (False, True)])
def test_one_query_equals_two(name, key_pos):
    t = TABLES[name]
    key = [t.column_names[0]] if key_pos[0] else None
    position = t.column_names[1] if key_pos[1] else None
    want_hash, want_ids = two_queries(t, key, position)
    got = stamp(t, system="iot_mqtt", stream="device_status", key=key, position=position, load_id="L1")
    assert got.column("_wl_payload_hash").combine_chunks().equals(want_hash)
    assert got.column("_wl_record_id").combine_chunks().equals(want_ids)


def test_a_record_id_by_hand():
    t = pa.table({"event_key": ["k1"], "status": ["online"]})
    got = stamp(t, system="iot_mqtt", stream="device_status", key=["event_key"], position=None, load_id="L1")
    raw = SEPARATOR.join(["iot_mqtt", "device_status", "k1", ""]).encode()
    assert got.column("_wl_record_id")[0].as_py() == hashlib.sha256(raw).hexdigest()[:32]
    payload = "event_key\x1evk1\x1fstatus\x1evonline".encode()  # the canonical row text (docs/adr/0003)
    assert got.column("_wl_payload_hash")[0].as_py() == hashlib.sha256(payload).hexdigest()
