"""The stream worker against the real Mosquitto (127.0.0.1:1883; a unique topic prefix and
client id per test): land before ack, quarantine and go on, shared subscriptions, MQTT 3.1.1
persistent sessions, a failing downstream that resumes."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from functools import partial

import pyarrow.parquet as pq
import pytest

from connectors.iot_mqtt.child import InChild
from connectors.iot_mqtt.config import MqttConfig
from connectors.iot_mqtt.consumers import pending
from connectors.iot_mqtt.sparkplug.payload import encode_payload
from connectors.iot_mqtt.worker import Worker
from tests.connectors.iot_mqtt.duck_sink import duck_sink, hold_write_lock, rows

pytestmark = pytest.mark.services


def config(prefix: str, port: int, **extra) -> MqttConfig:
    return MqttConfig.from_dict({"client_id": extra.pop("client_id", f"{prefix}-w"), "port": port, "topics": [
        {"filter": f"spBv1.0/{prefix}/#", "stream": "sparkplug", "format": "sparkplug"},
        {"filter": f"{prefix}/devices/+/status", "stream": "device_status", "format": "json_status",
         "device_level": 2},
        {"filter": f"{prefix}/devices/+/telemetry", "stream": "telemetry", "device_level": 2},
        {"filter": f"{prefix}/devices/+/other", "stream": "telemetry_unrouted"},
    ], **extra})


@contextmanager
def running(worker: Worker):
    stop = threading.Event()
    result: dict = {}
    th = threading.Thread(target=lambda: result.setdefault("stats", worker.run(stop)), daemon=True)
    th.start()
    assert worker.connected.wait(10), "worker did not connect"
    try:
        yield result
    finally:
        stop.set()
        th.join(30)


def wait_for(cond, timeout=20.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_lands_acks_and_quarantines_and_the_stream_goes_on(system_broker, prefix, home, publisher_factory):
    cfg = config(prefix, system_broker, max_payload_bytes=1024)
    pub = publisher_factory(system_broker)
    w = Worker(cfg, home)
    with running(w):
        for i in range(50):
            pub.publish(f"{prefix}/devices/d{i % 5}/telemetry", {"seq": i, "temp": 20 + i})
        pub.publish(f"{prefix}/devices/d1/telemetry", b"{not json")
        pub.publish(f"{prefix}/devices/d1/telemetry", b"x" * 5000)
        pub.publish(f"{prefix}/devices/d2/status", {"status": "offline"})
        birth = encode_payload([{"name": "bdSeq", "datatype": "Int64", "value": 0}], timestamp=1, seq=0)
        pub.publish(f"spBv1.0/{prefix}/NBIRTH/n1", birth)
        pub.publish(f"spBv1.0/{prefix}/NDATA/n1", b"\x0a\xff\xff")
        for i in range(10):
            pub.publish(f"{prefix}/devices/d3/telemetry", {"seq": 100 + i})
        pub.wait()
        wait_for(lambda: w.stats.received == 65, what="65 messages")
    assert w.stats.acked == 65 and w.stats.quarantined == 3
    tel = [pq.read_table(p) for _, p in pending(home, "iot_mqtt", "telemetry", "check")]
    assert sum(t.num_rows for t in tel) == 60
    parts = (home.quarantine / "iot_mqtt" / "messages").rglob("part-*.parquet")  # one per micro-batch
    reasons = [r for p in parts for r in pq.read_table(p).column("reason").to_pylist()]
    assert sorted(r.split(":")[0] for r in reasons) == [
        "bad JSON", "bad Sparkplug B protobuf", "oversized message"]
    st = [pq.read_table(p) for _, p in pending(home, "iot_mqtt", "device_status", "check")]
    assert sorted(d for t in st for d in t.column("device_id").to_pylist()) == ["d2", f"{prefix}/n1"]
    # acked for real: the same persistent session gets nothing back
    again = Worker(cfg, home)
    with running(again):
        time.sleep(1.0)
    assert again.stats.received == 0


def test_a_landing_failure_leaves_messages_unacked_and_they_come_back(system_broker, prefix, home,
                                                                      publisher_factory):
    cfg = config(prefix, system_broker)
    (home.landing / "iot_mqtt").mkdir(parents=True)
    (home.landing / "iot_mqtt" / "telemetry").write_text("a file where the stream folder goes")  # land() fails
    pub = publisher_factory(system_broker)
    w = Worker(cfg, home)
    stop = threading.Event()
    err: list[BaseException] = []
    th = threading.Thread(target=lambda: _run_catching(w, stop, err), daemon=True)
    th.start()
    assert w.connected.wait(10)
    for i in range(20):
        pub.publish(f"{prefix}/devices/d1/telemetry", {"seq": i})
    pub.wait()
    th.join(20)
    assert err and w.stats.acked == 0  # the worker stopped on the failed landing, nothing acked
    (home.landing / "iot_mqtt" / "telemetry").unlink()
    again = Worker(cfg, home)
    with running(again):
        wait_for(lambda: again.stats.acked == 20, what="20 redelivered messages landed and acked")
    seqs = sorted(int(s.split(":")[1].strip(" }")) for _, p in pending(home, "iot_mqtt", "telemetry", "c")
                  for s in pq.read_table(p).column("payload_json").to_pylist())
    assert seqs == list(range(20))


def _run_catching(w, stop, err):
    try:
        w.run(stop)
    except BaseException as exc:  # noqa: BLE001 - the test inspects it
        err.append(exc)


def test_shared_subscription_splits_messages_between_workers(system_broker, prefix, tmp_path, publisher_factory):
    from connectors.base.home import Home

    homes = [Home(tmp_path / "a"), Home(tmp_path / "b")]
    ws = [Worker(config(prefix, system_broker, client_id=f"{prefix}-{i}", shared_group=prefix), h)
          for i, h in enumerate(homes)]
    pub = publisher_factory(system_broker)
    with running(ws[0]), running(ws[1]):
        for i in range(200):
            pub.publish(f"{prefix}/devices/d{i % 7}/telemetry", {"seq": i})
        pub.wait()
        wait_for(lambda: ws[0].stats.acked + ws[1].stats.acked == 200, what="200 messages over two workers")
    assert ws[0].stats.acked > 0 and ws[1].stats.acked > 0
    ids = [r for h in homes for _, p in pending(h, "iot_mqtt", "telemetry", "c")
           for r in pq.read_table(p).column("_wl_record_id").to_pylist()]
    assert len(ids) == len(set(ids)) == 200


def test_mqtt311_persistent_session_keeps_messages_published_while_offline(system_broker, prefix, home,
                                                                            publisher_factory):
    cfg = config(prefix, system_broker, protocol="3.1.1")
    first = Worker(cfg, home)
    with running(first):
        pass  # subscribe once, then go away keeping the session
    pub = publisher_factory(system_broker)
    for i in range(30):
        pub.publish(f"{prefix}/devices/d1/telemetry", {"seq": i})
    pub.wait()
    second = Worker(cfg, home)
    with running(second):
        wait_for(lambda: second.stats.acked == 30, what="30 queued messages")


@pytest.mark.parametrize("mode", ["thread", "child"])
def test_downstream_failure_keeps_parts_pending_and_resumes(system_broker, prefix, home, tmp_path,
                                                           publisher_factory, mode):
    """The step fails while another process holds the database; landing and acking go on, the parts stay
    pending and are processed once it is free — on the worker's thread and in its child process alike."""
    db = str(tmp_path / "crm.duckdb")
    holder = hold_write_lock(db)  # another process holds the DuckDB write lock
    step = duck_sink(db) if mode == "thread" else InChild(partial(duck_sink, db))
    w = Worker(config(prefix, system_broker), home, step)
    pub = publisher_factory(system_broker)
    with running(w):
        for i in range(40):
            pub.publish(f"{prefix}/devices/d{i % 4}/telemetry", {"seq": i})
        pub.wait()
        wait_for(lambda: w.stats.acked == 40 and w.stats.process_failures >= 1,
                 what="40 landed and acked while the database is locked")
        assert holder.poll() is None and pending(home, "iot_mqtt", "telemetry", w.consumer)
        holder.wait(10)
        wait_for(lambda: not pending(home, "iot_mqtt", "telemetry", w.consumer), timeout=40,
                 what="the pending parts processed once the database is back")
    got = rows(db, "telemetry")
    assert len(got) == len({r[0] for r in got}) == 40


