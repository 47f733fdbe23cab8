"""dbt generic tests (schema.yml ``tests:``/``data_tests:``) as Headwater checks.

``not_null``, ``unique``, ``accepted_values`` and ``relationships`` convert to
``-- @check: name(column, ...)`` lines, and so do four dbt_utils tests with a
built-in equivalent (``unique_combination_of_columns``, ``accepted_range``,
``expression_is_true``, ``recency``); ``severity: warn`` becomes
``severity=warn``. Anything else (other package tests, custom generic tests,
tests filtered with ``where``) is reported, not guessed at.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from headwater.importers.dbt_project import line_of
from headwater.importers.emit import sql_identifier, sql_list

CONVERTIBLE = ("not_null", "unique", "accepted_values", "relationships")
DBT_UTILS = ("dbt_utils.unique_combination_of_columns", "dbt_utils.accepted_range",
             "dbt_utils.expression_is_true", "dbt_utils.recency")
_DATEPARTS = {"minute": "minute", "hour": "hour", "day": "day", "week": "week"}
# Test configs that change what passes; a check cannot express them.
_SEMANTIC_CONFIGS = ("where", "limit", "fail_calc", "warn_if", "error_if", "store_failures_as")


@dataclass
class TestSpec:
    name: str
    column: str | None
    args: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    line: int | None = None

    @property
    def label(self) -> str:
        return f"{self.name}({self.column})" if self.column else self.name


@dataclass
class Converted:
    check: str | None  # the text after `@check:`, or None when not converted
    reason: str = ""  # why not converted
    notes: list[str] = field(default_factory=list)  # converted, but worth a look
    relation: str | None = None  # the table a relationships check points at


def tests_of(entry: dict[str, Any]) -> list[Any]:
    return list(entry.get("data_tests") or entry.get("tests") or [])


def parse_tests(entry: dict[str, Any], column: str | None) -> list[TestSpec]:
    """The tests of a model (``column=None``) or column property entry."""
    specs: list[TestSpec] = []
    for raw in tests_of(entry):
        line = line_of(raw, line_of(entry))
        if isinstance(raw, str):
            specs.append(TestSpec(str(raw), column, line=line))
            continue
        if not isinstance(raw, dict) or not raw:
            continue
        if "test_name" in raw:
            name, body = str(raw["test_name"]), dict(raw)
        else:
            name = str(next(iter(raw)))
            body = raw[name] if isinstance(raw[name], dict) else {}
        args = {k: v for k, v in body.items() if k not in ("config", "arguments", "name",
                                                             "test_name")}
        args.update(body.get("arguments") or {})
        config = dict(body.get("config") or {})
        for key in ("severity", "where", "limit", "tags", "enabled"):
            if key in args:
                config.setdefault(key, args.pop(key))
        col = column
        if args.get("column_name"):
            col = str(args.pop("column_name"))
        specs.append(TestSpec(name, col, args, config, line))
    return specs


def to_check(spec: TestSpec, relation: Callable[[str], str]) -> Converted:
    """Convert one test; ``relation`` turns ``ref('x')``/``source(...)`` text into a name."""
    if spec.config.get("enabled") is False:
        return Converted(None, "disabled in dbt")
    if spec.name not in CONVERTIBLE + DBT_UTILS:
        kind = "package test" if "." in spec.name else "custom generic test"
        return Converted(None, f"{kind} {spec.name!r}: Headwater has no such check")
    semantic = [k for k in _SEMANTIC_CONFIGS if spec.config.get(k) not in (None, "")]
    if semantic:
        return Converted(None, f"test config {', '.join(semantic)} cannot be expressed as a "
                         "check")
    severity = str(spec.config.get("severity", "error")).lower()
    done = _convert(spec, relation)
    if done.check is not None and severity == "warn":
        done.check += " severity=warn"
    return done


def _convert(spec: TestSpec, relation: Callable[[str], str]) -> Converted:
    args = spec.args
    if spec.name == "dbt_utils.unique_combination_of_columns":
        cols = args.get("combination_of_columns")
        if not isinstance(cols, list) or not cols or not all(map(_simple_column, cols)):
            return Converted(None, "unique_combination_of_columns needs a list of columns")
        return Converted(f"unique({', '.join(_ident(c) for c in cols)})")
    if spec.name == "dbt_utils.expression_is_true":
        expression = str(args.get("expression") or "").strip()
        if not expression:
            return Converted(None, "expression_is_true without an expression")
        if spec.column:
            expression = f"{spec.column} {expression}"
        # dbt fails rows where the expression is false, not where it is null
        return Converted(f"expression(coalesce(({expression}), true))")
    if spec.name == "dbt_utils.recency":
        part = _DATEPARTS.get(str(args.get("datepart", "")).lower())
        column, interval = args.get("field"), args.get("interval")
        if not part or not column or not isinstance(interval, int):
            return Converted(None, "recency needs datepart (minute, hour, day or week), "
                             "field and a whole interval")
        return Converted(f"freshness({_ident(str(column))}, {interval} {part}s)")
    if spec.column is None:
        return Converted(None, f"{spec.name} without a column")
    if not _simple_column(spec.column):
        return Converted(None, f"{spec.name} on the expression {spec.column!r}")
    column = _ident(spec.column)
    if spec.name in ("not_null", "unique"):
        return Converted(f"{spec.name}({column})")
    if spec.name == "dbt_utils.accepted_range":
        lo, hi = args.get("min_value"), args.get("max_value")
        if args.get("inclusive", True) is False:
            return Converted(None, "accepted_range with inclusive: false")
        if lo is None and hi is None:
            return Converted(None, "accepted_range without min_value or max_value")
        if lo is not None and hi is not None and _number(lo) and _number(hi):
            return Converted(f"range({column}, {lo}, {hi})")
        parts = ([f"{column} >= {lo}"] if lo is not None else []) + (
            [f"{column} <= {hi}"] if hi is not None else [])
        return Converted(f"expression(coalesce(({' and '.join(parts)}), true))")
    if spec.name == "accepted_values":
        values = args.get("values")
        if not isinstance(values, list):
            return Converted(None, "accepted_values without a list of values")
        quote = args.get("quote", True) is not False
        return Converted(f"accepted_values({column}, {sql_list(values, quote)})")
    to, to_field = args.get("to"), args.get("field")
    if not to or not to_field:
        return Converted(None, "relationships needs `to` and `field`")
    try:
        target = relation(str(to))
    except Exception as exc:
        return Converted(None, f"relationships to {to}: {exc}")
    check = f"relationships({column}, {target}.{sql_identifier(str(to_field))})"
    return Converted(check, relation=target)


def _ident(name: str) -> str:
    return sql_identifier(str(name).strip().strip('"'))


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _simple_column(text: str) -> bool:
    inner = text.strip()
    if inner.startswith('"') and inner.endswith('"'):
        inner = inner[1:-1]
    return bool(inner) and all(c.isalnum() or c in "_ " for c in inner) and inner.strip() == inner
