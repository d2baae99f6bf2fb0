from __future__ import annotations

import json

from connectors.his.fhir_files import read_fhir_file


def test_bundle_and_single_resource_files(tmp_path, sample_resources):
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in sample_resources]}
    (tmp_path / "all.json").write_text(json.dumps(bundle))
    items, bad = read_fhir_file(tmp_path / "all.json")
    assert bad == [] and [r for _, r in items] == sample_resources
    assert items[2][0] == "all.json/entry[3]"


def test_ndjson_with_a_broken_line(tmp_path, sample_resources):
    lines = [json.dumps(r) for r in sample_resources[:2]] + ["{oops", json.dumps(sample_resources[2])]
    (tmp_path / "export.ndjson").write_text("\n".join(lines) + "\n")
    items, bad = read_fhir_file(tmp_path / "export.ndjson")
    assert [o for o, _ in items] == ["export.ndjson:1", "export.ndjson:2", "export.ndjson:4"]
    assert bad == [("export.ndjson:3", "not JSON at line 1, column 2: Expecting property name enclosed in double quotes",
                    b"{oops")]


def test_broken_json_file_names_the_position(tmp_path):
    (tmp_path / "x.json").write_text('{\n  "resourceType": "Patient",\n  "id": "p1",,\n}')
    items, [(pos, reason, raw)] = read_fhir_file(tmp_path / "x.json")
    assert items == [] and pos == "x.json" and reason.startswith("not JSON at line 3, column 14")
