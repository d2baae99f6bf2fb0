"""Static checks of a spec, each reported as ``file:line: message``.

Checked before anything runs: expressions parse; functions exist and get the right
arguments; source paths exist in the source's declared schema; types fit; no rule is
unreachable; no target or field is written twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from transforms import types as T
from transforms.expr import ast
from transforms.expr.parser import ExprError, parse
from transforms.functions import REGISTRY
from transforms.reference import load_reference, reference_file
from transforms.sources import SourceSchema, find_source_schema
from transforms.spec import Issue, Spec


MAX_PAD = 1000  # lpad width: a larger literal would let one spec allocate width × rows bytes per batch


_HL7 = re.compile(r"^[A-Z][A-Z0-9]{2}(\[\d+\])?-\d+")


@dataclass
class Scope:
    spec: Spec
    schema: SourceSchema | None
    issues: list[Issue]
    at: tuple = ()

    def report(self, message: str, path: tuple | None = None) -> None:
        self.issues.append(self.spec.issue(self.at if path is None else path, message))


def parse_at(scope: Scope, text: str, path: tuple) -> ast.Node | None:
    try:
        return parse(text)
    except ExprError as err:
        where = f" (column {err.col})" if err.col else ""
        scope.report(f"cannot parse expression {text!r}{where}: {err.message}", path)
        return None


def infer(node: ast.Node, scope: Scope) -> str:
    """The static type of an expression; reports problems to ``scope``."""
    if isinstance(node, ast.Literal):
        v = node.value
        return "null" if v is None else "bool" if isinstance(v, bool) else "int" if isinstance(v, int) else (
            "float" if isinstance(v, float) else "string")
    if isinstance(node, ast.Path):
        if scope.schema is None:
            return "any"
        t = scope.schema.type_of(node.parts)
        if t is None:
            scope.report(f"unknown source field {node.text!r} (not in the declared schema of "
                         f"{scope.spec.source['connector']}.{scope.spec.source['stream']})")
            return "any"
        return t
    if isinstance(node, ast.Call):
        return _infer_call(node, scope)
    if isinstance(node, ast.BinOp):
        lt, rt = infer(node.left, scope), infer(node.right, scope)
        if node.op in ("and", "or"):
            for t in (lt, rt):
                if not T.compatible(t, "bool"):
                    scope.report(f"`{node.op}` needs true/false values, not {t}")
            return "bool"
        if node.op == "||":
            return "string"
        if node.op == "like":
            if not T.compatible(lt, "string"):
                scope.report(f"`like` needs text, not {lt}")
            return "bool"
        if node.op in ("=", "!=", "<", "<=", ">", ">="):
            if not T.compatible(lt, rt):
                scope.report(f"cannot compare {lt} with {rt} (`{node.op}`)")
            return "bool"
        for t in (lt, rt):
            if not T.compatible(t, "float") or T.base(t) == "bool":
                scope.report(f"arithmetic `{node.op}` needs numbers, not {t}")
        if node.op == "/":
            return "float"
        return "float" if "float" in (lt, rt) else ("int" if lt == rt == "int" else "any" if "any" in (lt, rt) else lt)
    if isinstance(node, ast.UnaryOp):
        t = infer(node.operand, scope)
        if node.op == "not":
            if not T.compatible(t, "bool"):
                scope.report(f"`not` needs a true/false value, not {t}")
            return "bool"
        if node.op == "neg":
            if not T.compatible(t, "float"):
                scope.report(f"cannot negate {t}")
            return t
        return "bool"
    if isinstance(node, ast.InList):
        t = infer(node.operand, scope)
        for item in node.items:
            if not isinstance(item, ast.Literal):
                scope.report("the items of `in (...)` must be literal values")
            elif not T.compatible(t, infer(item, scope)):
                scope.report(f"`in` list item {item.value!r} does not match {t}")
        return "bool"
    if isinstance(node, ast.Case):
        _unreachable_branches(node, scope)
        out = "null"
        for cond, value in node.branches:
            ct = infer(cond, scope)
            if not T.compatible(ct, "bool"):
                scope.report(f"a `when` condition must be true/false, not {ct}")
            out = _join(out, infer(value, scope), scope)
        if node.default is not None:
            out = _join(out, infer(node.default, scope), scope)
        return out
    return "any"  # pragma: no cover


def _join(a: str, b: str, scope: Scope) -> str:
    if a in ("null", "any"):
        return b if a == "null" else a
    if b in ("null", "any"):
        return a
    if not T.compatible(a, b):
        scope.report(f"the branches give different types: {a} and {b}")
        return "any"
    return "float" if "float" in (a, b) else a


def _unreachable_branches(node: ast.Case, scope: Scope) -> None:
    seen = set()
    for i, (cond, _) in enumerate(node.branches):
        key = repr(cond)
        if key in seen:
            scope.report(f"unreachable rule: CASE branch {i + 1} repeats an earlier condition")
        seen.add(key)
        if isinstance(cond, ast.Literal) and cond.value is True and (i + 1 < len(node.branches) or node.default is not None):
            scope.report(f"unreachable rule: CASE branch {i + 1} is always true, so what follows it never applies")
        if isinstance(cond, ast.Literal) and cond.value in (False, None):
            scope.report(f"unreachable rule: CASE branch {i + 1} can never apply (its condition is {cond.value})")


def _infer_call(node: ast.Call, scope: Scope) -> str:
    fn = REGISTRY.get(node.name)
    if fn is None:
        near = sorted(n for n in REGISTRY if n[:2] == node.name[:2])
        hint = f"; did you mean {', '.join(near[:3])}?" if near else "; see docs/functions.md"
        scope.report(f"unknown function {node.name!r}{hint}")
        return "any"
    required = sum(1 for p in fn.params if not p.optional)
    n = len(node.args)
    if n < required or (n > len(fn.params) and not fn.variadic):
        scope.report(f"{fn.name} takes {required}{'' if fn.variadic else f'..{len(fn.params)}'} argument(s), got {n}: {fn.signature}")
        return "any"  # (a result type from the wrong number of arguments would be a guess, or an IndexError)
    arg_types = []
    for i, a in enumerate(node.args):
        p = fn.params[min(i, len(fn.params) - 1)]
        if p.literal and isinstance(a, ast.Literal) and a.value is None:
            scope.report(f"argument {p.name!r} of {fn.name} must be a value, not null")
            arg_types.append("any")
            continue
        if p.literal and not isinstance(a, ast.Literal):
            scope.report(f"argument {p.name!r} of {fn.name} must be a literal value (a pattern, format, unit or name), not an expression")
            arg_types.append("any")
            continue
        t = infer(a, scope)
        if p.type != "any" and not T.compatible(t, p.type) and not (p.type == "timestamp" and t == "date"):
            scope.report(f"argument {p.name!r} of {fn.name} must be {p.type}, not {t}")
        arg_types.append(t)
    if fn.name == "lookup" and n == 3:
        _check_lookup(node, scope)
    if fn.name in ("regex_extract", "regex_replace", "regex_match") and n >= 2:
        _check_regex(node.args[1].value if isinstance(node.args[1], ast.Literal) else None, scope)
    _check_literal_args(node, scope)
    return fn.result_type(arg_types)


def _literal(node: ast.Call, i: int):
    a = node.args[i] if i < len(node.args) else None
    return a.value if isinstance(a, ast.Literal) else None


def _check_literal_args(node: ast.Call, scope: Scope) -> None:
    """Literal arguments that would hang or blow up a kernel (Arrow's replace_substring with an
    empty pattern never returns; a huge pad or an empty-matching regex multiplies every row)."""
    name = node.name
    if name in ("replace", "split", "split_part") and _literal(node, 1) == "":
        scope.report(f"{name}: the {'text to replace' if name == 'replace' else 'separator'} must not be empty")
    if name == "lpad":
        width, fill = _literal(node, 1), _literal(node, 2)
        if isinstance(width, int) and not 0 <= width <= MAX_PAD:
            scope.report(f"lpad width {width} is outside 0..{MAX_PAD} (each row would allocate that much)")
        if isinstance(fill, str) and len(fill) != 1:
            scope.report(f"lpad fill must be one character, not {fill!r}")
    units = {"date_trunc": ("year", "quarter", "month", "week", "day", "hour", "minute", "second"),
             "date_diff": ("year", "month", "week", "day", "hour", "minute", "second")}.get(name)
    if units and isinstance(_literal(node, 0), str) and _literal(node, 0) not in units:
        scope.report(f"{name}: unknown unit {_literal(node, 0)!r}; one of {', '.join(units)}")
    if name == "to_timestamp" and isinstance(_literal(node, 2), str):
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(_literal(node, 2))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            scope.report(f"to_timestamp: unknown time zone {_literal(node, 2)!r}")
    if name == "regex_replace" and isinstance(_literal(node, 1), str):
        import pyarrow as pa
        import pyarrow.compute as pc

        try:
            probe = pc.replace_substring_regex(pa.array(["ab"]), pattern=_literal(node, 1), replacement="\x00")[0].as_py()
        except pa.ArrowInvalid:
            return  # reported as an invalid regular expression
        if probe.count("\x00") > 2:
            scope.report(f"regex_replace: pattern {_literal(node, 1)!r} matches empty text between characters, "
                         "so the replacement would be inserted everywhere; make it match at least one character")


def _check_regex(pattern, scope: Scope) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    if not isinstance(pattern, str):
        return
    try:
        pc.match_substring_regex(pa.array([""]), pattern=pattern)
    except pa.ArrowInvalid as err:
        scope.report(f"invalid regular expression {pattern!r}: {err}")


def _check_lookup(node: ast.Call, scope: Scope) -> None:
    table, column = node.args[0], node.args[2]
    if not isinstance(table, ast.Literal) or not isinstance(column, ast.Literal):
        return
    path = reference_file(scope.spec.base_dir, str(table.value))
    if path is None:
        scope.report(f"unknown reference table {table.value!r}: expected {scope.spec.base_dir}/reference/{table.value}.csv or .parquet")
        return
    names = load_reference(path).column_names
    if column.value not in names:
        scope.report(f"reference table {table.value!r} has no column {column.value!r} (columns: {', '.join(names)})")


def field_node(f: dict, scope: Scope) -> ast.Node | None:
    """The expression a field computes before map/type/default: `from` or `expr`, then `apply`."""
    if "from" in f:
        text = f["from"]
        hl7 = scope.spec.source.get("connector") == "his" and _HL7.match(text)
        if hl7:
            from connectors.his.notation import hl7_path

            try:  # HL7 field notation (PID-5.1, OBX[2]-5, PID-3[2].1, PID-3.4.2) names a path into the message
                text = hl7_path(text)  # (sub-component 1: an expression over two paths)
            except ValueError as err:
                scope.report(str(err), scope.at + ("from",))
                return None
        node = parse_at(scope, text, scope.at + ("from",))
        if node is not None and not hl7 and not isinstance(node, ast.Path):
            scope.report(f"`from` takes a path like contact.email, not an expression; use `expr` for {f['from']!r}")
            return None
    else:
        node = parse_at(scope, f["expr"], scope.at + ("expr",))
    if node is None:
        return None
    for i, item in enumerate(f.get("apply", [])):
        if isinstance(item, str):
            name, args = item, []
        else:
            (name, args), = item.items()
            args = args if isinstance(args, list) else [args]
        node = ast.Call(name, (node,) + tuple(ast.Literal(a) for a in args), 0)
    return node


def _check_field(name: str, f: dict, scope: Scope) -> str:
    node = field_node(f, scope)
    t = infer(node, scope) if node is not None else "any"
    if "map" in f:
        values = list(f["map"].values())
        vtypes = {T.base(infer(ast.Literal(v), scope)) for v in values if v is not None}
        if len(vtypes) > 1 and not vtypes <= {"int", "float"}:
            scope.report(f"map of field {name!r} gives values of different types: {', '.join(sorted(vtypes))}", scope.at + ("map",))
        t = vtypes.pop() if len(vtypes) == 1 else "any"
    if "type" in f:
        if not T.is_cast_target(f["type"]):
            scope.report(f"unknown type {f['type']!r}; one of {', '.join(T.CAST_TARGETS)}", scope.at + ("type",))
        t = f["type"]
    for opt in ("format", "tz"):
        if opt in f and T.base(f.get("type", "")) not in ("date", "timestamp"):
            scope.report(f"`{opt}` applies only with type date or timestamp", scope.at + (opt,))
    if "tz" in f:
        try:
            import zoneinfo

            zoneinfo.ZoneInfo(f["tz"])
        except Exception:
            scope.report(f"unknown time zone {f['tz']!r}", scope.at + ("tz",))
    if "default" in f and f["default"] is not None and "type" in f and T.is_cast_target(f["type"]):
        from transforms.compile import default_value

        if default_value(f["default"], f["type"]) is None:
            scope.report(f"default {f['default']!r} cannot be cast to {f['type']}", scope.at + ("default",))
            return t
    if "default" in f and f["default"] is not None and t not in ("any",):
        dt = infer(ast.Literal(f["default"]), scope)
        if not T.compatible(dt, t) and not T.base(t) in ("date", "timestamp", "decimal", "string"):
            scope.report(f"default {f['default']!r} does not fit the field's type {t}", scope.at + ("default",))
    return t


def check_spec(spec: Spec) -> list[Issue]:
    schema = None if spec.stateful else find_source_schema(spec.source["connector"], spec.source["stream"])
    scope = Scope(spec, schema, [])
    if spec.stateful:
        from transforms.stateful import check_stateful

        for path, message in check_stateful(spec.stateful):
            scope.report(message, tuple(path))
    if spec.when:
        scope.at = ("when",)
        node = parse_at(scope, spec.when, ("when",))
        if node is not None and not T.compatible(infer(node, scope), "bool"):
            scope.report("`when` must be a true/false condition", ("when",))
    if spec.subject:
        scope.at = ("subject",)
        parse_at(scope, spec.subject, ("subject",)) and infer(parse(spec.subject), scope)
    entities: dict[str, tuple] = {}
    for t in spec.targets:
        base = t["_path"]
        if t["entity"] in entities:
            scope.report(f"duplicate target: entity {t['entity']!r} is already written by this spec", base + ("entity",) if base else ("target", "entity"))
        entities[t["entity"]] = base
        fields_path = base + ("fields",) if base else ("fields",)
        for k in t["key"]:
            if k not in t["fields"]:
                scope.report(f"key field {k!r} is not one of the target's fields", (base + ("key",)) if base else ("target", "key"))
        if t.get("when"):
            scope.at = base + ("when",)
            node = parse_at(scope, t["when"], scope.at)
            if node is not None:
                infer(node, scope)
        for name, f in t["fields"].items():
            scope.at = fields_path + (name,)
            _check_field(name, f, scope)
        _check_variants(t, base, scope)
    return scope.issues


def _check_variants(t: dict, base: tuple, scope: Scope) -> None:
    seen: dict[str, int] = {}
    vpath = base + ("variants",) if base else ("variants",)
    always = None
    for i, v in enumerate(t["variants"]):
        scope.at = vpath + (i, "when")
        node = parse_at(scope, v["when"], scope.at)
        if node is not None:
            ct = infer(node, scope)
            if not T.compatible(ct, "bool"):
                scope.report(f"variant {v['name']!r}: `when` must be a true/false condition, not {ct}")
            key = repr(node)
            if always is not None:
                scope.report(f"unreachable rule: variant {v['name']!r} follows {always!r}, whose condition is always true")
            elif key in seen:
                scope.report(f"unreachable rule: variant {v['name']!r} has the same condition as an earlier variant")
            if isinstance(node, ast.Literal) and node.value in (False, None):
                scope.report(f"unreachable rule: variant {v['name']!r} can never apply (its condition is {node.value})")
            if isinstance(node, ast.Literal) and node.value is True:
                always = v["name"]
            seen[key] = i
        for name, f in v["fields"].items():
            scope.at = vpath + (i, "fields", name)
            if name not in t["fields"]:
                scope.report(f"variant {v['name']!r} sets field {name!r}, which the target does not have")
            _check_field(name, f, scope)
