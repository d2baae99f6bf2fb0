"""Landing retention (connectors/retention.py, docs/adr/0287): what goes, what stays and why, on real runs.

Ageing a load is done by setting its parts' modification times back (``os.utime``): the policy reads
the newest part's time, so this is the same state a month-old landing zone is in.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jsonschema
import pyarrow as pa
import pytest
from pypdf import PdfReader

from connectors.errors import ConfigError
from connectors.integration import load_integration
from connectors.iot_mqtt.consumers import mark_done, offsets, pending, through
from connectors.landing import land
from connectors.load_status import read_status, set_status
from connectors.retention import TRASH, parse_keep, prune, pruned_loads
from connectors.web_analytics.generator import generate_events, write_jsonl
from weftline.integrations import pending_loads, run_integration

from tests.mapping_copies import copy_mappings

ROOT = Path(__file__).resolve().parents[2]
EXPORT_SCHEMA = json.loads((ROOT / "schemas/lineage-export.schema.json").read_text())
DAY = 86_400


def age(folder: Path, seconds: float) -> None:
    """Set every part of a load folder ``seconds`` into the past."""
    t = time.time() - seconds
    for p in folder.glob("part-*.parquet"):
        os.utime(p, (t, t))


def loads_of(home, system: str, stream: str) -> list[str]:
    root = home.landing / system / stream
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def web_mappings(tmp_path: Path, keep: str) -> Path:
    return copy_mappings(tmp_path, "web_leads", lambda doc: doc.__setitem__("landing", {"keep": keep}))


def first_email(path: Path) -> str:
    for line in path.read_text().splitlines():
        e = json.loads(line)
        if e.get("event") == "form_submitted" and e["context"]["traits"].get("activity_level"):
            return e["context"]["traits"]["email"]
    raise AssertionError("no form submission with an email in the drop")


def test_a_sync_prunes_its_old_finished_loads_and_the_export_says_so(home, tmp_path):
    """Two real `weftline run web_leads` syncs, the first load aged past `keep: 1d`: the second run
    removes it (logged, status gone), keeps its own; lineage verifies; the export of a subject of the
    first drop lists the source records as past retention, valid against the schema and in the PDF."""
    from lineage import open_store
    from lineage.export.collect import collect_subject
    from lineage.export.render_pdf import render_pdf
    from lineage.verify import verify

    mappings = web_mappings(tmp_path, "1d")
    drops = home.root / "drops" / "web"
    drops.mkdir(parents=True)
    write_jsonl(generate_events(300, seed=1), drops / "events-0001.jsonl")
    first = [r for r in run_integration("web_leads", home, mappings) if r.targets]
    assert first and first[0].targets[0].loaded > 0
    (old,) = loads_of(home, "web_analytics", "form_submissions")
    age(home.landing / "web_analytics" / "form_submissions" / old, 2 * DAY)
    email = first_email(drops / "events-0001.jsonl")

    write_jsonl(generate_events(50, seed=2, start=datetime(2026, 12, 1, tzinfo=timezone.utc)),
                drops / "events-0002.jsonl")
    second = [r for r in run_integration("web_leads", home, mappings) if r.targets]
    assert second and second[0].load_id != old
    assert loads_of(home, "web_analytics", "form_submissions") == [second[0].load_id]
    log = pruned_loads(home, "web_analytics", "form_submissions")
    assert list(log) == [old] and log[old]["parts"] >= 1 and log[old]["bytes"] > 0
    assert log[old]["keep_seconds"] == DAY
    assert read_status(home, old) is None
    assert read_status(home, second[0].load_id)["status"] == "loaded"  # young: its status stays
    assert pending_loads(home, "web_leads") == []

    store = open_store(home)
    report = verify(store)
    assert report.ok and report.edges > 0
    doc = collect_subject(store, email)
    jsonschema.Draft202012Validator(EXPORT_SCHEMA).validate(doc)
    from_old = [r for r in doc["source_records"] if r["load_id"] == old]
    assert from_old and all(r["payload"] is None and r["payload_pruned_at"] for r in from_old)
    pdf = tmp_path / "subject.pdf"
    render_pdf(doc, pdf)
    text = " ".join(p.extract_text() for p in PdfReader(pdf).pages)
    assert "removed by the landing retention policy" in " ".join(text.split())


def test_a_landed_load_that_is_not_loaded_stays_however_old(home, tmp_path):
    """A crash left load A landed (status ``landed``): the next run finishes it from these very files."""
    mappings = web_mappings(tmp_path, "1d")
    for lid in ("20261101T000000000000Z-0000000a", "20261102T000000000000Z-0000000b", "20261103T000000000000Z-0000000c"):
        land(pa.table({"a": [1]}), home, "web_analytics", "form_submissions", lid)
        age(home.landing / "web_analytics" / "form_submissions" / lid, 10 * DAY)
    a, b, c = loads_of(home, "web_analytics", "form_submissions")
    for lid, status in ((a, "landed"), (b, "loaded")):
        set_status(home, lid, status=status, integration="web_leads")
    keep = load_integration("web_leads", mappings, home=home).landing_keep
    r = prune(home, "web_analytics", "form_submissions", keep)
    assert r.loads == [b] and loads_of(home, "web_analytics", "form_submissions") == [a, c]
    assert r.held == {a: "its load is landed, not loaded"}


def test_every_consumer_of_a_pushed_stream_must_be_done(home):
    """MQTT-style loads (no status file): a lagging consumer holds its load back, by name; the others go;
    each consumer forgets the loads that are gone on its own next pass; no consumer at all: nothing goes."""
    lids = [f"2026110{i}T000000000000Z-0000000{i}" for i in range(1, 5)]
    for lid in lids:
        for _ in range(2):
            land(pa.table({"v": [1]}), home, "iot_mqtt", "telemetry", lid)
    root = home.landing / "iot_mqtt" / "telemetry"
    for lid in lids:
        age(root / lid, 40 * DAY)
    assert prune(home, "iot_mqtt", "telemetry", parse_keep("30d")).held[lids[0]] == "no consumer reads this stream"

    for lid in lids:
        mark_done(home, "iot_mqtt", "telemetry", "worker", lid, root / lid / "part-00001.parquet")
    for lid in lids[1:]:
        mark_done(home, "iot_mqtt", "telemetry", "airflow", lid, root / lid / "part-00001.parquet")
    mark_done(home, "iot_mqtt", "telemetry", "airflow", lids[0], root / lids[0] / "part-00000.parquet")  # 1 of 2

    r = prune(home, "iot_mqtt", "telemetry", parse_keep("30d"))
    assert r.loads == lids[1:3] and r.parts == 4  # lids[3] is the newest load: a writer may extend it
    assert r.held == {lids[0]: "consumer(s) airflow have not processed all its parts"}
    assert loads_of(home, "iot_mqtt", "telemetry") == [lids[0], lids[3]]

    assert set(offsets(home, "iot_mqtt", "telemetry", "airflow")) == set(lids)  # not written by prune
    assert [p.name for _, p in pending(home, "iot_mqtt", "telemetry", "airflow")] == ["part-00001.parquet"]
    assert set(offsets(home, "iot_mqtt", "telemetry", "airflow")) == {lids[0], lids[3]}  # forgot the gone ones
    mark_done(home, "iot_mqtt", "telemetry", "airflow", lids[0], root / lids[0] / "part-00001.parquet")
    assert prune(home, "iot_mqtt", "telemetry", parse_keep("30d")).loads == [lids[0]]
    assert pending(home, "iot_mqtt", "telemetry", "worker") == []
    # the worker's cursor: the gone loads forgotten, the last one (done, idle for 40 days: sealed) folded
    assert offsets(home, "iot_mqtt", "telemetry", "worker") == {}
    assert through(home, "iot_mqtt", "telemetry", "worker") == lids[3]


def test_a_young_load_stays_and_stops_the_scan(home):
    lids = ["20261101T000000000000Z-00000001", "20261102T000000000000Z-00000002", "20261103T000000000000Z-00000003"]
    root = home.landing / "iot_mqtt" / "s"
    for lid in lids:
        mark_done(home, "iot_mqtt", "s", "w", lid, land(pa.table({"v": [1]}), home, "iot_mqtt", "s", lid))
    age(root / lids[0], 3 * DAY)  # lids[1] is young (just landed): it and everything after it stay
    age(root / lids[2], 3 * DAY)
    r = prune(home, "iot_mqtt", "s", parse_keep("2d"))
    assert r.loads == [lids[0]] and loads_of(home, "iot_mqtt", "s") == lids[1:]


def test_leftovers_of_a_crash_mid_delete_and_a_torn_log_line(home):
    """A folder already renamed out of the stream (the crash came before it was removed) goes on the next
    prune; a log line cut short by a crash is skipped, the load is logged again when it is pruned again."""
    left = home.landing / TRASH / "iot_mqtt.s.20261101T000000000000Z-00000001"
    left.mkdir(parents=True)
    (left / "part-00000.parquet").write_bytes(b"x")
    lids = ["20261102T000000000000Z-00000002", "20261103T000000000000Z-00000003"]
    for lid in lids:
        mark_done(home, "iot_mqtt", "s", "w", lid, land(pa.table({"v": [1]}), home, "iot_mqtt", "s", lid))
    age(home.landing / "iot_mqtt" / "s" / lids[0], 3 * DAY)
    log_dir = home.state / "retention" / "iot_mqtt" / "s"
    log_dir.mkdir(parents=True)
    (log_dir / "2026-11.jsonl").write_text('{"load_id": "20261101T000000000000Z-00000001", "pruned_at": "2026-11-30T00:00:00+00:00"}\n{"load_id": "2026')
    assert prune(home, "iot_mqtt", "s", parse_keep("1d")).loads == [lids[0]]
    assert not left.exists() and list((home.landing / TRASH).iterdir()) == []
    assert set(pruned_loads(home, "iot_mqtt", "s")) == {"20261101T000000000000Z-00000001", lids[0]}


def test_the_stream_workers_processing_step_prunes(home, tmp_path):
    """`weftline stream`'s processing step (weftline.runner.stream_processor) applies the integration's
    landing.keep after a pass: an old load every consumer did is removed, the newest stays."""
    from weftline.runner import stream_processor

    d = copy_mappings(tmp_path, "iot_fleet", lambda doc: doc.__setitem__("landing", {"keep": "12h"}))
    integ = load_integration("iot_fleet", d, home=home)
    lids = ["20261101T000000000000Z-00000001", "20261102T000000000000Z-00000002"]
    for lid in lids:
        mark_done(home, "iot_mqtt", "device_status", "stream-worker", lid,
                  land(pa.table({"v": [1]}), home, "iot_mqtt", "device_status", lid))
    age(home.landing / "iot_mqtt" / "device_status" / lids[0], DAY)
    process = stream_processor(integ, home)
    try:
        assert process({}) == []
    finally:
        process.close()
    assert loads_of(home, "iot_mqtt", "device_status") == [lids[1]]
    assert list(pruned_loads(home, "iot_mqtt", "device_status")) == [lids[0]]


def test_keep_must_be_a_period(tmp_path, home):
    d = copy_mappings(tmp_path, "web_leads", lambda doc: doc.__setitem__("landing", {"keep": "1w"}))
    with pytest.raises(ConfigError, match=r"web_leads.integration.yaml:\d+: landing/keep"):
        load_integration("web_leads", d, home=home)
    assert load_integration("erp_orders", d, home=home).landing_keep is None
    assert parse_keep("36h") == timedelta(hours=36)
