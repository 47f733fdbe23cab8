"""Reading a dbt project from disk: dbt_project.yml, property files, models, seeds, sources.

Nothing here renders Jinja or writes anything; it gathers what the converter needs,
with the file and line each thing came from (YAML mappings and strings remember
their line, see :class:`LineDict`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from headwater.errors import HeadwaterError

PROJECT_FILE = "dbt_project.yml"

# Config keys whose value is a mapping (so `key: {...}` in a config tree is not a folder).
_DICT_CONFIGS = {"meta", "column_types", "persist_docs", "docs", "grants", "contract", "labels"}


class DbtImportError(HeadwaterError):
    """The dbt project cannot be read at all (no dbt_project.yml, bad YAML, ...)."""


class LineDict(dict[str, Any]):
    """A YAML mapping that remembers the (1-based) line it starts on."""

    line: int | None = None


class LineStr(str):
    """A YAML string that remembers its line."""

    line: int | None = None


def line_of(value: Any, default: int | None = None) -> int | None:
    return getattr(value, "line", None) or default


def read_yaml(path: Path, root: Path) -> Any:
    """Parse a YAML file keeping line numbers; a syntax error names the file and line."""
    try:
        import yaml
    except ImportError:  # pragma: no cover - depends on the installation
        raise DbtImportError(
            "reading a dbt project needs PyYAML",
            hint="pip install 'headwater[dbt]' (or pip install pyyaml jinja2)",
        ) from None

    class Loader(yaml.SafeLoader):  # type: ignore[misc]
        pass

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> LineDict:
        out = LineDict(loader.construct_mapping(node, deep=True))
        out.line = node.start_mark.line + 1
        return out

    def string(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> LineStr:
        out = LineStr(loader.construct_scalar(node))
        out.line = node.start_mark.line + 1
        return out

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    Loader.add_constructor("tag:yaml.org,2002:str", string)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DbtImportError(f"cannot read {exc.filename}: {exc.strerror}") from None
    try:
        return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise DbtImportError(
            f"invalid YAML: {getattr(exc, 'problem', None) or exc}",
            path=_rel_path(path, root),
            line=mark.line + 1 if mark is not None else None,
            column=mark.column + 1 if mark is not None else None,
            hint="fix the YAML so that dbt itself can parse the project",
        ) from None


@dataclass
class Resource:
    """A model, seed or snapshot file."""

    name: str
    path: Path
    rel: str  # relative to the dbt project
    parts: tuple[str, ...]  # folders under the resource path, then the name (config tree)
    props: dict[str, Any] = field(default_factory=dict)  # from a property (schema.yml) file
    props_file: str | None = None

    @property
    def language(self) -> str:
        return "python" if self.path.suffix == ".py" else "sql"

    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")


@dataclass
class SourceTable:
    source: str
    name: str
    props: dict[str, Any]
    source_props: dict[str, Any]
    file: str
    line: int | None


@dataclass
class DbtProject:
    root: Path
    name: str
    config: dict[str, Any]
    vars: dict[str, Any]
    models: dict[str, Resource]
    seeds: dict[str, Resource]
    snapshots: dict[str, Resource]
    sources: list[SourceTable]
    macros: dict[str, str]  # macro name -> "file:line"
    docs: dict[str, str]  # {% docs name %} blocks
    packages: list[tuple[str, str, int | None]]  # (namespace, file, line)
    singular_tests: list[str]  # files, relative
    orphan_props: list[tuple[str, str, str, int | None]]  # (kind, name, file, line)

    def rel(self, path: Path) -> str:
        return _rel_path(path, self.root)

    def model_config(self, model: Resource) -> dict[str, Any]:
        """dbt_project.yml folder configs then the property file's ``config:`` for a model."""
        cfg = tree_config(self.config.get("models"), self.name, model.parts)
        merge_config(cfg, _props_config(model.props))
        return cfg

    def seed_config(self, seed: Resource) -> dict[str, Any]:
        cfg = tree_config(self.config.get("seeds"), self.name, seed.parts)
        merge_config(cfg, _props_config(seed.props))
        return cfg


