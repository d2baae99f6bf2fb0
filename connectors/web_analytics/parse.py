"""JSON lines → one Arrow table of raw events (pyarrow.json), bad lines → rejected rows.

Fast path: the whole buffer through ``pyarrow.json.read_json`` with the declared event
schema; fields not declared are inferred and kept where they appear (schema drift of
the evolve kind, docs/adr/0263). Only when that fails do we look line by line: a line
that is not JSON, or whose known fields changed type, is rejected with ``origin:line``
and the reason; the good lines go back through the fast path.

>>> good = b'{"messageId":"m1","type":"page","timestamp":"2026-11-01T08:00:00Z","receivedAt":"2026-11-01T08:00:01Z"}'
>>> t, bad = parse_jsonl(good + b"\\n{oops\\n" + good.replace(b"m1", b"m2") + b"\\n", "drop.jsonl")
>>> t.column("messageId").to_pylist(), bad.column("position").to_pylist()
(['m1', 'm2'], ['drop.jsonl:2'])
"""

from __future__ import annotations

import io
import json
from functools import lru_cache

import pyarrow as pa
import pyarrow.json as pj
from jsonschema import Draft202012Validator

from connectors.base.source import rejected
from connectors.singer import schema as schemas

EVENT_SCHEMA = "web_analytics.event"


@lru_cache(maxsize=1)
def raw_schema() -> pa.Schema:
    return schemas.arrow_schema(EVENT_SCHEMA)


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    return Draft202012Validator(schemas.load(EVENT_SCHEMA))


def _read(data: bytes) -> pa.Table:
    opts = pj.ParseOptions(explicit_schema=raw_schema(), unexpected_field_behavior="infer")
    return pj.read_json(io.BytesIO(data), read_options=pj.ReadOptions(block_size=1 << 24), parse_options=opts)


def _path(parts) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".") or "$"


def line_problem(line: bytes) -> str | None:
    """Why one line cannot be an event (None: it can)."""
    try:
        doc = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        col = f" (column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        return f"invalid JSON{col}: {getattr(exc, 'msg', exc)}"
    errs = sorted(_validator().iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    if errs:
        return "schema drift (changed type): " + "; ".join(f"{_path(e.absolute_path)}: {e.message}" for e in errs)
    return None


def _per_line(lines: list[tuple[int, bytes]], origin: str) -> tuple[pa.Table, list[tuple[str, str, bytes]]]:
    """The slow path: keep lines one at a time while they stay compatible with the ones kept."""
    acc, bad = None, []
    for n, line in lines:
        try:
            t = _read(line)
            acc = t if acc is None else pa.concat_tables([acc, t], promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            bad.append((f"{origin}:{n}", f"{origin}:{n}: schema drift (new field changed type): {exc}", line))
    return (acc if acc is not None else raw_schema().empty_table()), bad


def parse_jsonl(data: bytes, origin: str, first_line: int = 1) -> tuple[pa.Table, pa.Table]:
    """(events, rejected) from JSON-lines bytes; ``origin:line`` names each rejected line."""
    if not data.strip():
        return raw_schema().empty_table(), rejected([])
    try:
        return _read(data), rejected([])
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    good, bad = [], []
    for n, line in enumerate(data.splitlines(), start=first_line):
        if not line.strip():
            continue
        why = line_problem(line)
        if why is None:
            good.append((n, line))
        else:
            bad.append((f"{origin}:{n}", f"{origin}:{n}: {why}", line))
    try:
        table = _read(b"\n".join(line for _, line in good)) if good else raw_schema().empty_table()
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        table, more = _per_line(good, origin)
        bad += more
    return table, rejected(sorted(bad, key=lambda r: int(r[0].rsplit(":", 1)[1])))
