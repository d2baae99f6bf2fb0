"""ERP source (PostgreSQL, MariaDB, SQLite): customers, orders, contracts, approval steps.

See :mod:`connectors.erp_sql.source` and docs/adr/0220-erp-extraction.md.
"""

from connectors.erp_sql.source import ErpSqlSource
from connectors.erp_sql.streams import OP, STREAMS

__all__ = ["ErpSqlSource", "OP", "STREAMS"]