def load_dbt_project(root: Path, extra_vars: dict[str, Any] | None = None) -> DbtProject:
    """Read the dbt project in ``root``."""
    root = root.resolve()
    project_file = root / PROJECT_FILE
    if not project_file.is_file():
        raise DbtImportError(
            f"not a dbt project: no {PROJECT_FILE} in {root}",
            hint="pass the folder that holds dbt_project.yml",
        )
    config = read_yaml(project_file, root) or {}
    if not isinstance(config, dict) or not config.get("name"):
        raise DbtImportError(
            "dbt_project.yml has no project name",
            path=PROJECT_FILE,
            hint="dbt_project.yml needs `name: my_project`",
        )
    name = str(config["name"])
    model_paths = _paths(config, "model-paths", "source-paths", default="models")
    seed_paths = _paths(config, "seed-paths", "data-paths", default="seeds")
    macro_paths = _paths(config, "macro-paths", default="macros")
    snapshot_paths = _paths(config, "snapshot-paths", default="snapshots")
    test_paths = _paths(config, "test-paths", default="tests")
    docs_paths = _paths(config, "docs-paths", default=None) or model_paths

    packages = _packages(root)
    project = DbtProject(
        root=root,
        name=name,
        config=config,
        vars=_vars(config.get("vars") or {}, name, {p for p, _, _ in packages}),
        models=_resources(root, model_paths, (".sql", ".py")),
        seeds=_resources(root, seed_paths, (".csv",)),
        snapshots=_snapshots(root, snapshot_paths),
        sources=[],
        macros=_macros(root, macro_paths),
        docs=_docs(root, docs_paths),
        packages=packages,
        singular_tests=[
            _rel_path(p, root) for d in test_paths for p in sorted((root / d).rglob("*.sql"))
        ],
        orphan_props=[],
    )
    if extra_vars:
        project.vars.update(extra_vars)
    for d in sorted({*model_paths, *seed_paths}):
        for path in sorted((root / d).rglob("*.y*ml")):
            if path.suffix in (".yml", ".yaml"):
                _read_properties(project, path)
    return project


def _paths(config: dict[str, Any], key: str, *legacy: str, default: str | None) -> list[str]:
    for k in (key, *legacy):
        value = config.get(k)
        if value:
            return [str(v) for v in (value if isinstance(value, list) else [value])]
    return [default] if default else []


