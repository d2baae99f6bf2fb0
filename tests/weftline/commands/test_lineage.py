"""``weftline lineage …`` through typer's runner, on a store written by a real run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from weftline.commands.lineage import app

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "lineage"))
from lineage_pipeline import run_pipeline  # noqa: E402

runner = CliRunner()


@pytest.fixture
def home(tmp_path, monkeypatch):
    from connectors.base.home import Home
    from lineage import open_store

    monkeypatch.delenv("WEFTLINE_SUBJECT_KEY", raising=False)
    monkeypatch.delenv("WEFTLINE_LINEAGE_URL", raising=False)
    h = Home(tmp_path / "home")
    run_pipeline(open_store(h), "L1")
    monkeypatch.setenv("WEFTLINE_HOME", str(h.root))
    monkeypatch.setenv("COLUMNS", "240")
    return h


def test_trace_json_and_table(home):
    r = runner.invoke(app, ["trace", "lead:WEB-2#priority", "--format", "json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["chains"][0]["source"]["source_key"] == "2" and doc["chains"][0]["field"]["sources"] == ["level"]
    r = runner.invoke(app, ["trace", "lead:WEB-2"])
    assert r.exit_code == 0 and "web_analytics.form_submissions:2" in r.stdout


def test_impact_prints_recipients(home):
    r = runner.invoke(app, ["impact", "web_analytics.form_submissions:1"])
    assert r.exit_code == 0 and "recipients: duckdb/lead" in r.stdout


@pytest.mark.parametrize("args", [["trace", "lead:NOPE"], ["impact", "bad-ref"],
                                  ["erase", "--subject", "nobody@example.org"]])
def test_unknown_refs_exit_1_with_a_message(home, args):
    r = runner.invoke(app, args)
    assert r.exit_code == 1 and "error:" in r.output and "Traceback" not in r.output


def test_export_json_and_pdf(home, tmp_path):
    j, p = tmp_path / "ann.json", tmp_path / "ann.pdf"
    assert runner.invoke(app, ["export", "--subject", "ann@example.org", "--out", str(j)]).exit_code == 0
    assert len(json.loads(j.read_text())["source_records"]) == 2
    r = runner.invoke(app, ["export", "--subject", "ann@example.org", "--format", "pdf", "--out", str(p)])
    assert r.exit_code == 0, r.output
    assert p.read_bytes()[:5] == b"%PDF-"


def test_verify_then_tamper_then_erase(home):
    assert runner.invoke(app, ["verify"]).exit_code == 0
    r = runner.invoke(app, ["erase", "--subject", "ann@example.org"])
    assert r.exit_code == 0 and "notify: duckdb/lead" in r.stdout
    assert runner.invoke(app, ["verify", "--format", "json"]).exit_code == 0
    seg = sorted((home.lineage / "segments").glob("*.parquet"))[0]
    seg.unlink()
    r = runner.invoke(app, ["verify"])
    assert r.exit_code == 1 and seg.name in r.output and "missing" in r.output