def crm_process(home):
    """The processing step the runner will own (map → load → lineage), reduced to the load:
    device_status rows upserted into the real CRM destination (connectors.crm, DuckDB via dlt)."""
    from connectors.crm import open_destination

    dest = open_destination(home)

    def process(tables):
        st = tables.get("device_status")
        if st is not None and st.num_rows:
            cols = ["_wl_record_id", "device_id", "status", "reason", "event_time", "source", "_wl_load_id"]
            dest.load("device_event", st.select(cols), key=["_wl_record_id"], write="upsert",
                      load_id=st.column("_wl_load_id")[0].as_py())

    return dest, process


def test_status_events_reach_the_crm_once_even_when_delivered_twice(system_broker, prefix, home,
                                                                  publisher_factory):
    dest, process = crm_process(home)
    w = Worker(config(prefix, system_broker), home, process)
    pub = publisher_factory(system_broker)
    with running(w):
        for dev in ("d1", "d2", "d3"):
            pub.publish(f"{prefix}/devices/{dev}/status", {"status": "online", "ts": 1_700_000_000_000})
        pub.publish(f"{prefix}/devices/d2/status", {"status": "offline", "ts": 1_700_000_060_000})
        pub.publish(f"{prefix}/devices/d2/status", {"status": "offline", "ts": 1_700_000_060_000})  # again
        birth = encode_payload([{"name": "bdSeq", "datatype": "Int64", "value": 7}], timestamp=1, seq=0)
        death = encode_payload([{"name": "bdSeq", "datatype": "Int64", "value": 7}], timestamp=2, seq=None)
        pub.publish(f"spBv1.0/{prefix}/NBIRTH/gw", birth)
        pub.publish(f"spBv1.0/{prefix}/NDEATH/gw", death)
        pub.wait()
        wait_for(lambda: w.stats.acked == 7, what="7 messages")
        wait_for(lambda: w.stats.processed_parts >= 1 and not pending(home, "iot_mqtt", "device_status", w.consumer),
                 timeout=60, what="device_status loaded into the CRM")
    crm = dest.read("device_event")
    got = sorted(zip(crm.column("device_id").to_pylist(), crm.column("status").to_pylist(),
                     crm.column("reason").to_pylist()))
    assert got == [("d1", "online", "birth"), ("d2", "offline", "death"), ("d2", "online", "birth"),
                   ("d3", "online", "birth"), (f"{prefix}/gw", "offline", "death"), (f"{prefix}/gw", "online", "birth")]


