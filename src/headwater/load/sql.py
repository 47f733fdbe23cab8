"""Reading a SQL transform: its header comment, its single SELECT, its references.

Everything here is a pure function of the file's text and the dialect, so the
result (:class:`SqlAnalysis`) is cached by content hash and sqlglot is never
imported on the no-op path.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from headwater.core.nodes import ANNOTATION_KEYS, REPEATABLE_KEYS, SLOT, RenderTemplate, SqlNode
from headwater.errors import ParseError, ProjectError, caret_snippet, did_you_mean, line_col

_ANNOTATION = re.compile(r"^--\s*@([A-Za-z_][\w-]*)\s*:?\s*(.*?)\s*$")


@dataclass
class Header:
    description: str = ""
    annotations: dict[str, Any] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)  # annotation key -> line


@dataclass
class SqlAnalysis:
    """What the loader needs from a SQL file; JSON-serialisable for the parse cache."""

    description: str
    annotations: dict[str, Any]
    refs: list[tuple[str, int | None, int | None]]
    code_fp: str
    template: RenderTemplate | None = None  # the SELECT in DuckDB's dialect, refs as slots

    def to_json(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "annotations": self.annotations,
            "refs": self.refs,
            "code_fp": self.code_fp,
            "template": self.template.to_json() if self.template else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SqlAnalysis:
        template = data.get("template")
        return cls(
            description=data["description"],
            annotations=data["annotations"],
            refs=[(r[0], r[1], r[2]) for r in data["refs"]],
            code_fp=data["code_fp"],
            template=RenderTemplate.from_json(template) if template else None,
        )


def make_template(tree: Any, text: str, engine_dialect: str = "duckdb") -> RenderTemplate | None:
    """:class:`RenderTemplate` of a parsed SELECT, or None when it cannot be made safely."""
    if "__hw_ref_" in text:
        return None  # a slot could collide with the user's own text
    from sqlglot import exp

    tree = tree.copy()
    targets = _ref_tables(tree)
    names = sorted({t.name for t in targets})
    for table in targets:
        slot = exp.Table(this=exp.to_identifier(SLOT.format(names.index(table.name))))
        alias = table.args.get("alias")
        slot.set("alias", alias.copy() if alias else exp.TableAlias(
            this=exp.to_identifier(table.name, quoted=table.this.quoted)))
        table.replace(slot)
    try:
        sql = tree.sql(dialect=engine_dialect)
    except Exception:  # noqa: BLE001 - not transpilable: the run path says why
        return None
    if any(sql.count(SLOT.format(i)) != sum(t.name == n for t in targets)
           for i, n in enumerate(names)):
        return None  # a slot was printed differently (quoted, renamed): do not guess
    return RenderTemplate(sql, tuple(names), engine_dialect)


def _ref_tables(tree: Any) -> list[Any]:
    """The unqualified table references of a query (CTEs and table functions excluded)."""
    from sqlglot import exp
    from sqlglot.optimizer.scope import traverse_scope

    return [source for scope in traverse_scope(tree) for source in scope.sources.values()
            if isinstance(source, exp.Table) and isinstance(source.this, exp.Identifier)
            and not source.args.get("db")]


def parse_header(text: str, path: Path, comment: str = "--") -> Header:
    """Read the leading comment block: description lines and ``@key: value`` lines."""
    header = Header()
    desc: list[str] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            if desc:
                desc.append("")
            continue
        if not line.startswith(comment):
            break
        m = _ANNOTATION.match("--" + line[len(comment) :])
        if m:
            key, value = m.group(1), m.group(2)
            parsed = _annotation_value(key, value, path, lineno, raw, text)
            if key in REPEATABLE_KEYS:
                header.annotations.setdefault(key, []).append(parsed)
            else:
                header.annotations[key] = parsed
            header.lines[key] = lineno
            continue
        desc.append(line[len(comment) :].strip())
    header.description = "\n".join(desc).strip()
    return header


def _annotation_value(key: str, value: str, path: Path, line: int, raw: str, text: str) -> Any:
    if key not in ANNOTATION_KEYS:
        col = raw.find("@") + 1 or None
        close = did_you_mean(f"@{key}", [f"@{k}" for k in ANNOTATION_KEYS])
        allowed = ", ".join(f"@{k}" for k in ANNOTATION_KEYS)
        raise ProjectError(
            f"unknown annotation @{key}",
            path=path,
            line=line,
            column=col,
            snippet=caret_snippet(text, line, col),
            hint=(close + " " if close else "") + f"allowed annotations: {allowed}",
        )
    if key == "tags":
        return [t.strip() for t in re.split(r"[,\s]+", value) if t.strip()]
    if key == "materialized":
        if value not in ("table", "view"):
            col = raw.rfind(value) + 1 if value else len(raw.rstrip()) + 1
            close = did_you_mean(value, ["table", "view"]) if value else None
            raise ProjectError(
                f"@materialized must be 'table' or 'view', got {value!r}",
                path=path,
                line=line,
                column=col,
                snippet=caret_snippet(text, line, col),
                hint=(close + " " if close else "")
                + "write `-- @materialized: table` (the default) or `-- @materialized: view`",
            )
        return value
    parser = _VALUE_PARSERS.get(key)
    if parser is None:
        return value
    try:
        return parser(value)
    except ValueError as exc:
        col = raw.find(value) + 1 if value else None
        raise ProjectError(
            f"invalid @{key}: {exc}",
            path=path,
            line=line,
            column=col or None,
            snippet=caret_snippet(text, line, col or None),
            hint=_ANNOTATION_HINTS.get(key),
        ) from None


def _parse_check(value: str) -> dict[str, Any]:
    from headwater.core.checks import parse_check

    return parse_check(value).to_json()


def _parse_incremental(value: str) -> dict[str, Any]:
    from headwater.core.incremental import parse_incremental

    return parse_incremental(value).to_json()


def _parse_lookback(value: str) -> dict[str, Any]:
    from headwater.core.incremental import parse_lookback

    return parse_lookback(value)


def parse_timeout(value: str | float) -> float:
    """Seconds of a ``@timeout`` / ``node_timeout``: a duration such as ``5s``, ``30m``."""
    from headwater.core.timeutil import parse_seconds

    seconds = parse_seconds(value)
    if seconds <= 0:
        raise ValueError(f"a timeout must be longer than 0 seconds, got {value!r}")
    return seconds


_VALUE_PARSERS: dict[str, Any] = {
    "check": _parse_check,
    "timeout": parse_timeout,
    "incremental": _parse_incremental,
    "lookback": _parse_lookback,
}
_ANNOTATION_HINTS = {
    "check": "e.g. `-- @check: not_null(customer_id)`; see README, Checks",
    "incremental": "e.g. `-- @incremental: by day day from ts`, `append by id`, "
    "`merge order_id by updated_at`",
    "lookback": "e.g. `-- @lookback: 2 day`",
    "timeout": "e.g. `-- @timeout: 5s`, `-- @timeout: 30m`",
}


def analyse_sql(text: str, path: Path, dialect: str) -> SqlAnalysis:
    """Parse one transform file; raise ParseError with line and caret on bad SQL."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError as GlotParseError
    from sqlglot.errors import TokenError

    header = parse_header(text, path)
    if not _strip_comments(text).strip():
        raise ParseError(
            "the file has no SQL statement",
            path=path,
            hint="write one SELECT statement; the file name becomes the table name",
        )
    try:
        statements = [s for s in sqlglot.parse(text, dialect=dialect) if s is not None]
    except GlotParseError as err:
        raise _syntax_error(err, text, path, dialect) from None
    except TokenError as err:
        raise _token_error(err, text, path) from None
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise _not_a_select(statements, text, path, dialect)
    tree = statements[0]
    refs = find_refs(tree, text)
    _no_main_schema(tree, text, path)
    normalised = tree.sql(dialect=dialect, normalize=True, comments=False)
    ann = header.annotations
    # checks count: every published build has passed the checks declared when it was built
    config = (f"materialized={ann.get('materialized', 'table')}"
              f"|incremental={ann.get('incremental')}|lookback={ann.get('lookback')}"
              f"|checks={sorted(c['raw'] for c in ann.get('check', []))}")
    code_fp = hashlib.sha256(f"sql\0{normalised}\0{config}".encode()).hexdigest()
    return SqlAnalysis(header.description, header.annotations, refs, code_fp,
                       make_template(tree, text))


