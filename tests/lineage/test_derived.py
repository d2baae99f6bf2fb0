"""Loaded segments kept as ranges of mapped segments (lineage/derived.py, docs/adr/0115): read back as the
same edges an explicit segment holds, tamper-evident like any segment, and used only when the rows the
destination accepted are exactly the mapped ones."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connectors.base.identity import stamp
from lineage import derived
from lineage import edges as E
from lineage.capture import Capture
from lineage.verify import verify

from lineage_pipeline import ENTITY, ROWS, STREAM, SYSTEM, Spec, load_duckdb, map_rows


def _part(store, load_id: str, rows=ROWS, first: int = 0):
    rows = [{**r, "submission_id": r["submission_id"] + first} for r in rows]
    landed = stamp(pa.Table.from_pylist(rows), system=SYSTEM, stream=STREAM, key=["submission_id"],
                   position=None, load_id=load_id)
    return landed, map_rows(landed, Spec(), store.home.subject_key(), load_id)


def _one_load(store, load_id: str = "L1", loaded=lambda out: out):
    """begin → received → mapped → durable → loaded (prepared, then recorded) → commit, as the runner does."""
    store.begin(load_id)
    landed, result = _part(store, load_id)
    out = result.outputs[0].table
    with Capture(store, load_id) as cap:
        cap.received(landed)
        cap.mapped(Spec(), result)
        cap.durable()
        cap.loaded(cap.prepare_loaded("duckdb", ENTITY, loaded(out), ["external_id"]))
    store.commit(load_id)
    return out


def _raw(store, seg: dict) -> pa.Table:
    return pq.read_table(io.BytesIO(store.blobs.get(seg["file"])))


def _expected(store, seg: dict, table: pa.Table) -> pa.Table:
    """The loaded edges an explicit segment of ``table`` would hold, at the segment's time."""
    at = store.read_segment(seg).column("at")[0].as_py()
    return E.plain(E.loaded_edges(seg["load_id"], "duckdb", ENTITY, table, ["external_id"], at=at))


@pytest.fixture(params=["embedded", "postgres+s3"])
def any_store(request):
    return request.getfixturevalue("store" if request.param == "embedded" else "remote_store")


def test_mapped_rows_loaded_as_they_are_become_one_range_read_back_as_the_same_edges(any_store):
    out = _one_load(any_store)
    received, mapped, loaded = any_store.segments()
    assert derived.is_derived(_raw(any_store, loaded).schema.metadata)
    assert derived.ranges_of(_raw(any_store, loaded)) == [derived.Range(mapped["seq"], mapped["merkle_root"], 0, 3)]
    got = any_store.read_segment(loaded)
    assert got.equals(_expected(any_store, loaded, out)) and got.schema == E.EDGE_SCHEMA
    assert loaded["rows"] == 3 and loaded["state"] == "committed"
    r = verify(any_store)
    assert r.ok and r.edges == 5 + 5 + 3
    # the index (embedded: caught up from the files; PostgreSQL: written at record time) has the loaded edges
    rid = out.column("_wl_record_id")[0].as_py()
    steps = any_store.index.lookup("record_id", [rid]).column("step").to_pylist()
    assert sorted(steps) == ["loaded", "mapped"]


def test_trace_impact_export_and_erase_answer_from_a_derived_load(any_store):
    """The pipeline through the capture thread, landed and loaded into the DuckDB CRM: every reader sees
    the loaded edges of the ranges, and erasure leaves a store that verifies."""
    from connectors.landing import land
    from lineage import collect_subject, erase_subject, impact, trace

    store, lid = any_store, "20261206T210000000000Z-0000000d"
    store.begin(lid)
    landed, result = _part(store, lid)
    land(landed, store.home, SYSTEM, STREAM, lid)
    out = result.outputs[0].table
    with Capture(store, lid) as cap:
        cap.received(landed)
        cap.mapped(Spec(), result)
        cap.durable()
        job = cap.prepare_loaded("duckdb", ENTITY, out, ["external_id"])
        load_duckdb(store.home, ENTITY, out, "external_id")
        cap.loaded(job)
    store.commit(lid)
    assert derived.is_derived(_raw(store, store.segments()[-1]).schema.metadata)
    chain = trace(store, f"{ENTITY}:WEB-1")["chains"][0]
    assert [(x["step"], x["load_id"], x["destination"]) for x in chain["loads"]] == [("loaded", lid, "duckdb")]
    assert impact(store, f"{SYSTEM}.{STREAM}:2")["recipients"] == [{"destination": "duckdb", "entity": ENTITY}]
    doc = collect_subject(store, "ann@example.org")
    assert sorted(r["target_key"] for r in doc["crm_records"]) == ["WEB-1", "WEB-3"]
    done = erase_subject(store, "ann@example.org")
    assert (done["landing_rows"], done["destination_rows"], done["tombstones"]) == (2, 2, 4)
    assert done["recipients"] == [{"destination": "duckdb", "entity": ENTITY}]
    assert verify(store).ok
    assert [s["step"] for s in collect_subject(store, "ann@example.org")["steps"]].count("erased") == 4


