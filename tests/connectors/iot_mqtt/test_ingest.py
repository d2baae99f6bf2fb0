"""Landing a micro-batch: the Sparkplug state survives a restart, and a redelivery after a
crash between landing and ack neither fakes a seq gap nor makes new record ids."""

import pyarrow as pa
import pyarrow.parquet as pq

from connectors.iot_mqtt.config import MqttConfig
from connectors.iot_mqtt.decode import Message
from connectors.iot_mqtt.ingest import Ingestor
from connectors.iot_mqtt.sparkplug.payload import encode_payload

CFG = MqttConfig.from_dict({"client_id": "ing", "topics": [
    {"filter": "spBv1.0/#", "stream": "sparkplug", "format": "sparkplug"}]})


def sp(kind, seq, bd=None, device=None, ts=1_700_000_000_000):
    metrics = [{"name": "bdSeq", "datatype": "Int64", "value": bd}] if bd is not None else \
        [{"name": "temp", "datatype": "Double", "value": 20.0}]
    topic = f"spBv1.0/g/{kind}/n1" + (f"/{device}" if device else "")
    return Message(topic, encode_payload(metrics, timestamp=ts + (seq or 0), seq=seq), 1, False, False, 1, ts)


def read(home, stream):
    parts = sorted((home.landing / "iot_mqtt" / stream).rglob("part-*.parquet"))
    return pa.concat_tables([pq.read_table(p) for p in parts]) if parts else None


def test_redelivery_after_restart_is_recognised_and_keeps_record_ids(home):
    first = [sp("NBIRTH", 0, bd=1), sp("DBIRTH", 1, device="pump"), sp("DDATA", 2, device="pump")]
    Ingestor(CFG, home).ingest(first)
    # crash after landing, before the ack: a new process restores the state, the broker redelivers
    again = Ingestor(CFG, home)
    again.ingest(first + [sp("DDATA", 3, device="pump"), sp("NDEATH", None, bd=1)])
    assert read(home, "sparkplug_events") is None  # no seq gap, no stale death
    raw = read(home, "sparkplug")
    ids = raw.column("_wl_record_id").to_pylist()
    assert len(ids) == 8 and len(set(ids)) == 5  # the 3 redelivered copies carry the same ids
    st = read(home, "device_status")
    got = sorted(zip(st.column("device_id").to_pylist(), st.column("status").to_pylist(),
                     st.column("reason").to_pylist()))
    assert got == [("g/n1", "offline", "death"), ("g/n1", "online", "birth"),
                   ("g/n1/pump", "offline", "stale"), ("g/n1/pump", "online", "birth")]


def test_a_real_gap_across_batches_is_reported_once(home):
    ing = Ingestor(CFG, home)
    ing.ingest([sp("NBIRTH", 0, bd=0), sp("NDATA", 1)])
    Ingestor(CFG, home).ingest([sp("NDATA", 5)])  # restored state still expects 2
    ev = read(home, "sparkplug_events").to_pylist()
    assert [(e["kind"], e["expected"], e["got"]) for e in ev] == [("seq_gap", 2, 5)]
