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

from headwater.errors import ParseError, ProjectError, caret_snippet, did_you_mean
from headwater.project.nodes import ANNOTATION_KEYS

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

    def to_json(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "annotations": self.annotations,
            "refs": self.refs,
            "code_fp": self.code_fp,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SqlAnalysis:
        return cls(
            description=data["description"],
            annotations=data["annotations"],
            refs=[tuple(r) for r in data["refs"]],  # type: ignore[misc]
            code_fp=data["code_fp"],
        )


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
            header.annotations[key] = _annotation_value(key, value, path, lineno, text)
            header.lines[key] = lineno
            continue
        desc.append(line[len(comment) :].strip())
    header.description = "\n".join(desc).strip()
    return header


def _annotation_value(key: str, value: str, path: Path, line: int, text: str) -> Any:
    if key not in ANNOTATION_KEYS:
        hint = did_you_mean(key, ANNOTATION_KEYS)
        allowed = ", ".join(f"@{k}" for k in ANNOTATION_KEYS)
        raise ProjectError(
            f"unknown annotation @{key}",
            path=path,
            line=line,
            snippet=caret_snippet(text, line, None),
            hint=(hint + " " if hint else "") + f"allowed annotations: {allowed}",
        )
    if key == "tags":
        return [t.strip() for t in re.split(r"[,\s]+", value) if t.strip()]
    if key == "materialized":
        if value not in ("table", "view"):
            raise ProjectError(
                f"@materialized must be 'table' or 'view', got {value!r}",
                path=path,
                line=line,
                snippet=caret_snippet(text, line, None),
            )
        return value
    return value


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
        first = err.errors[0] if err.errors else {}
        line, col = first.get("line"), first.get("col")
        desc = first.get("description", str(err)).split(". Line")[0]
        desc = re.sub(r"<Token token_type: [^,]+, text: ([^,]+),.*?>", r"'\1'", desc)
        raise ParseError(
            f"SQL syntax error: {desc}",
            path=path,
            line=line,
            column=col,
            snippet=caret_snippet(text, line, col) if line else None,
            hint=f"check the SQL near line {line} (dialect: {dialect})",
        ) from None
    except TokenError as err:
        raise ParseError(f"SQL syntax error: {err}", path=path) from None
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        what = (
            f"{len(statements)} statements"
            if len(statements) != 1
            else f"a {statements[0].key.upper()} statement"
        )
        raise ParseError(
            f"a transform must be exactly one SELECT query, found {what}",
            path=path,
            hint="keep one SELECT (WITH ... SELECT is fine); Headwater creates the table itself",
        )
    tree = statements[0]
    refs = find_refs(tree)
    normalised = tree.sql(dialect=dialect, normalize=True, comments=False)
    config = f"materialized={header.annotations.get('materialized', 'table')}"
    code_fp = hashlib.sha256(f"sql\0{normalised}\0{config}".encode()).hexdigest()
    return SqlAnalysis(header.description, header.annotations, refs, code_fp)


def find_refs(tree: Any) -> list[tuple[str, int | None, int | None]]:
    """Real table references of a query: CTE names and table functions excluded."""
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
            meta = source.this.meta
            refs.append((name, meta.get("line"), meta.get("col")))
    return refs


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    return "\n".join(line.split("--", 1)[0] for line in text.splitlines())


def render_for_engine(text: str, dialect: str, tables: dict[str, Any], engine_dialect: str) -> str:
    """The transform's SELECT with node references replaced by physical tables.

    ``tables`` maps node names to sqlglot ``exp.Table`` nodes. The result is in
    ``engine_dialect`` (sqlglot transpiles when it differs from the project's).
    """
    import sqlglot
    from sqlglot import exp
    from sqlglot.optimizer.scope import traverse_scope

    tree = sqlglot.parse_one(text, dialect=dialect)
    targets: list[exp.Table] = []
    for scope in traverse_scope(tree):
        for source in scope.sources.values():
            if (
                isinstance(source, exp.Table)
                and isinstance(source.this, exp.Identifier)
                and not source.args.get("db")
                and source.name in tables
            ):
                targets.append(source)
    for table in targets:
        replacement = tables[table.name].copy()
        alias = table.args.get("alias")
        replacement.set("alias", alias.copy() if alias else exp.TableAlias(
            this=exp.to_identifier(table.name, quoted=table.this.quoted)))
        table.replace(replacement)
    return tree.sql(dialect=engine_dialect)
