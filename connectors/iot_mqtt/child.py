"""The stream worker's processing passes in a child process (docs/adr/0286).

On one interpreter, paho's network thread, the landing thread and the map → load → lineage pass
share one GIL: at a sustained backlog they take turns, and the drain runs at well under half the
rate of a bare subscriber. In a child process the passes get their own interpreter (and core);
the parent lands and acks as before, then writes one byte to a pipe per landed batch. The child
drains the landing zone through the consumer cursor (:class:`~connectors.iot_mqtt.passes.Passes`),
so nothing is handed over in memory that a restart could not find on disk.

Lifecycle: :meth:`InChild.start` spawns the child, which takes the consumer's lock
(``state/consumers/<system>/<consumer>.lock``: a second processor of the same consumer, e.g. the
child of a killed worker still finishing its pass, waits for it), builds the process function from
a picklable ``factory``, runs one forced pass over what landed before (a crash) and then says it is
ready (a factory that fails — e.g. a broken spec — is raised by :meth:`InChild.start` in the worker,
which then never subscribes). :meth:`InChild.stop` asks for a last pass and waits. The child ignores SIGINT/SIGTERM (the
parent finishes its batch first, then stops it); when the parent dies (``kill -9``) the pipe closes,
and the child makes its last pass and exits. A child that dies is reported by :meth:`InChild.check`,
and the worker stops loudly, as when its processing thread fails.
"""

from __future__ import annotations

import fcntl
import logging
import multiprocessing as mp
import os
import select
import signal
import time
from collections.abc import Callable
from pathlib import Path

from connectors.base.home import Home
from connectors.iot_mqtt.passes import SYSTEM, Passes, Process, Stats

log = logging.getLogger(__name__)
_STOP, _LANDED = b"s", b"l"


class InChild:
    """Give this as the worker's ``process``: ``factory()`` (picklable, e.g. a ``functools.partial`` of a
    module-level function) is called in the child and returns the process function."""

    def __init__(self, factory: Callable[[], Process], ready_timeout: float = 120.0):
        self.factory, self.ready_timeout = factory, ready_timeout
        self.proc: mp.process.BaseProcess | None = None
        self.error: str | None = None  # why the child stopped early, once it did
        self._wake_w = None  # our end of the wake-up pipe
        self._reports = None
        self._counts = (0, 0, 0)  # the child's (parts, rows, failures) last reported

    def start(self, home: Home, consumer: str, streams: tuple[str, ...], stats: Stats,
              load_parts: int | None = None) -> None:
        """Spawn the child and wait until it is ready (its pass over what landed before is done)."""
        ctx = mp.get_context("spawn")  # never fork: paho's and our own threads may hold locks
        # Connections (not bare os.pipe() ends): spawn hands only these to the child; the wake-ups are raw bytes
        wake_r, wake_w = ctx.Pipe(duplex=False)
        self._wake_w = wake_w
        os.set_blocking(wake_w.fileno(), False)
        self._reports, child_end = ctx.Pipe(duplex=False)
        self.error, self._counts = None, (0, 0, 0)
        self.proc = ctx.Process(target=_main, name=f"iot_mqtt-process-{consumer}", daemon=True,
                                args=(self.factory, str(home.root), consumer, streams, wake_r, child_end,
                                      logging.getLogger().getEffectiveLevel(), load_parts))
        self.proc.start()
        wake_r.close()  # the child has its own copies of both ends it uses
        child_end.close()
        end = time.monotonic() + self.ready_timeout
        while True:
            left = end - time.monotonic()
            if left <= 0 or not self._reports.poll(left):
                log.warning("iot_mqtt: the processing process is not ready after %.0fs; subscribing anyway",
                            self.ready_timeout)
                return
            try:
                msg = self._reports.recv()
            except EOFError:  # it died while starting: check() reports it
                return
            if msg[0] == "ready":
                return
            if msg[0] == "failed_start":  # e.g. a broken spec: the worker stops before it subscribes
                self.stop(stats)
                raise msg[1]
            self._take(msg, stats)

    def notify(self) -> None:
        """A batch landed: wake the child (a full pipe means it is awake already)."""
        try:
            os.write(self._wake_w.fileno(), _LANDED)
        except (BlockingIOError, BrokenPipeError):
            pass

    def check(self, stats: Stats) -> None:
        """Take the child's reports into ``stats``; sets :attr:`error` if it died."""
        self._take_all(stats)
        if self.error is None and self.proc is not None and not self.proc.is_alive():
            self.error = f"the processing process ended (exit code {self.proc.exitcode})"

    def _take_all(self, stats: Stats) -> None:
        try:
            while self._reports.poll():
                self._take(self._reports.recv(), stats)
        except (EOFError, OSError):
            pass

    def _take(self, msg: tuple, stats: Stats) -> None:
        kind, *rest = msg
        if kind == "counts":
            parts, rows, failures = rest
            old = self._counts
            stats.processed_parts += parts - old[0]
            stats.processed_rows += rows - old[1]
            stats.process_failures += failures - old[2]
            self._counts = (parts, rows, failures)
        elif kind == "fatal":
            self.error = rest[0]

    def stop(self, stats: Stats, timeout: float = 600.0) -> None:
        """Ask for the last pass and wait for the child to end (what landed is processed first)."""
        if self.proc is None:
            return
        end = time.monotonic() + timeout
        while self.proc.is_alive() and time.monotonic() < end:
            try:  # a pipe full of wake-ups (a pass that hangs) takes the stop once the child reads again
                os.write(self._wake_w.fileno(), _STOP)
                break
            except BlockingIOError:
                self.proc.join(0.1)
            except OSError:  # it is gone
                break
        self.proc.join(max(0.0, end - time.monotonic()))
        if self.proc.is_alive():
            log.error("iot_mqtt: the processing process did not stop in %.0fs; terminating it", timeout)
            self.proc.terminate()
            self.proc.join(10)
        self._take_all(stats)
        self._wake_w.close()
        self._reports.close()
        if self.error is None and self.proc.exitcode != 0:
            self.error = f"the processing process ended (exit code {self.proc.exitcode})"
        self.proc = None


