"""Column lineage of one SELECT: which upstream columns each output column is made of.

A pure pass over sqlglot trees: parse, qualify with the columns known for the
upstream tables (so ``SELECT *``, ``* EXCLUDE`` and unqualified names resolve),
then walk the scopes. A column reached through CTEs, subqueries, unions,
joins, aggregates, windows or CASE is followed back to the upstream table
columns it reads.

Every input of an output column is an *edge* ``(table, column, transform,
exact)``:

* ``transform`` is ``identity`` (copied as is), ``transformation`` (computed
  from it: arithmetic, CASE, CAST, window keys ...) or ``aggregation`` (an
  aggregate function of it), the OpenLineage subtypes;
* ``exact`` is False when the SQL alone cannot say which table a column comes
  from (an unqualified name in a join over tables whose columns are unknown):
  the edge then points at every candidate.

Besides the value edges, ``reads`` lists the columns a query uses to pick or
order its rows (WHERE, JOIN, GROUP BY, HAVING, QUALIFY, ORDER BY), and
``reads_all`` the tables read through a ``*`` that could not be expanded.
Together they are what a node consumes, for change impact.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

IDENTITY, TRANSFORMATION, AGGREGATION = "identity", "transformation", "aggregation"
TRANSFORMS = (IDENTITY, TRANSFORMATION, AGGREGATION)

# (table, column) -> (rank of the transform, exact)
_Resolved = dict[tuple[str, str], tuple[int, bool]]

_CLAUSES = (
    ("where", "filter"),
    ("having", "filter"),
    ("qualify", "filter"),
    ("joins", "join"),
    ("group", "group_by"),
    ("order", "sort"),
)


@dataclass
class SqlColumn:
    """One output column: its name and the upstream columns it is made of."""

    name: str
    inputs: list[tuple[str, str, str, bool]]  # (table, column, transform, exact)
    description: str = ""
    expression: str | None = None


@dataclass
class SqlLineage:
    columns: list[SqlColumn]
    reads: list[tuple[str, str, str]] = field(default_factory=list)  # table, column, subtype
    reads_all: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def sql_lineage(
    sql: str,
    dialect: str,
    schemas: Mapping[str, Sequence[str] | None],
    output: Sequence[str] | None = None,
) -> SqlLineage:
    """The column lineage of ``sql``.

    ``schemas`` maps each upstream table (by the name the SQL uses) to its column
    names, or None when they are unknown; tables not in it are outside the
    project and not followed. ``output`` is the query's real output column names
    when known (from the built table): they name the result, and they make an
    unexpandable ``*`` resolvable by name.

    >>> lin = sql_lineage("SELECT a + b AS c FROM t", "duckdb", {"t": ["a", "b"]})
    >>> lin.columns[0].inputs
    [('t', 'a', 'transformation', True), ('t', 'b', 'transformation', True)]
    """
    import sqlglot
    from sqlglot.optimizer.qualify import qualify
    from sqlglot.optimizer.scope import build_scope

    try:
        tree = sqlglot.parse_one(sql, dialect=dialect)
    except Exception as exc:
        return coarse_lineage(output or [], schemas, f"cannot parse the SQL: {_first_line(exc)}")
    notes = _projection_notes(tree, dialect)
    known: dict[str, object] = {
        t: dict.fromkeys(cols, "UNKNOWN") for t, cols in schemas.items() if cols is not None}
    try:
        qualified = qualify(
            tree, schema=known, dialect=dialect, validate_qualify_columns=False,
            quote_identifiers=False, identify=False,
        )
        root = build_scope(qualified)
    except Exception as exc:
        return coarse_lineage(output or [], schemas, f"cannot resolve columns: {_first_line(exc)}")
    if root is None:
        return coarse_lineage(output or [], schemas, "not a query")
    walker = _Walker(schemas)
    columns = walker.outputs(root, output, notes)
    walker.collect_reads(root)
    reads = sorted({(t, c, s) for (t, c, s) in walker.reads})
    return SqlLineage(columns, reads, sorted(walker.reads_all), walker.problems)


def coarse_lineage(
    output: Sequence[str], schemas: Mapping[str, Sequence[str] | None], problem: str | None
) -> SqlLineage:
    """Every output column made of every input column: what is known when analysis fails."""
    inputs = [(t, c, TRANSFORMATION, False) for t, cols in schemas.items() for c in cols or ()]
    columns = [SqlColumn(name, list(inputs)) for name in output]
    return SqlLineage(columns, [], sorted(schemas), [problem] if problem else [])


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


# -- what the author wrote: comments and expressions --------------------------------


def _projection_notes(tree: Any, dialect: str) -> list[tuple[str, str, str | None, bool]]:
    """(name, description, expression, is_star) of the outermost SELECT's projections."""
    from sqlglot import exp

    select = tree
    while isinstance(select, exp.SetOperation):
        select = select.this
    if not isinstance(select, exp.Select):
        return []
    out = []
    for proj in select.expressions:
        inner = proj.this if isinstance(proj, exp.Alias) else proj
        star = _is_star(proj)
        comments: list[str] = []
        for node in proj.walk():
            if isinstance(node, exp.Query) and node is not proj:
                continue
            comments.extend(c.strip() for c in node.comments or () if c.strip())
        if star:
            expression = None
        elif isinstance(inner, exp.Column) and isinstance(inner.this, exp.Identifier):
            expression = ".".join(p.name for p in inner.parts)  # cheaper than generating
        else:
            expression = inner.sql(dialect=dialect, comments=False)
        if expression and len(expression) > 400:
            expression = expression[:399] + "…"
        out.append((proj.alias_or_name, " ".join(comments), expression, star))
    return out


