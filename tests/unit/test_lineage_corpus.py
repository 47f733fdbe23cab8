"""The SQL column-lineage corpus: one pattern per file in tests/fixtures/lineage/.

Each file holds the upstream schemas, one SELECT and the expected lineage::

    -- schema: orders(id, amount), customers(id, name)    (raw(?) = columns unknown)
    -- output: id, n                                      (optional: built column names)
    SELECT ...
    -- expect: total <- orders.amount (aggregation), ~r.v (identity)  # description
    -- reads: orders.customer_id group_by                 (optional: row-level reads)
    -- reads_all: raw                                     (optional: tables read as a whole)

``~`` marks a coarse (inexact) edge; an ``expect`` line with nothing after ``<-``
is a column made of no upstream column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from headwater.lineage.sql import sql_lineage

CORPUS = Path(__file__).parent.parent / "fixtures" / "lineage"
_DIRECTIVE = re.compile(r"^--\s*(schema|output|expect|reads|reads_all):\s*(.*)$")


@dataclass
class Case:
    sql: str
    schemas: dict[str, list[str] | None] = field(default_factory=dict)
    output: list[str] | None = None
    expect: list[tuple[str, list[tuple[str, str, str, bool]], str]] = field(default_factory=list)
    reads: list[tuple[str, str, str]] | None = None
    reads_all: list[str] = field(default_factory=list)


def load(path: Path) -> Case:
    case = Case(sql="")
    sql_lines = []
    for line in path.read_text().splitlines():
        m = _DIRECTIVE.match(line.strip())
        if not m:
            sql_lines.append(line)
            continue
        key, value = m.groups()
        if key == "schema":
            for table, cols in re.findall(r"(\w+)\(([^)]*)\)", value):
                names = [c.strip() for c in cols.split(",") if c.strip()]
                case.schemas[table] = None if names == ["?"] else names
        elif key == "output":
            case.output = [c.strip() for c in value.split(",")]
        elif key == "expect":
            body, _, desc = value.partition("#")
            name, _, inputs = body.partition("<-")
            edges = []
            for item in filter(None, (i.strip() for i in inputs.split(","))):
                em = re.fullmatch(r"(~?)(\w+)\.(\S+) \((\w+)\)", item)
                assert em, f"{path.name}: cannot read expected edge {item!r}"
                tilde, table, column, transform = em.groups()
                edges.append((table, column, transform, not tilde))
            case.expect.append((name.strip(), edges, desc.strip()))
        elif key == "reads":
            case.reads = []
            for item in filter(None, (i.strip() for i in value.split(","))):
                ref, how = item.split()
                table, column = ref.split(".", 1)
                case.reads.append((table, column, how))
        elif key == "reads_all":
            case.reads_all = [t.strip() for t in value.split(",") if t.strip()]
    case.sql = "\n".join(sql_lines).strip()
    return case


CASES = sorted(CORPUS.glob("*.sql"))


def test_corpus_is_big_enough() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_column_lineage(path: Path) -> None:
    case = load(path)
    result = sql_lineage(case.sql, "duckdb", case.schemas, case.output)
    got = [(c.name, sorted(c.inputs)) for c in result.columns]
    want = [(name, sorted(edges)) for name, edges, _ in case.expect]
    assert got == want
    for (name, _, desc), col in zip(case.expect, result.columns, strict=True):
        if desc:
            assert col.description == desc, name
    if case.reads is not None:
        assert sorted(result.reads) == sorted(case.reads)
    assert result.reads_all == sorted(case.reads_all)
    assert not result.problems
