"""`weftline demo` end to end on embedded defaults (a local Mosquitto is started by the demo itself)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_every_source_end_to_end(tmp_path):
    home = tmp_path / "demo"
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin", "COLUMNS": "160", "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", "from weftline.cli import main; main()", "demo", "--home", str(home)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    # every spec row of the summary reconciles, and none failed
    rows = [line for line in out.splitlines() if line.startswith("│")]
    assert len(rows) >= 9 and all("✓" in r for r in rows), out
    fleet = out[out.find("IoT fleet"):][:3000]  # on failure, the fleet part of the output in full
    assert "ACK AA×3, AE×1" in out, out[:3000]  # MLLP: three sample messages landed and acked, a broken one refused
    assert "acme-pump-03 closed" in out, fleet  # the fleet's dropped device opened a ticket that closed when it came back
    assert "device_fault_spike: device acme-pump-01 open (3 faults in the hour)" in out, fleet  # the fault-rate rule fired
    assert "lineage verify: ok" in out
    con = duckdb.connect(str(home / "crm.duckdb"), read_only=True)
    try:
        counts = {t: con.sql(f"SELECT count(*) FROM crm.crm.{t}").fetchall()[0][0]
                  for t in ("lead", "account_order", "account", "interaction", "service_ticket", "contact")}
    finally:
        con.close()
    assert all(n > 0 for n in counts.values()), counts
    export = json.loads((home / "exports" / "subject.json").read_text())
    assert export["crm_records"] and export["steps"]
    assert (home / "exports" / "subject.pdf").read_bytes().startswith(b"%PDF")
