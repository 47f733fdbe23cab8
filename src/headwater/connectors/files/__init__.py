"""File connectors: sources (CSV, TSV, Parquet, NDJSON, local or S3) and sinks."""
