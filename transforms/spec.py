"""Load a mapping spec: YAML → JSON Schema → semantic checks → a normalised, hashed Spec.

Every problem is reported as ``file:line: message``; nothing here raises a traceback
at the user.

>>> from pathlib import Path
>>> spec = load_spec(Path("mappings/web_activity_to_lead.yaml"))
>>> spec.id, spec.targets[0]["entity"], len(spec.version_hash)
('web_activity_to_lead', 'lead', 16)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import jsonschema

from transforms.yaml_lines import Located, YamlError, load_with_lines

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_FILE = ROOT / "schemas" / "mapping.schema.json"


@dataclass(frozen=True)
class Issue:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class SpecInvalid(ValueError):
    """A spec that cannot be used; ``issues`` holds every problem found."""

    def __init__(self, issues: list[Issue]):
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


@dataclass
class Spec:
    id: str
    version: int
    source: dict
    subject: str | None
    when: str | None
    targets: list[dict]  # normalised: entity, key, write, when, fields {name: {...}}, variants
    raw: dict
    path: Path | None = None
    located: Located | None = field(default=None, repr=False)
    stateful: dict | None = None

    @property
    def normalized(self) -> str:
        """Canonical JSON of the spec's meaning (what the content hash covers)."""
        return json.dumps(self.raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    @property
    def version_hash(self) -> str:
        return hashlib.sha256(self.normalized.encode()).hexdigest()[:16]

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path else ROOT / "mappings"

    def line(self, path: tuple) -> int:
        return self.located.line(path) if self.located else 1

    def issue(self, path: tuple, message: str) -> Issue:
        return Issue(str(self.path) if self.path else "<spec>", self.line(path), message)


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    from referencing import Registry, Resource

    main = json.loads(SCHEMA_FILE.read_text())
    stateful = json.loads((SCHEMA_FILE.parent / "stateful.schema.json").read_text())
    registry = Registry().with_resources([(main["$id"], Resource.from_contents(main)),
                                          (stateful["$id"], Resource.from_contents(stateful))])
    return jsonschema.Draft202012Validator(main, registry=registry)


def _normalise_field(f) -> dict:
    return {"from": f} if isinstance(f, str) else dict(f)


def _length_message(err) -> str:
    """A too-long value is not echoed back (it may be kilobytes); other messages pass through."""
    if err.validator == "maxLength" and isinstance(err.instance, str):
        return f"is {len(err.instance)} characters long; the limit is {err.validator_value}"
    if err.validator == "minLength" and isinstance(err.instance, str):
        return "must not be empty"
    return err.message


def _schema_issues(doc: Located, file: str) -> list[Issue]:
    issues = []
    for err in sorted(_validator().iter_errors(doc.data), key=lambda e: list(map(str, e.absolute_path))):
        path = tuple(err.absolute_path)
        where = ".".join(str(p) for p in path) or "spec"
        message = err.message
        if err.validator == "oneOf" and not path:
            message = "give either `target` + `fields` (one target) or `targets` (several), not both"
        elif err.validator == "oneOf" and len(path) >= 2 and path[-2] == "fields":
            inner = [c for c in err.context if len(c.absolute_path) > len(path)]
            if inner:
                c = jsonschema.exceptions.best_match(inner)
                where = ".".join(str(p) for p in c.absolute_path)
                issues.append(Issue(file, doc.line(tuple(c.absolute_path)), f"{where}: {_length_message(c)}"))
                continue
            message = "a field needs exactly one of `from` (a path) or `expr` (an expression)"
            if isinstance(err.instance, dict):
                extra = sorted(set(err.instance) - {"from", "expr", "apply", "map", "default", "type", "format", "tz", "required"})
                if extra:
                    message = f"unknown key(s) {', '.join(extra)} in field; allowed: from, expr, apply, map, default, type, format, tz, required"
        elif err.validator in ("maxLength", "minLength"):
            message = _length_message(err)
        elif err.validator == "additionalProperties":
            message = message.replace("Additional properties are not allowed", "unknown key(s)")
        issues.append(Issue(file, doc.line(path), f"{where}: {message}"))
    return issues


def parse_spec(text: str, path: Path | None = None) -> Spec:
    """Parse and schema-check spec text (no semantic checks; see :func:`load_spec`)."""
    file = str(path) if path else "<spec>"
    try:
        doc = load_with_lines(text)
    except YamlError as err:
        raise SpecInvalid([Issue(file, err.line, str(err))]) from None
    issues = [Issue(file, line, f"duplicate key {'.'.join(map(str, p))!r}: each key may appear once") for p, line in doc.duplicates]
    if not isinstance(doc.data, dict):
        raise SpecInvalid(issues + [Issue(file, 1, "a spec must be a YAML mapping with `mapping`, `version`, `source`, ...")])
    issues += _schema_issues(doc, file)
    if issues:
        raise SpecInvalid(issues)
    raw = doc.data
    if "targets" in raw:
        targets = [dict(t) for t in raw["targets"]]
        prefix = [("targets", i) for i in range(len(targets))]
    else:
        targets = [dict(raw["target"], fields=raw["fields"], variants=raw.get("variants", []))]
        prefix = [()]
    for t, p in zip(targets, prefix):
        t.setdefault("write", "upsert")
        t.setdefault("variants", [])
        t["fields"] = {k: _normalise_field(v) for k, v in t["fields"].items()}
        t["_path"] = p
        for v in t["variants"]:
            v["fields"] = {k: _normalise_field(f) for k, f in v["fields"].items()}
    return Spec(
        id=raw["mapping"], version=raw["version"], source=raw["source"], subject=raw.get("subject"),
        when=raw.get("when"), targets=targets, raw=raw, path=path, located=doc, stateful=raw.get("stateful"),
    )


def load_spec(path: str | Path, *, check: bool = True) -> Spec:
    """Load a spec file; with ``check`` also run the semantic checks (compile-time)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SpecInvalid([Issue(str(path), 1, f"cannot read spec: {err}")]) from None
    spec = parse_spec(text, path)
    if check:
        from transforms.checks import check_spec

        issues = check_spec(spec)
        if issues:
            raise SpecInvalid(issues)
    return spec
