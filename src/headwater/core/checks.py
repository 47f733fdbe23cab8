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
DURATION = re.compile(r"^(\d+)\s*(minute|hour|day|week)s?$", re.IGNORECASE)


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
        "freshness": len(args) == 2 and bool(DURATION.match(args[1])),
        "range": len(args) == 3,
        "expression": bool(args and args[0]),
    }[kind]
    if not ok:
        raise ValueError(f"wrong arguments for {kind}; expected {SYNTAX[kind]}")
    if kind != "expression":
        for a in args:
            if ";" in a:
                raise ValueError(f"unexpected ';' in check argument {a!r}")
