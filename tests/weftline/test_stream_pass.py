"""The stream worker's processing step (weftline.runner.stream_processor) on a ticket-opening pass: the new
stateful state's files are written while the load runs but become current only after the CRM and the
lineage committed (docs/adr/0305); a failed load leaves the old state current and its lock free; a process
killed inside the CRM load leaves the old state, and the pass done again gives the same one ticket."""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pytest

from connectors.base.home import Home
from lineage.store import open_store
from lineage.verify import verify
from transforms.stateful.state import load_state, state_dir

ROOT = Path(__file__).resolve().parents[2]
SPEC_ID = "device_offline_ticket"


def landed_status(home: Home) -> pa.Table:
    """Three status events landed by the real ingest path: dev-1 goes offline, dev-2's event 3 min later
    moves the watermark past the 120 s hold — the pass opens one ticket."""
    from connectors.integration import load_integration
    from connectors.iot_mqtt.config import MqttConfig
    from connectors.iot_mqtt.decode import Message
    from connectors.iot_mqtt.ingest import Ingestor

    t0 = datetime.now(timezone.utc) - timedelta(minutes=10)
    events = [("dev-1", 0, "online"), ("dev-1", 60, "offline"), ("dev-2", 240, "online")]
    msgs = [Message(f"devices/{d}/status", json.dumps({"status": s, "event_time": (t0 + timedelta(seconds=dt))
                                                       .isoformat()}).encode(), 1, False, False, i + 1, 0)
            for i, (d, dt, s) in enumerate(events)]
    integ = load_integration("iot_fleet", ROOT / "mappings", home=home)
    return Ingestor(MqttConfig.from_dict(dict(integ.config)), home).ingest(msgs).tables["device_status"]


def processor(home: Home, wrap=None):
    """stream_processor of iot_fleet; ``wrap(dest)`` replaces the CRM destination it opens."""
    import connectors.crm as crm
    from connectors.integration import load_integration
    from weftline.runner import stream_processor

    integ = load_integration("iot_fleet", ROOT / "mappings", home=home)
    if wrap is None:
        return stream_processor(integ, home)
    real = crm.open_destination
    crm.open_destination = lambda *a, **k: wrap(real(*a, **k))
    try:
        return stream_processor(integ, home)
    finally:
        crm.open_destination = real


class Watching:
    def __init__(self, inner, home: Home, fail: bool = False):
        self.inner, self.home, self.fail, self.seen = inner, home, fail, []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def load(self, entity, table, **k):
        self.seen.append(load_state(self.home.root, SPEC_ID).generation)
        if self.fail and table.num_rows:
            raise ConnectionError("CRM down")
        return self.inner.load(entity, table, **k)


def _tickets(home: Home) -> list[dict]:
    from connectors.crm import open_destination

    return open_destination(home).read("service_ticket").to_pylist()


