"""Customer segments from points balances: champions, regulars, at-risk, new."""

import pyarrow as pa
import pyarrow.compute as pc

NEW_WITHIN_DAYS = 14  # first purchase this recent: still "new"
AT_RISK_AFTER_DAYS = 30  # no activity for this long: "at_risk"
CHAMPION_QUANTILE = 0.9  # top tenth of points balances: "champion"

# Where each output column comes from (read by `headwater lineage` and the docs without
# running this file); undeclared columns would count as coming from every input column.
LINEAGE = {
    "customer_id": ["customer_points_balance.customer_id"],
    "segment": [
        "customer_points_balance.points_balance",
        "customer_points_balance.last_activity",
        "customer_points_balance.first_seen",
    ],
    "points_balance": ["customer_points_balance.points_balance"],
    "purchases": ["customer_points_balance.purchases"],
    "days_since_last_activity": ["customer_points_balance.last_activity"],
}


def customer_segments(customer_points_balance: pa.Table) -> pa.Table:
    # One row per customer; the first matching rule wins: new, at_risk, champion, regular.
    balances = customer_points_balance
    if balances.num_rows == 0:
        return pa.table(
            {
                "customer_id": pa.array([], pa.string()),
                "segment": pa.array([], pa.string()),
                "points_balance": pa.array([], pa.int64()),
                "purchases": pa.array([], pa.int64()),
                "days_since_last_activity": pa.array([], pa.int64()),
            }
        )
    # Recency is measured against the newest activity in the data, not the wall clock,
    # so re-running the pipeline on the same data gives the same segments.
    as_of = pc.max(balances["last_activity"])
    idle_days = pc.days_between(balances["last_activity"], as_of)
    tenure_days = pc.days_between(balances["first_seen"], as_of)
    points = balances["points_balance"]
    champion_floor = pc.quantile(points, q=CHAMPION_QUANTILE, interpolation="lower")[0]

    segment = pc.if_else(
        pc.less(tenure_days, NEW_WITHIN_DAYS),
        "new",
        pc.if_else(
            pc.greater_equal(idle_days, AT_RISK_AFTER_DAYS),
            "at_risk",
            pc.if_else(pc.greater_equal(points, champion_floor), "champion", "regular"),
        ),
    )
    result = pa.table(
        {
            "customer_id": balances["customer_id"],
            "segment": segment,
            "points_balance": pc.cast(points, pa.int64()),
            "purchases": pc.cast(balances["purchases"], pa.int64()),
            "days_since_last_activity": idle_days,
        }
    )
    # Upstream row order is not guaranteed; sort so the output is stable.
    return result.sort_by("customer_id")
