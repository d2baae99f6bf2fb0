"""Decoding a micro-batch: JSON, JSON status, Sparkplug B; malformed input is quarantined, never raised."""

import json
from datetime import datetime, timezone


from connectors.base.source import REJECTED_SCHEMA
from connectors.iot_mqtt.config import MqttConfig
from connectors.iot_mqtt.decode import Message, decode_batch
from connectors.iot_mqtt.json_batch import json_table
from connectors.iot_mqtt.sparkplug.payload import encode_payload
from connectors.iot_mqtt.sparkplug.tracker import Tracker

CFG = MqttConfig.from_dict({"client_id": "t", "max_payload_bytes": 64, "topics": [
    {"filter": "spBv1.0/#", "stream": "sparkplug", "format": "sparkplug"},
    {"filter": "devices/+/status", "stream": "device_status", "format": "json_status"},
    {"filter": "devices/+/telemetry", "stream": "telemetry", "format": "json", "time_field": "at"},
]})


def m(topic, payload, mid=1, at=1_700_000_000_000):
    return Message(topic, payload if isinstance(payload, bytes) else json.dumps(payload).encode(), 1, False, False, mid, at)


def test_malformed_inputs_are_rejected_with_topic_and_reason_and_the_rest_decodes():
    msgs = [
        m("devices/d1/telemetry", b'{"t": 1'),
        m("spBv1.0/g/NDATA/n1", b"\x0a\xff\xff\xff"),
        m("nobody/listens/here", {"a": 1}),
        m("devices/d1/telemetry", {"blob": "x" * 100}),
        m("devices/d1/status", {"status": "sleepy"}),
        m("devices/d1/telemetry", {"temp": 20.5, "at": "2026-11-24T08:00:00Z"}),
    ]
    out = decode_batch(msgs, CFG, Tracker())
    rej = out.rejected
    assert rej.schema == REJECTED_SCHEMA
    got = sorted(zip(rej.column("position").to_pylist(), rej.column("reason").to_pylist(),
                     (len(r) for r in rej.column("raw").to_pylist())))
    assert [(t, r.split(":")[0], n) for t, r, n in got] == sorted([
        ("devices/d1/telemetry", "bad JSON", 7),
        ("spBv1.0/g/NDATA/n1", "bad Sparkplug B protobuf", 4),
        ("nobody/listens/here", "unknown topic", 8),
        ("devices/d1/telemetry", "oversized message", 64),  # kept, cut to the limit
        ("devices/d1/status", "bad status", 20),
    ])
    tel = out.tables["telemetry"]
    assert tel.num_rows == 1 and tel.column("temp").to_pylist() == [20.5]  # payload fields become columns
    assert tel.column("event_time").to_pylist()[0] == datetime(2026, 11, 24, 8, tzinfo=timezone.utc)
    assert sum(out.counts.values()) == len(msgs)  # read = landed + quarantined


def test_json_status_normalised_and_event_time_falls_back_to_receive_time():
    out = decode_batch([m("devices/pump-7/status", {"status": "OFFLINE", "reason": "lwt"}, at=42_000)],
                       CFG, Tracker())
    row = out.tables["device_status"].to_pylist()[0]
    assert (row["device_id"], row["status"], row["reason"], row["source"]) == ("pump-7", "offline", "lwt", "json")
    assert row["event_time"].timestamp() == 42.0


