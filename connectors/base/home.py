"""Where weftline keeps its embedded state: ``$WEFTLINE_HOME`` (default ``./.weftline``).

Layout: ``crm.duckdb`` (the default CRM destination), ``landing/``, ``lineage/``,
``state/`` (cursors), ``quarantine/``, ``keys/`` (0600 secrets generated once).

>>> import os, tempfile
>>> h = Home(tempfile.mkdtemp())
>>> h.landing.name, h.crm_duckdb.name
('landing', 'crm.duckdb')
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

ENV_HOME = "WEFTLINE_HOME"
ENV_SUBJECT_KEY = "WEFTLINE_SUBJECT_KEY"


@dataclass(frozen=True)
class Home:
    root: Path

    def __init__(self, root: str | os.PathLike[str] | None = None):
        object.__setattr__(self, "root", Path(root or os.environ.get(ENV_HOME) or ".weftline").resolve())

    @property
    def crm_duckdb(self) -> Path:
        return self.root / "crm.duckdb"

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def lineage(self) -> Path:
        return self.root / "lineage"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    def subject_key(self) -> bytes:
        """The HMAC key for subject ids: ``$WEFTLINE_SUBJECT_KEY``, else one generated once (0600)."""
        env = os.environ.get(ENV_SUBJECT_KEY)
        if env:
            return env.encode()
        path = self.keys / "subject.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, secrets.token_hex(32).encode())
            finally:
                os.close(fd)
        return path.read_bytes().strip()
