"""The ``weftline`` CLI contract (DESIGN.md): validate, test, preview, run.

Commands run in-process through typer's CliRunner (and once through the installed
``weftline`` script, for the real exit code). Inputs are written into ``tmp_path``;
expected values come from a small reference mapper written here in plain Python
(:func:`expected_lead`), never from the engine itself.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from weftline.cli import app

ROOT = Path(__file__).resolve().parents[2]
MAPPINGS = ROOT / "mappings"
SPEC = MAPPINGS / "web_activity_to_lead.yaml"
LEVELS = {"A": "high", "B": "medium", "C": "low"}  # the map in SPEC
SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed$")

runner = CliRunner()


def invoke(*args: str):
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def issue_lines(output: str, path: Path) -> list[tuple[int, str]]:
    """The ``file:line: message`` lines about ``path``, as (line, message)."""
    pat = re.compile(rf"^{re.escape(str(path))}:(\d+): (.+)$")
    return [(int(m.group(1)), m.group(2)) for m in map(pat.match, output.splitlines()) if m]


# ------------------------------------------------------------------ sample input and a reference mapper
def submission(i: int, level: str | None, email: str | None, score: float | None) -> dict:
    return {"submission_id": str(i), "message_id": f"m{i}", "submitted_at": "2026-11-24T10:00:00Z",
            "received_at": f"2026-11-24T10:00:{i:02d}Z", "contact": {"email": email},
            "activity": {"level": level}, "engagement_score": score}


ROWS = [
    submission(1, "A", "  Ann.Lee@Example.COM ", 4.0),
    submission(2, "Z", "zed@example.com", 1.0),  # not in the map: quarantined
    submission(3, None, "no.level@example.com", 2.0),  # `when` fails: filtered
    submission(4, "C", "Çelik@Örnek.de", None),  # non-ASCII, no score
    submission(5, "B", None, 3.0),  # required e-mail missing: quarantined
    submission(6, "B", "bo@example.com", 2.5),
]


def expected_lead(row: dict) -> tuple[str, dict | str]:
    """What web_activity_to_lead.yaml does to one row, written independently of the engine."""
    level, email = row["activity"]["level"], row["contact"]["email"]
    if level is None:
        return "filtered", ""
    if level not in LEVELS:
        return "quarantined", "priority"
    if email is None:
        return "quarantined", "email"
    return "mapped", {"external_id": "WEB-" + row["submission_id"], "email": email.strip().lower(),
                      "priority": LEVELS[level], "score": (row["engagement_score"] or 0) * 1.5}


def expected(rows: list[dict]) -> tuple[list[dict], list[str], dict]:
    outcomes = [expected_lead(r) for r in rows]
    mapped = [o for k, o in outcomes if k == "mapped"]
    q_fields = [o for k, o in outcomes if k == "quarantined"]
    counts = {"read": len(rows), "mapped": len(mapped), "quarantined": len(q_fields),
              "filtered": sum(1 for k, _ in outcomes if k == "filtered")}
    return mapped, q_fields, counts


# ------------------------------------------------------------------ validate
def test_validate_passes_on_the_shipped_mappings():
    r = invoke("validate", MAPPINGS)
    assert r.exit_code == 0, r.output
    assert not issue_lines(r.output, MAPPINGS), r.output


def test_validate_through_the_installed_script_from_the_repo_root(tmp_path):
    """The real entry point (``weftline = weftline.cli:main``): exit codes as a shell sees them."""
    bad = spec_dir(tmp_path) / "bad.yaml"
    bad.write_text(SPEC.read_text().replace("coalesce(engagement_score, 0)", "coalesce(engagement_score, 0) +"))
    exe = Path(sys.executable).with_name("weftline")
    ok = subprocess.run([exe, "validate"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    broken = subprocess.run([exe, "validate", bad], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert broken.returncode == 2
    assert "Traceback" not in broken.stdout + broken.stderr
    assert re.search(rf"^{re.escape(str(bad))}:\d+: cannot parse expression", broken.stdout, re.M), broken.stdout


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


BASE = SPEC.read_text()


def _with_variants(text: str, items: str) -> str:
    """The spec with ``items`` as its first variants (before any it already has)."""
    if "\nvariants:" in text:
        head, tail = text.split("\nvariants:", 1)
        tail = tail.split("\n", 1)[1] if tail.startswith((" ", "\n")) or tail == "" else tail
        return head + "\nvariants:\n" + items + tail
    return text + "variants:\n" + items


def spec_dir(tmp_path: Path) -> Path:
    """A folder for specs with the sample reference data beside them (specs may `lookup` it)."""
    d = tmp_path / "specs"
    shutil.copytree(MAPPINGS / "reference", d / "reference")
    return d
BROKEN = {
    # name: (spec text, text on the line the issue must point at, part of the message)
    "unknown_source_field": (BASE.replace("from: contact.email,", "from: contact.emial,"),
                             "contact.emial", "unknown source field 'contact.emial'"),
    "expression_syntax": (BASE.replace("coalesce(engagement_score, 0) * 1.5", "coalesce(engagement_score, 0) * "),
                          "score:", "cannot parse expression"),
    "unknown_field_key": (BASE.replace("apply: [trim, lower]", "aply: [trim, lower]"), "aply", "unknown key(s) aply"),
    "missing_source": (BASE.replace("source: {connector: web_analytics, stream: form_submissions}\n", ""),
                       "mapping:", "'source' is a required property"),
    "duplicate_field": (BASE.replace("  score:", "  email: {from: contact.email}\n  score:"),
                        "  email: {from: contact.email}\n", "duplicate key 'fields.email'"),
    "type_mismatch": (BASE.replace("coalesce(engagement_score, 0) * 1.5", "lower(engagement_score)"),
                      "score:", "must be string, not float"),
    "unknown_type": (BASE.replace("type: float", "type: money"), "type: money", "type"),
    "bad_time_zone": (BASE.replace("type: float", "type: timestamp, tz: Mars/Olympus"), "Mars/Olympus", "unknown time zone"),
    "key_not_a_field": (BASE.replace("key: [external_id]", "key: [lead_id]"), "key: [lead_id]",
                        "key field 'lead_id' is not one of the target's fields"),
    "when_not_boolean": (BASE.replace("when: activity.level is not null", "when: engagement_score + 1"),
                         "when:", "`when` must be a true/false condition"),
    "unreachable_variant": (_with_variants(BASE, "  - name: all\n    when: 'true'\n    fields: {priority: {from: activity.level}}\n"
                                          "  - name: later\n    when: \"form_name = 'x'\"\n    fields: {priority: {from: activity.level}}\n"),
                            "form_name = 'x'", "unreachable rule"),
    "wrong_arity": (BASE.replace("coalesce(engagement_score, 0) * 1.5", "round()"), "score:", "round takes"),
    "unknown_unit": (BASE.replace("coalesce(engagement_score, 0) * 1.5", "date_diff('days', to_timestamp(submitted_at), "
                                  "to_timestamp(received_at))"), "score:", "date_diff: unknown unit 'days'"),
    "unknown_tz_argument": (BASE.replace("coalesce(engagement_score, 0) * 1.5", "hour(to_timestamp(submission_id, '%H', "
                                         "'Mars/Olympus'))"), "score:", "unknown time zone 'Mars/Olympus'"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_validate_reports_each_breakage_as_file_line_message(tmp_path, name):
    text, where, needle = BROKEN[name]
    p = spec_dir(tmp_path) / f"{name}.yaml"
    p.write_text(text)
    r = invoke("validate", p)
    assert r.exit_code == 2, r.output
    lines = issue_lines(r.output, p)
    assert lines, r.output
    assert any(needle in msg and line == _line_of(text, where.strip().splitlines()[0]) for line, msg in lines), lines


def test_validate_reports_every_broken_spec_in_a_folder_and_exit_2(tmp_path):
    d = spec_dir(tmp_path)
    for name in ("unknown_source_field", "type_mismatch", "missing_source"):
        (d / f"{name}.yaml").write_text(BROKEN[name][0])
    (d / "good.yaml").write_text(BASE)
    r = invoke("validate", d)
    assert r.exit_code == 2
    assert {Path(m.split(":")[0]).stem for m in r.output.splitlines() if re.match(r"^/.+\.yaml:\d+: ", m)} == {
        "unknown_source_field", "type_mismatch", "missing_source"}


# ------------------------------------------------------------------ hostile specs
def _alias_bomb() -> str:
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    return "mapping: bomb\nversion: 1\n" + "\n".join(lines) + "\n"


def _expr(e: str) -> str:
    return BASE.replace('"coalesce(engagement_score, 0) * 1.5"', json.dumps(e))


HOSTILE = {
    # name: (file content, part of the message)
    "shell_function": (_expr("shell('rm -rf /')"), "unknown function 'shell'"),
    "dunder_import": (_expr("__import__('os')"), "unknown function '__import__'"),
    "dunder_attribute": (_expr("engagement_score.__class__.__mro__"), "unknown source field"),
    "duckdb_read_csv": (_expr("read_csv('/etc/passwd')"), "unknown function 'read_csv'"),
    "sql_injection": (_expr("1; DROP TABLE lead; --"), "cannot parse expression"),
    "lookup_path_traversal": (_expr("lookup('../../etc/passwd', submission_id, 'x')"), "unknown reference table"),
    "python_tag": ('mapping: !!python/object/apply:os.system ["touch {sentinel}"]\nversion: 1\n', "YAML tag"),
    "python_tag_on_mapping": ("mapping: x\nversion: !!python/object/apply:os.system\n  args: ['touch {sentinel}']\n", "YAML tag"),
    "python_name_tag": ("mapping: !!python/name:os.system x\nversion: 1\n", "YAML"),
    "alias_bomb": (_alias_bomb(), "anchors/aliases are not allowed"),
    "two_megabytes": ("mapping: big\nversion: 1\n# " + "x" * (2 * 1024 * 1024) + "\n", "larger than"),
    "deep_yaml": ("mapping: x\nversion: 1\nsource: " + "[" * 5000 + "]" * 5000 + "\n", "nesting deeper"),
    "deep_parentheses": (_expr("(" * 40 + "1" + ")" * 40), "nesting deeper than"),
    "not_chain": (_expr("not " * 900 + "true"), "nests too deeply"),
    "minus_chain": (_expr("-" * 3000 + "engagement_score"), "nests too deeply"),
    "long_expression": (_expr(" + ".join(["engagement_score"] * 300)), "characters long; the limit is 4000"),
    "many_nodes": (_expr("+".join(["1"] * 300)), "nodes; the limit is 500"),
    "memory_bomb_pad": (_expr("lpad(submission_id, 2000000000, 'x')"), "lpad width 2000000000 is outside 0..1000"),
    "hang_empty_replace": (_expr("replace(submission_id, '', 'x')"), "replace: the text to replace must not be empty"),
    "memory_bomb_regex": (_expr("regex_replace(submission_id, 'x*', '" + "y" * 3000 + "')"), "matches empty text between"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE) + ["binary_garbage"])
def test_hostile_specs_get_a_clear_error_never_a_traceback_and_run_nothing(tmp_path, name):
    sentinel = tmp_path / "pwned"
    p = spec_dir(tmp_path) / f"{name}.yaml"
    if name == "binary_garbage":
        p.write_bytes(bytes(range(256)) * 64 + os.urandom(4096))
        needle = "cannot read spec"
    else:
        text, needle = HOSTILE[name]
        p.write_text(text.replace("{sentinel}", str(sentinel)))
    r = invoke("validate", p)
    assert r.exit_code == 2, r.output
    lines = issue_lines(r.output, p)
    assert any(needle in msg for _, msg in lines), r.output
    assert not sentinel.exists()


def test_preview_and_test_refuse_hostile_specs_too(tmp_path, home):
    p = spec_dir(tmp_path) / "hostile.yaml"
    p.write_text(HOSTILE["shell_function"][0])
    p.with_name("hostile.test.yaml").write_text("cases:\n  - name: x\n    input: [{submission_id: '1'}]\n    expect: {lead: []}\n")
    inp = tmp_path / "in.json"
    inp.write_text(json.dumps(ROWS[0]))
    r = invoke("preview", p, "--input", inp, "--format", "json")
    assert r.exit_code == 2 and "unknown function 'shell'" in r.output
    r = invoke("test", p)
    assert r.exit_code == 1 and "unknown function 'shell'" in r.output
    assert SUMMARY.match(r.stdout.strip().splitlines()[-1]).groups() == ("0", "1")


# ------------------------------------------------------------------ test
def test_test_passes_the_sample_spec_and_counts_its_cases():
    cases = yaml.safe_load(SPEC.with_name("web_activity_to_lead.test.yaml").read_text())["cases"]
    r = invoke("test", SPEC)
    assert r.exit_code == 0, r.output
    assert SUMMARY.match(r.stdout.strip().splitlines()[-1]).groups() == (str(len(cases)), "0")


def test_test_exits_1_and_names_the_failing_case(tmp_path):
    d = spec_dir(tmp_path)
    spec = d / "lead.yaml"
    spec.write_text(BASE)
    (d / "lead.test.yaml").write_text("""cases:
  - name: right
    input: [{submission_id: "1", contact: {email: a@x.com}, activity: {level: A}, engagement_score: 2}]
    expect: {lead: [{external_id: WEB-1, priority: high, score: 3.0}]}
  - name: wrong on purpose
    input: [{submission_id: "2", contact: {email: b@x.com}, activity: {level: B}, engagement_score: 2}]
    expect: {lead: [{external_id: WEB-2, priority: low}]}
  - name: wrong quarantine reason
    input: [{submission_id: "3", contact: {email: c@x.com}, activity: {level: Q}}]
    expect_quarantine: [{row: 0, field: priority, reason: "some other reason"}]
