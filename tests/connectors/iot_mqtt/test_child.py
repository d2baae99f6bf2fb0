"""The stream worker with its processing passes in a child process (connectors/iot_mqtt/child.py,
docs/adr/0286) against the real Mosquitto: every landed part processed once, a child that dies stops the
worker loudly with its parts still pending (a failing step retried while landing goes on: test_worker.py,
in both modes)."""

from __future__ import annotations

import threading
from functools import partial

import pyarrow as pa
import pytest

from connectors.iot_mqtt.child import InChild
from connectors.iot_mqtt.consumers import pending
from connectors.iot_mqtt.passes import Stats
from connectors.iot_mqtt.worker import Worker
from connectors.landing import land
from tests.connectors.iot_mqtt.child_steps import exits_on_first_batch, fails_to_start, waits_for_file
from tests.connectors.iot_mqtt.duck_sink import duck_sink, rows
from tests.connectors.iot_mqtt.test_worker import config, running, wait_for

pytestmark = pytest.mark.services


def test_every_landed_part_is_processed_once_in_the_child(system_broker, prefix, home, tmp_path,
                                                          publisher_factory):
    db = str(tmp_path / "crm.duckdb")
    w = Worker(config(prefix, system_broker), home, InChild(partial(duck_sink, db)))
    pub = publisher_factory(system_broker)
    with running(w) as result:
        assert w.child.proc is not None and w.child.proc.is_alive()
        for i in range(60):
            pub.publish(f"{prefix}/devices/d{i % 3}/telemetry", {"seq": i})
        pub.wait()
        wait_for(lambda: w.stats.acked == 60, what="60 acked")
    stats = result["stats"]
    assert stats.processed_rows == 60 and stats.processed_parts >= 1 and stats.process_failures == 0
    assert not pending(home, "iot_mqtt", "telemetry", w.consumer)  # the stop waited for the last pass
    assert w.child.proc is None and w.child.error is None  # ended cleanly
    got = rows(db, "telemetry")
    assert len(got) == len({r[0] for r in got}) == 60


def test_a_child_that_dies_stops_the_worker_loudly_and_its_parts_stay_pending(system_broker, prefix, home,
                                                                              publisher_factory):
    w = Worker(config(prefix, system_broker), home, InChild(partial(exits_on_first_batch, 7)))
    stop, failure = threading.Event(), {}

    def run():
        try:
            w.run(stop)
        except RuntimeError as exc:
            failure["error"] = str(exc)

    th = threading.Thread(target=run, daemon=True)
    th.start()
    assert w.connected.wait(60), "worker did not connect"
    pub = publisher_factory(system_broker)
    pub.publish(f"{prefix}/devices/d1/telemetry", {"seq": 1})
    pub.wait()
    th.join(60)
    stop.set()
    assert not th.is_alive()
    assert "exit code 7" in failure["error"] and "landed parts stay pending" in failure["error"]
    assert w.stats.acked == 1 and len(pending(home, "iot_mqtt", "telemetry", w.consumer)) == 1


def test_a_step_that_cannot_start_is_raised_before_the_worker_subscribes(home):
    """No broker is needed: the error (here a config error, as from a broken spec) comes from the child before
    the worker connects, with its own type and text."""
    from connectors.errors import ConfigError

    w = Worker(config("never", 1), home, InChild(partial(fails_to_start, "spec x: unknown function")))
    with pytest.raises(ConfigError, match="spec x: unknown function"):
        w.run(threading.Event())
    assert not w.connected.is_set() and w.child.proc is None


def test_the_stop_reaches_a_child_whose_wake_up_pipe_is_full(home, tmp_path):
    """Wake-ups are dropped while the pipe is full (the child is awake anyway); the stop must not be: it waits
    until the child reads again. Here the child's pass blocks on a file the test removes later."""
    gate = tmp_path / "gate"
    gate.write_text("closed")
    child, stats = InChild(partial(waits_for_file, str(gate)), ready_timeout=60), Stats()
    child.start(home, "c", ("telemetry",), stats)  # ready: nothing landed yet
    land(pa.table({"a": [1]}), home, "iot_mqtt", "telemetry", "L1")
    for _ in range(100_000):  # the first wakes it into a pass that blocks; far more than a pipe holds
        child.notify()
    stopper = threading.Thread(target=child.stop, args=(stats,))
    stopper.start()
    stopper.join(1.0)
    assert stopper.is_alive()  # waiting for the blocked pass
    gate.unlink()
    stopper.join(60)
    assert not stopper.is_alive() and child.error is None and child.proc is None
    assert stats.processed_rows == 1 and not pending(home, "iot_mqtt", "telemetry", "c")
