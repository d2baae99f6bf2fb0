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
