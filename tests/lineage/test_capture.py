"""The runner's background capture (lineage/capture.py, docs/adr/0108) keeps ADR 0100: received and mapped
segments are durable and in the ledger when the destination is called, the loaded segment enters the
ledger only after the destination returned, and a process killed inside the destination load recovers."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pytest

from connectors.base.home import Home
from connectors.errors import StageError
from lineage import destination as dest_mod
from lineage.store import open_store
from lineage.verify import verify

from tests.lineage.harness import Watching, map_and_load_once

SPEC = """\
mapping: capture_account
version: 1
source: {connector: file, stream: capture}
subject: email
target: {entity: account, key: [external_id], write: upsert}
fields:
  external_id: {expr: "'ACC-' || id"}
  email:       {from: email, apply: [trim, lower]}
"""


def _table(n: int = 50) -> pa.Table:
    return pa.table({"id": list(range(n)), "email": [f"u{i}@example.org" for i in range(n)]})


def _steps(store, seg: dict) -> set[str]:
    return set(store.read_segment(seg).column("step").to_pylist())


def _run(home: Home, spec_path: Path, destination=None, table: pa.Table | None = None):
    return map_and_load_once(home, spec_path, table if table is not None else _table(), "capture", destination)


@pytest.fixture
def spec_path(tmp_path) -> Path:
    p = tmp_path / "capture_account.yaml"
    p.write_text(SPEC)
    return p


def test_received_and_mapped_are_durable_in_the_ledger_before_the_destination_load(home, spec_path):
    from connectors.crm import open_destination

    dest = Watching(open_destination(home), home)
    lid, report = _run(home, spec_path, destination=dest)
    assert dest.seen == [("pending", ["received"], True), ("pending", ["mapped"], True)]
    store = open_store(home)
    segs = store.segments()
    assert [_steps(store, s) for s in segs] == [{"received"}, {"mapped"}, {"loaded"}]
    assert {s["state"] for s in segs} == {"committed"} and report.reconciles
    assert verify(store).ok


def test_a_failed_map_rolls_the_load_back_at_once(home, spec_path, monkeypatch):
    from transforms import Plan

    def broken(self, *a, **k):
        raise RuntimeError("engine bug")

    monkeypatch.setattr(Plan, "apply", broken)
    with pytest.raises(StageError) as err:
        _run(home, spec_path)
    assert "map" in str(err.value) and "engine bug" in str(err.value)
    store = open_store(home)
    assert [load["state"] for load in store.ledger.loads()] == ["rolled_back"]
    assert {s["state"] for s in store.segments()} <= {"rolled_back"}
    assert store.recover() == [] and verify(store).ok


def _crash_run(home: Home, spec_path: Path, when: str) -> int:
    """A child process whose destination dies (os._exit) before or after the real load commits."""
    here = Path(__file__).parent
    code = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(here)!r})
        from connectors.base.home import Home
        from connectors.crm import open_destination
        from test_capture import _run

        class Dying:
            def __init__(self, inner):
                self.inner = inner
            def __getattr__(self, name):
                return getattr(self.inner, name)
            def load(self, *a, **k):
                if {when!r} == "before":
                    os._exit(17)
                out = self.inner.load(*a, **k)
                os._exit(17)

        home = Home({str(home.root)!r})
        _run(home, __import__("pathlib").Path({str(spec_path)!r}), destination=Dying(open_destination(home)))
    """)
    return subprocess.run([sys.executable, "-c", code], cwd=here.parents[1], timeout=240).returncode


@pytest.mark.parametrize("when,expected", [("before", "rolled_back"), ("after", "committed")])
def test_killed_inside_the_destination_load_recovers(home, spec_path, when, expected):
    assert _crash_run(home, spec_path, when) == 17
    store = open_store(home)
    segs = store.segments()
    assert [_steps(store, s) for s in segs] == [{"received"}, {"mapped"}]  # loaded never reached the ledger
    assert {s["state"] for s in segs} == {"pending"}
    [(lid, action)] = store.recover()
    assert action == expected
    assert verify(store).ok
    in_dest = set(dest_mod.record_ids_of_load(home, "account", lid))
    loaded = {r["record_id"] for s in store.segments(("committed",)) for r in store.read_segment(s).to_pylist()
              if r["step"] == "loaded"}
    assert loaded == in_dest and (len(in_dest) == 50) == (expected == "committed")
