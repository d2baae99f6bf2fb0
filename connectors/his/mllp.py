"""MLLP listener: receive HL7 v2 over TCP, land each message durably, then ACK.

Built on ``hl7.mllp`` (``start_hl7_server``, ``HL7StreamReader.readblock``,
``HL7StreamWriter.writeblock``). Every connection hands its messages to one
:class:`_Lander`, which group-commits what arrived within a few milliseconds into
one Parquet part (``landing/his/<stream>/<load_id>/part-N.parquet``) and only then
resolves the waiting connections, which send ``AA``. A message that cannot be
parsed is quarantined (``quarantine/his/<stream>/…``) and answered ``AE``; one
that cannot be stored is answered ``AR`` (the sender resends; the record id, from
the sender and MSH-10 plus the message hash, de-duplicates the resend).

>>> import tempfile
>>> from connectors.base.home import Home
>>> listener = start_in_thread(Home(tempfile.mkdtemp()))
>>> acks = send_messages(listener.host, listener.port, ["MSH|^~\\\\&|A|F|||2023||ADT^A01|7|P|2.5", "PID|1"])
>>> [(a.code, a.control_id) for a in acks]
[('AA', '7'), ('AE', '')]
>>> listener.counts
{'accepted': 1, 'rejected': 1, 'failed': 0}
>>> listener.stop()
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hl7.mllp import InvalidBlockError, open_hl7_connection, start_hl7_server

from connectors.base.home import Home
from connectors.base.source import rejected
from connectors.his.ack import APPLICATION_INTERNAL_ERROR, Ack, build_ack, parse_ack
from connectors.his.hl7_record import MessageRejected, parse_message
from connectors.his.hl7_table import STREAM, to_table
from connectors.his.hl7_text import decode, split_messages
from connectors.his.landing import land_messages, quarantine
from connectors.landing import LoadRotation, new_load_id

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 16 * 1024 * 1024


@dataclass
class Inbound:
    """One received block: a parsed record, or why it was refused (with the raw bytes)."""

    origin: str
    raw: bytes
    msh: str | None  # the MSH segment's text, to answer it
    record: dict[str, Any] | None = None
    reason: str | None = None
    error_code: str = "100"


def inspect_block(block: bytes, origin: str) -> Inbound:
    """Decode and parse one MLLP block (one message); never raises."""
    text, encoding = decode(block)
    chunks = split_messages(text)
    msh = next((c.text.split("\r")[0] for c in chunks if c.text.startswith("MSH")), None)
    inbound = Inbound(origin, block, msh)
    if not chunks:
        inbound.reason = f"the MLLP block holds no HL7 message ({len(block)} bytes)"
        return inbound
    if len(chunks) > 1:
        inbound.reason = f"an MLLP block carries one message; this one holds {len(chunks)}"
        return inbound
    try:
        if chunks[0].problem:
            raise MessageRejected(chunks[0].problem)
        inbound.record = {**parse_message(chunks[0].text, encoding, raw=chunks[0].raw), "origin": origin}
    except MessageRejected as err:
        inbound.reason, inbound.error_code = str(err), err.code
    return inbound


@dataclass
class _Outcome:
    code: str
    reason: str | None = None
    error_code: str = "100"


class _Lander:
    """Group commit: land what the connections submitted, then tell each one how it went."""

    def __init__(self, home: Home, stream: str, load_id: str, max_batch: int, max_wait: float,
                 on_landed: Callable[[Path], None] | None, counts: dict[str, int]):
        self.home, self.stream = home, stream
        self.loads = LoadRotation(first=load_id)  # a new load every 500 parts or after ten idle minutes
        self.max_batch, self.max_wait, self.on_landed, self.counts = max_batch, max_wait, on_landed, counts
        self.queue: asyncio.Queue[tuple[Inbound, asyncio.Future]] = asyncio.Queue()
        self.busy = False

    async def submit(self, inbound: Inbound) -> _Outcome:
        fut = asyncio.get_running_loop().create_future()
        await self.queue.put((inbound, fut))
        return await fut

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = [await self.queue.get()]
            self.busy = True
            deadline = loop.time() + self.max_wait
            while len(items) < self.max_batch and (left := deadline - loop.time()) > 0:
                try:
                    items.append(await asyncio.wait_for(self.queue.get(), left))
                except asyncio.TimeoutError:
                    break
            outcomes = await asyncio.to_thread(self._write, [i for i, _ in items])
            for (_, fut), outcome in zip(items, outcomes):
                if not fut.done():
                    fut.set_result(outcome)
            self.busy = False

    async def drain(self, timeout: float) -> None:
        """Wait (bounded) until what was submitted is landed and answered."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while (self.busy or not self.queue.empty()) and loop.time() < end:
            await asyncio.sleep(0.01)

    def _write(self, items: list[Inbound]) -> list[_Outcome]:
        good = [i for i in items if i.record is not None]
        outcomes: dict[int, _Outcome] = {}
        if good:
            try:
                part = land_messages(to_table([i.record for i in good]), self.home, self.loads.next(), self.stream)
                outcomes.update({id(i): _Outcome("AA") for i in good})
                self.counts["accepted"] += len(good)
                if self.on_landed:
                    self.on_landed(part)
            except Exception as err:  # disk full, permissions …: refuse, the sender resends
                log.exception("MLLP: could not land %d message(s)", len(good))
                for i in good:
                    i.reason, i.error_code = f"could not store the message: {err}", APPLICATION_INTERNAL_ERROR
                outcomes.update({id(i): _Outcome("AR", i.reason, APPLICATION_INTERNAL_ERROR) for i in good})
                self.counts["failed"] += len(good)
        bad = [i for i in items if i.reason is not None]
        if bad:
            self._quarantine(bad, outcomes)
        return [outcomes[id(i)] for i in items]

    def _quarantine(self, bad: list[Inbound], outcomes: dict[int, _Outcome]) -> None:
        try:
            quarantine(rejected([(i.origin, i.reason, i.raw) for i in bad]), self.home, self.loads.current, self.stream)
        except Exception as err:
            log.exception("MLLP: could not quarantine %d message(s)", len(bad))
            for i in bad:
                outcomes[id(i)] = _Outcome("AR", f"{i.reason}; and it could not be quarantined: {err}",
                                           APPLICATION_INTERNAL_ERROR)
            return
        for i in bad:
            if id(i) not in outcomes:
                log.warning("MLLP: rejected %s: %s", i.origin, i.reason)
                outcomes[id(i)] = _Outcome("AE", i.reason, i.error_code)
                self.counts["rejected"] += 1


