"""`weftline stream his_admissions`: a real MLLP listener in its own process, ACKs after landing,
a drainer that maps what landed, SIGTERM drains the rest and exits 0."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from connectors.his.mllp import send_messages

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = ROOT / "mappings" / "samples" / "hl7"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mllp_stream_acks_lands_maps_and_stops_cleanly(tmp_path):
    port = free_port()
    home = tmp_path / "home"
    env = {"PATH": "/usr/bin:/bin", "WEFTLINE_MLLP_PORT": str(port), "WEFTLINE_SUBJECT_KEY": "k", "HOME": str(tmp_path)}
    p = subprocess.Popen([sys.executable, "-c", "from weftline.cli import main; main()", "stream", "his_admissions",
                          "--home", str(home), "--format", "json"], cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:  # wait for the listener
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert p.poll() is None and time.monotonic() < deadline, p.stderr.read() if p.poll() is not None else "slow"
                time.sleep(0.2)
        messages = [f.read_bytes() for f in sorted(SAMPLES.glob("*.hl7"))]
        acks = send_messages("127.0.0.1", port, messages + [b"MSH|^~\\&|X|Y|||20260101||||P|2.5\r"])
        assert [a.code for a in acks] == ["AA"] * len(messages) + ["AE"]
        time.sleep(2.5)  # at least one drain tick
    finally:
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err[-2000:]
    counts = json.loads(out.strip().splitlines()[-1])
    assert counts["loads"] >= 1
    con = duckdb.connect(str(home / "crm.duckdb"), read_only=True)
    try:
        contacts = con.sql("SELECT external_id FROM crm.crm.contact ORDER BY 1").fetchall()
    finally:
        con.close()
    assert contacts == [("HIS-11102779",), ("HIS-PATID1234",)]  # the two ADT^A01 samples; the ORU is filtered
