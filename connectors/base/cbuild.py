"""Build a small C file of ours once, with gcc + OpenSSL's libcrypto, and load it with ctypes.

The shared library lands in the user's cache folder (``$XDG_CACHE_HOME/weftline`` or
``~/.cache/weftline``, mode 0700), named by the hash of its source, so a changed source builds
anew and two processes never load a half-written file (tmp + rename). Anything that goes wrong
(no compiler, no headers, ``WEFTLINE_NATIVE=0``, a library writable by others) gives ``None``:
callers keep a pure DuckDB/Arrow path with identical results (docs/adr/0105).

>>> from pathlib import Path
>>> lib = load_library(Path(__file__).with_name("sha256_text.c"))
>>> lib is None or hasattr(lib, "joined_hex")
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

ENV_SWITCH = "WEFTLINE_NATIVE"  # "0" turns every C loop off


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    d = Path(base) / "weftline"
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    return d


def _safe(path: Path) -> bool:
    """Ours and writable by no one else (a library we load must not be someone else's)."""
    st = path.stat()
    return st.st_uid == os.getuid() and not st.st_mode & 0o022


def _build(source: Path) -> Path:
    tag = hashlib.sha256(source.read_bytes() + sys.platform.encode()).hexdigest()[:16]
    d = _cache_dir()
    lib = d / f"{source.stem}-{tag}.so"
    if lib.exists():
        return lib
    tmp = d / f".{lib.name}.{os.getpid()}"
    cmd = ["gcc", "-O2", "-shared", "-fPIC", "-Wno-deprecated-declarations", str(source), "-o", str(tmp), "-lcrypto"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    os.replace(tmp, lib)
    return lib


@functools.lru_cache(maxsize=None)  # one build + load per source and process, like an import
def load_library(source: Path) -> ctypes.CDLL | None:
    """The compiled library of ``source`` (loaded once per process), or None when C loops are off or
    cannot be built here."""
    return build_and_load(source)


def build_and_load(source: Path) -> ctypes.CDLL | None:
    """:func:`load_library` without the per-process cache (a caller that keeps its own)."""
    if os.environ.get(ENV_SWITCH, "1") == "0":
        return None
    try:
        path = _build(source)
        if not (_safe(path.parent) and _safe(path)):
            log.warning("%s is writable by others; not loading it (pure DuckDB/Arrow path)", path)
            return None
        return ctypes.CDLL(str(path))
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:  # RuntimeError: no home folder
        log.info("no C loop for %s (%s); using the pure DuckDB/Arrow path", source.name, exc)
        return None
