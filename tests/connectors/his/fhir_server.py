"""A small FHIR R4 search server on loopback (http.server in a thread) serving the sample resources.

It behaves like a real server where it matters here: it stamps ``meta.lastUpdated``, filters
``_lastUpdated=gt…``, sorts by it, pages with ``_count`` and ``Bundle.link[relation=next]``,
and can fail a request with 503 once (to exercise retries). Resources can be deleted
(``DELETE /fhir/Type/id`` or :meth:`FhirServer.delete`); every create, update and delete is kept
in a type-level history, ``GET /fhir/Type/_history?_since=…`` (inclusive, newest first, paged like
the search). ``history_status = 404`` makes it a server without ``_history``.
"""

from __future__ import annotations

import copy
import json
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse

START = datetime(2024, 3, 1, 8, 0, tzinfo=timezone.utc)
TYPES = {"MedicationRequest", "Patient", "Practitioner", "Organization"}


class FhirServer:
    def __init__(self, resources: list[dict]):
        self.resources: list[dict] = []
        self.requests: list[str] = []
        self.fail_next: set[str] = set()  # page keys ("Type:page", "Type/_history:page") to answer 503 once
        self.history: list[dict] = []  # one entry per create / update / delete, oldest first
        self.history_status: int | None = None  # e.g. 404: a server without type-level history
        self.clock: datetime | None = None  # the last stamp given
        for r in resources:
            self.put(r)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/fhir"

    def put(self, resource: dict) -> dict:
        """Store (or update) a resource, stamping meta.lastUpdated one minute after the last stamp given."""
        r = copy.deepcopy(resource)
        r.setdefault("meta", {})["lastUpdated"] = self._tick()
        known = any((x["resourceType"], x.get("id")) == (r["resourceType"], r.get("id")) for x in self.resources)
        self.resources = [x for x in self.resources
                          if (x["resourceType"], x.get("id")) != (r["resourceType"], r.get("id"))] + [r]
        self.history.append({"rtype": r["resourceType"], "id": r.get("id"), "time": r["meta"]["lastUpdated"],
                             "method": "PUT" if known else "POST", "resource": copy.deepcopy(r)})
        return r

    def delete(self, rtype: str, rid: str) -> str | None:
        """Delete a resource; its delete time (one minute after the last stamp), or None if there was none."""
        if not any((x["resourceType"], x.get("id")) == (rtype, rid) for x in self.resources):
            return None
        self.resources = [x for x in self.resources if (x["resourceType"], x.get("id")) != (rtype, rid)]
        when = self._tick()
        self.history.append({"rtype": rtype, "id": rid, "time": when, "method": "DELETE", "resource": None})
        return when

    def _tick(self) -> str:
        self.clock = START if self.clock is None else self.clock + timedelta(minutes=1)
        return self.clock.isoformat().replace("+00:00", "Z")

    def _history(self, rtype: str, query: dict[str, list[str]]) -> dict:
        since = query.get("_since", [None])[0]
        hits = [h for h in self.history if h["rtype"] == rtype]
        if since:
            cut = datetime.fromisoformat(since.replace("Z", "+00:00"))
            hits = [h for h in hits if datetime.fromisoformat(h["time"].replace("Z", "+00:00")) >= cut]  # inclusive
        hits = hits[::-1]  # newest first
        chunk, links = self._page(hits, f"{rtype}/_history", query)
        entries = []
        for h in chunk:
            e = {"fullUrl": f"{self.base_url}/{rtype}/{h['id']}",
                 "request": {"method": h["method"], "url": f"{rtype}/{h['id']}" if h["method"] != "POST" else rtype},
                 "response": {"status": "204 No Content" if h["resource"] is None else "200 OK",
                              "lastModified": h["time"]}}
            if h["resource"] is not None:
                e["resource"] = h["resource"]
            entries.append(e)
        return {"resourceType": "Bundle", "type": "history", "total": len(hits), "link": links, "entry": entries}

    def _search(self, rtype: str, query: dict[str, list[str]]) -> dict:
        since = query.get("_lastUpdated", [None])[0]
        hits = [r for r in self.resources if r["resourceType"] == rtype]
        if since:
            assert since.startswith("gt"), since
            cut = datetime.fromisoformat(since[2:].replace("Z", "+00:00"))
            hits = [r for r in hits if datetime.fromisoformat(r["meta"]["lastUpdated"].replace("Z", "+00:00")) > cut]
        hits.sort(key=lambda r: r["meta"]["lastUpdated"])
        chunk, links = self._page(hits, rtype, query)
        return {"resourceType": "Bundle", "type": "searchset", "total": len(hits), "link": links,
                "entry": [{"fullUrl": f"{self.base_url}/{rtype}/{r.get('id')}", "resource": r,
                           "search": {"mode": "match"}} for r in chunk]}

    def _page(self, hits: list, path: str, query: dict[str, list[str]]) -> tuple[list, list[dict]]:
        """The page ``_page`` of ``_count`` hits, and its self/next links (``_page`` in the query string)."""
        count = int(query.get("_count", ["10"])[0])
        page = int(query.get("_page", ["1"])[0])
        links = [{"relation": "self", "url": self._url(path, query, page)}]
        if page * count < len(hits):
            links.append({"relation": "next", "url": self._url(path, query, page + 1)})
        return hits[(page - 1) * count: page * count], links

    def _url(self, rtype, query, page):
        q = {k: v[0] for k, v in query.items()}
        q["_page"] = str(page)
        return f"{self.base_url}/{rtype}?{urlencode(q)}"

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                url = urlparse(self.path)
                server.requests.append(self.path)
                parts = url.path.rstrip("/").split("/")
                history = parts[-1] == "_history"
                rtype = parts[-2] if history else parts[-1]
                query = parse_qs(url.query)
                key = f"{rtype}{'/_history' if history else ''}:{query.get('_page', ['1'])[0]}"
                if key in server.fail_next:
                    server.fail_next.discard(key)
                    return self._send(503, {"resourceType": "OperationOutcome"})
                if not url.path.startswith("/fhir/") or rtype not in TYPES:
                    return self._send(404, {"resourceType": "OperationOutcome"})
                if history and server.history_status:
                    return self._send(server.history_status, {"resourceType": "OperationOutcome"})
                return self._send(200, server._history(rtype, query) if history else server._search(rtype, query))

            def do_DELETE(self):
                server.requests.append(f"DELETE {self.path}")
                parts = urlparse(self.path).path.rstrip("/").split("/")
                if len(parts) < 4 or parts[-2] not in TYPES or server.delete(parts[-2], parts[-1]) is None:
                    return self._send(404, {"resourceType": "OperationOutcome"})
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _send(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(data)))
                if status == 503:
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
