"""FHIR REST type-level history, read for its deletes: ``GET {base}/{Type}/_history?_since=…&_count=N``.

A deleted resource never shows in a search; its ``DELETE`` entry in the history does. The history
is read only for its deletes (the search delivers the newest version of everything else) and as
the clock of the incremental cursor: :attr:`History.newest` is the latest entry time seen
(``response.lastModified``, else the resource's ``meta.lastUpdated``), deletes and versions alike.
``_since`` is inclusive, so entries at or before the cursor were handled by the run that set it
and are dropped here — every delete is reported by exactly one run. Pages follow ``link[next]``;
5xx, 429 and timeouts are retried as for the search. A server without ``_history`` (400, 404, 405
or 501 on the first page) raises :class:`~connectors.his.fhir_rest.Unsupported`: the caller warns
and goes on with the search only.
See docs/adr/0243-fhir-deletes-from-history.md.

>>> history_url("http://fhir.local/r4/", "Patient", "2024-01-01T00:00:00Z", 50)
'http://fhir.local/r4/Patient/_history?_since=2024-01-01T00%3A00%3A00Z&_count=50'
>>> page = {"resourceType": "Bundle", "type": "history", "entry": [
...     {"request": {"method": "DELETE", "url": "Patient/p2"}, "response": {"lastModified": "2024-01-03T00:00:00Z"}},
...     {"resource": {"resourceType": "Patient", "id": "p1", "meta": {"lastUpdated": "2024-01-02T00:00:00Z"}}},
...     {"request": {"method": "DELETE", "url": "Patient/p0"}, "response": {"lastModified": "2024-01-01T00:00:00Z"}}]}
>>> h = History(since=utc("2024-01-01T00:00:00Z"))
>>> h.add(page, "u")
>>> [(o, d.id) for o, d in h.deletes], h.cursor   # p0 is at the cursor: the last run had it
([('u/entry[1]', 'p2')], '2024-01-03T00:00:00Z')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlencode

import requests

from connectors.his.fhir_deletes import Deleted, deleted_entry, is_delete, utc
from connectors.his.fhir_rest import pages, session

UNSUPPORTED = (400, 404, 405, 501)  # what servers without type-level history answer


def history_url(base_url: str, resource_type: str, since: str, page_size: int) -> str:
    return f"{base_url.rstrip('/')}/{resource_type}/_history?{urlencode({'_since': since, '_count': page_size})}"


def _time(entry: dict) -> datetime | None:
    meta = (entry.get("resource") or {}).get("meta") or {}
    text = (entry.get("response") or {}).get("lastModified") or meta.get("lastUpdated")
    try:
        return utc(text)
    except ValueError:
        return None  # a broken time: a version is re-validated by the search; a delete reports it


@dataclass
class History:
    """The deletes after ``since`` and the newest entry time, gathered page by page."""

    since: datetime | None
    deletes: list[tuple[str, Deleted]] = field(default_factory=list)
    newest: datetime | None = None

    @property
    def cursor(self) -> str | None:
        return self.newest.isoformat().replace("+00:00", "Z") if self.newest else None

    def add(self, bundle: dict, url: str) -> None:
        for n, entry in enumerate(bundle.get("entry") or [], 1):
            if not isinstance(entry, dict):
                continue
            at = _time(entry)
            if at is not None and self.since is not None and at <= self.since:
                continue  # _since is inclusive: the run that set the cursor had it
            if at is not None and (self.newest is None or at > self.newest):
                self.newest = at
            if is_delete(entry):
                origin = f"{url}/entry[{n}]"
                self.deletes.append((origin, deleted_entry(entry, origin, bundle)))


def read_history(base_url: str, resource_type: str, since: str, *, page_size: int = 100,
                 http: requests.Session | None = None, timeout: float = 30.0) -> History:
    """The deletes of ``resource_type`` after ``since``, oldest first.

    Raises :class:`~connectors.his.fhir_rest.Unsupported` when the server has no history for the type.
    """
    history = History(since=utc(since))
    for url, bundle in pages(history_url(base_url, resource_type, since, page_size), http or session(),
                             timeout, "history", UNSUPPORTED):
        history.add(bundle, url)
    history.deletes.sort(key=lambda item: (item[1].last_updated is None, item[1].last_updated or 0))
    return history
