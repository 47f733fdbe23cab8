"""Names every engine shares: schemas, hidden columns, the default environment."""

INTERNAL_SCHEMA = "_hw"
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"  # partition key of rows whose value is NULL
HIDDEN_PREFIX = "_hw_"  # bookkeeping columns transforms and views do not see
PARTITION_COLUMN = "_hw_file"  # hidden: the file (partition) a source row came from
META_SCHEMA = "_hw_meta"  # bookkeeping that must commit with the data (windows, partitions)
DEFAULT_ENV = "prod"
