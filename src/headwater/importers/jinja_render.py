"""Rendering a dbt model's Jinja into plain SQL with Jinja2, for a full build.

The environment provides what a simple model uses: ``ref``, ``source``,
``config``, ``var``, ``is_incremental`` (False: Headwater builds the full
table), ``this``, ``target``, ``env_var`` (its default only: values from the
environment never end up in a converted file) and dbt's small helpers. Before
rendering, the template's syntax tree is scanned for what cannot be rendered
statically: project macros, package macros, ``run_query``/``adapter``/
``execute`` and friends, includes and imports. Each becomes a :class:`Problem`
with the line it is on, and the model is not converted.

Templates run in Jinja's sandbox: an imported project is somebody else's code.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from headwater.importers.dbt_project import DbtImportError

THIS_PLACEHOLDER = "__hw_this__"
# Macro namespaces of dbt itself and of widely used packages.
_KNOWN_PACKAGES = {"dbt", "dbt_utils", "dbt_expectations", "dbt_date", "codegen", "audit_helper"}

# Names a model may use that this renderer provides.
PROVIDED = {
    "ref", "source", "config", "var", "is_incremental", "this", "target", "env_var",
    "log", "print", "return", "zip", "set", "tojson", "fromjson", "toyaml", "fromyaml",
    "local_md5", "doc",
}
# Jinja's own globals and the names it defines inside loops, macros and call blocks.
JINJA_NAMES = {
    "range", "dict", "lipsum", "cycler", "joiner", "namespace", "loop", "caller",
    "varargs", "kwargs", "self",
}
# dbt context members that need a live database or dbt's graph: not renderable statically.
RUNTIME_ONLY = {
    "run_query", "statement", "execute", "adapter", "graph", "model", "invocation_id",
    "run_started_at", "flags", "builtins", "selected_resources", "schemas", "database",
    "schema", "exceptions", "modules", "api", "store_result", "load_result", "load_relation",
    "context", "dbt_version", "project_name", "results", "sql", "compiled_code",
}


@dataclass
class Problem:
    """Something in a template that stops (``blocking``) or qualifies a conversion."""

    line: int | None
    reason: str
    blocking: bool = True


@dataclass
class Rendered:
    sql: str | None  # None when a blocking problem was found
    config: dict[str, Any] = field(default_factory=dict)  # config(...) keyword arguments
    problems: list[Problem] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)  # Headwater names that ref()/source() gave
    uses_is_incremental: bool = False

    @property
    def blocked(self) -> bool:
        return any(p.blocking for p in self.problems)


class Unresolvable(Exception):
    """Raised by a ref/source resolver for a name the Headwater project will not have."""


class _Abort(Exception):
    """Stops a render: the template needs something that cannot be provided."""


Resolver = Callable[..., str]


class Renderer:
    """Renders the models of one dbt project.

    ``resolve_ref(*args, **kwargs)`` and ``resolve_source(source, table)`` return
    the Headwater name to write, or raise :class:`Unresolvable`.
    """

    def __init__(
        self,
        *,
        project_vars: dict[str, Any],
        resolve_ref: Resolver,
        resolve_source: Resolver,
        project_macros: dict[str, str],
        packages: Iterable[str],
        adapter_type: str = "duckdb",
    ) -> None:
        try:
            from jinja2 import StrictUndefined
            from jinja2.sandbox import SandboxedEnvironment
        except ImportError:  # pragma: no cover - depends on the installation
            raise DbtImportError(
                "rendering dbt models needs Jinja2",
                hint="pip install 'headwater[dbt]' (or pip install jinja2 pyyaml)",
            ) from None
        self.vars = project_vars
        self.resolve_ref = resolve_ref
        self.resolve_source = resolve_source
        self.project_macros = project_macros
        self.packages = set(packages)
        self.adapter_type = adapter_type
        self.env = SandboxedEnvironment(
            extensions=["jinja2.ext.do", "jinja2.ext.loopcontrols"],
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )
        self.env.filters.update(
            as_bool=_as_bool, as_number=_as_number, as_text=str, as_native=lambda v: v
        )

    # -- scanning ---------------------------------------------------------

    def scan(self, text: str) -> tuple[list[Problem], bool]:
        """Problems found in the syntax tree, and whether ``is_incremental()`` is used."""
        from jinja2 import TemplateSyntaxError, nodes

        try:
            tree = self.env.parse(text)
        except TemplateSyntaxError as exc:
            return [Problem(exc.lineno, f"Jinja syntax error: {exc.message}")], False
        problems: list[Problem] = []
        local = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
        local |= {m.name for m in tree.find_all(nodes.Macro)}
        called: set[int] = set()
        incremental = False
        for call in tree.find_all(nodes.Call):
            func = call.node
            if isinstance(func, nodes.Name):
                called.add(id(func))
                if func.name == "is_incremental":
                    incremental = True
                elif func.name in local or func.name in PROVIDED | JINJA_NAMES:
                    continue
                elif func.name in self.project_macros:
                    where = self.project_macros[func.name]
                    problems.append(Problem(call.lineno, f"custom macro {func.name}() "
                                            f"(defined in {where})"))
                elif func.name in RUNTIME_ONLY:
                    problems.append(Problem(call.lineno, f"{func.name}() needs a live "
                                            "database connection"))
                else:
                    problems.append(Problem(call.lineno, f"unknown macro {func.name}()"))
            elif isinstance(func, nodes.Getattr):
                root: Any = func
                while isinstance(root, nodes.Getattr):
                    root = root.node
                if not isinstance(root, nodes.Name) or root.name in local:
                    continue
                called.add(id(root))
                dotted = f"{root.name}.{func.attr}" if root is func.node else _dotted(func)
                if root.name in self.packages or root.name in _KNOWN_PACKAGES:
                    problems.append(Problem(call.lineno, f"package macro {dotted}()"))
                elif root.name in RUNTIME_ONLY:
                    problems.append(Problem(call.lineno, f"{dotted}() needs dbt at run time"))
                elif root.name not in PROVIDED | JINJA_NAMES:
                    problems.append(Problem(call.lineno, f"unknown macro {dotted}() "
                                            "(from a package?)"))
        for name in tree.find_all(nodes.Name):
            if name.ctx != "load" or name.name in local:
                continue
            if name.name == "target":
                problems.append(Problem(name.lineno, "uses `target`: rendered for target "
                                        "'dev'", blocking=False))
            elif id(name) in called:
                continue
            elif name.name in RUNTIME_ONLY:
                problems.append(Problem(name.lineno, f"`{name.name}` needs dbt at run time"))
            elif name.name not in PROVIDED | JINJA_NAMES:
                problems.append(Problem(name.lineno, f"undefined name `{name.name}`"))
        for node in tree.find_all((nodes.Include, nodes.Import, nodes.FromImport,
                                   nodes.Extends)):
            problems.append(Problem(node.lineno, f"{type(node).__name__.lower()} of another "
                                    "template"))
        for call in tree.find_all(nodes.Call):
            if isinstance(call.node, nodes.Name) and call.node.name == "env_var":
                problems.append(Problem(call.lineno, "env_var(): rendered with its default; "
                                        "Headwater never writes environment values into SQL",
                                        blocking=False))
        return _dedupe(problems), incremental

    def static_config(self, text: str) -> dict[str, Any]:
        """The constant keyword arguments of ``config(...)`` calls, without rendering."""
        from jinja2 import TemplateSyntaxError, nodes
        from jinja2.nodes import Impossible

        try:
            tree = self.env.parse(text)
        except TemplateSyntaxError:
            return {}
        found: dict[str, Any] = {}
        for call in tree.find_all(nodes.Call):
            if isinstance(call.node, nodes.Name) and call.node.name == "config":
                for kw in call.kwargs:
                    try:
                        found[kw.key] = kw.value.as_const()
                    except Impossible:
                        continue
        return found

    # -- rendering --------------------------------------------------------

    def render(
        self,
        text: str,
        name: str,
        *,
        base_config: dict[str, Any] | None = None,
        incremental: bool = False,
        this: str | None = None,
    ) -> Rendered:
        """Render a model; ``incremental=True`` renders its is_incremental() branch."""
        problems, uses_incremental = self.scan(text)
        out = Rendered(None, problems=problems, uses_is_incremental=uses_incremental)
        if out.blocked:
            return out
        from jinja2 import TemplateError

        state = _State(out, base_config or {})
        try:
            template = self.env.from_string(text)
        except TemplateError as exc:  # pragma: no cover - scan() parsed it already
            out.problems.append(Problem(getattr(exc, "lineno", None), str(exc)))
            return out
        state.template = template
        context = self._context(state, name, incremental, this or name)
        try:
            sql = template.render(context)
        except _Abort as exc:
            out.problems.append(Problem(state.line_of_error(exc), str(exc)))
            return out
        except Exception as exc:
            reason = getattr(exc, "message", None) or str(exc)
            out.problems.append(Problem(state.line_of_error(exc), f"cannot render: {reason}"))
            return out
        if not out.blocked:
            out.sql = sql
        return out

    def _context(self, state: _State, name: str, incremental: bool, this: str) -> dict[str, Any]:
        def ref(*args: Any, **kwargs: Any) -> str:
            try:
                hw = self.resolve_ref(*args, **kwargs)
            except Unresolvable as exc:
                state.problem(str(exc))
                hw = str(args[-1]) if args else "?"
            state.out.refs.append(hw)
            return hw

        def source(source_name: str, table_name: str) -> str:
            try:
                hw = self.resolve_source(source_name, table_name)
            except Unresolvable as exc:
                state.problem(str(exc))
                hw = f"{source_name}__{table_name}"
            state.out.refs.append(hw)
            return hw

        def var(key: str, default: Any = _MISSING) -> Any:
            if key in self.vars:
                return self.vars[key]
            if default is not _MISSING:
                return default
            raise _Abort(f"var({key!r}) is not set in dbt_project.yml and has no default")

        def env_var(key: str, default: Any = _MISSING) -> Any:
            if default is _MISSING:
                raise _Abort(f"env_var({key!r}) has no default")
            return default

        def is_incremental() -> bool:
            return incremental

        return {
            "ref": ref,
            "source": source,
            "config": _Config(state),
            "var": var,
            "env_var": env_var,
            "is_incremental": is_incremental,
            "this": _Relation(this, self.adapter_type),
            "target": {
                "name": "dev", "target_name": "dev", "schema": "main", "database": "main",
                "type": self.adapter_type, "threads": 1, "profile_name": "headwater",
            },
            "log": lambda *a, **k: "",
            "print": lambda *a, **k: "",
            "return": lambda value: value,
            "zip": zip,
            "set": set,
            "tojson": lambda v, *a, **k: json.dumps(v, default=str),
            "fromjson": lambda s, default=None: _try(json.loads, s, default),
            "toyaml": _toyaml,
            "fromyaml": _fromyaml,
            "local_md5": lambda s: hashlib.md5(str(s).encode()).hexdigest(),
        }


_MISSING = object()


class _State:
    def __init__(self, out: Rendered, base_config: dict[str, Any]) -> None:
        self.out = out
        self.base_config = base_config
        self.template: Any = None

    def current_line(self) -> int | None:
        """The template line being rendered, from the Python stack."""
        frame = sys._getframe(1)
        while frame is not None:
            if frame.f_code.co_filename == "<template>" and self.template is not None:
                line: int = self.template.get_corresponding_lineno(frame.f_lineno)
                return line
            frame = frame.f_back  # type: ignore[assignment]
        return None

    def line_of_error(self, exc: BaseException) -> int | None:
        line = None
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == "<template>" and self.template is not None:
                line = self.template.get_corresponding_lineno(tb.tb_lineno)
            tb = tb.tb_next
        return line if line is not None else getattr(exc, "lineno", None)

    def problem(self, reason: str, blocking: bool = True) -> None:
        self.out.problems.append(Problem(self.current_line(), reason, blocking))


class _Config:
    """dbt's ``config``: ``config(...)`` records settings, ``config.get`` reads them."""

    def __init__(self, state: _State) -> None:
        self._state = state

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        if args and isinstance(args[0], dict):
            kwargs = {**args[0], **kwargs}
        self._state.out.config.update(kwargs)
        return ""

    def get(self, key: str, default: Any = None) -> Any:
        merged = {**self._state.base_config, **self._state.out.config}
        return merged.get(key, default)

    def require(self, key: str) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise _Abort(f"config.require({key!r}): {key!r} is not configured")
        return value


