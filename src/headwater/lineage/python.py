"""Column lineage of a Python transform: declared, or coarse.

Headwater cannot see inside a Python function, so by default every output
column of ``transforms/NAME.py`` is *coarse*: made of every column of every
input. A transform that knows better declares where its columns come from in a
module-level ``LINEAGE`` dict, read without running the code::

    LINEAGE = {
        "customer_id": ["customer_points_balance.customer_id"],
        "segment": ["customer_points_balance.points_balance",
                    "customer_points_balance.last_activity"],
        "scored_at": [],   # made of no input column (a constant, the clock)
    }

Keys are output columns, values ``"upstream.column"`` strings where
``upstream`` is one of the function's parameters. Declared columns get exact
edges; columns left out stay coarse.
"""

from __future__ import annotations

import ast
from pathlib import Path

from headwater.errors import ProjectError, caret_snippet

DECLARATION = "LINEAGE"


def read_declaration(
    text: str, path: Path, params: tuple[str, ...]
) -> dict[str, list[tuple[str, str]]] | None:
    """The ``LINEAGE`` dict of a transform's source, or None when it has none.

    Raises ProjectError (with file and line) when the declaration is malformed.
    """
    if DECLARATION not in text:
        return None
    try:
        module = ast.parse(text, filename=str(path))
    except SyntaxError:
        return None  # the loader reports syntax errors
    for stmt in module.body:
        target, value = _assignment(stmt)
        if target != DECLARATION or value is None:
            continue
        return _read(value, text, path, params)
    return None


def _assignment(stmt: ast.stmt) -> tuple[str | None, ast.expr | None]:
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
        target = stmt.targets[0]
        return (target.id if isinstance(target, ast.Name) else None), stmt.value
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
        return stmt.target.id, stmt.value
    return None, None


def _read(
    node: ast.expr, text: str, path: Path, params: tuple[str, ...]
) -> dict[str, list[tuple[str, str]]]:
    def fail(msg: str, at: ast.AST) -> ProjectError:
        line = getattr(at, "lineno", None)
        col = getattr(at, "col_offset", -1) + 1 or None
        return ProjectError(
            msg,
            path=path,
            line=line,
            column=col,
            snippet=caret_snippet(text, line, col) if line else None,
            hint='write LINEAGE = {"output_column": ["upstream.column", ...], ...} '
            f"with upstream one of: {', '.join(params) or '(no parameters)'}",
        )

    if not isinstance(node, ast.Dict):
        raise fail(f"{DECLARATION} must be a dict literal", node)
    out: dict[str, list[tuple[str, str]]] = {}
    for key, value in zip(node.keys, node.values, strict=True):
        if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
            raise fail(f"{DECLARATION} keys must be output column names (strings)", key or node)
        items = value.elts if isinstance(value, ast.List | ast.Tuple) else [value]
        origins: list[tuple[str, str]] = []
        for item in items:
            if not (isinstance(item, ast.Constant) and isinstance(item.value, str)):
                raise fail(f"origins of {key.value!r} must be 'upstream.column' strings", item)
            upstream, dot, column = item.value.partition(".")
            if not dot or not column:
                raise fail(f"origin {item.value!r} of {key.value!r} is not 'upstream.column'",
                           item)
            if upstream not in params:
                raise fail(
                    f"origin {item.value!r} of {key.value!r} names {upstream!r}, "
                    "which is not a parameter of the transform", item)
            origins.append((upstream, column))
        out[key.value] = origins
    return out
