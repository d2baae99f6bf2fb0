"""Airflow DAGs for weftline: one DAG per integration, built by a factory from mappings/*.integration.yaml.

The factory and the DAG files come with the orchestration issue; every stage they will call is already a
plain function of files on disk (weftline/runner.py, weftline/integrations.py), the same code path as
`weftline run INTEGRATION`.
"""
