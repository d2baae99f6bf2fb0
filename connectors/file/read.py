"""Read a sample or export file into Arrow: json (one object or an array), jsonl, csv, parquet.

A line or element that cannot be read is not dropped: it comes back in the
rejected table with its position and the reason (see connectors.base.source).
HL7 and FHIR files are read by the HIS connector's parsers.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "x.jsonl"
>>> _ = p.write_text('{"a": 1}\\n{"a": \\n{"a": 3}\\n')
>>> table, rejected = read_file(p)
>>> table.column("a").to_pylist(), rejected.column("position").to_pylist()
([1, 3], ['x.jsonl:2'])
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from connectors.base.source import rejected
from connectors.errors import ConfigError

FORMATS = ("json", "jsonl", "csv", "parquet", "hl7", "fhir")


def detect_format(path: Path) -> str:
    ext = path.suffix.lower().lstrip(".")
    if ext in ("ndjson", "jsonl"):
        return "jsonl"
    if ext in ("json", "csv", "parquet", "hl7"):
        if ext == "json" and _looks_fhir(path):
            return "fhir"
        return ext
    if ext in ("txt", "msg") and path.read_bytes()[:3] == b"MSH":
        return "hl7"
    raise ConfigError(f"cannot tell the format of {path.name}; use one of: {', '.join(FORMATS)}")


def _looks_fhir(path: Path) -> bool:
    head = path.read_bytes()[:4096]
    return b'"resourceType"' in head


def _rows_to_table(rows: list, where: list[str], name: str):
    """(table of the JSON objects, rejected tuples, the position of each row kept)."""
    good, kept, bad = [], [], []
    for pos, row in zip(where, rows):
        if isinstance(row, dict):
            good.append(row)
            kept.append(pos)
        else:
            bad.append((pos, f"expected a JSON object, got {type(row).__name__}", json.dumps(row).encode()))
    try:
        return pa.Table.from_pylist(good), bad, kept
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # Types differ between rows (schema drift inside one file): keep the rows that fit the
        # majority shape, reject the others with the reason.
        ok, ok_at = [], []
        for pos, row in zip(kept, good):
            try:
                pa.Table.from_pylist(ok + [row])
                ok.append(row)
                ok_at.append(pos)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
                bad.append((pos, f"type differs from earlier rows: {e}", json.dumps(row, default=str).encode()))
        return pa.Table.from_pylist(ok), bad, ok_at


def read_jsonl(path: Path) -> tuple[pa.Table, pa.Table, list[str] | None]:
    """(good rows, rejected lines, the line of each good row; None: every non-blank line is a row)."""
    try:
        return pajson.read_json(path), rejected([]), None
    except pa.ArrowInvalid:
        pass  # a bad line or mixed types: read line by line to find and keep what is good
    rows, where, bad = [], [], []
    with open(path, "rb") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
                where.append(f"{path.name}:{n}")
            except json.JSONDecodeError as err:
                bad.append((f"{path.name}:{n}", f"malformed JSON at line {n}, column {err.colno}: {err.msg}", line))
    table, more, kept = _rows_to_table(rows, where, path.name)
    return table, rejected(bad + more), kept


def read_json(path: Path) -> tuple[pa.Table, pa.Table, list[str]]:
    """(good rows, rejected elements, the position of each good row: ``name[i]``)."""
    raw = path.read_bytes()
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as err:
        return pa.table({}), rejected([(f"{path.name}:{err.lineno}:{err.colno}",
                                        f"malformed JSON at line {err.lineno}, column {err.colno}: {err.msg}", raw)]), []
    rows = doc if isinstance(doc, list) else [doc]
    table, bad, kept = _rows_to_table(rows, [f"{path.name}[{i}]" for i in range(len(rows))], path.name)
    return table, rejected(bad), kept


def read_file_at(path: str | Path, fmt: str | None = None) -> tuple[pa.Table, pa.Table, list[str] | None]:
    """:func:`read_file`, plus where each good row sits in the file (``x.jsonl:7``, ``x.json[3]``,
    ``x.csv row 2``), so a person is pointed at the input line and not at a row count; None for
    HL7 and FHIR, whose rows carry their own ``origin``.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.jsonl"
    >>> _ = p.write_text('{"a": 1}\\n{"a": \\n\\n{"a": 3}\\n')
    >>> read_file_at(p)[2]
    ['x.jsonl:1', 'x.jsonl:4']
    """
    path = Path(path)
    fmt = fmt or (detect_format(path) if path.is_file() else None)
    if fmt == "jsonl":
        table, bad, at = read_jsonl(path)
        if at is None:  # read in one go: the rows are the non-blank lines
            with open(path, "rb") as fh:
                at = [f"{path.name}:{n}" for n, line in enumerate(fh, 1) if line.strip()]
        return table, bad, at
    if fmt == "json":
        return read_json(path)
    table, bad = read_file(path, fmt)
    if fmt in ("csv", "parquet"):
        return table, bad, [f"{path.name} row {i}" for i in range(1, table.num_rows + 1)]
    return table, bad, None


def read_file(path: str | Path, fmt: str | None = None) -> tuple[pa.Table, pa.Table]:
    """(good rows, rejected inputs) from a file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no such input file: {path}")
    fmt = fmt or detect_format(path)
    if fmt in ("jsonl", "json"):
        table, bad, _ = read_jsonl(path) if fmt == "jsonl" else read_json(path)
        return table, bad
    if fmt == "csv":
        return pacsv.read_csv(path), rejected([])
    if fmt == "parquet":
        return pq.read_table(path), rejected([])
    if fmt in ("hl7", "fhir"):
        from connectors.file.clinical import read_clinical

        return read_clinical(path, fmt)
    raise ConfigError(f"unknown input format {fmt!r}; use one of: {', '.join(FORMATS)}")
