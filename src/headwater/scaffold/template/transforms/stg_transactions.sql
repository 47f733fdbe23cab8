-- Loyalty transactions, typed: purchases and refunds (negative amount and points).
-- @tags: payments, staging
-- @materialized: view
SELECT
    CAST(txn_id AS BIGINT) AS txn_id,
    merchant_id,
    customer_id,
    CAST(amount_cents AS BIGINT) AS amount_cents,
    CAST(points_earned AS BIGINT) AS points_earned,
    CAST(ts AS TIMESTAMP) AS ts,
    CAST(CAST(ts AS TIMESTAMP) AS DATE) AS txn_date,
    CAST(amount_cents AS BIGINT) < 0 AS is_refund
FROM transactions
