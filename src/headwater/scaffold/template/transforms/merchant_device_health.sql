-- Terminal fleet health per merchant per day: devices reporting, average and worst score.
-- @tags: telemetry, merchants, daily
-- @materialized: table
SELECT
    m.merchant_id,
    m.merchant_name,
    m.city,
    h.reading_date,
    COUNT(*) AS devices_reporting,
    -- via DECIMAL: an average landing on .x5 rounds the same way on every engine
    ROUND(AVG(h.health_score)::DECIMAL(9, 4), 1) AS avg_health_score,
    MIN(h.health_score) AS worst_health_score,
    COUNT(*) FILTER (WHERE h.health_score < 60) AS critical_devices,
    ROUND(1.0 * SUM(h.offline_readings) / SUM(h.readings), 4) AS offline_share
FROM device_health_daily AS h
JOIN devices AS d ON d.device_id = h.device_id
JOIN stg_merchants AS m ON m.merchant_id = d.merchant_id
GROUP BY m.merchant_id, m.merchant_name, m.city, h.reading_date
