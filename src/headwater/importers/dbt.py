"""``headwater import dbt``: a dbt project in, a Headwater project out.

- ``{{ ref('x') }}`` and ``{{ ref('pkg', 'x') }}`` become the bare name ``x``
  (the model's alias when it has one);
- ``{{ source('s', 't') }}`` becomes the source ``t`` (``s__t`` when ``t`` is not
  unique among sources, models and seeds), one ``sources/<name>.toml`` each: a
  files source where dbt-duckdb's ``external_location`` names local files, a
  placeholder otherwise;
- seeds are copied to ``data/seeds/`` and read by a files source;
- ``config(...)``, folder configs from dbt_project.yml and property files become
  ``@materialized``, ``@tags``, ``@owner`` and ``@incremental`` annotations;
- descriptions become the leading comment, column descriptions trailing comments
  on their SELECT lines; generic tests become ``@check`` lines;
- simple Jinja is rendered for a full build (``is_incremental()`` is false).

What cannot be converted is listed, with file and line, in the report
(``IMPORT_REPORT.md``); such models are copied unchanged to ``needs_attention/``
and, with whatever depends on them, left out so that the rest runs.
"""

from __future__ import annotations

import glob as globmod
import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from headwater.importers import emit
from headwater.importers.dbt_project import (
    DbtImportError,
    DbtProject,
    Resource,
    SourceTable,
    load_dbt_project,
    merge_config,
)
from headwater.importers.dbt_tests import TestSpec, parse_tests, to_check
from headwater.importers.jinja_render import (
    THIS_PLACEHOLDER,
    Problem,
    Renderer,
    Unresolvable,
)
from headwater.importers.report import ImportReport, Severity

# Switches for annotations the Headwater loader may not know yet (see the module docs).
EMIT_CHECKS = True
EMIT_INCREMENTAL = True

REPORT_FILE = "IMPORT_REPORT.md"
ATTENTION_DIR = "needs_attention"
_FILE_FORMATS = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".ndjson": "ndjson",
                 ".jsonl": "ndjson", ".json": "ndjson"}
_MATERIALIZED = {"table": "table", "view": "view", "incremental": "table", "ephemeral": "view"}
_INCREMENTAL_EXTRAS = ("on_schema_change", "incremental_predicates", "partition_by",
                       "cluster_by", "full_refresh")


@dataclass
class _Model:
    res: Resource
    name: str  # Headwater name
    text: str | None = None  # the Headwater file, when converted
    refs: list[str] = field(default_factory=list)
    checks: list[tuple[str, str | None]] = field(default_factory=list)  # (check, relation)
    tests: int = 0
    skipped: str | None = None


def import_dbt(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    force: bool = False,
    emit_checks: bool | None = None,
    emit_incremental: bool | None = None,
    dialect: str = "duckdb",
    vars: dict[str, Any] | None = None,
) -> ImportReport:
    """Convert the dbt project at ``path`` into a Headwater project in ``out``.

    Returns the report (also written to ``out/IMPORT_REPORT.md``). Raises
    :class:`DbtImportError` only when nothing can be converted at all.
    """
    project = load_dbt_project(Path(path), vars)
    importer = _Importer(
        project,
        Path(out).resolve(),
        emit_checks=EMIT_CHECKS if emit_checks is None else emit_checks,
        emit_incremental=EMIT_INCREMENTAL if emit_incremental is None else emit_incremental,
        dialect=dialect,
    )
    importer.prepare(force)
    return importer.run()


