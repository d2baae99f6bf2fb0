"""The CRM destination: DuckDB by default, PostgreSQL (with an Arrow-native fast path), Parquet files.

>>> from connectors.crm import open_destination, LoadResult, Destination
"""

from connectors.crm.destination import ENV_CRM_URL, Destination, LoadResult, open_destination, parse_url

__all__ = ["ENV_CRM_URL", "Destination", "LoadResult", "open_destination", "parse_url"]
