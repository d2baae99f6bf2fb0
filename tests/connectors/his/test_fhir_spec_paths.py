"""The MedicationRequest column paths reported to the lead pass the spec checker and map all samples."""

from __future__ import annotations

import pyarrow as pa

from connectors.base.identity import stamp
from connectors.his import read_fhir
from transforms import compile_spec, load_spec
from transforms.checks import check_spec

SPEC = """
mapping: prescription_paths_probe
version: 1
source: {connector: his, stream: fhir_medication_request}
target: {entity: interaction, key: [external_id], write: upsert}
subject: subject_reference
fields:
  external_id: {expr: "'FHIR-MR-' || id"}
  account_ref: {from: requester_reference}
  account_ref_nested: {from: "resource.requester.reference"}
  medication_code: {from: medication_code}
  medication_display: {from: medication_display}
  occurred_on: {from: authored_on}
  patient_ref: {from: subject_reference}
  status: {from: status}
"""


def test_prescription_paths(tmp_path, fhir_dir):
    path = tmp_path / "probe.yaml"
    path.write_text(SPEC)
    spec = load_spec(path)
    assert check_spec(spec) == []
    tables = [read_fhir(f)[0].get("fhir_medication_request") for f in sorted(fhir_dir.glob("*.json"))]
    batch = stamp(pa.concat_tables([t for t in tables if t is not None], promote_options="permissive"),
                  system="his", stream="fhir_medication_request", key=["id"], position="version", load_id="L")
    result = compile_spec(spec, subject_key=b"k").apply(batch)
    assert result.counts["interaction"] == {"read": 8, "mapped": 8, "quarantined": 0, "filtered": 0}
    rows = {r["external_id"]: r for r in result.outputs[0].table.to_pylist()}
    assert all(r["account_ref"] == r["account_ref_nested"] == "Practitioner/f007" for r in rows.values())
    assert rows["FHIR-MR-medrx0308"]["medication_display"] == "Vicodin 5/500 Oral Tablet"
    assert rows["FHIR-MR-medrx0304"]["medication_code"] and rows["FHIR-MR-medrx0301"]["status"] == "completed"
    assert {r["occurred_on"] for r in rows.values()} == {"2015-01-15"}
