"""`weftline demo`: the whole loop on embedded defaults, end to end, with no server.

1. Prepare drops in ``$WEFTLINE_HOME``: the seeded SQLite ERP, generated web events, the Contact Lens
   and FHIR samples shipped in mappings/samples/.
2. Run one integration per source system (read → land → map → load → lineage), map the
   shipped sample files with `run SPEC --input FILE` (a backfill), and run the MQTT stream worker
   against a simulated fleet on a local broker: a device drops off and a service ticket opens.
3. Check the lineage (verify), trace a lead back to its source, export one subject (JSON + PDF).
4. Print what was read / loaded / quarantined / filtered per spec, and where everything is.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from rich.console import Console
from rich.table import Table

from connectors.base.home import ENV_HOME, Home

ROOT = Path(__file__).resolve().parent.parent
MAPPINGS = ROOT / "mappings"
SAMPLES = MAPPINGS / "samples"
INTEGRATIONS = ("erp_orders", "web_leads", "calls", "his_prescriptions")
FILE_RUNS = (("device_status_to_ticket", "device_status.jsonl"), ("web_activity_to_lead", "web_form_submissions.jsonl"))


def prepare_drops(home: Home) -> None:
    from connectors.erp_sql.sample.seed import ensure_sample_erp
    from connectors.web_analytics.generator import generate_events, write_jsonl

    ensure_sample_erp(home)
    drops = home.root / "drops"
    web = drops / "web"
    web.mkdir(parents=True, exist_ok=True)
    if not any(web.glob("*.jsonl")):
        write_jsonl(generate_events(400, seed=1), web / "events-0001.jsonl")
    for name, src in (("calls", SAMPLES / "call_analytics"), ("fhir", SAMPLES / "fhir")):
        dst = drops / name
        dst.mkdir(parents=True, exist_ok=True)
        for f in src.glob("*.json"):
            if not (dst / f.name).exists():
                shutil.copy2(f, dst / f.name)


def _summary(reports, console: Console) -> None:
    t = Table(title="weftline demo: what each spec did")
    nums = ("read", "mapped", "quarantined", "filtered", "loaded")
    for c in ("spec", "target") + nums + ("ok",):
        t.add_column(c, justify="right" if c in nums else "left", no_wrap=c in ("spec", "target"))
    for r in reports:
        for tc in r.targets:
            read = r.read if r.absorbed else tc.read + r.rejected  # stateful: events in, incidents mapped
            t.add_row(r.spec, tc.entity, str(read), str(tc.mapped), str(tc.quarantined + r.rejected),
                      str(tc.filtered), str(tc.loaded), "✓" if r.reconciles else "✗")
    console.print(t)
    console.print("read = mapped + quarantined + filtered (stateful specs: events read become incidents, then mapped);\n"
                  "loaded < mapped where several rows upsert the same key")


def _lineage(home: Home, console: Console) -> None:
    import json

    import duckdb

    from lineage import collect_subject, open_store, trace, verify
    from lineage.export.render_pdf import render_pdf

    store = open_store(home)
    report = verify(store)
    console.print(f"lineage verify: {'ok' if report.ok else 'TAMPERED'} — {report.segments} segment(s), {report.edges} edge(s)")
    con = duckdb.connect(str(home.crm_duckdb), read_only=True)
    try:
        rows = con.sql("SELECT external_id, email FROM crm.crm.lead ORDER BY external_id LIMIT 1").fetchall()
    finally:
        con.close()
    if not rows:
        return
    key, email = rows[0]
    chain = trace(store, f"lead:{key}#priority")
    sources = [c["source"] for c in chain.get("chains", []) if c.get("source")]
    where = ", ".join(f"{s['source_system']}.{s['stream']}:{s['source_key']}" for s in sources)
    console.print(f"trace lead:{key}#priority → {where or 'no source found'}; "
                  f"`weftline lineage trace lead:{key}#priority` shows the chain")
    exports = home.root / "exports"
    exports.mkdir(exist_ok=True)
    doc = collect_subject(store, email)
    (exports / "subject.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False, default=str))
    render_pdf(doc, exports / "subject.pdf", requested_id=email)
    console.print(f"subject export of one lead's contact: {exports / 'subject.json'} and {exports / 'subject.pdf'}")


def run_demo(home_dir: Path | None, console: Console) -> list:
    from weftline.integrations import run_integration
    from weftline.runner import run_file

    if home_dir is not None:
        os.environ[ENV_HOME] = str(home_dir)
    home = Home()
    console.print(f"WEFTLINE_HOME = {home.root}")
    prepare_drops(home)
    reports = []
    for name in INTEGRATIONS:
        with console.status(f"integration {name} …"):
            reports += [r for r in run_integration(name, home, MAPPINGS) if r.targets]
    for spec, sample in FILE_RUNS:
        reports.append(run_file(MAPPINGS / f"{spec}.yaml", SAMPLES / sample, home))
    from weftline.demo_fleet import run_fleet_demo
    from weftline.demo_his import run_mllp_demo

    console.rule("HL7 v2 over MLLP")
    reports += [r for r in run_mllp_demo(home, MAPPINGS, console) if r.targets]

    console.rule("IoT fleet over MQTT")
    from connectors.errors import FatalError

    try:
        fleet = run_fleet_demo(home, MAPPINGS, console)
        reports += [r for r in fleet["reports"] if r.targets and (r.read or r.rejected)]
    except FatalError as err:  # no broker can be started here (no mosquitto binary): say so, go on
        console.print(f"[yellow]IoT fleet part skipped:[/yellow] {err}")
    console.rule("summary")
    _summary(reports, console)
    _lineage(home, console)
    console.print(f"CRM tables:  {home.crm_duckdb} (schema crm; `duckdb {home.crm_duckdb}`)")
    console.print(f"landing:     {home.landing}")
    console.print(f"quarantine:  {home.quarantine}")
    console.print(f"lineage:     {home.lineage}  (weftline lineage verify | trace | impact | export)")
    return reports
