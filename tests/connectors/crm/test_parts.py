"""Loads of several parts: the staged PostgreSQL load (one transaction at commit) against the same parts
loaded one by one, on the real PostgreSQL at 127.0.0.1:5432 (and DuckDB for the generic path)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from connectors.crm import open_destination
from connectors.crm.evolution import SchemaChangeError
from connectors.crm.parts import PartByPart, open_load
from connectors.crm.postgres_parts import PostgresPartLoad

from .conftest import rows

UPSERT = {"key": ["external_id"], "write": "upsert"}


def parts(batch) -> list[tuple[str, pa.Table, dict]]:
    """Overlapping keys across parts (the later part wins), a key twice in one part, a column that
    appears in a later part, and an append and a replace entity beside the upserted one."""
    twice = pa.concat_tables([batch([7], "L1"), batch([7], "L1", version="v2")])
    return [
        ("lead", batch([1, 2, 3], "L1"), UPSERT),
        ("lead", batch([3, 4], "L1", email=["n3@example.org", "n4@example.org"]), UPSERT),
        ("lead", batch([5], "L1", segment=["vip"]), UPSERT),
        ("lead", twice, UPSERT),
        ("lead", batch([1], "L1", version="v3"), UPSERT),
        ("event", batch([1, 2], "L1"), {"key": [], "write": "append"}),
        ("event", batch([3], "L1"), {"key": [], "write": "append"}),
        ("snapshot", batch([1, 2], "L1"), {"key": [], "write": "replace"}),
    ]


def load_parts(dest, load_id: str, batch, staged: bool):
    load = open_load(dest, load_id) if staged else PartByPart(dest, load_id)
    for entity, table, how in parts(batch):
        load.add(entity, table, **how)
    return load.commit()


def expected(batch) -> list[dict]:
    """What the parts leave in ``lead``: the last row of each key, ``segment`` null where a part lacked it."""
    last = {}
    for entity, table, _ in parts(batch):
        if entity == "lead":
            for r in table.to_pylist():
                last[r["external_id"]] = {"segment": None, **r}
    return sorted(last.values(), key=lambda r: r["_wl_record_id"])


def test_a_staged_load_leaves_what_the_parts_loaded_one_by_one_leave(home, batch, pg_url):
    staged = open_destination(home, pg_url())
    one_by_one = open_destination(home, pg_url())
    probe = open_load(staged, "L0")
    assert isinstance(probe, PostgresPartLoad)
    probe.abort()
    got = load_parts(staged, "L1", batch, staged=True)
    load_parts(one_by_one, "L1", batch, staged=False)
    for entity in ("lead", "event", "snapshot"):
        assert rows(staged.read(entity)) == rows(one_by_one.read(entity)), entity
    assert rows(staged.read("lead")) == expected(batch)
    added = sum(t.num_rows for e, t, _ in parts(batch) if e == "lead")
    assert (got["lead"].rows, got["lead"].rows + got["lead"].superseded) == (6, added)  # keys 1, 2, 3, 4, 5, 7
    assert (got["event"].rows, got["snapshot"].rows) == (3, 2)


def test_a_second_staged_load_merges_into_the_existing_rows(home, batch, pg_url):
    dest = open_destination(home, pg_url())
    load_parts(dest, "L1", batch, staged=True)
    load = open_load(dest, "L2")
    load.add("lead", batch([2, 9], "L2", email=["x2@example.org", "x9@example.org"]), **UPSERT)
    load.add("lead", batch([9], "L2"), **UPSERT)
    got = load.commit()["lead"]
    by_key = {r["external_id"]: r for r in dest.read("lead").to_pylist()}
    assert (got.rows, got.superseded) == (2, 1)
    assert by_key["WEB-2"]["email"] == "x2@example.org" and by_key["WEB-2"]["_wl_load_id"] == "L2"
    assert by_key["WEB-9"]["email"] == "user9@example.org"  # the later part won
    assert by_key["WEB-1"]["_wl_load_id"] == "L1" and len(by_key) == 7  # 1, 2, 3, 4, 5, 7 and 9
    assert dest.committed_load_ids("lead") == {"L1", "L2"}


def test_nothing_of_a_staged_load_is_visible_before_commit_or_after_abort(home, batch, pg_url):
    dest = open_destination(home, pg_url())
    dest.load("lead", batch([1], "L0"), load_id="L0", **UPSERT)
    load = open_load(dest, "L1")
    load.add("lead", batch([1, 2, 3], "L1"), **UPSERT)
    load.add("lead", batch([4], "L1"), **UPSERT)
    load._wait(0)  # the COPYs are done: the rows sit in the load's own staging tables
    assert dest.committed_load_ids("lead") == {"L0"}
    assert dest.read("lead").num_rows == 1
    load.abort()
    assert rows(dest.read("lead")) == rows(batch([1], "L0"))
    with pytest.raises(RuntimeError):
        load.add("lead", batch([5], "L1"), **UPSERT)


def test_written_but_uncommitted_parts_stay_invisible_and_an_abort_still_drops_them(home, batch, pg_url):
    """``write()`` runs the load's statements while the caller makes lineage durable: nothing shows before
    ``commit()``, and an abort after it leaves the target as it was; a commit after it writes once."""
    dest = open_destination(home, pg_url())
    dest.load("lead", batch([1], "L0"), load_id="L0", **UPSERT)
    load = open_load(dest, "L1")
    load.add("lead", batch([1, 2], "L1"), **UPSERT)
    load.add("lead", batch([2, 3], "L1", email=["n2@example.org", "n3@example.org"]), **UPSERT)
    load.write()
    load.write()  # once only
    assert dest.committed_load_ids("lead") == {"L0"} and dest.read("lead").num_rows == 1
    got = load.commit()["lead"]
    assert (got.rows, got.superseded) == (3, 1)
    assert {r["external_id"]: r["_wl_load_id"] for r in dest.read("lead").to_pylist()} == {
        "WEB-1": "L1", "WEB-2": "L1", "WEB-3": "L1"}
    again = open_load(dest, "L2")
    again.add("lead", batch([4], "L2"), **UPSERT)
    again.add("lead", batch([4, 5], "L2"), **UPSERT)
    again.write()
    again.abort()
    assert dest.committed_load_ids("lead") == {"L1"} and dest.read("lead").num_rows == 3


def test_a_changed_type_in_a_later_part_fails_the_load_and_leaves_nothing(home, batch, pg_url):
    dest = open_destination(home, pg_url())
    load = open_load(dest, "L1")
    load.add("lead", batch([1, 2], "L1"), **UPSERT)
    load.add("lead", batch([3], "L1"), **UPSERT)
    with pytest.raises(SchemaChangeError):
        load.add("lead", batch([4], "L1").set_column(3, "score", pa.array(["high"])), **UPSERT)
    load.abort()
    assert dest.read("lead").num_rows == 0  # dlt created the table from the first part; no rows


def test_generic_destinations_load_part_by_part(home, batch):
    dest = open_destination(home)  # DuckDB
    load = open_load(dest, "L1")
    assert isinstance(load, PartByPart)
    for entity, table, how in parts(batch):
        load.add(entity, table, **how)
    got = load.commit()
    assert rows(dest.read("lead")) == expected(batch)
    assert got["lead"].rows + got["lead"].superseded == sum(t.num_rows for e, t, _ in parts(batch) if e == "lead")


def test_parts_with_new_keys_go_straight_into_an_empty_target_unseen_until_commit(home, batch, pg_url):
    dest = open_destination(home, pg_url())
    dest.load("lead", batch([1], "L0").slice(0, 0), load_id="L0", **UPSERT)  # the table exists, empty
    load = open_load(dest, "L1")
    load.add("lead", batch([1, 2], "L1"), **UPSERT)
    load.add("lead", batch([3, 4], "L1"), **UPSERT)
    load._wait(0)
    e = load._entities["lead"]
    assert not e.staged and len(e.seen) == 4  # both parts were COPYed into the target itself
    assert dest.read("lead").num_rows == 0  # another connection sees nothing yet
    load.add("lead", batch([4, 5], "L1", email=["n4@example.org", "n5@example.org"]), **UPSERT)  # 4 again
    assert load._entities["lead"].staged
    written = load.written("lead")  # the loaded edges: one per row the commit leaves, WEB-4 once
    assert sorted(written.column("target_key").to_pylist()) == [f"WEB-{k}" for k in range(1, 6)]
    got = load.commit()["lead"]
    assert got.rows == written.num_rows
    by_key = {r["external_id"]: r["email"] for r in dest.read("lead").to_pylist()}
    assert by_key == {"WEB-1": "user1@example.org", "WEB-2": "user2@example.org", "WEB-3": "user3@example.org",
                      "WEB-4": "n4@example.org", "WEB-5": "n5@example.org"}
    assert (got.rows, got.superseded) == (5, 1)


def test_a_second_load_of_the_same_entity_waits_for_the_first_and_merges_into_it(home, batch, pg_url):
    """No unique index keeps two new-key inserts apart, so a load holds its entities' writer lock until it
    ends: the second load waits, then finds the first one's rows and upserts over them (no duplicates)."""
    import threading

    url = pg_url()
    dest = open_destination(home, url)
    dest.load("lead", batch([9], "L0"), load_id="L0", **UPSERT)  # the table exists and is empty again:
    dest.delete_records("lead", dest.read("lead").column("_wl_record_id"))  # both loads would COPY straight in
    first, second = open_load(open_destination(home, url), "L1"), open_load(open_destination(home, url), "L2")
    first.add("lead", batch([1, 2, 3], "L1"), **UPSERT)  # straight into the (new, empty) target
    done = threading.Event()
    errors: list[BaseException] = []

    def run_second():
        try:
            second.add("lead", batch([2, 3, 4], "L2"), **UPSERT)
            second.commit()
        except BaseException as err:  # surfaced below
            errors.append(err)
        done.set()

    t = threading.Thread(target=run_second, daemon=True)
    t.start()
    try:
        assert not done.wait(1.0), "the second load must wait for the first one's lock"
        first.commit()
        assert done.wait(30) and not errors, errors
    finally:  # never leave a transaction open: the schema is dropped after the test
        first.abort()
        second.abort()
    t.join()
    got = open_destination(home, url).read("lead").to_pylist()
    assert sorted(r["external_id"] for r in got) == ["WEB-1", "WEB-2", "WEB-3", "WEB-4"]
    assert {r["external_id"]: r["_wl_load_id"] for r in got} == {"WEB-1": "L1", "WEB-2": "L2", "WEB-3": "L2", "WEB-4": "L2"}
