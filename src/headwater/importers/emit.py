"""Writing Headwater files: a transform's header and column comments, TOML, literals.

Pure functions of their inputs, so each is easy to test on its own.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from headwater.core.quoting import quote_if_needed, quote_literal


def tidy_sql(sql: str) -> str:
    """Rendered Jinja without trailing spaces, runs of blank lines or blank ends."""
    lines = [line.rstrip() for line in sql.replace("\r\n", "\n").split("\n")]
    out: list[str] = []
    for line in lines:
        if not line and (not out or not out[-1]):
            continue
        out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)


def split_leading_comment(sql: str) -> tuple[list[str], str]:
    """The leading ``--`` comment block (texts without ``--``) and the SQL after it."""
    lines = sql.split("\n")
    comment: list[str] = []
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        if stripped.startswith("--"):
            comment.append(stripped[2:].strip())
        elif stripped:
            break
        elif comment:
            comment.append("")
        i += 1
    while comment and not comment[-1]:
        comment.pop()
    return comment, tidy_sql("\n".join(lines[i:]))


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def header(description: str, annotations: Sequence[tuple[str, str]]) -> str:
    """The leading comment of a transform: description lines, then ``@key: value`` lines."""
    lines: list[str] = []
    for line in description.strip().split("\n") if description.strip() else []:
        text = line.rstrip()
        if re.match(r"^\s*@[A-Za-z_]", text):
            text = "\\" + text.lstrip()  # would read as an annotation
        lines.append(f"-- {text}" if text else "--")
    for key, value in annotations:
        lines.append(f"-- @{key}: {value}")
    return "\n".join(lines)


def annotate_columns(
    body: str, docs: dict[str, str], dialect: str
) -> tuple[str, dict[str, str]]:
    """Put each column description after its SELECT line as ``-- text``.

    Only where that is unambiguous: the outermost SELECT names the column, the
    projection ends its line (a comma may follow) and the line has no comment
    yet. Returns the new SQL and the descriptions that could not be placed.
    """
    if not docs:
        return body, {}
    import sqlglot
    from sqlglot import exp

    wanted = {k.lower(): v for k, v in docs.items() if str(v).strip()}
    try:
        tree = sqlglot.parse_one(body, dialect=dialect)
    except Exception:
        return body, dict(docs)
    select = tree
    while isinstance(select, exp.SetOperation):
        select = select.this
    if not isinstance(select, exp.Select):
        return body, dict(docs)
    lines = body.split("\n")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    ends: dict[str, tuple[int, int]] = {}  # column -> (line index, offset after it)
    per_line: Counter[int] = Counter()
    for proj in select.expressions:
        name = proj.alias_or_name.lower()
        idents = [i for i in proj.find_all(exp.Identifier) if i.meta.get("end") is not None]
        if not idents:
            continue
        last = max(idents, key=lambda i: i.meta["end"])
        line_no = int(last.meta["line"]) - 1
        per_line[line_no] += 1
        if name and name not in ("*",):
            ends.setdefault(name, (line_no, int(last.meta["end"]) + 1))
    placed: set[str] = set()
    for name, (line_no, offset) in ends.items():
        if name not in wanted or per_line[line_no] != 1 or line_no >= len(lines):
            continue
        line = lines[line_no]
        rest = line[offset - starts[line_no]:]
        if rest.strip() not in ("", ",") or "--" in line:
            continue
        lines[line_no] = f"{line}  -- {one_line(wanted[name])}"
        placed.add(name)
    left = {k: v for k, v in docs.items() if k.lower() not in placed and str(v).strip()}
    return "\n".join(lines), left


def sql_identifier(name: str) -> str:
    return quote_if_needed(name)


def sql_literal(value: Any, quote: bool = True) -> str:
    """A value as a SQL literal (strings single-quoted, quotes doubled)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if not quote:
        return str(value)
    return quote_literal(str(value))


def sql_list(values: Iterable[Any], quote: bool = True) -> str:
    return "[" + ", ".join(sql_literal(v, quote) for v in values) + "]"


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        inner = ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # a valid TOML basic string


def toml_key(key: str) -> str:
    return key if re.match(r"^[A-Za-z0-9_-]+$", key) else json.dumps(key)


def toml_document(items: Sequence[tuple[str, Any]], comments: Sequence[str] = ()) -> str:
    lines = [f"# {c}" if c else "#" for c in comments]
    lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in items if v not in (None, "", [], {})]
    return "\n".join(lines) + "\n"
