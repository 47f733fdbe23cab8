"""Data quality checks: declared where the data is defined, run before publishing.

Declaration (a SQL transform's leading comment, repeatable)::

    -- @check: not_null(customer_id)
    -- @check: unique(merchant_id, day)
    -- @check: accepted_values(status, ['online', 'offline', 'degraded'])
    -- @check: relationships(device_id, devices.device_id)
    -- @check: row_count(min=1, max=1000000)
    -- @check: freshness(ts, 2 days)
    -- @check: range(battery_pct, 0, 100)
    -- @check: expression(battery_pct between 0 and 100) severity=warn

or a Python docstring line ``@check: ...``, or a source's TOML
(``checks = ["not_null(id)", ...]``, with ``on_fail = "quarantine"`` on row-level
checks). Custom checks are SQL files under ``checks/`` that select failing rows.

Each check becomes one SELECT that returns the *failing rows* of the newly
built physical table; zero rows is a pass. Severity ``error`` (default) blocks
publishing; ``warn`` publishes and reports.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

KINDS = ("not_null", "unique", "accepted_values", "relationships", "row_count", "freshness",
         "range", "expression")
ROW_LEVEL = ("not_null", "accepted_values", "range", "expression", "relationships")
SYNTAX = {
    "not_null": "not_null(column[, column ...])",
    "unique": "unique(column[, column ...])",
    "accepted_values": "accepted_values(column, ['a', 'b'])",
    "relationships": "relationships(column, other_node.column)",
    "row_count": "row_count(min=1, max=1000)",
    "freshness": "freshness(timestamp_column, 2 days)",
    "range": "range(column, min, max)",
    "expression": "expression(sql condition that every row satisfies)",
}
_HEAD = re.compile(r"^\s*([A-Za-z_]\w*)\s*\((.*)\)\s*(.*?)\s*$", re.DOTALL)
_DURATION = re.compile(r"^(\d+)\s*(minute|hour|day|week)s?$", re.IGNORECASE)


@dataclass(frozen=True)
class CheckSpec:
    kind: str
    args: tuple[str, ...]
    severity: str = "error"
    on_fail: str = "fail"  # fail | quarantine (source row-level checks)
    raw: str = ""
    options: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The declaration without its options: ``not_null(id)``."""
        if self.kind == "sql":
            return self.raw
        return self.raw[: self.raw.rfind(")") + 1].strip() or self.kind

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["args"] = list(self.args)
        return d

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CheckSpec:
        return cls(**{**data, "args": tuple(data["args"])})


def split_args(text: str) -> list[str]:
    """Split on top-level commas, respecting quotes and brackets."""
    out: list[str] = []
    depth, quote, cur = 0, "", []
    for ch in text:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = ""
            continue
        if ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    if "".join(cur).strip():
        out.append("".join(cur).strip())
    return out


def parse_check(text: str) -> CheckSpec:
    """Parse one check declaration; ValueError saying what is expected."""
    m = _HEAD.match(text)
    if not m:
        raise ValueError(f"cannot read check {text!r}; expected e.g. not_null(column)")
    kind, inner, tail = m.group(1), m.group(2), m.group(3)
    if kind not in KINDS:
        import difflib

        close = difflib.get_close_matches(kind, KINDS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown check {kind!r}{hint}; built in: {', '.join(KINDS)}")
    options: dict[str, str] = {}
    for part in tail.split():
        if "=" not in part:
            raise ValueError(f"cannot read {part!r} after the check; use severity=warn")
        k, v = part.split("=", 1)
        options[k] = v
    severity = options.pop("severity", "error")
    if severity not in ("error", "warn"):
        raise ValueError(f"severity must be error or warn, got {severity!r}")
    on_fail = options.pop("on_fail", "fail")
    if on_fail not in ("fail", "quarantine"):
        raise ValueError(f"on_fail must be fail or quarantine, got {on_fail!r}")
    if options:
        raise ValueError(f"unknown option(s) {', '.join(options)}; allowed: severity, on_fail")
    args = tuple(split_args(inner)) if kind != "expression" else (inner.strip(),)
    _validate(kind, args)
    return CheckSpec(kind, args, severity, on_fail, text.strip())


def _validate(kind: str, args: tuple[str, ...]) -> None:
    ok = {
        "not_null": len(args) >= 1,
        "unique": len(args) >= 1,
        "accepted_values": len(args) == 2 and args[1].startswith("["),
        "relationships": len(args) == 2 and "." in args[1],
        "row_count": 1 <= len(args) <= 2 and all(re.match(r"^(min|max)\s*=\s*\d+$", a)
                                                 for a in args),
        "freshness": len(args) == 2 and bool(_DURATION.match(args[1])),
        "range": len(args) == 3,
        "expression": bool(args and args[0]),
    }[kind]
    if not ok:
        raise ValueError(f"wrong arguments for {kind}; expected {SYNTAX[kind]}")
    if kind != "expression":
        for a in args:
            if ";" in a:
                raise ValueError(f"unexpected ';' in check argument {a!r}")


def _ident(name: str) -> str:
    return '"' + name.strip().strip('"').replace('"', '""') + '"'


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
    m = _DURATION.match(a[1])
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
