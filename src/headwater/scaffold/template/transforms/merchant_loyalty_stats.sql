-- Loyalty stats per merchant: transactions, revenue, points issued, customers, repeat rate.
-- @tags: payments, loyalty
-- @materialized: table
WITH visits AS (
    SELECT
        merchant_id,
        customer_id,
        COUNT(*) FILTER (WHERE NOT is_refund) AS purchases
    FROM stg_transactions
    GROUP BY merchant_id, customer_id
),
customer_mix AS (
    SELECT
        merchant_id,
        COUNT(*) AS distinct_customers,
        COUNT(*) FILTER (WHERE purchases >= 2) AS repeat_customers
    FROM visits
    GROUP BY merchant_id
),
totals AS (
    SELECT
        merchant_id,
        COUNT(*) AS txn_count,
        COUNT(*) FILTER (WHERE is_refund) AS refund_count,
        SUM(amount_cents) AS net_revenue_cents,
        SUM(points_earned) AS points_issued
    FROM stg_transactions
    GROUP BY merchant_id
)
SELECT
    m.merchant_id,
    m.merchant_name,
    m.category,
    m.city,
    m.loyalty_tier,
    COALESCE(t.txn_count, 0) AS txn_count,
    COALESCE(t.refund_count, 0) AS refund_count,
    COALESCE(t.net_revenue_cents, 0) AS net_revenue_cents,
    COALESCE(t.points_issued, 0) AS points_issued,
    COALESCE(c.distinct_customers, 0) AS distinct_customers,
    COALESCE(c.repeat_customers, 0) AS repeat_customers,
    ROUND(COALESCE(1.0 * c.repeat_customers / c.distinct_customers, 0), 3)
        AS repeat_customer_rate
FROM stg_merchants AS m
LEFT JOIN totals AS t ON t.merchant_id = m.merchant_id
LEFT JOIN customer_mix AS c ON c.merchant_id = m.merchant_id
