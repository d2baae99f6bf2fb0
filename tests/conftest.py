"""Shared fixtures: an isolated WEFTLINE_HOME per test, paths of the shared sample data."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture
def home(tmp_path, monkeypatch):
    from connectors.base.home import Home

    monkeypatch.setenv("WEFTLINE_HOME", str(tmp_path / "wl"))
    monkeypatch.setenv("WEFTLINE_SUBJECT_KEY", "test-subject-key")
    monkeypatch.delenv("WEFTLINE_CRM_URL", raising=False)
    monkeypatch.delenv("WEFTLINE_LINEAGE_URL", raising=False)
    return Home(tmp_path / "wl")


@pytest.fixture
def shared_data() -> Path:
    assert SHARED_DATA.is_dir(), f"the shared sample data is missing at {SHARED_DATA}"
    return SHARED_DATA