def test_landing_and_acking_go_on_while_a_batch_is_processed(system_broker, prefix, home, publisher_factory):
    """Processing runs on its own thread (ADR 0285): while ``process`` is blocked, later messages are still
    landed and acked, their parts stay pending (marked done only after a process call returned), and once it
    returns the next drain takes all of them — every message processed exactly once."""
    release, entered = threading.Event(), threading.Event()
    seen: list[int] = []

    def process(tables):
        t = tables.get("telemetry")
        if t is not None:
            seen.extend(int(s.split(":")[1].strip(" }")) for s in t.column("payload_json").to_pylist())
        entered.set()
        assert release.wait(30), "the test never released the processing step"

    w = Worker(config(prefix, system_broker), home, process)
    pub = publisher_factory(system_broker)
    with running(w) as result:
        pub.publish(f"{prefix}/devices/d1/telemetry", {"seq": 0})
        pub.wait()
        assert entered.wait(20), "the first batch never reached process"
        for i in range(1, 40):
            pub.publish(f"{prefix}/devices/d1/telemetry", {"seq": i})
        pub.wait()
        wait_for(lambda: w.stats.acked == 40, what="40 acked while process is blocked")
        assert w.stats.processed_parts == 0  # the first call has not returned: nothing marked done
        assert len(pending(home, "iot_mqtt", "telemetry", w.consumer)) >= 2
        release.set()
        wait_for(lambda: not pending(home, "iot_mqtt", "telemetry", w.consumer), what="all parts processed")
    assert "stats" in result
    assert sorted(seen) == list(range(40))


