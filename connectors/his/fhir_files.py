"""FHIR JSON from files: a resource, a Bundle (any type), or NDJSON (one resource per line).

A file that is not JSON is rejected with its file, line and column.

>>> import json, tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "b.json").write_text(json.dumps({"resourceType": "Bundle", "type": "collection",
...                                            "entry": [{"resource": {"resourceType": "Patient", "id": "p"}}]}))
>>> _ = (d / "x.json").write_text('{"resourceType": "Patient",\\n "id": }')
>>> read_fhir_file(d / "b.json")
([('b.json/entry[1]', {'resourceType': 'Patient', 'id': 'p'})], [])
>>> read_fhir_file(d / "x.json")[1][0][:2]
('x.json', 'not JSON at line 2, column 8: Expecting value')
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from connectors.his.fhir_records import resources_in

Rejected = tuple[str, str, bytes]


def _json(text: str, origin: str) -> tuple[Any, Rejected | None]:
    try:
        return json.loads(text), None
    except json.JSONDecodeError as err:
        return None, (origin, f"not JSON at line {err.lineno}, column {err.colno}: {err.msg}", text.encode())


def read_fhir_file(path: Path, name: str | None = None) -> tuple[list[tuple[str, Any]], list[Rejected]]:
    """(origin, resource) pairs and rejected inputs from one file."""
    name = name or path.name
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        return [], [(name, f"not UTF-8 JSON: {err}", data)]
    if path.suffix == ".ndjson":
        docs, bad = [], []
        for no, line in enumerate(text.splitlines(), 1):
            if line.strip():
                doc, rej = _json(line, f"{name}:{no}")
                (bad.append(rej) if rej else docs.append((f"{name}:{no}", doc)))
        return [item for origin, doc in docs for item in resources_in(doc, origin)], bad
    doc, rej = _json(text, name)
    if rej:
        return [], [rej]
    return list(resources_in(doc, name)), []