def _is_star(proj: Any) -> bool:
    from sqlglot import exp

    return isinstance(proj, exp.Star) or (
        isinstance(proj, exp.Column) and isinstance(proj.this, exp.Star)
    )


# -- the walk ---------------------------------------------------------------------


class _Walker:
    def __init__(self, schemas: Mapping[str, Sequence[str] | None]) -> None:
        self.tables = {t.lower(): t for t in schemas}
        self.columns: dict[str, dict[str, str] | None] = {
            t: ({c.lower(): c for c in cols} if cols is not None else None)
            for t, cols in schemas.items()
        }
        self.memo: dict[tuple[int, str], _Resolved] = {}
        self.reads: set[tuple[str, str, str]] = set()
        self.reads_all: set[str] = set()
        self.problems: list[str] = []

    # output columns -----------------------------------------------------------

    def outputs(
        self,
        root: Any,
        output: Sequence[str] | None,
        notes: list[tuple[str, str, str | None, bool]],
    ) -> list[SqlColumn]:
        selects = _leftmost(root.expression).expressions
        has_star = any(_is_star(p) for p in selects)
        names = [p.alias_or_name for p in selects]
        if output is not None and not has_star and len(output) == len(selects):
            pairs = [(name, self.by_index(root, i)) for i, name in enumerate(output)]
        elif output is not None:
            pairs = [(name, self.by_name(root, name)) for name in output]
        else:
            if has_star:
                self.problems.append(
                    "SELECT * over a table whose columns are unknown: build the node once "
                    "(headwater run) to list its columns"
                )
            pairs = [(n, self.by_index(root, i)) for i, n in enumerate(names)
                     if not _is_star(selects[i])]
        by_name = {n.lower(): (d, e) for n, d, e, star in notes if n and not star}
        positional = len(notes) == len(pairs) and not any(star for *_, star in notes)
        out = []
        for i, (name, resolved) in enumerate(pairs):
            desc, expr = (notes[i][1], notes[i][2]) if positional else by_name.get(
                name.lower(), ("", None))
            inputs = [(t, c, TRANSFORMS[rank], exact)
                      for (t, c), (rank, exact) in sorted(resolved.items())]
            out.append(SqlColumn(name, inputs, desc, expr))
        return out

    # resolution ---------------------------------------------------------------

    def by_name(self, scope: Any, name: str) -> _Resolved:
        """The upstream columns behind the column ``name`` that ``scope`` produces."""
        from sqlglot import exp

        key = (id(scope), "n:" + name.lower())
        if key in self.memo:
            return self.memo[key]
        self.memo[key] = {}  # a recursive CTE refers to itself
        expr = scope.expression
        if isinstance(expr, exp.SetOperation) and not expr.args.get("by_name"):
            names = [n.lower() for n in _leftmost(expr).named_selects]
            result = self.by_index(scope, names.index(name.lower())) if name.lower() in names \
                else {}
        elif isinstance(expr, exp.SetOperation):
            result = {}
            for sub in scope.set_operation_scopes:
                _merge(result, self.by_name(sub, name))
        elif isinstance(expr, exp.Select):
            result = self._select_column(scope, name)
        else:
            result = {}
        self.memo[key] = result
        return result

    def by_index(self, scope: Any, index: int) -> _Resolved:
        from sqlglot import exp

        key = (id(scope), f"i:{index}")
        if key in self.memo:
            return self.memo[key]
        self.memo[key] = {}
        expr = scope.expression
        result: _Resolved = {}
        if isinstance(expr, exp.SetOperation):
            if expr.args.get("by_name"):
                names = _leftmost(expr).named_selects
                if index < len(names):
                    result = self.by_name(scope, names[index])
            else:
                for sub in scope.set_operation_scopes:
                    _merge(result, self.by_index(sub, index))
        elif isinstance(expr, exp.Select) and index < len(expr.expressions):
            proj = expr.expressions[index]
            if not _is_star(proj):
                result = self.projection(scope, proj)
        self.memo[key] = result
        return result

    def _select_column(self, scope: Any, name: str) -> _Resolved:
        projections = scope.expression.expressions
        for proj in projections:
            if not _is_star(proj) and proj.alias_or_name.lower() == name.lower():
                return self.projection(scope, proj)
        # not listed: it comes through a * whose sources' columns are unknown
        candidates = []
        for proj in projections:
            if not _is_star(proj):
                continue
            table = proj.table if hasattr(proj, "table") else ""
            if table and table in scope.sources:
                candidates.append(scope.sources[table])
            else:
                candidates.extend(src for _, src in scope.selected_sources.values())
        return self._from_candidates(candidates, name)

    def projection(self, scope: Any, proj: Any) -> _Resolved:
        """The upstream columns one projection (or any expression) of ``scope`` reads."""
        from sqlglot import exp

        inner = proj.this if isinstance(proj, exp.Alias) else proj
        result: _Resolved = {}
        for col in _columns(inner):
            rank = _rank(col, inner)
            _merge(result, self.column(scope, col), floor=rank)
        for query in _subqueries(inner):
            sub = _scope_of(scope, query)
            if sub is not None:
                floor = max(_rank(query, inner), 1)
                _merge(result, self.by_index(sub, 0), floor=floor)
        return result

    def column(self, scope: Any, col: Any, aliases: bool = False) -> _Resolved:
        """The upstream columns behind one column reference inside ``scope``."""
        name = col.name
        table = col.table
        if table:
            src = _lookup(scope, table)
            return self._from_source(src, name, exact=True) if src is not None else {}
        if aliases:  # ORDER BY / GROUP BY may name an output column
            own = [p for p in getattr(scope.expression, "expressions", [])
                   if not _is_star(p) and p.alias_or_name.lower() == name.lower()]
            if own:
                return self.projection(scope, own[0])
        candidates = [src for _, src in scope.selected_sources.values()]
        if not candidates and scope.parent is not None:
            candidates = [src for _, src in scope.parent.selected_sources.values()]
        return self._from_candidates(candidates, name)

    def _from_candidates(self, candidates: list[Any], name: str) -> _Resolved:
        if len(candidates) == 1:
            return self._from_source(candidates[0], name, exact=True)
        holding = [s for s in candidates if self._has_column(s, name) is True]
        if len(holding) == 1:
            return self._from_source(holding[0], name, exact=True)
        maybe = holding + [s for s in candidates if self._has_column(s, name) is None]
        result: _Resolved = {}
        for src in maybe:
            _merge(result, self._from_source(src, name, exact=False))
        return result

    def _from_source(self, src: Any, name: str, exact: bool) -> _Resolved:
        from sqlglot import exp
        from sqlglot.optimizer.scope import Scope

        if isinstance(src, Scope):
            found = self.by_name(src, name)
            return found if exact else {k: (r, False) for k, (r, _) in found.items()}
        if not isinstance(src, exp.Table) or not isinstance(src.this, exp.Identifier):
            return {}
        if src.args.get("db"):
            return {}  # a table outside the project
        table = self.tables.get(src.name.lower())
        if table is None:
            return {}
        cols = self.columns.get(table)
        if src.args.get("pivots"):
            self.reads_all.add(table)
            return {(table, c): (1, False) for c in (cols or {}).values()}
        actual = cols.get(name.lower(), name) if cols else name
        return {(table, actual): (0, exact)}

    def _has_column(self, src: Any, name: str) -> bool | None:
        from sqlglot import exp
        from sqlglot.optimizer.scope import Scope

        if isinstance(src, Scope):
            select = _leftmost(src.expression)
            if any(_is_star(p) for p in getattr(select, "expressions", [])):
                return None
            names: list[str] = getattr(src.expression, "named_selects", [])
            return name.lower() in (n.lower() for n in names)
        if isinstance(src, exp.Table):
            table = self.tables.get(src.name.lower())
            cols = self.columns.get(table) if table else None
            return None if cols is None else name.lower() in cols
        return None

    # rows: the columns that choose, join, group and order them ------------------

    def collect_reads(self, root: Any) -> None:
        from sqlglot import exp

        in_projections: set[int] = set()  # scalar subqueries: values, not row filters
        for scope in root.traverse():
            if isinstance(scope.expression, exp.Select):
                for proj in scope.expression.expressions:
                    in_projections.update(id(q) for q in _subqueries(proj))
        for scope in root.traverse():
            expr = scope.expression
            if isinstance(expr, exp.Select):
                for key, subtype in _CLAUSES:
                    value = expr.args.get(key)
                    for part in value if isinstance(value, list) else [value]:
                        if part is None:
                            continue
                        for col in _columns(part):
                            self._add_reads(self.column(scope, col, aliases=True), subtype)
                for proj in expr.expressions:
                    if _is_star(proj):
                        self._star_reads(scope, proj)
                if scope.is_subquery and id(expr) not in in_projections:  # IN, EXISTS
                    for i in range(len(expr.expressions)):
                        self._add_reads(self.by_index(scope, i), "filter")

    def _star_reads(self, scope: Any, proj: Any) -> None:
        from sqlglot import exp
        from sqlglot.optimizer.scope import Scope

        table = getattr(proj, "table", "")
        sources = [scope.sources[table]] if table and table in scope.sources else [
            src for _, src in scope.selected_sources.values()]
        for src in sources:
            if isinstance(src, exp.Table) and isinstance(src.this, exp.Identifier) \
                    and not src.args.get("db"):
                name = self.tables.get(src.name.lower())
                if name is not None:
                    self.reads_all.add(name)
            elif isinstance(src, Scope):
                inner = _leftmost(src.expression)
                for p in getattr(inner, "expressions", []):
                    if _is_star(p):
                        self._star_reads(src, p)

    def _add_reads(self, resolved: _Resolved, subtype: str) -> None:
        for table, column in resolved:
            self.reads.add((table, column, subtype))


