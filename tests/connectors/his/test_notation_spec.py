"""The example spec in docs/hl7-notation.md passes the spec checker and maps the real samples.

It exercises the record shape through the mapping engine (transforms/), so a change on either
side that breaks HL7 field addressing fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa

from connectors.base.identity import stamp
from connectors.his import hl7_path, read_hl7
from connectors.his.hl7_table import KEY, POSITION
from transforms import compile_spec, load_spec
from transforms.checks import check_spec

DOC = Path(__file__).resolve().parents[3] / "docs" / "hl7-notation.md"


def _spec(tmp_path) -> Path:
    text = re.search(r"```yaml\n(.*?)```", DOC.read_text(), re.S).group(1)
    path = tmp_path / "his_admission_to_contact.yaml"
    path.write_text(text)
    return path


def test_doc_example_spec_checks_and_maps_the_admissions(tmp_path, hl7_dir):
    spec = load_spec(_spec(tmp_path))
    assert check_spec(spec) == []
    tables = [read_hl7(f.read_bytes(), f.name)[0] for f in sorted(hl7_dir.glob("*.hl7"))]
    batch = stamp(pa.concat_tables([t for t in tables if t.num_rows], promote_options="permissive"),
                  system="his", stream="hl7_messages", key=list(KEY), position=POSITION, load_id="L")
    result = compile_spec(spec, subject_key=b"test-key").apply(batch)
    assert result.counts["contact"] == {"read": 125, "mapped": 2, "quarantined": 0, "filtered": 123}
    rows = {r["external_id"]: r for r in result.outputs[0].table.to_pylist()}
    assert set(rows) == {"HIS-PATID1234", "HIS-11102779"}  # the two ADT^A01 samples
    assert (rows["HIS-PATID1234"]["last_name"], rows["HIS-PATID1234"]["first_name"]) == ("DOGCOW", "CLARUS")
    assert rows["HIS-PATID1234"]["ward"] == "2000" and rows["HIS-11102779"]["ward"] is None
    # the paths in the doc are exactly what the notation helper produces
    assert spec.normalized.count(hl7_path("PID-5.1")) >= 1 and hl7_path("PV1-3") in spec.normalized


SUB_SPEC = """
mapping: his_patient_ids
version: 1
source: {connector: his, stream: hl7_messages}
target: {entity: patient_id, key: [id]}
fields:
  id:        {from: PID-3.1, required: true}
  authority: {from: PID-3.4}
  namespace: {from: PID-3.4.1}
  universal: {from: PID-3.4.2}
  id_type:   {from: PID-3.4.3}
"""


def test_sub_components_are_addressable_with_the_notation(tmp_path, hl7_dir):
    """PID-3.4 of the CA samples is ``&NPI`` (no namespace id, universal id NPI); a component without
    sub-components is its own first one; an escaped ``\\T\\`` stays a literal ``&`` inside one."""
    path = tmp_path / "his_patient_ids.yaml"
    path.write_text(SUB_SPEC)
    spec = load_spec(path)
    assert check_spec(spec) == []
    sample = (hl7_dir / "examples_CA_003_CA_ORU_R01_CDPH_produced_0_initial_message.hl7").read_bytes()
    made = (b"MSH|^~\\&|LAB|HOSP|||20260101120000||ADT^A01|X1|P|2.5\r"
            b"PID|1||A1^^^CITY HOSP^MR~B2^^^ST\\T\\LUKE&2.16.840&ISO^PI||DOE^JANE\r")
    tables = [read_hl7(sample, "ca.hl7")[0], read_hl7(made, "made.hl7")[0]]
    batch = stamp(pa.concat_tables(tables, promote_options="permissive"), system="his", stream="hl7_messages",
                  key=list(KEY), position=POSITION, load_id="L")
    out = compile_spec(spec, subject_key=b"k").apply(batch).outputs[0].table
    rows = {r["id"]: r for r in out.to_pylist()}
    ca = next(r for k, r in rows.items() if k != "A1")
    assert (ca["authority"], ca["namespace"], ca["universal"], ca["id_type"]) == ("&NPI", None, "NPI", None)
    assert (rows["A1"]["authority"], rows["A1"]["namespace"], rows["A1"]["universal"]) == ("CITY HOSP", "CITY HOSP", None)
    second = tables[1].column("segments")[0].as_py()["PID"][0]["f3"][1]
    assert second["c4s"] == ["ST&LUKE", "2.16.840", "ISO"]  # the second repetition, escapes decoded one by one
