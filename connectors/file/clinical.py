"""HL7 v2 and FHIR files for `preview` / `run --input`, read by the HIS connector's own parsers."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from connectors.base.source import rejected


def read_clinical(path: Path, fmt: str) -> tuple[pa.Table, pa.Table]:
    """(records, rejected) of one HL7 file (one or many messages) or one FHIR file (resource, Bundle, NDJSON).

    A FHIR file with several resource types yields the type with the most records; the others are
    reported as rejected (a spec maps one stream), never dropped.
    """
    if fmt == "hl7":
        from connectors.his import read_hl7

        return read_hl7(path.read_bytes(), path.name)
    from connectors.his import read_fhir

    tables, rejects = read_fhir(path)
    if not tables:
        bad = [r for r in rejects.values() if r.num_rows]
        return pa.table({}), bad[0] if bad else rejected([])
    stream = max(tables, key=lambda s: tables[s].num_rows)
    others = [(f"{path.name}:{s}", f"{t.num_rows} {s} record(s) in the same file; map them with a spec for that stream", b"")
              for s, t in tables.items() if s != stream and t.num_rows]
    extra = rejected(others)
    own = rejects.get(stream)
    return tables[stream], pa.concat_tables([own, extra]) if own is not None else extra
