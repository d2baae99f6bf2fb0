"""Reference data kept beside the specs: ``<specs dir>/reference/<name>.csv|.parquet``.

Names are plain identifiers, never paths, so a spec can read nothing but these files.

>>> valid_name("country_regions"), valid_name("../etc/passwd")
(True, False)
"""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def valid_name(name: str) -> bool:
    return bool(_NAME.match(name))


def reference_file(spec_dir: Path, name: str) -> Path | None:
    if not valid_name(name):
        return None
    for ext in (".parquet", ".csv"):
        p = spec_dir / "reference" / f"{name}{ext}"
        if p.is_file() and not p.is_symlink():
            return p
    return None


def load_reference(path: Path) -> pa.Table:
    if path.suffix == ".parquet":
        return pq.read_table(path)
    opts = pacsv.ConvertOptions(strings_can_be_null=True)  # an empty cell is null, not empty text
    return pacsv.read_csv(path, convert_options=opts)
