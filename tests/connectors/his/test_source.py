"""HisSource streams end to end on the real samples: batches, rejects, incremental state."""

from __future__ import annotations

import json
import os
import shutil

import pyarrow as pa
import pytest

from connectors.base.home import Home
from connectors.base.identity import stamp
from connectors.errors import ConfigError
from connectors.his.source import HisSource


def _run(source, stream, state):
    batches = list(source.read(stream, state))
    return batches, (batches[-1].state if batches else state)


def _stamped(source, batch):
    s = next(s for s in source.streams if s.name == batch.stream)
    return stamp(batch.table, system=source.system, stream=s.name, key=list(s.key), position=s.position, load_id="L")


def test_hl7_drop_folder_incremental(hl7_dir, tmp_path):
    drop = tmp_path / "drop"
    shutil.copytree(hl7_dir, drop)
    src = HisSource({"hl7_dir": str(drop), "batch_files": 50}, Home(tmp_path / "home"))
    batches, state = _run(src, "hl7_messages", {})
    assert len(batches) == 3  # 132 files, 50 per batch
    assert sum(b.table.num_rows for b in batches) == 125 and sum(b.rejected.num_rows for b in batches) == 7
    assert len(state["files"]) == 132
    landed = pa.concat_tables([_stamped(src, b) for b in batches], promote_options="permissive")
    # same message twice (4 sample files are byte-identical copies) → same record id; reused control ids
    # (e.g. 111111) with other content → different ids
    distinct = {(drop / o.split("#")[0]).read_bytes() for o in landed.column("origin").to_pylist()}
    assert len(distinct) == 121
    assert len(set(landed.column("_wl_record_id").to_pylist())) == len(distinct)
    # nothing new: nothing read
    assert _run(src, "hl7_messages", state)[0] == []
    # one new file with two messages (CRLF), one changed file
    (drop / "new.hl7").write_bytes(b"MSH|^~\\&|A|F|||20240101||ADT^A01|N1|P|2.5\r\nPID|1\r\n"
                                   b"MSH|^~\\&|A|F|||20240101||ADT^A08|N2|P|2.5\r\nPID|1\r\n")
    changed = drop / "examples_MN_005_MN_ADT_A01.hl7"
    changed.write_bytes(changed.read_bytes() + b"\n")
    os.utime(changed, ns=(1, 1))
    batches, state2 = _run(src, "hl7_messages", state)
    got = pa.concat_tables([b.table for b in batches], promote_options="permissive")
    assert sorted(got.column("message_control_id").to_pylist()) == ["407750281", "N1", "N2"]
    assert len(state2["files"]) == 133


def test_fhir_folder_streams(fhir_dir, tmp_path):
    folder = tmp_path / "fhir"
    shutil.copytree(fhir_dir, folder)
    (folder / "broken.json").write_text('{"resourceType": "Patient", "id": ')
    bad_mr = {"resourceType": "MedicationRequest", "id": "nosubject", "status": "active", "intent": "order",
              "medicationCodeableConcept": {"text": "x"}}
    (folder / "bundle.json").write_text(json.dumps({"resourceType": "Bundle", "type": "collection",
                                                    "entry": [{"resource": bad_mr}]}))
    src = HisSource({"fhir_dir": str(folder)}, Home(tmp_path / "home"))
    [mr], state = _run(src, "fhir_medication_request", {})
    assert mr.table.num_rows == 8
    assert sorted(mr.rejected.column("position").to_pylist()) == ["broken.json", "bundle.json/entry[1]"]
    assert "subject" in mr.rejected.column("reason")[1].as_py()
    [pat], _ = _run(src, "fhir_patient", {})
    assert pat.table.column("id").to_pylist() == ["example"] and pat.rejected.num_rows == 1  # the unreadable file
    assert _run(src, "fhir_medication_request", state)[0] == []
    _stamped(src, mr)  # stampable: key and position columns exist


def test_fhir_rest_incremental_with_an_invalid_resource(fhir_server, sample_resources, tmp_path):
    fhir_server.put({"resourceType": "MedicationRequest", "id": "bad", "status": "active", "intent": "order",
                     "medicationCodeableConcept": {"text": "x"}})  # no subject: invalid, and the newest
    src = HisSource({"fhir_base_url": fhir_server.base_url, "page_size": 3}, Home(tmp_path / "home"))
    batches, state = _run(src, "fhir_medication_request", {})
    assert len(batches) == 3
    assert [b.state for b in batches[:-1]] == [{}, {}]  # the cursor moves only with the last page
    assert sum(b.table.num_rows for b in batches) == 8
    [rej] = [r for b in batches for r in b.rejected.to_pylist()]
    assert "not valid FHIR R4" in rej["reason"] and json.loads(rej["raw"])["id"] == "bad"
    newest = max(r["meta"]["lastUpdated"] for r in fhir_server.resources if r["resourceType"] == "MedicationRequest")
    assert state == {"last_updated": newest}
    # nothing changed: one empty page, cursor unchanged
    batches, state2 = _run(src, "fhir_medication_request", state)
    assert sum(b.table.num_rows for b in batches) == 0 and state2 == state
    # an update on the server comes back, and only it
    updated = fhir_server.put({**sample_resources[0], "status": "stopped"})
    batches, state3 = _run(src, "fhir_medication_request", state)
    rows = [r for b in batches for r in b.table.to_pylist()]
    assert [(r["id"], r["status"]) for r in rows] == [(updated["id"], "stopped")]
    assert state3 == {"last_updated": updated["meta"]["lastUpdated"]}
    assert rows[0]["version"] == updated["meta"]["lastUpdated"]