def _lock_is_free(home: Home) -> bool:
    with open(state_dir(home.root, SPEC_ID) / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


@pytest.fixture
def home(tmp_path, monkeypatch) -> Home:
    monkeypatch.setenv("WEFTLINE_HOME", str(tmp_path / "home"))
    for var in ("WEFTLINE_LINEAGE_URL", "WEFTLINE_LINEAGE_SEGMENTS", "WEFTLINE_CRM_URL"):
        monkeypatch.delenv(var, raising=False)
    return Home(tmp_path / "home")


def test_the_new_state_becomes_current_only_after_the_load_committed(home):
    landed = landed_status(home)
    seen = {}
    process = processor(home, wrap=lambda d: seen.setdefault("dest", Watching(d, home)))
    try:
        process({"device_status": landed.slice(0, 2)})  # dev-1 online, offline: no ticket yet
        process({"device_status": landed.slice(2)})     # dev-2 three minutes later: the ticket
    finally:
        process.close()
    assert seen["dest"].seen == [0, 1]  # inside each pass's load, the previous pass's generation is current
    assert load_state(home.root, SPEC_ID).generation == 2
    assert [t["device_id"] for t in _tickets(home)] == ["dev-1"]
    d = state_dir(home.root, SPEC_ID)
    assert sorted(p.name for p in d.glob("gen-*")) == ["gen-00000002.buffer.parquet", "gen-00000002.scopes.parquet"]
    assert _lock_is_free(home)


def test_a_failed_load_leaves_the_old_state_current_and_the_lock_free(home):
    landed = landed_status(home)
    process = processor(home, wrap=lambda d: Watching(d, home, fail=True))
    try:
        with pytest.raises(Exception, match="CRM down"):
            process({"device_status": landed})
        assert load_state(home.root, SPEC_ID).generation == 0 and _lock_is_free(home)
        with pytest.raises(Exception, match="CRM down"):  # retried by the worker: same state, no conflict
            process({"device_status": landed})
    finally:
        process.close()
    ok = processor(home)
    try:
        [report] = ok({"device_status": landed})
    finally:
        ok.close()
    assert [(t.entity, t.loaded) for t in report.targets] == [("service_ticket", 1)]
    assert load_state(home.root, SPEC_ID).generation == 1 and len(_tickets(home)) == 1
    store = open_store(home)
    assert store.recover() == [] and verify(store).ok


def test_killed_inside_the_ticket_load_then_done_again_gives_one_ticket(home, tmp_path):
    """kill -9 after the CRM committed the ticket, before the lineage and the state did: the next process
    recovers the lineage (committed: the rows are there), the old state is current, and the same landed
    events processed again give the same ticket once."""
    landed = landed_status(home)
    pq_path = tmp_path / "landed.parquet"
    import pyarrow.parquet as pq

    pq.write_table(landed, pq_path)
    code = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import pyarrow.parquet as pq
        from connectors.base.home import Home
        from test_stream_pass import processor

        class Dying:
            def __init__(self, inner):
                self.inner = inner
            def __getattr__(self, name):
                return getattr(self.inner, name)
            def load(self, entity, table, **k):
                out = self.inner.load(entity, table, **k)
                if table.num_rows:
                    os.kill(os.getpid(), signal.SIGKILL)
                return out

        home = Home({str(home.root)!r})
        processor(home, wrap=Dying)({{"device_status": pq.read_table({str(pq_path)!r})}})
    """)
    rc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=240).returncode
    assert rc == -9
    [before] = _tickets(home)
    assert load_state(home.root, SPEC_ID).generation == 0  # the state never switched
    assert _lock_is_free(home)                             # the kernel released the dead process's lock
    process = processor(home)
    try:
        [report] = process({"device_status": pq.read_table(pq_path)})  # recover() runs first in map_and_load
    finally:
        process.close()
    [after] = _tickets(home)
    assert after["ticket_id"] == before["ticket_id"] and [(t.entity, t.loaded) for t in report.targets] == \
        [("service_ticket", 1)]
    store = open_store(home)
    assert [x["state"] for x in store.ledger.loads()] == ["committed", "committed"]  # recovered, then the rerun
    assert verify(store).ok and load_state(home.root, SPEC_ID).generation == 1


PG = "postgresql://postgres:x@127.0.0.1:5432/test"


@pytest.mark.services
def test_crm_down_then_back_on_postgresql_gives_one_ticket_and_consistent_lineage(home, monkeypatch):
    """The real PostgreSQL CRM, first unreachable (nothing listens on the port), then back: each failed pass
    leaves the old stateful state current and nothing committed in the lineage; once the CRM is back the
    same landed events give the ticket once, and the lineage verifies."""
    import uuid

    import adbc_driver_postgresql.dbapi as adbc

    landed = landed_status(home)
    schema = f"wl_crm_test_{uuid.uuid4().hex[:10]}"
    try:
        monkeypatch.setenv("WEFTLINE_CRM_URL", f"postgresql://postgres:x@127.0.0.1:9/test?schema={schema}")
        for _ in range(2):  # the worker retries the same pending parts
            with pytest.raises(Exception):
                down = processor(home)
                try:
                    down({"device_status": landed})
                finally:
                    down.close()
            assert load_state(home.root, SPEC_ID).generation == 0 and _lock_is_free(home)
            assert not open_store(home).segments(("committed",))
        monkeypatch.setenv("WEFTLINE_CRM_URL", f"{PG}?schema={schema}")
        up = processor(home)
        try:
            [report] = up({"device_status": landed})
        finally:
            up.close()
        assert [(t.entity, t.loaded) for t in report.targets] == [("service_ticket", 1)]
        from connectors.crm import open_destination

        assert [t["device_id"] for t in open_destination(home).read("service_ticket").to_pylist()] == ["dev-1"]
        store = open_store(home)
        states = [x["state"] for x in store.ledger.loads()]
        assert states[-1] == "committed" and set(states[:-1]) <= {"rolled_back"}
        assert store.recover() == [] and verify(store).ok
        assert load_state(home.root, SPEC_ID).generation == 1
    finally:
        with adbc.connect(PG) as con, con.cursor() as cur:
            for s in (schema, f"{schema}_staging"):
                cur.execute(f'DROP SCHEMA IF EXISTS "{s}" CASCADE')
            con.commit()
