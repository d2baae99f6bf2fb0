"""``weftline lineage …``: trace, impact, export, verify, erase — thin commands over :mod:`lineage`.

Unknown references or subjects print a clear message and exit 1; ``verify`` exits 1 naming the
first segment and row that do not match; queries name segments they could not read and answer
from the rest. ``--format json`` prints one JSON document on stdout.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Record-level lineage: where a CRM value came from, where a record went, subject export/erasure.")
out = Console()
err = Console(stderr=True)


class Format(str, Enum):
    table = "table"
    json = "json"


class ExportFormat(str, Enum):
    json = "json"
    pdf = "pdf"


HOME = typer.Option(None, "--home", envvar="WEFTLINE_HOME", help="weftline home (default ./.weftline).")
FORMAT = typer.Option(Format.table, "--format", help="table or json")


def _store(home: Optional[Path]) -> Any:
    from connectors.base.home import Home
    from lineage import open_store

    return open_store(Home(home))


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _warn(result: dict) -> None:
    for w in result.get("warnings", []):
        err.print(f"[yellow]warning:[/yellow] {w}", highlight=False, soft_wrap=True)


def _query(fn: Any, store: Any, ref: str) -> dict:
    from lineage import UnknownRef

    try:
        return fn(store, ref)
    except UnknownRef as exc:
        _fail(str(exc))
        raise  # unreachable: _fail exits


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    t = Table(title=title, show_lines=False)
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*["" if v is None else str(v) for v in r])
    out.print(t)


@app.command()
def trace(ref: str = typer.Argument(..., help="<entity>:<key>[#field], e.g. lead:WEB-17#priority"),
          home: Optional[Path] = HOME, format: Format = FORMAT):
    """Backward: the source records, mapping versions and loads behind a CRM record (or field)."""
    from lineage import trace as run

    result = _query(run, _store(home), ref)
    _warn(result)
    if format == Format.json:
        print(json.dumps(result, default=str))
        return
    rows = []
    for c in result["chains"]:
        s, m = c["source"], c["mapping"]
        loads = ", ".join(f"{x['step']} {x['destination']} {x['load_id']}" for x in c["loads"])
        src = f"{s.get('source_system')}.{s.get('stream')}:{s.get('source_key')}" if not s.get("missing") \
            else f"{s['record_id']} (segment unreadable)"
        row = [src, s.get("position"), s.get("at"), f"{m['spec_id']}@{m['spec_version']}", m["rules"], m["load_id"],
               loads]
        if result["field"]:
            f = c.get("field") or {}
            row += [", ".join(f.get("sources", [])), f.get("rule")]
        rows.append(row)
    cols = ["source", "position", "received at", "spec@version", "rules", "load id", "destination"]
    _table(f"trace {ref}", cols + (["source fields", "rule"] if result["field"] else []), rows)


@app.command()
def impact(ref: str = typer.Argument(..., help="<connector>.<stream>:<key>, e.g. erp_sql.orders:42"),
           home: Optional[Path] = HOME, format: Format = FORMAT):
    """Forward: everything derived from a source record and every destination it was sent to."""
    from lineage import impact as run

    result = _query(run, _store(home), ref)
    _warn(result)
    if format == Format.json:
        print(json.dumps(result, default=str))
        return
    _table(f"impact {ref}", ["step", "entity", "key / reason", "spec", "load id", "at"],
           [["mapped", d["entity"], d["target_key"], d["spec_id"], d["load_id"], d["at"]] for d in result["derived"]]
           + [[o["step"], o["entity"], o["reason"], o["spec_id"], o["load_id"], o["at"]] for o in result["outcomes"]]
           + [[x["step"], x["entity"], x["target_key"], x["destination"], x["load_id"], x["at"]]
              for x in result["loaded"]])
    out.print("recipients: " + (", ".join(f"{r['destination']}/{r['entity']}" for r in result["recipients"]) or "none"))


@app.command()
def export(subject: str = typer.Option(..., "--subject", help="The data subject's id (e.g. an e-mail address)."),
           format: ExportFormat = typer.Option(ExportFormat.json, "--format", help="json or pdf"),
           out_file: Path = typer.Option(..., "--out", help="File to write."),
           home: Optional[Path] = HOME):
    """Export one data subject's trail (Art. 15-style) as JSON or PDF."""
    from lineage import UnknownRef, collect_subject

    try:
        doc = collect_subject(_store(home), subject)
    except UnknownRef as exc:
        _fail(str(exc))
    if format == ExportFormat.pdf:
        from lineage.export.render_pdf import render_pdf

        render_pdf(doc, out_file, requested_id=subject)
    else:
        out_file.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    err.print(f"wrote {out_file}: {len(doc['source_records'])} source record(s), "
              f"{len(doc['crm_records'])} CRM record(s), {len(doc['steps'])} step(s)")


@app.command()
def verify(home: Optional[Path] = HOME, format: Format = FORMAT):
    """Recompute every Merkle root and the chain; exit 1 naming the first segment and row that differ."""
    from lineage import verify as run

    report = run(_store(home))
    if format == Format.json:
        print(json.dumps(report.as_dict()))
    elif report.ok:
        out.print(f"ok: {report.segments} segment(s), {report.edges} edge(s), head {report.head}")
    else:
        err.print(f"[red]tampered:[/red] {report.problems[0]}", highlight=False, soft_wrap=True)
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def erase(subject: str = typer.Option(..., "--subject", help="The data subject's id."),
          home: Optional[Path] = HOME, format: Format = FORMAT):
    """Erase a subject from landing and the destination, leave tombstones, print the recipients to notify."""
    from lineage import UnknownRef, erase_subject

    try:
        result = erase_subject(_store(home), subject)
    except UnknownRef as exc:
        _fail(str(exc))
    _warn(result)
    if format == Format.json:
        print(json.dumps(result))
        return
    out.print(f"erased: {result['landing_rows']} landing row(s), {result['destination_rows']} destination row(s); "
              f"{result['tombstones']} tombstone(s) ({result['erase_id']})")
    out.print("notify: " + (", ".join(f"{r['destination']}/{r['entity']}" for r in result["recipients"]) or "none"))