def test_config_errors_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="not both"):
        HisSource({"fhir_dir": "a", "fhir_base_url": "b"}, Home(tmp_path))
    with pytest.raises(ConfigError, match="hl7_dir"):
        list(HisSource({}, Home(tmp_path)).read("hl7_messages", {}))
    with pytest.raises(ConfigError, match="no stream"):
        list(HisSource({}, Home(tmp_path)).read("nope", {}))


def _rows(batches):
    return [r for b in batches for r in b.table.to_pylist()]


def test_fhir_rest_a_deleted_resource_becomes_one_delete_event(fhir_server, sample_resources, tmp_path):
    src = HisSource({"fhir_base_url": fhir_server.base_url, "page_size": 3}, Home(tmp_path / "home"))
    batches, state = _run(src, "fhir_medication_request", {})
    assert {r["_op"] for r in _rows(batches)} == {"upsert"} and len(_rows(batches)) == 8
    assert not any("/_history" in r for r in fhir_server.requests)  # first sync: nothing delivered could be deleted
    when = fhir_server.delete("MedicationRequest", "medrx0305")
    batches, state2 = _run(src, "fhir_medication_request", state)
    [event] = _rows(batches)
    assert (event["id"], event["_op"], event["version"]) == ("medrx0305", "delete", when)
    assert event["last_updated"].isoformat().replace("+00:00", "Z") == when
    assert event["status"] is None and event["requester_reference"] is None and event["resource_json"] is None
    assert state2 == {"last_updated": when}
    stamped = _stamped(src, batches[-1])  # a new version of the record: not the id of its last upsert
    first = pa.concat_tables([_stamped(src, b) for b in _run(src, "fhir_medication_request", {})[0]],
                             promote_options="permissive")
    assert stamped.column("_wl_record_id")[0].as_py() not in first.column("_wl_record_id").to_pylist()
    # a re-run: the history still serves the delete (_since is inclusive) but it is not emitted again
    batches, state3 = _run(src, "fhir_medication_request", state2)
    assert _rows(batches) == [] and state3 == state2


def test_fhir_rest_deletes_are_merged_in_time_order_and_a_recreated_resource_survives(fhir_server, sample_resources,
                                                                                      tmp_path):
    src = HisSource({"fhir_base_url": fhir_server.base_url, "page_size": 1}, Home(tmp_path / "home"))
    _, state = _run(src, "fhir_medication_request", {})
    by_id = {r["id"]: r for r in sample_resources}
    fhir_server.delete("MedicationRequest", "medrx0301")
    fhir_server.put({**by_id["medrx0302"], "status": "stopped"})
    fhir_server.delete("MedicationRequest", "medrx0303")
    fhir_server.put({**by_id["medrx0303"], "status": "active"})  # re-created after its delete
    fhir_server.delete("MedicationRequest", "medrx0306")  # after the newest search result
    batches, state2 = _run(src, "fhir_medication_request", state)
    rows = _rows(batches)
    assert [(r["id"], r["_op"]) for r in rows] == [("medrx0301", "delete"), ("medrx0302", "upsert"),
                                                   ("medrx0303", "delete"), ("medrx0303", "upsert"),
                                                   ("medrx0306", "delete")]
    stamps = [r["last_updated"] for r in rows]
    assert stamps == sorted(stamps)  # one time-ordered stream (the Singer tap declares it sorted)
    assert [[r["id"] for r in b.table.to_pylist()] for b in batches] == [  # two search pages of one resource
        ["medrx0301", "medrx0302"], ["medrx0303", "medrx0303", "medrx0306"]]
    assert batches[0].state == state  # the cursor moves with the last batch only
    assert state2 == {"last_updated": fhir_server.clock.isoformat().replace("+00:00", "Z")}


def test_fhir_rest_a_crash_after_a_page_rereads_the_same_deletes(fhir_server, tmp_path):
    src = HisSource({"fhir_base_url": fhir_server.base_url, "page_size": 1}, Home(tmp_path / "home"))
    _, state = _run(src, "fhir_medication_request", {})
    fhir_server.delete("MedicationRequest", "medrx0307")
    fhir_server.put({**next(r for r in fhir_server.resources if r["id"] == "medrx0308"), "status": "stopped"})
    fhir_server.put({**next(r for r in fhir_server.resources if r["id"] == "medrx0304"), "status": "stopped"})
    it = src.read("fhir_medication_request", state)
    first = next(it)  # the process dies here: the first page landed, its state is the old cursor
    assert first.state == state
    again, _ = _run(src, "fhir_medication_request", first.state)
    ids = [(r["id"], r["_op"]) for r in _rows(again)]
    assert ids == [("medrx0307", "delete"), ("medrx0308", "upsert"), ("medrx0304", "upsert")]
    assert _rows([first]) == _rows(again)[:first.table.num_rows]  # same rows, so the same record ids


def test_fhir_rest_without_history_syncs_with_one_warning(fhir_server, sample_resources, tmp_path, caplog):
    fhir_server.history_status = 404
    src = HisSource({"fhir_base_url": fhir_server.base_url, "page_size": 3}, Home(tmp_path / "home"))
    _, state = _run(src, "fhir_medication_request", {})
    fhir_server.delete("MedicationRequest", "medrx0301")
    updated = fhir_server.put({**sample_resources[1], "status": "stopped"})
    with caplog.at_level("WARNING", logger="connectors.his.source"):
        batches, state2 = _run(src, "fhir_medication_request", state)
        _run(src, "fhir_medication_request", state2)  # same run (same source): no second warning
    assert [(r["id"], r["_op"]) for r in _rows(batches)] == [(updated["id"], "upsert")]  # the delete is not seen
    assert state2 == {"last_updated": updated["meta"]["lastUpdated"]}
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "no MedicationRequest/_history" in warnings[0] and "search only" in warnings[0]
    assert "HTTP 404" in warnings[0]