# -- tree helpers -------------------------------------------------------------------


def _leftmost(expr: Any) -> Any:
    from sqlglot import exp

    while isinstance(expr, exp.SetOperation):
        expr = expr.this
    while isinstance(expr, exp.Subquery):
        expr = expr.this
    return expr


def _columns(node: Any) -> Iterable[Any]:
    """Column references in ``node``, not looking into nested queries (own scopes)."""
    from sqlglot import exp

    stack = [node]
    while stack:
        cur = stack.pop()
        if isinstance(cur, exp.Column):
            if not isinstance(cur.this, exp.Star):
                yield cur
            continue
        for child in cur.iter_expressions():
            if isinstance(child, exp.Query | exp.Subquery):
                continue
            stack.append(child)


def _subqueries(node: Any) -> Iterable[Any]:
    """The outermost queries nested in ``node`` (scalar subqueries, IN, EXISTS)."""
    from sqlglot import exp

    stack = [node]
    while stack:
        cur = stack.pop()
        for child in cur.iter_expressions():
            if isinstance(child, exp.Subquery):
                yield child.this
            elif isinstance(child, exp.Query):
                yield child
            else:
                stack.append(child)


def _scope_of(scope: Any, query: Any) -> Any:
    for sub in scope.subquery_scopes:
        if sub.expression is query:
            return sub
    return None


