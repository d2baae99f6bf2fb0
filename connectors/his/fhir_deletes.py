"""FHIR deletes as records: a Bundle entry ``request.method = DELETE`` → a :class:`Deleted` event.

A delete entry (in a ``history`` Bundle from ``_history``, or a ``transaction`` / ``batch`` Bundle
in a file drop) has no ``resource``; the resource is named by ``request.url`` (``Type/id``, maybe
absolute, maybe ``…/_history/n``), else by ``fullUrl``. Its time is ``response.lastModified``,
else the Bundle's ``timestamp`` / ``meta.lastUpdated``. Its version (the record position) follows
the rule of resources: the version id (``response.etag`` ``W/"3"``), else the time as received,
else ``delete:sha256:`` of where it was read — so a delete is a new version of the record.

>>> d = deleted_entry({"request": {"method": "DELETE", "url": "MedicationRequest/123"},
...                    "response": {"status": "204", "lastModified": "2024-03-01T09:00:00+01:00"}}, "h/entry[1]")
>>> d.resource_type, d.id, str(d.last_updated), d.version, d.problem
('MedicationRequest', '123', '2024-03-01 08:00:00+00:00', '2024-03-01T09:00:00+01:00', None)
>>> deleted_entry({"request": {"method": "DELETE", "url": "http://x/fhir/Patient/p1/_history/3"},
...                "response": {"etag": 'W/"3"'}}, "o").version
'3'
>>> c = deleted_entry({"request": {"method": "DELETE", "url": "Patient?identifier=a|1"}}, "o")
>>> c.resource_type, c.problem
('Patient', 'o: a conditional DELETE (Patient?identifier=a|1) names no resource id; it cannot be applied')
>>> is_delete({"request": {"method": "delete"}}), is_delete({"resource": {}})
(True, False)
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlparse

OP = "_op"  # "upsert" | "delete", as the ERP streams (docs/adr/0221)
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
ETAG = re.compile(r'^(?:W/)?"([^"]+)"$')


@dataclass(frozen=True)
class Deleted:
    """One delete event read from a Bundle entry; ``problem`` says why it cannot be used."""

    resource_type: str | None
    id: str | None
    last_updated: datetime | None
    version: str
    raw: str  # canonical JSON of the entry (what quarantine keeps when it is rejected)
    problem: str | None = None


def is_delete(entry: dict) -> bool:
    return str((entry.get("request") or {}).get("method", "")).upper() == "DELETE" and "resource" not in entry


def utc(text: str | None) -> datetime | None:
    """An instant as UTC (a zone-less one is taken as UTC); None for no text."""
    if not text:
        return None
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def type_and_id(url: str | None) -> tuple[str | None, str | None]:
    """``[base/]Type/id[/_history/n]`` → (Type, id); (None, None) when it names no single resource.

    >>> type_and_id("https://h/fhir/MedicationRequest/7/_history/2"), type_and_id("Patient?name=x")
    (('MedicationRequest', '7'), (None, None))
    """
    if not url or "?" in url:
        return None, None
    parts = [p for p in urlparse(url).path.split("/") if p]
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) < 2 or not parts[-2][:1].isupper():
        return None, None
    return parts[-2], parts[-1]


def _version(response: dict, when: str | None, origin: str, raw: str) -> str:
    tag = ETAG.match(str(response.get("etag") or ""))
    if tag:
        return tag.group(1)
    return when or "delete:sha256:" + hashlib.sha256(f"{origin}\x1f{raw}".encode()).hexdigest()


def deleted_entry(entry: dict, origin: str, bundle: dict | None = None) -> Deleted:
    """The delete event of one ``DELETE`` entry (``bundle``: the Bundle it came from, for its time)."""
    raw = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    request, response, bundle = entry.get("request") or {}, entry.get("response") or {}, bundle or {}
    url = request.get("url")
    rtype, rid = type_and_id(url)
    if rid is None and "?" not in str(url or ""):
        rtype, rid = type_and_id(entry.get("fullUrl"))
    when = response.get("lastModified") or bundle.get("timestamp") or (bundle.get("meta") or {}).get("lastUpdated")
    problem = None
    try:
        at = utc(when)
    except ValueError:
        at, problem = None, f"{origin}: DELETE time {when!r} is not an instant"
    if rid is None:
        conditional = "?" in str(url or "")
        kind = "a conditional DELETE" if conditional else "a DELETE"
        rtype = str(url).split("?")[0].rstrip("/").split("/")[-1] if conditional else rtype
        problem = f"{origin}: {kind} ({url}) names no resource id; it cannot be applied"
    elif not FHIR_ID.match(rid):
        problem = f"{origin}: DELETE of {rtype}/{rid}: {rid!r} is not a FHIR id"
    return Deleted(rtype, rid, at, _version(response, when, origin, raw), raw, problem)
