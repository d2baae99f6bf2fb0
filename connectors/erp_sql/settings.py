"""The erp_sql connector's configuration, checked once (secrets already resolved by the integration loader).

>>> s = Settings.from_config({"url": "postgresql://u:pw@h/db", "batch_size": 1000})
>>> s.batch_size, s.lookback_seconds, s.reconcile_every, s.reader
(1000, 300.0, 1, 'auto')
>>> s
Settings(url='postgresql://u:***@h/db', schema=None, batch_size=1000, lookback_seconds=300.0, reconcile_every=1, reader='auto', max_seen=10000, tables={}, cursors={})
>>> Settings.from_config({"url": "sqlite:///x", "bogus": 1})
Traceback (most recent call last):
...
connectors.errors.ConfigError: erp_sql config: unknown key(s) ['bogus']; known: batch_size, cursors, lookback_seconds, max_seen, reader, reconcile_every, schema, tables, url
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from connectors.erp_sql.readers import ident
from connectors.erp_sql.urls import dialect, masked
from connectors.errors import ConfigError


@dataclass(frozen=True)
class Settings:
    url: str = field(repr=False)
    schema: str | None = None  # PostgreSQL schema of the ERP tables (default: the search path)
    batch_size: int = 50_000  # rows per yielded batch
    lookback_seconds: float = 300.0  # re-read window for late rows (timestamp cursors)
    reconcile_every: int = 1  # key reconciliation (hard deletes) every N runs; 0 = never
    reader: str = "auto"  # auto | adbc | sqlalchemy
    max_seen: int = 10_000  # most row versions remembered inside the lookback window
    tables: dict = field(default_factory=dict)  # stream → table name, where the ERP names them otherwise
    cursors: dict = field(default_factory=dict)  # stream → cursor column, e.g. {approval_steps: step_id}

    def __repr__(self) -> str:
        rest = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.name != "url")
        return f"Settings(url={masked(self.url)!r}, {rest})"

    @classmethod
    def from_config(cls, config: dict) -> "Settings":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ConfigError(f"erp_sql config: unknown key(s) {unknown}; known: {', '.join(sorted(known))}")
        if not isinstance(config.get("url"), str) or not config["url"]:
            raise ConfigError("erp_sql config: 'url' is required (e.g. sqlite:///erp.sqlite or {env: WEFTLINE_ERP_URL})")
        dialect(config["url"])
        try:
            s = cls(**{**config, "batch_size": int(config.get("batch_size", 50_000)),
                       "lookback_seconds": float(config.get("lookback_seconds", 300)),
                       "reconcile_every": int(config.get("reconcile_every", 1)),
                       "max_seen": int(config.get("max_seen", 10_000)),
                       "tables": dict(config.get("tables") or {}),
                       "cursors": dict(config.get("cursors") or {})})
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"erp_sql config: {exc}") from exc
        if s.batch_size < 1 or s.lookback_seconds < 0 or s.reconcile_every < 0:
            raise ConfigError("erp_sql config: batch_size >= 1, lookback_seconds >= 0, reconcile_every >= 0")
        for name in [s.schema, *s.tables.values(), *s.cursors.values()]:
            if name is not None:
                ident(name)
        return s
