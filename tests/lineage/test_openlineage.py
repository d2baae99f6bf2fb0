"""OpenLineage run events from real specs, over the file transport and HTTP to a local server.

The HTTP endpoint is a ``http.server`` on loopback standing in for Marquez: it records what
it is sent (path, headers, body) and answers like Marquez's ``POST /api/v1/lineage`` (201),
or with 500 when told to fail.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from connectors.base.home import Home
from lineage import openlineage as ol
from transforms import load_spec, parse_spec

REPO = Path(__file__).resolve().parents[2]
WEB_SPEC = REPO / "mappings" / "web_activity_to_lead.yaml"

# A legal spec (schema-checked below) with several targets, a variant, a lookup and masking.
MULTI = """
mapping: order_to_account_and_activity
version: 2
source: {connector: erp_sql, stream: orders}
subject: customer_email
when: status != 'draft'
targets:
  - entity: account
    key: [external_id]
    fields:
      external_id: {expr: "'ERP-' || customer_id"}
      region: {expr: "lookup('country_regions', country, 'region')"}
      email_hash: {expr: "hash(customer_email)"}
    variants:
      - name: vip
        when: "total > 10000"
        fields:
          tier: {expr: "'gold'"}
          region: {from: vip_region}
  - entity: activity
    key: [order_ref]
    when: total > 0
    fields:
      order_ref: order_id
      amount: {from: total, type: float}
      contact: {from: customer_email, apply: [trim, {mask: 3}]}
