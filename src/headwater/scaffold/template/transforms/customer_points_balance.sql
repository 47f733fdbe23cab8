-- Points balance per loyalty customer from a running ledger, plus lifetime totals.
-- @tags: loyalty, customers
-- @materialized: table
WITH ledger AS (
    SELECT
        customer_id,
        merchant_id,
        amount_cents,
        points_earned,
        ts,
        SUM(points_earned) OVER (
            PARTITION BY customer_id
            ORDER BY ts, txn_id
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS running_balance,
        ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY ts DESC, txn_id DESC) AS recency
    FROM stg_transactions
)
SELECT
    customer_id,
    MIN(ts) AS first_seen,
    MAX(ts) AS last_activity,
    COUNT(*) FILTER (WHERE amount_cents >= 0) AS purchases,
    COUNT(DISTINCT merchant_id) AS merchants_visited,
    SUM(amount_cents) AS lifetime_spend_cents,
    COALESCE(SUM(points_earned) FILTER (WHERE points_earned > 0), 0) AS points_earned,
    COALESCE(-SUM(points_earned) FILTER (WHERE points_earned < 0), 0) AS points_reversed,
    MAX(running_balance) AS peak_balance,
    -- the balance after the customer's latest transaction
    MAX(running_balance) FILTER (WHERE recency = 1) AS points_balance
FROM ledger
GROUP BY customer_id
