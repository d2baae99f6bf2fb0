"""The optional C loop for bulk SHA-256 (``lineage/sha256_bulk.c``), built on first use with gcc + libcrypto.

Hashing one edge per Python or SQL call is the floor of capture (docs/adr/0105). This module
compiles the small C file once into the user's cache folder (``$XDG_CACHE_HOME/weftline`` or
``~/.cache/weftline``, mode 0700, the file named by the hash of its source) and loads it with
ctypes. Anything that goes wrong (no compiler, no OpenSSL headers, ``WEFTLINE_NATIVE=0``) gives
``None`` and :mod:`lineage.merkle` hashes in DuckDB instead, with identical results
(tests/lineage/test_native.py compares both).

>>> lib = load()
>>> lib is None or hasattr(lib, "leaf_hashes")
True
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("sha256_bulk.c")
ENV_SWITCH = "WEFTLINE_NATIVE"  # "0" turns the C loop off


class Column(ctypes.Structure):
    _fields_ = [("kind", ctypes.c_int64), ("offset", ctypes.c_int64), ("validity", ctypes.c_void_p),
                ("offsets", ctypes.c_void_p), ("data", ctypes.c_void_p)]


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    d = Path(base) / "weftline"
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    return d


def _safe(path: Path) -> bool:
    """Ours and writable by no one else (a library we load must not be someone else's)."""
    st = path.stat()
    return st.st_uid == os.getuid() and not st.st_mode & 0o022


def _build(src: bytes) -> Path:
    tag = hashlib.sha256(src + sys.platform.encode()).hexdigest()[:16]
    d = _cache_dir()
    lib = d / f"sha256_bulk-{tag}.so"
    if lib.exists():
        return lib
    tmp = d / f".{lib.name}.{os.getpid()}"
    cmd = ["gcc", "-O2", "-shared", "-fPIC", "-Wno-deprecated-declarations", str(SOURCE), "-o", str(tmp), "-lcrypto"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    os.replace(tmp, lib)
    return lib


@functools.lru_cache(maxsize=1)  # one load per process, like an import
def load() -> ctypes.CDLL | None:
    """The compiled library, or None when the C loop is off or cannot be built here."""
    if os.environ.get(ENV_SWITCH, "1") == "0":
        return None
    try:
        lib_path = _build(SOURCE.read_bytes())
        if not (_safe(lib_path.parent) and _safe(lib_path)):
            log.warning("lineage: %s is writable by others; not loading it (hashing in DuckDB)", lib_path)
            return None
        lib = ctypes.CDLL(str(lib_path))
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:  # RuntimeError: no home folder
        log.info("lineage: no C hashing loop (%s); hashing in DuckDB", exc)
        return None
    lib.leaf_hashes.argtypes = [ctypes.POINTER(Column), ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
    lib.leaf_hashes.restype = ctypes.c_int
    lib.node_hashes.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
    lib.node_hashes.restype = None
    lib.hex_decode.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
    lib.hex_decode.restype = ctypes.c_int64
    lib.hex_encode.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
    lib.hex_encode.restype = None
    return lib
