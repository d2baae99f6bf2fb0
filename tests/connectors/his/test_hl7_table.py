"""Every sample HL7 file parses or is rejected with a clear reason; nothing is dropped."""

from __future__ import annotations

from datetime import datetime, timezone

import pyarrow as pa

from connectors.his.hl7_table import read_drop

# Files in ../shared/data/hl7 that are not acceptable messages, and why (read them: each is broken on purpose).
EXPECTED_REJECTS = {
    "examples_Test_Message_empty.hl7": "no HL7 message",
    "examples_Test_Message_msh_present_but_missing_all_fields.hl7": "MSH-2 (encoding characters) is empty",
    "examples_Test_Message_msh_present_but_missing_msh-2.hl7": "MSH-2 (encoding characters) is empty",
    "examples_Test_Message_msh_present_but_missing_msh-9.hl7": "MSH-9 (message type) is empty",
    "examples_Test_Message_msh_present_but_missing_msh-10.hl7": "MSH-10 (message control id) is empty",
    "examples_TN_001_TN_ORU_R01_LRI_annotated_for_transformation.hl7": "line 6 of the message is not an HL7 segment",
    "examples_TX_001_TX_OML_O21.hl7": "line 6 of the message is not an HL7 segment",
}


def _read_all(hl7_dir):
    files = sorted(hl7_dir.glob("*.hl7"))
    results = {f.name: read_drop(f.read_bytes(), origin=f.name) for f in files}
    return files, results


def test_every_sample_file_is_accounted_for(hl7_dir):
    files, results = _read_all(hl7_dir)
    assert len(files) == 132
    good = pa.concat_tables([g for g, _ in results.values()], promote_options="permissive")
    bad = pa.concat_tables([b for _, b in results.values()])
    good_files = {o.split("#")[0] for o in good.column("origin").to_pylist()}
    bad_files = {p.split("#")[0] for p in bad.column("position").to_pylist()}
    assert good_files | bad_files == {f.name for f in files}
    assert not good_files & bad_files
    assert good.num_rows == 125 and bad.num_rows == 7
    reasons = {p.split("#")[0]: r for p, r in zip(bad.column("position").to_pylist(), bad.column("reason").to_pylist())}
    assert set(reasons) == set(EXPECTED_REJECTS)
    for name, reason in reasons.items():
        assert EXPECTED_REJECTS[name] in reason, (name, reason)
    raw = dict(zip(bad.column("position").to_pylist(), bad.column("raw").to_pylist()))
    tx = next(v for k, v in raw.items() if k.startswith("examples_TX_001"))
    assert tx == (hl7_dir / "examples_TX_001_TX_OML_O21.hl7").read_bytes()
    types = set(zip(good.column("message_type").to_pylist(), good.column("trigger_event").to_pylist()))
    assert {("ORU", "R01"), ("OML", "O21"), ("ORM", "O01"), ("ADT", "A01"), ("ACK", None)} == types


def test_header_columns_and_segment_paths(hl7_dir):
    path = hl7_dir / "examples_Other_001_ADT_A01.hl7"
    t, rej = read_drop(path.read_bytes(), origin=path.name)
    assert rej.num_rows == 0
    row = t.to_pylist()[0]
    assert (row["message_control_id"], row["message_type"], row["trigger_event"], row["version"]) == (
        "MSG00001", "ADT", "A01", "2.8")
    assert (row["sending_application"], row["sending_facility"]) == ("ADT1", "GOOD HEALTH HOSPITAL")
    assert row["sent_at"] == datetime(1988, 8, 18, 11, 26, tzinfo=timezone.utc)  # no offset: read as UTC
    seg = row["segments"]
    assert seg["PID"][0]["f5"][0]["c1"] == "DOGCOW" and seg["PID"][0]["f5"][0]["c2"] == "CLARUS"
    assert [r["c1"] for r in seg["PID"][0]["f3"]] == ["PATID1234", "123456789"]  # PID-3 repeats
    assert seg["MSH"][0]["f9"][0] ["c3"] == "ADT_A01"
    assert seg["MSH"][0]["f1"][0]["c1"] == "|" and seg["MSH"][0]["f2"][0]["c1"] == "^~\\&"
    assert row["segment_ids"] == ["MSH", "EVN", "PID", "NK1", "PV1"]
    assert row["raw"] == path.read_text()


def test_timezone_offsets_are_honoured(hl7_dir):
    path = hl7_dir / "examples_Test_Results_002_AL_ORU_R01_NBS_Fully_Populated_3_hl7_translation_final.hl7"
    t, _ = read_drop(path.read_bytes(), origin=path.name)
    assert t.column("sent_at")[0].as_py() == datetime(2023, 6, 7, 0, 28, 49, tzinfo=timezone.utc)  # 19:28:49-0500


def test_latin1_message_and_a_bad_timestamp_are_kept_with_issues():
    text = "MSH|^~\\&|A|Kéln|||2023-13-99||ADT^A01|9|P|2.5\rPID|1||7||M\\E\\ller^J\\T\\K"
    t, rej = read_drop(text.encode("latin-1"), origin="x")
    assert rej.num_rows == 0
    row = t.to_pylist()[0]
    assert row["encoding"] == "latin-1" and row["sending_facility"] == "Kéln"
    assert row["sent_at"] is None and "MSH-7 '2023-13-99'" in row["issues"][0]
    assert row["segments"]["PID"][0]["f5"][0] == {"c1": "M\\ller", "c2": "J&K"}


def test_many_messages_in_one_drop_keep_order_and_origins():
    text = "\n".join(f"MSH|^~\\&|A|F|||20230101||ADT^A0{i}|{i}|P|2.5\nPID|1||{i}" for i in range(1, 4))
    t, rej = read_drop(text.encode(), origin="drop.hl7")
    assert t.column("message_control_id").to_pylist() == ["1", "2", "3"]
    assert t.column("origin").to_pylist() == ["drop.hl7#1", "drop.hl7#2", "drop.hl7#3"]