def test_sparkplug_birth_data_death_give_metrics_status_and_gap_events():
    ts = 1_700_000_000_000
    birth = encode_payload([{"name": "bdSeq", "datatype": "Int64", "value": 0},
                            {"name": "temp", "alias": 1, "datatype": "Double", "value": 20.0}], timestamp=ts, seq=0)
    data = encode_payload([{"alias": 1, "datatype": "Double", "value": 99.5}], timestamp=ts + 1, seq=2)  # seq 1 lost
    death = encode_payload([{"name": "bdSeq", "datatype": "Int64", "value": 0}], timestamp=ts + 2, seq=None)
    msgs = [m("spBv1.0/plant/NBIRTH/gw1", birth, 1), m("spBv1.0/plant/NDATA/gw1", data, 2),
            m("spBv1.0/plant/NDEATH/gw1", death, 3, at=ts + 9)]
    out = decode_batch(msgs, CFG, Tracker())
    sp = out.tables["sparkplug"]
    assert sp.column("message_type").to_pylist() == ["NBIRTH", "NDATA", "NDEATH"]
    metric = sp.column("metrics")[1].as_py()[0]
    assert (metric["name"], metric["value_num"], metric["datatype"]) == ("temp", 99.5, "Double")  # alias resolved
    st = out.tables["device_status"]
    assert list(zip(st.column("status").to_pylist(), st.column("reason").to_pylist())) == [
        ("online", "birth"), ("offline", "death")]
    ev = out.tables["sparkplug_events"].to_pylist()
    assert [(e["kind"], e["expected"], e["got"]) for e in ev] == [("seq_gap", 1, 2)]


def test_signed_sparkplug_ints_decode_as_negative():
    p = encode_payload([{"name": "delta", "datatype": "Int32", "value": -5}], timestamp=1, seq=0)
    out = decode_batch([m("spBv1.0/g/NBIRTH/n", p)], CFG, Tracker())
    assert out.tables["sparkplug"].column("metrics")[0].as_py()[0]["value_num"] == -5.0


def test_payload_fields_become_columns_nested_stay_nested_clashes_are_prefixed():
    msgs = [m("devices/d9/telemetry", {"event_type": "fault", "device_id": "o", "probe": {"t": 1.5}}, mid=1),
            m("devices/d9/telemetry", {"event_type": "reading", "probe": {"t": 2.5}}, mid=2)]
    for batch in (msgs, [*msgs, m("devices/d9/telemetry", b"{bad")]):  # the Arrow path, then message by message
        t = decode_batch(batch, CFG, Tracker()).tables["telemetry"]
        assert t.column("event_type").to_pylist() == ["fault", "reading"]
        assert t.column("device_id").to_pylist() == ["d9", "d9"]  # from the topic
        assert t.column("payload_device_id").to_pylist() == ["o", None]
        assert t.column("probe").to_pylist() == [{"t": 1.5}, {"t": 2.5}]


def test_iso_event_times_with_a_zone_take_the_batch_path_and_match_the_message_by_message_one(monkeypatch):
    """ISO 8601 text with ``Z`` or an offset is parsed by Arrow for the whole batch; the result equals what the
    per-message path gives (exact milliseconds, rounded down). A batch with a bad time goes message by message."""
    import connectors.iot_mqtt.decode as decode

    times = ["2026-11-24T08:00:00Z", "2026-11-24T09:00:00.9999+01:00", "1969-12-31T23:59:59.9995Z", None]
    msgs = [m(f"devices/d{i}/telemetry", {"temp": i, "at": t}, mid=i, at=1_700_000_000_000 + i)
            for i, t in enumerate(times)]
    taken = []
    real = decode.json_table
    monkeypatch.setattr(decode, "json_table", lambda *a: taken.append(real(*a)) or taken[-1])
    fast = decode_batch(msgs, CFG, Tracker()).tables["telemetry"]
    assert taken and taken[0] is not None  # the batch path took them
    monkeypatch.setattr(decode, "json_table", lambda *a: None)
    slow = decode_batch(msgs, CFG, Tracker()).tables["telemetry"]
    assert fast.equals(slow)
    assert [t.timestamp() * 1000 for t in fast.column("event_time").to_pylist()] == [
        1_795_507_200_000, 1_795_507_200_999, -1, 1_700_000_000_003]  # the last: no time, so received time
    bad = [m("devices/d1/telemetry", {"temp": 1, "at": "2026-11-24T08:00:00+01:00"}),
           m("devices/d2/telemetry", {"temp": 2, "at": "yesterday"})]
    assert json_table(CFG.topics[2], [(x, "h") for x in bad]) is None  # message by message: it quarantines one
