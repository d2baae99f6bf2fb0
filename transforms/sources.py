"""Declared source schemas (schemas/sources/<connector>.<stream>.json) and path look-ups in them.

>>> s = SourceSchema({"type": "object", "properties": {"contact": {"type": "object",
...     "properties": {"emails": {"type": "array", "items": {"type": "string"}}}}}})
>>> s.type_of(("contact", "emails", 0)), s.type_of(("contact", "phone"))
('string', None)
"""

from __future__ import annotations

import json
from pathlib import Path

from transforms.types import of_json_schema

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas" / "sources"


class SourceSchema:
    def __init__(self, schema: dict):
        self.schema = schema

    def type_of(self, parts: tuple) -> str | None:
        """The static type at a path; ``None`` when the path is not declared."""
        node = self.schema
        for p in parts:
            if isinstance(p, int):
                if node.get("type") not in ("array", ["array", "null"]) and "items" not in node:
                    return None
                node = node.get("items", {})
            else:
                props = node.get("properties")
                if props is None or p not in props:
                    if node.get("additionalProperties") is True or (props is None and "type" not in node):
                        return "any"
                    return None
                node = props[p]
        return of_json_schema(node)


def find_source_schema(connector: str, stream: str, base: Path | None = None) -> SourceSchema | None:
    for d in ([base] if base else []) + [SCHEMA_DIR]:
        p = d / f"{connector}.{stream}.json"
        if p.exists():
            return SourceSchema(json.loads(p.read_text()))
    return None
