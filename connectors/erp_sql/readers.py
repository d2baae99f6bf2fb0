"""Arrow readers over the three databases; chosen by URL (see docs/adr/0220-erp-extraction.md).

- PostgreSQL: ADBC (``adbc_driver_postgresql``), the binary COPY protocol straight into Arrow.
- MariaDB / SQLite (and PostgreSQL with ``reader: sqlalchemy``): SQLAlchemy with a server-side
  cursor, rows fetched in partitions and turned into Arrow column by column.

Every reader yields ``pa.Table`` s of at most ``batch_size`` rows and sorts driver errors
into weftline's kinds: unreachable → :class:`RetriableError`, missing table/column → :class:`ConfigError`.

>>> import sqlite3, tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "x.db")
>>> with sqlite3.connect(path) as c: _ = c.execute("create table t (a int, b text)"); _ = c.execute("insert into t values (1, 'é'), (2, null)")
>>> r = open_reader(f"sqlite:///{path}")
>>> [t.to_pydict() for t in r.batches('select a, b from "t" order by a', [], batch_size=1)]
[{'a': [1], 'b': ['é']}, {'a': [2], 'b': [None]}]
>>> r.close()
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from typing import Any, Protocol

import pyarrow as pa

from connectors.erp_sql.urls import dialect, libpq_url, masked, sqlalchemy_url
from connectors.errors import ConfigError, FatalError, RetriableError

log = logging.getLogger(__name__)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MISSING = ("no such table", "no such column", "unknown column", "doesn't exist", "does not exist", "undefined")


def ident(name: str) -> str:
    """Check a table/column/schema name (they are quoted, but never taken from data)."""
    if not _IDENT.fullmatch(name):
        raise ConfigError(f"not a plain SQL identifier: {name!r}")
    return name


class Reader(Protocol):
    dialect: str

    def quote(self, name: str) -> str: ...
    def column(self, name: str, kind: pa.DataType) -> str: ...
    def placeholder(self, index: int) -> str: ...
    def bind(self, value: Any) -> Any: ...
    def batches(self, sql: str, params: Sequence[Any], batch_size: int) -> Iterator[pa.Table]: ...
    def close(self) -> None: ...


def _classify(exc: BaseException, url: str) -> Exception:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    low = text.lower()
    if any(m in low for m in _MISSING) and "database" not in low:
        return ConfigError(f"ERP query failed at {masked(url)}: {text}")
    return RetriableError(f"ERP database unreachable or failed at {masked(url)}: {text}")


def _rebatch(tables: Iterator[pa.Table], batch_size: int) -> Iterator[pa.Table]:
    """Regroup tables into ones of ``batch_size`` rows (the last may be shorter)."""
    pending: list[pa.Table] = []
    rows = 0
    for t in tables:
        pending.append(t)
        rows += t.num_rows
        while rows >= batch_size:
            whole = pa.concat_tables(pending)
            yield whole.slice(0, batch_size).combine_chunks()
            rest = whole.slice(batch_size)
            pending, rows = ([rest], rest.num_rows) if rest.num_rows else ([], 0)
    if rows:
        yield pa.concat_tables(pending).combine_chunks()


# An extraction streams one ordered scan: JIT compiling it and parallel workers merging it cost the
# ERP's server more CPU than they save (measured: 1.25 → 1.05 CPU-s per 1 M orders), on the ERP's
# machine, for a read that the client consumes at its own pace anyway.
SESSION_SETTINGS = ("SET jit = off", "SET max_parallel_workers_per_gather = 0")


class AdbcPostgres:
    dialect = "postgresql"

    def __init__(self, url: str):
        import adbc_driver_postgresql.dbapi as pg

        self.url = url
        try:
            self.con = pg.connect(libpq_url(url))
            with self.con.cursor() as cur:
                for setting in SESSION_SETTINGS:
                    cur.execute(setting)
        except Exception as exc:  # the driver raises its own OperationalError family
            raise _classify(exc, url) from exc

    def quote(self, name: str) -> str:
        return f'"{ident(name)}"'

    def column(self, name: str, kind: pa.DataType) -> str:
        """A selected column. A decimal comes as the server's text: the driver reads binary numerics
        into text itself, at twice the server's cost (0.6 CPU-s per 1 M rows of three numerics)."""
        return f"{self.quote(name)}::text AS {self.quote(name)}" if pa.types.is_decimal(kind) else self.quote(name)

    def placeholder(self, index: int) -> str:
        return f"${index + 1}"

    def bind(self, value: Any) -> Any:
        return value

    def batches(self, sql: str, params: Sequence[Any], batch_size: int) -> Iterator[pa.Table]:
        cur = self.con.cursor()
        try:
            try:
                cur.execute(sql, parameters=tuple(params) or None)
                reader = cur.fetch_record_batch()
            except Exception as exc:
                raise _classify(exc, self.url) from exc
            it = (pa.Table.from_batches([b]) for b in reader)
            yield from _rebatch(_guard(it, self.url), batch_size)
        finally:
            cur.close()

    def close(self) -> None:
        try:
            self.con.close()
        except Exception as exc:
            log.debug("closing a broken ERP connection: %s", exc)


