"""Several consumers drain one landing zone independently."""

import pyarrow as pa

from connectors.iot_mqtt.consumers import drain, mark_done, offsets, pending
from connectors.landing import land


def test_each_consumer_has_its_own_cursor_and_sees_new_parts(home):
    for i in range(3):
        land(pa.table({"i": [i]}), home, "iot_mqtt", "telemetry", "L1")
    for lid, path, _ in drain(home, "iot_mqtt", "telemetry", "stream-worker"):
        mark_done(home, "iot_mqtt", "telemetry", "stream-worker", lid, path)
    assert pending(home, "iot_mqtt", "telemetry", "stream-worker") == []
    assert [t.column("i")[0].as_py() for _, _, t in drain(home, "iot_mqtt", "telemetry", "airflow")] == [0, 1, 2]
    land(pa.table({"i": [3]}), home, "iot_mqtt", "telemetry", "L2")
    assert [lid for lid, _ in pending(home, "iot_mqtt", "telemetry", "stream-worker")] == ["L2"]
    assert offsets(home, "iot_mqtt", "telemetry", "stream-worker") == {"L1": 3}
    assert (home.state / "consumers" / "iot_mqtt" / "stream-worker.json").exists()


def test_an_unfinished_temp_file_is_never_drained(home):
    d = home.landing / "iot_mqtt" / "telemetry" / "L1"
    d.mkdir(parents=True)
    (d / ".part-00000.parquet.tmp-123").write_bytes(b"half a file")
    assert pending(home, "iot_mqtt", "telemetry", "c") == []


def test_complete_loads_are_not_listed_again_and_the_rest_still_drains(home, monkeypatch):
    """With the writer's parts per load given, a load done to that count is skipped without listing its
    folder: a pass lists only the loads still open (here L2 with one part to go, and L3 not started)."""
    from pathlib import Path

    for load, parts in (("L1", 2), ("L2", 2), ("L3", 1)):
        for i in range(parts):
            land(pa.table({"i": [i]}), home, "iot_mqtt", "telemetry", load)
    for lid, path, _ in list(drain(home, "iot_mqtt", "telemetry", "w"))[:3]:  # L1 whole, L2's first part
        mark_done(home, "iot_mqtt", "telemetry", "w", lid, path)
    listed, real_glob = [], Path.glob
    monkeypatch.setattr(Path, "glob", lambda self, pattern: listed.append(self.name) or real_glob(self, pattern))
    got = [(lid, p.name) for lid, p in pending(home, "iot_mqtt", "telemetry", "w", load_parts=2)]
    assert got == [("L2", "part-00001.parquet"), ("L3", "part-00000.parquet")]
    assert listed == ["L2", "L3"]  # L1 (2 of 2 done) was not listed
    assert [(lid, p.name) for lid, p in pending(home, "iot_mqtt", "telemetry", "w")] == got  # same parts
