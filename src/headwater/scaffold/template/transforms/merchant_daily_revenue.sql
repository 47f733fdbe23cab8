-- Daily revenue per merchant, refunds split out, with a trailing 7-day net revenue.
-- @tags: payments, daily
-- @materialized: table
WITH daily_totals AS (
    SELECT
        merchant_id,
        txn_date,
        COUNT(*) FILTER (WHERE NOT is_refund) AS purchases,
        COUNT(*) FILTER (WHERE is_refund) AS refunds,
        COALESCE(SUM(amount_cents) FILTER (WHERE NOT is_refund), 0) AS gross_cents,
        COALESCE(-SUM(amount_cents) FILTER (WHERE is_refund), 0) AS refunded_cents,
        SUM(amount_cents) AS net_cents,
        COUNT(DISTINCT customer_id) AS customers
    FROM stg_transactions
    GROUP BY merchant_id, txn_date
)
SELECT
    merchant_id,
    txn_date,
    purchases,
    refunds,
    gross_cents,
    refunded_cents,
    net_cents,
    customers,
    SUM(net_cents) OVER (
        PARTITION BY merchant_id
        ORDER BY txn_date
        RANGE BETWEEN INTERVAL '6 days' PRECEDING AND CURRENT ROW
    ) AS net_cents_7d
FROM daily_totals
