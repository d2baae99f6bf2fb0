"""Per-field derivation, read from a stored spec version's normalised text.

A spec's ``fields:`` entry names its input either as ``from: <path>`` or ``expr: <text>``;
for ``expr`` the inputs are the identifiers of the expression (string literals, keywords and
function names left out). This is the one place that parses that dependency.

>>> spec = json.dumps({"mapping": "m", "target": {"entity": "lead"}, "fields": {
...     "priority": {"from": "activity.level", "map": {"A": "high"}},
...     "external_id": {"expr": "'WEB-' || submission_id"},
...     "score": {"expr": "coalesce(engagement_score, 0) * 1.5"}}})
>>> field_derivation(spec, "lead", "priority")
{'field': 'priority', 'sources': ['activity.level'], 'rule': 'from activity.level; map'}
>>> field_derivation(spec, "lead", "score")["sources"]
['engagement_score']
>>> field_derivation(spec, "lead", "external_id")["rule"]
"expr 'WEB-' || submission_id"
>>> field_derivation(spec, "lead", "nope") is None
True
"""

from __future__ import annotations

import json
import re

_STRINGS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"\\\\]|\\\\.)*\"")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*(\s*\()?")
KEYWORDS = frozenset({"and", "or", "not", "is", "null", "true", "false", "in", "like", "case", "when", "then",
                      "else", "end", "between", "as", "if"})


def expr_identifiers(text: str) -> list[str]:
    """The input paths an expression reads (sorted, unique).

    >>> expr_identifiers("lower(trim(contact.email)) || 'x' || name")
    ['contact.email', 'name']
    """
    bare = _STRINGS.sub(" ", text)
    out = {m.group(0) for m in _IDENT.finditer(bare) if not m.group(1) and m.group(0).lower() not in KEYWORDS}
    return sorted(out)


def _targets(spec: dict) -> list[tuple[str | None, dict]]:
    if isinstance(spec.get("targets"), list):
        return [((t.get("target") or t).get("entity"), t.get("fields") or {}) for t in spec["targets"]]
    return [((spec.get("target") or {}).get("entity"), spec.get("fields") or {})]


def field_derivation(normalized: str, entity: str, field: str) -> dict | None:
    """``{"field", "sources", "rule"}`` for ``entity.field`` in this spec version, or None."""
    spec = json.loads(normalized)
    for ent, fields in _targets(spec):
        if ent not in (None, entity) or field not in fields:
            continue
        f = fields[field]
        f = f if isinstance(f, dict) else {"from": f}
        extras = [k for k in ("map", "default", "apply", "type") if k in f]
        if "from" in f:
            rule = f"from {f['from']}"
            sources = [f["from"]] if isinstance(f["from"], str) else list(f["from"])
        else:
            rule = f"expr {f.get('expr', '')}"
            sources = expr_identifiers(str(f.get("expr", "")))
        return {"field": field, "sources": sources, "rule": "; ".join([rule, *extras])}
    return None
