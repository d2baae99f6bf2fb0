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


def _age(folder, seconds):
    import os
    import time

    t = time.time() - seconds
    for p in [folder, *folder.glob("part-*.parquet")]:
        os.utime(p, (t, t))


def test_done_and_sealed_loads_at_the_start_fold_into_one_mark(home, monkeypatch):
    """The cursor does not grow by one entry per load: loads done to ``load_parts`` (or done and idle for
    longer than a writer extends a load) at the cursor's start become one ``through`` mark; a load still
    open stops the fold; a pass no longer lists the folded loads; retention reads the mark as done."""
    from pathlib import Path

    from connectors.iot_mqtt.consumers import SEALED_S, THROUGH, done_parts, through

    root = home.landing / "iot_mqtt" / "telemetry"
    for load, parts in (("L1", 2), ("L2", 1), ("L3", 2), ("L4", 1)):
        for i in range(parts):
            land(pa.table({"i": [i]}), home, "iot_mqtt", "telemetry", load)
    _age(root / "L2", SEALED_S + 60)  # L2: one part, cut short (a stop), idle since: sealed
    for lid, path, _ in list(drain(home, "iot_mqtt", "telemetry", "w", load_parts=2))[:4]:  # L1, L2, L3's first
        mark_done(home, "iot_mqtt", "telemetry", "w", lid, path)
    assert [p.name for _, p in pending(home, "iot_mqtt", "telemetry", "w", load_parts=2)] == [
        "part-00001.parquet", "part-00000.parquet"]  # L3's second, L4's only part
    assert through(home, "iot_mqtt", "telemetry", "w") == "L2"
    assert offsets(home, "iot_mqtt", "telemetry", "w") == {"L3": 1}
    listed, real_glob = [], Path.glob
    monkeypatch.setattr(Path, "glob", lambda self, pattern: listed.append(self.name) or real_glob(self, pattern))
    for lid, path, _ in drain(home, "iot_mqtt", "telemetry", "w", load_parts=2):
        mark_done(home, "iot_mqtt", "telemetry", "w", lid, path)
    assert "L1" not in listed and "L2" not in listed
    assert pending(home, "iot_mqtt", "telemetry", "w", load_parts=2) == []
    assert through(home, "iot_mqtt", "telemetry", "w") == "L3"  # L4: done but young, a writer may extend it
    assert offsets(home, "iot_mqtt", "telemetry", "w") == {"L4": 1}
    land(pa.table({"i": [9]}), home, "iot_mqtt", "telemetry", "L4")  # ... and it does
    assert [(lid, p.name) for lid, p in pending(home, "iot_mqtt", "telemetry", "w", load_parts=2)] == [
        ("L4", "part-00001.parquet")]
    cursor = {"~through": "L3", "L4": 1}
    assert THROUGH in cursor and done_parts(cursor, "L1", 2) == 2 and done_parts(cursor, "L4", 2) == 1


def test_a_kept_listing_reads_the_folder_names_again_only_when_they_change(home):
    """A long-lived consumer's pass stats the stream's folder instead of reading every load name; a new
    load (the folder's mtime moves) is seen on the next pass; a folder changed within the last second is
    always read again (a change in the same clock tick would otherwise be missed)."""
    from connectors.iot_mqtt.consumers import Listing

    root = home.landing / "iot_mqtt" / "telemetry"
    for lid in ("L1", "L2"):
        land(pa.table({"i": [1]}), home, "iot_mqtt", "telemetry", lid)
    listing = Listing()
    assert [lid for lid, _ in pending(home, "iot_mqtt", "telemetry", "w", listing=listing)] == ["L1", "L2"]
    assert [lid for lid, _ in pending(home, "iot_mqtt", "telemetry", "w", listing=listing)] == ["L1", "L2"]
    assert listing.reads == 2  # just changed: not trusted yet
    _age(root, 5)  # the folder's last change is now five seconds old
    pending(home, "iot_mqtt", "telemetry", "w", listing=listing)
    pending(home, "iot_mqtt", "telemetry", "w", listing=listing)
    assert listing.reads == 3  # read once more, then reused
    land(pa.table({"i": [1]}), home, "iot_mqtt", "telemetry", "L3")
    assert [lid for lid, _ in pending(home, "iot_mqtt", "telemetry", "w", listing=listing)] == ["L1", "L2", "L3"]
    assert listing.reads == 4
