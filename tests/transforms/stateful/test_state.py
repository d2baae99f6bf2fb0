"""State files: saved atomically per spec under $WEFTLINE_HOME/state/stateful/<spec_id>/, restored after a restart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from connectors.base.home import Home
from transforms.stateful import State, StateConflict, load_state, save_state


def test_restart_between_batches_continues_the_incident(tmp_path, offline_plan, mk):
    _, _, st = offline_plan.apply(mk.status([("d1", 0, "online"), ("d1", 10, "offline")]), State.empty())
    save_state(tmp_path, "device_offline_ticket", st)
    restored = load_state(tmp_path, "device_offline_ticket")
    assert restored.watermark == st.watermark and restored.next_seq == st.next_seq
    assert restored.buffer.equals(st.buffer) and restored.scopes.equals(st.scopes)
    inc, _, st2 = offline_plan.apply(mk.status([("d2", 200, "online")]), restored)
    assert inc.column("action").to_pylist() == ["open"]
    save_state(tmp_path, "device_offline_ticket", st2)
    inc, _, _ = offline_plan.apply(mk.status([("d1", 300, "online")]), load_state(tmp_path, "device_offline_ticket"))
    assert inc.column("action").to_pylist() == ["close"]  # the open incident survived the restart


def test_layout_and_generations(tmp_path, offline_plan, mk):
    _, _, st = offline_plan.apply(mk.status([("d1", 0, "online")]), State.empty())
    st = save_state(Home(tmp_path), "device_offline_ticket", st)
    st = save_state(Home(tmp_path), "device_offline_ticket", st)
    d = tmp_path / "state" / "stateful" / "device_offline_ticket"
    assert sorted(p.name for p in d.iterdir()) == [".lock", "CURRENT.json", "gen-00000002.buffer.parquet",
                                                              "gen-00000002.scopes.parquet"]
    assert json.loads((d / "CURRENT.json").read_text())["generation"] == 2


def test_a_crash_before_the_switch_leaves_the_old_state(tmp_path, offline_plan, mk):
    """A real child process is killed (os._exit) after writing the new generation's files but before
    CURRENT.json is switched: the next load sees the previous state, whole."""
    _, _, st = offline_plan.apply(mk.status([("d1", 0, "online")]), State.empty())
    save_state(tmp_path, "spec", st)
    child = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(Path.cwd())!r})
        import transforms.stateful.state as s
        from transforms.stateful.state import load_state, save_state
        real = s.write_atomic_by
        def dying(path, write):
            if path.name == "CURRENT.json":
                os._exit(9)
            real(path, write)
        s.write_atomic_by = dying
        st = load_state({str(tmp_path)!r}, "spec")
        save_state({str(tmp_path)!r}, "spec", s.State(123, 99, st.buffer, st.scopes, st.generation))
    """)
    rc = subprocess.run([sys.executable, "-c", child], env={**os.environ}).returncode
    assert rc == 9
    back = load_state(tmp_path, "spec")
    assert (back.watermark, back.next_seq) == (st.watermark, st.next_seq)
    assert back.buffer.equals(st.buffer)
    save_state(tmp_path, "spec", back)  # the orphaned generation is cleaned up by the next save
    assert len(list((tmp_path / "state" / "stateful" / "spec").glob("gen-*"))) == 2


def test_a_second_writer_gets_a_retriable_conflict_not_a_silent_overwrite(tmp_path, offline_plan, mk):
    save_state(tmp_path, "s", State.empty())
    mine, theirs = load_state(tmp_path, "s"), load_state(tmp_path, "s")
    _, _, mine = offline_plan.apply(mk.status([("d1", 0, "online")]), mine)
    _, _, theirs = offline_plan.apply(mk.status([("d2", 0, "online")]), theirs)
    assert save_state(tmp_path, "s", mine).generation == 2
    with pytest.raises(StateConflict, match="another worker saved in between") as err:
        save_state(tmp_path, "s", theirs)
    assert err.value.kind == "retriable"
    assert load_state(tmp_path, "s").buffer.column("key").to_pylist() == ["d1"]


def test_a_spec_id_cannot_escape_the_state_folder(tmp_path):
    with pytest.raises(ValueError, match="not a spec id"):
        save_state(tmp_path, "../x", State.empty())


def test_a_rule_added_later_starts_from_the_saved_buffer(tmp_path, mk):
    from transforms.stateful import compile_stateful

    first = compile_stateful(mk.OFFLINE, "s")
    _, _, st = first.apply(mk.status([("d1", 0, "online"), ("d1", 10, "offline")]), State.empty())
    save_state(tmp_path, "s", st)
    both = compile_stateful({**mk.OFFLINE, "rules": [*mk.OFFLINE["rules"], {"name": "flaps", "rate": {
        "where": "status = 'offline'", "window": "1h", "baseline": "1h", "threshold": 1}}]}, "s")
    inc, _, st2 = both.apply(mk.status([("d2", 200, "online")]), load_state(tmp_path, "s"))
    assert inc.column("rule").to_pylist() == ["offline"]  # old events have no match flag: not counted
    assert "_m_flaps" in st2.buffer.column_names


def test_kept_state_is_the_saved_one_until_another_writer_saves(tmp_path, offline_plan, mk):
    """A long-lived worker keeps what it saved (KeptState); a save by anyone else since is read from disk,
    and the worker's next save descends from it (no StateConflict, nothing of the other save lost)."""
    from transforms.stateful.state import KeptState

    kept = KeptState(tmp_path, "device_offline_ticket")
    _, _, st = offline_plan.apply(mk.status([("d1", 0, "online"), ("d1", 10, "offline")]), kept.load())
    saved = kept.save(st)
    assert kept.load() is saved and saved.generation == 1
    other = load_state(tmp_path, "device_offline_ticket")  # a second writer (a replay) moves the state on
    _, _, st_other = offline_plan.apply(mk.status([("d2", 20, "online")]), other)
    save_state(tmp_path, "device_offline_ticket", st_other)
    again = kept.load()
    assert again is not saved and again.generation == 2 and again.next_seq == st_other.next_seq
    inc, _, st3 = offline_plan.apply(mk.status([("d2", 300, "online")]), again)
    assert inc.column("action").to_pylist() == ["open"]  # d1's offline run survived both writers
    assert kept.save(st3).generation == 3


def test_kept_state_after_a_conflicting_save_reloads(tmp_path, offline_plan, mk):
    from transforms.stateful.state import KeptState

    kept = KeptState(tmp_path, "device_offline_ticket")
    base = kept.load()
    _, _, mine = offline_plan.apply(mk.status([("d1", 0, "online")]), base)
    save_state(tmp_path, "device_offline_ticket", offline_plan.apply(mk.status([("d9", 0, "online")]), base)[2])
    with pytest.raises(StateConflict):
        kept.save(mine)  # descends from generation 0, disk is at 1
    assert kept.load().generation == 1  # the other writer's state, read again