class _Importer:
    def __init__(
        self, project: DbtProject, out: Path, *, emit_checks: bool, emit_incremental: bool,
        dialect: str,
    ) -> None:
        self.p = project
        self.out = out
        self.emit_checks = emit_checks
        self.emit_incremental = emit_incremental
        self.dialect = dialect
        self.report = ImportReport("dbt", str(project.root), str(out))
        self.model_names: dict[str, str] = {}
        self.disabled: set[str] = set()
        self.seed_names: dict[str, str] = {}
        self.source_names: dict[tuple[str, str], str] = {}
        self.renderer = Renderer(
            project_vars=project.vars,
            resolve_ref=self.resolve_ref,
            resolve_source=self.resolve_source,
            project_macros=project.macros,
            packages=[p for p, _, _ in project.packages],
            adapter_type=dialect,
        )

    # -- setup --------------------------------------------------------------

    def prepare(self, force: bool) -> None:
        if self.out == self.p.root:
            raise DbtImportError(
                "the output folder is the dbt project itself",
                hint="pass --out DIR with a new folder",
            )
        if self.out.exists() and any(self.out.iterdir()) and not force:
            raise DbtImportError(
                f"the output folder {self.out} is not empty",
                hint="pass a new folder, or --force to write into it (files the import "
                "writes are replaced)",
            )
        self.out.mkdir(parents=True, exist_ok=True)

    def _names(self) -> None:
        for res in self.p.models.values():
            cfg = merge_config(
                self.p.model_config(res), self.renderer.static_config(res.text())
                if res.language == "sql" else {}
            )
            if cfg.get("enabled") is False:
                self.disabled.add(res.name)
            self.model_names[res.name] = str(cfg.get("alias") or res.name)
        for seed in self.p.seeds.values():
            cfg = self.p.seed_config(seed)
            if cfg.get("enabled") is not False:
                self.seed_names[seed.name] = str(cfg.get("alias") or seed.name)
        taken = set(self.model_names.values()) | set(self.seed_names.values())
        counts = Counter(t.name for t in self.p.sources)
        for t in self.p.sources:
            unique = counts[t.name] == 1 and t.name not in taken
            self.source_names[(t.source, t.name)] = t.name if unique else f"{t.source}__{t.name}"

    # -- resolvers handed to the Jinja renderer ------------------------------

    def resolve_ref(self, *args: Any, **kwargs: Any) -> str:
        if not args or len(args) > 2:
            raise Unresolvable(f"ref() takes a name, or a package and a name; got {args!r}")
        name = str(args[-1])
        package = str(args[0]) if len(args) == 2 else None
        if package and package != self.p.name:
            raise Unresolvable(f"ref to {package}.{name}: models of package {package!r} are "
                               "not converted")
        if name in self.disabled:
            raise Unresolvable(f"ref to {name!r}, which is disabled")
        if name in self.model_names:
            return emit.sql_identifier(self.model_names[name])
        if name in self.seed_names:
            return emit.sql_identifier(self.seed_names[name])
        if name in self.p.snapshots:
            raise Unresolvable(f"ref to snapshot {name!r}: snapshots are not converted")
        raise Unresolvable(f"ref to {name!r}, which is not a model or seed of this project")

    def resolve_source(self, source: str, table: str) -> str:
        hw = self.source_names.get((str(source), str(table)))
        if hw is None:
            raise Unresolvable(f"source({source!r}, {table!r}) is not declared in a "
                               "property file")
        return emit.sql_identifier(hw)

    def relation(self, text: str) -> str:
        """``ref('x')`` or ``source('s', 't')`` text (a relationships test's ``to``)."""
        rendered = self.renderer.render("{{ " + text + " }}", "relation")
        if rendered.sql is None:
            raise ValueError("; ".join(p.reason for p in rendered.problems))
        return rendered.sql.strip()

    # -- the conversion ------------------------------------------------------

    def run(self) -> ImportReport:
        self._names()
        self._project_level()
        for seed in self.p.seeds.values():
            self._seed(seed)
        for table in self.p.sources:
            self._source(table)
        models = [self._model(res) for res in self.p.models.values()
                  if res.name not in self.disabled]
        for res in self.p.models.values():
            if res.name in self.disabled:
                self.report.add("info", "models", res.name, "disabled in dbt: not converted",
                                res.rel)
        self._propagate(models)
        self._write_models(models)
        self._singular_tests(models)
        self._write_project_files()
        return self.report

    def _project_level(self) -> None:
        r, p = self.report, self.p
        for namespace, file, line in p.packages:
            r.add("attention", "project", namespace, "package not converted: its models and "
                  "macros are not available; models using them are listed below", file, line)
        for hook in ("on-run-start", "on-run-end"):
            if p.config.get(hook):
                r.add("attention", "project", hook, "hooks are not converted",
                      "dbt_project.yml", None)
        for name, snap in p.snapshots.items():
            r.add("skipped", "models", name, "snapshots are not converted (Headwater has no "
                  "slowly-changing-dimension builder)", snap.rel)
        for kind, name, file, line in p.orphan_props:
            r.add("info", "project", name, f"properties for {kind[:-1]} {name!r}, which does "
                  "not exist", file, line)
        r.notes += [
            "`ref('x')` and `ref('package', 'x')` became the bare table name `x` (the model's "
            "alias where it has one).",
            "`source('s', 't')` became the source `t`, or `s__t` where `t` is also the name "
            "of another source, model or seed; each is a file `sources/<name>.toml`.",
            "Seeds were copied to `data/seeds/` and are read by files sources of the same name.",
            "Jinja was rendered for a full build: `is_incremental()` is false, `var()` takes "
            "dbt_project.yml's vars, `target` is 'dev', `env_var()` its default.",
            "An incremental model's `{% if is_incremental() %}` filter was dropped: its "
            "`@incremental` annotation (from `unique_key` and the column compared with "
            "`{{ this }}`) tells Headwater how to load it incrementally.",
        ]
        if p.vars:
            r.notes.append("vars used: " + ", ".join(f"`{k}`" for k in sorted(p.vars)))

    # -- seeds and sources -----------------------------------------------------

    def _seed(self, seed: Resource) -> None:
        cfg = self.p.seed_config(seed)
        if cfg.get("enabled") is False:
            self.report.add("info", "seeds", seed.name, "disabled in dbt: not converted",
                            seed.rel)
            return
        name = self.seed_names[seed.name]
        target = f"data/seeds/{seed.path.name}"
        self._copy(seed.path, target)
        columns = {str(k): str(v).upper() for k, v in (cfg.get("column_types") or {}).items()}
        items: list[tuple[str, Any]] = [
            ("type", "files"), ("path", target), ("format", "csv"),
            ("description", emit.one_line(self._describe(seed.props))),
            ("tags", cfg.get("tags") or []), ("delimiter", cfg.get("delimiter")),
            ("columns", columns),
            ("checks", self._source_checks("seeds", name, seed.props, seed.props_file)),
        ]
        comments = [f"dbt seed {seed.rel}, converted by `headwater import dbt`."]
        comments += self._column_comments(seed.props)
        self._write(f"sources/{name}.toml", emit.toml_document(items, comments), seed.rel)
        self.report.count("seeds", converted=True)

    def _source(self, t: SourceTable) -> None:
        name = self.source_names[(t.source, t.name)]
        meta = _meta(t.source_props, t.props)
        identifier = str(t.props.get("identifier") or t.name)
        schema = str(t.props.get("schema") or t.source_props.get("schema") or t.source)
        database = t.props.get("database") or t.source_props.get("database")
        description = emit.one_line(self._describe(t.props) or self._describe(t.source_props))
        comments = [f"dbt source {t.source}.{t.name} ({t.file}), converted by "
                    "`headwater import dbt`."]
        comments += self._column_comments(t.props)
        items: list[tuple[str, Any]] | None = None
        location = meta.get("external_location")
        if location:
            try:
                path = str(location).format_map({
                    "name": t.name, "identifier": identifier, "schema": schema,
                    "database": database or "", "source_name": t.source,
                })
            except (KeyError, IndexError, ValueError) as exc:
                self.report.add("attention", "sources", name, f"external_location {location!r}"
                                f" cannot be expanded ({exc})", t.file, t.line)
            else:
                items = self._files_source(name, path, t)
        if items is None:
            table = f"{schema}.{identifier}"
            full = ".".join(str(x) for x in (database, schema, identifier) if x)
            comments += [
                "", f"PLACEHOLDER: dbt read this from the warehouse table {full}.",
                "Point it at where the data lives: set the connection (or DATABASE_URL), or",
                "replace it with another connector (type = \"files\" with a path, ...).",
            ]
            items = [("type", "postgres"), ("dsn", "${DATABASE_URL}"), ("table", table),
                     ("database", database)]
            if not location:
                self.report.add("attention", "sources", name, f"placeholder: dbt reads the "
                                f"table {full}; say where Headwater should read it from",
                                t.file, t.line)
        items += [("description", description), ("tags", list(t.props.get("tags") or [])),
                  ("checks", self._source_checks("sources", name, t.props, t.file))]
        self._write(f"sources/{name}.toml", emit.toml_document(items, comments), t.file)
        self.report.count("sources", converted=items[0] == ("type", "files"))
        if t.props.get("freshness") or t.source_props.get("freshness"):
            self.report.add("info", "sources", name, "freshness checks are not converted",
                            t.file, t.line)

    def _files_source(self, name: str, location: str, t: SourceTable) -> list[tuple[str, Any]]:
        r = self.report
        m = re.match(r"^\s*(\w+)\s*\(\s*'([^']+)'", location)
        if m:
            r.add("attention", "sources", name, f"external_location calls {m.group(1)}(): "
                  "only its path was kept, its options were dropped", t.file, t.line)
            location = m.group(2)
        elif "(" in location:
            r.add("attention", "sources", name, f"external_location {location!r} is not a "
                  "path", t.file, t.line)
            return [("type", "files"), ("path", location)]
        if re.match(r"^[a-z][a-z0-9+.-]*://", location):
            r.add("attention", "sources", name, f"external_location {location} is remote: "
                  "the files source reads local files", t.file, t.line)
        fmt = _FILE_FORMATS.get(Path(location.replace("*", "x")).suffix.lower())
        if fmt is None:
            r.add("attention", "sources", name, f"cannot tell the format of {location!r}: "
                  "set `format`", t.file, t.line)
        full = location if os.path.isabs(location) else str(self.p.root / location)
        matches = sorted(Path(p) for p in globmod.glob(full, recursive=True)
                         if os.path.isfile(p))
        inside = [p for p in matches if p.resolve().is_relative_to(self.p.root)]
        if matches and len(inside) == len(matches) and not os.path.isabs(location):
            for p in inside:
                self._copy(p, p.resolve().relative_to(self.p.root).as_posix())
            path = location
        elif matches:
            path = os.path.abspath(full)
            r.add("attention", "sources", name, f"reads {path}, outside the dbt project: "
                  "kept as an absolute path", t.file, t.line)
        elif not re.match(r"^[a-z][a-z0-9+.-]*://", location):
            path = location
            r.add("attention", "sources", name, f"no file matches {location!r}: put the data "
                  "there (relative to the Headwater project)", t.file, t.line)
        else:
            path = location
        return [("type", "files"), ("path", path), ("format", fmt)]

    def _source_checks(self, kind: str, name: str, props: dict[str, Any],
                       file: str | None) -> list[str]:
        """Tests of a seed or source as the source's ``checks = [...]``, where supported."""
        out: list[str] = []
        supported = _source_checks_supported()
        for spec in _specs(props):
            done = to_check(spec, self.relation) if supported else None
            ok = done is not None and done.check is not None and self.emit_checks
            self.report.count("tests", converted=ok)
            if done is None:
                self.report.add("skipped", "tests", name, f"{spec.label} on a {kind[:-1]}: "
                                "this Headwater version has no source checks (add it to a "
                                f"transform reading {name})", file, spec.line)
            elif done.check is None:
                self.report.add("skipped", "tests", name, f"{spec.label}: {done.reason}",
                                file, spec.line)
            elif not self.emit_checks:
                self.report.add("info", "tests", name, f"{spec.label} not written: checks "
                                "were switched off", file, spec.line)
            else:
                out.append(done.check)
        return out

    # -- models ------------------------------------------------------------

    def _model(self, res: Resource) -> _Model:
        model = _Model(res, self.model_names[res.name], tests=len(_specs(res.props)))
        r = self.report
        if res.language == "python":
            model.skipped = "dbt Python model: rewrite it as transforms/NAME.py"
            r.add("skipped", "models", model.name, model.skipped, res.rel)
            return model
        text = res.text()
        base = merge_config(self.p.model_config(res), {})
        rendered = self.renderer.render(text, model.name, base_config=base)
        for problem in rendered.problems:
            self._problem(model, problem)
        if rendered.sql is None:
            model.skipped = "; ".join(p.reason for p in rendered.problems if p.blocking)
            return model
        model.refs = rendered.refs
        cfg = merge_config(base, rendered.config)
        comment, body = emit.split_leading_comment(emit.tidy_sql(rendered.sql))
        error = self._check_select(body)
        if error:
            model.skipped = error
            r.add("skipped", "models", model.name, error, res.rel)
            return model
        annotations = self._annotations(model, cfg, text, rendered.uses_is_incremental)
        annotations += self._checks(model)
        columns = {str(c.get("name")): self._describe(c)
                   for c in res.props.get("columns") or [] if isinstance(c, dict)}
        body, left = emit.annotate_columns(body, columns, self.dialect)
        description = self._describe(res.props)
        original = "\n".join(comment).strip()
        if original and original != description.strip():
            description = f"{description}\n\n{original}" if description else original
        if left:
            described = "\n".join(f"  {k}: {emit.one_line(v)}" for k, v in left.items())
            description = (description + "\n\n" if description else "") + "Columns:\n" + described
        model.text = (emit.header(description, annotations) + "\n" + body).lstrip("\n") + "\n"
        return model

    def _problem(self, model: _Model, problem: Problem) -> None:
        severity: Severity = "skipped" if problem.blocking else "attention"
        self.report.add(severity, "models", model.name, problem.reason, model.res.rel,
                        problem.line)

    def _check_select(self, body: str) -> str | None:
        import sqlglot
        from sqlglot import exp

        try:
            statements = [s for s in sqlglot.parse(body, dialect=self.dialect) if s is not None]
        except Exception as exc:
            first = str(exc).split("\n")[0]
            return f"the rendered SQL does not parse as {self.dialect}: {first}"
        if len(statements) != 1 or not isinstance(statements[0], exp.Query):
            return "the rendered SQL is not one SELECT statement"
        return None

    def _annotations(self, model: _Model, cfg: dict[str, Any], text: str,
                     uses_incremental: bool) -> list[tuple[str, str]]:
        r, rel = self.report, model.res.rel
        out: list[tuple[str, str]] = []
        if cfg.get("tags"):
            out.append(("tags", ", ".join(cfg["tags"])))
        materialized = str(cfg.get("materialized") or "view")
        hw = _MATERIALIZED.get(materialized)
        if hw is None:
            hw = "table"
            r.add("attention", "models", model.name, f"materialized={materialized!r} has no "
                  "Headwater equivalent: built as a table", rel)
        elif materialized == "ephemeral":
            r.add("info", "models", model.name, "ephemeral model: became a view", rel)
        out.append(("materialized", hw))
        owner = (cfg.get("meta") or {}).get("owner")
        if owner:
            out.append(("owner", emit.one_line(str(owner))))
        if materialized == "incremental":
            spec = self._incremental(model, cfg, text, uses_incremental)
            if spec is None:
                pass
            elif self.emit_incremental:
                out.append(("incremental", spec))
            else:
                r.add("info", "models", model.name, f"incremental ({spec}) not written: "
                      "annotations for incremental loading were switched off", rel)
            extras = [k for k in _INCREMENTAL_EXTRAS if cfg.get(k) not in (None, "")]
            if extras:
                r.add("info", "models", model.name, "incremental settings not converted: "
                      + ", ".join(extras), rel)
        for hook in ("pre_hook", "post_hook"):
            if cfg.get(hook):
                r.add("attention", "models", model.name, f"{hook.replace('_', '-')} not "
                      "converted", rel)
        return out

    def _incremental(self, model: _Model, cfg: dict[str, Any], text: str,
                     uses_incremental: bool) -> str | None:
        key = cfg.get("unique_key")
        keys = ", ".join(map(str, key)) if isinstance(key, list | tuple) else key
        strategy = str(cfg.get("incremental_strategy") or "")
        column = self._filter_column(text, model.name) if uses_incremental else None
        if column is None:
            why = ("no is_incremental() filter" if not uses_incremental
                   else "cannot tell the column of its is_incremental() filter")
            self.report.add("attention", "models", model.name, f"incremental model: {why}; "
                            "built as a full table (add `-- @incremental: append by COLUMN` "
                            "or `merge KEY by COLUMN`)", model.res.rel)
            return None
        if keys and strategy != "append":
            return f"merge {keys} by {column}"
        return f"append by {column}"

    def _filter_column(self, text: str, name: str) -> str | None:
        """The column compared with ``{{ this }}`` in the is_incremental() branch."""
        import sqlglot
        from sqlglot import exp

        rendered = self.renderer.render(text, name, incremental=True, this=THIS_PLACEHOLDER)
        if rendered.sql is None:
            return None
        try:
            tree = sqlglot.parse_one(rendered.sql, dialect=self.dialect)
        except Exception:
            return None
        for cmp in tree.find_all(exp.GT, exp.GTE, exp.LT, exp.LTE):
            for side, other in ((cmp.this, cmp.expression), (cmp.expression, cmp.this)):
                if isinstance(side, exp.Column) and any(
                    t.name == THIS_PLACEHOLDER for t in other.find_all(exp.Table)
                ):
                    return str(side.name)
        return None

    def _checks(self, model: _Model) -> list[tuple[str, str]]:
        out = []
        for spec in _specs(model.res.props):
            done = to_check(spec, self.relation)
            file = model.res.props_file
            if done.check is None:
                self.report.add("skipped", "tests", model.name, f"{spec.label}: {done.reason}",
                                file, spec.line)
                continue
            if not self.emit_checks:
                self.report.add("info", "tests", model.name, f"{spec.label} not written: check "
                                "annotations were switched off", file, spec.line)
                continue
            for note in done.notes:
                self.report.add("attention", "tests", model.name, f"{spec.label}: {note}",
                                file, spec.line)
            model.checks.append((done.check, done.relation))
            out.append(("check", done.check))
        return out

    def _propagate(self, models: list[_Model]) -> None:
        """Leave out what depends on a model that was left out, until nothing changes."""
        available = set(self.seed_names.values()) | set(self.source_names.values())
        changed = True
        while changed:
            changed = False
            ok = available | {m.name for m in models if m.skipped is None}
            for m in models:
                if m.skipped is not None:
                    continue
                missing = [ref for ref in m.refs if ref.strip('"') not in ok]
                if missing:
                    m.skipped = f"depends on {', '.join(missing)}, which was not converted"
                    self.report.add("skipped", "models", m.name, m.skipped, m.res.rel)
                    changed = True
        ok = available | {m.name for m in models if m.skipped is None}
        for m in models:
            if m.skipped is not None or m.text is None:
                continue
            for check, relation in list(m.checks):
                if relation and relation.strip('"') not in ok:
                    m.text = m.text.replace(f"-- @check: {check}\n", "")
                    self.report.add("skipped", "tests", m.name, f"{check}: {relation} was not "
                                    "converted", m.res.props_file)
                    m.checks = [c for c in m.checks if c != (check, relation)]

    def _write_models(self, models: list[_Model]) -> None:
        for m in models:
            converted = m.skipped is None and m.text is not None
            self.report.count("models", converted=converted)
            self.report.found["tests"] += m.tests
            if converted:
                assert m.text is not None
                self.report.converted["tests"] += len(m.checks)
                self._write(f"transforms/{m.name}.sql", m.text, m.res.rel)
            else:
                self._copy(m.res.path, f"{ATTENTION_DIR}/{m.res.rel}", m.res.rel)
                if m.checks or m.tests:
                    self.report.add("info", "tests", m.name, f"{m.tests} test(s) of a model "
                                    "that was not converted", m.res.props_file)

    def _singular_tests(self, models: list[_Model]) -> None:
        """Singular tests (SELECTs of failing rows) become custom checks, ``checks/NAME.sql``."""
        ok = ({m.name for m in models if m.skipped is None} | set(self.seed_names.values())
              | set(self.source_names.values()))
        supported = _custom_checks_supported()
        for rel in self.p.singular_tests:
            path = self.p.root / rel
            rendered = self.renderer.render(path.read_text(encoding="utf-8"), path.stem)
            why = self._singular_problem(rendered, ok, supported)
            converted = why is None and rendered.sql is not None
            self.report.count("tests", converted=converted)
            if rendered.sql is None:
                self._copy(path, f"{ATTENTION_DIR}/{rel}", rel)
                for problem in rendered.problems:
                    self.report.add("skipped" if problem.blocking else "attention", "tests",
                                    path.stem, f"singular test: {problem.reason}", rel,
                                    problem.line)
                continue
            comment, body = emit.split_leading_comment(emit.tidy_sql(rendered.sql))
            description = "\n".join(comment).strip() or f"Converted from the dbt test {rel}."
            severity = str(rendered.config.get("severity", "error")).lower()
            annotations = [("severity", "warn")] if severity == "warn" else []
            text = emit.header(description, annotations) + "\n" + body + "\n"
            if converted:
                self._write(f"checks/{path.stem}.sql", text, rel)
                continue
            self._write(f"{ATTENTION_DIR}/{rel}", text, rel)
            self.report.add("skipped", "tests", path.stem, f"singular test, rendered to plain "
                            f"SQL in {ATTENTION_DIR}/{rel}: {why}", rel)

    def _singular_problem(self, rendered: Any, ok: set[str], supported: bool) -> str | None:
        if rendered.sql is None:
            return "cannot be rendered"
        if not supported:
            return "this Headwater version has no custom checks (checks/NAME.sql)"
        if not self.emit_checks:
            return "checks were switched off"
        missing = [r for r in rendered.refs if r.strip('"') not in ok]
        if missing:
            return f"reads {', '.join(missing)}, which was not converted"
        if not rendered.refs:
            return "reads no table of the project"
        return self._check_select(emit.tidy_sql(rendered.sql))

    def _write_project_files(self) -> None:
        name = self.p.name
        toml = emit.toml_document(
            [("name", name), ("engine", "duckdb"), ("dialect", self.dialect),
             ("description", f"Imported from the dbt project {name!r}.")],
            [f"Converted from the dbt project {name!r} by `headwater import dbt`; "
             f"see {REPORT_FILE}."],
        )
        self._write("headwater.toml", toml)
        self._write(".gitignore", ".headwater/\ntarget/\n")
        for folder in ("sources", "transforms", "sinks"):
            (self.out / folder).mkdir(exist_ok=True)
        self._write(REPORT_FILE, self.report.to_markdown())

    # -- helpers ---------------------------------------------------------------

    def _describe(self, props: dict[str, Any]) -> str:
        text = str(props.get("description") or "").strip()
        if "{{" in text:
            text = re.sub(r"{{\s*doc\(\s*['\"](\w+)['\"]\s*\)\s*}}",
                          lambda m: self.p.docs.get(m.group(1), m.group(0)), text)
        return text

    def _column_comments(self, props: dict[str, Any]) -> list[str]:
        out = []
        for col in props.get("columns") or []:
            if isinstance(col, dict) and self._describe(col):
                out.append(f"column {col.get('name')}: {emit.one_line(self._describe(col))}")
        return [""] + out if out else []

    def _write(self, rel: str, text: str, origin: str | None = None) -> None:
        path = self.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        self.report.written.append(rel)
        if origin:
            self.report.mapping.append((origin, rel))

    def _copy(self, src: Path, rel: str, origin: str | None = None) -> None:
        path = self.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, path)
        self.report.written.append(rel)
        if origin:
            self.report.mapping.append((origin, rel))


