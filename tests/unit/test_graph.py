"""The DAG: topological order, cycles, and the --select / --exclude syntax."""

from __future__ import annotations

import pytest

from headwater.errors import CycleError, SelectionError
from headwater.graph.dag import Graph

#   orders ──> stg_orders ──> order_totals ──> export
#   customers ─────────────┘        └────────> report
#   devices ──> stg_devices
UPSTREAM = {
    "orders": [],
    "customers": [],
    "devices": [],
    "stg_orders": ["orders"],
    "stg_devices": ["devices"],
    "order_totals": ["stg_orders", "customers"],
    "report": ["order_totals"],
    "export": ["order_totals"],
}
TAGS = {
    "stg_orders": ("staging",),
    "stg_devices": ("staging", "iot"),
    "order_totals": ("finance",),
    "report": ("finance",),
}
KINDS = {
    "orders": "source",
    "customers": "source",
    "devices": "source",
    "stg_orders": "sql",
    "stg_devices": "sql",
    "order_totals": "python",
    "report": "sql",
    "export": "sink",
}


@pytest.fixture
def graph() -> Graph:
    return Graph(UPSTREAM)


def select(graph: Graph, sel: object = None, exclude: object = None) -> list[str]:
    return graph.select(sel, exclude, tags=TAGS, kinds=KINDS)  # type: ignore[arg-type]


# -- order -----------------------------------------------------------------------


def test_order_puts_every_node_after_its_upstreams(graph: Graph) -> None:
    order = graph.order()
    assert sorted(order) == sorted(UPSTREAM)
    for node, ups in UPSTREAM.items():
        for up in ups:
            assert order.index(up) < order.index(node)


def test_order_is_deterministic_ties_broken_by_name(graph: Graph) -> None:
    assert graph.order() == [
        "customers", "devices", "orders",
        "stg_devices", "stg_orders",
        "order_totals",
        "export", "report",
    ]
    shuffled = Graph(dict(reversed(list(UPSTREAM.items()))))
    assert shuffled.order() == graph.order()


def test_upstream_and_downstream_edges(graph: Graph) -> None:
    assert graph.ancestors("report") == {"order_totals", "stg_orders", "orders", "customers"}
    assert graph.descendants("orders") == {"stg_orders", "order_totals", "report", "export"}
    assert graph.ancestors("orders") == set()
    assert graph.descendants("report") == set()
    assert "orders" in graph and "nope" not in graph
    assert len(graph) == len(UPSTREAM)


def test_empty_graph() -> None:
    assert Graph({}).order() == []


# -- cycles ----------------------------------------------------------------------


def test_cycle_names_the_whole_cycle_in_data_flow_order() -> None:
    # b reads a, c reads b, a reads c: data flows a -> b -> c -> a.
    g = Graph({"a": ["c"], "b": ["a"], "c": ["b"], "d": ["a"], "src": []})
    with pytest.raises(CycleError) as info:
        g.order()
    assert info.value.cycle == ["a", "b", "c"]
    assert "dependency cycle: a -> b -> c -> a" in info.value.render()
    assert info.value.hint


def test_cycle_starts_at_its_smallest_name_whatever_the_insertion_order() -> None:
    # y reads x, z reads y, x reads z; inserted in a different order.
    g = Graph({"z": ["y"], "x": ["z"], "y": ["x"]})
    with pytest.raises(CycleError) as info:
        g.order()
    assert info.value.cycle == ["x", "y", "z"]


def test_two_node_cycle_direction() -> None:
    g = Graph({"b": ["a"], "a": ["b"]})
    with pytest.raises(CycleError, match=r"a -> b -> a"):
        g.order()


def test_self_reference_is_a_cycle() -> None:
    with pytest.raises(CycleError, match=r"dependency cycle: a -> a") as info:
        Graph({"a": ["a"]}).order()
    assert info.value.cycle == ["a"]


def test_cycle_error_is_a_project_error_with_exit_code_2() -> None:
    with pytest.raises(CycleError) as info:
        Graph({"a": ["b"], "b": ["a"]}).order()
    assert info.value.exit_code == 2


# -- selection -------------------------------------------------------------------


def test_no_selection_means_everything_in_order(graph: Graph) -> None:
    assert select(graph) == graph.order()
    assert select(graph, "") == graph.order()
    assert select(graph, []) == graph.order()


def test_select_a_name(graph: Graph) -> None:
    assert select(graph, "order_totals") == ["order_totals"]


