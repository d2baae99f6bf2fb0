"""Load status files (connectors/load_status.py): a run reads only the pending ones; old homes migrate."""

from __future__ import annotations

import json
from pathlib import Path

from connectors.erp_sql.sample.seed import ensure_sample_erp
from connectors.load_status import pending, read_status, set_status
from weftline.integrations import run_integration

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"


def test_a_committed_load_leaves_the_pending_folder(home):
    ensure_sample_erp(home)
    reports = [r for r in run_integration("erp_orders", home, MAPPINGS) if r.targets]
    lid = reports[0].load_id
    assert list((home.state / "loads").glob("*.json")) == []  # nothing pending is read by the next run
    done = json.loads((home.state / "loads" / "done" / f"{lid}.json").read_text())
    assert done["status"] == "loaded" and done["read"] == reports[0].read


def test_old_style_and_crash_left_files_count_as_done_and_move(home):
    d = home.state / "loads"
    d.mkdir(parents=True)
    (d / "L1.json").write_text(json.dumps({"load_id": "L1", "integration": "erp", "status": "loaded"}))  # before done/
    set_status(home, "L2", integration="erp", status="landed", read=1, rejected=0)
    set_status(home, "L3", integration="erp", status="landed", read=1, rejected=0)
    (d / "done").mkdir(exist_ok=True)
    (d / "done" / "L3.json").write_text(json.dumps({"load_id": "L3", "integration": "erp", "status": "loaded"}))
    assert [x["load_id"] for x in pending(home, "erp")] == ["L2"]  # L3: a crash between its two writes
    assert sorted(p.name for p in d.glob("*.json")) == ["L2.json"]
    assert read_status(home, "L1")["status"] == read_status(home, "L3")["status"] == "loaded"
    assert pending(home, "other") == [] and read_status(home, "L9") is None
