"""Where analysis files live: a local folder or an S3 bucket (boto3), behind one small interface.

Credentials never come from configuration: boto3 reads the environment, its shared
files or an instance role (its default chain). Only the endpoint, region, bucket and
prefix are configured.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "a.json").write_text("{}")
>>> store = open_store({"path": str(d)})
>>> [r.key for r in store.list()], store.read(store.list()[0])
(['a.json'], b'{}')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from connectors.errors import ConfigError, RetriableError

SECRET_KEYS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token", "secret", "password")


@dataclass(frozen=True, order=True)
class ObjectRef:
    """One file: sorted by (last_modified, key), the incremental order."""

    last_modified: datetime
    key: str
    size: int = 0


class ObjectStore(Protocol):
    def list(self) -> list[ObjectRef]: ...

    def read(self, ref: ObjectRef) -> bytes: ...


@dataclass(frozen=True)
class FolderStore:
    root: Path
    suffix: str = ".json"

    def list(self) -> list[ObjectRef]:
        if not self.root.is_dir():
            raise ConfigError(f"folder {self.root} does not exist")
        out = []
        for p in self.root.rglob(f"*{self.suffix}"):
            st = p.stat()
            when = datetime.fromtimestamp(st.st_mtime, timezone.utc)
            out.append(ObjectRef(when, p.relative_to(self.root).as_posix(), st.st_size))
        return sorted(out)

    def read(self, ref: ObjectRef) -> bytes:
        return (self.root / ref.key).read_bytes()


@dataclass(frozen=True)
class S3Store:
    client: Any
    bucket: str
    prefix: str = ""
    suffix: str = ".json"

    def list(self) -> list[ObjectRef]:
        out = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
                for o in page.get("Contents", []):
                    if o["Key"].endswith(self.suffix):
                        out.append(ObjectRef(o["LastModified"].astimezone(timezone.utc), o["Key"], o["Size"]))
        except Exception as exc:  # botocore errors: endpoint down, throttled, denied
            raise _sorted_error(exc, f"listing s3://{self.bucket}/{self.prefix}") from exc
        return sorted(out)

    def read(self, ref: ObjectRef) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=ref.key)["Body"].read()
        except Exception as exc:
            raise _sorted_error(exc, f"reading s3://{self.bucket}/{ref.key}") from exc


def _sorted_error(exc: Exception, what: str) -> Exception:
    from botocore.exceptions import ClientError, NoCredentialsError

    if isinstance(exc, NoCredentialsError):
        return ConfigError(f"{what}: no AWS credentials in the environment or boto3's default chain")
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchBucket", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return ConfigError(f"{what}: {code}")
    return RetriableError(f"{what}: {exc}")


def open_store(config: Mapping[str, Any], suffix: str = ".json") -> ObjectStore:
    """``{"path": DIR}`` or ``{"bucket": B, "prefix": P, "endpoint_url": U, "region": R, "retries": N}``.

    ``retries`` (default 5) and ``timeout`` (seconds, default 30) go to botocore's standard retry mode.
    """
    leaked = [k for k in config if k in SECRET_KEYS]
    if leaked:
        raise ConfigError(f"secrets do not belong in the configuration ({leaked}); use the environment")
    if config.get("path"):
        return FolderStore(Path(str(config["path"])), suffix)
    if config.get("bucket"):
        import boto3
        from botocore.config import Config

        timeout = float(config.get("timeout") or 30)
        retry = {"mode": "standard", "max_attempts": int(config.get("retries") or 5)}
        client = boto3.session.Session().client(
            "s3", endpoint_url=config.get("endpoint_url"), region_name=config.get("region") or "us-east-1",
            config=Config(retries=retry, connect_timeout=timeout, read_timeout=timeout),
        )
        return S3Store(client, str(config["bucket"]), str(config.get("prefix") or ""), suffix)
    raise ConfigError("call_analytics needs either 'path' (a folder) or 'bucket' (S3) in its config")
