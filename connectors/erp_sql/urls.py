"""Database URLs: one spelling in the config, the right driver for each library.

>>> sqlalchemy_url("postgresql://u:p@h:5432/db")
'postgresql+psycopg2://u:p@h:5432/db'
>>> sqlalchemy_url("mariadb://root@127.0.0.1:3306/erp")
'mysql+pymysql://root@127.0.0.1:3306/erp'
>>> libpq_url("postgresql+psycopg2://u:p@h/db"), dialect("sqlite:///x.db")
('postgresql://u:p@h/db', 'sqlite')
>>> masked("postgresql://u:secret@h/db")
'postgresql://u:***@h/db'
"""

from __future__ import annotations

import re

from connectors.errors import ConfigError

_DRIVERS = {"postgresql": "postgresql+psycopg2", "postgres": "postgresql+psycopg2", "mysql": "mysql+pymysql",
            "mariadb": "mysql+pymysql", "sqlite": "sqlite"}
_DIALECTS = {"postgresql": "postgresql", "postgres": "postgresql", "mysql": "mysql", "mariadb": "mysql",
             "sqlite": "sqlite"}


def _scheme(url: str) -> tuple[str, str]:
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigError(f"not a database URL: {masked(url)!r} (expected e.g. sqlite:///erp.sqlite)")
    base = scheme.split("+", 1)[0].lower()
    if base not in _DIALECTS:
        raise ConfigError(f"unsupported database {base!r} in {masked(url)!r}; use postgresql, mariadb/mysql or sqlite")
    return base, rest


def dialect(url: str) -> str:
    """``postgresql``, ``mysql`` (MariaDB too) or ``sqlite``."""
    return _DIALECTS[_scheme(url)[0]]


def sqlalchemy_url(url: str) -> str:
    base, rest = _scheme(url)
    scheme = url.partition("://")[0]
    return url if "+" in scheme else f"{_DRIVERS[base]}://{rest}"


def libpq_url(url: str) -> str:
    """A libpq URI for ADBC (no SQLAlchemy driver suffix)."""
    return f"postgresql://{_scheme(url)[1]}"


def masked(url: str) -> str:
    """The URL with its password replaced by ``***`` (for messages and logs)."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)