def find_refs(tree: Any, text: str | None = None) -> list[tuple[str, int | None, int | None]]:
    """Real table references of a query: CTE names and table functions excluded.

    Each reference comes with the 1-based line and column where its name starts
    (exact when ``text``, the parsed SQL, is given).
    """
    from sqlglot import exp
    from sqlglot.optimizer.scope import traverse_scope

    refs: list[tuple[str, int | None, int | None]] = []
    seen: set[str] = set()
    for scope in traverse_scope(tree):
        for source in scope.sources.values():
            if not isinstance(source, exp.Table) or not isinstance(source.this, exp.Identifier):
                continue
            if source.args.get("db"):
                continue  # schema-qualified: a table outside the project
            name = source.name
            if name in seen:
                continue
            seen.add(name)
            refs.append((name, *_start(source.this, text)))
    refs.sort(key=lambda r: (r[1] or 0, r[2] or 0))
    return refs


def _no_main_schema(tree: Any, text: str, path: Path) -> None:
    """``main.orders`` is refused: nodes are referred to by bare name, and the warehouse's
    ``main`` schema holds nothing of the project's (the reference would be left out of the
    DAG, built in the wrong order and fail at run time)."""
    from sqlglot import exp

    for table in tree.find_all(exp.Table):
        if table.args.get("db") and table.db.lower() == "main" and not table.catalog:
            line, col = _start(table.args["db"], text)
            raise ParseError(
                f"{table.db}.{table.name}: refer to a node by its bare name ({table.name})",
                path=path, line=line, column=col,
                snippet=caret_snippet(text, line, col) if line else None,
                hint=f"write `FROM {table.name}`: Headwater resolves it to the table the node"
                " published in this environment")


