"""DuckDB-dialect SQL to Spark SQL: the rewrites sqlglot's transpiler leaves to us.

sqlglot translates syntax and most functions. What it cannot know is how
Headwater's own SQL relies on DuckDB semantics; each rule below is a pure
``tree -> tree`` function, applied in order by :func:`to_spark`:

* ``hash(t)`` of a whole row (content fingerprints) becomes ``xxhash64(t.*)``;
* ``::HUGEINT`` becomes ``DECIMAL(38, 0)`` (Spark has no 128-bit integer);
* ``a / b`` is a DOUBLE in DuckDB whatever the operand types; Spark keeps
  DECIMAL, so both sides are cast to DOUBLE;
* ``quantile_cont(x, q)`` interpolates exactly as DuckDB does;
* ``round(x, n)`` rounds the binary value, as DuckDB does;
* ``strftime`` formats become Spark datetime patterns, literal text quoted;
* ``date_trunc`` stays a naive TIMESTAMP, ``range(n)`` a column named ``range``.

:func:`untranslatable` finds, before anything runs, what Spark cannot execute:
constructs sqlglot cannot express in Spark SQL and functions Spark does not know.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

_STRFTIME = {
    "Y": "yyyy", "y": "yy", "m": "MM", "d": "dd", "e": "d", "H": "HH", "I": "hh",
    "M": "mm", "S": "ss", "f": "SSSSSS", "p": "a", "j": "DDD", "b": "MMM", "B": "MMMM",
    "a": "EEE", "A": "EEEE", "z": "Z", "Z": "z", "%": "%",
}


def spark_datetime_format(fmt: str) -> str:
    """A strftime format as a Spark datetime pattern: ``%Y-%m-%dT%H`` -> ``yyyy-MM-dd'T'HH``."""
    out: list[str] = []
    literal: list[str] = []

    def flush() -> None:
        if literal:
            text = "".join(literal).replace("'", "''")
            out.append(text if re.fullmatch(r"[\s\-:/.,]*", text) else f"'{text}'")
            literal.clear()

    i = 0
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt) and fmt[i + 1] in _STRFTIME:
            flush()
            out.append(_STRFTIME[fmt[i + 1]])
            i += 2
        else:
            literal.append(fmt[i])
            i += 1
    flush()
    return "".join(out)


def _table_aliases(node: exp.Expr) -> set[str]:
    select = node.find_ancestor(exp.Select)
    names: set[str] = set()
    if select is None:
        return names
    sources = [select.args.get("from_") or select.args.get("from")] + list(
        select.args.get("joins") or [])
    for src in sources:
        if src is None:
            continue
        rel = src.this if isinstance(src, exp.From | exp.Join) else src
        if rel is not None and rel.alias_or_name:
            names.add(rel.alias_or_name)
    return names


def _row_hash(node: exp.Expr) -> exp.Expr:
    if (isinstance(node, exp.Anonymous) and node.name.lower() == "hash"
            and len(node.expressions) == 1 and isinstance(node.expressions[0], exp.Column)):
        col = node.expressions[0]
        if not col.table and col.name in _table_aliases(node):
            star = exp.Column(this=exp.Star(), table=exp.to_identifier(col.name))
            return exp.Anonymous(this="xxhash64", expressions=[star])
    return node


_WIDE = {exp.DataType.Type.INT128: (38, 0), exp.DataType.Type.UINT128: (38, 0),
         exp.DataType.Type.UBIGINT: (20, 0)}


def _wide_ints(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.DataType) and node.this in _WIDE:
        p, s = _WIDE[node.this]
        return exp.DataType.build(f"DECIMAL({p}, {s})")
    return node


def _double_division(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.Div) and not node.args.get("_hw_cast"):
        def dbl(e: exp.Expr) -> exp.Expr:
            return exp.cast(e, "DOUBLE")
        div = exp.Div(this=dbl(node.this), expression=dbl(node.expression))
        div.set("_hw_cast", True)
        return div
    return node


# DuckDB's quantile_cont (x86-64 builds) interpolates as fma(lo, 1 - d, hi * d) with
# d = RN - floor(RN), RN = (n - 1) * q: one rounding for lo * (1 - d) + (hi * d). Spark's
# percentile rounds differently in the last bit, which ROUND(p95, 1) then turns into a
# different value. The fused multiply-add is computed exactly with Dekker's error-free
# product and Knuth's two-sum, in plain DOUBLE arithmetic.


def _let(name: str, value: str, body: str) -> str:
    """``body`` with ``name`` bound to ``value`` (Spark SQL has no LET: a one-element
    ``transform``)."""
    return f"element_at(transform(array({value}), {name} -> {body}), 1)"


def _fma_sql(a: str, b: str, c: str) -> str:
    split = "CAST(134217729 AS DOUBLE)"
    body = ("__hw_s + ((__hw_p - (__hw_s - (__hw_s - __hw_p))) + (__hw_c - (__hw_s - __hw_p))"
            " + (__hw_al * __hw_bl - (((__hw_p - __hw_ah * __hw_bh) - __hw_al * __hw_bh)"
            " - __hw_ah * __hw_bl)))")
    body = _let("__hw_s", "__hw_p + __hw_c", body)
    body = _let("__hw_bl", "__hw_b - __hw_bh", body)
    body = _let("__hw_bh", f"{split} * __hw_b - ({split} * __hw_b - __hw_b)", body)
    body = _let("__hw_al", "__hw_a - __hw_ah", body)
    body = _let("__hw_ah", f"{split} * __hw_a - ({split} * __hw_a - __hw_a)", body)
    body = _let("__hw_p", "__hw_a * __hw_b", body)
    body = _let("__hw_c", c, body)
    body = _let("__hw_b", b, body)
    return _let("__hw_a", a, body)


def _quantile_sql() -> str:
    inner = _let("__hw_d", "__hw_rn - floor(__hw_rn)",
                 _fma_sql("__hw_lo", "CAST(1 AS DOUBLE) - __hw_d", "__hw_hi * __hw_d"))
    body = ("CASE WHEN floor(__hw_rn) = ceil(__hw_rn) THEN __hw_lo ELSE " + inner + " END")
    body = _let("__hw_hi", "element_at(__hw_v, CAST(ceil(__hw_rn) AS INT) + 1)", body)
    body = _let("__hw_lo", "element_at(__hw_v, CAST(floor(__hw_rn) AS INT) + 1)", body)
    body = _let("__hw_rn", "(size(__hw_v) - 1) * CAST(__q AS DOUBLE)", body)
    return _let("__hw_v", "array_sort(collect_list(CAST(__x AS DOUBLE)))",
                f"CASE WHEN size(__hw_v) = 0 THEN NULL ELSE {body} END")


_QUANTILE = _quantile_sql()


def _percentile(node: exp.Expr) -> exp.Expr:
    if not isinstance(node, exp.PercentileCont) or node.args.get("expression") is None \
            or isinstance(node.parent, exp.WithinGroup):
        return node
    q = node.expression
    if isinstance(node.parent, exp.Window | exp.Filter) or not (
            isinstance(q, exp.Literal) and not q.is_string):
        return exp.Anonymous(this="percentile", expressions=[node.this, q])
    import sqlglot

    tree = sqlglot.parse_one(_QUANTILE, dialect="spark")
    for col in list(tree.find_all(exp.Column)):
        if col.name == "__x":
            col.replace(node.this.copy())
        elif col.name == "__q":
            col.replace(exp.Literal.number(q.this))  # cast to DOUBLE, as in DuckDB
    return tree


def _strftime(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.TimeToStr):
        fmt = node.args.get("format")
        if isinstance(fmt, exp.Literal) and fmt.is_string:
            return exp.Anonymous(this="date_format", expressions=[
                node.this, exp.Literal.string(spark_datetime_format(fmt.this))])
    return node


def _round_sql(digits: int) -> str:
    """DuckDB's ROUND(DOUBLE, n): the exact binary value rounded half away from zero.

    ``p = |x| * 10^n`` is rounded by its fraction; when that is exactly .5, the error of
    the product (Dekker) tells whether |x| * 10^n was above or below the tie.
    """
    split = "CAST(134217729 AS DOUBLE)"
    err = ("(__hw_ml * __hw_sl - (((__hw_p - __hw_mh * __hw_sh) - __hw_ml * __hw_sh)"
           " - __hw_mh * __hw_sl))")
    up = f"(__hw_p - floor(__hw_p) > 0.5 OR (__hw_p - floor(__hw_p) = 0.5 AND {err} >= 0))"
    rounded = f"(CASE WHEN {up} THEN floor(__hw_p) + 1 ELSE floor(__hw_p) END) / __hw_s"
    body = (f"CASE WHEN __hw_p >= CAST(4503599627370496 AS DOUBLE) OR isnan(__hw_p)"
            f" THEN __hw_x WHEN __hw_x < 0 THEN -({rounded}) ELSE {rounded} END")
    body = _let("__hw_sl", "__hw_s - __hw_sh", body)
    body = _let("__hw_sh", f"{split} * __hw_s - ({split} * __hw_s - __hw_s)", body)
    body = _let("__hw_ml", "__hw_m - __hw_mh", body)
    body = _let("__hw_mh", f"{split} * __hw_m - ({split} * __hw_m - __hw_m)", body)
    body = _let("__hw_p", "__hw_m * __hw_s", body)
    body = _let("__hw_m", "abs(__hw_x)", body)
    body = _let("__hw_s", f"CAST({10 ** digits} AS DOUBLE)", body)
    body = _let("__hw_x", "CAST(__x AS DOUBLE)", body)
    return f"CASE WHEN typeof(__x) = 'double' THEN {body} ELSE round(__x, {digits}) END"


def _round(node: exp.Expr) -> exp.Expr:
    """ROUND of a DOUBLE as DuckDB does it (Spark rounds the shortest decimal text:
    157.95 -> 158.0 where DuckDB, rounding 157.94999..., gives 157.9)."""
    if not isinstance(node, exp.Round) or node.args.get("_hw_round"):
        return node
    digits = node.args.get("decimals")
    if not (isinstance(digits, exp.Literal) and not digits.is_string
            and str(digits.this).isdigit() and 0 < int(digits.this) <= 15):
        return node
    import sqlglot

    tree = sqlglot.parse_one(_round_sql(int(digits.this)), dialect="spark")
    for r in tree.find_all(exp.Round):
        r.set("_hw_round", True)
    for col in list(tree.find_all(exp.Column)):
        if col.name == "__x":
            col.replace(node.this.copy())
    return tree


def _series_column(node: exp.Expr) -> exp.Expr:
    """``FROM range(3)`` has a column ``range`` in DuckDB (``generate_series`` for
    generate_series, or the alias's column); in Spark it becomes a subquery exploding
    the sequence into a column of that name."""
    if not (isinstance(node, exp.Table) and isinstance(node.this, exp.GenerateSeries)):
        return node
    import sqlglot

    alias = node.args.get("alias")
    default = "range" if node.this.args.get("is_end_exclusive") else "generate_series"
    column = alias.columns[0].name if alias is not None and alias.columns else default
    name = alias.name if alias is not None and alias.name else default
    seq = node.this.sql(dialect="spark")
    select = sqlglot.parse_one(f"SELECT explode({seq}) AS `{column}`",
                               dialect="spark")
    return exp.Subquery(this=select, alias=exp.TableAlias(this=exp.to_identifier(name)))


def _naive_trunc(node: exp.Expr) -> exp.Expr:
    """Spark's date_trunc returns a TIMESTAMP with time zone; DuckDB's a naive one."""
    if isinstance(node, exp.TimestampTrunc) and not node.args.get("_hw_naive"):
        node.set("_hw_naive", True)
        return exp.cast(node, "TIMESTAMP_NTZ")
    return node


RULES: tuple[Callable[[exp.Expr], exp.Expr], ...] = (
    _row_hash, _wide_ints, _percentile, _strftime, _series_column, _naive_trunc,
)
DUCKDB_RULES = (_round, _double_division)


def to_spark(tree: exp.Expr, read: str) -> exp.Expr:
    """Apply the semantic rewrites to a parsed statement (in place where possible)."""
    rules = RULES + (DUCKDB_RULES if read == "duckdb" else ())
    for rule in rules:
        tree = tree.transform(rule, copy=False)
    return tree


def cte_names(tree: exp.Expr) -> set[str]:
    return {cte.alias for cte in tree.find_all(exp.CTE)}


def resolve_tables(
    tree: exp.Expr,
    lookup: Callable[[exp.Table], exp.Expr | None],
    *,
    skip: Iterable[exp.Table] = (),
) -> exp.Expr:
    """Replace table references by what ``lookup`` returns (a Spark view or a subquery).

    A replaced table keeps the name it was referred to by as its alias, so qualified
    columns (``t.x``, even ``"_hw"."t"."x"``) still resolve.
    """
    ctes = cte_names(tree)
    skipped = {id(t) for t in skip}
    renamed: dict[tuple[str, str], str] = {}
    for table in list(tree.find_all(exp.Table)):
        if id(table) in skipped or not isinstance(table.this, exp.Identifier):
            continue
        if not table.args.get("db") and table.name in ctes:
            continue
        replacement = lookup(table)
        if replacement is None:
            continue
        alias = table.alias or table.name
        if table.args.get("db"):
            renamed[(table.text("db"), table.name)] = alias
        replacement.set("alias", exp.TableAlias(this=exp.to_identifier(alias, quoted=True)))
        table.replace(replacement)
    if renamed:
        for col in tree.find_all(exp.Column):
            key = (col.text("db"), col.table)
            if col.args.get("db") and key in renamed:
                col.set("db", None)
                col.set("catalog", None)
                col.set("table", exp.to_identifier(renamed[key], quoted=True))
    return tree


def bind(tree: exp.Expr, params: list[Any] | None) -> exp.Expr:
    """Put parameter values (``?``) into the tree as literals (sqlglot quotes them)."""
    if not params:
        return tree
    values = iter(params)
    for ph in list(tree.find_all(exp.Placeholder)):
        ph.replace(exp.convert(next(values)))
    return tree


# -- untranslatable constructs ---------------------------------------------------------


@dataclass
class Untranslatable:
    construct: str
    line: int | None
    column: int | None
    why: str


_JOIN_KINDS = {"ASOF": "ASOF JOIN", "POSITIONAL": "POSITIONAL JOIN", "ANTI": None, "SEMI": None}


def untranslatable(
    text: str, dialect: str, known_functions: set[str] | None
) -> Untranslatable | None:
    """The first construct of a transform that Spark SQL cannot run, or None.

    ``known_functions`` (lower case, from ``SHOW FUNCTIONS``) makes unknown
    functions an error too; without it only syntax is checked.
    """
    import sqlglot
    from sqlglot.errors import ErrorLevel, UnsupportedError

    tree = sqlglot.parse_one(text, dialect=dialect)
    if dialect != "duckdb":  # the engine reads transforms rendered in DuckDB's dialect
        tree = sqlglot.parse_one(tree.sql(dialect="duckdb"), dialect="duckdb")
    for join in tree.find_all(exp.Join):
        kind = (join.args.get("kind") or "").upper()
        method = (join.args.get("method") or "").upper()
        for word in (kind, method):
            if _JOIN_KINDS.get(word):
                line, col = locate(text, word)
                return Untranslatable(_JOIN_KINDS[word] or word, line, col,
                                      "Spark SQL has no such join")
    if tree.find(exp.Columns) is not None:
        line, col = locate(text, "COLUMNS")
        return Untranslatable("COLUMNS(...)", line, col, "Spark SQL has no COLUMNS expression")
    tree = to_spark(tree, "duckdb")
    try:
        spark_sql = tree.sql(dialect="spark", unsupported_level=ErrorLevel.RAISE)
    except UnsupportedError as err:
        construct = str(err).split("\n")[0]
        return Untranslatable(construct, *locate_unsupported(text, tree), why=construct)
    if known_functions is None:
        return None
    for name in called_functions(spark_sql):
        if name.lower() not in known_functions:
            original = _written_as(tree, name)
            line, col = locate(text, original, call=True)
            return Untranslatable(f"{original}()", line, col,
                                  f"Spark has no function {name.lower()!r}")
    return None


def _written_as(tree: exp.Expr, spark_name: str) -> str:
    """How the function Spark calls ``spark_name`` was written in the DuckDB SQL."""
    for func in tree.find_all(exp.Func):
        try:
            rendered = func.sql(dialect="spark")
        except Exception:
            continue
        if rendered.upper().startswith(spark_name.upper() + "("):
            written = func.sql(dialect="duckdb")
            if "(" in written:
                return written.split("(", 1)[0]
    return spark_name


def called_functions(spark_sql: str) -> list[str]:
    """Names called as functions in Spark SQL text (``name(`` not after AS or a dot)."""
    from sqlglot import TokenType
    from sqlglot.dialects.dialect import Dialect

    tokens = list(Dialect.get_or_raise("spark").tokenize(spark_sql))
    names: list[str] = []
    for i, tok in enumerate(tokens[:-1]):
        if tok.token_type != TokenType.VAR or tokens[i + 1].token_type != TokenType.L_PAREN:
            continue
        if i and tokens[i - 1].token_type in (TokenType.ALIAS, TokenType.DOT):
            continue
        if tok.text not in names:
            names.append(tok.text)
    return names


def locate(text: str, word: str, *, call: bool = False) -> tuple[int | None, int | None]:
    """1-based (line, column) of the first ``word`` (``word(`` with ``call``) in ``text``."""
    pattern = rf"\b{re.escape(word)}\b" + (r"\s*\(" if call else "")
    for lineno, line in enumerate(text.splitlines(), start=1):
        code = line.split("--", 1)[0]
        m = re.search(pattern, code, flags=re.IGNORECASE)
        if m:
            return lineno, m.start() + 1
    return None, None


def locate_unsupported(text: str, tree: exp.Expr) -> tuple[int | None, int | None]:
    """Where the smallest sub-expression that fails to generate starts, if findable."""
    from sqlglot.errors import ErrorLevel, UnsupportedError

    culprit: exp.Expr | None = None
    for node in tree.walk():
        try:
            node.sql(dialect="spark", unsupported_level=ErrorLevel.RAISE)
        except UnsupportedError:
            culprit = node  # walk is top-down: the last failing node is the innermost
        except Exception:
            continue
    if culprit is None:
        return None, None
    for ident in culprit.find_all(exp.Identifier, exp.Literal):
        line = ident.meta.get("line")
        if line is not None:
            return line, None
    word = culprit.key.upper()
    return locate(text, word)
