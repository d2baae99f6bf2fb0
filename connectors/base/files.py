"""Durable file writes: write to a temporary name, fsync, rename, fsync the folder.

A reader in another process sees the old file or the new one, never half of one, and a crash
right after the call returns cannot lose the write.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "a" / "x.json"
>>> write_atomic(p, b'{"ok": true}')
>>> p.read_text()
'{"ok": true}'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, BinaryIO


def fsync_path(path: Path) -> None:
    """fsync a file or a folder by its path (e.g. a file another library wrote and closed)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


fsync_dir = fsync_path


def write_atomic_by(path: Path, write: Callable[[Path], None]) -> None:
    """Like :func:`write_atomic` for a writer that takes a path (Parquet, an Arrow output stream):
    ``write(tmp)``, fsync, rename; the folder is not fsynced (the callers' readers tolerate an old file)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    write(tmp)
    fsync_path(tmp)
    os.replace(tmp, path)


def write_atomic(path: Path, data: bytes | Callable[[BinaryIO], None], sync_dir: bool = True) -> None:
    """Write ``data`` (bytes, or a function writing to the open file) to ``path`` durably and atomically.

    ``sync_dir=False`` skips the folder's fsync: the new content is still durable and whole before the
    rename, but after a power loss the rename itself may be lost (the old file is seen) — only for files
    where an old value is safe (a consumer cursor that is behind reprocesses; see docs/adr/0285).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        data(fh) if callable(data) else fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    if sync_dir:
        fsync_dir(path.parent)
