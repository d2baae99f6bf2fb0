"""A small load of a one-target spec writes its lineage as one segment (lineage/one_segment.py, docs/adr/0109):
received + mapped + loaded edges, pending in the ledger with the load before the destination is called,
committed after; a process killed inside the destination load recovers; stores holding loads of three
segments and of one answer verify, trace, impact, export and erase alike."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pytest

from connectors.base.home import Home
from lineage import collect_subject, erase_subject, impact, trace
from lineage import destination as dest_mod
from lineage.store import open_store
from lineage.verify import verify

from tests.lineage.harness import Watching, map_and_load_once

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent

SPEC = """\
mapping: small_account
version: 1
source: {connector: file, stream: small}
subject: email
target: {entity: account, key: [external_id], write: upsert}
fields:
  external_id: {expr: "'ACC-' || id"}
  email:       {from: email, apply: [trim, lower]}
"""

TWO_TARGETS = """\
mapping: small_two
version: 1
source: {connector: file, stream: small}
subject: email
targets:
  - entity: account
    key: [external_id]
    fields:
      external_id: {expr: "'ACC-' || id"}
      email:       {from: email}
  - entity: contact
    key: [contact_id]
    fields:
      contact_id: {expr: "'C-' || id"}
"""


def _table(n: int = 40, start: int = 0) -> pa.Table:
    return pa.table({"id": list(range(start, start + n)), "email": [f"u{i}@example.org" for i in range(start, start + n)]})


def _steps(store, seg: dict) -> list[str]:
    return store.read_segment(seg).column("step").to_pylist()


def _run(home: Home, spec_path: Path, table: pa.Table, one_segment: bool = True, destination=None,
         stream: str = "small"):
    return map_and_load_once(home, spec_path, table, stream, destination=destination, one_segment=one_segment)


@pytest.fixture
def spec_path(tmp_path) -> Path:
    p = tmp_path / "small_account.yaml"
    p.write_text(SPEC)
    return p


def test_a_small_load_is_one_pending_segment_when_the_destination_loads(home, spec_path):
    from connectors.crm import open_destination

    dest = Watching(open_destination(home), home)
    lid, report = _run(home, spec_path, _table(), destination=dest)
    assert dest.seen == [("pending", ["loaded", "mapped", "received"], True)]
    assert dest.loads == [(lid, "pending")]
    store = open_store(home)
    [seg] = store.segments()
    steps = _steps(store, seg)
    assert seg["state"] == "committed" and seg["rows"] == 120
    assert steps == ["received"] * 40 + ["mapped"] * 40 + ["loaded"] * 40  # in the order of the steps
    assert report.reconciles and verify(store).ok
    loaded = {r["record_id"] for r in store.read_segment(seg).to_pylist() if r["step"] == "loaded"}
    assert loaded == set(dest_mod.record_ids_of_load(home, "account", lid))


def test_without_one_segment_or_with_two_targets_a_load_keeps_three_segments(home, spec_path, tmp_path):
    _run(home, spec_path, _table(), one_segment=False)
    two = tmp_path / "small_two.yaml"
    two.write_text(TWO_TARGETS)
    _run(home, two, _table(start=100))
    store = open_store(home)
    assert [sorted(set(_steps(store, s))) for s in store.segments()] == [
        ["received"], ["mapped"], ["loaded"],              # one_segment off
        ["received"], ["mapped"], ["loaded"], ["loaded"],  # two targets: a loaded segment after each write
    ]
    assert {s["state"] for s in store.segments()} == {"committed"} and verify(store).ok


def _crash_run(home: Home, spec_path: Path, when: str, sigkill: bool) -> int:
    """A child process whose destination dies before or after the real load commits."""
    code = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(HERE)!r})
        from connectors.base.home import Home
        from connectors.crm import open_destination
        from test_one_segment import _run, _table

        def die():
            if {sigkill!r}:
                os.kill(os.getpid(), signal.SIGKILL)
            os._exit(17)

        class Dying:
            def __init__(self, inner):
                self.inner = inner
            def __getattr__(self, name):
                return getattr(self.inner, name)
            def load(self, *a, **k):
                if {when!r} == "before":
                    die()
                out = self.inner.load(*a, **k)
                die()

        home = Home({str(home.root)!r})
        _run(home, __import__("pathlib").Path({str(spec_path)!r}), _table(), destination=Dying(open_destination(home)))
    """)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=240).returncode


