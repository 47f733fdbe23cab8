-- Terminal telemetry, typed: one row per device reading with its calendar date.
-- @tags: telemetry, staging
-- @materialized: table
SELECT
    device_id,
    CAST(ts AS TIMESTAMP) AS ts,
    CAST(CAST(ts AS TIMESTAMP) AS DATE) AS reading_date,
    status,
    CAST(battery_pct AS INTEGER) AS battery_pct,
    CAST(signal_dbm AS INTEGER) AS signal_dbm,
    CAST(app_latency_ms AS INTEGER) AS app_latency_ms
FROM telemetry
WHERE device_id IS NOT NULL
