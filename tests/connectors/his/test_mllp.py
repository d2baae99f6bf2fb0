"""MLLP over real TCP on loopback: ACK only after landing, AE/AR with reasons, nothing lost or doubled."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from connectors.base.home import Home
from connectors.base.reserved import RECORD_ID
from connectors.his.landing import read_stream
from connectors.his.mllp import send_messages, start_in_thread

REPO = Path(__file__).resolve().parents[3]
MSG = "MSH|^~\\&|LAB|HOSP|WL|CRM|20240101083000+0100||ADT^A01^ADT_A01|CTRL-1|P|2.5.1\rPID|1||123^^^MRN||Doe^Jane"


@pytest.fixture
def home(tmp_path) -> Home:
    return Home(tmp_path / "home")


@pytest.fixture
def listener(home):
    lst = start_in_thread(home)
    yield lst
    lst.stop()


def _quarantined(home: Home):
    parts = sorted((home.quarantine / "his" / "hl7_messages").glob("*/part-*.parquet"))
    return [row for p in parts for row in pq.read_table(p).to_pylist()]


def test_all_sample_files_over_mllp(hl7_dir, home, listener):
    files = sorted(hl7_dir.glob("*.hl7"))
    acks = send_messages(listener.host, listener.port, [f.read_bytes() for f in files])
    assert len(acks) == len(files) == 132
    codes = [a.code for a in acks]
    assert codes.count("AA") == 125 and codes.count("AE") == 7
    landed = read_stream(home, dedup=False)
    assert landed.num_rows == codes.count("AA")
    # every AA acknowledges the control id that was landed, in order
    assert [a.control_id for a in acks if a.code == "AA"] == landed.column("message_control_id").to_pylist()
    rejected = _quarantined(home)
    assert len(rejected) == 7
    by_file = {f.name: a for f, a in zip(files, acks)}
    assert "MSH-10 (message control id) is empty" in by_file["examples_Test_Message_msh_present_but_missing_msh-10.hl7"].reason
    assert {r["raw"] for r in rejected} == {f.read_bytes() for f, a in zip(files, acks) if a.code == "AE"}
    assert listener.counts == {"accepted": 125, "rejected": 7, "failed": 0}


def test_broken_message_gets_AE_with_reason_and_is_quarantined(home, listener):
    broken = MSG.replace("ADT^A01^ADT_A01", "")
    [ack] = send_messages(listener.host, listener.port, [broken])
    assert (ack.code, ack.control_id) == ("AE", "CTRL-1")
    assert ack.reason.startswith("MSH-9 (message type) is empty")
    err = [s for s in ack.text.split("\r") if s.startswith("ERR|")][0]
    assert err.split("|")[3] == "101^Required field missing^HL70357"
    [row] = _quarantined(home)
    assert row["raw"] == broken.encode() and row["reason"] == ack.reason and row["position"].startswith("mllp:127.0.0.1:")
    with pytest.raises(FileNotFoundError):
        read_stream(home)


def test_landing_failure_gets_AR_and_the_raw_bytes_are_kept(home, listener):
    (home.landing / "his").mkdir(parents=True)
    (home.landing / "his" / "hl7_messages").write_text("a file where the stream folder should be")
    [ack] = send_messages(listener.host, listener.port, [MSG])
    assert ack.code == "AR" and ack.control_id == "CTRL-1"
    assert ack.reason.startswith("could not store the message:")
    [row] = _quarantined(home)
    assert row["raw"] == MSG.encode()
    assert listener.counts["failed"] == 1


KILLER = textwrap.dedent(
    """
    import asyncio, os, sys
    from connectors.base.home import Home
    from connectors.his.mllp import serve_mllp

    async def main():
        # dies the instant the part is durable, before any ACK is written
        lst = await serve_mllp(Home(sys.argv[1]), on_landed=lambda part: os._exit(9))
        print(lst.port, flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
    """
)


def test_listener_killed_after_landing_before_ack_loses_nothing(home):
    proc = subprocess.Popen([sys.executable, "-c", KILLER, str(home.root)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())
        with pytest.raises(ConnectionError, match="no ACK"):
            send_messages("127.0.0.1", port, [MSG])
        assert proc.wait(30) == 9
    finally:
        proc.kill()
    assert read_stream(home, dedup=False).num_rows == 1  # it was landed before the crash
    again = start_in_thread(home)  # the sender resends to the restarted listener
    try:
        [ack] = send_messages(again.host, again.port, [MSG])
    finally:
        again.stop()
    assert ack.code == "AA"
    raw = read_stream(home, dedup=False)
    assert raw.num_rows == 2 and len(set(raw.column("_wl_load_id").to_pylist())) == 2
    assert len(set(raw.column(RECORD_ID).to_pylist())) == 1
    assert read_stream(home).num_rows == 1


def test_concurrent_senders_each_get_their_own_ack(home, listener):
    import concurrent.futures as cf

    def batch(k):
        msgs = [MSG.replace("CTRL-1", f"C{k}-{i}") for i in range(10)]
        return [a.control_id for a in send_messages(listener.host, listener.port, msgs)]

    with cf.ThreadPoolExecutor(4) as pool:
        got = list(pool.map(batch, range(4)))
    assert got == [[f"C{k}-{i}" for i in range(10)] for k in range(4)]
    landed = read_stream(home)
    assert sorted(landed.column("message_control_id").to_pylist()) == sorted(c for g in got for c in g)


def test_blocking_worker_serves_until_stopped(home):
    import socket
    import threading

    with socket.socket() as s:  # a free port for the worker's fixed-port config
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    stop, out = threading.Event(), {}
    from connectors.his.mllp import run_mllp

    worker = threading.Thread(target=lambda: out.update(run_mllp({"mllp_port": port}, home, stop)))
    worker.start()
    try:
        for _ in range(100):
            try:
                acks = send_messages("127.0.0.1", port, [MSG, MSG.replace("CTRL-1", "CTRL-2")])
                break
            except OSError:
                import time

                time.sleep(0.05)
    finally:
        stop.set()
        worker.join(30)
    assert [a.code for a in acks] == ["AA", "AA"]
    assert out == {"accepted": 2, "rejected": 0, "failed": 0}
    assert read_stream(home).num_rows == 2


@pytest.mark.parametrize("block, reason", [
    (b"", "the MLLP block holds no HL7 message (0 bytes)"),
    (b"PID|1", "segments before the first MSH (line 1: PID|1)"),
    ((MSG + "\r" + MSG.replace("CTRL-1", "CTRL-2")).encode(), "an MLLP block carries one message; this one holds 2"),
    ((MSG + "\rfree text").encode(), "line 3 of the message is not an HL7 segment: 'free text'"),
])
def test_inspect_block_reasons(block, reason):
    from connectors.his.mllp import inspect_block

    got = inspect_block(block, "o")
    assert got.record is None and got.reason == reason and got.raw == block