"""


@pytest.fixture
def web_spec() -> dict:
    return load_spec(WEB_SPEC).raw


@pytest.fixture
def multi_spec() -> dict:
    return parse_spec(MULTI).raw  # raises SpecInvalid if the mapping schema does not accept it


def _facets_everywhere(event: dict):
    yield from event["run"]["facets"].items()
    yield from event["job"]["facets"].items()
    for ds in event["inputs"] + event["outputs"]:
        yield from ds.get("facets", {}).items()
        yield from ds.get("outputFacets", {}).items()


def _inputs_of(event: dict, entity: str) -> dict[str, list[tuple]]:
    out = next(o for o in event["outputs"] if o["name"] == f"crm.{entity}")
    fields = out["facets"]["columnLineage"]["fields"]
    return {f: sorted((i["namespace"], i["name"], i["field"], i["transformations"][0]["type"],
                       i["transformations"][0]["subtype"], i["transformations"][0]["masking"])
                      for i in v["inputFields"]) for f, v in fields.items()}


def test_event_from_the_web_spec(web_spec):
    spec = load_spec(WEB_SPEC)
    run_id = ol.run_id_for("20261124T080000000000Z-5e1f0a2b")
    ev = ol.run_event("START", run_id, "web_activity_to_lead", [web_spec])
    assert ev["eventType"] == "START" and ev["run"]["runId"] == run_id and uuid.UUID(run_id)
    assert ev["eventTime"].endswith("Z") and ev["producer"].startswith("https://")
    assert ev["schemaURL"].endswith("OpenLineage.json#/$defs/RunEvent")
    assert ev["job"]["namespace"] == "weftline" and ev["job"]["name"] == "web_activity_to_lead"
    assert ev["job"]["facets"]["weftline_specs"]["specs"] == [
        {"mapping": "web_activity_to_lead", "version": spec.version, "versionHash": spec.version_hash}]
    (inp,) = ev["inputs"]
    assert (inp["namespace"], inp["name"]) == ("weftline://web_analytics", "form_submissions")
    declared = {f["name"]: f.get("type") for f in inp["facets"]["schema"]["fields"]}
    assert declared["submission_id"] == "string"  # from schemas/sources/web_analytics.form_submissions.json
    (out,) = ev["outputs"]
    assert (out["namespace"], out["name"]) == ("weftline://crm", "crm.lead")
    assert {"name": "score", "type": "float"} in out["facets"]["schema"]["fields"]
    src = ("weftline://web_analytics", "form_submissions")
    assert _inputs_of(ev, "lead") == {
        "external_id": [(*src, "submission_id", "DIRECT", "TRANSFORMATION", False)],
        "email": [(*src, "contact.email", "DIRECT", "TRANSFORMATION", False)],
        # the base map and the VIP variant's map both read activity.level; the variant's condition reads the company
        "priority": [(*src, "activity.level", "DIRECT", "TRANSFORMATION", False)] * 2
                    + [(*src, "contact.company", "INDIRECT", "CONDITIONAL", False)],
        "score": [(*src, "engagement_score", "DIRECT", "TRANSFORMATION", False)],
        "owner": [("weftline://reference", "vip_accounts", "account_owner", "DIRECT", "TRANSFORMATION", False),
                  (*src, "contact.company", "DIRECT", "TRANSFORMATION", False)],
    }
    email = out["facets"]["columnLineage"]["fields"]["email"]["inputFields"][0]["transformations"][0]
    assert email["description"] == "from contact.email; apply trim, lower"
    (flt,) = out["facets"]["columnLineage"]["dataset"]
    assert (flt["field"], flt["transformations"][0]["subtype"]) == ("activity.level", "FILTER")
    for name, facet in _facets_everywhere(ev):
        assert facet["_producer"] and facet["_schemaURL"].startswith("https://"), name


def test_several_targets_variants_lookups_and_masking(multi_spec):
    ev = ol.run_event("START", ol.run_id_for("L2"), "erp_orders", [multi_spec])
    assert sorted(o["name"] for o in ev["outputs"]) == ["crm.account", "crm.activity"]
    src = ("weftline://erp_sql", "orders")
    account = _inputs_of(ev, "account")
    assert account["external_id"] == [(*src, "customer_id", "DIRECT", "TRANSFORMATION", False)]
    assert account["email_hash"] == [(*src, "customer_email", "DIRECT", "TRANSFORMATION", True)]
    assert account["region"] == sorted([
        (*src, "country", "DIRECT", "TRANSFORMATION", False),
        ("weftline://reference", "country_regions", "region", "DIRECT", "TRANSFORMATION", False),
        (*src, "vip_region", "DIRECT", "IDENTITY", False),
        (*src, "total", "INDIRECT", "CONDITIONAL", False)])
    assert account["tier"] == [(*src, "total", "INDIRECT", "CONDITIONAL", False)]
    activity = _inputs_of(ev, "activity")
    assert activity["order_ref"] == [(*src, "order_id", "DIRECT", "IDENTITY", False)]
    assert activity["contact"] == [(*src, "customer_email", "DIRECT", "TRANSFORMATION", True)]
    act = next(o for o in ev["outputs"] if o["name"] == "crm.activity")
    assert sorted(d["field"] for d in act["facets"]["columnLineage"]["dataset"]) == ["status", "total"]
    # the input schema facet comes from schemas/sources/erp_sql.orders.json when it exists, else the fields read
    names = {f["name"] for f in ev["inputs"][0]["facets"]["schema"]["fields"]}
    declared = (REPO / "schemas" / "sources" / "erp_sql.orders.json").exists()
    assert names == (set(json.loads((REPO / "schemas/sources/erp_sql.orders.json").read_text())["properties"])
                     if declared else {"customer_id", "country", "customer_email", "vip_region", "total", "order_id"})


def test_file_transport_start_complete_fail(tmp_path, web_spec, monkeypatch):
    monkeypatch.delenv(ol.ENV_URL, raising=False)
    monkeypatch.setenv("WEFTLINE_HOME", str(tmp_path / "home"))
    run_id = ol.run_id_for("L3")
    ol.emit_run("START", run_id, "web_activity_to_lead", [web_spec], load_id="L3")
    counts = {"lead": {"read": 10, "mapped": 7, "quarantined": 2, "filtered": 1}}
    ol.emit_run("COMPLETE", run_id, "web_activity_to_lead", [web_spec], load_id="L3", counts=counts)
    ol.emit_run("FAIL", ol.run_id_for("L4"), "web_activity_to_lead", [web_spec], error=RuntimeError("load failed"))
    lines = (tmp_path / "home" / "openlineage" / "events.jsonl").read_text().splitlines()
    events = [json.loads(x) for x in lines]
    assert [e["eventType"] for e in events] == ["START", "COMPLETE", "FAIL"]
    assert events[0]["run"]["runId"] == events[1]["run"]["runId"] != events[2]["run"]["runId"]
    assert events[1]["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] == 7
    run_facet = events[1]["run"]["facets"]["weftline_run"]
    assert (run_facet["loadId"], run_facet["counts"]) == ("L3", counts)
    assert events[2]["run"]["facets"]["errorMessage"]["message"] == "load failed"


def _append_many(path: str, tag: str) -> None:
    for i in range(200):
        ol.append_jsonl({"tag": tag, "i": i, "pad": "x" * 3000}, Path(path))


def test_concurrent_appends_keep_whole_lines(tmp_path):
    path = tmp_path / "events.jsonl"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(str(path), t)) for t in "ab"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    assert sorted((r["tag"], r["i"]) for r in rows) == sorted((t, i) for t in "ab" for i in range(200))


class _Marquez:
    """A loopback HTTP server recording POSTs; ``status`` is what it answers."""

    def __init__(self):
        self.received: list[tuple[str, dict, dict]] = []
        self.status = 201
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append((self.path, dict(self.headers), json.loads(body)))
                self.send_response(outer.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def marquez():
    server = _Marquez()
    yield server
    server.close()


def test_http_transport_posts_to_the_lineage_endpoint(tmp_path, web_spec, marquez, monkeypatch):
    monkeypatch.setenv(ol.ENV_URL, marquez.url + "/")
    monkeypatch.setenv(ol.ENV_API_KEY, "s3cret-token")
    home = Home(tmp_path)
    sent = ol.emit_run("START", ol.run_id_for("L5"), "web_activity_to_lead", [web_spec], home=home)
    ((path, headers, body),) = marquez.received
    assert path == "/api/v1/lineage" and body == sent
    assert headers["Content-Type"] == "application/json" and headers["Authorization"] == "Bearer s3cret-token"
    assert not (tmp_path / "openlineage").exists()  # HTTP replaces the file transport
    assert "s3cret-token" not in json.dumps(sent)


def test_refused_events_are_kept_and_redelivered(tmp_path, web_spec, marquez, monkeypatch, caplog):
    monkeypatch.delenv(ol.ENV_API_KEY, raising=False)
    home = Home(tmp_path)
    marquez.status = 500
    with caplog.at_level(logging.WARNING, logger="lineage.openlineage"):
        ev = ol.emit_run("COMPLETE", ol.run_id_for("L6"), "web_activity_to_lead", [web_spec], home=home,
                         url=marquez.url)
    assert "HTTP 500" in caplog.text and ev["run"]["runId"] in caplog.text
    kept = [json.loads(x) for x in ol.undelivered_file(home).read_text().splitlines()]
    assert kept == [ev]
    marquez.status = 201
    assert ol.redeliver(home, marquez.url) == (1, 0)
    assert [b for _, _, b in marquez.received] == [ev, ev]  # the refused try, then the redelivery
    assert not ol.undelivered_file(home).exists()


def test_unreachable_endpoint_keeps_the_event(tmp_path, web_spec):
    home = Home(tmp_path)
    ol.emit_run("START", ol.run_id_for("L7"), "j", [web_spec], home=home, url="http://127.0.0.1:9", timeout=1)
    assert len(ol.undelivered_file(home).read_text().splitlines()) == 1


def test_destination_namespace_is_configurable(web_spec):
    ev = ol.run_event("START", ol.run_id_for("L8"), "j", [web_spec], crm_namespace="postgres://127.0.0.1:5432")
    assert [(o["namespace"], o["name"]) for o in ev["outputs"]] == [("postgres://127.0.0.1:5432", "crm.lead")]


def test_run_id_must_be_a_uuid(web_spec):
    with pytest.raises(ValueError):
        ol.run_event("START", "20261124T080000000000Z-5e1f0a2b", "j", [web_spec])