def test_stop_processes_what_landed_before_returning(system_broker, prefix, home, publisher_factory):
    """A graceful stop while a batch is being processed: run() returns only after the last landed part was
    processed and marked done."""
    release = threading.Event()
    calls: list[int] = []

    def process(tables):
        calls.append(sum(t.num_rows for t in tables.values()))
        release.wait(2)  # slow downstream: the stop comes while this runs

    w = Worker(config(prefix, system_broker), home, process)
    pub = publisher_factory(system_broker)
    with running(w):
        for i in range(25):
            pub.publish(f"{prefix}/devices/d2/telemetry", {"seq": i})
        pub.wait()
        wait_for(lambda: w.stats.acked == 25 and calls, what="25 acked and processing started")
    assert not pending(home, "iot_mqtt", "telemetry", w.consumer)
    assert sum(calls) == 25 and w.processor_error is None


def test_handed_over_tables_equal_the_landed_parts(system_broker, prefix, home, publisher_factory):
    """The worker hands the tables it just landed to the processing thread instead of reading them back; they
    must be exactly what a reader of the parts gets (Parquet stores a timestamp[s] as timestamp[ms])."""
    import pyarrow as pa

    got: dict[str, list] = {}

    def process(tables):
        for s, t in tables.items():
            got.setdefault(s, []).append(t)

    w = Worker(config(prefix, system_broker), home, process)
    pub = publisher_factory(system_broker)
    with running(w):
        for i in range(30):
            pub.publish(f"{prefix}/devices/d{i % 3}/telemetry",
                        {"seq": i, "temp": 20.5, "event_time": f"2026-11-24T08:00:{i:02d}Z"})
            pub.publish(f"{prefix}/devices/d{i % 3}/status",
                        {"status": "online" if i % 2 else "offline", "event_time": f"2026-11-24T08:00:{i:02d}Z"})
        pub.wait()
        wait_for(lambda: w.stats.acked == 60 and not pending(home, "iot_mqtt", "telemetry", w.consumer)
                 and not pending(home, "iot_mqtt", "device_status", w.consumer), what="60 processed")
    assert not w._written  # every handed-over table was taken
    for stream in ("telemetry", "device_status"):
        parts = sorted((home.landing / "iot_mqtt" / stream).rglob("part-*.parquet"))
        on_disk = pa.concat_tables([pq.read_table(p) for p in parts], promote_options="permissive")
        handed = pa.concat_tables(got[stream], promote_options="permissive")
        assert handed.schema.equals(on_disk.schema), (handed.schema, on_disk.schema)
        assert handed.equals(on_disk)


def test_a_backlog_is_collected_in_full_batches(prefix, home):
    """Messages that waited in the inbox longer than the batch window (a backlog after a slow landing or a
    reconnect) are still taken up to ``max_messages`` per batch, never one by one."""
    from connectors.iot_mqtt.decode import Message

    cfg = config(prefix, 1883, batch={"max_messages": 100, "max_ms": 50})
    w = Worker(cfg, home)
    old = int(time.time() * 1000) - 10_000  # received 10 s ago: far beyond the window
    for i in range(250):
        w.inbox.put((0, Message(f"{prefix}/devices/d1/telemetry", b'{"seq": %d}' % i, 1, False, False, i + 1, old)))
    sizes = [len(w._collect(threading.Event())) for _ in range(3)]
    assert sizes == [100, 100, 50]
    assert w._collect(threading.Event()) == []  # empty inbox: nothing, after the poll timeout


def test_stopping_puts_a_wake_up_in_the_inbox_that_is_never_landed(prefix, home):
    """A signal can leave the main thread's timed ``SimpleQueue.get`` hanging (CPython 3.11): once ``stop``
    is set, a wake-up goes into the inbox; collecting skips it, so nothing extra is landed or acked."""
    from connectors.iot_mqtt.decode import Message
    from connectors.iot_mqtt.worker import _WAKE

    w = Worker(config(prefix, 1883), home)
    stop, ended = threading.Event(), threading.Event()
    waker = threading.Thread(target=w._wake_on_stop, args=(stop, ended))
    waker.start()
    now = int(time.time() * 1000)
    w.inbox.put((0, Message(f"{prefix}/devices/d1/telemetry", b'{"seq": 1}', 1, False, False, 1, now)))
    stop.set()
    waker.join(5)
    assert not waker.is_alive()
    got = w._collect(stop)
    assert [m.mid for _, m in got] == [1]  # the message, not the wake-up behind it
    assert w._collect(stop) == []  # the inbox is empty again
    ended.set()


