"""The `weftline` command line: thin commands over the library (see DESIGN.md's CLI contract)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from connectors.errors import WeftlineError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="weftline: declarative mappings from ERP, HIS, IoT, call and web analytics into the CRM, with record-level lineage.")
out = Console(soft_wrap=True)
err = Console(stderr=True)

DEFAULT_SPECS = Path("mappings")


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[red]error:[/red] {message}", highlight=False, markup=True, soft_wrap=True)
    raise typer.Exit(code)


def _spec_paths(paths: list[Path]) -> list[Path]:
    from transforms.spec_tests import discover

    paths = paths or [DEFAULT_SPECS]
    for p in paths:
        if not p.exists():
            _fail(f"no such file or folder: {p}", 2)
    return discover(paths)


@app.command()
def validate(paths: list[Path] = typer.Argument(None, help="Spec files or folders (default: mappings/)."),
             format: str = typer.Option("text", "--format", help="text or json")):
    """Check specs: JSON Schema + semantics. Errors as file:line: message; exit 2 if any."""
    from transforms import SpecInvalid, load_spec

    issues, specs = [], _spec_paths(paths or [])
    for p in specs:
        try:
            load_spec(p)
        except SpecInvalid as e:
            issues += e.issues
    if format == "json":
        print(json.dumps({"specs": len(specs), "issues": [{"file": i.file, "line": i.line, "message": i.message} for i in issues]}))
    else:
        for i in issues:
            print(str(i))
        (err if issues else out).print(f"{len(specs)} spec(s) checked, {len(issues)} problem(s)")
    raise typer.Exit(2 if issues else 0)


@app.command("test")
def test_cmd(paths: list[Path] = typer.Argument(None, help="Spec files or folders (default: mappings/).")):
    """Run the test cases beside each spec; ends with 'N passed, M failed'."""
    from transforms.spec_tests import run_spec_tests

    passed = failed = 0
    for p in _spec_paths(paths or []):
        for r in run_spec_tests(p):
            if r.ok:
                passed += 1
                out.print(f"[green]PASS[/green] {r.title}", highlight=False)
            else:
                failed += 1
                out.print(f"[red]FAIL[/red] {r.title}", highlight=False)
                for problem in r.problems:
                    out.print(f"     {problem}", highlight=False, markup=False)
    print(f"{passed} passed, {failed} failed")
    raise typer.Exit(1 if failed else 0)


def _table(rows: list[dict], title: str) -> Table:
    t = Table(title=title, show_lines=False)
    cols = list(rows[0]) if rows else []
    for c in cols:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*["" if r[c] is None else str(r[c]) for c in cols])
    return t


@app.command()
def preview(spec: Path = typer.Argument(..., help="The spec file."),
            input: Path = typer.Option(..., "--input", "-i", help="json, jsonl, csv, parquet, hl7 or FHIR JSON"),
            format: str = typer.Option("table", "--format", help="table or json"),
            limit: int = typer.Option(20, help="Rows shown per target in table format.")):
    """Apply a spec to a sample file and show what it makes (nothing is loaded)."""
    from connectors.base.home import Home
    from connectors.file.read import read_file_at
    from weftline.runner import compile_file, stamp_batch

    try:
        plan = compile_file(spec, Home())
        table, rejected, at = read_file_at(input)
        result = plan.apply(stamp_batch(table, plan.spec.source["connector"], plan.spec.source["stream"], "preview"))
    except WeftlineError as e:
        _fail(str(e), 2 if e.kind == "config" else 1)
    records = []
    for o in result.outputs:
        for r in o.table.drop_columns([c for c in o.table.column_names if c.startswith("_wl_")]).to_pylist():
            records.append({"_target": o.entity, **r} if len(result.outputs) > 1 else r)
    quarantined = [{"row": q["row"], "position": at[q["row"]] if at else None, "field": q["field"], "reason": q["reason"],
                    "target": q["target"]} for q in result.quarantine.to_pylist()]  # position: the file's line
    quarantined += [{"row": None, "field": None, "reason": r["reason"], "position": r["position"]} for r in rejected.select(["position", "reason"]).to_pylist()]
    counts = {"read": table.num_rows + rejected.num_rows,
              "mapped": sum(c["mapped"] for c in result.counts.values()),
              "quarantined": sum(c["quarantined"] for c in result.counts.values()) + rejected.num_rows,
              "filtered": sum(c["filtered"] for c in result.counts.values())}
    if format == "json":
        print(json.dumps({"spec": plan.spec.id, "version": plan.spec.version_hash, "records": records,
                          "quarantined": quarantined, "counts": counts, "per_target": result.counts}, default=str))
        return
    for o in result.outputs:
        rows = o.table.drop_columns([c for c in o.table.column_names if c.startswith("_wl_")]).slice(0, limit).to_pylist()
        out.print(_table(rows, f"{plan.spec.id} → {o.entity} ({o.table.num_rows} rows)"))
    if quarantined:
        out.print(_table(quarantined[:limit], f"quarantined ({len(quarantined)})"))
    out.print(f"read {counts['read']} = mapped {counts['mapped']} + quarantined {counts['quarantined']} + filtered {counts['filtered']}")


@app.command()
def run(target: str = typer.Argument(..., help="A spec file (with --input), or an integration name."),
        input: Optional[Path] = typer.Option(None, "--input", "-i", help="Map and load this file with the spec."),
        format: str = typer.Option("table", "--format", help="table or json")):
    """Map a file and load it (SPEC --input FILE), or run one sync of an integration."""
    from weftline.runner import run_file

    try:
        if input is not None:
            report = run_file(Path(target), input)
        else:
            from weftline.integrations import run_integration

            report = run_integration(target)
    except WeftlineError as e:
        _fail(str(e), 2 if e.kind == "config" else 1)
    reports = report if isinstance(report, list) else [report]
    if format == "json":
        print(json.dumps([r.to_dict() for r in reports], default=str))
        return
    for r in reports:
        _print_report(r)


def _print_report(r) -> None:
    t = Table(title=f"{r.spec} ({r.source}) load {r.load_id}")
    for c in ("target", "read", "mapped", "quarantined", "filtered", "loaded", "superseded"):
        t.add_column(c, justify="right" if c != "target" else "left")
    for tc in r.targets:
        t.add_row(tc.entity, str(tc.read), str(tc.mapped), str(tc.quarantined), str(tc.filtered), str(tc.loaded),
                  str(tc.superseded))
    out.print(t)
    if r.rejected:
        out.print(f"{r.rejected} input(s) could not be parsed and were quarantined")
    out.print(f"destination {r.destination}; reconciles: {r.reconciles}", highlight=False)


@app.command()
def demo(home: Optional[Path] = typer.Option(None, help="WEFTLINE_HOME for the demo (default: ./.weftline).")):
    """The whole loop on embedded defaults, end to end: no server needed."""
    from weftline.demo import run_demo

    run_demo(home, out)


@app.command()
def functions(format: str = typer.Option("markdown", "--format", help="markdown or json")):
    """The mapping functions (generated from the one registry)."""
    from transforms.functions import REGISTRY, markdown

    if format == "json":
        print(json.dumps([{"name": f.name, "signature": f.signature, "doc": f.doc, "example": f.example,
                           "category": f.category} for f in REGISTRY.values()]))
    else:
        print(markdown())


def _mount_optional() -> None:
    """Command groups that live in their own modules (lineage, stream)."""
    try:
        from weftline.commands.lineage import app as lineage_app

        app.add_typer(lineage_app, name="lineage", help="Trace, impact, export, verify and erase record lineage.")
    except ImportError:
        pass
    try:
        from weftline.commands.stream import stream

        app.command("stream")(stream)
    except ImportError:
        pass


_mount_optional()


def main() -> None:
    import logging

    import os

    os.environ.setdefault("RUNTIME__LOG_LEVEL", "ERROR")  # dlt's schema-hint chatter is not for our users
    os.environ.setdefault("PROVIDERS__ENABLE_AIRFLOW_SECRETS", "false")  # else dlt asks Airflow Variables per value
    logging.getLogger("dlt").setLevel(logging.ERROR)
    try:
        app()
    except WeftlineError as e:
        err.print(f"error: {e}", highlight=False, markup=False)
        sys.exit(2 if e.kind == "config" else 1)
