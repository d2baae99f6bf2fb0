"""Fixtures for the HIS connector tests: the real sample data, in place."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
HL7_DIR = (DATA / "hl7").resolve()
FHIR_DIR = (DATA / "fhir").resolve()


@pytest.fixture(scope="session")
def hl7_dir() -> Path:
    assert HL7_DIR.is_dir(), f"sample data missing: {HL7_DIR}"
    return HL7_DIR


@pytest.fixture(scope="session")
def fhir_dir() -> Path:
    assert FHIR_DIR.is_dir(), f"sample data missing: {FHIR_DIR}"
    return FHIR_DIR


@pytest.fixture
def sample_resources(fhir_dir) -> list[dict]:
    import json

    return [json.loads(p.read_text()) for p in sorted(fhir_dir.glob("*.json"))]


@pytest.fixture
def fhir_server(sample_resources):
    from tests.connectors.his.fhir_server import FhirServer

    with FhirServer(sample_resources) as server:
        yield server
