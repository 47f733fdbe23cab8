-- Merchant scorecard for the last week: revenue and loyalty next to terminal health.
-- @tags: merchants, reporting
-- @materialized: table
WITH last_week AS (
    SELECT
        merchant_id,
        SUM(purchases) AS purchases_7d,
        SUM(net_cents) AS net_cents_7d
    FROM merchant_daily_revenue
    WHERE txn_date > (SELECT MAX(txn_date) FROM merchant_daily_revenue) - 7
    GROUP BY merchant_id
),
fleet AS (
    SELECT
        merchant_id,
        ROUND(AVG(avg_health_score)::DECIMAL(9, 4), 1) AS avg_health_score,
        MIN(worst_health_score) AS worst_health_score,
        SUM(critical_devices) AS critical_device_days
    FROM merchant_device_health
    GROUP BY merchant_id
)
SELECT
    s.merchant_id,
    s.merchant_name,
    s.category,
    s.loyalty_tier,
    COALESCE(w.purchases_7d, 0) AS purchases_7d,
    COALESCE(w.net_cents_7d, 0) AS net_cents_7d,
    s.repeat_customer_rate,
    f.avg_health_score,
    f.worst_health_score,
    COALESCE(f.critical_device_days, 0) AS critical_device_days,
    -- the first action that applies, hardware first: broken terminals lose sales today
    CASE
        WHEN f.avg_health_score < 80 THEN 'fix terminals'
        WHEN COALESCE(f.critical_device_days, 0) > 0 THEN 'check terminals'
        WHEN s.repeat_customer_rate < 0.25 THEN 'grow loyalty'
        ELSE 'ok'
    END AS next_action
FROM merchant_loyalty_stats AS s
LEFT JOIN last_week AS w ON w.merchant_id = s.merchant_id
LEFT JOIN fleet AS f ON f.merchant_id = s.merchant_id
