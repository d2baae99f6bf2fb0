"""Land HL7 messages and quarantine rejected inputs, durably, under ``his/<stream>/<load_id>``.

Landed rows carry the received columns (identity stamped on the whole batch); the
record id is ``sha256(his, stream, sending app ␟ facility ␟ MSH-10, message sha256)``,
so a resent message gets the same id and :func:`read_stream` keeps it once.

>>> import tempfile
>>> from connectors.base.home import Home
>>> from connectors.his.hl7_table import read_drop
>>> home = Home(tempfile.mkdtemp())
>>> t, _ = read_drop(b"MSH|^~\\\\&|A|F|||2023||ADT^A01|1|P|2.5", origin="a")
>>> _ = land_messages(t, home, "L1"); _ = land_messages(t, home, "L2")   # a resend
>>> read_stream(home).num_rows, read_stream(home, dedup=False).num_rows
(1, 2)
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from connectors.base.home import Home
from connectors.base.identity import stamp
from connectors.base.reserved import RECORD_ID
from connectors.his.hl7_table import KEY, POSITION, STREAM, SYSTEM
from connectors.landing import land


def stamp_messages(table: pa.Table, stream: str, load_id: str) -> pa.Table:
    """Add the received columns to HL7 records (payload hash = the message's sha256)."""
    return stamp(table, system=SYSTEM, stream=stream, key=list(KEY), position=POSITION, load_id=load_id,
                 payload_hash=table.column(POSITION).combine_chunks())


def land_messages(table: pa.Table, home: Home, load_id: str, stream: str = STREAM) -> Path:
    """Stamp and land one part; durable when it returns."""
    return land(stamp_messages(table, stream, load_id), home, SYSTEM, stream, load_id)


def quarantine(rejects: pa.Table, home: Home, load_id: str, stream: str = STREAM) -> Path:
    """Write rejected inputs (``connectors.base.source.rejected`` shape) under ``quarantine/his/<stream>``."""
    return land(rejects, SimpleNamespace(landing=home.quarantine), SYSTEM, stream, load_id)


def read_stream(home: Home, stream: str = STREAM, *, dedup: bool = True, root: Path | None = None) -> pa.Table:
    """Every landed part of a stream (all loads), one row per record id unless ``dedup=False``."""
    base = (root or home.landing) / SYSTEM / stream
    parts = sorted(base.glob("*/part-*.parquet"))
    if not parts:
        raise FileNotFoundError(f"nothing landed under {base}")
    table = pa.concat_tables([pq.read_table(p) for p in parts], promote_options="permissive")
    if not dedup or RECORD_ID not in table.column_names:
        return table
    idx = table.append_column("_i", pa.array(range(table.num_rows), pa.int64()))
    first = idx.group_by(RECORD_ID, use_threads=False).aggregate([("_i", "min")]).column("_i_min")
    return table.take(pc.sort_indices(first))