def _lookup(scope: Any, table: str) -> Any:
    """The source named ``table`` in ``scope`` or, for a correlated reference, a parent."""
    cur = scope
    while cur is not None:
        if table in cur.sources:
            return cur.sources[table]
        cur = cur.parent
    return None


def _rank(node: Any, top: Any) -> int:
    """How ``node`` reaches the value of ``top``: 0 identity, 1 transformation, 2 aggregation."""
    from sqlglot import exp

    if node is top:
        return 0
    cur = node.parent
    prev = node
    navigation = (exp.Lag, exp.Lead, exp.FirstValue, exp.LastValue, exp.NthValue)
    while cur is not None:
        if isinstance(cur, exp.AggFunc) and not isinstance(cur, navigation):
            return 2
        if isinstance(cur, exp.Filter) and prev is not cur.this and isinstance(
                cur.this, exp.AggFunc):
            return 2
        if cur is top:
            break
        prev, cur = cur, cur.parent
    return 1


def _merge(into: _Resolved, more: _Resolved, floor: int = 0) -> None:
    for key, (rank, exact) in more.items():
        rank = max(rank, floor)
        if key in into:
            old_rank, old_exact = into[key]
            into[key] = (max(old_rank, rank), old_exact or exact)
        else:
            into[key] = (rank, exact)
