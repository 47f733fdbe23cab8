"""Property: whatever the project files hold, loading and planning end in success or in
one of Headwater's own errors (which the CLI shows as a message, never a traceback).

Random file trees: headwater.toml, sources, sinks, SQL and Python transforms, custom
checks, with random names (quotes, dots, spaces, unicode), random TOML keys and values
of every type, SQL assembled from random fragments (keywords, references to other
files, annotations, quotes, comments), Python with random signatures and docstrings,
and random bytes. ``load_project`` must raise only ``HeadwaterError`` subclasses, and
when it succeeds ``Project.plan()`` too (for projects whose sources are local files, so
the fuzzer never reaches for the network). Every error must render to text.

CI runs a fixed (derandomized) set of 120 trees; the long form tries new ones::

    HW_FUZZ_EXAMPLES=5000 HW_FUZZ_RANDOM=1 pytest tests/reliability/test_fuzz_loader.py \
        --hypothesis-show-statistics
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from headwater.errors import HeadwaterError
from headwater.load.loader import load_project

EXAMPLES = int(os.environ.get("HW_FUZZ_EXAMPLES", "120"))

# -- names ---------------------------------------------------------------------------------

plain = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
weird = st.text(st.characters(codec="utf-8", exclude_characters="/\\\x00"), min_size=1,
                max_size=12).filter(lambda s: s not in (".", "..") and not s.startswith("."))
names = st.one_of(plain, plain, plain, weird)

# -- TOML ----------------------------------------------------------------------------------

KEYS = ["type", "path", "format", "columns", "cursor", "table", "query", "dsn", "checks",
        "retries", "retry_delay", "window", "window_timezone", "trigger", "poll_interval",
        "delimiter", "header", "from", "mode", "partition_by", "key", "on_schema_change",
        "on_bad_rows", "description", "tags", "url", "records", "headers", "pagination",
        "name", "engine", "dialect", "threads", "timezone", "schedules", "notify", "duckdb",
        "cron", "select", "memory_limit", "node_retries", "openlineage", "host", "port",
        "chunk_rows", "compression", "encoding", "endpoint_url", "unknown_key", "typ"]
TYPES = ["files", "postgres", "mysql", "http", "nosuch", "", "FILES"]

scalars = st.one_of(
    st.text(max_size=20), st.integers(-10**12, 10**12), st.floats(allow_nan=False),
    st.booleans(), st.sampled_from(["data/*.csv", "*.parquet", "${HW_FUZZ_UNSET}", "day",
                                    "0 2 * * *", "02:00-05:00", "UTC", "not_null(id)",
                                    "unique(id) on_fail=quarantine", "x", "../..", "/etc"]),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=3)),
    max_leaves=6)


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v) if not isinstance(v, float) or v == v and abs(v) != float("inf") \
            else "0"
    if isinstance(v, str):  # a TOML basic string: controls, quotes, backslashes escaped
        return '"' + "".join(
            c if c.isprintable() and c not in '"\\' else
            f"\\u{ord(c):04x}" if ord(c) < 0x10000 else f"\\U{ord(c):08x}" for c in v) + '"'
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return "{ " + ", ".join(f'"{k}" = {toml_value(x)}' for k, x in v.items()) + " }"


@st.composite
def toml_text(draw: Any, kind: str) -> str | bytes:
    form = draw(st.sampled_from(["keys", "keys", "keys", "junk", "bytes"]))
    if form == "bytes":
        return draw(st.binary(max_size=60))
    if form == "junk":
        return draw(st.text(max_size=80))
    lines = []
    if kind == "project" and draw(st.booleans()):
        lines.append(f"name = {toml_value(draw(st.text(max_size=8)))}")
    elif kind in ("source", "sink"):
        lines.append(f"type = {toml_value(draw(st.sampled_from(TYPES)))}")
        if kind == "sink":
            lines.append(f"from = {toml_value(draw(names))}")
    for key, value in draw(st.dictionaries(st.sampled_from(KEYS), values, max_size=4)).items():
        lines.append(f"{key} = {toml_value(value)}")
    if kind == "project" and draw(st.booleans()):
        lines.append("[[schedules]]")
        cron = draw(st.sampled_from(["0 2 * * *", "61 * * * *", "", "@daily", "x"]))
        lines.append(f"cron = {toml_value(cron)}")
    return "\n".join(lines) + "\n"


# -- SQL and Python ------------------------------------------------------------------------

ANNOTATIONS = ["@incremental: by day day from ts", "@incremental: append by id",
               "@incremental: merge id by ts", "@incremental: by x week", "@incremental:",
               "@lookback: 2", "@lookback: -1 day", "@materialized: view",
               "@materialized: tabel", "@check: not_null(id)", "@check: unique(a, b)",
               "@check: accepted_values(s, ['a', 'b'])", "@check: relationships(id, {ref}.id)",
               "@check: row_count(min=1)", "@check: range(x, 0, 100)", "@check: nope(",
               "@check: expression(a > 0) severity=warn", "@tags: a, b", "@owner: me",
               "@severity: warn", "@unknown: 1", "@"]
SQL_BITS = ["SELECT", "*", "id", ",", "FROM", "{ref}", "JOIN", "{ref}", "USING (id)", "WHERE",
            "id > 0", "GROUP BY", "ALL", "(", ")", "'", '"', "--", ";", "WITH x AS (SELECT 1)",
            "UNION ALL", "DROP TABLE", "{ref}", "INSERT INTO", "read_csv('x.csv')", "1",
            "CAST(id AS DATE)", "QUALIFY", "row_number() OVER ()", "/*", "*/", "\n", "EXCLUDE"]


@st.composite
def sql_text(draw: Any, refs: list[str]) -> str | bytes:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=60))
    ref = lambda: draw(st.sampled_from(refs or ["t"]))  # noqa: E731
    head = [f"-- {draw(st.sampled_from(ANNOTATIONS)).format(ref=ref())}"
            for _ in range(draw(st.integers(0, 3)))]
    if draw(st.booleans()):
        body = f"SELECT * FROM {ref()}"
        if draw(st.booleans()):
            body += f" JOIN {ref()} USING (id)"
    else:
        body = " ".join(draw(st.lists(st.sampled_from(SQL_BITS), max_size=12))).replace(
            "{ref}", ref())
    return "\n".join([*head, body]) + "\n"


@st.composite
def py_text(draw: Any, stem: str, refs: list[str]) -> str | bytes:
    form = draw(st.integers(0, 9))
    if form == 0:
        return draw(st.binary(max_size=60))
    if form == 1:
        return draw(st.text(max_size=80))
    params = draw(st.lists(st.sampled_from([*refs, "x", "self", "*args", "**kw", "a=1"]),
                           max_size=3))
    fname = stem if draw(st.integers(0, 4)) else draw(plain)
    doc = draw(st.sampled_from(['"""Doc."""', '"""@check: not_null(id)"""', '"""@check: ("""',
                                "", '"""unterminated']))
    lineage = draw(st.sampled_from(["", "LINEAGE = {'a': ['x.y']}", "LINEAGE = 5",
                                    "LINEAGE = {1: 2}"]))
    return f"{doc}\nimport pyarrow as pa\n{lineage}\n\n\ndef {fname}({', '.join(params)}):\n" \
           "    return None\n"


# -- whole trees ---------------------------------------------------------------------------

VALID_ANNOTATIONS = ["@materialized: view", "@check: not_null(id)", "@check: unique(id)",
                     "@check: row_count(min=1)", "@tags: a, b", "@owner: me",
                     "@incremental: by id day", "@check: range(id, 0, 10)"]


def broken(draw: Any) -> bool:
    """Most files are fine, a few are not: the loader must get past the first file often."""
    return draw(st.integers(0, 99)) < 10


@st.composite
def trees(draw: Any) -> dict[str, str | bytes]:
    files: dict[str, str | bytes] = {}
    if broken(draw):
        files["headwater.toml"] = draw(toml_text("project"))
    else:
        extra = draw(st.lists(st.sampled_from(
            ["threads = 2", 'timezone = "Europe/Berlin"', 'dialect = "duckdb"',
             'description = "x"', "retries = 1",
             '[[schedules]]\ncron = "0 2 * * *"\nselect = "tag:a"']), max_size=2, unique=True))
        files["headwater.toml"] = "\n".join(['name = "fuzz"', *sorted(extra,
                                             key=lambda e: e.startswith("["))]) + "\n"
    sources = draw(st.lists(names, min_size=1, max_size=3, unique=True))
    transforms = draw(st.lists(names, max_size=5, unique=True))
    for s in sources:
        if broken(draw):
            files[f"sources/{s}.toml"] = draw(toml_text("source"))
            continue
        extra = draw(st.lists(st.sampled_from(
            ['description = "d"', 'tags = ["a"]', 'on_bad_rows = "quarantine"',
             'checks = ["not_null(id)"]', 'on_schema_change = "fail"', "retries = 0",
             'columns = { id = "BIGINT" }', 'window = "02:00-05:00"', 'delimiter = ","']),
            max_size=2, unique=True))
        files[f"sources/{s}.toml"] = "\n".join(
            ['type = "files"', f"path = {toml_value(f'data/{s}/*.csv')}", *extra]) + "\n"
        files[f"data/{s}/a.csv"] = draw(st.sampled_from(
            ["id,v\n1,2\n2,3\n", "id,v\n1,2\n", "id\n1\n", "id,v\n1,x\n"]))
    seen = list(sources)
    for t in transforms:
        python = draw(st.integers(0, 3)) == 0 and t.isidentifier()
        if broken(draw):
            refs = [*seen, *transforms, "nosuch"]  # may close a cycle or miss
            content = draw(py_text(t, refs)) if python else draw(sql_text(refs))
        elif python:
            ups = draw(st.lists(st.sampled_from(seen), min_size=1, max_size=2, unique=True))
            content = (f'"""{t}."""\nimport pyarrow as pa\n\n\ndef {t}('
                       + ", ".join(f"{u}: pa.Table" for u in ups)
                       + f") -> pa.Table:\n    return {ups[0]}\n")
        else:
            up = draw(st.sampled_from(seen))
            notes = draw(st.lists(st.sampled_from(VALID_ANNOTATIONS), max_size=2, unique=True))
            q = '"' + up.replace('"', '""') + '"'
            content = "".join(f"-- {n}\n" for n in notes) + f"SELECT * FROM {q}\n"
        files[f"transforms/{t}.{'py' if python else 'sql'}"] = content
        seen.append(t)
    for k in draw(st.lists(names, max_size=2, unique=True)):
        if broken(draw):
            files[f"sinks/{k}.toml"] = draw(toml_text("sink"))
        else:
            frm = toml_value(draw(st.sampled_from(seen)))
            files[f"sinks/{k}.toml"] = (f'type = "files"\nfrom = {frm}\n'
                                        f'path = "out/{draw(plain)}.parquet"\n')
    if draw(st.integers(0, 3)) == 0:
        files[f"checks/{draw(plain)}.sql"] = draw(sql_text(seen))
    return files


def write(root: Path, files: dict[str, str | bytes]) -> bool:
    """Write the tree; False when the OS refuses a name (not Headwater's business)."""
    for rel, content in files.items():
        path = root / rel
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8", errors="surrogateescape")
        except (OSError, UnicodeEncodeError, ValueError):
            return False
    return True


def local_only(files: dict[str, str | bytes]) -> bool:
    """Whether planning stays on this machine (no database, API or S3 source)."""
    for rel, content in files.items():
        if rel.startswith("sources/"):
            text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
            if any(t in text for t in ('"postgres"', '"mysql"', '"http"', "s3:", "://")):
                return False
    return True


@settings(max_examples=EXAMPLES, deadline=None, derandomize=not os.environ.get("HW_FUZZ_RANDOM"),
          suppress_health_check=list(HealthCheck))
@given(trees())
def test_loader_and_planner_raise_only_headwater_errors(files: dict[str, str | bytes]) -> None:
    work = Path(tempfile.mkdtemp(prefix="hw-fuzz-"))
    try:
        root = work / "p"
        root.mkdir()
        if not write(root, files):
            return
        try:
            load_project(root)
        except HeadwaterError as exc:
            assert isinstance(exc.render(), str) and exc.render()
            event(f"load: {type(exc).__name__}")
            return
        event("load: ok")
        if local_only(files):
            from headwater import Project

            try:
                Project(root).plan()
                event("plan: ok")
            except HeadwaterError as exc:
                assert isinstance(exc.render(), str) and exc.render()
                event(f"plan: {type(exc).__name__}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
