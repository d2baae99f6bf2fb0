"""Read ahead: advance a source's batch iterator on a background thread while the caller works.

A source's ``read`` spends its time in the driver (ADBC decoding a COPY stream, an HTTP page, a
file read), which releases the GIL; the runner meanwhile stamps, lands and maps the previous batch.
Items arrive in order; an error in the source is raised at the caller's next ``next``; closing the
returned iterator (or stopping early) stops the producer and closes the source in its own thread.

>>> list(prefetch(iter(range(5))))
[0, 1, 2, 3, 4]
>>> def broken():
...     yield 1
...     raise ValueError("source failed")
>>> it = prefetch(broken()); next(it)
1
>>> next(it)
Traceback (most recent call last):
...
ValueError: source failed
"""

from __future__ import annotations

import queue
import threading
from typing import Iterator, TypeVar

T = TypeVar("T")
_END = object()


class _Failed:
    def __init__(self, exc: BaseException):
        self.exc = exc


def prefetch(items: Iterator[T], depth: int = 1) -> Iterator[T]:
    """Yield ``items`` in order, read up to ``depth`` items ahead on a background thread."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(value) -> bool:
        while not stop.is_set():
            try:
                q.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    break
        except BaseException as exc:  # handed to the consumer, raised there
            put(_Failed(exc))
            return
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # a generator's finally (closing a connection) runs here, in its own thread
        put(_END)

    worker = threading.Thread(target=produce, name="wl-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item
    finally:
        stop.set()
        worker.join()
