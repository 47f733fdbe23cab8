-- Daily health score per payment terminal (0-100): uptime, battery and p95 latency blended.
-- @tags: telemetry, daily
-- @materialized: table
WITH daily_readings AS (
    SELECT
        device_id,
        reading_date,
        COUNT(*) AS readings,
        COUNT(*) FILTER (WHERE status = 'online') AS online_readings,
        COUNT(*) FILTER (WHERE status = 'degraded') AS degraded_readings,
        COUNT(*) FILTER (WHERE status = 'offline') AS offline_readings,
        COUNT(*) FILTER (WHERE battery_pct < 20) AS low_battery_readings,
        MIN(battery_pct) AS min_battery_pct,
        ROUND(AVG(signal_dbm), 1) AS avg_signal_dbm,
        QUANTILE_CONT(app_latency_ms, 0.95) AS p95_latency_ms
    FROM stg_telemetry
    GROUP BY device_id, reading_date
),
components AS (
    SELECT
        *,
        -- a degraded reading counts as half up
        (online_readings + 0.5 * degraded_readings) / readings AS uptime_share,
        1.0 - 1.0 * low_battery_readings / readings AS battery_ok_share,
        -- p95 of 200 ms or better scores 1, 2 s or worse 0. A dark device has no latency
        -- at all and scores 0 (test for NULL first: GREATEST and LEAST skip NULLs).
        CASE
            WHEN p95_latency_ms IS NULL THEN 0.0
            ELSE GREATEST(0.0, LEAST(1.0, (2000.0 - p95_latency_ms) / 1800.0))
        END AS latency_score
    FROM daily_readings
)
SELECT
    device_id,
    reading_date,
    readings,
    online_readings,
    degraded_readings,
    offline_readings,
    low_battery_readings,
    min_battery_pct,
    avg_signal_dbm,
    ROUND(p95_latency_ms, 1) AS p95_latency_ms,
    ROUND(uptime_share, 4) AS uptime_share,
    -- a DECIMAL: averages of it downstream are exact, whatever order rows are summed in
    ROUND(100 * (0.5 * uptime_share + 0.2 * battery_ok_share + 0.3 * latency_score), 1)
        ::DECIMAL(5, 1) AS health_score
FROM components
