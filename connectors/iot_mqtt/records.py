"""Arrow shapes of what the MQTT connector lands, declared once (JSON Schemas beside them in
``schemas/sources/iot_mqtt.*.json``).

Identity: a raw message's record id is ``record_id("iot_mqtt", stream, topic, sha256(payload))``
— broker-independent (no mid), so a redelivery after a crash gets the same id and dedups
downstream. Payloads carry their own timestamp/seq, so two real readings differ.
A derived row (device_status, sparkplug_events) is keyed by ``event_key`` =
``<origin record id>/<device id>/<kind>``, or for a JSON status message ``<topic>/<payload sha256>``.

>>> METRIC.names
['name', 'alias', 'datatype', 'timestamp', 'is_null', 'value', 'value_num']
>>> DEVICE_STATUS.names[:4]
['device_id', 'status', 'reason', 'event_time']
"""

from __future__ import annotations

import pyarrow as pa

TS = pa.timestamp("ms", tz="UTC")

MESSAGE_FIELDS = [  # every raw message row has these
    ("topic", pa.string()),
    ("device_id", pa.string()),
    ("event_time", TS),
    ("received_time", TS),
    ("qos", pa.int8()),
    ("retain", pa.bool_()),
    ("dup", pa.bool_()),
    ("mid", pa.int32()),
    ("payload_sha256", pa.string()),
]

JSON_MESSAGE = pa.schema(MESSAGE_FIELDS + [("payload_json", pa.string())])  # + "payload" (parsed) when inferable

METRIC = pa.struct([
    ("name", pa.string()),
    ("alias", pa.uint64()),
    ("datatype", pa.string()),
    ("timestamp", pa.uint64()),
    ("is_null", pa.bool_()),
    ("value", pa.string()),
    ("value_num", pa.float64()),
])

SPARKPLUG = pa.schema(MESSAGE_FIELDS + [
    ("group_id", pa.string()),
    ("message_type", pa.string()),
    ("edge_node_id", pa.string()),
    ("sparkplug_device", pa.string()),
    ("seq", pa.int64()),
    ("uuid", pa.string()),
    ("metrics", pa.list_(METRIC)),
])

DEVICE_STATUS = pa.schema([
    ("device_id", pa.string()),
    ("status", pa.string()),  # online | offline
    ("reason", pa.string()),  # birth | death | lwt | stale
    ("event_time", TS),
    ("received_time", TS),
    ("topic", pa.string()),
    ("source", pa.string()),  # json | sparkplug
    ("bd_seq", pa.int64()),
    ("event_key", pa.string()),
    ("payload_json", pa.string()),
])

SPARKPLUG_EVENTS = pa.schema([
    ("device_id", pa.string()),
    ("kind", pa.string()),  # seq_gap | missing_seq | stale_death | duplicate_death | data_before_birth | missing_bdseq
    ("expected", pa.int64()),
    ("got", pa.int64()),
    ("event_time", TS),
    ("received_time", TS),
    ("topic", pa.string()),
    ("event_key", pa.string()),
])

STATUS_REASONS = ("birth", "death", "lwt", "stale")
