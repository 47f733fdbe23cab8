"""Column lineage across a project graph: schemas, Python transforms, trees, impact, cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from headwater.errors import ProjectError, SelectionError
from headwater.lineage.columns import (
    LineageCache,
    ProjectLineage,
    changed_columns,
    parse_target,
    unchanged_consumption,
)
from headwater.load.loader import load_project
from headwater.testing import write_project

FILES = {
    "data/orders.csv": "id,customer_id,amount,ts\n1,c1,10,2024-01-01\n",
    "data/customers.csv": "customer_id,name,region\nc1,Ann,eu\n",
    "sources/orders.toml": 'type = "files"\npath = "data/orders.csv"\n',
    "sources/customers.toml": 'type = "files"\npath = "data/customers.csv"\n',
    "transforms/stg_orders.sql": """
        -- Typed orders.
        SELECT
            CAST(id AS BIGINT) AS order_id,
            customer_id,
            CAST(amount AS DOUBLE) AS amount,   -- order total in EUR
            CAST(ts AS DATE) AS day
        FROM orders
    """,
    "transforms/orders_enriched.sql": """
        SELECT o.*, c.region
        FROM stg_orders AS o
        JOIN customers AS c ON c.customer_id = o.customer_id
        WHERE o.amount > 0
    """,
    "transforms/revenue_by_region.sql": """
        SELECT region, SUM(amount) AS revenue, COUNT(*) AS orders
        FROM orders_enriched
        GROUP BY region
    """,
    "transforms/scored.py": '''
        """Scores per region."""
        LINEAGE = {
            "region": ["revenue_by_region.region"],
            "score": ["revenue_by_region.revenue", "revenue_by_region.orders"],
            "scored_at": [],
        }


        def scored(revenue_by_region):
            return revenue_by_region
    ''',
    "transforms/opaque.py": '''
        def opaque(revenue_by_region):
            return revenue_by_region
    ''',
    "sinks/export.toml": 'type = "files"\nfrom = "revenue_by_region"\npath = "out/r.csv"\n',
}

BUILT = {
    "orders": [("id", "BIGINT"), ("customer_id", "VARCHAR"), ("amount", "BIGINT"),
               ("ts", "DATE")],
    "customers": [("customer_id", "VARCHAR"), ("name", "VARCHAR"), ("region", "VARCHAR")],
    "opaque": [("region", "VARCHAR"), ("revenue", "DOUBLE"), ("orders", "BIGINT")],
}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return write_project(tmp_path / "p", FILES)


@pytest.fixture
def lineage(root: Path) -> ProjectLineage:
    return ProjectLineage(load_project(root), BUILT)


def edges(lineage: ProjectLineage, node: str, column: str) -> list[tuple[str, str, str, bool]]:
    col = lineage.column(node, column)
    return sorted((e.node, e.column, e.transform, e.exact) for e in col.inputs)


def test_sql_columns_resolve_to_upstream_columns(lineage: ProjectLineage) -> None:
    assert edges(lineage, "stg_orders", "amount") == [
        ("orders", "amount", "transformation", True)]
    assert edges(lineage, "stg_orders", "customer_id") == [
        ("orders", "customer_id", "identity", True)]
    col = lineage.column("stg_orders", "amount")
    assert col.description == "order total in EUR"
    assert col.type is None  # not built: names are inferred, types unknown


def test_star_expands_with_the_inferred_schema_of_an_unbuilt_upstream(
        lineage: ProjectLineage) -> None:
    lin = lineage.node("orders_enriched")
    assert [c.name for c in lin.columns] == ["order_id", "customer_id", "amount", "day", "region"]
    assert edges(lineage, "orders_enriched", "day") == [("stg_orders", "day", "identity", True)]
    assert ("customers", "customer_id", "join") in lin.reads
    assert ("stg_orders", "amount", "filter") in lin.reads
    assert lin.complete and lin.exact


def test_built_schema_gives_names_and_types(root: Path) -> None:
    built = dict(BUILT, stg_orders=[("order_id", "BIGINT"), ("customer_id", "VARCHAR"),
                                    ("amount", "DOUBLE"), ("day", "DATE")])
    lineage = ProjectLineage(load_project(root), built)
    assert lineage.column("stg_orders", "amount").type == "DOUBLE"
    assert lineage.schema("stg_orders") == built["stg_orders"]


def test_python_declared_lineage_is_exact(lineage: ProjectLineage) -> None:
    lin = lineage.node("scored")
    assert lin.origin == "declared"
    assert [c.name for c in lin.columns] == ["region", "score", "scored_at"]
    assert edges(lineage, "scored", "score") == [
        ("revenue_by_region", "orders", "transformation", True),
        ("revenue_by_region", "revenue", "transformation", True),
    ]
    assert lineage.column("scored", "scored_at").inputs == []
    assert lin.consumed("revenue_by_region") is None  # Python reads its input whole


def test_python_without_declaration_is_coarse(lineage: ProjectLineage) -> None:
    lin = lineage.node("opaque")
    assert lin.origin == "python" and not lin.exact
    assert edges(lineage, "opaque", "revenue") == [
        ("revenue_by_region", c, "transformation", False)
        for c in ("orders", "region", "revenue")]


def test_sink_columns_are_identities_of_its_input(lineage: ProjectLineage) -> None:
    assert edges(lineage, "export", "revenue") == [
        ("revenue_by_region", "revenue", "identity", True)]


def test_upstream_tree_reaches_source_columns(lineage: ProjectLineage) -> None:
    tree = lineage.upstream_tree("revenue_by_region", "revenue")
    assert tree["node"] == "revenue_by_region"
    (child,) = tree["upstream"]
    assert (child["node"], child["column"], child["transform"]) == (
        "orders_enriched", "amount", "aggregation")
    assert lineage.source_columns("scored", "score") == ["orders.amount"]
    assert lineage.source_columns("revenue_by_region", "orders") == []  # a row count


def test_downstream_tree_and_impact(lineage: ProjectLineage) -> None:
    tree = lineage.downstream_tree("orders", "amount")
    assert [c["node"] for c in tree["downstream"]] == ["stg_orders"]
    impact = lineage.impact("orders", "amount")
    assert impact[:3] == ["stg_orders", "orders_enriched", "revenue_by_region"]
    assert set(impact[3:]) == {"opaque", "scored", "export"}
    # region only picks rows (JOIN ... ON customer_id): customers.customer_id affects all
    rows = lineage.downstream_tree("customers", "customer_id")
    assert {"node": "orders_enriched", "how": "join"} in rows["rows"]
    # nothing reads customers.name
    assert lineage.impact("customers", "name") == []


def test_source_index_matches_trees(lineage: ProjectLineage) -> None:
    index = lineage.source_index()
    for node in ("revenue_by_region", "scored", "opaque"):
        for col in lineage.node(node).columns:
            assert sorted(index[(node, col.name)]) == lineage.source_columns(node, col.name)


def test_unknown_names_say_what_exists(lineage: ProjectLineage) -> None:
    with pytest.raises(SelectionError, match="did you mean 'revenue'"):
        lineage.column("revenue_by_region", "revenu")
    with pytest.raises(SelectionError, match="did you mean 'stg_orders'"):
        lineage.node("stg_order")
    assert parse_target("stg_orders.amount", lineage.project.nodes) == ("stg_orders", "amount")
    assert parse_target("stg_orders", lineage.project.nodes) == ("stg_orders", None)
    with pytest.raises(SelectionError, match="stg_orders"):
        parse_target("stg_ordrs.amount", lineage.project.nodes)


def test_unbuilt_source_columns_are_taken_from_the_query(root: Path) -> None:
    lineage = ProjectLineage(load_project(root), {})
    assert edges(lineage, "stg_orders", "day") == [("orders", "ts", "transformation", True)]
    # a * over an unbuilt source cannot be listed: orders_enriched still knows stg_orders
    assert [c.name for c in lineage.node("orders_enriched").columns][-1] == "region"


def test_change_impact(lineage: ProjectLineage) -> None:
    old = [("order_id", "BIGINT"), ("customer_id", "VARCHAR"), ("amount", "DOUBLE"),
           ("day", "DATE")]
    added = [*old, ("discount", "DOUBLE")]
    assert changed_columns(old, added) == {"discount"}
    assert changed_columns(old, [(c, "VARCHAR" if c == "day" else t) for c, t in old]) == {"day"}
    # revenue_by_region reads region and amount of orders_enriched
    assert unchanged_consumption(lineage, "revenue_by_region", "orders_enriched", old, old,
                                 changed_values={"day"})
    assert not unchanged_consumption(lineage, "revenue_by_region", "orders_enriched", old, old,
                                     changed_values={"amount"})
    assert not unchanged_consumption(lineage, "revenue_by_region", "orders_enriched", old, old,
                                     changed_values=None)  # unknown: assume everything changed
    # a Python transform reads its input whole: any change matters
    assert not unchanged_consumption(lineage, "scored", "revenue_by_region", old, added, set())
    # a value change in a column nobody downstream reads
    assert unchanged_consumption(lineage, "orders_enriched", "stg_orders", old, old, {"day2"})
    # not an upstream at all: it reads nothing of it
    assert unchanged_consumption(lineage, "stg_orders", "customers", old, old, None)


def test_python_declaration_errors_point_at_the_line(tmp_path: Path) -> None:
    root = write_project(tmp_path / "q", {
        "data/a.csv": "x\n1\n",
        "sources/a.toml": 'type = "files"\npath = "data/a.csv"\n',
        "transforms/b.py": 'LINEAGE = {"y": ["nope.x"]}\n\n\ndef b(a):\n    return a\n',
    })
    lineage = ProjectLineage(load_project(root), {"a": [("x", "BIGINT")]})
    with pytest.raises(ProjectError) as err:
        lineage.node("b")
    assert err.value.line == 1
    assert "not a parameter" in err.value.message


def test_cache_spares_the_analysis(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache_dir = root / ".headwater"
    first = ProjectLineage(load_project(root), BUILT, cache=LineageCache(cache_dir / "c.json"))
    want = first.all()["revenue_by_region"].to_json()
    assert (cache_dir / "c.json").is_file()

    def boom(*args: object) -> None:
        raise AssertionError("analysed although cached")

    monkeypatch.setattr("headwater.lineage.columns._analyse", boom)
    second = ProjectLineage(load_project(root), BUILT, cache=LineageCache(cache_dir / "c.json"))
    assert second.all()["revenue_by_region"].to_json() == want


def test_cache_follows_code_and_schema_changes(root: Path) -> None:
    path = root / ".headwater" / "c.json"
    ProjectLineage(load_project(root), BUILT, cache=LineageCache(path)).all()
    (root / "transforms/revenue_by_region.sql").write_text(
        "SELECT region, MAX(amount) AS top FROM orders_enriched GROUP BY region\n")
    lineage = ProjectLineage(load_project(root), BUILT, cache=LineageCache(path))
    assert [c.name for c in lineage.node("revenue_by_region").columns] == ["region", "top"]


def test_a_broken_cache_is_ignored(root: Path) -> None:
    path = root / ".headwater" / "c.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{not json")
    lineage = ProjectLineage(load_project(root), BUILT, cache=LineageCache(path))
    assert lineage.column("stg_orders", "amount")


def test_sql_that_cannot_be_analysed_falls_back_to_coarse_lineage() -> None:
    from headwater.lineage.sql import sql_lineage

    lin = sql_lineage("SELECT a FROM (", "duckdb", {"t": ["a", "b"]}, ["x"])
    assert lin.problems and lin.problems[0].startswith("cannot parse")
    assert lin.columns[0].inputs == [("t", "a", "transformation", False),
                                     ("t", "b", "transformation", False)]


def test_analysis_in_worker_processes_matches_serial(
        root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    serial = ProjectLineage(load_project(root), BUILT, workers=1).all()
    monkeypatch.setattr("headwater.lineage.columns.PARALLEL_MIN", 1)
    parallel = ProjectLineage(load_project(root), BUILT, workers=2).all()
    assert {n: x.to_json() for n, x in parallel.items()} == {
        n: x.to_json() for n, x in serial.items()}


def test_consumed_columns(lineage: ProjectLineage) -> None:
    from headwater.lineage.columns import consumed_columns

    assert consumed_columns(lineage, "revenue_by_region", "orders_enriched") == [
        "amount", "region"]
    assert consumed_columns(lineage, "orders_enriched", "customers") == [
        "customer_id", "region"]
    assert consumed_columns(lineage, "scored", "revenue_by_region") is None
