"""The long-running stream worker: subscribe → micro-batch → land → ack, and beside it: process.

A micro-batch closes at ``batch_max_ms`` (≤ 200 ms) after its first message or at
``batch_max_messages``; it is landed durably (:class:`~connectors.iot_mqtt.ingest.Ingestor`)
and only then acked. Processing (map → load → lineage, supplied by the runner as
``process``) runs on its own thread (docs/adr/0285), or in a child process when ``process`` is an
:class:`~connectors.iot_mqtt.child.InChild` (docs/adr/0286, what ``weftline stream`` runs): it drains
the landing through the consumer cursor, so landing and acking never wait for a load, and a batch that lands while
the previous one is processed is taken with the next drain. A crash anywhere loses nothing:
unlanded messages are redelivered by the broker, landed but unprocessed parts are drained on
restart (a part is marked done only after ``process`` returned), and a failing ``process`` is
retried with backoff while ingest goes on. SIGTERM/SIGINT (see :func:`stop_on_signals`)
finish the current micro-batch, ack it, process what is pending, then disconnect keeping the
session.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from contextlib import contextmanager

import pyarrow as pa
import pyarrow.parquet as pq
from paho.mqtt.client import Client

from connectors.base.home import Home
from connectors.errors import ConfigError, RetriableError
from connectors.iot_mqtt.client import connect, make_client, subscriptions
from connectors.iot_mqtt.config import MqttConfig
from connectors.iot_mqtt.child import InChild
from connectors.iot_mqtt.decode import EVENTS_STREAM, STATUS_STREAM, Message
from connectors.iot_mqtt.ingest import Ingestor
from connectors.iot_mqtt.passes import Passes, Process, Stats

log = logging.getLogger(__name__)
DEFAULT_CONSUMER = "stream-worker"
_WAKE = object()  # put in the inbox to end a wait once the worker is stopping (never landed)
MAX_WINDOW_MS = 200  # the longest a micro-batch stays open (config's max_ms is ≤ this), see _collect


class Worker:
    """One MQTT worker. ``process(tables)`` gets ``{stream: landed table}`` on the worker's processing
    thread; an :class:`~connectors.iot_mqtt.child.InChild` runs the passes in a child process instead
    (docs/adr/0286); None: land only."""

    def __init__(self, cfg: MqttConfig, home: Home, process: Process | InChild | None = None,
                 consumer: str = DEFAULT_CONSUMER):
        self.cfg, self.home, self.consumer = cfg, home, consumer
        self.child = process if isinstance(process, InChild) else None
        self.process = None if self.child else process
        self.ingestor = Ingestor(cfg, home)
        self.stats = Stats()
        self.inbox: queue.SimpleQueue[tuple[int, Message]] = queue.SimpleQueue()
        self.connected = threading.Event()  # set once subscribed (after each (re)connect)
        self._generation = 0
        self.refused: str | None = None  # the broker's reason when it refused our CONNECT
        self._written: dict = {}  # part path -> the table just landed there, for the processing thread
        self.passes = Passes(home, consumer, self.streams, self.process, self.stats, self._written, cfg.parts_per_load)
        self._dirty, self._busy = self.passes.dirty, self.passes.busy  # landed since the last pass / in a pass
        self._closing = threading.Event()  # the processing thread: do a last pass and end
        self.processor_error: BaseException | None = None  # what ended the processing thread, if anything
        self.client = self._client()

    # paho callbacks (network thread)
    def _client(self) -> Client:
        c = make_client(self.cfg)

        def on_connect(client, userdata, flags, reason_code, properties):
            if reason_code.is_failure:
                log.error("iot_mqtt: connect refused: %s", reason_code)
                self.refused = str(reason_code)
                return
            self._generation += 1
            self.stats.connects += 1
            client.subscribe(subscriptions(self.cfg))
            log.info("iot_mqtt: connected (session present: %s)", flags.session_present)

        def on_subscribe(client, userdata, mid, reason_codes, properties):
            bad = [rc for rc in reason_codes if rc.is_failure]
            if bad:
                log.error("iot_mqtt: subscription refused: %s", bad)
                return
            self.connected.set()  # ready: subscribed (SUBACK received)

        def on_disconnect(client, userdata, flags, reason_code, properties):
            self.connected.clear()
            log.warning("iot_mqtt: disconnected: %s", reason_code)

        def on_message(client, userdata, msg):
            self.inbox.put((self._generation, Message(msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain),
                                                      bool(msg.dup), msg.mid, int(time.time() * 1000))))

        c.on_connect, c.on_subscribe, c.on_disconnect, c.on_message = on_connect, on_subscribe, on_disconnect, on_message
        return c

    def _collect(self, stop: threading.Event) -> list[tuple[int, Message]]:
        try:
            first = self.inbox.get(timeout=0.05)
        except queue.Empty:
            return []
        if first is _WAKE:
            return []
        batch = [first]
        # the window runs from the first message's arrival, not from when this thread got to it (it may have
        # waited in the inbox while the previous batch was landing)
        waited = max(0.0, time.time() - first[1].received_ms / 1000)
        deadline = time.monotonic() + self.cfg.batch_max_ms / 1000 - waited
        limit = min(self.cfg.batch_max_messages, self.cfg.receive_maximum)
        # while the processing thread is busy, landing sooner would not process anything sooner: the batch
        # may stay open up to MAX_WINDOW_MS (landing fewer, larger batches leaves the CPU to processing)
        stretch = deadline + max(0.0, MAX_WINDOW_MS - self.cfg.batch_max_ms) / 1000
        while len(batch) < limit:  # the window bounds the wait; what is already queued is taken in any case
            now = time.monotonic()
            end = stretch if now >= deadline and self._busy.is_set() else deadline
            if now >= end:
                try:
                    while len(batch) < limit:
                        batch.append(self.inbox.get_nowait())
                except queue.Empty:
                    pass
                break
            try:  # past the deadline: short waits, to close as soon as processing is free
                batch.append(self.inbox.get(timeout=end - now if now < deadline else min(end - now, 0.005)))
            except queue.Empty:
                pass
        return [b for b in batch if b is not _WAKE]

    def _land_and_ack(self, batch: list[tuple[int, Message]]) -> None:
        res = self.ingestor.ingest([m for _, m in batch])  # durable when it returns
        if self.process is not None and self.processor_error is None:  # hand the tables over (no read-back)
            for s, path in res.parts.items():
                if s in self.streams:
                    self._written[path] = _as_read_back(res.tables[s], path)
        self.stats.received += len(batch)
        self.stats.quarantined += res.counts.get("quarantined", 0)
        for s, n in res.counts.items():
            if s != "quarantined":
                self.stats.landed[s] = self.stats.landed.get(s, 0) + n
        gen = self._generation
        acks = [m for g, m in batch if g == gen and m.qos > 0]  # an older connection's: redelivered, acked then
        with _one_wakeup(self.client):
            for m in acks:
                self.client.ack(m.mid, m.qos)
        self.stats.acked += len(acks)
        if self.child is not None:  # after the parts are on disk: the processing process drains them
            if res.parts:
                self.child.notify()
        else:
            self._dirty.set()  # the processing thread drains them

    @property
    def streams(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*self.cfg.streams, STATUS_STREAM, EVENTS_STREAM]))

    def process_pending(self, force: bool = False) -> int:
        """One processing pass (:class:`~connectors.iot_mqtt.passes.Passes`): drain every stream for this
        consumer, hand the tables to ``process``, mark them done. Called by the processing thread (and once
        before connecting); not safe to run twice at once."""
        if self.process is None:
            return 0
        return self.passes.run(force)

    def _process_loop(self) -> None:
        """The processing thread: wake on each landed batch (or a due retry) until closing, then a last pass."""
        try:
            while not self._closing.is_set():
                backoff = self.passes.wait() if self._dirty.is_set() else 0.0  # the child's wait, one rule
                if backoff > 0:  # a failed pass: back off (landing and acking go on meanwhile)
                    self._closing.wait(backoff)
                    continue
                if self._dirty.wait(0.2):
                    self.process_pending()
            self.process_pending(force=True)
        except BaseException as exc:  # mark_done failed (disk full?): run() raises it; parts stay pending
            self.processor_error = exc
            self._written.clear()  # nobody takes them any more; a restart reads the parts from disk
            log.exception("iot_mqtt: the processing thread stopped; the worker stops, pending parts wait for a restart")

    def _start_processor(self) -> threading.Thread | None:
        if self.process is None:
            return None
        self._closing.clear()
        th = threading.Thread(target=self._process_loop, name="iot_mqtt-process", daemon=True)
        th.start()
        return th

    def _stop_processor(self, th: threading.Thread | None) -> None:
        """Let the processing thread finish what is landed, and wait for it."""
        if th is None:
            return
        self._closing.set()
        th.join()

    def run(self, stop: threading.Event, connect_timeout: float = 30.0) -> Stats:
        """Run until ``stop`` is set; then finish the current batch, ack, process, disconnect."""
        if self.child is not None:  # it passes over the parts landed before a crash, then is ready
            self.child.start(self.home, self.consumer, self.streams, self.stats, self.cfg.parts_per_load)
        try:
            self.process_pending(force=True)  # parts landed before a crash
            connect(self.client, self.cfg)
        except BaseException:
            if self.child is not None:
                self.child.stop(self.stats)
            raise
        self.client.loop_start()
        processor = None
        ended = threading.Event()
        threading.Thread(target=self._wake_on_stop, args=(stop, ended), daemon=True, name="iot-mqtt-stop").start()
        try:
            processor = self._start_processor()
            self._wait_ready(connect_timeout)
            while not stop.is_set():
                if self.processor_error is not None:  # fail loudly: a restart drains what stays pending
                    raise RuntimeError("iot_mqtt: the processing thread failed outside `process` "
                                       f"({self.processor_error!r}); landed parts stay pending") from self.processor_error
                if self.child is not None:
                    self.child.check(self.stats)
                    if self.child.error:
                        raise RuntimeError(f"iot_mqtt: {self.child.error}; landed parts stay pending")
                batch = self._collect(stop)
                if batch:
                    self._land_and_ack(batch)
            self._drain_inbox()
        finally:
            self._stop_processor(processor)  # processes what landed, also after a landing failure
            if self.child is not None:
                self.child.stop(self.stats)
            self.client.disconnect()
            self.client.loop_stop()
            ended.set()
        log.info("iot_mqtt: stopped: %s", self.stats)
        return self.stats

    def _wake_on_stop(self, stop: threading.Event, ended: threading.Event) -> None:
        """Once ``stop`` is set, put a wake-up in the inbox. A signal that sets ``stop`` while the main thread
        waits in ``SimpleQueue.get(timeout=…)`` can leave that wait hanging in CPython 3.11 (seen: seconds on
        a 46 ms timeout, about 1 run in 15); the put releases it."""
        while not ended.is_set():
            if stop.wait(0.2):
                self.inbox.put(_WAKE)
                return

    def _wait_ready(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        while not self.connected.wait(0.05):
            if self.refused:
                raise ConfigError(f"iot_mqtt: {self.cfg.host}:{self.cfg.port} refused the connection: {self.refused}")
            if time.monotonic() > end:
                raise RetriableError(f"iot_mqtt: no connection to {self.cfg.host}:{self.cfg.port} in {timeout:.0f}s")

    def _drain_inbox(self) -> None:
        """After stop: land and ack what paho already handed us, so nothing waits for redelivery."""
        batch = []
        while True:
            try:
                item = self.inbox.get_nowait()
            except queue.Empty:
                break
            if item is not _WAKE:
                batch.append(item)
        if batch:
            self._land_and_ack(batch)


@contextmanager
def _one_wakeup(client: Client):
    """Queue a batch's PUBACKs with one wake-up of paho's network thread instead of one per ack.

    paho (2.x, pinned in uv.lock) writes a byte to its socketpair for every queued packet so that its
    network thread leaves select() and writes; for 500–1000 acks that is as many syscalls and thread
    switches. The packets go to paho's thread-safe out-queue as before; only the wake-ups are folded
    into one at the end. Without that socketpair (another paho), acks are queued as they are.
    """
    wake = getattr(client, "_sockpairW", None)
    if wake is None:
        yield
        return
    client._sockpairW = None
    try:
        yield
    finally:
        if client._sockpairW is None:  # not replaced meanwhile by a reconnect on the network thread
            client._sockpairW = wake
        try:
            client._sockpairW.send(b"0")
        except (BlockingIOError, OSError):
            pass


def _as_read_back(table: pa.Table, path) -> pa.Table:
    """``table`` as reading its part back would give it (Parquet has no timestamp[s]: such columns come back
    as timestamp[ms]), so processing sees the same table whether it was handed over or read from disk."""
    schema = pq.read_schema(path)
    return table if table.schema.equals(schema, check_metadata=True) else table.cast(schema)


def stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM / SIGINT set ``stop`` (call from the main thread)."""
    def handler(signum, frame):
        log.info("iot_mqtt: signal %s: finishing the current micro-batch", signum)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def run_worker(cfg: MqttConfig | dict, home: Home, process: Process | None = None,
               stop: threading.Event | None = None, consumer: str = DEFAULT_CONSUMER) -> Stats:
    """Build and run a worker; with no ``stop`` given, SIGTERM/SIGINT stop it."""
    if isinstance(cfg, dict):
        cfg = MqttConfig.from_dict(cfg)
    if stop is None:
        stop = threading.Event()
        stop_on_signals(stop)
    return Worker(cfg, home, process, consumer).run(stop)