def test_select_with_upstream(graph: Graph) -> None:
    assert select(graph, "+order_totals") == [
        "customers", "orders", "stg_orders", "order_totals",
    ]


def test_select_with_downstream(graph: Graph) -> None:
    assert select(graph, "stg_orders+") == ["stg_orders", "order_totals", "export", "report"]


def test_select_both_ways(graph: Graph) -> None:
    assert select(graph, "+stg_orders+") == [
        "orders", "stg_orders", "order_totals", "export", "report",
    ]


def test_select_by_tag(graph: Graph) -> None:
    assert select(graph, "tag:staging") == ["stg_devices", "stg_orders"]
    assert select(graph, "tag:iot+") == ["stg_devices"]
    assert select(graph, "+tag:iot") == ["devices", "stg_devices"]
    assert select(graph, "tag:finance+") == ["order_totals", "export", "report"]


def test_select_by_kind(graph: Graph) -> None:
    assert select(graph, "kind:sql") == ["stg_devices", "stg_orders", "report"]
    assert select(graph, "kind:source") == ["customers", "devices", "orders"]
    assert select(graph, "kind:sink") == ["export"]


@pytest.mark.parametrize(
    "expr",
    [
        "report,stg_devices",
        "report stg_devices",
        "report, stg_devices",
        "  report ,  stg_devices  ",
        ["report", "stg_devices"],
        ("report stg_devices",),
        ["report,", "stg_devices"],
    ],
)
def test_terms_are_unioned_whatever_the_separator(graph: Graph, expr: object) -> None:
    assert select(graph, expr) == ["stg_devices", "report"]


def test_union_of_different_kinds_of_terms(graph: Graph) -> None:
    assert select(graph, "tag:iot, +report kind:sink") == [
        "customers", "orders", "stg_devices", "stg_orders", "order_totals", "export", "report",
    ]


def test_exclude(graph: Graph) -> None:
    assert select(graph, "+report", "orders") == [
        "customers", "stg_orders", "order_totals", "report",
    ]
    assert select(graph, None, "kind:source") == [
        "stg_devices", "stg_orders", "order_totals", "export", "report",
    ]
    assert select(graph, "stg_orders+", "order_totals+") == ["stg_orders"]
    assert select(graph, "tag:staging", "tag:iot, tag:finance") == ["stg_orders"]


def test_exclude_everything_leaves_nothing(graph: Graph) -> None:
    assert select(graph, "report", "report") == []


def test_unknown_name_suggests_the_closest(graph: Graph) -> None:
    with pytest.raises(SelectionError, match=r"no node named 'stg_order'") as info:
        select(graph, "stg_order")
    assert info.value.hint is not None
    assert "did you mean 'stg_orders'" in info.value.hint
    assert info.value.exit_code == 2


def test_unknown_name_with_modifiers_still_suggests(graph: Graph) -> None:
    with pytest.raises(SelectionError, match=r"'reprot'") as info:
        select(graph, "+reprot+")
    assert "did you mean 'report'" in (info.value.hint or "")


def test_unknown_name_in_exclude_is_an_error(graph: Graph) -> None:
    with pytest.raises(SelectionError, match=r"no node named 'export_'"):
        select(graph, None, "export_")


def test_unknown_name_without_close_match_points_at_dag(graph: Graph) -> None:
    with pytest.raises(SelectionError) as info:
        select(graph, "zzzzzz")
    assert "headwater dag" in (info.value.hint or "")


def test_unknown_tag_and_kind(graph: Graph) -> None:
    with pytest.raises(SelectionError, match=r"no node is tagged 'financ'") as info:
        select(graph, "tag:financ")
    assert "did you mean 'finance'" in (info.value.hint or "")
    with pytest.raises(SelectionError, match=r"no node is of kind 'spark'") as info:
        select(graph, "kind:spark")
    assert "python" in (info.value.hint or "")
    with pytest.raises(SelectionError) as info:
        select(graph, "kind:sqll")
    assert "did you mean 'sql'" in (info.value.hint or "")


@pytest.mark.parametrize("expr", [",", " , ", [",", " "]])
def test_a_selection_of_only_separators_is_an_error(graph: Graph, expr: object) -> None:
    with pytest.raises(SelectionError, match=r"empty selection"):
        select(graph, expr)


@pytest.mark.parametrize("term", ["+", "++", "a++", "++a", "+a++"])
def test_malformed_terms(graph: Graph, term: str) -> None:
    with pytest.raises(SelectionError, match=r"cannot read selection term"):
        select(graph, term)
