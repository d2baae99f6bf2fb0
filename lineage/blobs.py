"""Where segment files live: a local folder (embedded) or an S3 bucket + prefix (boto3).

>>> import tempfile
>>> b = LocalBlobs(tempfile.mkdtemp())
>>> b.put("a.parquet", b"xyz"); b.get("a.parquet"), b.size("a.parquet"), b.size("missing")
(b'xyz', 3, None)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa

from connectors.base.files import write_atomic, write_atomic_by


class LocalBlobs:
    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        return self.root / name

    def put(self, name: str, data: bytes) -> None:
        """Durable when it returns: temporary file, fsync, rename. ``data``: any bytes-like object."""
        write_atomic(self.path(name), data, sync_dir=False)

    def put_with(self, name: str, fill: Callable[[Any], None]) -> int:
        """Like :meth:`put`, the bytes written by ``fill(sink)`` into an Arrow output stream on the file itself
        (a Parquet writer, no copy in memory first); returns the size."""
        final = self.path(name)

        def write(tmp):
            with pa.OSFile(str(tmp), "wb") as sink:
                fill(sink)

        write_atomic_by(final, write)
        return final.stat().st_size

    def get(self, name: str) -> bytes:
        return self.path(name).read_bytes()

    def size(self, name: str) -> int | None:
        try:
            return self.path(name).stat().st_size
        except FileNotFoundError:
            return None

    def describe(self, name: str) -> str:
        return str(self.path(name))


class S3Blobs:
    """Segments in ``s3://bucket/prefix``; the client comes from boto3 (endpoint from the URL or env)."""

    def __init__(self, bucket: str, prefix: str = "", client: Any = None, endpoint_url: str | None = None):
        import boto3

        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.client = client or boto3.client("s3", endpoint_url=endpoint_url or os.environ.get("AWS_ENDPOINT_URL"))

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def put(self, name: str, data: bytes) -> None:
        body = data if isinstance(data, (bytes, bytearray)) else bytes(memoryview(data))  # boto3 takes no buffers
        self.client.put_object(Bucket=self.bucket, Key=self._key(name), Body=body)

    def put_with(self, name: str, fill: Callable[[Any], None]) -> int:
        """Like :meth:`LocalBlobs.put_with`: ``fill(sink)`` into memory, then one upload."""
        sink = pa.BufferOutputStream()
        fill(sink)
        data = sink.getvalue()
        self.put(name, data)
        return data.size

    def get(self, name: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=self._key(name))["Body"].read()

    def size(self, name: str) -> int | None:
        from botocore.exceptions import ClientError

        try:
            return int(self.client.head_object(Bucket=self.bucket, Key=self._key(name))["ContentLength"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def describe(self, name: str) -> str:
        return f"s3://{self.bucket}/{self._key(name)}"
