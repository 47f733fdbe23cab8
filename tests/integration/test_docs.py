"""``headwater docs`` and ``headwater lineage`` on a real project built on DuckDB."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, ClassVar, Literal

import pytest

from headwater import Project
from headwater.connectors.base import SourceConfig, SourceConnector
from headwater.docs.model import HIDDEN, mask
from headwater.scaffold import init_project
from headwater.testing import invoke, write_project


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Project:
    root = tmp_path_factory.mktemp("docs") / "shop"
    init_project(root, rows=3000)
    project = Project(root)
    assert project.run().ok
    return project


@pytest.fixture(scope="module")
def site(shop: Project) -> Path:
    index = shop.docs()
    assert index == shop.root / "target" / "docs" / "index.html"
    return index.parent


def test_site_layout(shop: Project, site: Path) -> None:
    names = set(shop.loaded.nodes)
    assert {p.stem for p in (site / "nodes").glob("*.html")} == names
    for asset in ("assets/shared.css", "assets/shared.js", "assets/style.css", "assets/app.js",
                  "assets/pygments.css", "data.js"):
        assert (site / asset).stat().st_size > 0
    # relative references (file:// works), the files shared with the web UI first
    page = (site / "nodes" / "device_health_daily.html").read_text()
    refs = re.findall(r'(?:href|src)="(\.\./[^"]+\.(?:css|js))"', page)
    assert refs == ["../assets/shared.css", "../assets/style.css", "../assets/pygments.css",
                    "../data.js", "../assets/shared.js", "../assets/app.js"]


def test_index_draws_every_node_and_edge(shop: Project, site: Path) -> None:
    html = (site / "index.html").read_text()
    nodes = re.findall(r'<a href="nodes/([^"]+)\.html" class="node kind-(\w+) status-(\w+)"', html)
    assert {n for n, _, _ in nodes} == set(shop.loaded.nodes)
    assert {k for _, k, _ in nodes} == {"source", "sql", "python", "sink"}
    assert {s for _, _, s in nodes} == {"ok"}
    edges = sum(len(u) for u in shop.loaded.graph.upstream.values())
    assert html.count('class="edge"') == edges


def test_search_index_lists_nodes_and_columns(shop: Project, site: Path) -> None:
    text = (site / "data.js").read_text()
    assert text.startswith("window.HEADWATER = ")
    data = json.loads(text[len("window.HEADWATER = "):].rstrip().rstrip(";"))
    by_name = {n["n"]: n for n in data["nodes"]}
    assert set(by_name) == set(shop.loaded.nodes)
    cols = {c[0]: c for c in by_name["device_health_daily"]["c"]}
    assert cols["health_score"][1] == "DECIMAL(5,1)"
    assert cols["health_score"][3] == "col-health_score"


def test_node_page_has_everything(site: Path) -> None:
    html = (site / "nodes" / "merchant_device_health.html").read_text()
    assert "Terminal fleet health per merchant per day" in html  # leading comment
    assert '<svg id="lineage"' in html
    assert 'data-from="device_health_daily.health_score"' in html
    assert 'data-to="merchant_device_health.avg_health_score"' in html
    assert 'id="col-avg_health_score"' in html
    assert "<code>DOUBLE</code>" in html  # the built type
    assert 'href="device_health_daily.html"' in html  # upstream link
    assert 'href="merchant_scorecard.html"' in html  # downstream link
    assert 'class="k">SELECT</span>' in html  # Pygments
    assert "231 rows" in html or " rows, built " in html
    assert "last run" in html


def test_column_comment_becomes_its_description(site: Path) -> None:
    html = (site / "nodes" / "customer_points_balance.html").read_text()
    row = re.search(r'<tr id="col-points_balance".*?</tr>', html, re.S)
    assert row and "the balance after the customer&#x27;s latest transaction" in row.group(0)


def test_python_page_shows_declared_lineage_and_code(site: Path) -> None:
    # the demo's Python transform declares LINEAGE: its edges are exact, not coarse
    html = (site / "nodes" / "customer_segments.html").read_text()
    assert "LINEAGE" in html and "~coarse" not in html
    assert 'class="k">def</span>' in html or 'class="kd">def</span>' in html


def test_source_page_shows_configuration_and_freshness(site: Path) -> None:
    html = (site / "nodes" / "telemetry.html").read_text()
    assert "data/telemetry/*.ndjson" in html
    assert "data last loaded" in html


def test_pages_request_nothing_from_the_network(site: Path) -> None:
    for path in site.rglob("*"):
        if path.suffix not in (".html", ".js", ".css"):
            continue
        text = path.read_text()
        urls = set(re.findall(r"https?://[^\s\"'<>)]+", text))
        assert urls <= {"http://www.w3.org/2000/svg"}, (path, urls)
        assert not re.search(r"""(src|href)\s*=\s*["']//""", text)
    html = (site / "index.html").read_text()
    assert "Content-Security-Policy" in html and "default-src 'none'" in html


def test_rebuild_drops_pages_of_removed_nodes(shop: Project, site: Path) -> None:
    stale = site / "nodes" / "gone.html"
    stale.write_text("old")
    shop.docs()
    assert not stale.exists()
    assert (site / "nodes" / "stg_telemetry.html").is_file()


