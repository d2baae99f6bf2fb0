"""The user documentation cannot drift from the code.

- docs/functions.md is exactly what ``weftline functions`` generates from the registry.
- Every runnable spec in docs/mapping-language.md (a ```yaml block whose first line is
  ``# test: <name>``) loads, passes the static checks, and passes the cases given in the
  block that starts with ``# cases: <name>``; every other ```yaml block is valid YAML.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from transforms import load_spec
from transforms.spec_tests import run_spec_tests
from weftline.cli import app

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "mapping-language.md"
FENCE = re.compile(r"^```yaml\n(.*?)^```$", re.M | re.S)


def yaml_blocks() -> list[str]:
    return FENCE.findall(GUIDE.read_text(encoding="utf-8"))


def tagged(kind: str) -> dict[str, str]:
    out = {}
    for block in yaml_blocks():
        m = re.match(rf"# {kind}: ([a-z][a-z0-9_]*)\n", block)
        if m:
            assert m.group(1) not in out, f"two `# {kind}: {m.group(1)}` blocks"
            out[m.group(1)] = block
    return out


def test_functions_reference_is_what_the_registry_generates():
    result = CliRunner().invoke(app, ["functions"])
    assert result.exit_code == 0, result.output
    committed = (ROOT / "docs" / "functions.md").read_text(encoding="utf-8")
    assert committed == result.stdout, "docs/functions.md is stale: run `weftline functions > docs/functions.md`"


def test_the_guide_has_runnable_specs_each_with_cases():
    specs, cases = tagged("test"), tagged("cases")
    assert len(specs) >= 3
    assert set(specs) == set(cases), "each `# test:` spec needs a `# cases:` block and vice versa"


@pytest.mark.parametrize("name", sorted(tagged("test")))
def test_each_runnable_spec_in_the_guide_loads_and_passes_its_cases(tmp_path, name):
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(tagged("test")[name], encoding="utf-8")
    (tmp_path / f"{name}.test.yaml").write_text(tagged("cases")[name], encoding="utf-8")
    assert load_spec(spec).id == name, "the spec's `mapping:` must equal its `# test:` name"
    results = run_spec_tests(spec)
    assert results and all(r.ok for r in results), [(r.name, r.problems) for r in results if not r.ok]


def test_every_yaml_block_of_the_guide_is_valid_yaml():
    for block in yaml_blocks():
        yaml.safe_load(block)
