"""The Apache Spark engine: same project, same results as DuckDB."""
