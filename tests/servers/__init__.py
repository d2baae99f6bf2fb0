"""Reusable local test servers (real protocols on loopback), importable from any conftest."""
