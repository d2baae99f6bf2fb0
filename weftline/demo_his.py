"""The HL7 part of `weftline demo`: an MLLP listener on loopback, sample messages sent to it, ACKs back.

Each message is landed durably before its ACK (AA); one that cannot be parsed gets AE with the reason
and is quarantined. Then the `his_admissions` integration maps what was landed (ADT^A01 → contact).
"""

from __future__ import annotations

from pathlib import Path

from connectors.base.home import Home

BROKEN = "MSH|^~\\&|DEMO|HOSP|||20261124080000||||P|2.5\r"  # no MSH-9 type, no MSH-10 control id


def run_mllp_demo(home: Home, mappings: Path, console) -> list:
    from connectors.his.mllp import send_messages, start_in_thread
    from weftline.integrations import drain_landed

    messages = [p.read_bytes() for p in sorted((mappings / "samples" / "hl7").glob("*.hl7"))]
    listener = start_in_thread(home, "127.0.0.1", 0)
    try:
        acks = send_messages(listener.host, listener.port, messages + [BROKEN.encode()])
    finally:
        listener.stop()
    codes = [a.code for a in acks]
    console.print(f"MLLP 127.0.0.1:{listener.port}: sent {len(acks)} message(s), ACK "
                  + ", ".join(f"{c}×{codes.count(c)}" for c in sorted(set(codes))))
    for a in acks:
        if a.code != "AA":
            console.print(f"  {a.code}: {a.reason}", highlight=False, markup=False)
    return drain_landed("his_admissions", home, mappings, consumer="demo", streams=["hl7_messages"])