def _specs(props: dict[str, Any]) -> list[TestSpec]:
    """Every test of a model, seed or source table: its own, then its columns'."""
    specs = parse_tests(props, None)
    for col in props.get("columns") or []:
        if isinstance(col, dict):
            specs += parse_tests(col, str(col.get("name")))
    return specs


def _custom_checks_supported() -> bool:
    """Whether this Headwater reads custom checks from ``checks/*.sql``."""
    from headwater.load.loader import LoadedProject

    return "custom_checks" in getattr(LoadedProject, "__dataclass_fields__", {})


def _source_checks_supported() -> bool:
    """Whether this Headwater's source TOML takes ``checks = [...]``."""
    from headwater.connectors.base import SourceConfig

    return "checks" in SourceConfig.model_fields


def _meta(*props: dict[str, Any]) -> dict[str, Any]:
    """``meta`` and ``config.meta`` of a source and its table, the table's winning."""
    out: dict[str, Any] = {}
    for p in props:
        out.update(p.get("meta") or {})
        out.update((p.get("config") or {}).get("meta") or {})
    return out


__all__ = ["EMIT_CHECKS", "EMIT_INCREMENTAL", "DbtImportError", "import_dbt", "parse_vars"]


def parse_vars(text: str | None) -> dict[str, Any] | None:
    """``--vars`` as dbt takes it: a YAML (or JSON) mapping."""
    if not text:
        return None
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DbtImportError(f"--vars is not valid YAML: {exc}",
                             hint="e.g. --vars '{start_date: 2024-01-01}'") from None
    if not isinstance(value, dict):
        raise DbtImportError("--vars must be a mapping", hint="e.g. --vars '{key: value}'")
    return value