def test_rows_other_than_the_mapped_ones_stay_edges(store):
    out = _one_load(store, loaded=lambda t: t.slice(1))  # the destination kept two of three rows
    loaded = store.segments()[-1]
    assert not derived.is_derived(_raw(store, loaded).schema.metadata)
    assert store.read_segment(loaded).equals(_expected(store, loaded, out.slice(1)))
    assert verify(store).ok


def test_reordered_rows_stay_edges(store):
    out = _one_load(store, loaded=lambda t: t.take([2, 0, 1]))
    loaded = store.segments()[-1]
    assert not derived.is_derived(_raw(store, loaded).schema.metadata)
    assert store.read_segment(loaded).column("record_id").to_pylist() == \
        out.take([2, 0, 1]).column("_wl_record_id").to_pylist()


def _two_parts(store, load_id: str = "L2"):
    """A load of two parts whose loaded edges come at the end (weftline/loads.py's deferred path)."""
    store.begin(load_id)
    outs = []
    with Capture(store, load_id) as cap:
        for first in (0, 100):
            landed, result = _part(store, load_id, first=first)
            cap.received(landed)
            cap.mapped(Spec(), result)
            outs.append(result.outputs[0].table)
        cap.loaded_pending("duckdb", ENTITY, pa.concat_tables(outs), ["external_id"])
        cap.durable()
    store.commit(load_id)
    return pa.concat_tables(outs)


def test_a_load_of_many_parts_names_one_range_per_part(store):
    both = _two_parts(store)
    segs = store.segments()
    loaded = segs[-1]
    mapped = [s for s in segs if "mapped" in store.read_segment(s).column("step").to_pylist()]
    assert derived.ranges_of(_raw(store, loaded)) == [derived.Range(m["seq"], m["merkle_root"], 0, 3) for m in mapped]
    assert store.read_segment(loaded).equals(_expected(store, loaded, both))
    assert verify(store).ok


def _rewrite(store, seg: dict, change) -> None:
    raw = _raw(store, seg)
    buf = io.BytesIO()
    pq.write_table(change(raw), buf)
    store.blobs.put(seg["file"], buf.getvalue())


def _with_range(raw: pa.Table, i: int, **change) -> pa.Table:
    rows = raw.to_pylist()
    rows[i] = {**rows[i], **change}
    return pa.Table.from_pylist(rows, schema=raw.schema)


def _with_meta(raw: pa.Table, **change) -> pa.Table:
    import json

    doc = json.loads(raw.schema.metadata[derived.META_KEY])
    return raw.replace_schema_metadata({derived.META_KEY: json.dumps({**doc, **change}, sort_keys=True).encode()})


TAMPER = {
    "fewer rows": lambda raw: _with_range(raw, 1, count=2),
    "other rows": lambda raw: _with_range(raw, 1, start=1),
    "another segment": lambda raw: _with_range(raw, 1, seq=1),
    "ranges swapped": lambda raw: raw.take([1, 0]),
    "range deleted": lambda raw: raw.slice(0, 1),
    "another entity": lambda raw: _with_meta(raw, entity="account"),
    "another destination": lambda raw: _with_meta(raw, destination="postgres"),
}
ROW = {"fewer rows": 3, "other rows": 3, "another segment": 3, "ranges swapped": 0, "range deleted": 3,
       "another entity": 0, "another destination": 0}


