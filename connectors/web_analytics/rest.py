"""Pages of events from a paginated REST API with an opaque incremental cursor.

Transport policy is declared, not coded: urllib3's ``Retry`` on a requests session
retries timeouts, connection errors, 5xx and 429 with exponential backoff, and
honours ``Retry-After``. When the retries are spent, :func:`pages` raises
:class:`~connectors.errors.RetriableError`; the cursor stays at the last page that
was handed out (the runner persists a page's cursor only after it landed).
A 401/403/404 is a :class:`~connectors.errors.ConfigError`.

API shape: ``GET <url>?limit=N[&cursor=C | &since=ISO]`` →
``{"data": [event, ...], "next_cursor": C', "has_more": bool}``.
A bearer token, if any, comes from the environment variable named by ``token_env``.

>>> cfg = RestConfig.from_config({"url": "http://127.0.0.1:9/v1/events", "retries": 2})
>>> cfg.page_size, cfg.retries, cfg.retry().status_forcelist
(500, 2, (429, 500, 502, 503, 504))
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from connectors.errors import ConfigError, RetriableError

RETRY_STATUSES = (429, 500, 502, 503, 504)


@dataclass(frozen=True)
class RestConfig:
    url: str
    page_size: int = 500
    timeout: float = 10.0  # seconds per read
    retries: int = 5
    backoff: float = 0.5  # seconds; doubles per retry
    backoff_max: float = 30.0
    token_env: str | None = None  # name of the env variable holding a bearer token

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "RestConfig":
        if "token" in config or "api_key" in config:
            raise ConfigError("a token does not belong in the configuration; name its env variable in token_env")
        known = {k: config[k] for k in cls.__dataclass_fields__ if k in config and config[k] is not None}
        return cls(**known)

    def retry(self) -> Retry:
        return Retry(total=self.retries, connect=self.retries, read=self.retries, status=self.retries,
                     backoff_factor=self.backoff, backoff_max=self.backoff_max, status_forcelist=RETRY_STATUSES,
                     allowed_methods=frozenset({"GET"}), respect_retry_after_header=True, raise_on_status=False)

    def session(self) -> requests.Session:
        s = requests.Session()
        s.mount("http://", HTTPAdapter(max_retries=self.retry()))
        s.mount("https://", HTTPAdapter(max_retries=self.retry()))
        if self.token_env:
            token = os.environ.get(self.token_env)
            if not token:
                raise ConfigError(f"environment variable {self.token_env} (token_env) is not set")
            s.headers["Authorization"] = f"Bearer {token}"
        return s


@dataclass(frozen=True)
class Page:
    body: bytes  # the items as JSON lines, for pyarrow.json
    count: int
    cursor: str  # the cursor after this page
    origin: str  # where the page came from, for rejected rows


def _get(session: requests.Session, cfg: RestConfig, params: dict[str, Any]) -> dict:
    try:
        r = session.get(cfg.url, params=params, timeout=(cfg.timeout, cfg.timeout))
    except (requests.ConnectionError, requests.Timeout, requests.exceptions.RetryError) as exc:
        raise RetriableError(f"GET {cfg.url} failed after {cfg.retries} retries: {exc}") from exc
    if r.status_code in (401, 403, 404):
        raise ConfigError(f"GET {cfg.url}: HTTP {r.status_code} {r.reason}")
    if r.status_code >= 400:
        raise RetriableError(f"GET {cfg.url}: HTTP {r.status_code} {r.reason} after {cfg.retries} retries")
    try:
        body = r.json()
        return {"data": list(body["data"]), "next_cursor": body["next_cursor"], "has_more": bool(body.get("has_more"))}
    except (ValueError, KeyError, TypeError) as exc:
        raise RetriableError(f"GET {cfg.url}: not a page of events ({exc})") from exc


def pages(cfg: RestConfig, state: Mapping[str, Any], session: requests.Session | None = None) -> Iterator[Page]:
    """Pages after ``state`` (``{"cursor": C}`` or ``{"since": ISO}``), each with the cursor after it."""
    session = session or cfg.session()
    params: dict[str, Any] = {"limit": cfg.page_size}
    if state.get("cursor"):
        params["cursor"] = state["cursor"]
    elif state.get("since"):
        params["since"] = state["since"]
    while True:
        body = _get(session, cfg, params)
        data = body["data"]
        origin = f"{cfg.url}?{'cursor=' + params['cursor'] if 'cursor' in params else 'start'}#item"
        lines = "\n".join(json.dumps(e, separators=(",", ":")) for e in data).encode()
        if data:
            yield Page(lines, len(data), body["next_cursor"], origin)
        if not body["has_more"] or not data:
            return
        params = {"limit": cfg.page_size, "cursor": body["next_cursor"]}
