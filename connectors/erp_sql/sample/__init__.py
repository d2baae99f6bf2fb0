"""A small, seeded sample ERP (customers, orders, contracts, approval steps) for demos and tests."""

from connectors.erp_sql.sample.seed import create_sample_erp, ensure_sample_erp, sample_rows

__all__ = ["create_sample_erp", "ensure_sample_erp", "sample_rows"]
