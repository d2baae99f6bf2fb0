"""Run the test cases kept beside a spec (``<name>.test.yaml``).

A case gives input rows and what must come out: rows per target entity (only the
columns listed are compared, in order), quarantined rows (row index, field, and a
part of the reason), and how many rows ``when`` filtered::

    cases:
      - name: level A becomes high priority
        input: [{submission_id: "1", contact: {email: a@x.com}, activity: {level: A}}]
        expect:
          lead: [{external_id: WEB-1, priority: high}]
      - name: an unknown level is quarantined
        input: [{submission_id: "2", contact: {email: b@x.com}, activity: {level: Z}}]
        expect_quarantine: [{row: 0, field: priority, reason: "not in its map"}]
        expect_filtered: 0

``input_file: samples/…`` instead of ``input`` runs the case on a real sample file beside the specs
(inputs the file reader rejects must be announced with ``expect_rejected: N``).
Stateful specs (with a ``stateful:`` section) take input *events*; the stateful stage
turns them into incidents before the fields are mapped (see :func:`prepare_input`).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pyarrow as pa

from transforms.compile import MapResult, compile_spec
from transforms.spec import SpecInvalid, load_spec
from transforms.yaml_lines import YamlError, load_with_lines

TEST_KEY = b"weftline-spec-tests"  # a fixed subject key, so expected hashes are reproducible


@dataclass
class CaseResult:
    spec: str
    name: str
    ok: bool
    problems: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{self.spec} :: {self.name}"


def cases_file_for(spec_path: Path) -> Path:
    return spec_path.with_name(spec_path.name.removesuffix(".yaml") + ".test.yaml")


def _norm(v):
    if isinstance(v, dt.datetime):
        return v.astimezone(dt.timezone.utc).replace(tzinfo=None) if v.tzinfo else v
    if isinstance(v, Decimal):
        return float(v)
    return v


def same(a, b) -> bool:
    """Equality for expected vs actual values (floats approximately, datetimes in UTC).

    >>> same(1.5, 1.5000000001), same("a", "b"), same(Decimal("2.50"), 2.5)
    (True, False, True)
    """
    a, b = _norm(a), _norm(b)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) and not isinstance(b, bool):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(a, dt.date) != isinstance(b, dt.date):
        return str(a) == str(b)
    return a == b


def prepare_input(spec, rows: list[dict], case: dict) -> pa.Table:
    """The table a case feeds the field mapping: the rows, or for stateful specs the incidents."""
    table = pa.Table.from_pylist(rows) if rows else pa.table({})
    if spec.stateful:
        from transforms.stateful import run_for_test  # the stateful stage owns its test semantics

        table = run_for_test(spec, table, case)
    return table


def _compare_rows(entity: str, got: list[dict], want: list[dict]) -> list[str]:
    problems = []
    if len(got) != len(want):
        problems.append(f"{entity}: expected {len(want)} row(s), got {len(got)}: {got}")
        return problems
    for i, (g, w) in enumerate(zip(got, want)):
        for k, v in w.items():
            if k not in g:
                problems.append(f"{entity} row {i}: no field {k!r} in output")
            elif not same(g[k], v):
                problems.append(f"{entity} row {i}: {k} = {g[k]!r}, expected {v!r}")
    return problems


def _check_case(result: MapResult, case: dict) -> list[str]:
    problems = []
    outputs = {o.entity: o for o in result.outputs}
    for entity, rows in (case.get("expect") or {}).items():
        if entity not in outputs:
            problems.append(f"the spec has no target {entity!r}")
            continue
        got = outputs[entity].table.to_pylist()
        problems += _compare_rows(entity, got, rows)
    if "expect_quarantine" in case:
        got_q = result.quarantine.to_pylist()
        want_q = case["expect_quarantine"] or []
        if len(got_q) != len(want_q):
            problems.append(f"expected {len(want_q)} quarantined row(s), got {len(got_q)}: "
                            + "; ".join(f"row {q['row']} {q['field']}: {q['reason']}" for q in got_q))
        else:
            for g, w in zip(got_q, want_q):
                for k in ("row", "field", "target"):
                    if k in w and g[k] != w[k]:
                        problems.append(f"quarantined {k} = {g[k]!r}, expected {w[k]!r}")
                if "reason" in w and str(w["reason"]).lower() not in g["reason"].lower():
                    problems.append(f"quarantine reason {g['reason']!r} does not contain {w['reason']!r}")
    elif "expect" in case:
        if result.quarantine.num_rows:
            problems.append("unexpected quarantine: " + "; ".join(
                f"row {q['row']} {q['field']}: {q['reason']}" for q in result.quarantine.to_pylist()))
    if "expect_filtered" in case:
        n = sum(c["filtered"] for c in result.counts.values()) // max(len(result.counts), 1)
        if n != case["expect_filtered"]:
            problems.append(f"expected {case['expect_filtered']} filtered row(s), got {n}")
    for entity, c in result.counts.items():
        if c["read"] != c["mapped"] + c["quarantined"] + c["filtered"]:
            problems.append(f"{entity}: counts do not reconcile: {c}")
    return problems


CASE_KEYS = {"name", "input", "input_file", "expect_rejected", "expect", "expect_quarantine", "expect_filtered",
             "batches", "now", "expect_incidents", "expect_event_quarantine"}  # the last four: stateful specs
EXPECTATIONS = ("expect", "expect_quarantine", "expect_filtered", "expect_incidents", "expect_event_quarantine")


def case_shape_problems(case) -> list[str]:
    """What is wrong with the shape of one case (a case that checks nothing is wrong too).

    >>> case_shape_problems({"name": "x", "input": [{"a": 1}], "expected": {"lead": []}})
    ['unknown key(s) expected in case; allowed: batches, expect, expect_event_quarantine, expect_filtered, expect_incidents, expect_quarantine, expect_rejected, input, input_file, name, now', 'a case needs expect, expect_quarantine, expect_filtered, expect_incidents or expect_event_quarantine']
    """
    if not isinstance(case, dict):
        return [f"a case must be a mapping with name, input and expect…, not {type(case).__name__}"]
    problems = []
    extra = sorted(set(map(str, case)) - CASE_KEYS)
    if extra:
        problems.append(f"unknown key(s) {', '.join(extra)} in case; allowed: {', '.join(sorted(CASE_KEYS))}")
    if not any(k in case for k in EXPECTATIONS):
        problems.append(f"a case needs {', '.join(EXPECTATIONS[:-1])} or {EXPECTATIONS[-1]}")
    rows = case.get("input")
    if rows is not None and not (isinstance(rows, list) and all(isinstance(r, dict) for r in rows)):
        problems.append("`input` must be a list of rows (mappings)")
    expect = case.get("expect")
    if expect is not None and not (isinstance(expect, dict) and all(
            isinstance(v, list) and all(isinstance(r, dict) for r in v) for v in expect.values())):
        problems.append("`expect` must map each target entity to a list of rows, e.g. {lead: [{external_id: WEB-1}]}")
    q = case.get("expect_quarantine")
    if q is not None and not (isinstance(q, list) and all(isinstance(r, dict) for r in q)):
        problems.append("`expect_quarantine` must be a list like [{row: 0, field: priority, reason: ...}]")
    f = case.get("expect_filtered")
    if "expect_filtered" in case and (not isinstance(f, int) or isinstance(f, bool)):
        problems.append("`expect_filtered` must be a number of rows")
    return problems


def run_spec_tests(spec_path: Path) -> list[CaseResult]:
    """Run every case of the spec's test file; a missing or broken test file is a failure."""
    spec_path = Path(spec_path)
    name = spec_path.name
    tf = cases_file_for(spec_path)
    if not tf.exists():
        return [CaseResult(name, "(test file)", False, [f"no test file {tf.name} beside the spec"])]
    try:
        spec = load_spec(spec_path)
        plan = compile_spec(spec, subject_key=TEST_KEY)
        doc = load_with_lines(tf.read_text())
    except SpecInvalid as err:
        return [CaseResult(name, "(spec)", False, [str(i) for i in err.issues])]
    except YamlError as err:
        return [CaseResult(name, "(test file)", False, [f"{tf}:{err.line}: {err}"])]
    cases = (doc.data or {}).get("cases") if isinstance(doc.data, dict) else None
    if not cases or not isinstance(cases, list):
        return [CaseResult(name, "(test file)", False, [f"{tf}: no `cases:` list"])]
    results = []
    for i, case in enumerate(cases):
        shape = case_shape_problems(case)
        if shape:
            where = f"{tf}:{doc.line(('cases', i))}"
            title = str(case.get("name", f"case {i + 1}")) if isinstance(case, dict) else f"case {i + 1}"
            results.append(CaseResult(name, title, False, [f"{where}: {p}" for p in shape]))
            continue
        title = str(case.get("name", f"case {i + 1}"))
        try:
            if case.get("input_file"):  # a real sample beside the specs (json, jsonl, csv, parquet, hl7, FHIR)
                from connectors.file.read import read_file

                path = (spec_path.parent / case["input_file"]).resolve()
                if spec_path.parent.resolve() not in path.parents:
                    raise ValueError(f"input_file must lie under {spec_path.parent}")
                table, rejected = read_file(path)
                want = case.get("expect_rejected", 0)
                if rejected.num_rows != want:  # a sample's unreadable parts are never dropped silently
                    raise ValueError(f"{case['input_file']}: {rejected.num_rows} input(s) could not be read "
                                     f"(expect_rejected: {want}): " + "; ".join(rejected.column("reason").to_pylist()[:3]))
            else:
                table = prepare_input(spec, case.get("input") or [], case)
            result = plan.apply(table, load_id="test")
            problems = _check_case(result, case)
        except Exception as err:  # a crash in a case is that case's failure, reported, not a traceback
            problems = [f"{type(err).__name__}: {err}"]
        results.append(CaseResult(name, title, not problems, problems))
    return results


def discover(paths: list[Path]) -> list[Path]:
    """Spec files under the given paths (files or folders); test files and integrations excluded."""
    out = []
    for p in paths:
        p = Path(p)
        cands = sorted(p.rglob("*.yaml")) if p.is_dir() else [p]
        for c in cands:
            if c.name.endswith((".test.yaml", ".integration.yaml")) or "reference" in c.parts:
                continue
            out.append(c)
    return out
