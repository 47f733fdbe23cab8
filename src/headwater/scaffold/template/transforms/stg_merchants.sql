-- Merchants with the points multiplier of their loyalty tier and how many terminals they run.
-- @tags: merchants, staging
-- @materialized: view
WITH terminal_counts AS (
    SELECT merchant_id, COUNT(*) AS terminal_count
    FROM devices
    GROUP BY merchant_id
)
SELECT
    m.merchant_id,
    m.name AS merchant_name,
    m.category,
    m.city,
    LOWER(m.loyalty_tier) AS loyalty_tier,
    CASE LOWER(m.loyalty_tier)
        WHEN 'platinum' THEN 2.0
        WHEN 'gold' THEN 1.5
        WHEN 'silver' THEN 1.25
        ELSE 1.0
    END AS points_multiplier,
    COALESCE(t.terminal_count, 0) AS terminal_count
FROM merchants AS m
LEFT JOIN terminal_counts AS t ON t.merchant_id = m.merchant_id