@pytest.mark.parametrize("when,sigkill,expected", [
    ("before", False, "rolled_back"),
    ("after", False, "committed"),
    ("before", True, "rolled_back"),
    ("after", True, "committed"),
])
def test_killed_inside_the_destination_load_recovers(home, spec_path, when, sigkill, expected):
    rc = _crash_run(home, spec_path, when, sigkill)
    assert rc == (-signal.SIGKILL if sigkill else 17)
    store = open_store(home)
    [seg] = store.segments()
    assert seg["state"] == "pending" and sorted(set(_steps(store, seg))) == ["loaded", "mapped", "received"]
    [(lid, action)] = store.recover()
    assert action == expected
    assert verify(store).ok
    in_dest = set(dest_mod.record_ids_of_load(home, "account", lid))
    loaded = {r["record_id"] for s in store.segments(("committed",)) for r in store.read_segment(s).to_pylist()
              if r["step"] == "loaded"}
    assert loaded == in_dest and (len(in_dest) == 40) == (expected == "committed")
    assert store.recover() == []  # nothing left pending
    if expected == "rolled_back":  # the landed rows are mapped again by the next run, under a new load id
        _run(home, spec_path, _table())
        assert verify(store).ok and len(store.segments(("committed",))) == 1


def test_stores_with_both_layouts_answer_verify_trace_impact_export_and_erase(home, spec_path):
    old_lid, _ = _run(home, spec_path, _table(20), one_segment=False)  # three segments (the layout until now)
    new_lid, _ = _run(home, spec_path, _table(20, start=50))           # one segment
    store = open_store(home)
    assert [s["load_id"] for s in store.segments()] == [old_lid] * 3 + [new_lid]
    assert verify(store).ok
    for i, lid in ((3, old_lid), (55, new_lid)):
        chain = trace(store, f"account:ACC-{i}")["chains"][0]
        assert chain["mapping"]["load_id"] == lid
        assert [(x["step"], x["load_id"]) for x in chain["loads"]] == [("loaded", lid)]
        sid = chain["source"]["source_key"]
        recipients = impact(store, f"file.small:{sid}")["recipients"]
        assert [r["entity"] for r in recipients] == ["account"]
        doc = collect_subject(store, f"u{i}@example.org")
        assert [r["target_key"] for r in doc["crm_records"]] == [f"ACC-{i}"]
        assert json.dumps(doc)
    for i in (3, 55):  # erase one subject of each layout
        done = erase_subject(store, f"u{i}@example.org")
        assert (done["landing_rows"], done["destination_rows"], done["tombstones"]) == (1, 1, 2)
        assert f"u{i}@example.org" not in _account_emails(home)
        assert verify(store).ok
        doc = collect_subject(store, f"u{i}@example.org")
        assert [s["step"] for s in doc["steps"]].count("erased") == 2
        assert all(r["fields"] is None for r in doc["crm_records"])
    assert len(_account_emails(home)) == 38


def _account_emails(home: Home) -> list[str]:
    from connectors.crm import open_destination

    return open_destination(home).read("account").column("email").to_pylist()


def _status_messages(t0: datetime):
    from connectors.iot_mqtt.decode import Message

    events = [("dev-1", 0, "online"), ("dev-1", 60, "offline"), ("dev-2", 240, "online")]
    return [Message(f"devices/{d}/status", json.dumps({"status": s, "event_time": (t0 + timedelta(seconds=dt))
                                                       .isoformat()}).encode(), 1, False, False, i + 1, 0)
            for i, (d, dt, s) in enumerate(events)]


def test_a_stream_pass_that_opens_a_ticket_writes_one_segment(home, monkeypatch):
    """The stream worker's processing step (weftline.runner.stream_processor): the events, the incident the
    stateful stage derived, its mapped and loaded edges — one segment, committed with the ticket."""
    from connectors.integration import load_integration
    from connectors.iot_mqtt.config import MqttConfig
    from connectors.iot_mqtt.ingest import Ingestor
    from weftline.runner import stream_processor

    monkeypatch.setenv("WEFTLINE_HOME", str(home.root))
    integ = load_integration("iot_fleet", ROOT / "mappings", home=home)
    res = Ingestor(MqttConfig.from_dict(dict(integ.config)), home).ingest(
        _status_messages(datetime.now(timezone.utc) - timedelta(minutes=10)))
    process = stream_processor(integ, home)
    try:
        [report] = process({"device_status": res.tables["device_status"]})
    finally:
        process.close()
    assert [(t.entity, t.loaded) for t in report.targets] == [("service_ticket", 1)]
    store = open_store(home)
    [seg] = store.segments()
    steps = _steps(store, seg)
    assert seg["state"] == "committed"
    assert steps == ["received"] * 4 + ["mapped", "loaded"]  # 3 events + the incident, its ticket
    assert verify(store).ok
    from connectors.crm import open_destination

    [ticket] = open_destination(home).read("service_ticket").to_pylist()
    chain = trace(store, f"service_ticket:{ticket['ticket_id']}")["chains"][0]
    assert chain["source"]["stream"] == "device_status.incidents"
    assert [x["step"] for x in chain["loads"]] == ["loaded"]
