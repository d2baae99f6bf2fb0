"""Parquet files as the CRM (a local folder or S3), loaded through dlt's filesystem destination.

Layout (dlt's default): ``<bucket_url>/<dataset>/<entity>/<dlt load id>.<file id>.parquet``.
Plain Parquet files cannot be updated in place, so an upsert reads the entity,
keeps the last row per key over old + new rows (Arrow, vectorised) and hands the
result to dlt as a ``replace``; an erasure rewrites only the files that hold the
erased record ids. Fine for an export target of CRM size; for large, busy entities
use PostgreSQL (docs/adr/0203-filesystem-parquet-upsert.md).

S3 credentials come from boto3's default chain (environment, profile, instance role);
``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` point at an S3-compatible server.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

import dlt
import fsspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from connectors.base.home import Home
from connectors.base.reserved import LOAD_ID, RECORD_ID, WriteDisposition
from connectors.crm import pipeline as dltrun
from connectors.crm.batch import check_names, ids_table, keep_last, prepare
from connectors.crm.destination import LoadResult, RecordIds
from connectors.crm.evolution import check_types


def _s3_options() -> tuple[Any, dict[str, Any]]:
    """dlt credentials and fsspec options from boto3's default chain (never from a file we own)."""
    import boto3
    from dlt.common.configuration.specs import AwsCredentials

    session = boto3.Session()
    creds = AwsCredentials.from_session(session)
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    creds.endpoint_url = endpoint
    frozen = session.get_credentials().get_frozen_credentials() if session.get_credentials() else None
    options: dict[str, Any] = {"client_kwargs": {"endpoint_url": endpoint, "region_name": session.region_name}}
    if frozen is not None:
        options.update(key=frozen.access_key, secret=frozen.secret_key, token=frozen.token)
    return creds, options


class FilesystemDestination:
    def __init__(self, home: Home, bucket_url: str, dataset: str):
        self.home, self.bucket_url, self.dataset = home, bucket_url.rstrip("/"), dataset
        self.name = f"filesystem:{dataset}"
        self._pipelines: dict[str, Any] = {}
        if urlsplit(self.bucket_url).scheme == "s3":
            self._creds, options = _s3_options()
        else:
            self._creds, options = None, {}
        self._fs, root = fsspec.core.url_to_fs(self.bucket_url, **options)
        self._root = root.rstrip("/")

    def _pipeline(self, entity: str) -> Any:
        if entity not in self._pipelines:
            name = dltrun.pipeline_name("filesystem", self.bucket_url, self.dataset, entity)
            dest = dlt.destinations.filesystem(bucket_url=self.bucket_url, credentials=self._creds)
            self._pipelines[entity] = dltrun.make_pipeline(self.home, name, dest, self.dataset)
        return self._pipelines[entity]

    def _files(self, entity: str) -> list[str]:
        folder = f"{self._root}/{self.dataset}/{entity}"
        self._fs.invalidate_cache()  # dlt writes through its own client: never trust a cached listing
        if not self._fs.exists(folder):
            return []
        return sorted(f for f in self._fs.ls(folder, detail=False) if f.endswith(".parquet"))

    def load(
        self, entity: str, table: pa.Table, key: list[str], write: WriteDisposition, load_id: str
    ) -> LoadResult:
        check_names([entity])
        batch, superseded = prepare(table, key, write, load_id)
        pipeline = self._pipeline(entity)
        if write == "upsert":
            check_types(entity, dltrun.stored_columns(pipeline, entity), batch.schema)
            merged = keep_last(pa.concat_tables([self.read(entity), batch], promote_options="permissive"), key)
            dltrun.run(pipeline, entity, merged, key, "replace", load_id)
        else:
            dltrun.run(pipeline, entity, batch, key, write, load_id)
        return LoadResult(self.name, entity, entity, load_id, batch.num_rows, superseded)

    def read(self, entity: str, where_record_ids: RecordIds | None = None) -> pa.Table:
        parts = [pq.read_table(f, filesystem=self._fs) for f in self._files(entity)]
        if not parts:
            return pa.table({})
        table = pa.concat_tables(parts, promote_options="permissive")
        if where_record_ids is None:
            return table
        return table.filter(pc.is_in(table.column(RECORD_ID), value_set=ids_table(where_record_ids).column("id")))

    def delete_records(self, entity: str, record_ids: RecordIds) -> int:
        """Rewrite each file that holds one of ``record_ids`` without those rows."""
        ids = ids_table(record_ids).column("id")
        deleted = 0
        for path in self._files(entity):
            part = pq.read_table(path, filesystem=self._fs)
            hit = pc.is_in(part.column(RECORD_ID), value_set=ids)
            n = pc.sum(hit).as_py() or 0
            if not n:
                continue
            kept = part.filter(pc.invert(hit))
            if kept.num_rows:
                tmp = f"{path}.wl-tmp"
                with self._fs.open(tmp, "wb") as out:
                    pq.write_table(kept, out)
                self._fs.mv(tmp, path)
            else:
                self._fs.rm(path)
            deleted += n
        return deleted

    def committed_load_ids(self, entity: str) -> set[str]:
        ids: set[str] = set()
        for path in self._files(entity):
            col = pq.read_table(path, columns=[LOAD_ID], filesystem=self._fs).column(LOAD_ID)
            ids.update(v for v in pc.unique(col).to_pylist() if v is not None)
        return ids
