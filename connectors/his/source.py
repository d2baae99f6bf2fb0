"""The HIS source: HL7 v2 file drops and FHIR R4 (files or a REST server), as declared streams.

Config (secrets already resolved by the runner; none are written in the file)::

    hl7_dir: drops/hl7          # HL7 v2 files, one or many messages each (``hl7_glob``, default *.hl7)
    fhir_dir: drops/fhir        # FHIR JSON / Bundle / NDJSON files …
    fhir_base_url: https://…    # … or a FHIR R4 REST server (not both)
    fhir_token: {env: FHIR_TOKEN}   # optional bearer token
    page_size: 100              # FHIR search _count
    batch_files: 200            # files per batch

A ``{home}`` in a path is the weftline home. State: files seen by name, mtime and
size (a changed file is read again; its records keep their ids, so nothing
doubles); for FHIR REST the greatest ``meta.lastUpdated`` seen, advanced only with
the last page of a search. MLLP (push) lands into the same ``hl7_messages`` stream:
see :mod:`connectors.his.mllp`.

>>> [s.name for s in HisSource.streams]
['hl7_messages', 'fhir_medication_request', 'fhir_patient', 'fhir_practitioner', 'fhir_organization']
>>> HisSource.streams[0].key, HisSource.streams[0].position
(('sending_application', 'sending_facility', 'message_control_id'), 'message_sha256')
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from connectors.base.home import Home
from connectors.base.source import REJECTED_SCHEMA, Batch, Stream, rejected
from connectors.errors import ConfigError
from connectors.his import fhir_records, hl7_table
from connectors.his.fhir_files import read_fhir_file
from connectors.his.fhir_rest import search_pages, session

log = logging.getLogger(__name__)

HL7_STREAM = Stream(hl7_table.STREAM, hl7_table.KEY, hl7_table.POSITION, "schemas/sources/his.hl7_messages.json")
FHIR_STREAMS = {
    s: Stream(s, fhir_records.KEY, fhir_records.POSITION, f"schemas/sources/his.{s}.json")
    for s in fhir_records.STREAMS.values()
}
RESOURCE_TYPE = {s: t for t, s in fhir_records.STREAMS.items()}


def _file_stamp(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_mtime_ns, st.st_size]


def _newest(items: list[tuple[str, Any]], rtype: str) -> datetime | None:
    stamps = []
    for _, r in items:
        if isinstance(r, dict) and r.get("resourceType") == rtype:
            try:
                stamps.append(fhir_records.last_updated(r))
            except (ValueError, TypeError, AttributeError):
                pass  # an invalid meta.lastUpdated: the resource is rejected by validation
    return max((s for s in stamps if s), default=None)


class HisSource:
    system: ClassVar[str] = "his"
    streams: ClassVar[tuple[Stream, ...]] = (HL7_STREAM, *FHIR_STREAMS.values())

    def __init__(self, config: Mapping[str, Any], home: Home):
        self.config, self.home = dict(config), home
        if config.get("fhir_dir") and config.get("fhir_base_url"):
            raise ConfigError("his: give fhir_dir or fhir_base_url, not both")
        self.batch_files = int(config.get("batch_files", 200))
        self.page_size = int(config.get("page_size", 100))

    def _dir(self, key: str) -> Path:
        value = self.config.get(key)
        if not value:
            raise ConfigError(f"his: config {key!r} is needed for this stream")
        path = Path(str(value).replace("{home}", str(self.home.root))).expanduser()
        if not path.is_dir():
            raise ConfigError(f"his: {key} {path} is not a folder")
        return path

    def read(self, stream: str, state: Mapping[str, Any]) -> Iterator[Batch]:
        if stream == HL7_STREAM.name:
            return self._read_hl7(state)
        if stream in FHIR_STREAMS:
            if self.config.get("fhir_base_url"):
                return self._read_fhir_rest(stream, state)
            return self._read_fhir_files(stream, state)
        raise ConfigError(f"his has no stream {stream!r}; streams: {[s.name for s in self.streams]}")

    # -- file drops -----------------------------------------------------------------------------
    def _file_batches(self, stream: str, folder: Path, patterns: tuple[str, ...], state: Mapping[str, Any],
                      read_one, empty: pa.Table) -> Iterator[Batch]:
        seen = dict(state.get("files", {}))
        paths = sorted({p for pattern in patterns for p in folder.glob(pattern) if p.is_file()})
        todo = [(p, _file_stamp(p)) for p in paths]
        todo = [(p, st) for p, st in todo if list(seen.get(p.name, [])) != st]
        log.info("his.%s: %d new or changed file(s) of %d in %s", stream, len(todo), len(paths), folder)
        for start in range(0, len(todo), self.batch_files):
            goods, bads = [], []
            for path, file_stamp in todo[start:start + self.batch_files]:
                good, bad = read_one(path)
                if good.num_rows:
                    goods.append(good)
                bads.append(bad)
                seen[path.name] = file_stamp
            table = pa.concat_tables(goods, promote_options="permissive") if goods else empty
            yield Batch(stream, table, {"files": dict(seen)}, pa.concat_tables(bads))

    def _read_hl7(self, state: Mapping[str, Any]) -> Iterator[Batch]:
        patterns = tuple(self.config.get("hl7_glob", "*.hl7").split(","))
        yield from self._file_batches(HL7_STREAM.name, self._dir("hl7_dir"), patterns, state,
                                      lambda p: hl7_table.read_drop(p.read_bytes(), origin=p.name),
                                      hl7_table.to_table([]))

    def _read_fhir_files(self, stream: str, state: Mapping[str, Any]) -> Iterator[Batch]:
        empty = fhir_records.empty_table(stream)

        def read_one(path: Path) -> tuple[pa.Table, pa.Table]:
            items, bad = read_fhir_file(path)
            good, invalid = fhir_records.to_tables(items)
            # a file we cannot read may hold this stream's resources: every FHIR stream reports it
            rej = pa.concat_tables([rejected(bad), invalid.get(stream, REJECTED_SCHEMA.empty_table())])
            return good.get(stream, empty), rej

        yield from self._file_batches(stream, self._dir("fhir_dir"), ("*.json", "*.ndjson"), state, read_one, empty)

    # -- FHIR REST ------------------------------------------------------------------------------
    def _read_fhir_rest(self, stream: str, state: Mapping[str, Any]) -> Iterator[Batch]:
        cursor = state.get("last_updated")
        best = datetime.fromisoformat(cursor.replace("Z", "+00:00")) if cursor else None
        http = session(self.config.get("fhir_token") or os.environ.get(str(self.config.get("fhir_token_env", ""))))
        pages = search_pages(self.config["fhir_base_url"], RESOURCE_TYPE[stream], cursor,
                             page_size=self.page_size, http=http)
        pending: Batch | None = None
        for url, bundle in pages:
            if pending:
                yield pending  # not the last page: the cursor does not move yet
            items = list(fhir_records.resources_in(bundle, url))
            good, invalid = fhir_records.to_tables(items)
            top = _newest(items, RESOURCE_TYPE[stream])  # rejected ones count too: they are quarantined
            if top and (best is None or top > best):
                best, cursor = top, top.isoformat().replace("+00:00", "Z")
            pending = Batch(stream, good.get(stream, fhir_records.empty_table(stream)), dict(state),
                            invalid.get(stream, REJECTED_SCHEMA.empty_table()))
        if pending:
            pending.state = {**state, "last_updated": cursor} if cursor else dict(state)
            yield pending
