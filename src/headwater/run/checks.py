"""Data quality checks at run time: each declared check becomes one SELECT of the failing
rows of the newly built table (zero rows is a pass); the results block or warn.

The declarations themselves (:class:`~headwater.core.checks.CheckSpec`) live in the core.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from headwater.core.checks import DURATION, ROW_LEVEL, CheckSpec, split_args
from headwater.core.quoting import quote_ident


def _ident(name: str) -> str:
    return quote_ident(name.strip().strip('"'))


def _literal(text: str, dialect: str) -> str:
    """A literal from the declaration, re-rendered by sqlglot (so it cannot be SQL)."""
    import sqlglot
    from sqlglot import exp

    node = sqlglot.parse_one(text, dialect=dialect)
    if not isinstance(node, exp.Literal | exp.Neg | exp.Null | exp.Boolean):
        raise ValueError(f"{text!r} is not a literal value")
    return node.sql(dialect=dialect)


def failing_condition(spec: CheckSpec, *, dialect: str, resolve: Any = None) -> str | None:
    """The WHERE condition selecting violating rows, for row-level checks (else None)."""
    a = spec.args
    if spec.kind == "sql":
        return None
    if spec.kind == "not_null":
        return " OR ".join(f"{_ident(c)} IS NULL" for c in a)
    if spec.kind == "accepted_values":
        values = ", ".join(_literal(v, dialect) for v in split_args(a[1].strip()[1:-1]))
        col = _ident(a[0])
        return f"({col} IS NOT NULL AND {col} NOT IN ({values}))"
    if spec.kind == "relationships":
        other, other_col = a[1].rsplit(".", 1)
        target = resolve(other.strip()) if resolve else _ident(other)
        col = _ident(a[0])
        return (f"({col} IS NOT NULL AND {col} NOT IN"
                f" (SELECT o.{_ident(other_col)} FROM {target} AS o"
                f" WHERE o.{_ident(other_col)} IS NOT NULL))")
    if spec.kind == "range":
        col, lo, hi = _ident(a[0]), _literal(a[1], dialect), _literal(a[2], dialect)
        return f"({col} < {lo} OR {col} > {hi})"
    if spec.kind == "expression":
        # parsed by sqlglot as one condition, so it cannot smuggle in statements
        import sqlglot

        cond = sqlglot.parse_one(a[0], dialect=dialect).sql(dialect=dialect)
        return f"NOT coalesce(({cond}), FALSE)"
    return None


def failing_rows_sql(
    spec: CheckSpec, table: str, *, dialect: str, resolve: Any = None
) -> str:
    """A SELECT of the rows of ``table`` (a quoted SQL reference) violating ``spec``.

    ``resolve(node_name) -> quoted table reference`` resolves relationships targets.
    """
    if spec.kind == "sql":  # a custom check file, already rendered for the engine
        return spec.args[0]
    cond = failing_condition(spec, dialect=dialect, resolve=resolve)
    if cond is not None:
        return f"SELECT * FROM {table} WHERE {cond}"
    a = spec.args
    if spec.kind == "unique":
        cols = ", ".join(_ident(c) for c in a)
        return (f"SELECT {cols}, count(*) AS n FROM {table} GROUP BY {cols}"
                f" HAVING count(*) > 1")
    if spec.kind == "row_count":
        bounds = dict(re.sub(r"\s", "", x).split("=") for x in a)
        conds = []
        if "min" in bounds:
            conds.append(f"n < {int(bounds['min'])}")
        if "max" in bounds:
            conds.append(f"n > {int(bounds['max'])}")
        return f"SELECT n FROM (SELECT count(*) AS n FROM {table}) WHERE {' OR '.join(conds)}"
    assert spec.kind == "freshness"
    m = DURATION.match(a[1])
    assert m is not None
    col = _ident(a[0])
    return (f"SELECT max({col}) AS latest FROM {table} HAVING max({col}) IS NULL OR"
            f" max({col})::TIMESTAMP < now()::TIMESTAMP - INTERVAL {int(m.group(1))}"
            f" {m.group(2).upper()}")


@dataclass
class CheckResult:
    node: str
    check: str
    severity: str
    passed: bool
    failing: int
    sample: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    quarantined: int = 0

    @property
    def status(self) -> str:
        if self.error:
            return "error"
        return "pass" if self.passed else ("warn" if self.severity == "warn" else "fail")

    @property
    def blocking(self) -> bool:
        return self.status in ("fail", "error") and self.severity == "error"

    def to_json(self) -> dict[str, Any]:
        return {"node": self.node, "check": self.check, "severity": self.severity,
                "status": self.status, "failing_rows": self.failing, "sample": self.sample,
                "error": self.error, "quarantined": self.quarantined}


def run_checks(
    engine: Any,
    node: str,
    specs: tuple[CheckSpec, ...],
    table: str,
    *,
    dialect: str = "duckdb",
    resolve: Any = None,
    scope: str | None = None,
) -> list[CheckResult]:
    """Run ``specs`` against ``table``; ``scope`` (a WHERE condition) limits row-level
    checks to the rows just processed (incremental builds)."""
    results = []
    for spec in specs:
        source = table
        if scope and spec.kind in ROW_LEVEL:
            source = f"(SELECT * FROM {table} WHERE {scope})"
        try:
            sql = failing_rows_sql(spec, source, dialect=dialect, resolve=resolve)
            n = engine.fetch(f"SELECT count(*) FROM ({sql}) AS f")[0][0]
            sample: list[dict[str, Any]] = []
            if n:
                sample = [{k: _jsonable(v) for k, v in row.items()}
                          for row in engine.query(f"SELECT * FROM ({sql}) AS f", limit=5)
                          .to_pylist()]
            results.append(CheckResult(node, spec.name, spec.severity, n == 0, int(n), sample))
        except Exception as exc:  # a check that cannot run is a failed check, with why
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            results.append(CheckResult(node, spec.name, spec.severity, False, 0, error=msg))
    return results


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