class _Relation:
    """``{{ this }}``: the model's own table."""

    def __init__(self, name: str, adapter_type: str) -> None:
        self.name = self.identifier = self.table = name
        self.schema = "main"
        self.database = "main"
        self.type = adapter_type

    def __str__(self) -> str:
        return self.name

    def render(self) -> str:
        return self.name


def _dotted(node: Any) -> str:
    from jinja2 import nodes

    parts: list[str] = []
    while isinstance(node, nodes.Getattr):
        parts.append(node.attr)
        node = node.node
    if isinstance(node, nodes.Name):
        parts.append(node.name)
    return ".".join(reversed(parts))


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[tuple[int | None, str]] = set()
    out = []
    for p in problems:
        if (p.line, p.reason) not in seen:
            seen.add((p.line, p.reason))
            out.append(p)
    return sorted(out, key=lambda p: p.line or 0)


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "y", "on")
    return bool(value)


def _as_number(value: Any) -> Any:
    try:
        return int(value)
    except (TypeError, ValueError):
        return float(value)


def _try(func: Callable[[Any], Any], value: Any, default: Any) -> Any:
    try:
        return func(value)
    except Exception:
        return default


def _toyaml(value: Any, *args: Any, **kwargs: Any) -> str:
    import yaml

    return str(yaml.safe_dump(value, sort_keys=False))


def _fromyaml(value: Any, default: Any = None) -> Any:
    import yaml

    return _try(yaml.safe_load, value, default)