def test_cli_docs_prints_the_index(shop: Project, tmp_path: Path) -> None:
    out = tmp_path / "site"
    result = invoke(["docs", "--project", str(shop.root), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(out.resolve() / "index.html")
    assert (out / "nodes" / "device_health_daily.html").is_file()


def test_cli_lineage_tree_and_json(shop: Project) -> None:
    r = invoke(["lineage", "device_health_daily.health_score", "--project", str(shop.root)])
    assert r.exit_code == 0, r.output
    assert "stg_telemetry.battery_pct" in r.output and "telemetry.battery_pct" in r.output
    assert "exact" in r.output and "source columns:" in r.output

    r = invoke(["lineage", "device_health_daily.health_score", "--format", "json",
                "--project", str(shop.root)])
    data = json.loads(r.output)
    assert data["sources"] == ["telemetry.app_latency_ms", "telemetry.battery_pct",
                               "telemetry.status"]
    assert {c["node"] for c in data["upstream"]} == {"stg_telemetry"}

    r = invoke(["lineage", "stg_telemetry.battery_pct", "--downstream", "--format", "json",
                "--project", str(shop.root)])
    data = json.loads(r.output)
    assert "merchant_scorecard" in data["impact"]
    assert {c["column"] for c in data["downstream"]} >= {"health_score", "min_battery_pct"}

    r = invoke(["lineage", "customer_segments.segment", "--project", str(shop.root)])
    # declared in the transform's LINEAGE dict: exact edges to the balance's inputs
    assert "customer_points_balance.points_balance" in r.output and "~coarse" not in r.output


def test_cli_lineage_of_a_whole_node(shop: Project) -> None:
    r = invoke(["lineage", "stg_merchants", "--project", str(shop.root)])
    assert r.exit_code == 0
    assert "points_multiplier" in r.output and "merchants.loyalty_tier" in r.output


def test_cli_lineage_errors_suggest_names(shop: Project) -> None:
    from click.testing import CliRunner

    from headwater.cli.main import main

    r = CliRunner().invoke(main, ["lineage", "device_health_daily.health_scor",
                                  "--project", str(shop.root)])
    assert r.exit_code == 2
    assert "did you mean 'health_score'" in r.output
    r = CliRunner().invoke(main, ["lineage", "device_helth_daily.health_score",
                                  "--project", str(shop.root)])
    assert r.exit_code == 2
    assert "did you mean 'device_health_daily'" in r.output


# -- secrets --------------------------------------------------------------------------------


class VaultConfig(SourceConfig):
    type: Literal["hw_test_vault"] = "hw_test_vault"
    url: str
    password: str
    token: str
    table: str
    options: dict[str, Any] = {}


class VaultSource(SourceConnector):
    type: ClassVar[str] = "hw_test_vault"
    Config = VaultConfig

    def data_fingerprint(self) -> str:  # pragma: no cover - never run
        return "x"

    def read(self, since: Any | None = None) -> Any:  # pragma: no cover - never run
        raise NotImplementedError


def test_docs_never_show_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from headwater.connectors.registry import register, source_types

    source_types()
    register(VaultSource)
    monkeypatch.setenv("HW_TEST_SECRET", "s3cr3t-from-env")
    root = write_project(tmp_path / "p", {
        "sources/crm.toml": '''
            type = "hw_test_vault"
            description = "CRM customers."
            url = "postgresql://app:${HW_TEST_SECRET}@db.internal:5432/crm"
            password = "${HW_TEST_SECRET}"
            token = "literal-token-value"
            table = "customers"
            options = { api_key = "another-literal", region = "eu" }
        ''',
        "transforms/c.sql": "SELECT id FROM crm\n",
    })
    index = Project(root).docs()
    everything = "".join(p.read_text() for p in index.parent.rglob("*") if p.is_file())
    assert "s3cr3t-from-env" not in everything
    assert "literal-token-value" not in everything and "another-literal" not in everything
    page = (index.parent / "nodes" / "crm.html").read_text()
    assert "${HW_TEST_SECRET}" in page
    assert "postgresql://app:${HW_TEST_SECRET}@db.internal:5432/crm" in page
    assert "customers" in page and HIDDEN in page


@pytest.mark.parametrize(("key", "value", "shown"), [
    ("password", "${PG_PASSWORD}", "${PG_PASSWORD}"),
    ("password", "hunter2", HIDDEN),
    ("aws_secret_access_key", "AKIA...", HIDDEN),
    ("headers.Authorization", "Bearer ${TOKEN}", HIDDEN),
    ("author", "Ann", "Ann"),
    ("url", "https://user:hunter2@api.example.com/v1", "https://user:••••••@api.example.com/v1"),
    ("dsn", "host=db password=hunter2 dbname=x", "host=db password=•••••• dbname=x"),
    ("dsn", "host=db password=${PGPASS}", "host=db password=${PGPASS}"),
    ("port", 5432, "5432"),
])
def test_mask(key: str, value: Any, shown: str) -> None:
    assert mask(key, value) == shown


def test_statuses_and_checks_of_a_failed_run(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", {
        "data/a.csv": "id,v\n1,10\n2,\n",
        "sources/raw.toml": 'type = "files"\npath = "data/a.csv"\n',
        "transforms/stg.sql": "-- Typed.\n-- @check: not_null(id)\nSELECT id, v FROM raw\n",
        "transforms/broken.sql": "SELECT nope FROM stg\n",
        "transforms/after.sql": "SELECT * FROM broken\n",
    })
    project = Project(root)
    assert not project.run().ok
    site = project.docs().parent
    index = (site / "index.html").read_text()
    assert 'data-node="broken"' in index
    assert re.search(r'class="node kind-sql status-failed" data-node="broken"', index)
    assert re.search(r'class="node kind-sql status-blocked" data-node="after"', index)
    assert re.search(r'class="node kind-sql status-ok" data-node="stg"', index)
    broken = (site / "nodes" / "broken.html").read_text()
    assert "nope" in broken  # the error, on the page
    stg = (site / "nodes" / "stg.html").read_text()
    assert "not_null(id)" in stg
    assert re.search(r'badge check-\w+">(pass|passed)<', stg)