def _start(node: Any, text: str | None) -> tuple[int | None, int | None]:
    """Where a parsed identifier starts (sqlglot's own ``col`` is where it ends)."""
    meta = node.meta
    if text is not None and meta.get("start") is not None:
        return line_col(text, meta["start"])  # includes an opening quote
    line, col = meta.get("line"), meta.get("col")
    if line is None or col is None:
        return line, col
    return line, max(1, col - len(node.name) + 1)


def locate_name(text: str, name: str, dialect: str) -> tuple[int | None, int | None]:
    """Where ``name`` first appears as a column, table or alias in a SQL text.

    For pointing at the culprit of an engine error that names it (``column
    "discount" not found``); (None, None) when it cannot be found.
    """
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(text, dialect=dialect)
    except Exception:
        return None, None
    hits: list[tuple[int, int]] = []
    for ident in tree.find_all(exp.Identifier):
        if ident.name.lower() == name.lower():
            line, col = _start(ident, text)
            if line is not None and col is not None:
                hits.append((line, col))
    return min(hits) if hits else (None, None)


_OPERATORS = {
    "EQ": "=", "NEQ": "<>", "GT": ">", "GTE": ">=", "LT": "<", "LTE": "<=", "Add": "+",
    "Sub": "-", "Mul": "*", "Div": "/", "Mod": "%", "And": "AND", "Or": "OR", "Not": "NOT",
    "Like": "LIKE", "ILike": "ILIKE", "In": "IN", "Is": "IS", "Between": "BETWEEN",
    "DPipe": "||", "Alias": "AS",
}
_CLAUSES = {
    "Where": "WHERE", "Having": "HAVING", "Group": "GROUP BY", "Order": "ORDER BY",
    "Limit": "LIMIT", "Offset": "OFFSET", "Join": "JOIN", "From": "FROM", "Qualify": "QUALIFY",
}


def _syntax_error(err: Any, text: str, path: Path, dialect: str) -> ParseError:
    """sqlglot's parse error in words a SQL author reads, pointing at the offending token."""
    first = err.errors[0] if err.errors else {}
    line, col = first.get("line"), first.get("col")
    found = (first.get("highlight") or "").strip()
    desc = str(first.get("description") or str(err)).split(". Line")[0]
    if line and col and found and "\n" not in found:
        col = max(1, col - len(found) + 1)  # sqlglot reports where the token ends
    m = re.match(r"Required keyword: '(\w+)' missing for <class '[\w.]*?(\w+)'>", desc)
    if m:
        key, cls = m.groups()
        if cls in _OPERATORS:
            side = "right" if key == "expression" else "left"
            desc = f"{_OPERATORS[cls]!r} is missing its {side}-hand side"
        elif cls in _CLAUSES:
            desc = f"incomplete {_CLAUSES[cls]} clause"
        else:
            desc = f"incomplete {cls} expression"
    elif desc.startswith("Invalid expression / Unexpected token"):
        desc = f"unexpected {found!r}" if found else "unexpected token"
    else:
        desc = re.sub(r"<Token token_type: TokenType\.SENTINEL,.*?>", "the end of the query", desc)
        desc = re.sub(r"<Token token_type: [^,]+, text: ([^,]+),.*?>", r"'\1'", desc)
        desc = desc[0].lower() + desc[1:] if desc[:1].isupper() and desc[1:2].islower() else desc
    if found and found.lower() not in desc.lower() and len(found) <= 40:
        desc += f" (at {found!r})"
    return ParseError(
        f"SQL syntax error: {desc}",
        path=path,
        line=line,
        column=col,
        snippet=caret_snippet(text, line, col) if line else None,
        hint=f"fix the SQL at line {line} (dialect: {dialect})"
        if line
        else f"fix the SQL (dialect: {dialect})",
    )