""")
    r = invoke("test", d)
    assert r.exit_code == 1
    assert r.stdout.strip().splitlines()[-1] == "1 passed, 2 failed"
    assert "wrong on purpose" in r.stdout and "priority = 'medium', expected 'low'" in r.stdout
    assert "does not contain 'some other reason'" in r.stdout


def test_test_counts_a_spec_without_test_file_as_a_failure(tmp_path):
    d = spec_dir(tmp_path)
    (d / "lead.yaml").write_text(BASE)
    r = invoke("test", d)
    assert r.exit_code == 1 and "no test file lead.test.yaml" in r.stdout
    assert r.stdout.strip().splitlines()[-1] == "0 passed, 1 failed"


@pytest.mark.parametrize("body,needle", [
    ("cases: [a, b]\n", "a case must be a mapping"),
    ("cases:\n  - name: typo\n    input: [{submission_id: '1'}]\n    expected: {lead: []}\n", "unknown key(s) expected in case"),
    ("cases:\n  - name: checks nothing\n    input: []\n", "a case needs expect"),
    ("cases:\n  - name: x\n    input: 5\n    expect: {lead: []}\n", "`input` must be a list of rows"),
    ("cases:\n  - name: x\n    input: []\n    expect: [1]\n", "`expect` must map each target entity"),
    ("cases:\n  - name: x\n    input: []\n    expect_filtered: many\n", "`expect_filtered` must be a number"),
    ("cases: {a: 1}\n", "no `cases:` list"),
    ("cases:\n  - name: x\n   input: [\n", "YAML"),
])
def test_a_malformed_test_file_is_a_failure_with_file_and_line_never_a_traceback(tmp_path, body, needle):
    d = spec_dir(tmp_path)
    (d / "lead.yaml").write_text(BASE)
    (d / "lead.test.yaml").write_text(body)
    r = invoke("test", d)
    assert r.exit_code == 1
    assert needle in r.stdout and str(d / "lead.test.yaml") in r.stdout, r.stdout
    passed, failed = SUMMARY.match(r.stdout.strip().splitlines()[-1]).groups()
    assert passed == "0" and int(failed) >= 1


# ------------------------------------------------------------------ preview
def write_input(tmp_path: Path, kind: str, rows: list[dict]) -> Path:
    p = tmp_path / f"input.{ 'json' if kind.startswith('json_') else kind}"
    if kind == "json_object":
        p.write_text(json.dumps(rows[0]))
    elif kind == "json_array":
        p.write_text(json.dumps(rows, ensure_ascii=False))
    elif kind == "jsonl":
        p.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    elif kind == "parquet":
        pq.write_table(pa.Table.from_pylist(rows), p)
    return p


def preview_json(spec: Path, inp: Path) -> dict:
    r = invoke("preview", spec, "--input", inp, "--format", "json")
    assert r.exit_code == 0, r.output
    assert len(r.stdout.strip().splitlines()) == 1, r.stdout  # exactly one JSON object, nothing else
    doc = json.loads(r.stdout)
    assert isinstance(doc, dict)
    assert {"spec", "version", "records", "quarantined", "counts"} <= set(doc)
    c = doc["counts"]
    assert set(c) == {"read", "mapped", "quarantined", "filtered"}
    assert c["read"] == c["mapped"] + c["quarantined"] + c["filtered"]
    assert len(doc["records"]) == c["mapped"] and len(doc["quarantined"]) == c["quarantined"]
    for q in doc["quarantined"]:
        assert {"row", "field", "reason"} <= set(q) and q["reason"]
    return doc


def _same_records(got: list[dict], want: list[dict]) -> None:
    key = lambda r: r["external_id"]  # noqa: E731
    got, want = sorted(got, key=key), sorted(want, key=key)
    assert [{k: g[k] for k in w} for g, w in zip(got, want)] == want
    assert len(got) == len(want)


@pytest.mark.parametrize("kind", ["json_object", "json_array", "jsonl", "parquet"])
def test_preview_json_of_each_input_format(tmp_path, home, kind):
    rows = ROWS[:1] if kind == "json_object" else ROWS
    doc = preview_json(SPEC, write_input(tmp_path, kind, rows))
    from transforms import load_spec

    assert doc["spec"] == "web_activity_to_lead" and doc["version"] == load_spec(SPEC).version_hash
    mapped, q_fields, counts = expected(rows)
    assert doc["counts"] == counts
    _same_records(doc["records"], mapped)
    assert sorted(q["field"] for q in doc["quarantined"]) == sorted(q_fields)
    reasons = {q["field"]: q["reason"] for q in doc["quarantined"]}
    if "priority" in reasons:
        assert "'Z'" in reasons["priority"] and "not in its map" in reasons["priority"]
    if "email" in reasons:
        assert reasons["email"] == "required field 'email' is null"


def test_preview_jsonl_quarantines_a_malformed_line_rather_than_dropping_it(tmp_path, home):
    good = write_input(tmp_path, "jsonl", ROWS).read_text(encoding="utf-8").splitlines()
    lines = good[:2] + ['{"submission_id": "99", "contact": {"email": "x@example.com"'] + good[2:]
    p = tmp_path / "broken.jsonl"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    doc = preview_json(SPEC, p)
    mapped, q_fields, counts = expected(ROWS)
    assert doc["counts"] == {**counts, "read": len(lines), "quarantined": counts["quarantined"] + 1}
    _same_records(doc["records"], mapped)
    malformed = [q for q in doc["quarantined"] if "malformed JSON" in q["reason"]]
    assert len(malformed) == 1 and malformed[0]["reason"].startswith("malformed JSON at line 3")


def test_preview_points_a_quarantined_row_at_its_line_in_the_file(tmp_path, home):
    """After a malformed line and a blank one, a row that fails its mapping is named by the line it is
    on in the file (``position``), not by its place among the rows that parsed."""
    good = write_input(tmp_path, "jsonl", ROWS).read_text(encoding="utf-8").splitlines()
    lines = good[:2] + ['{"submission_id": "99", "contact": {', ""] + good[2:]
    p = tmp_path / "shifted.jsonl"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    doc = preview_json(SPEC, p)
    want = {f"shifted.jsonl:{n}": expected_lead(json.loads(line))[1] for n, line in enumerate(lines, 1)
            if line.strip() and line != lines[2] and expected_lead(json.loads(line))[0] == "quarantined"}
    got = {q["position"]: q["field"] for q in doc["quarantined"] if q.get("field")}
    assert want and got == want
    assert any(int(pos.rsplit(":", 1)[1]) > 4 for pos in got)  # a row after the gap is among them


def test_preview_json_array_quarantines_an_element_that_is_not_an_object(tmp_path, home):
    p = tmp_path / "mixed.json"
    p.write_text(json.dumps([ROWS[0], "not a record", ROWS[5]]))
    doc = preview_json(SPEC, p)
    assert doc["counts"] == {"read": 3, "mapped": 2, "quarantined": 1, "filtered": 0}
    assert "expected a JSON object, got str" in doc["quarantined"][0]["reason"]


FLAT_SPEC = """mapping: flat_lead
version: 1
source: {connector: file, stream: leads}
target: {entity: lead, key: [external_id]}
when: level is not null
fields:
  external_id: {expr: "'CSV-' || id"}
  email: {from: email, apply: [trim, lower], required: true}
  priority: {from: level, map: {A: high, B: medium, C: low}}
  score: {from: score, type: float}
