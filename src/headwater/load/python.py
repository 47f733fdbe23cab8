"""Reading a Python transform without running it: function, parameters, docstring.

``transforms/NAME.py`` must define ``def NAME(upstream_a, upstream_b, ...)``. The
parameters name upstream nodes; their annotations choose the frame type passed
in. The code fingerprint is a dump of the AST with docstrings removed, so
comments, formatting and documentation do not count as changes.
"""

from __future__ import annotations

import ast
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from headwater.errors import ParseError, caret_snippet, closest


@dataclass
class PyAnalysis:
    description: str
    params: list[str]
    param_types: dict[str, str]
    refs: list[tuple[str, int | None, int | None]]
    code_fp: str
    checks: list[dict[str, Any]] = field(default_factory=list)
    timeout: float | None = None  # @timeout in the docstring, in seconds

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PyAnalysis:
        data = dict(data)
        data["refs"] = [tuple(r) for r in data["refs"]]
        return cls(**data)


def analyse_python(text: str, path: Path) -> PyAnalysis:
    name = path.stem
    try:
        module = ast.parse(text, filename=str(path))
    except SyntaxError as err:
        raise ParseError(
            f"Python syntax error: {err.msg}",
            path=path,
            line=err.lineno,
            column=err.offset,
            snippet=caret_snippet(text, err.lineno or 0, err.offset) or None,
            hint=f"fix the Python at line {err.lineno}; the file must define "
            f"`def {name}(upstream, ...):`",
        ) from None
    func = next(
        (
            n
            for n in module.body
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == name
        ),
        None,
    )
    if func is None:
        defined = [
            n for n in module.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
        ]
        names = [n.name for n in defined]
        close = closest(name, names, n=1)
        public = [n for n in defined if not n.name.startswith("_")]
        near = next((n for n in defined if close and n.name == close[0]), None)
        near = near or (public[0] if len(public) == 1 else None)
        if near is not None:
            hint = (
                f"rename `def {near.name}` to `def {name}`, or rename the file to "
                f"{near.name}.py (the function is named after the file)"
            )
        else:
            hint = (
                f"add `def {name}(upstream_table, ...):` (the function is named after the "
                f"file; found: {', '.join(names) or 'no functions'})"
            )
        line = near.lineno if near else None
        col = near.col_offset + 1 if near else None
        raise ParseError(
            f"Python transform must define a function named {name!r}",
            path=path,
            line=line,
            column=col,
            snippet=caret_snippet(text, line, col) if line else None,
            hint=hint,
        )
    if isinstance(func, ast.AsyncFunctionDef):
        col = func.col_offset + 1
        raise ParseError(
            f"a transform must be a plain function, not `async def {name}`",
            path=path,
            line=func.lineno,
            column=col,
            snippet=caret_snippet(text, func.lineno, col),
            hint=f"write `def {name}(...)`: Headwater calls it and needs its result, it does"
            " not await it (run async code inside with asyncio.run)",
        )
    args = func.args
    if args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs:
        raise ParseError(
            "a transform's parameters must be plain names of upstream nodes",
            path=path,
            line=func.lineno,
            hint="remove *args, **kwargs, keyword-only and positional-only parameters",
        )
    params = [a.arg for a in args.args]
    types = {a.arg: ast.unparse(a.annotation) for a in args.args if a.annotation is not None}
    refs: list[tuple[str, int | None, int | None]] = [
        (a.arg, a.lineno, a.col_offset + 1) for a in args.args
    ]
    description = ast.get_docstring(func) or ast.get_docstring(module) or ""
    description, checks, timeout = _docstring_annotations(description, path, text)
    code_fp = hashlib.sha256(("py\0" + ast.dump(_strip_docstrings(module))
                              + repr(sorted(c["raw"] for c in checks))).encode()).hexdigest()
    return PyAnalysis(description.strip(), params, types, refs, code_fp, checks, timeout)


PY_ANNOTATIONS = ("check", "timeout")
_DOC_ANNOTATION = re.compile(r"\s*@([A-Za-z_]+):(.*)")


def _docstring_annotations(doc: str, path: Path, text: str
                           ) -> tuple[str, list[dict[str, Any]], float | None]:
    """The ``@check: ...`` lines (parsed) and the ``@timeout: 5s`` line (in seconds) of a
    docstring, and the rest as the description. Any other ``@key:`` line is an error: a
    typo such as ``@materialised`` would otherwise be silently kept as description. The
    timeout is not part of the fingerprint: how long a build may take does not change what
    it makes."""
    from headwater.core.checks import parse_check
    from headwater.load.sql import parse_timeout

    keep: list[str] = []
    checks: list[dict[str, Any]] = []
    timeout: float | None = None
    for line in doc.splitlines():
        m = _DOC_ANNOTATION.match(line)
        if m is None:
            keep.append(line)
            continue
        key, value = m.group(1), m.group(2).strip()
        lineno = next((i for i, t in enumerate(text.splitlines(), 1)
                       if t.strip().startswith(f"@{key}:") and value in t), None)
        snippet = caret_snippet(text, lineno, None) if lineno else None
        try:
            if key == "check":
                checks.append(parse_check(value).to_json())
            elif key == "timeout":
                timeout = parse_timeout(value)
        except ValueError as exc:
            example = ("`@check: not_null(customer_id)`" if key == "check"
                       else "`@timeout: 5s` or `@timeout: 30m`")
            raise ParseError(f"invalid @{key}: {exc}", path=path, line=lineno,
                             snippet=snippet, hint=f"e.g. {example} in the docstring") from None
        if key not in PY_ANNOTATIONS:
            col = text.splitlines()[lineno - 1].find("@") + 1 if lineno else None
            close = closest(key, PY_ANNOTATIONS, n=1)
            raise ParseError(
                f"unknown annotation @{key} in the docstring", path=path, line=lineno,
                column=col, snippet=caret_snippet(text, lineno, col) if lineno else None,
                hint=(f"did you mean @{close[0]}? " if close else "")
                + "a Python transform's docstring takes @check: and @timeout: (other"
                " settings, like @materialized, are for SQL files)")
    return "\n".join(keep), checks, timeout


def _strip_docstrings(module: ast.Module) -> ast.Module:
    for node in ast.walk(module):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
    return module
