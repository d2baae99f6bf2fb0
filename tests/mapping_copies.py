"""A test's own copy of the repo's ``mappings/``, with one integration file changed."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import yaml

MAPPINGS = Path(__file__).resolve().parents[1] / "mappings"


def copy_mappings(tmp_path: Path, integration: str, edit: Callable[[dict], None]) -> Path:
    """``tmp_path/mappings``: every spec, test case and reference file of the repo, and
    ``<integration>.integration.yaml`` as ``edit(doc)`` left it. Returns the folder."""
    d = tmp_path / "mappings"
    if not d.exists():
        shutil.copytree(MAPPINGS, d)
    path = d / f"{integration}.integration.yaml"
    doc = yaml.safe_load(path.read_text())
    edit(doc)
    path.write_text(yaml.safe_dump(doc))
    return d