"""


def test_preview_csv(tmp_path, home):
    """CSV is flat, so a flat spec of the same shape; empty CSV cells are text '' (not null)."""
    spec = tmp_path / "flat_lead.yaml"
    spec.write_text(FLAT_SPEC)
    inp = tmp_path / "leads.csv"
    inp.write_text("id,email,level,score\n1, Ann@X.com ,A,4.5\n2,bo@x.com,Z,1\n3,cy@x.com,B,abc\n4,dé@x.com,C,2\n",
                   encoding="utf-8")
    doc = preview_json(spec, inp)
    assert doc["counts"] == {"read": 4, "mapped": 2, "quarantined": 2, "filtered": 0}
    assert sorted(doc["records"], key=lambda r: r["external_id"]) == [
        {"external_id": "CSV-1", "email": " Ann@X.com ".strip().lower(), "priority": "high", "score": 4.5},
        {"external_id": "CSV-4", "email": "dé@x.com", "priority": "low", "score": 2.0},
    ]
    reasons = {q["row"]: (q["field"], q["reason"]) for q in doc["quarantined"]}
    assert reasons[1][0] == "priority" and "'Z'" in reasons[1][1]
    assert reasons[2] == ("score", "cannot cast 'abc' to float")


def test_preview_quarantines_rows_whose_types_drifted_from_the_source_schema(tmp_path, home):
    """engagement_score is declared a number; a batch where it arrives as text is quarantined, not a crash."""
    rows = [{**r, "engagement_score": None if r["engagement_score"] is None else str(r["engagement_score"])} for r in ROWS]
    doc = preview_json(SPEC, write_input(tmp_path, "jsonl", rows))
    _, _, counts = expected(ROWS)  # the same rows, with the declared types
    assert doc["counts"]["filtered"] == counts["filtered"] and doc["counts"]["mapped"] == 0
    score = [q for q in doc["quarantined"] if q["field"] == "score"]
    assert score and all("cannot apply to string" in q["reason"] for q in score)


def test_preview_of_a_missing_input_is_a_clear_error(tmp_path, home):
    r = invoke("preview", SPEC, "--input", tmp_path / "nope.jsonl", "--format", "json")
    assert r.exit_code == 2 and "no such input file" in r.output


# ------------------------------------------------------------------ run
def crm_rows(home) -> list[tuple]:
    import duckdb

    con = duckdb.connect(str(home.crm_duckdb), read_only=True)
    try:
        cols = [c for (c,) in con.sql("SELECT column_name FROM information_schema.columns WHERE table_catalog = 'crm' "
                                      "AND table_schema = 'crm' AND table_name = 'lead' ORDER BY ordinal_position").fetchall()]
        keep = [c for c in cols if c not in ("_wl_load_id",) and not c.startswith("_dlt_")]
        rows = con.sql(f"SELECT {', '.join(keep)} FROM crm.crm.lead ORDER BY external_id").fetchall()
        return [dict(zip(keep, r)) for r in rows]
    finally:
        con.close()


def weftline(*args, env: dict | None = None) -> subprocess.CompletedProcess:
    """The installed ``weftline`` script in its own process (dlt's loggers keep the streams they
    were created with, so loads run out of process rather than inside CliRunner's captured ones)."""
    exe = Path(sys.executable).with_name("weftline")
    done = subprocess.run([exe, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    return done


def snapshot_spec(tmp_path: Path) -> Path:
    """A copy of the sample spec and its reference data, so both runs see the same spec version."""
    d = spec_dir(tmp_path)
    shutil.copy(SPEC, d / SPEC.name)
    return d / SPEC.name


def test_run_twice_with_the_same_input_leaves_the_same_rows(tmp_path, home):
    from connectors.crm import open_destination  # noqa: F401  (the default destination must exist)

    spec = snapshot_spec(tmp_path)
    inp = write_input(tmp_path, "jsonl", ROWS)
    mapped, _, counts = expected(ROWS)
    reports = []
    for _ in range(2):
        r = weftline("run", spec, "--input", inp, "--format", "json")
        assert r.returncode == 0, r.stdout + r.stderr
        (report,) = json.loads(r.stdout)
        assert report["reconciles"] is True
        (t,) = report["targets"]
        assert {k: t[k] for k in counts} == counts and t["loaded"] == counts["mapped"]
        reports.append(report)
        if len(reports) == 1:
            first = crm_rows(home)
    assert reports[0]["load_id"] != reports[1]["load_id"]
    second = crm_rows(home)
    assert second == first
    assert [{k: r[k] for k in ("external_id", "email", "priority", "score")} for r in second] == sorted(
        mapped, key=lambda m: m["external_id"])
    assert len({r["_wl_record_id"] for r in second}) == len(second)


def test_run_with_a_broken_spec_exits_2_and_loads_nothing(tmp_path, home):
    bad = spec_dir(tmp_path) / "bad.yaml"
    bad.write_text(BROKEN["unknown_source_field"][0])
    r = weftline("run", bad, "--input", write_input(tmp_path, "jsonl", ROWS))
    assert r.returncode == 2
    assert "unknown source field 'contact.emial'" in r.stderr + r.stdout
    assert not home.crm_duckdb.exists()
