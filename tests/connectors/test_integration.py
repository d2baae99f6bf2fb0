"""Integration files: validation with file:line errors, secret references, {home}, masking."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from connectors.base.home import Home
from connectors.erp_sql.sample import create_sample_erp
from connectors.errors import ConfigError
from connectors.integration import load_integration, list_integrations

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"


def write(d: Path, name: str, text: str) -> Path:
    p = d / f"{name}.integration.yaml"
    p.write_text(text)
    return p


@pytest.fixture
def mdir(tmp_path: Path) -> Path:
    d = tmp_path / "mappings"
    d.mkdir()
    (d / "erp_order_to_account.yaml").write_text("mapping: erp_order_to_account\n")  # only its existence is checked
    return d


def test_the_shipped_erp_orders_integration_defaults_to_the_sample_erp(tmp_path, monkeypatch):
    monkeypatch.delenv("WEFTLINE_ERP_URL", raising=False)
    monkeypatch.delenv("WEFTLINE_CRM_URL", raising=False)
    home = Home(tmp_path)
    it = load_integration("erp_orders", MAPPINGS, home=home)  # its spec, erp_order_to_account.yaml, is beside it
    assert (it.name, it.connector, it.schedule) == ("erp_orders", "erp_sql", "*/5 * * * *")
    assert it.config["url"] == f"sqlite:///{tmp_path}/erp.sqlite"
    assert it.streams == {"orders": ("erp_order_to_account",)} and it.destination is None
    create_sample_erp(it.config["url"])
    batches = list(it.source(home).read("orders", {}))
    assert sum(b.table.num_rows for b in batches) == 300


def test_env_overrides_and_the_secret_never_shows(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("WEFTLINE_ERP_URL", "postgresql://erp:hunter2-secret@db.internal:5432/erp")
    monkeypatch.setenv("WEFTLINE_CRM_URL", "postgresql://crm:crm-secret@crm.internal/crm")
    caplog.set_level(logging.DEBUG)
    it = load_integration(MAPPINGS / "erp_orders.integration.yaml", home=Home(tmp_path), check_specs=False)
    assert it.config["url"] == "postgresql://erp:hunter2-secret@db.internal:5432/erp"
    assert it.destination == "postgresql://crm:crm-secret@crm.internal/crm"
    shown = repr(it) + str(it) + caplog.text + repr(it.source(Home(tmp_path)))
    assert "hunter2" not in shown and "crm-secret" not in shown
    assert "<env:WEFTLINE_ERP_URL>" in repr(it) and "<env:WEFTLINE_CRM_URL>" in repr(it)


def test_unset_env_without_default_is_a_config_error(mdir, monkeypatch, tmp_path):
    monkeypatch.delenv("WL_TEST_NOPE", raising=False)
    write(mdir, "x", "integration: x\nsource: {connector: erp_sql, config: {url: {env: WL_TEST_NOPE}}}\n"
                     "streams: {orders: {mappings: [erp_order_to_account]}}\n")
    with pytest.raises(ConfigError, match="WL_TEST_NOPE is not set"):
        load_integration("x", mdir, home=Home(tmp_path))
    # the DAG factory reads it without resolving anything
    raw = load_integration("x", mdir, home=Home(tmp_path), resolve_secrets=False)
    assert raw.config == {"url": {"env": "WL_TEST_NOPE"}}


def test_airflow_connection_reference(mdir, monkeypatch, tmp_path):
    """Resolved through Airflow's own secrets backends (an AIRFLOW_CONN_* environment variable here)."""
    monkeypatch.setenv("AIRFLOW_CONN_WL_ERP_TEST", "postgres://erp:af-secret-pw@pg.example:5432/erp")
    write(mdir, "af", "integration: af\nsource:\n  connector: erp_sql\n  config:\n"
                      "    url: {airflow_conn: wl_erp_test}\n    schema: {airflow_conn: wl_erp_test, field: login}\n"
                      "streams: {orders: {mappings: [erp_order_to_account]}}\n")
    it = load_integration("af", mdir, home=Home(tmp_path))
    assert it.config["url"] == "postgres://erp:af-secret-pw@pg.example:5432/erp"
    assert it.config["schema"] == "erp"
    assert "af-secret-pw" not in repr(it) and "<airflow_conn:wl_erp_test>" in repr(it)
    write(mdir, "af2", "integration: af2\nsource: {connector: erp_sql, config: {url: {airflow_conn: wl_missing}}}\n"
                       "streams: {orders: {mappings: [erp_order_to_account]}}\n")
    with pytest.raises(ConfigError, match="wl_missing"):
        load_integration("af2", mdir, home=Home(tmp_path))


def test_schema_errors_name_file_and_line(mdir, tmp_path):
    p = write(mdir, "bad", "integration: bad\nsource:\n  connector: erp_sql\n  config:\n"
                           "    url: {env: X, defualt: y}\nstreams: {orders: {mappings: []}}\nschedul: daily\n")
    with pytest.raises(ConfigError) as info:
        load_integration("bad", mdir, home=Home(tmp_path))
    msg = str(info.value)
    assert f"{p}:5: source/config/url:" in msg  # the misspelt reference
    assert f"{p}:6: streams/orders/mappings:" in msg
    assert f"{p}:1: (top): Additional properties are not allowed ('schedul'" in msg


def test_semantic_errors(mdir, tmp_path):
    write(mdir, "a", "integration: b\nsource: {connector: erp_sql}\nstreams: {orders: {mappings: [m]}}\n")
    with pytest.raises(ConfigError, match="named for 'a'"):
        load_integration("a", mdir, home=Home(tmp_path))
    write(mdir, "c", "integration: c\nsource: {connector: erp_sql}\nstreams: {invoices: {mappings: [m]}}\n")
    with pytest.raises(ConfigError, match=r"no stream\(s\) \['invoices'\]"):
        load_integration("c", mdir, home=Home(tmp_path))
    write(mdir, "d", "integration: d\nsource: {connector: sap_rfc}\nstreams: {orders: {mappings: [m]}}\n")
    with pytest.raises(ConfigError, match="unknown connector 'sap_rfc'"):
        load_integration("d", mdir, home=Home(tmp_path))
    write(mdir, "e", "integration: e\nsource: {connector: erp_sql}\nstreams: {orders: {mappings: [nowhere]}}\n")
    with pytest.raises(ConfigError, match="nowhere.yaml"):
        load_integration("e", mdir, home=Home(tmp_path))
    with pytest.raises(ConfigError, match="no integration 'zzz'.*known: a, c, d, e"):
        load_integration("zzz", mdir, home=Home(tmp_path))


def test_list_integrations(mdir):
    shutil.copy(MAPPINGS / "erp_orders.integration.yaml", mdir)
    write(mdir, "other", "integration: other\n")
    assert list_integrations(mdir) == ["erp_orders", "other"]
    assert "erp_orders" in list_integrations(MAPPINGS)
    assert list_integrations(mdir / "missing") == []
