"""Every spec in mappings/ validates, has a test file beside it, and its cases pass (as `weftline test` runs them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from transforms import load_spec
from transforms.spec_tests import discover, run_spec_tests
from transforms.spec_tests import cases_file_for as spec_test_file

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
SPECS = discover([MAPPINGS])


def test_the_mission_specs_are_there():
    names = {p.stem for p in SPECS}
    assert {"web_activity_to_lead", "call_to_interaction", "erp_order_to_account", "device_status_to_ticket",
            "his_prescription_to_interaction"} <= names


@pytest.mark.parametrize("spec", SPECS, ids=[p.stem for p in SPECS])
def test_spec_validates_and_its_cases_pass(spec):
    load_spec(spec)
    assert spec_test_file(spec).exists(), f"{spec.name} has no test file beside it"
    results = run_spec_tests(spec)
    assert results, "no cases"
    failed = [f"{r.title}: {'; '.join(r.problems)}" for r in results if not r.ok]
    assert not failed, "\n".join(failed)