@dataclass
class MllpListener:
    """A running listener; ``await close()`` stops accepting and finishes the lander."""

    server: asyncio.AbstractServer
    host: str
    port: int
    load_id: str  # the first load it lands into (a new one every 500 parts or after ten idle minutes)
    stream: str
    counts: dict[str, int]
    _lander: _Lander | None = None
    _tasks: list[asyncio.Task] = field(default_factory=list)

    async def close(self, drain_timeout: float = 5.0) -> None:
        """Stop accepting, let the lander finish what it holds (bounded), then stop it."""
        self.server.close()
        await self.server.wait_closed()
        if self._lander:
            await self._lander.drain(drain_timeout)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def _answer(reader, writer, lander: _Lander) -> None:
    peer = "%s:%s" % writer.get_extra_info("peername")[:2]
    n = 0
    try:
        while True:
            n += 1
            origin = f"mllp:{peer}#{n}"
            try:
                block = await reader.readblock()
            except asyncio.IncompleteReadError:
                return  # the peer closed the connection
            except (InvalidBlockError, ValueError) as err:  # bytes outside a block, or too large: consumed
                log.warning("MLLP %s: %s", origin, err)
                writer.writeblock(build_ack(None, "AE", f"unreadable MLLP block: {err}").encode())
                await writer.drain()
                continue
            inbound = inspect_block(block, origin)
            outcome = await lander.submit(inbound)
            ack = build_ack(inbound.msh, outcome.code, outcome.reason, outcome.error_code)
            writer.writeblock(ack.encode("utf-8"))
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        return
    finally:
        writer.close()


