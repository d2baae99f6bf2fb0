"""The status of a pulled load (``weftline run``): landed → loaded, one small JSON file per load.

A landed load's file is ``state/loads/<load_id>.json``; once the load committed it moves to
``state/loads/done/<load_id>.json``. So a run, which first finishes every load a crash left landed,
reads only the loads still pending — not one file per load ever run (a sync every five minutes
leaves ~100 000 of them a year). The done file is written before the pending one is removed: a crash
between the two leaves both, and the load counts as done.

>>> import tempfile
>>> from connectors.base.home import Home
>>> home = Home(tempfile.mkdtemp())
>>> set_status(home, "L1", integration="erp", stream="orders", status="landed", read=3, rejected=0)
>>> [d["load_id"] for d in pending(home, "erp")]
['L1']
>>> set_status(home, "L1", status="loaded")
>>> pending(home, "erp"), read_status(home, "L1")["status"], read_status(home, "L1")["read"]
([], 'loaded', 3)
"""

from __future__ import annotations

import json
from pathlib import Path

from connectors.base.files import write_atomic
from connectors.base.home import Home

DONE = "loaded"


def _dir(home: Home) -> Path:
    return home.state / "loads"


def _pending_path(home: Home, load_id: str) -> Path:
    return _dir(home) / f"{load_id}.json"


def _done_path(home: Home, load_id: str) -> Path:
    return _dir(home) / "done" / f"{load_id}.json"


def read_status(home: Home, load_id: str) -> dict | None:
    """The load's status document, or None when it has none (a pushed load, or pruned)."""
    for p in (_done_path(home, load_id), _pending_path(home, load_id)):
        try:
            return json.loads(p.read_text())
        except FileNotFoundError:
            continue
    return None


def set_status(home: Home, load_id: str, **fields) -> None:
    """Update the load's status document; ``status="loaded"`` moves it to ``done/``."""
    doc = read_status(home, load_id) or {}
    doc.update(fields, load_id=load_id)
    data = json.dumps(doc, sort_keys=True).encode()
    if doc.get("status") == DONE:
        write_atomic(_done_path(home, load_id), data)
        _pending_path(home, load_id).unlink(missing_ok=True)
    else:
        write_atomic(_pending_path(home, load_id), data)


def pending(home: Home, integration: str) -> list[dict]:
    """The integration's loads that landed and are not loaded yet, oldest first.

    A done load found among the pending files (written by a version before ``done/``, or a crash between
    the two writes) is moved to ``done/`` on the way, so the next run does not read it again."""
    out = []
    for p in sorted(_dir(home).glob("*.json")):
        doc = json.loads(p.read_text())
        done = _done_path(home, doc.get("load_id", p.stem))
        if doc.get("status") == DONE or done.exists():
            if not done.exists():
                write_atomic(done, p.read_bytes())
            p.unlink(missing_ok=True)
            continue
        if doc.get("integration") == integration and doc.get("status") == "landed":
            out.append(doc)
    return out


def forget(home: Home, load_id: str) -> None:
    """Remove the load's status (landing retention removed the load itself)."""
    _done_path(home, load_id).unlink(missing_ok=True)
    _pending_path(home, load_id).unlink(missing_ok=True)