def test_acks_of_a_batch_share_one_wakeup_and_the_socketpair_comes_back(prefix, home):
    """``_one_wakeup`` folds the per-ack wake-ups of paho's network thread into one; the socketpair it
    borrows is restored (and one byte is sent on it), also when an ack raises."""
    from connectors.iot_mqtt.worker import _one_wakeup

    w = Worker(config(prefix, 1883), home)
    c = w.client
    c.loop_start()  # creates paho's socketpair (no connection needed)
    try:
        wake = c._sockpairW
        assert wake is not None
        with pytest.raises(RuntimeError):
            with _one_wakeup(c):
                assert c._sockpairW is None  # packets queued now do not wake the thread one by one
                raise RuntimeError("an ack failed")
        assert c._sockpairW is wake
    finally:
        c.loop_stop()


def test_a_batch_stays_open_while_processing_is_busy_and_closes_when_it_is_free(prefix, home, monkeypatch):
    """Landing sooner than processing can take it only costs CPU: while the processing thread is in a pass,
    the micro-batch stays open (up to MAX_WINDOW_MS) and closes once the pass is over; when processing is
    idle, the configured window applies."""
    import connectors.iot_mqtt.worker as worker_mod
    from connectors.iot_mqtt.decode import Message

    monkeypatch.setattr(worker_mod, "MAX_WINDOW_MS", 60_000)
    w = Worker(config(prefix, 1883, batch={"max_messages": 100, "max_ms": 20}), home)

    def msg(i):
        return (0, Message(f"{prefix}/devices/d1/telemetry", b'{"seq": %d}' % i, 1, False, False, i + 1,
                           int(time.time() * 1000)))

    def collect_with_late_message(busy: bool) -> int:
        if busy:
            w._busy.set()
        w.inbox.put(msg(0))
        out: list = []
        th = threading.Thread(target=lambda: out.extend(w._collect(threading.Event())))
        th.start()
        time.sleep(0.3)  # well past the 20 ms window
        w.inbox.put(msg(1))
        time.sleep(0.1)
        w._busy.clear()  # the pass is over
        th.join(10)
        while True:  # leave the inbox empty for the next case
            try:
                w.inbox.get_nowait()
            except Exception:
                break
        return len(out)

    assert collect_with_late_message(busy=False) == 1  # idle processing: the window closed at 20 ms
    assert collect_with_late_message(busy=True) == 2  # busy: still open 300 ms later, closed when it was free


def test_a_failure_outside_process_stops_the_worker_and_leaves_the_parts_pending(system_broker, prefix, home,
                                                                                  publisher_factory):
    """The cursor cannot be written (a file where its folder goes): the processing thread fails outside
    ``process``; the worker must not go on landing without processing — run() raises, nothing is lost."""
    seen: list[int] = []
    (home.state / "consumers").mkdir(parents=True)
    (home.state / "consumers" / "iot_mqtt").write_text("not a folder")
    w = Worker(config(prefix, system_broker), home, lambda tables: seen.append(sum(t.num_rows for t in tables.values())))
    pub = publisher_factory(system_broker)
    stop, err = threading.Event(), []
    th = threading.Thread(target=lambda: _run_catching(w, stop, err), daemon=True)
    th.start()
    assert w.connected.wait(10)
    for i in range(5):
        pub.publish(f"{prefix}/devices/d1/telemetry", {"seq": i})
    pub.wait()
    th.join(30)
    assert not th.is_alive() and err and "processing thread failed" in str(err[0])
    assert w.stats.acked >= 1 and sum(seen) >= 1 and w.stats.processed_parts == 0
    (home.state / "consumers" / "iot_mqtt").unlink()
    # every acked message is landed and still pending (what was not acked yet stays with the broker's session)
    assert sum(pq.read_table(p).num_rows for _, p in pending(home, "iot_mqtt", "telemetry", w.consumer)) == w.stats.acked
