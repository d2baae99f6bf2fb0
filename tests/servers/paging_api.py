"""A paging REST API on loopback (http.server in a thread) that throttles and fails now and then.

``GET /v1/events?limit=N&cursor=C`` (or ``&since=ISO``) → ``{"data": [...], "next_cursor": C', "has_more": bool}``,
events in ``receivedAt`` order. The cursor is opaque to clients (here: an offset, base64).
Faults are deterministic: first the ``script`` (e.g. ``["429", "500", "slow", "ok"]``), then
seeded random faults at the given rates. Every request is logged with its time and status.

Use from a conftest: ``from tests.servers.paging_api import paging_api  # noqa: F401`` and
configure it per test (``api.reset(events=..., script=..., rates=...)``).
"""

from __future__ import annotations

import base64
import json
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest


@dataclass
class Hit:
    at: float
    path: str
    status: int
    fault: str


@dataclass
class ApiState:
    events: list[dict] = field(default_factory=list)
    script: list[str] = field(default_factory=list)
    rates: dict[str, float] = field(default_factory=dict)  # {"429": .1, "500": .1, "slow": .05}
    seed: int = 0
    retry_after: int = 1
    slow_seconds: float = 1.5
    token: str | None = None
    hits: list[Hit] = field(default_factory=list)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_fault(self) -> str:
        with self.lock:
            if self.script:
                return self.script.pop(0)
            roll = self.rng.random()
            for name in ("429", "500", "slow"):
                p = self.rates.get(name, 0.0)
                if roll < p:
                    return name
                roll -= p
            return "ok"


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()


def _offset(cursor: str) -> int:
    return int(base64.urlsafe_b64decode(cursor.encode()).decode().split(":", 1)[1])


class _Handler(BaseHTTPRequestHandler):
    state: ApiState  # set on the subclass per server

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: dict | None, fault: str, headers: dict | None = None) -> None:
        if fault != "slow":  # a slow answer was logged when it arrived (its client may be gone by now)
            self.state.hits.append(Hit(time.monotonic(), self.path, status, fault))
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self) -> None:  # noqa: N802
        s = self.state
        url = urlparse(self.path)
        if url.path != "/v1/events":
            return self._send(404, {"error": "not found"}, "ok")
        if s.token and self.headers.get("Authorization") != f"Bearer {s.token}":
            return self._send(401, {"error": "unauthorized"}, "ok")
        fault = s.next_fault()
        if fault == "429":
            return self._send(429, {"error": "slow down"}, fault, {"Retry-After": str(s.retry_after)})
        if fault == "500":
            return self._send(500, {"error": "boom"}, fault)
        if fault == "slow":
            s.hits.append(Hit(time.monotonic(), self.path, 200, fault))
            time.sleep(s.slow_seconds)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        limit = int(q.get("limit", 100))
        if "cursor" in q:
            start = _offset(q["cursor"])
        elif "since" in q:
            start = next((i for i, e in enumerate(s.events) if e["receivedAt"] >= q["since"]), len(s.events))
        else:
            start = 0
        page = s.events[start: start + limit]
        end = start + len(page)
        self._send(200, {"data": page, "next_cursor": _cursor(end), "has_more": end < len(s.events)}, fault)


@dataclass
class PagingApi:
    url: str
    state: ApiState

    def reset(self, events: list[dict] | None = None, script: list[str] | None = None,
              rates: dict[str, float] | None = None, seed: int = 0, token: str | None = None, **kw) -> "PagingApi":
        s = self.state
        s.events = list(events or [])
        s.script = list(script or [])
        s.rates = dict(rates or {})
        s.rng = random.Random(seed)
        s.token = token
        s.hits = []
        for k, v in kw.items():
            setattr(s, k, v)
        return self

    def statuses(self) -> list[int]:
        return [h.status for h in self.state.hits]


def start_paging_api() -> tuple[ThreadingHTTPServer, PagingApi]:
    state = ApiState()
    handler = type("Handler", (_Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    return server, PagingApi(f"http://{host}:{port}/v1/events", state)


@pytest.fixture(scope="module")
def paging_api_server() -> Iterator[PagingApi]:
    server, api = start_paging_api()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def paging_api(paging_api_server: PagingApi) -> PagingApi:
    """The module's server, reset to no events and no faults for this test."""
    return paging_api_server.reset()
