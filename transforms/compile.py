"""Compile a checked spec once into a plan; apply the plan to each Arrow batch.

>>> import pyarrow as pa
>>> from transforms.spec import load_spec
>>> plan = compile_spec(load_spec("mappings/web_activity_to_lead.yaml"), subject_key=b"k")
>>> t = pa.table({"submission_id": ["1", "2", "3"], "contact": [{"email": " A@X.COM "}, {"email": "b@x.com"}, {"email": "c@x.com"}],
...               "activity": [{"level": "A"}, {"level": "Z"}, {"level": None}], "engagement_score": [2.0, None, 1.0]})
>>> r = plan.apply(t, load_id="L1")
>>> r.counts["lead"]
{'read': 3, 'mapped': 1, 'quarantined': 1, 'filtered': 1}
>>> r.outputs[0].table.select(["external_id", "email", "priority"]).to_pylist()
[{'external_id': 'WEB-1', 'email': 'a@x.com', 'priority': 'high'}]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectors.base import reserved as R
from connectors.base.hashing import hmac_sha256_hex, sha256_hex
from connectors.base.identity import RECORD_ID_LENGTH
from transforms.checks import Scope, field_node
from transforms.evaluate import Env, Errors, Evaluator, type_mismatch
from transforms.expr import ast
from transforms.expr.parser import parse
from transforms.reference import load_reference, reference_file
from transforms.spec import Spec
from transforms.types import arrow_type

MAX_RULES = 63  # bits of the int64 `_wl_rules` column


@dataclass(frozen=True)
class Rule:
    index: int
    target: str
    field: str
    kind: str  # variant | default | case
    text: str


@dataclass
class FieldPlan:
    name: str
    node: ast.Node
    map_keys: pa.Array | None = None
    map_values: pa.Array | None = None
    default: object = None
    has_default: bool = False
    type: str | None = None
    format: str | None = None
    tz: str | None = None
    required: bool = False
    default_rule: int | None = None
    case_rules: list[int] = field(default_factory=list)
    default_values: pa.Array | None = None  # map values + the default, for the one-take fast path


@dataclass
class VariantPlan:
    name: str
    when: ast.Node
    fields: dict[str, FieldPlan]
    rule: int | None


@dataclass
class TargetPlan:
    entity: str
    key: list[str]
    write: str
    when: ast.Node | None
    fields: dict[str, FieldPlan]
    variants: list[VariantPlan]

    @property
    def roots(self) -> set[str]:
        """The top-level input columns this target reads."""
        cached = self.__dict__.get("_roots")
        if cached is None:
            nodes = [f.node for f in self.fields.values()] + [v.when for v in self.variants]
            nodes += [f.node for v in self.variants for f in v.fields.values()]
            cached = {n.parts[0] for node in nodes for n in ast.walk(node) if isinstance(n, ast.Path)}
            self.__dict__["_roots"] = cached
        return cached


@dataclass
class TargetOutput:
    entity: str
    key: list[str]
    write: str
    table: pa.Table


@dataclass
class MapResult:
    outputs: list[TargetOutput]
    quarantine: pa.Table
    filtered: pa.Table
    counts: dict[str, dict[str, int]]


QUARANTINE_SCHEMA = pa.schema([
    (R.RECORD_ID, pa.string()), ("row", pa.int64()), ("target", pa.string()), ("field", pa.string()),
    ("reason", pa.string()), ("code", pa.string()), ("rule", pa.string()), (R.SPEC_ID, pa.string()),
    (R.SPEC_VERSION, pa.string()),
])
# `reason` is for people and may quote the offending value (it stays in quarantine files, like landing);
# `code` never holds data and is what lineage records.
REASON_CODES = ("when", "cast", "map", "required", "division_by_zero", "type", "expr")


def reason_code(field: str, reason: str) -> str:
    """The data-free category of a quarantine reason.

    >>> reason_code("n", "cannot cast 'ann@x.com' to int"), reason_code("when", "x"), reason_code("p", "value 'Z' of field 'p' is not in its map (A) and no default is given")
    ('cast', 'when', 'map')
    """
    if field == "when" or field.startswith("variants."):
        return "when"
    if reason.startswith("cannot cast"):
        return "cast"
    if "is not in its map" in reason or "which a map cannot look up" in reason:
        return "map"
    if reason.startswith("required field"):
        return "required"
    if "division by zero" in reason:
        return "division_by_zero"
    if "values, not" in reason or "does not fit" in reason or "type" in reason.split(":")[0]:
        return "type"
    return "expr"
FILTERED_SCHEMA = pa.schema([(R.RECORD_ID, pa.string()), ("target", pa.string())])


class Plan:
    def __init__(self, spec: Spec, targets: list[TargetPlan], subject: ast.Node | None, when: ast.Node | None,
                 rules: list[Rule], env: Env):
        self.spec = spec
        self.targets = targets
        self.subject = subject
        self.when = when
        self.rules = rules
        self.env = env

    @property
    def derivation(self) -> dict[tuple[str, str], list[str]]:
        """Which source paths feed each target field (per-field lineage, from the spec itself)."""
        out = {}
        for t in self.targets:
            for name, f in t.fields.items():
                srcs = ast.paths(f.node)
                for v in t.variants:
                    if name in v.fields:
                        srcs += [p for p in ast.paths(v.fields[name].node) + ast.paths(v.when) if p not in srcs]
                out[(t.entity, name)] = srcs
        return out

    # ------------------------------------------------------------------ apply
    def apply(self, table: pa.Table, load_id: str | None = None, identity: bool = True) -> MapResult:
        """Map one batch. ``identity=False`` skips hashing the output record ids and subjects
        (``_wl_record_id`` / ``_wl_subject`` stay null) — for previews and to measure mapping alone."""
        table = table.combine_chunks() if any(c.num_chunks > 1 for c in table.columns) else table
        n = table.num_rows
        ids = table.column(R.RECORD_ID) if R.RECORD_ID in table.column_names else pa.nulls(n, pa.string())
        ids = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
        load_ids = table.column(R.LOAD_ID).combine_chunks() if R.LOAD_ID in table.column_names else pa.repeat(pa.scalar(load_id, pa.string()), n)
        spec_when_errors = Errors(n)
        base_ev = Evaluator(table, self.env, spec_when_errors)
        spec_when_errors.field = "when"
        spec_pass = self._truth(base_ev, self.when, n)
        subject = self._subject(table) if self.subject is not None and identity else pa.nulls(n, pa.string())
        outputs, quarantines, filtered, counts = [], [], [], {}
        for t in self.targets:
            out, q, f, c = self._apply_target(t, table, ids, load_ids, subject, spec_pass, spec_when_errors, identity)
            outputs.append(out)
            quarantines.append(q)
            filtered.append(f)
            counts[t.entity] = c
        return MapResult(outputs, pa.concat_tables(quarantines), pa.concat_tables(filtered), counts)

    def _truth(self, ev: Evaluator, node: ast.Node | None, n: int) -> np.ndarray:
        if node is None:
            return np.ones(n, dtype=bool)
        value = ev.array(node)
        if not (pa.types.is_boolean(value.type) or pa.types.is_null(value.type)):  # drift: not true/false data
            ev.errors.fail(np.ones(n, dtype=bool), f"the condition gives {value.type} values, not true/false")
            return np.zeros(n, dtype=bool)
        return pc.fill_null(value, False).to_numpy(zero_copy_only=False).astype(bool)

    def _subject(self, table: pa.Table) -> pa.Array:
        ev = Evaluator(table, self.env, Errors(table.num_rows))
        value = ev.text(ev.array(self.subject))
        return hmac_sha256_hex(pc.utf8_lower(pc.utf8_trim_whitespace(value)), self.env.subject_key)

    def _apply_target(self, t: TargetPlan, table, ids, load_ids, subject, spec_pass, spec_when_errors, identity=True):
        n = table.num_rows
        when_errors = Errors(n)
        when_errors.field = "when"
        passed = spec_pass & self._truth(Evaluator(table, self.env, when_errors), t.when, n)
        when_bad = spec_when_errors.bad_numpy() | when_errors.bad_numpy()
        live = passed & ~when_bad
        # filter first: the fields are computed only for the rows `when` lets through
        sel = None if live.all() else np.flatnonzero(live)
        if sel is None:
            sub = table
        else:  # copy only the columns this target reads (a table without columns would lose its row count)
            cols = [c for c in table.column_names if c in t.roots]
            sub = table.select(cols).take(pa.array(sel)) if cols else pa.table({"_wl_row": pa.array(sel)})
        m = sub.num_rows
        errors = Errors(m)
        columns, rules = self._columns(t, sub, errors)
        ok = ~errors.bad_numpy()
        n_mapped = int(ok.sum())
        out = pa.table(columns) if columns else pa.table({"_": pa.nulls(m)}).drop_columns(["_"])
        if n_mapped < m:
            out = out.filter(pa.array(ok))
        rows = None if sel is None and n_mapped == n else (np.arange(n) if sel is None else sel)[ok]
        out = self._stamp_outputs(t, out, ids, load_ids, subject, rules[ok] if n_mapped < m else rules, rows, identity)
        q = self._quarantine_table(t, ids, when_bad, spec_when_errors, when_errors, errors, sel)
        filt = ~passed & ~when_bad
        n_filt = int(filt.sum())
        f = pa.table({R.RECORD_ID: pc.filter(ids, pa.array(filt)) if n_filt else pa.array([], pa.string()),
                      "target": pa.repeat(pa.scalar(t.entity), n_filt)}, schema=FILTERED_SCHEMA)
        counts = {"read": n, "mapped": n_mapped, "quarantined": q.num_rows, "filtered": n_filt}
        return TargetOutput(t.entity, t.key, t.write, out), q, f, counts

    def _columns(self, t: TargetPlan, sub: pa.Table, errors: Errors) -> tuple[dict[str, pa.Array], np.ndarray]:
        """Every field of a target over the live rows, with variants and the rule bits that fired."""
        m = sub.num_rows
        ev = Evaluator(sub, self.env, errors)
        rules = np.zeros(m, dtype=np.int64)
        taken = np.zeros(m, dtype=bool)  # variants: the first whose condition holds owns the row
        segments = []
        for v in t.variants:
            errors.field = f"variants.{v.name}.when"
            seg = self._truth(ev, v.when, m) & ~taken
            taken |= seg
            segments.append(seg)
            if v.rule is not None:
                rules[seg] |= np.int64(1) << v.rule
        columns = {}
        for name, fp in t.fields.items():
            overrides = [(v, seg) for v, seg in zip(t.variants, segments) if name in v.fields]
            base_seg = ~np.logical_or.reduce([seg for _, seg in overrides]) if overrides else None
            value = self._field(fp, sub, errors, base_seg, rules)
            for v, seg in overrides:
                vvalue = self._field(v.fields[name], sub, errors, seg, rules)
                if vvalue.type != value.type:
                    if pa.types.is_null(value.type):
                        value = value.cast(vvalue.type)
                    else:
                        vvalue = vvalue.cast(value.type)
                value = pc.if_else(pa.array(seg), vvalue, value)
            columns[name] = value
        return columns, rules

    def _field(self, fp: FieldPlan, table: pa.Table, errors: Errors, segment: np.ndarray | None, rules: np.ndarray):
        """Value pipeline of one field: expression → map → type → default → required.

        Errors and fired rules count only inside ``segment`` (the rows this definition owns; None = all).
        """
        n = table.num_rows
        local = Errors(n)
        local.field = fp.name
        ev = Evaluator(table, self.env, local)
        try:
            value = ev.array(fp.node)
        except (pa.ArrowNotImplementedError, pa.ArrowTypeError) as err:  # the batch's types do not fit (drift)
            local.fail(np.ones(n, dtype=bool), type_mismatch(fp.name, [], err))
            value = pa.nulls(n)
        fired = []  # (row mask or None for all, bit)
        if fp.case_rules and isinstance(fp.node, ast.Case) and id(fp.node) in ev.case_conditions:
            taken = ev.branch_taken(fp.node)
            bits = np.array([np.int64(1) << b for b in fp.case_rules], dtype=np.int64)
            contrib = bits[np.minimum(taken, len(bits) - 1)]
            rules |= contrib if segment is None else np.where(segment, contrib, 0)
        if fp.map_keys is not None:
            value = self._map(fp, value, local, ev)
            if local.default_used is not None:
                fired.append((local.default_used, fp.default_rule))
        if fp.type:
            value = ev.cast(value, fp.type, fp.format, fp.tz)
        if fp.has_default:
            nulls = pc.is_null(value)
            if pc.any(nulls).as_py():
                use = nulls.to_numpy(zero_copy_only=False) & ~local.bad_numpy()
                try:
                    dflt = pa.scalar(fp.default, None if pa.types.is_null(value.type) else value.type)
                except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):  # e.g. default 'x' for a column of numbers
                    local.fail(use, f"default {fp.default!r} does not fit the values of field {fp.name!r} ({value.type}); give it a `type`")
                else:
                    base = value.cast(dflt.type) if pa.types.is_null(value.type) else value
                    value = pc.if_else(pa.array(use), dflt, base)
                    if fp.default_rule is not None:
                        fired.append((use, fp.default_rule))
        if fp.required and value.null_count:
            local.fail(pc.is_null(value), f"required field {fp.name!r} is null")
        for m, bit in fired:
            sel = m if segment is None else (m & segment)
            rules[sel] |= np.int64(1) << bit
        if local.any():
            errors.field = fp.name
            bad = local.bad_numpy() if segment is None else (local.bad_numpy() & segment)
            errors.fail(bad, local.reasons())
        return value

    def _map(self, fp: FieldPlan, value: pa.Array, errors: Errors, ev: Evaluator) -> pa.Array:
        keys = fp.map_keys
        if value.type != keys.type:
            try:
                keys = keys.cast(value.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                try:
                    value = ev.text(value)
                except (pa.ArrowNotImplementedError, pa.ArrowTypeError):  # a list or struct: nothing to look up
                    errors.fail(pc.is_valid(value), f"field {fp.name!r} holds {value.type} values, which a map cannot look up")
                    return pa.nulls(len(value), fp.map_values.type)
                keys = keys.cast(pa.string())
        idx = pc.index_in(value, value_set=keys)
        if fp.has_default and fp.type is None and fp.default_values is not None:
            # map + default in one take: the default sits after the map's values (also for null input)
            k = len(fp.map_values)
            filled = pc.fill_null(idx, k)
            if fp.default_rule is not None:
                fp_used = pc.equal(filled, k).to_numpy(zero_copy_only=False)
                errors.default_used = fp_used
            return pc.take(fp.default_values, filled)
        out = pc.take(fp.map_values, idx)
        unmatched = pc.and_(pc.is_valid(value), pc.is_null(idx))
        if not fp.has_default and pc.any(unmatched).as_py():
            bad_vals = pc.filter(value, unmatched).to_pylist()
            where = np.flatnonzero(unmatched.to_numpy(zero_copy_only=False))
            allowed = ", ".join(map(str, fp.map_keys.to_pylist()))
            errors.fail(unmatched, {i: f"value {v!r} of field {fp.name!r} is not in its map ({allowed}) and no default is given"
                                    for i, v in zip(where.tolist(), bad_vals)})
        return out

    def _stamp_outputs(self, t: TargetPlan, out: pa.Table, ids, load_ids, subject, rules: np.ndarray,
                       rows: np.ndarray | None, identity=True) -> pa.Table:
        """Add the reserved columns; ``rows`` are the input rows the outputs came from (None: all, in order)."""
        m = out.num_rows
        if m and identity:
            key_cols = [ev_text(out.column(k)) for k in t.key]
            key_text = key_cols[0] if len(key_cols) == 1 else pc.binary_join_element_wise(*key_cols, "\x1f")
            # sha256("crm" US entity US key US "") — the constant parts hashed once as a prefix
            out_ids = sha256_hex([key_text, pa.nulls(m, pa.string())], length=RECORD_ID_LENGTH,
                                 prefix=f"crm\x1f{t.entity}\x1f")
        else:
            out_ids = pa.nulls(m, pa.string())
        pick = (lambda a: a) if rows is None else (lambda a: pc.take(a, pa.array(rows, pa.int64())))
        extra = {
            R.RECORD_ID: out_ids,
            R.INPUT_RECORD_ID: pick(ids),
            R.SPEC_ID: pa.repeat(pa.scalar(self.spec.id), m),
            R.SPEC_VERSION: pa.repeat(pa.scalar(self.spec.version_hash), m),
            R.RULES: pa.array(rules),
            R.SUBJECT: pick(subject),
            R.LOAD_ID: pick(load_ids),
        }
        for k, v in extra.items():
            out = out.append_column(k, v.cast(pa.string()) if pa.types.is_null(v.type) else v)
        return out

    def _quarantine_table(self, t: TargetPlan, ids, when_bad: np.ndarray, spec_when: Errors, target_when: Errors,
                          errors: Errors, sel: np.ndarray | None) -> pa.Table:
        """One row per quarantined input row (its index in the batch), with the first reason found."""
        found: dict[int, tuple[str, str]] = {}
        for i in np.flatnonzero(when_bad).tolist():
            found[i] = ("when", spec_when.reasons().get(i) or target_when.reasons().get(i, ""))
        reasons, fields = errors.reasons(), errors.fields()
        for j in np.flatnonzero(errors.bad_numpy()).tolist():
            found[j if sel is None else int(sel[j])] = (fields.get(j, ""), reasons.get(j, ""))
        rows = sorted(found)
        fs = [found[i][0] for i in rows]
        rs = [found[i][1] for i in rows]
        k = len(rows)
        return pa.table({
            R.RECORD_ID: pc.take(ids, pa.array(rows, pa.int64())), "row": pa.array(rows, pa.int64()),
            "target": pa.repeat(pa.scalar(t.entity), k), "field": pa.array(fs, pa.string()),
            "reason": pa.array(rs, pa.string()), "code": pa.array([reason_code(f, r) for f, r in zip(fs, rs)], pa.string()),
            "rule": pa.array([f"{t.entity}.{f}" for f in fs], pa.string()),
            R.SPEC_ID: pa.repeat(pa.scalar(self.spec.id), k), R.SPEC_VERSION: pa.repeat(pa.scalar(self.spec.version_hash), k),
        }, schema=QUARANTINE_SCHEMA)


def ev_text(col) -> pa.Array:
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_string(col.type):
        return pc.fill_null(col, "")
    return pc.fill_null(pc.cast(col, pa.string()), "")


# ---------------------------------------------------------------------- compile
class _RuleBook:
    def __init__(self):
        self.rules: list[Rule] = []

    def add(self, target: str, fld: str, kind: str, text: str) -> int | None:
        if len(self.rules) >= MAX_RULES:
            return None
        self.rules.append(Rule(len(self.rules), target, fld, kind, text))
        return len(self.rules) - 1


def default_value(default, type_: str):
    """A field's default as a value of its cast type (cast like data is); None when it cannot be.

    >>> default_value(2, "decimal(5,1)"), default_value("2026-01-01", "date"), default_value("x", "int")
    (Decimal('2.0'), datetime.date(2026, 1, 1), None)
    """
    from transforms.casts import safe_cast

    try:
        arr = pa.array([default])
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    out, bad = safe_cast(arr, type_)
    return None if bad[0].as_py() else out[0].as_py()


def _compile_field(name: str, f: dict, entity: str, scope: Scope, book: _RuleBook) -> FieldPlan:
    node = field_node(f, scope)
    fp = FieldPlan(name=name, node=node, type=f.get("type"), format=f.get("format"), tz=f.get("tz"),
                   required=bool(f.get("required")))
    if "map" in f:
        items = list(f["map"].items())
        keys = [k for k, _ in items]
        try:
            fp.map_keys = pa.array(keys)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            fp.map_keys = pa.array([str(k) for k in keys])
        values = [v for _, v in items]
        fp.map_values = pa.array(values) if fp.type is None else pa.array([None if v is None else str(v) for v in values]) \
            if not all(isinstance(v, (int, float)) or v is None for v in values) else pa.array(values)
    if "default" in f:
        fp.has_default = True
        fp.default = f["default"]
        if fp.type and f["default"] is not None:
            converted = default_value(f["default"], fp.type)
            if converted is None:
                scope.report(f"default {f['default']!r} cannot be cast to {fp.type}", scope.at + ("default",))
            fp.default = converted
        fp.default_rule = book.add(entity, name, "default", f"{name}: default {f['default']!r} applied")
        if fp.map_values is not None and fp.type is None and f["default"] is not None:
            try:
                fp.default_values = pa.concat_arrays([fp.map_values, pa.array([f["default"]], fp.map_values.type)])
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                fp.default_values = None
    if isinstance(node, ast.Case):
        for i in range(len(node.branches)):
            fp.case_rules.append(book.add(entity, name, "case", f"{name}: CASE branch {i + 1}"))
        fp.case_rules.append(book.add(entity, name, "case", f"{name}: CASE else"))
        fp.case_rules = [r for r in fp.case_rules if r is not None]
    return fp


def compile_spec(spec: Spec, subject_key: bytes = b"") -> Plan:
    """Compile once; the returned plan is applied to each batch (see :meth:`Plan.apply`)."""
    scope = Scope(spec, None, [])
    book = _RuleBook()
    env = Env(subject_key=subject_key)
    targets = []
    for t in spec.targets:
        base = t["_path"]
        fields = {}
        for name, f in t["fields"].items():
            scope.at = (base + ("fields", name)) if base else ("fields", name)
            fields[name] = _compile_field(name, f, t["entity"], scope, book)
        variants = []
        for i, v in enumerate(t["variants"]):
            vfields = {}
            for name, f in v["fields"].items():
                scope.at = (base if base else ()) + ("variants", i, "fields", name)
                vfields[name] = _compile_field(name, f, t["entity"], scope, book)
            rule = book.add(t["entity"], "*", "variant", f"variant {v['name']}: {v['when']}")
            variants.append(VariantPlan(v["name"], parse(v["when"]), vfields, rule))
        targets.append(TargetPlan(t["entity"], list(t["key"]), t["write"], parse(t["when"]) if t.get("when") else None,
                                  fields, variants))
        for fp in list(fields.values()):
            if fp.name in t["key"]:
                fp.required = True
    if scope.issues:
        from transforms.spec import SpecInvalid

        raise SpecInvalid(scope.issues)
    _load_references(spec, targets, env)
    return Plan(spec, targets, parse(spec.subject) if spec.subject else None, parse(spec.when) if spec.when else None,
                book.rules, env)


def _load_references(spec: Spec, targets: list[TargetPlan], env: Env) -> None:
    nodes = [f.node for t in targets for f in t.fields.values()]
    nodes += [f.node for t in targets for v in t.variants for f in v.fields.values()]
    nodes += [v.when for t in targets for v in t.variants] + [t.when for t in targets if t.when is not None]
    nodes += [parse(x) for x in (spec.when, spec.subject) if x]
    for node in nodes:
        for n in ast.walk(node):
            if isinstance(n, ast.Call) and n.name == "lookup" and isinstance(n.args[0], ast.Literal):
                name = str(n.args[0].value)
                if name not in env.reference:
                    env.reference[name] = load_reference(reference_file(spec.base_dir, name))
