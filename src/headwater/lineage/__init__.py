"""Lineage: column-level lineage across the graph (sqlglot for SQL, declared or coarse for
Python), read by the CLI, the docs site and the web UI."""
