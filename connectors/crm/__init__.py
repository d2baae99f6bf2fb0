"""The CRM destination: DuckDB by default, PostgreSQL (with an Arrow-native fast path), Parquet files.

>>> from connectors.crm import open_destination, LoadResult, Destination
"""

import os

# dlt looks every config value up in Airflow Variables when Airflow is importable (hundreds of
# metadata-DB reads per load: ~7 s measured). weftline hands dlt its credentials explicitly, so
# the lookup only costs; an explicit setting in the environment still wins. Set here, on package
# import (no dlt import), so it precedes dlt's first configuration lookup. See docs/adr/0204.
os.environ.setdefault("PROVIDERS__ENABLE_AIRFLOW_SECRETS", "false")

from connectors.crm.destination import (  # noqa: E402
    ENV_CRM_URL,
    Destination,
    LoadResult,
    open_destination,
    parse_url,
)

__all__ = ["ENV_CRM_URL", "Destination", "LoadResult", "open_destination", "parse_url"]
