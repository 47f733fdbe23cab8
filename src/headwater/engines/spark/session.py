"""Starting (or joining) the SparkSession Headwater runs on."""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any

from headwater.errors import HeadwaterError

# Session settings Headwater relies on for DuckDB-compatible results: naive timestamps
# (DuckDB's TIMESTAMP), UTC, and Parquet timestamps every reader understands.
RUNTIME_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.timestampType": "TIMESTAMP_NTZ",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}


class SparkEngineError(HeadwaterError):
    """A statement the Spark engine cannot carry out."""


def local_master(master: str) -> bool:
    return master.startswith("local")


def default_conf(master: str, remote: str | None) -> dict[str, str]:
    """Settings for a session Headwater starts itself (the user's ``conf`` wins)."""
    conf = {"spark.ui.showConsoleProgress": "false", "spark.log.level": "ERROR"}
    if remote is None and local_master(master):
        # one machine: a few shuffle partitions beat Spark's 200 for every query
        cores = os.cpu_count() or 2
        conf.update({"spark.ui.enabled": "false",
                     "spark.sql.shuffle.partitions": str(max(4, 2 * cores))})
    return conf


def make_session(
    *, master: str = "local[*]", remote: str | None = None, conf: dict[str, str] | None = None,
    app_name: str = "headwater",
) -> Any:
    """Get or create the SparkSession (``remote``: a Spark Connect URL, ``sc://host:port``)."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    if remote:
        builder = builder.remote(remote)
    elif "PYSPARK_GATEWAY_PORT" not in os.environ:
        # under spark-submit the JVM is already up with its --master: keep it
        builder = builder.master(master)
    for key, value in {**default_conf(master, remote), **(conf or {})}.items():
        builder = builder.config(key, value)
    with warnings.catch_warnings():
        # pyspark warns about pandas versions on import; it is not the user's concern
        warnings.simplefilter("ignore")
        session = builder.getOrCreate()
    for key, value in RUNTIME_CONF.items():
        if key not in (conf or {}):
            session.conf.set(key, value)
    _quiet_pyspark_logs()
    return session


def _quiet_pyspark_logs() -> None:
    """PySpark logs every failed query as a JSON traceback; Headwater reports errors itself."""
    try:
        from pyspark.logger import PySparkLogger
    except ImportError:  # pragma: no cover - pyspark < 4
        return
    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL)