def _rel_path(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _resources(root: Path, dirs: list[str], suffixes: tuple[str, ...]) -> dict[str, Resource]:
    found: dict[str, Resource] = {}
    for d in dirs:
        base = root / d
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if path.suffix not in suffixes or not path.is_file():
                continue
            parts = (*path.relative_to(base).parent.parts, path.stem)
            found.setdefault(path.stem, Resource(path.stem, path, _rel_path(path, root), parts))
    return found


_SNAPSHOT = re.compile(r"{%-?\s*snapshot\s+(\w+)\s*-?%}")


def _snapshots(root: Path, dirs: list[str]) -> dict[str, Resource]:
    found: dict[str, Resource] = {}
    for d in dirs:
        for path in sorted((root / d).rglob("*.sql")):
            for m in _SNAPSHOT.finditer(path.read_text(encoding="utf-8")):
                found[m.group(1)] = Resource(m.group(1), path, _rel_path(path, root), ())
    return found


_MACRO = re.compile(r"{%-?\s*macro\s+(\w+)\s*\(")


def _macros(root: Path, dirs: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for d in dirs:
        for path in sorted((root / d).rglob("*.sql")):
            text = path.read_text(encoding="utf-8")
            for m in _MACRO.finditer(text):
                line = text.count("\n", 0, m.start()) + 1
                found.setdefault(m.group(1), f"{_rel_path(path, root)}:{line}")
    return found


_DOCS = re.compile(r"{%-?\s*docs\s+(\w+)\s*-?%}(.*?){%-?\s*enddocs\s*-?%}", re.DOTALL)


def _docs(root: Path, dirs: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for d in dirs:
        for path in sorted((root / d).rglob("*.md")):
            for m in _DOCS.finditer(path.read_text(encoding="utf-8")):
                found[m.group(1)] = m.group(2).strip()
    return found


def _packages(root: Path) -> list[tuple[str, str, int | None]]:
    found: list[tuple[str, str, int | None]] = []
    for file in ("packages.yml", "dependencies.yml"):
        path = root / file
        if not path.is_file():
            continue
        data = read_yaml(path, root) or {}
        for entry in data.get("packages") or []:
            if not isinstance(entry, dict):
                continue
            spec = entry.get("package") or entry.get("git") or entry.get("local") or "?"
            namespace = re.sub(r"\.git$", "", str(spec).rstrip("/").split("/")[-1])
            found.append((namespace.replace("-", "_"), file, line_of(entry)))
    return found


def _vars(raw: dict[str, Any], project: str, packages: set[str]) -> dict[str, Any]:
    """Global vars, then the ones scoped to this project (dbt's precedence)."""
    out = {k: v for k, v in raw.items() if k != project and k not in packages}
    scoped = raw.get(project)
    if isinstance(scoped, dict):
        out.update(scoped)
    return out


def tree_config(tree: Any, project: str, parts: tuple[str, ...]) -> dict[str, Any]:
    """Resolve a ``models:``/``seeds:`` tree of dbt_project.yml for one resource.

    Configs apply from the top down (top level, project, each folder, the
    resource's own key); tags add up, ``meta`` merges, the rest overrides.
    """
    cfg: dict[str, Any] = {}
    if not isinstance(tree, dict):
        return cfg
    _apply_level(cfg, tree)
    node = tree.get(project)
    for part in parts:
        if not isinstance(node, dict):
            return cfg
        _apply_level(cfg, node)
        node = node.get(part)
    if isinstance(node, dict):
        _apply_level(cfg, node)
    return cfg


def _apply_level(cfg: dict[str, Any], level: dict[str, Any]) -> None:
    own: dict[str, Any] = {}
    for key, value in level.items():
        if key.startswith("+"):
            own[key[1:]] = value
        elif not isinstance(value, dict) or key in _DICT_CONFIGS:
            own[key] = value
    merge_config(cfg, own)


def merge_config(cfg: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    for key, value in more.items():
        key = key.replace("-", "_") if key in ("pre-hook", "post-hook") else key
        if key == "tags":
            tags = [value] if isinstance(value, str) else list(value or [])
            cfg["tags"] = list(dict.fromkeys([*cfg.get("tags", []), *map(str, tags)]))
        elif key == "meta" and isinstance(value, dict):
            cfg["meta"] = {**cfg.get("meta", {}), **value}
        else:
            cfg[key] = value
    return cfg


def _props_config(props: dict[str, Any]) -> dict[str, Any]:
    """A property entry's ``config:``, with top-level ``tags``/``meta`` (older style)."""
    cfg: dict[str, Any] = {}
    for key in ("tags", "meta"):
        if props.get(key):
            cfg[key] = props[key]
    merge_config(cfg, props.get("config") or {})
    return cfg


def _read_properties(project: DbtProject, path: Path) -> None:
    data = read_yaml(path, project.root)
    if not isinstance(data, dict):
        return
    rel = project.rel(path)
    for kind, pool in (("models", project.models), ("seeds", project.seeds)):
        for entry in data.get(kind) or []:
            if not isinstance(entry, dict) or "name" not in entry:
                continue
            res = pool.get(str(entry["name"]))
            if res is None:
                project.orphan_props.append((kind, str(entry["name"]), rel, line_of(entry)))
                continue
            res.props = entry
            res.props_file = rel
    for source in data.get("sources") or []:
        if not isinstance(source, dict) or "name" not in source:
            continue
        for table in source.get("tables") or []:
            if isinstance(table, dict) and "name" in table:
                project.sources.append(
                    SourceTable(
                        str(source["name"]), str(table["name"]), table, source, rel,
                        line_of(table),
                    )
                )
