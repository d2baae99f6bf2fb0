"""FHIR REST search with paging, incremental by ``_lastUpdated``.

``GET {base}/{Type}?_lastUpdated=gt{cursor}&_sort=_lastUpdated&_count=N``, then
each ``Bundle.link[relation=next]`` until there is none. 5xx, 429 and timeouts are
retried with backoff (``Retry-After`` honoured); what still fails raises
:class:`~connectors.errors.RetriableError`, so the cursor stays where it was.
A token, when needed, comes from the environment (the integration's
``{env: NAME}``), never from the config file. Deletes never show in a search: they come from
the type's ``_history`` (:mod:`connectors.his.fhir_history`, docs/adr/0243).

>>> first_url("http://fhir.local/r4/", "Patient", "2024-01-01T00:00:00Z", 50)
'http://fhir.local/r4/Patient?_count=50&_sort=_lastUpdated&_lastUpdated=gt2024-01-01T00%3A00%3A00Z'
>>> next_link({"link": [{"relation": "self", "url": "a"}, {"relation": "next", "url": "b"}]})
'b'
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from urllib.parse import urlencode

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from connectors.errors import ConfigError, FatalError, RetriableError

log = logging.getLogger(__name__)


def first_url(base_url: str, resource_type: str, since: str | None, page_size: int) -> str:
    params = {"_count": page_size, "_sort": "_lastUpdated"}
    if since:
        params["_lastUpdated"] = f"gt{since}"
    return f"{base_url.rstrip('/')}/{resource_type}?{urlencode(params)}"


def next_link(bundle: dict) -> str | None:
    return next((lk.get("url") for lk in bundle.get("link") or [] if lk.get("relation") == "next"), None)


def session(token: str | None = None, retries: int = 4, backoff: float = 0.2) -> requests.Session:
    s = requests.Session()
    retry = Retry(total=retries, backoff_factor=backoff, status_forcelist=(429, 500, 502, 503, 504),
                  allowed_methods=("GET",), respect_retry_after_header=True, raise_on_status=False)
    s.mount("http://", HTTPAdapter(max_retries=retry))
    s.mount("https://", HTTPAdapter(max_retries=retry))
    s.headers["Accept"] = "application/fhir+json"
    if token:
        s.headers["Authorization"] = f"Bearer {token}"
    return s


class Unsupported(ConfigError):
    """The server answered that it does not offer this interaction (e.g. no ``_history``)."""


def _get(http: requests.Session, url: str, timeout: float, what: str = "search",
         unsupported: tuple[int, ...] = ()) -> dict:
    try:
        resp = http.get(url, timeout=timeout)
    except (requests.ConnectionError, requests.Timeout) as err:
        raise RetriableError(f"FHIR {what} {url}: {err}") from err
    if resp.status_code in unsupported:
        raise Unsupported(f"FHIR {what} {url}: HTTP {resp.status_code}")
    if resp.status_code in (401, 403, 404):
        raise ConfigError(f"FHIR {what} {url}: HTTP {resp.status_code} (check the base URL and the token)")
    if resp.status_code >= 500 or resp.status_code == 429:
        raise RetriableError(f"FHIR {what} {url}: HTTP {resp.status_code} after retries")
    if resp.status_code >= 400:
        raise FatalError(f"FHIR {what} {url}: HTTP {resp.status_code}: {resp.text[:200]}")
    try:
        bundle = resp.json()
    except ValueError as err:
        raise FatalError(f"FHIR {what} {url}: the answer is not JSON: {err}") from err
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise FatalError(f"FHIR {what} {url}: expected a Bundle, got {str(bundle)[:80]}")
    return bundle


def pages(url: str | None, http: requests.Session, timeout: float, what: str = "search",
          unsupported_first: tuple[int, ...] = ()) -> Iterator[tuple[str, dict]]:
    """Yield (url, Bundle) from ``url`` along ``link[next]``; ``unsupported_first``: statuses of the
    first page that raise :class:`Unsupported` (a later page failing so is a real error)."""
    seen: set[str] = set()
    while url:
        if url in seen:
            raise FatalError(f"FHIR {what} loops: {url} was already read")
        bundle = _get(http, url, timeout, what, () if seen else unsupported_first)
        seen.add(url)
        log.debug("FHIR %s: %d entries from %s", what, len(bundle.get("entry") or []), url)
        yield url, bundle
        url = next_link(bundle)


def search_pages(base_url: str, resource_type: str, since: str | None = None, *, page_size: int = 100,
                 http: requests.Session | None = None, timeout: float = 30.0) -> Iterator[tuple[str, dict]]:
    """Yield (url, searchset Bundle) for every page of the search."""
    yield from pages(first_url(base_url, resource_type, since, page_size), http or session(), timeout)
