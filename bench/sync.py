"""Benchmark (issue 4): the same N ERP order rows in PostgreSQL, copied three ways, in one run.

    .venv/bin/python bench/sync.py [--rows 1000000] [--url postgresql://postgres:x@127.0.0.1:5432/test]

- (a) bare dlt: ``sql_table(backend="pyarrow")`` → dlt postgres destination (no mapping, no lineage)
- (b) ADBC round trip: read the table as Arrow, ``adbc_ingest`` it into another schema
- (c) weftline: ``weftline run erp_orders`` (run_integration: ErpSqlSource.read → stamp → land → map →
      staged PostgreSQL load → lineage, one load per ``load_rows``), stage times from its run reports
- (c') the same run with lineage capture off: weftline's own lineage overhead on a real sync (issue 3)
- extract only (docs/adr/0220-erp-extraction.md): ErpSqlSource with ADBC vs with SQLAlchemy/psycopg2,
  and dlt's own sql_table pyarrow extract

Every part runs in a fresh child process, so its peak RSS (ru_maxrss, incl. ~the interpreter and
imports) is its own. Everything is created in schemas named wl_bench_<pid>_* and dropped at the end.
Ratios are against (b) the ADBC round trip, the named baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PG_URL = "postgresql://postgres:x@127.0.0.1:5432/test"


# ----------------------------------------------------------------------------- the parts (child side)


def _seed(url: str, schema: str, rows: int) -> dict:
    """N orders (and the other sample tables, empty) in ``schema``, ingested as Arrow with ADBC."""
    import adbc_driver_postgresql.dbapi as pg
    import numpy as np
    import pyarrow as pa
    import sqlalchemy as sa

    from connectors.erp_sql.sample.tables import METADATA
    from connectors.erp_sql.urls import libpq_url, sqlalchemy_url

    meta = sa.MetaData(schema=schema)
    for t in METADATA.tables.values():
        t.to_metadata(meta)
    engine = sa.create_engine(sqlalchemy_url(url))
    with engine.begin() as con:
        con.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        meta.create_all(con)
    engine.dispose()
    rng = np.random.default_rng(4)
    ids = np.arange(1, rows + 1)
    cents = rng.integers(100, 2_000_000, rows)
    t0 = np.datetime64("2026-01-01T00:00:00", "us")
    at = t0 + (ids * 1_000_000 + rng.integers(0, 999_999, rows)).astype("timedelta64[us]")
    statuses = np.array(["open", "confirmed", "shipped", "invoiced", "cancelled"])
    table = pa.table({
        "order_id": pa.array(ids, pa.int32()),
        "order_no": pa.array([f"SO-{i:08d}" for i in ids]),
        "customer_id": pa.array(rng.integers(1, 50_000, rows), pa.int32()),
        "order_date": pa.array(at.astype("datetime64[D]")),
        "status": pa.array(statuses[rng.integers(0, 5, rows)]),
        "currency": pa.array(np.where(ids % 11 == 0, "USD", "EUR")),
        "net_amount": pa.array(cents / 100.0).cast(pa.decimal128(14, 2)),
        "tax_amount": pa.array(np.round(cents * 0.19) / 100.0).cast(pa.decimal128(14, 2)),
        "gross_amount": pa.array(np.round(cents * 1.19) / 100.0).cast(pa.decimal128(14, 2)),
        "sales_rep": pa.array([f"Rep{i % 97}@Example.com" for i in ids]),
        "note": pa.nulls(rows, pa.string()),
        "created_at": pa.array(at, pa.timestamp("us", tz="UTC")),
        "updated_at": pa.array(at, pa.timestamp("us", tz="UTC")),
    })
    with pg.connect(libpq_url(url)) as con, con.cursor() as cur:
        cur.adbc_ingest("orders", table, mode="append", db_schema_name=schema)
        con.commit()
        cur.execute(f'ANALYZE "{schema}"."orders"')
    return {"rows": rows}


def part_adbc_roundtrip(url: str, schema: str, rows: int) -> dict:
    import adbc_driver_postgresql.dbapi as pg

    from connectors.erp_sql.urls import libpq_url

    target = schema + "_adbc"
    t0 = time.perf_counter()
    with pg.connect(libpq_url(url)) as con, con.cursor() as cur:
        cur.execute(f'SELECT * FROM "{schema}"."orders"')
        table = cur.fetch_arrow_table()
        t1 = time.perf_counter()
        cur.execute(f'CREATE SCHEMA "{target}"')
        cur.adbc_ingest("orders", table, mode="create", db_schema_name=target)
        con.commit()
    t2 = time.perf_counter()
    return {"seconds": t2 - t0, "rows": table.num_rows, "stages": {"read": t1 - t0, "ingest": t2 - t1}}


def part_dlt(url: str, schema: str, rows: int) -> dict:
    import dlt
    from dlt.sources.sql_database import sql_table

    from connectors.erp_sql.urls import sqlalchemy_url

    with tempfile.TemporaryDirectory() as d:
        os.environ["DLT_DATA_DIR"] = d
        p = dlt.pipeline(pipeline_name=f"{schema}_dlt", destination=dlt.destinations.postgres(url),
                         dataset_name=f"{schema}_dlt", pipelines_dir=d)
        res = sql_table(credentials=sqlalchemy_url(url), table="orders", schema=schema, backend="pyarrow",
                        chunk_size=50_000)
        t0 = time.perf_counter()
        p.extract(res)
        t1 = time.perf_counter()
        p.normalize()
        t2 = time.perf_counter()
        p.load()
        t3 = time.perf_counter()
    return {"seconds": t3 - t0, "rows": rows,
            "stages": {"extract": t1 - t0, "normalize": t2 - t1, "load": t3 - t2}}


def part_extract(url: str, schema: str, rows: int, reader: str) -> dict:
    from connectors.base.home import Home
    from connectors.erp_sql import ErpSqlSource

    with tempfile.TemporaryDirectory() as d:
        src = ErpSqlSource({"url": url, "schema": schema, "reader": reader, "reconcile_every": 0}, Home(d))
        t0 = time.perf_counter()
        n = sum(b.table.num_rows for b in src.read("orders", {}))
    return {"seconds": time.perf_counter() - t0, "rows": n}


def part_extract_dlt(url: str, schema: str, rows: int) -> dict:
    from dlt.sources.sql_database import sql_table

    from connectors.erp_sql.urls import sqlalchemy_url

    res = sql_table(credentials=sqlalchemy_url(url), table="orders", schema=schema, backend="pyarrow",
                    chunk_size=50_000)
    t0 = time.perf_counter()
    n = sum(t.num_rows for t in res)
    return {"seconds": time.perf_counter() - t0, "rows": n}


def part_weftline(url: str, schema: str, rows: int, lineage: bool = True) -> dict:
    """``weftline run erp_orders`` as the CLI runs it (weftline.integrations.run_integration), on an
    integration file that points the ERP source at the seeded schema and the CRM at PostgreSQL
    (``lineage=False``: the same run without lineage capture, into a CRM schema of its own)."""
    import yaml

    from connectors.base.home import Home
    from weftline.integrations import run_integration

    missing: list[str] = []
    with tempfile.TemporaryDirectory() as d:
        home, mappings = Home(Path(d) / "home"), Path(d) / "mappings"
        mappings.mkdir()
        spec = REPO / "mappings" / "erp_order_to_account.yaml"
        (mappings / spec.name).write_text(spec.read_text())
        integ = {
            "integration": "erp_orders", "source": {"connector": "erp_sql", "config": {
                "url": url, "schema": schema, "reconcile_every": 0,
                "batch_size": int(os.environ.get("WEFTLINE_BENCH_BATCH", "50000"))}},
            "streams": {"orders": {"mappings": ["erp_order_to_account"]}},
            "destination": f"{url}?schema={schema}_crm{'' if lineage else '_nolineage'}",
            "load_rows": int(os.environ.get("WEFTLINE_BENCH_LOAD_ROWS", "1000000")),
        }
        (mappings / "erp_orders.integration.yaml").write_text(yaml.safe_dump(integ))
        t0 = time.perf_counter()
        reports = run_integration("erp_orders", home, mappings, lineage=lineage)
        seconds = time.perf_counter() - t0
    stages: dict[str, float] = {}
    counts = {"read": 0, "mapped": 0, "quarantined": 0, "filtered": 0, "loaded": 0, "superseded": 0, "loads": 0}
    for r in reports:
        for k, v in r.timings.items():
            stages[k] = stages.get(k, 0.0) + v
        counts["read"] += r.read
        counts["loads"] += 1 if r.targets else 0
        for t in r.targets:
            for k in ("mapped", "quarantined", "filtered", "loaded", "superseded"):
                counts[k] += getattr(t, k)
    # stages on the run's own thread add up to its time; the read-ahead thread's stamping overlaps them
    stages["other (status, cursor, reports)"] = seconds - sum(v for k, v in stages.items() if not k.endswith("thread)"))
    reconciles = all(r.reconciles for r in reports if r.targets)
    return {"seconds": seconds, "rows": counts["read"], "stages": stages, "counts": counts, "missing": missing,
            "destination": reports[0].destination if reports else "?", "reconciles": reconciles}


PARTS = {
    "seed": _seed,
    "adbc": part_adbc_roundtrip,
    "dlt": part_dlt,
    "weftline": part_weftline,
    "weftline_nolineage": lambda u, s, n: part_weftline(u, s, n, lineage=False),
    "extract_adbc": lambda u, s, n: part_extract(u, s, n, "adbc"),
    "extract_sqlalchemy": lambda u, s, n: part_extract(u, s, n, "sqlalchemy"),
    "extract_dlt": part_extract_dlt,
}


def child(part: str, url: str, schema: str, rows: int) -> None:
    import logging

    logging.basicConfig(level=logging.WARNING)
    out = PARTS[part](url, schema, rows)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out["peak_rss_mib"] = usage.ru_maxrss / 1024
    out["cpu_s"] = usage.ru_utime + usage.ru_stime  # this process, every thread (not the server's)
    sys.stdout.write("\n@@RESULT " + json.dumps(out, default=str) + "\n")


# ----------------------------------------------------------------------------- the driver (parent side)


def run_part(part: str, url: str, schema: str, rows: int) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", part, "--url", url, "--schema", schema,
                           "--rows", str(rows)], capture_output=True, text=True, cwd=REPO)
    for line in proc.stdout.splitlines():
        if line.startswith("@@RESULT "):
            return json.loads(line[len("@@RESULT "):])
    lines = (proc.stderr or proc.stdout).strip().splitlines()
    where = [ln.strip() for ln in lines if ln.strip().startswith('File "' + str(REPO))][-3:]
    return {"error": " | ".join(where + lines[-1:]) or f"exit code {proc.returncode}"}


def drop_schemas(url: str, prefix: str) -> None:
    import sqlalchemy as sa

    from connectors.erp_sql.urls import sqlalchemy_url

    engine = sa.create_engine(sqlalchemy_url(url))
    with engine.begin() as con:
        names = con.execute(sa.text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :p"),
                            {"p": prefix + "%"}).scalars().all()
        for n in names:
            con.execute(sa.text(f'DROP SCHEMA "{n}" CASCADE'))
    engine.dispose()


def report(results: dict, rows: int) -> None:
    base = results.get("adbc", {}).get("seconds")
    print(f"\n{rows:,} ERP order rows, PostgreSQL on loopback; baseline = (b) ADBC round trip\n")
    print(f"{'part':<34}{'seconds':>9}{'rows/s':>13}{'peak MiB':>10}{'CPU s':>8}{'× ADBC':>9}")
    labels = {"adbc": "(b) ADBC read + adbc_ingest", "dlt": "(a) bare dlt sql_table → postgres",
              "weftline": "(c) weftline read→…→lineage",
              "weftline_nolineage": "(c') the same, lineage off", "extract_adbc": "extract: ErpSqlSource (ADBC)",
              "extract_sqlalchemy": "extract: ErpSqlSource (SQLAlchemy)", "extract_dlt": "extract: dlt sql_table pyarrow"}
    for part, label in labels.items():
        r = results.get(part)
        if r is None:
            continue
        if "error" in r:
            print(f"{label:<34}  FAILED: {r['error'][:300]}")
            continue
        ratio = f"{r['seconds'] / base:8.2f}×" if base else "       -"
        print(f"{label:<34}{r['seconds']:9.2f}{r['rows'] / r['seconds']:13,.0f}{r['peak_rss_mib']:10.0f}"
              f"{r.get('cpu_s', 0):8.1f}{ratio}")
        for stage, s in (r.get("stages") or {}).items():
            print(f"    {stage:<30}{s:9.2f}")
    w, d = results.get("weftline", {}), results.get("dlt", {})
    if "seconds" in w and "seconds" in d:
        speedup = d["seconds"] / w["seconds"]
        print(f"\nbare dlt time / weftline time = {speedup:.2f} (target ≥ 3: weftline 3× faster)"
              + ("" if speedup >= 1 else f" — weftline is {1 / speedup:.1f}× slower"))
    if "seconds" in w and base:
        print(f"weftline vs ADBC round trip: {w['seconds'] / base:.2f}× (target ≤ 2×)")
    off = results.get("weftline_nolineage", {})
    if "seconds" in w and "seconds" in off:
        print(f"weftline lineage on / off: {w['seconds'] / off['seconds']:.2f}× wall, "
              f"{w.get('cpu_s', 0) / max(off.get('cpu_s', 0), 1e-9):.2f}× CPU (issue 3's run overhead, target ≤ 1.2×)")
    if w.get("counts"):
        print(f"weftline counts: {w['counts']} → destination {w.get('destination')}; "
              f"every load reconciles: {w.get('reconciles')}")
    for m in w.get("missing", []):
        print(f"MISSING  {m}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--url", default=os.environ.get("WEFTLINE_BENCH_PG_URL", PG_URL))
    ap.add_argument("--parts", default="adbc,dlt,weftline,weftline_nolineage,extract_adbc,extract_sqlalchemy,extract_dlt")
    ap.add_argument("--rounds", type=int, default=1,
                    help="repeat the parts (every other round in reverse order) and print the medians")
    ap.add_argument("--child")
    ap.add_argument("--schema")
    args = ap.parse_args()
    if args.child:
        return child(args.child, args.url, args.schema, args.rows)
    schema = f"wl_bench_{os.getpid()}"
    parts = args.parts.split(",")
    try:
        t = time.perf_counter()
        seeded = run_part("seed", args.url, schema, args.rows)
        if "error" in seeded:
            sys.exit(f"seeding failed: {seeded['error']}")
        print(f"seeded {args.rows:,} rows into {schema}.orders in {time.perf_counter() - t:.1f} s", flush=True)
        rounds = []
        for r in range(args.rounds):
            order = parts if r % 2 == 0 else parts[::-1]  # every other round in reverse: no part always first
            if args.rounds > 1:
                print(f"\n== round {r + 1} of {args.rounds} ({time.strftime('%H:%M:%S')}, load "
                      f"{os.getloadavg()[0]:.2f}): {','.join(order)}", flush=True)
            results = {}
            for part in order:
                results[part] = run_part(part, args.url, schema, args.rows)
                res = results[part]
                print(f"  {part}: {res.get('seconds', 0):.2f} s" if "error" not in res else f"  {part}: FAILED", flush=True)
            report(results, args.rows)
            rounds.append(results)
            drop_schemas(args.url, schema + "\\_")  # this round's outputs; the seeded table stays
        if args.rounds > 1:
            summary(rounds)
    finally:
        drop_schemas(args.url, schema)


def _median(xs: list[float]) -> float:
    xs = sorted(xs)
    return (xs[(len(xs) - 1) // 2] + xs[len(xs) // 2]) / 2


def summary(rounds: list[dict]) -> None:
    """Medians over the rounds of the ratios that have targets, and how many rounds met each."""
    def ratios(a: str, b: str, key: str = "seconds") -> list[float]:
        return [r[a][key] / r[b][key] for r in rounds if key in r.get(a, {}) and key in r.get(b, {})]

    print(f"\n== {len(rounds)} rounds")
    for label, xs, target in (("weftline × ADBC", ratios("weftline", "adbc"), 2.0),
                              ("lineage on / off, wall", ratios("weftline", "weftline_nolineage"), 1.2),
                              ("lineage on / off, CPU", ratios("weftline", "weftline_nolineage", "cpu_s"), 1.2),
                              ("bare dlt / weftline", ratios("dlt", "weftline"), None)):
        if not xs:
            continue
        met = "" if target is None else f", {sum(x <= target for x in xs)} of {len(xs)} rounds ≤ {target}"
        print(f"{label}: median {_median(xs):.2f} (range {min(xs):.2f}–{max(xs):.2f}{met})")


if __name__ == "__main__":
    main()
