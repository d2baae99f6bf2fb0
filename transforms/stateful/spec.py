"""Validate a ``stateful:`` section and turn it into frozen rule objects.

Shape errors come from ``schemas/stateful.schema.json``; meaning errors from here. Every
message names the path of the offending part, e.g. ``stateful.rules[1].rate.window``.

>>> s = parse_section({"key": "device_id", "time": "event_time",
...     "rules": [{"transition": {"field": "status", "from": "online", "to": "offline", "for": "120s"},
...                "emit": "open", "recover": {"to": "online", "emit": "close"}}]})
>>> s.rules[0].name, s.rules[0].hold_us, s.rules[0].recover_to
('transition', 120000000, 'online')
>>> try:
...     parse_section({"key": "device_id", "time": "event_time", "rules": [{"rate": {"window": "1h", "threshold": 3}}]})
... except StatefulSpecError as err:
...     print(err.issues, err.located)
["stateful.rules[0].rate: 'baseline' is a required property"] [(('stateful', 'rules', 0, 'rate'), "'baseline' is a required property")]
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import jsonschema

from connectors.errors import ConfigError
from transforms.stateful.durations import parse_duration, parse_percent
from transforms.stateful.where import Filter, compile_where

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "stateful.schema.json"
RULE_SCOPE = "rule"


class StatefulSpecError(ConfigError):
    """A ``stateful:`` section is invalid; ``issues`` holds every ``path: message``.

    ``located`` holds the same as ``(path, message)`` with ``path`` a tuple from the spec root,
    e.g. ``("stateful", "rules", 1, "rate", "window")``, so a caller can add ``file:line``.
    """

    def __init__(self, issues: list[str]):
        self.issues = issues
        self.located = [_split(i) for i in issues]
        super().__init__("; ".join(issues))


def _split(issue: str) -> tuple[tuple, str]:
    where, _, message = issue.partition(": ")
    parts: list[str | int] = []
    for piece in where.replace("]", "").split("."):
        name, *idx = piece.split("[")
        parts += [name, *(int(i) for i in idx)]
    return tuple(parts), message


@dataclass(frozen=True)
class TransitionRule:
    index: int
    name: str
    field: str
    from_status: str | None
    to_status: str
    hold_us: int  # "for": the new status must last at least this long
    recover_to: str | None
    recover_emit: Literal["close", "annotate"] | None
    kind: Literal["transition"] = "transition"


@dataclass(frozen=True)
class RateRule:
    index: int
    name: str
    where_text: str | None
    where: Filter | None
    window_us: int
    baseline_us: int
    threshold: float
    min_count: int
    kind: Literal["rate"] = "rate"


Rule = TransitionRule | RateRule


@dataclass(frozen=True)
class StatefulSection:
    key: str
    time: str
    lateness_us: int
    cooldown_us: int
    rules: tuple[Rule, ...]

    @property
    def status_fields(self) -> list[str]:
        return sorted({r.field for r in self.rules if r.kind == "transition"})

    @property
    def rates(self) -> list[RateRule]:
        return [r for r in self.rules if r.kind == "rate"]

    @property
    def transitions(self) -> list[TransitionRule]:
        return [r for r in self.rules if r.kind == "transition"]


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))


def _path(parts) -> str:
    out = "stateful"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


_DURATIONS = {"for", "window", "baseline", "lateness", "cooldown"}


def _message(err: jsonschema.ValidationError) -> str:
    last = err.absolute_path[-1] if err.absolute_path else None
    if last in _DURATIONS and err.validator in ("oneOf", "pattern", "type", "minimum"):
        return f"{err.instance!r} is not a duration like 90s, 30m, 1h30m, 2d (units ms, s, m, h, d)"
    if last == "threshold" and err.validator in ("oneOf", "pattern", "type", "exclusiveMinimum"):
        return f"{err.instance!r} is not a percentage like 300% (or a ratio above 0 like 3.0)"
    if err.validator == "oneOf" and isinstance(err.instance, dict) and "rules" in err.absolute_path:
        return "a rule needs exactly one of `transition` or `rate`"
    return err.message.replace("Additional properties are not allowed", "unknown key(s)")


def _schema_issues(section: Any) -> list[str]:
    issues = []
    for err in sorted(_validator().iter_errors(section), key=lambda e: list(map(str, e.absolute_path))):
        best = err if err.validator == "oneOf" and err.absolute_path and err.absolute_path[-1] in _DURATIONS \
            else jsonschema.exceptions.best_match([err])
        issues.append(f"{_path(best.absolute_path)}: {_message(best)}")
    return issues


def _default_names(rules: list[dict]) -> list[str]:
    kinds = ["transition" if "transition" in r else "rate" for r in rules]
    return [r.get("name") or (k if kinds.count(k) == 1 else f"{k}_{i}") for i, (r, k) in enumerate(zip(rules, kinds))]


def _transition(i: int, name: str, raw: dict, issues: list[str]) -> TransitionRule:
    t, rec = raw["transition"], raw.get("recover")
    here = f"stateful.rules[{i}]"
    if t.get("from") is not None and t["from"] == t["to"]:
        issues.append(f"{here}.transition: from and to are both {t['to']!r}; a transition needs two statuses")
    if rec and rec["to"] == t["to"]:
        issues.append(f"{here}.recover.to: {rec['to']!r} is the status the rule fires on; recovery needs another")
    return TransitionRule(i, name, t["field"], t.get("from"), t["to"], parse_duration(t.get("for", 0)),
                          rec["to"] if rec else None, rec.get("emit", "close") if rec else None)


def _rate(i: int, name: str, raw: dict, issues: list[str]) -> RateRule:
    r = raw["rate"]
    here = f"stateful.rules[{i}]"
    if "recover" in raw:
        issues.append(f"{here}.recover: a rate rule has no recovery; it ends when its cooldown passes")
    window, baseline = parse_duration(r["window"]), parse_duration(r["baseline"])
    if window <= 0:
        issues.append(f"{here}.rate.window: must be longer than 0s")
    if baseline < window:
        issues.append(f"{here}.rate.baseline: must be at least as long as the window ({r['window']})")
    where = None
    if r.get("where") is not None:
        try:
            where = compile_where(r["where"])
        except ValueError as err:
            issues.append(f"{here}.rate.where: {err}")
    return RateRule(i, name, r.get("where"), where, window, baseline, parse_percent(r["threshold"]),
                    int(r.get("min_count", 1)))


def parse_section(section: Any) -> StatefulSection:
    """Validate ``section``; raise :class:`StatefulSpecError` listing every issue."""
    issues = _schema_issues(section)
    if issues:
        raise StatefulSpecError(issues)
    key, time = section["key"], section["time"]
    dedup = section.get("dedup", [key, RULE_SCOPE])
    if sorted(dedup) != sorted([key, RULE_SCOPE]):
        issues.append(f"stateful.dedup: only [{key}, {RULE_SCOPE}] is supported (one incident scope per key "
                      f"and rule), not {dedup}")
    raws = section["rules"]
    names = _default_names(raws)
    for i, n in enumerate(names):
        if names.index(n) != i:
            issues.append(f"stateful.rules[{i}].name: {n!r} is used by rules[{names.index(n)}] too")
    rules = [(_transition if "transition" in raw else _rate)(i, names[i], raw, issues) for i, raw in enumerate(raws)]
    if key == time:
        issues.append("stateful.time: the time column cannot be the key column")
    if issues:
        raise StatefulSpecError(issues)
    return StatefulSection(key, time, parse_duration(section.get("lateness", 0)),
                           parse_duration(section.get("cooldown", 0)), tuple(rules))
