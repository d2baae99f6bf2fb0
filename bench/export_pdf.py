"""Subject export of ~10 k events: PDF rendering time against writing the same export as JSON.

Baseline: ``json.dump`` of the same dict (what ``--format json`` writes). Target: PDF ≤ 2 s.
Wall and CPU time are both printed (best of 3): on a shared machine the CPU time is the steadier figure.
Run: ``.venv/bin/python bench/export_pdf.py [EVENTS]``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo, before bench/ (bench/lineage.py)

from lineage.export.render_pdf import render_pdf  # noqa: E402
from lineage.export.sample import sample_export, synthetic_payloads  # noqa: E402


def main(events: int = 10_000, repeat: int = 3) -> None:
    # 3 steps per mapped record, 2 per quarantined one (every 10th): ~2.9 steps per source record
    n = int(events / 2.9)
    export = sample_export("5c1e" * 16, synthetic_payloads(n), quarantine_every=10)
    steps = len(export["steps"])
    t_json = t_pdf = c_json = c_pdf = float("inf")
    with tempfile.TemporaryDirectory() as tmp:  # best of `repeat`: the machine is shared
        js, pdf = Path(tmp) / "e.json", Path(tmp) / "e.pdf"
        for _ in range(repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            with js.open("w") as f:
                json.dump(export, f, ensure_ascii=False, indent=1)
            t_json, c_json = min(t_json, time.perf_counter() - t0), min(c_json, time.process_time() - c0)
            t0, c0 = time.perf_counter(), time.process_time()
            render_pdf(export, pdf, requested_id="jane.doe@example.org")
            t_pdf, c_pdf = min(t_pdf, time.perf_counter() - t0), min(c_pdf, time.process_time() - c0)
        size = pdf.stat().st_size
    print(f"export of {n} source records, {steps} steps (best of {repeat})")
    print(f"json.dump (baseline): {t_json:.3f} s wall, {c_json:.3f} s CPU")
    print(f"render_pdf:           {t_pdf:.3f} s wall, {c_pdf:.3f} s CPU  ({size / 1e6:.1f} MB)  "
          f"target <= 2 s: {'ok' if t_pdf <= 2 else 'MISSED'} (wall), {'ok' if c_pdf <= 2 else 'MISSED'} (CPU)")
    print(f"ratio pdf/json:       {t_pdf / t_json:.1f}x wall, {c_pdf / c_json:.1f}x CPU")
    print(f"load average (1 min): {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
