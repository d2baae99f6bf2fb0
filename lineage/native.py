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
from pathlib import Path

from connectors.base.cbuild import ENV_SWITCH, build_and_load  # noqa: F401  (ENV_SWITCH: "0" turns it off)

SOURCE = Path(__file__).with_name("sha256_bulk.c")


class Column(ctypes.Structure):
    """One column of a batch for ``leaf_hashes`` (the ``column`` struct of sha256_bulk.c)."""

    _fields_ = [("kind", ctypes.c_int64), ("offset", ctypes.c_int64), ("validity", ctypes.c_void_p),
                ("offsets", ctypes.c_void_p), ("data", ctypes.c_void_p), ("indices", ctypes.c_void_p),
                ("hex_out", ctypes.c_void_p), ("hex_width", ctypes.c_int64), ("hex_bad", ctypes.c_int64)]


@functools.lru_cache(maxsize=1)  # one load per process, like an import
def load() -> ctypes.CDLL | None:
    """The compiled library, or None when the C loop is off or cannot be built here."""
    lib = build_and_load(SOURCE)  # the build, cache folder and safety checks of connectors/base/cbuild.py
    if lib is None:
        return None
    lib.leaf_hashes.argtypes = [ctypes.POINTER(Column), ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
    lib.leaf_hashes.restype = ctypes.c_int
    lib.leaf_hashes_with.argtypes = [ctypes.POINTER(Column), ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p,
                                     ctypes.c_int]
    lib.leaf_hashes_with.restype = ctypes.c_int
    lib.leaf_hashes_v2.argtypes = [ctypes.POINTER(Column), ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p,
                                   ctypes.c_char_p, ctypes.c_int64, ctypes.c_int]
    lib.leaf_hashes_v2.restype = ctypes.c_int
    lib.node_hashes.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
    lib.node_hashes.restype = None
    lib.node_hashes_with.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int]
    lib.node_hashes_with.restype = None
    lib.hex_decode.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
    lib.hex_decode.restype = ctypes.c_int64
    lib.hex_encode.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
    lib.hex_encode.restype = None
    return lib
