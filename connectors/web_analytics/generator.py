"""Deterministic, realistic web analytics events (Segment naming) for tests and the demo.

The same ``seed`` always gives the same events; nothing depends on the clock.
Each visitor has an anonymous id, and once known a user id, e-mail and traits
(activity level A/B/C, engagement score); events are page views, ``form_submitted``
and ``feature_used`` tracks, with utm fields and nested ``context`` / ``properties``.

>>> a, b = generate_events(50, seed=7), generate_events(50, seed=7)
>>> a == b, len(a), a[0]["type"] in {"page", "track"}
(True, 50, True)
>>> sorted({e["event"] for e in a if e["type"] == "track"})
['feature_used', 'form_submitted']
>>> all(x["receivedAt"] <= y["receivedAt"] for x, y in zip(a, a[1:]))
True
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

START = datetime(2026, 11, 1, 8, 0, tzinfo=timezone.utc)
FIRST = ["ann", "bo", "chen", "dara", "emil", "fatima", "goran", "hana", "ivo", "jules", "kai", "lena"]
LAST = ["meyer", "okafor", "nguyen", "silva", "kowalski", "haddad", "berg", "rossi", "tanaka", "dubois"]
COMPANIES = ["Acme GmbH", "Globex", "Initech", "Umbrella AG", "Hooli", "Stark Industries", None]
PAGES = [("/", "Home"), ("/pricing", "Pricing"), ("/product/crm", "CRM"), ("/blog/data-sovereignty", "Data sovereignty"),
         ("/contact", "Contact us"), ("/demo", "Book a demo")]
FORMS = [("demo-request", "Book a demo"), ("contact", "Contact us"), ("newsletter", "Newsletter")]
FEATURES = ["mapping-editor", "lineage-trace", "export-pdf", "dashboard", "api-keys"]
CAMPAIGNS = [None, ("google", "cpc", "crm-q4", "crm software", "ad-a"), ("newsletter", "email", "nov-digest", None, "hero"),
             ("linkedin", "social", "gdpr-webinar", None, None)]
HOST = "https://www.example.com"


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def level(score: float) -> str:
    """Activity level from an engagement score: A ≥ 70, B ≥ 40, else C."""
    return "A" if score >= 70 else "B" if score >= 40 else "C"


def _visitors(rng: random.Random, n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        score = round(rng.uniform(0, 100), 1)
        out.append({"anonymousId": _uuid(rng), "userId": f"u-{i:05d}" if rng.random() < 0.7 else None,
                    "traits": {"email": f"{first}.{last}{i}@example.{rng.choice(['com', 'de', 'org'])}",
                               "first_name": first.title(), "last_name": last.title(),
                               "company": rng.choice(COMPANIES), "activity_level": level(score),
                               "engagement_score": score},
                    "campaign": rng.choice(CAMPAIGNS), "locale": rng.choice(["en-US", "de-DE", "fr-FR"])})
    return out


def _context(rng: random.Random, v: dict, path: str, title: str, known: bool) -> dict[str, Any]:
    c = v["campaign"]
    return {"ip": f"203.0.113.{rng.randrange(1, 255)}", "locale": v["locale"],
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
            "library": {"name": "analytics.js", "version": "5.2.0"},
            "campaign": dict(zip(["source", "medium", "name", "term", "content"], c)) if c else None,
            "page": {"url": HOST + path, "path": path, "referrer": rng.choice([None, "https://www.google.com/"]),
                     "title": title, "search": None},
            "traits": dict(v["traits"]) if known else None}


def _event(rng: random.Random, v: dict, when: datetime) -> dict[str, Any]:
    path, title = rng.choice(PAGES)
    roll = rng.random()
    known = v["userId"] is not None
    e: dict[str, Any] = {"messageId": _uuid(rng), "anonymousId": v["anonymousId"], "userId": v["userId"] if known else None,
                         "timestamp": when.isoformat().replace("+00:00", "Z")}
    if roll < 0.6:
        e.update(type="page", event=None, properties={"url": HOST + path, "path": path, "title": title, "referrer": None})
    elif roll < 0.8:
        form_id, form_name = rng.choice(FORMS)
        e.update(type="track", event="form_submitted",
                 properties={"form_id": form_id, "form_name": form_name, "submission_id": f"sub-{rng.getrandbits(48):012x}"})
        known = True  # a form submission carries the e-mail the visitor typed
    else:
        e.update(type="track", event="feature_used",
                 properties={"feature": rng.choice(FEATURES), "plan": rng.choice(["trial", "team", "enterprise"]),
                             "duration_ms": rng.randrange(200, 600_000)})
    e["context"] = _context(rng, v, path, title, known)
    lag = timedelta(milliseconds=rng.randrange(20, 1500))
    e["receivedAt"] = (when + lag).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return e


def generate_events(n: int, seed: int = 0, start: datetime = START, visitors: int | None = None) -> list[dict[str, Any]]:
    """``n`` events in receivedAt order (ties broken by messageId), the same for the same arguments."""
    rng = random.Random(seed)
    people = _visitors(rng, visitors or max(5, n // 8))
    when, out = start, []
    for _ in range(n):
        when += timedelta(seconds=rng.randrange(1, 90), milliseconds=rng.randrange(0, 1000))
        out.append(_event(rng, rng.choice(people), when))
    return sorted(out, key=lambda e: (e["receivedAt"], e["messageId"]))


def write_jsonl(events: list[dict[str, Any]], path) -> None:
    """One event per line, as a collector's file drop would have it."""
    import json
    from pathlib import Path

    Path(path).write_text("".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events))
