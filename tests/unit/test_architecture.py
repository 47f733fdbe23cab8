"""The layout is the architecture (docs/ARCHITECTURE.md): imports point down the layers,
there is no import cycle, and ``import headwater.errors`` loads nothing else.

Every import counts, at module level or inside a function; only ``if TYPE_CHECKING:``
imports of a layer below or beside are exempt (they never run), and even those may not
point up.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import headwater

PACKAGE = Path(headwater.__file__).parent

# lowest first; a module may import its own layer and the layers before it
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("headwater.errors", "headwater.core")),
    ("engines", ("headwater.engines",)),
    ("connectors", ("headwater.connectors",)),
    ("state", ("headwater.state",)),
    ("graph", ("headwater.graph",)),
    ("load", ("headwater.load",)),
    ("lineage", ("headwater.lineage",)),
    ("plan", ("headwater.plan",)),
    ("run", ("headwater.run",)),
    ("integrations", ("headwater.integrations",)),
    ("docs", ("headwater.docs",)),
    ("api", ("headwater.api", "headwater")),
    ("callers", ("headwater.schedule", "headwater.importers", "headwater.scaffold")),
    ("web", ("headwater.web",)),
    ("cli", ("headwater.cli", "headwater.testing")),
]
ROOT_MODULES = {"__init__.py", "api.py", "errors.py", "testing.py"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        if "template" in path.relative_to(PACKAGE).parts:  # the scaffold's user files
            continue
        parts = ["headwater", *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _layer(module: str) -> int:
    best = (-1, -1)
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best[1]:
                best = (i, len(p))
    assert best[0] >= 0, f"{module} belongs to no layer: add it to LAYERS and ARCHITECTURE.md"
    return best[0]


def _imports(modules: dict[str, Path]) -> list[tuple[str, str, int, bool]]:
    """(importer, imported, line, type-checking only) for every Headwater import."""
    found = []
    for module, path in modules.items():
        def visit(node: ast.AST, typing_only: bool, module: str = module) -> None:
            for child in ast.iter_child_nodes(node):
                only = typing_only or (isinstance(child, ast.If)
                                       and "TYPE_CHECKING" in ast.unparse(child.test))
                targets: list[str] = []
                if isinstance(child, ast.Import):
                    targets = [a.name for a in child.names]
                elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
                    targets = [f"{child.module}.{a.name}" if f"{child.module}.{a.name}" in
                               modules else child.module for a in child.names]
                for target in targets:
                    while target not in modules and "." in target:
                        target = target.rsplit(".", 1)[0]
                    if target in modules and target != module:
                        found.append((module, target, child.lineno, only))
                visit(child, only)
        visit(ast.parse(path.read_text()), False)
    return found


def test_imports_point_down_the_layers() -> None:
    modules = _modules()
    up = [f"{a} ({LAYERS[_layer(a)][0]}) imports {b} ({LAYERS[_layer(b)][0]}), line {n}"
          for a, b, n, _ in _imports(modules) if _layer(b) > _layer(a)]
    assert not up, "imports that point up a layer:\n" + "\n".join(up)


def test_no_import_cycle() -> None:
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for a, b, _, typing_only in _imports(modules):
        if not typing_only:
            graph[a].add(b)
    # a package's __init__ importing its own submodules is how packages work, not a cycle
    for a in graph:
        graph[a] = {b for b in graph[a] if not a.startswith(b + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state and (cycle := visit(n)):
                return cycle
        state[m] = 2
        stack.pop()
        return None

    for m in sorted(graph):
        if m not in state:
            cycle = visit(m)
            assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_root_keeps_only_what_everything_uses() -> None:
    loose = {p.name for p in PACKAGE.glob("*.py")} - ROOT_MODULES
    assert not loose, f"modules at the package root: {sorted(loose)}; give each a layer"


def test_importing_errors_loads_nothing_else() -> None:
    code = ("import sys, headwater.errors; "
            "print(sorted(m for m in sys.modules if m.startswith('headwater')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "['headwater', 'headwater.errors']"


def test_project_is_still_one_attribute_away() -> None:
    from headwater.api import Project

    assert headwater.Project is Project
