"""Consistency: a process killed between the steps of a run is repaired by the next run's recover().

No destination row without its lineage; no committed lineage for a load the destination never took.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lineage import destination as dest_mod
from lineage.query import UnknownRef, trace
from lineage.store import open_store
from lineage.verify import verify

from lineage_pipeline import ENTITY, run_pipeline

HERE = Path(__file__).parent


def crash_run(home, load_id: str, die_after: str, sigkill: bool = False, store_args: str = "",
              defer_begin: bool = False) -> int:
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(HERE)!r})
        from connectors.base.home import Home
        from lineage.store import open_store
        from lineage_pipeline import run_pipeline
        store = open_store(Home({str(home.root)!r}){store_args})
        run_pipeline(store, {load_id!r}, die_after={die_after!r}, sigkill={sigkill!r}, defer_begin={defer_begin!r})
    """)
    return subprocess.run([sys.executable, "-c", code], cwd=HERE.parents[1], timeout=240).returncode


def assert_consistent(store) -> None:
    """Every destination row of every committed load has a committed loaded edge, and vice versa."""
    for load in store.ledger.loads():
        in_dest = set(dest_mod.record_ids_of_load(store.home, ENTITY, load["load_id"]))
        edges = store.index.lookup("record_id", sorted(in_dest))
        committed = {s["seq"] for s in store.segments(("committed",))}
        loaded = {r["record_id"] for r in edges.to_pylist()
                  if r["step"] == "loaded" and r["load_id"] == load["load_id"] and r["seq"] in committed}
        assert loaded == in_dest, load


@pytest.mark.parametrize("die_after,expected", [
    ("received", "rolled_back"),
    ("mapped", "rolled_back"),
    ("destination", "committed"),
    ("loaded", "committed"),
])
def test_kill_between_steps_then_recover(home, die_after, expected):
    assert crash_run(home, "L1", die_after) == 17
    store = open_store(home)
    assert {s["state"] for s in store.segments()} == {"pending"}
    assert store.recover() == [("L1", expected)]
    assert verify(store).ok
    assert_consistent(store)
    if expected == "committed":
        loads = trace(store, "lead:WEB-1")["chains"][0]["loads"]
        assert [(x["step"], x["load_id"]) for x in loads] == [("loaded", "L1")]
    else:
        with pytest.raises(UnknownRef):
            trace(store, "lead:WEB-1")
    run_pipeline(store, "L2")  # the next run goes through
    assert store.recover() == []
    assert_consistent(store)
    assert verify(store).ok


def test_sigkill_after_the_destination_load_is_repaired(home):
    assert crash_run(home, "L1", "destination", sigkill=True) == -9
    store = open_store(home)
    assert store.recover() == [("L1", "committed")]
    steps = [r["step"] for r in store.index.lookup("target_key", ["WEB-2"]).to_pylist()]
    assert sorted(steps) == ["loaded", "mapped"]
    assert_consistent(store)


@pytest.mark.parametrize("die_after,expected", [
    ("begin", None),  # deferred: nothing recorded, nothing loaded — nothing to recover
    ("received", "rolled_back"),
    ("mapped", "rolled_back"),
    ("destination", "committed"),
    ("loaded", "committed"),
])
def test_kill_between_steps_with_a_deferred_begin_then_recover(home, die_after, expected):
    """The stream worker's runner records the pending load with its first segment (begin(defer=True)) and
    makes sure it is recorded before the destination load: the same repairs after a crash at any step."""
    assert crash_run(home, "L1", die_after, defer_begin=True) == 17
    store = open_store(home)
    assert store.recover() == ([] if expected is None else [("L1", expected)])
    assert verify(store).ok
    assert_consistent(store)
    run_pipeline(store, "L2", defer_begin=True)
    assert store.recover() == []
    assert_consistent(store)
    assert verify(store).ok
