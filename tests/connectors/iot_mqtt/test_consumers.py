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