def _token_error(err: Any, text: str, path: Path) -> ParseError:
    """An unterminated string, quoted name or comment, located at its opening."""
    cause = str(err.__cause__ or "")
    m = re.match(r"Missing (\S+) from", cause)
    opener = m.group(1) if m else None
    if opener is None and text.rfind("/*") > text.rfind("*/"):
        opener = "/*"
    if opener is None:
        return ParseError(
            "SQL syntax error: the SQL cannot be read (unbalanced quotes or comment?)",
            path=path,
            hint="check that every quote and /* comment is closed",
        )
    line, col = line_col(text, text.rfind(opener))
    what = {"'": "string", '"': "quoted name", "/*": "comment"}.get(opener, "quoted text")
    closer = "*/" if opener == "/*" else opener
    return ParseError(
        f"SQL syntax error: unterminated {what} (no closing {closer})",
        path=path,
        line=line,
        column=col,
        snippet=caret_snippet(text, line, col),
        hint=f"close it with {closer}",
    )


def _not_a_select(statements: list[Any], text: str, path: Path, dialect: str) -> ParseError:
    """A file that holds several statements, or one that is not a query."""
    starts = _statement_starts(text, dialect)
    if len(statements) != 1:
        where = starts[1] if len(starts) > 1 else (None, None)
        what = f"{len(statements)} statements"
        hint = (
            "keep one SELECT per file (WITH ... SELECT is fine); move the other "
            "query into its own transforms/NAME.sql"
        )
    else:
        where = starts[0] if starts else (None, None)
        keyword = _first_keyword(text, dialect) or statements[0].key.upper()
        article = "an" if keyword[:1] in "AEIOU" else "a"
        what = f"{article} {keyword} statement"
        hint = (
            "write a SELECT (WITH ... SELECT is fine): Headwater creates, replaces and "
            "publishes the table itself, named after the file"
        )
    line, col = where
    return ParseError(
        f"a transform must be exactly one SELECT query, found {what}",
        path=path,
        line=line,
        column=col,
        snippet=caret_snippet(text, line, col) if line else None,
        hint=hint,
    )


def _tokens(text: str, dialect: str) -> list[Any]:
    from sqlglot.dialects.dialect import Dialect

    try:
        return list(Dialect.get_or_raise(dialect).tokenize(text))
    except Exception:
        return []


def _statement_starts(text: str, dialect: str) -> list[tuple[int, int]]:
    """(line, column) where each statement of ``text`` begins."""
    from sqlglot import TokenType

    starts: list[tuple[int, int]] = []
    at_start = True
    for tok in _tokens(text, dialect):
        if tok.token_type == TokenType.SEMICOLON:
            at_start = True
        elif at_start:
            starts.append(line_col(text, tok.start))
            at_start = False
    return starts


def _first_keyword(text: str, dialect: str) -> str | None:
    toks = _tokens(text, dialect)
    return toks[0].text.upper() if toks else None


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    return "\n".join(line.split("--", 1)[0] for line in text.splitlines())


def render_sql(node: SqlNode, dialect: str, tables: dict[str, str], engine_dialect: str) -> str:
    """A SQL node's SELECT with its references replaced by ``tables`` (name -> SQL text in
    ``engine_dialect``: a table or a parenthesised query). Fills the node's cached
    :class:`RenderTemplate` when it has one for that dialect; else renders with sqlglot."""
    template = node.template
    if template is not None and template.dialect == engine_dialect:
        filled: str | None = template.fill(tables)
        if filled is not None:
            return filled
    return render_for_engine(node.sql, dialect, {n: table_expr(t, engine_dialect)
                                                 for n, t in tables.items()}, engine_dialect)


def table_expr(text: str, dialect: str) -> Any:
    """The sqlglot expression of a table or parenthesised query written as SQL text."""
    import sqlglot

    return sqlglot.parse_one(f"SELECT * FROM {text}", dialect=dialect).args["from_"].this


def render_for_engine(text: str, dialect: str, tables: dict[str, Any], engine_dialect: str) -> str:
    """The transform's SELECT with node references replaced by physical tables.

    ``tables`` maps node names to sqlglot ``exp.Table`` nodes. The result is in
    ``engine_dialect`` (sqlglot transpiles when it differs from the project's).
    """
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(text, dialect=dialect)
    targets = [t for t in _ref_tables(tree) if t.name in tables]
    for table in targets:
        replacement = tables[table.name].copy()
        alias = table.args.get("alias")
        replacement.set("alias", alias.copy() if alias else exp.TableAlias(
            this=exp.to_identifier(table.name, quoted=table.this.quoted)))
        table.replace(replacement)
    return tree.sql(dialect=engine_dialect)
