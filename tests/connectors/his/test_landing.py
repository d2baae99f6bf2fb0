"""Landing HL7 and FHIR batches as Parquet, including the shapes Parquet is picky about."""

from __future__ import annotations

import pyarrow as pa

from connectors.base.home import Home
from connectors.base.identity import stamp
from connectors.base.reserved import RECORD_ID
from connectors.his.fhir_records import to_tables
from connectors.his.hl7_table import read_drop, to_table
from connectors.his.landing import land_messages, read_stream
from connectors.landing import land, read_landed

MSG = "MSH|^~\\&|A|F|||20240101||ADT^A01|{id}|P|2.5\rNTE|||\rPID|1||7"


def test_empty_batch_and_empty_segment_land_and_unify(tmp_path):
    home = Home(tmp_path)
    land_messages(to_table([]), home, "L0")  # nothing parsed in this batch (all rejected)
    t, rej = read_drop(MSG.format(id="1").encode(), origin="x")
    assert rej.num_rows == 0 and t.column("segment_ids")[0].as_py() == ["MSH", "NTE", "PID"]
    land_messages(t, home, "L1")  # an NTE with no field at all
    t2, _ = read_drop(MSG.format(id="2").replace("NTE|||", "NTE|1|L|text").encode(), origin="y")
    land_messages(t2, home, "L2")
    got = read_stream(home)
    assert got.column("message_control_id").to_pylist() == ["1", "2"]
    assert [r["NTE"][0]["f3"] for r in got.column("segments").to_pylist()] == [None, [{"c1": "text"}]]


def test_resend_lands_twice_and_reads_once(tmp_path):
    home = Home(tmp_path)
    crlf = MSG.format(id="9").replace("\r", "\r\n").encode()
    for n, data in enumerate([MSG.format(id="9").encode(), crlf]):  # the resend uses other line endings
        t, _ = read_drop(data, origin=f"resend{n}")
        land_messages(t, home, f"L{n}")
    raw = read_stream(home, dedup=False)
    assert raw.num_rows == 2 and len(set(raw.column(RECORD_ID).to_pylist())) == 1
    assert read_stream(home).column("origin").to_pylist() == ["resend0#1"]


def test_fhir_resource_with_an_empty_object_lands(tmp_path, sample_resources):
    patient = next(r for r in sample_resources if r["resourceType"] == "Patient")
    good, bad = to_tables([("p", {**patient, "meta": {}})])
    assert not bad
    t = stamp(good["fhir_patient"], system="his", stream="fhir_patient", key=["id"], position="version", load_id="L")
    land(t, Home(tmp_path), "his", "fhir_patient", "L")
    back = read_landed(Home(tmp_path), "his", "fhir_patient", "L")
    assert back.column("resource")[0].as_py()["meta"] is None and '"meta":{}' in back.column("resource_json")[0].as_py()
    assert isinstance(back.column("resource").type, pa.StructType)