class SqlAlchemyReader:
    def __init__(self, url: str):
        import sqlalchemy as sa

        self.url = url
        self.dialect = dialect(url)
        self.engine = sa.create_engine(sqlalchemy_url(url), pool_pre_ping=False)
        try:
            self.con = self.engine.connect()
        except sa.exc.DBAPIError as exc:
            self.engine.dispose()
            raise _classify(exc.orig or exc, url) from exc

    def quote(self, name: str) -> str:
        return f"`{ident(name)}`" if self.dialect == "mysql" else f'"{ident(name)}"'

    def column(self, name: str, kind: pa.DataType) -> str:
        return self.quote(name)

    def placeholder(self, index: int) -> str:
        return f":p{index}"

    def bind(self, value: Any) -> Any:
        if isinstance(value, datetime) and self.dialect != "postgresql":
            value = value.astimezone(timezone.utc).replace(tzinfo=None)  # MariaDB DATETIME / SQLite text hold UTC
            if self.dialect == "sqlite":
                return value.strftime("%Y-%m-%d %H:%M:%S.%f")
        return value

    def batches(self, sql: str, params: Sequence[Any], batch_size: int) -> Iterator[pa.Table]:
        import sqlalchemy as sa

        result = None
        try:
            result = self.con.execution_options(stream_results=True, max_row_buffer=batch_size).execute(
                sa.text(sql), {f"p{i}": v for i, v in enumerate(params)})
            names = list(result.keys())
            for rows in result.partitions(batch_size):
                cols = list(zip(*rows))
                yield pa.table({n: pa.array(c) for n, c in zip(names, cols)})
        except sa.exc.DBAPIError as exc:
            _abandon(result)
            raise _classify(exc.orig or exc, self.url) from exc

    def close(self) -> None:
        try:
            self.con.close()
        except Exception as exc:  # a killed connection cannot always be closed cleanly (pymysql)
            log.debug("closing a broken ERP connection: %s", exc)
        self.engine.dispose()


def _abandon(result: Any) -> None:
    """Forget a streaming result whose connection died, so the driver does not read the dead socket
    again when it is garbage-collected (pymysql's unbuffered result would, and fail noisily)."""
    raw = getattr(getattr(result, "cursor", None), "_result", None)
    if raw is not None and hasattr(raw, "unbuffered_active"):
        raw.unbuffered_active = False


def _guard(it: Iterator[pa.Table], url: str) -> Iterator[pa.Table]:
    try:
        yield from it
    except Exception as exc:
        if isinstance(exc, (ConfigError, FatalError, RetriableError)):
            raise
        raise _classify(exc, url) from exc


def open_reader(url: str, reader: str = "auto") -> Reader:
    """The reader for ``url``: ``auto`` (ADBC for PostgreSQL), ``adbc`` or ``sqlalchemy``."""
    d = dialect(url)
    if reader not in ("auto", "adbc", "sqlalchemy"):
        raise ConfigError(f"reader must be auto, adbc or sqlalchemy, not {reader!r}")
    if reader == "adbc" and d != "postgresql":
        raise ConfigError(f"the ADBC reader is for PostgreSQL only, not {d}")
    if d == "postgresql" and reader in ("auto", "adbc"):
        return AdbcPostgres(url)
    return SqlAlchemyReader(url)
