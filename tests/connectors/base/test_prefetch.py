"""prefetch: order, errors, early stop (the source is closed in its own thread), bounded read-ahead."""

from __future__ import annotations

import threading
import time

import pytest

from connectors.base.prefetch import prefetch


def test_items_keep_their_order_and_read_ahead_is_bounded():
    produced = []

    def source():
        for i in range(10):
            produced.append(i)
            yield i

    it = prefetch(source(), depth=2)
    assert next(it) == 0
    time.sleep(0.3)
    assert len(produced) <= 4  # the one taken, two queued, one waiting to be queued
    assert list(it) == list(range(1, 10))


def test_an_error_in_the_source_reaches_the_consumer_after_the_items_before_it():
    def source():
        yield "a"
        yield "b"
        raise ConnectionError("database went away")

    it = prefetch(source())
    assert [next(it), next(it)] == ["a", "b"]
    with pytest.raises(ConnectionError, match="went away"):
        next(it)


def test_stopping_early_closes_the_source_in_its_thread():
    closed = []

    def source():
        try:
            for i in range(1000):
                yield i
        finally:
            closed.append(threading.current_thread().name)

    it = prefetch(source())
    assert next(it) == 0
    it.close()
    assert closed == ["wl-prefetch"]
