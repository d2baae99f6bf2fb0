"""Schema drift of an analysis document, checked against ``call_analytics.analysis.json``.

Policy (docs/adr/0261): a *changed type* of a known field quarantines the file with
the paths and types in the reason; a *new field* is kept — its dotted path goes to
``new_fields`` and its value to ``extra`` — and never stops the load.

>>> d = {"Channel": "VOICE", "Transcript": [{"Content": "hi", "Shout": 1}], "Mood": "x"}
>>> type_errors(d), new_fields(d)
([], {'Mood': 'x', 'Transcript[0].Shout': 1})
>>> type_errors({"Channel": "VOICE", "Transcript": [], "LanguageCode": 5})
['LanguageCode: 5 is not of type string']
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator

from connectors.singer import schema as schemas

SCHEMA = "call_analytics.analysis"


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    return Draft202012Validator(schemas.load(SCHEMA), format_checker=Draft202012Validator.FORMAT_CHECKER)


def _path(parts) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "$"


def type_errors(doc: Any) -> list[str]:
    """One message per field whose type (or required presence) differs from the known shape."""
    errs = sorted(_validator().iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    out = []
    for e in errs:
        what = f"is not of type {e.validator_value}" if e.validator == "type" else e.message
        out.append(f"{_path(e.absolute_path)}: {e.instance!r} {what}" if e.validator == "type" else f"{_path(e.absolute_path)}: {what}")
    return out


def _walk(node: Any, schema: dict, path: list, out: dict) -> None:
    if isinstance(node, dict) and "properties" in schema:
        props = schema["properties"]
        for k, v in node.items():
            if k in props:
                _walk(v, props[k], [*path, k], out)
            else:
                out[_path([*path, k])] = v
    elif isinstance(node, list) and isinstance(schema.get("items"), dict):
        for i, v in enumerate(node):
            _walk(v, schema["items"], [*path, i], out)


@lru_cache(maxsize=1)
def _known() -> dict:
    return schemas.load(SCHEMA)


def new_fields(doc: Any) -> dict[str, Any]:
    """Fields the known shape does not declare, by dotted path (with list indexes)."""
    out: dict[str, Any] = {}
    _walk(doc, _known(), [], out)
    return dict(sorted(out.items()))
