"""Subject export of ~10 k events: PDF rendering time against writing the same export as JSON.

Baseline: ``json.dump`` of the same dict (what ``--format json`` writes). Target: PDF ≤ 2 s.
Run: ``.venv/bin/python bench/export_pdf.py [EVENTS]``.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from lineage.export.render_pdf import render_pdf
from lineage.export.sample import sample_export, synthetic_payloads


def main(events: int = 10_000) -> None:
    # 3 steps per mapped record, 2 per quarantined one (every 10th): ~2.9 steps per source record
    n = int(events / 2.9)
    export = sample_export("5c1e" * 16, synthetic_payloads(n), quarantine_every=10)
    steps = len(export["steps"])
    with tempfile.TemporaryDirectory() as tmp:
        js, pdf = Path(tmp) / "e.json", Path(tmp) / "e.pdf"
        t0 = time.perf_counter()
        with js.open("w") as f:
            json.dump(export, f, ensure_ascii=False, indent=1)
        t_json = time.perf_counter() - t0
        t0 = time.perf_counter()
        render_pdf(export, pdf, requested_id="jane.doe@example.org")
        t_pdf = time.perf_counter() - t0
        size = pdf.stat().st_size
    print(f"export of {n} source records, {steps} steps")
    print(f"json.dump (baseline): {t_json:.3f} s")
    print(f"render_pdf:           {t_pdf:.3f} s  ({size / 1e6:.1f} MB)  target <= 2 s: {'ok' if t_pdf <= 2 else 'MISSED'}")
    print(f"ratio pdf/json:       {t_pdf / t_json:.1f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
