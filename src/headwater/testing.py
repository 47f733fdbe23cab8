"""Test helpers for people who build on Headwater (and for Headwater's own tests).

>>> from headwater.testing import write_project, invoke
>>> root = write_project(tmp_path, {"transforms/x.sql": "SELECT 1 AS a"})  # doctest: +SKIP
>>> result = invoke(["run", "--project", str(root), "--json"])            # doctest: +SKIP
>>> result.exit_code                                                       # doctest: +SKIP
0
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

from click.testing import CliRunner, Result


def write_project(
    root: Path, files: Mapping[str, str], *, name: str = "test", config: str = ""
) -> Path:
    """Write a project: ``files`` maps relative paths to (dedented) contents."""
    root.mkdir(parents=True, exist_ok=True)
    if "headwater.toml" not in files:
        (root / "headwater.toml").write_text(f'name = "{name}"\n{config}')
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    for folder in ("sources", "transforms", "sinks"):
        (root / folder).mkdir(exist_ok=True)
    return root


def invoke(args: Sequence[str]) -> Result:
    """Run the ``headwater`` CLI in-process and capture its output."""
    from headwater.cli.main import main

    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def public_tables(root: Path, env: str = "prod") -> set[str]:
    """The names an environment's schema holds in the warehouse (its views), read from
    DuckDB's catalog, which ``headwater query`` does not reach."""
    from headwater import Project
    from headwater.engines.base import public_schema

    with Project(root).reading() as engine:
        rows = engine.query("SELECT table_name FROM information_schema.tables WHERE"
                            f" table_schema = '{public_schema(env)}'")
    return {r["table_name"] for r in rows.to_pylist()}
