"""The HIS source: HL7 v2 file drops and FHIR R4 (files or a REST server), as declared streams.

Config (secrets already resolved by the runner; none are written in the file)::

    hl7_dir: drops/hl7          # HL7 v2 files, one or many messages each (``hl7_glob``, default *.hl7)
    fhir_dir: drops/fhir        # FHIR JSON / Bundle / NDJSON files …
    fhir_base_url: https://…    # … or a FHIR R4 REST server (not both)
    fhir_token: {env: FHIR_TOKEN}   # optional bearer token
    page_size: 100              # FHIR search and _history _count
    batch_files: 200            # files per batch

A ``{home}`` in a path is the weftline home. State: files seen by name, mtime and
size (a changed file is read again; its records keep their ids, so nothing
doubles); for FHIR REST one cursor ``last_updated``, advanced only with the last batch of
a run: the newest entry of the type's ``_history`` since the cursor (whose ``DELETE``
entries become delete events, ``_op = 'delete'``), or on a first sync and on a server
without ``_history`` the greatest ``meta.lastUpdated`` of the search (docs/adr/0243). MLLP (push) lands into the same ``hl7_messages`` stream:
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
from connectors.his.fhir_deletes import Deleted
from connectors.his.fhir_history import History, read_history
from connectors.his.fhir_rest import Unsupported, search_pages, session

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
        self._no_history: set[str] = set()  # resource types whose _history the server refused (warned once)

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
    def _history(self, rtype: str, cursor: str, http) -> History | None:
        """The deletes since ``cursor`` (None: the server has no ``_history``; warned once per run and type)."""
        try:
            return read_history(self.config["fhir_base_url"], rtype, cursor, page_size=self.page_size, http=http)
        except Unsupported as err:
            if rtype not in self._no_history:
                self._no_history.add(rtype)
                log.warning("his: the FHIR server has no %s/_history (%s); deleted %s resources are not detected, "
                            "the sync goes on with the search only", rtype, err, rtype)
            return None

    def _read_fhir_rest(self, stream: str, state: Mapping[str, Any]) -> Iterator[Batch]:
        """History first (its deletes), then the search; deletes are merged into the pages by time.

        The cursor moves only with the last batch: to the newest history entry when the history was
        read, else (first sync, no history on the server) to the newest resource of the search.
        """
        rtype, cursor = RESOURCE_TYPE[stream], state.get("last_updated")
        http = session(self.config.get("fhir_token") or os.environ.get(str(self.config.get("fhir_token_env", ""))))
        history = self._history(rtype, cursor, http) if cursor else None
        deletes = list(history.deletes) if history else []
        start = best = datetime.fromisoformat(cursor.replace("Z", "+00:00")) if cursor else None
        pages = search_pages(self.config["fhir_base_url"], rtype, cursor, page_size=self.page_size, http=http)
        pending: Batch | None = None
        for url, bundle in pages:
            if pending:
                yield pending  # not the last page: the cursor does not move yet
            items = list(fhir_records.resources_in(bundle, url))
            good, invalid = fhir_records.to_tables(items)
            top = _newest(items, rtype)  # rejected ones count too: they are quarantined
            if top and (best is None or top > best):
                best = top
            now, deletes = _due(deletes, top)
            pending = _with_deletes(Batch(stream, good.get(stream, fhir_records.empty_table(stream)), dict(state),
                                          invalid.get(stream, REJECTED_SCHEMA.empty_table())), now)
        pending = _with_deletes(pending, deletes)  # the rest: deleted after the newest search result
        newest = history.newest if history else best
        moved = newest is not None and newest != start
        pending.state = {**state, "last_updated": newest.isoformat().replace("+00:00", "Z")} if moved else dict(state)
        yield pending


def _due(deletes: list[tuple[str, Deleted]], upto: datetime | None) -> tuple[list, list]:
    """(deletes at or before ``upto``, the others); both keep their time order.

    >>> from connectors.his.fhir_deletes import deleted_entry
    >>> ds = [("o", deleted_entry({"request": {"method": "DELETE", "url": f"Patient/{i}"},
    ...                            "response": {"lastModified": f"2024-01-0{i}T00:00:00Z"}}, "o")) for i in (1, 2, 3)]
    >>> now, later = _due(ds, datetime.fromisoformat("2024-01-02T00:00:00+00:00"))
    >>> [d.id for _, d in now], [d.id for _, d in later]
    (['1', '2'], ['3'])
    """
    if upto is None:
        return [], deletes
    n = next((i for i, (_, d) in enumerate(deletes) if d.last_updated is None or d.last_updated > upto), len(deletes))
    return deletes[:n], deletes[n:]


def _with_deletes(batch: Batch, deletes: list[tuple[str, Deleted]]) -> Batch:
    """The batch with these delete events merged in by ``last_updated`` (rejected: the unusable ones)."""
    if not deletes:
        return batch
    good, bad = fhir_records.to_tables(deletes)
    events = good.get(batch.stream)
    if events is not None:
        table = pa.concat_tables([batch.table, events], promote_options="permissive")
        batch.table = table.sort_by([("last_updated", "ascending")])
    if batch.stream in bad:
        batch.rejected = pa.concat_tables([batch.rejected, bad[batch.stream]])
    return batch