async def serve_mllp(home: Home, host: str = "127.0.0.1", port: int = 0, *, stream: str = STREAM,
                     load_id: str | None = None, max_batch: int = 64, max_wait: float = 0.005,
                     on_landed: Callable[[Path], None] | None = None,
                     max_message_bytes: int = MAX_MESSAGE_BYTES) -> MllpListener:
    """Start listening (port 0: a free one); returns at once. ``on_landed(part)`` runs after each part lands."""
    counts = {"accepted": 0, "rejected": 0, "failed": 0}
    load_id = load_id or new_load_id()
    lander = _Lander(home, stream, load_id, max_batch, max_wait, on_landed, counts)
    task = asyncio.get_running_loop().create_task(lander.run())
    server = await start_hl7_server(lambda r, w: _answer(r, w, lander), host, port, limit=max_message_bytes)
    bound_host, bound_port = server.sockets[0].getsockname()[:2]
    log.info("MLLP listening on %s:%d, landing into his/%s/%s", bound_host, bound_port, stream, load_id)
    return MllpListener(server, bound_host, bound_port, load_id, stream, counts, lander, [task])


DEFAULT_PORT = 2575  # the port IANA registered for HL7 over MLLP


def run_mllp(config: Mapping[str, Any], home: Home, stop: threading.Event | None = None,
             on_landed: Callable[[Path], None] | None = None) -> dict[str, int]:
    """Blocking worker (``weftline stream`` for a his integration): serve until SIGINT/SIGTERM or ``stop``.

    Config: ``mllp_host`` (default 127.0.0.1), ``mllp_port`` (default 2575), ``mllp_stream``.
    Returns the counts (accepted, rejected, failed).
    """

    async def main() -> dict[str, int]:
        listener = await serve_mllp(home, config.get("mllp_host", "127.0.0.1"),
                                    int(config.get("mllp_port", DEFAULT_PORT)),
                                    stream=config.get("mllp_stream", STREAM), on_landed=on_landed)
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, done.set)
        if stop is not None:
            threading.Thread(target=lambda: (stop.wait(), loop.call_soon_threadsafe(done.set)), daemon=True).start()
        await done.wait()
        await listener.close()
        return dict(listener.counts)

    return asyncio.run(main())


class ThreadedListener:
    """:func:`serve_mllp` on its own event loop in a daemon thread (for the CLI, the demo, tests)."""

    def __init__(self, home: Home, host: str = "127.0.0.1", port: int = 0, **kwargs: Any):
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.listener: MllpListener | None = None
        self._thread = threading.Thread(target=self._run, args=(home, host, port, kwargs), daemon=True,
                                        name="weftline-mllp")
        self._thread.start()
        self._ready.wait(30)
        if self._error or self.listener is None:
            raise RuntimeError(f"MLLP listener did not start: {self._error}")

    def _run(self, home, host, port, kwargs) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self.listener = self._loop.run_until_complete(serve_mllp(home, host, port, **kwargs))
        except BaseException as err:
            self._error = err
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self.listener.close())
        self._loop.close()

    @property
    def host(self) -> str:
        return self.listener.host

    @property
    def port(self) -> int:
        return self.listener.port

    @property
    def counts(self) -> dict[str, int]:
        return dict(self.listener.counts)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)


def start_in_thread(home: Home, host: str = "127.0.0.1", port: int = 0, **kwargs: Any) -> ThreadedListener:
    """Run a listener in a background thread; ``.stop()`` it when done."""
    return ThreadedListener(home, host, port, **kwargs)


async def send_messages_async(host: str, port: int, messages: Sequence[str | bytes], timeout: float = 30.0) -> list[Ack]:
    """Send each message in its own MLLP block on one connection, waiting for its ACK before the next."""
    reader, writer = await open_hl7_connection(host, port, limit=MAX_MESSAGE_BYTES)
    acks = []
    try:
        for n, msg in enumerate(messages, 1):
            data = msg.encode("utf-8") if isinstance(msg, str) else msg
            writer.writeblock(data)
            await writer.drain()
            try:
                block = await asyncio.wait_for(reader.readblock(), timeout)
            except (asyncio.IncompleteReadError, ConnectionError) as err:
                raise ConnectionError(f"no ACK for message {n} of {len(messages)}: the connection closed") from err
            acks.append(parse_ack(block.decode("utf-8")))
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except ConnectionError:
            pass
    return acks


def send_messages(host: str, port: int, messages: Sequence[str | bytes], timeout: float = 30.0) -> list[Ack]:
    """Blocking :func:`send_messages_async`; raises ConnectionError when an ACK never comes."""
    return asyncio.run(send_messages_async(host, port, messages, timeout))