def consumer_lock_path(home: Home, consumer: str) -> Path:
    return home.state / "consumers" / SYSTEM / f"{consumer}.lock"


def _main(factory, home_root: str, consumer: str, streams: tuple[str, ...], wake, reports,
          log_level: int = logging.WARNING, load_parts: int | None = None) -> None:
    """The child: lock the consumer, build ``process``, pass over what is pending, then one pass per wake-up."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us after its last batch
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s")
    home = Home(home_root)
    lock_path = consumer_lock_path(home, consumer)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            process = factory()
        except Exception as exc:  # the parent raises it (a config error stays one); the worker never subscribes
            reports.send(("failed_start", _picklable(exc)))
            return
        passes = Passes(home, consumer, streams, process, load_parts=load_parts)
        try:
            passes.run(force=True)  # parts landed before a crash
            _report(reports, passes.stats)
            reports.send(("ready",))
            _serve(passes, wake.fileno(), reports)
            passes.run(force=True)  # what landed before the stop
            _report(reports, passes.stats)
        except BaseException as exc:  # mark_done failed (disk full?): the parts stay pending for a restart
            log.exception("iot_mqtt: the processing process failed outside `process`")
            reports.send(("fatal", f"processing failed outside `process` ({exc!r}); landed parts stay pending"))
            raise
        finally:
            getattr(process, "close", lambda: None)()


def _picklable(exc: Exception) -> Exception:
    """``exc`` if it survives pickling (our errors do), else a RuntimeError with its text."""
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def _serve(passes: Passes, wake_r: int, reports) -> None:
    """Pass on each wake-up until the parent says stop or is gone (the pipe closed)."""
    while True:
        ready, _, _ = select.select([wake_r], [], [], passes.wait())
        if ready:
            data = os.read(wake_r, 65536)
            if not data or _STOP in data:
                return
            passes.dirty.set()
        before = (passes.stats.processed_parts, passes.stats.process_failures)
        passes.run()
        if (passes.stats.processed_parts, passes.stats.process_failures) != before:
            _report(reports, passes.stats)


def _report(reports, stats: Stats) -> None:
    reports.send(("counts", stats.processed_parts, stats.processed_rows, stats.process_failures))