@pytest.mark.parametrize("how", sorted(TAMPER))
def test_an_altered_derived_segment_is_named_with_its_first_changed_row(store, how):
    _two_parts(store)
    loaded = store.segments()[-1]
    _rewrite(store, loaded, TAMPER[how])
    p = verify(store).problems[0]
    assert (p.seq, p.row) == (loaded["seq"], ROW[how]) and "Merkle root does not match" in p.message


def test_a_deleted_derived_segment_file_is_named(store):
    _one_load(store)
    loaded = store.segments()[-1]
    store.blobs.path(loaded["file"]).unlink()
    p = verify(store).problems[0]
    assert p.seq == loaded["seq"] and "missing" in p.message


def test_an_altered_mapped_segment_is_named_before_the_range_that_reads_it(store):
    _one_load(store)
    mapped, loaded = store.segments()[1:]

    def change(t: pa.Table) -> pa.Table:
        i = t.schema.get_field_index("target_key")
        keys = t.column(i).to_pylist()
        return t.set_column(i, "target_key", pa.array(["WEB-99"] + keys[1:], t.schema.field(i).type))

    _rewrite(store, mapped, change)
    problems = verify(store, stop_at_first=False).problems
    assert [p.seq for p in problems] == [mapped["seq"]] and problems[0].row == 0


def test_ranges_that_are_not_mapped_rows_of_the_entity_fail_to_read_and_verify(store):
    """A writer that named the wrong rows (here: the received segment, with its true root) is found."""
    store.begin("L1")
    landed, result = _part(store, "L1")
    received = store.append_received("L1", landed)
    edges = E.loaded_edges("L1", "duckdb", ENTITY, result.outputs[0].table, ["external_id"])
    rec = store.record(store.prepare_derived("L1", edges, [derived.Range(received["seq"], received["merkle_root"], 0, 3)]))
    with pytest.raises(ValueError, match="not mapped lead rows"):
        store.read_segment(rec)
    p = verify(store).problems[0]
    assert p.seq == rec["seq"] and "not mapped lead rows" in p.message


def test_a_range_naming_a_later_or_unknown_segment_fails_to_read(store):
    store.begin("L1")
    landed, result = _part(store, "L1")
    received = store.append_received("L1", landed)
    edges = E.loaded_edges("L1", "duckdb", ENTITY, result.outputs[0].table, ["external_id"])
    rec = store.record(store.prepare_derived("L1", edges, [derived.Range(received["seq"] + 5, "00" * 32, 0, 3)]))
    with pytest.raises(ValueError, match="is not the mapped segment"):
        store.read_segment(rec)
    assert "is not the mapped segment" in verify(store).problems[0].message


def test_killed_after_the_derived_segment_before_the_commit_recovers_without_duplicates(home, tmp_path):
    """The runner's process dies in ``store.commit``: the derived loaded segment is in the ledger (pending);
    the next recovery commits the load and adds no explicit loaded edges beside it."""
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    from lineage import destination as dest_mod
    from lineage.store import open_store

    from test_capture import SPEC

    spec_path = tmp_path / "capture_account.yaml"
    spec_path.write_text(SPEC)
    here = Path(__file__).parent
    code = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(here)!r})
        from connectors.base.home import Home
        from lineage.store import Store
        from test_capture import _run

        Store.commit = lambda self, load_id: os._exit(17)
        _run(Home({str(home.root)!r}), __import__("pathlib").Path({str(spec_path)!r}))
    """)
    assert subprocess.run([sys.executable, "-c", code], cwd=here.parents[1], timeout=240).returncode == 17
    store = open_store(home)
    segs = store.segments()
    assert [s["state"] for s in segs] == ["pending"] * 3
    assert derived.is_derived(_raw(store, segs[-1]).schema.metadata)
    [(lid, action)] = store.recover()
    assert action == "committed" and verify(store).ok
    loaded = [r["record_id"] for s in store.segments(("committed",)) for r in store.read_segment(s).to_pylist()
              if r["step"] == "loaded"]
    assert len(store.segments()) == 3 and len(loaded) == len(set(loaded)) == 50
    assert set(loaded) == set(dest_mod.record_ids_of_load(home, "account", lid))
