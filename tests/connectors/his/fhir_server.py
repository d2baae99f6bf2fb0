"""A small FHIR R4 search server on loopback (http.server in a thread) serving the sample resources.

It behaves like a real server where it matters here: it stamps ``meta.lastUpdated``, filters
``_lastUpdated=gt…``, sorts by it, pages with ``_count`` and ``Bundle.link[relation=next]``,
and can fail a request with 503 once (to exercise retries).
"""

from __future__ import annotations

import copy
import json
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse

START = datetime(2024, 3, 1, 8, 0, tzinfo=timezone.utc)


class FhirServer:
    def __init__(self, resources: list[dict]):
        self.resources: list[dict] = []
        self.requests: list[str] = []
        self.fail_next: set[str] = set()  # page keys ("Type:page") to answer 503 once
        for r in resources:
            self.put(r)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/fhir"

    def put(self, resource: dict) -> dict:
        """Store (or update) a resource, stamping meta.lastUpdated one minute after the newest."""
        r = copy.deepcopy(resource)
        when = START
        newest = max((x["meta"]["lastUpdated"] for x in self.resources), default=None)
        if newest:
            when = datetime.fromisoformat(newest.replace("Z", "+00:00")) + timedelta(minutes=1)
        r.setdefault("meta", {})["lastUpdated"] = when.isoformat().replace("+00:00", "Z")
        self.resources = [x for x in self.resources
                          if (x["resourceType"], x.get("id")) != (r["resourceType"], r.get("id"))] + [r]
        return r

    def _search(self, rtype: str, query: dict[str, list[str]]) -> dict:
        count = int(query.get("_count", ["10"])[0])
        page = int(query.get("_page", ["1"])[0])
        since = query.get("_lastUpdated", [None])[0]
        hits = [r for r in self.resources if r["resourceType"] == rtype]
        if since:
            assert since.startswith("gt"), since
            cut = datetime.fromisoformat(since[2:].replace("Z", "+00:00"))
            hits = [r for r in hits if datetime.fromisoformat(r["meta"]["lastUpdated"].replace("Z", "+00:00")) > cut]
        hits.sort(key=lambda r: r["meta"]["lastUpdated"])
        chunk = hits[(page - 1) * count: page * count]
        links = [{"relation": "self", "url": self._url(rtype, query, page)}]
        if page * count < len(hits):
            links.append({"relation": "next", "url": self._url(rtype, query, page + 1)})
        return {"resourceType": "Bundle", "type": "searchset", "total": len(hits), "link": links,
                "entry": [{"fullUrl": f"{self.base_url}/{rtype}/{r.get('id')}", "resource": r,
                           "search": {"mode": "match"}} for r in chunk]}

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
                rtype = url.path.rstrip("/").split("/")[-1]
                query = parse_qs(url.query)
                key = f"{rtype}:{query.get('_page', ['1'])[0]}"
                if key in server.fail_next:
                    server.fail_next.discard(key)
                    return self._send(503, {"resourceType": "OperationOutcome"})
                if not url.path.startswith("/fhir/") or rtype not in {"MedicationRequest", "Patient",
                                                                      "Practitioner", "Organization"}:
                    return self._send(404, {"resourceType": "OperationOutcome"})
                return self._send(200, server._search(rtype, query))

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
