"""The Sparkplug host state machine: bdSeq matching, stale deaths, seq gaps (with wrap), aliases."""

import json

from connectors.iot_mqtt.sparkplug.tracker import Tracker


def msg(seq=None, ts=1000, bd=None, metrics=()):
    ms = [{"name": "bdSeq", "alias": None, "value": str(bd)}] if bd is not None else []
    return {"timestamp": ts, "seq": seq, "uuid": None, "metrics": ms + [dict(m) for m in metrics]}


def test_birth_then_matching_death_takes_node_and_devices_offline():
    t = Tracker()
    s, _ = t.feed("spBv1.0/g/NBIRTH/n1", msg(seq=0, bd=3), "a", 1)
    assert [(e["device_id"], e["status"], e["reason"]) for e in s] == [("g/n1", "online", "birth")]
    s, _ = t.feed("spBv1.0/g/DBIRTH/n1/pump", msg(seq=1), "b", 2)
    assert [(e["device_id"], e["status"]) for e in s] == [("g/n1/pump", "online")]
    s, ev = t.feed("spBv1.0/g/NDEATH/n1", msg(bd=3, ts=None), "c", 5000)
    assert [(e["device_id"], e["status"], e["reason"]) for e in s] == [
        ("g/n1", "offline", "death"), ("g/n1/pump", "offline", "stale")]
    assert all(e["event_ms"] == 5000 for e in s) and ev == []  # host time for NDEATH


def test_death_with_other_bdseq_is_stale_and_ignored():
    t = Tracker()
    t.feed("spBv1.0/g/NBIRTH/n1", msg(seq=0, bd=4), "a", 1)
    s, ev = t.feed("spBv1.0/g/NDEATH/n1", msg(bd=3), "b", 2)  # the Will of the previous session
    assert s == [] and [(e["kind"], e["expected"], e["got"]) for e in ev] == [("stale_death", 4, 3)]
    assert t.nodes["g/n1"]["online"] is True


def test_second_death_with_same_bdseq_is_ignored():
    t = Tracker()
    t.feed("spBv1.0/g/NBIRTH/n1", msg(seq=0, bd=1), "a", 1)
    t.feed("spBv1.0/g/NDEATH/n1", msg(bd=1), "b", 2)
    s, ev = t.feed("spBv1.0/g/NDEATH/n1", msg(bd=1), "c", 3)
    assert s == [] and [e["kind"] for e in ev] == ["duplicate_death"]


def test_seq_gap_detected_and_255_wraps_to_0():
    t = Tracker()
    t.feed("spBv1.0/g/NBIRTH/n1", msg(seq=254, bd=0), "a", 1)
    assert t.feed("spBv1.0/g/NDATA/n1", msg(seq=255), "b", 2)[1] == []
    assert t.feed("spBv1.0/g/DDATA/n1/d", msg(seq=0), "c", 3)[1] == []  # seq is per edge node
    _, ev = t.feed("spBv1.0/g/NDATA/n1", msg(seq=3), "d", 4)
    assert [(e["kind"], e["expected"], e["got"]) for e in ev] == [("seq_gap", 1, 3)]
    _, ev = t.feed("spBv1.0/g/NDATA/n1", msg(seq=None), "e", 5)
    assert [e["kind"] for e in ev] == ["missing_seq"]


def test_redelivered_message_is_not_counted_twice():
    t = Tracker()
    t.feed("spBv1.0/g/NBIRTH/n1", msg(seq=0, bd=0), "a", 1)
    t.feed("spBv1.0/g/NDATA/n1", msg(seq=1), "b", 2)
    assert t.feed("spBv1.0/g/NDATA/n1", msg(seq=1), "b", 2) == ([], [])  # same id: skipped
    assert t.feed("spBv1.0/g/NDATA/n1", msg(seq=2), "c", 3)[1] == []


def test_aliases_from_birth_name_data_metrics_and_state_round_trips():
    t = Tracker()
    t.feed("spBv1.0/g/NBIRTH/n1", msg(seq=0, bd=0, metrics=[{"name": "temp", "alias": 7, "value": "1"}]), "a", 1)
    t2 = Tracker(json.loads(json.dumps(t.state)))  # restored from its JSON state, as after a restart
    data = msg(seq=1, metrics=[{"name": None, "alias": 7, "value": "2"}])
    t2.feed("spBv1.0/g/NDATA/n1", data, "b", 2)
    assert data["metrics"][0]["name"] == "temp"


def test_data_before_birth_is_reported():
    _, ev = Tracker().feed("spBv1.0/g/DDATA/n9/d", msg(seq=5), "a", 1)
    assert [e["kind"] for e in ev] == ["data_before_birth"]
