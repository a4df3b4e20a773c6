"""Import layers: a static walk of the project's import graph forbids upward arrows and cycles.

Every .py file of the project packages (not tests/) is parsed with `ast`; each of its imports, at any
depth (module level, functions, `if TYPE_CHECKING:` blocks), is an arrow `importer -> imported`:

- `import a.b` -> a.b; `from a.b import c` -> a.b.c when that is a project module, else a.b.
  Parent packages imported on the way are not arrows (so `from . import sibling` in a package's
  module is no arrow to the package's __init__);
- relative imports are resolved against the importing module's package;
- `import_module("a.b")`, `importlib.import_module("a.b")` and `__import__("a")` with a literal name;
- dynamic imports: a function (or the module body) that calls one of those with a computed name
  imports every project-module name among the string elements of the tuple/list/set literals it
  holds or reads by name (`COMMAND_MODULES = ("gan.cli", ...)`, then
  `for name in COMMAND_MODULES: import_module(name)`), and every project-module name passed as a
  literal argument to that function.

Only project modules count; a dotted name stands for its longest prefix that is a project module.
"""
from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

PACKAGES = ("datasets", "htr", "gan", "benchmark", "reports")
IMPORT_CALLS = {"import_module", "__import__"}
FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
SEQUENCES = (ast.Tuple, ast.List, ast.Set)


@dataclass(frozen=True, order=True)
class Arrow:
    """One import: `importer` imports `imported` at `path:line` (path relative to the walked root)."""

    importer: str
    imported: str
    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.importer} -> {self.imported} ({self.path}:{self.line})"


# --- the walker ------------------------------------------------------------------------------------

def module_files(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    """Dotted module name -> file for every .py file under the packages (a package is its __init__.py)."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def project_module(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of the dotted `name` that is a project module, if any."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in modules:
            return ".".join(parts[:n])
    return None


def _from_base(node: ast.ImportFrom, module: str, path: Path) -> str:
    """The absolute module a `from ... import` statement imports from."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[:len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _literal(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _called_name(call: ast.Call) -> str | None:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _is_import_call(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and _called_name(node) in IMPORT_CALLS and bool(node.args)


def _statement_imports(tree: ast.AST, module: str, path: Path) -> Iterator[tuple[str, int]]:
    """(dotted name, line) of every import statement and every literal import_module/__import__ call."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _from_base(node, module, path)
            yield from ((f"{base}.{alias.name}", node.lineno) for alias in node.names)
        elif _is_import_call(node) and _literal(node.args[0]) is not None:
            yield _literal(node.args[0]), node.lineno


def _scopes(tree: ast.Module) -> list[ast.AST]:
    """The module body without its functions and classes, then every function."""
    body = [s for s in tree.body if not isinstance(s, (*FUNCTIONS, ast.ClassDef))]
    return [ast.Module(body=body, type_ignores=[]), *(n for n in ast.walk(tree) if isinstance(n, FUNCTIONS))]


def _strings(sequence: ast.AST) -> Iterator[tuple[str, int]]:
    for element in sequence.elts:
        if _literal(element) is not None:
            yield element.value, element.lineno


def _named_sequences(tree: ast.Module) -> dict[str, list[tuple[str, int]]]:
    """Name -> string elements, for every name the file binds to a tuple/list/set literal."""
    named: dict[str, list[tuple[str, int]]] = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, SEQUENCES):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if isinstance(target, ast.Name):
                    named.setdefault(target.id, []).extend(_strings(node.value))
    return named


def _dynamic_imports(tree: ast.Module) -> Iterator[tuple[str, int]]:
    """(string, line) of the candidate module names of the dynamic-import rule (module docstring)."""
    named = _named_sequences(tree)
    importers: set[str] = set()
    for scope in _scopes(tree):
        nodes = list(ast.walk(scope))
        if not any(_is_import_call(n) and _literal(n.args[0]) is None for n in nodes):
            continue
        if isinstance(scope, FUNCTIONS):
            importers.add(scope.name)
        for node in nodes:
            if isinstance(node, SEQUENCES):
                yield from _strings(node)
            elif isinstance(node, ast.Name) and node.id in named:
                yield from named[node.id]
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _called_name(node) in importers:
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                if _literal(arg) is not None:
                    yield arg.value, arg.lineno


def file_arrows(module: str, path: Path, root: Path, modules: dict[str, Path]) -> set[Arrow]:
    """Every arrow from `module` (its file at `path`) to a project module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    where = path.relative_to(root).as_posix()
    arrows = {Arrow(module, target, where, line)
              for name, line in _statement_imports(tree, module, path)
              if (target := project_module(name, modules))}
    arrows |= {Arrow(module, name, where, line) for name, line in _dynamic_imports(tree) if name in modules}
    return arrows


def import_arrows(root: Path, packages: tuple[str, ...]) -> list[Arrow]:
    """Every arrow between the project modules under `root`, sorted."""
    modules = module_files(root, packages)
    return sorted(a for module, path in modules.items() for a in file_arrows(module, path, root, modules))


# --- the rules -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    """Modules in `importers` import nothing in `forbidden` (a pattern is a module with its
    submodules; a trailing * matches any name that starts with the rest)."""

    name: str
    importers: tuple[str, ...]
    forbidden: tuple[str, ...]
    reason: str


def in_area(module: str, pattern: str) -> bool:
    if pattern.endswith("*"):
        return module.startswith(pattern[:-1])
    return module == pattern or module.startswith(pattern + ".")


def broken_by(arrows: list[Arrow], rule: Rule) -> list[Arrow]:
    """The arrows that break `rule`."""
    return [a for a in arrows
            if any(in_area(a.importer, p) for p in rule.importers) and any(in_area(a.imported, p) for p in rule.forbidden)]


ORCHESTRATION = ("benchmark.cli", "benchmark.study", "benchmark.study_cli", "benchmark.profiles", "benchmark.stages",
                 "benchmark.stage", "benchmark.runner", "benchmark.stage_runner", "benchmark.backend", "benchmark.launch",
                 "benchmark.perf*", "benchmark.probes*")
RULES = (
    Rule("libraries-below-orchestration", ("datasets", "htr", "gan", "reports", "benchmark.metrics"), ORCHESTRATION,
         "the CLI, study, launcher, perf and probe code drive the libraries, never the other way round"),
    Rule("datasets-at-the-bottom", ("datasets",), ("htr", "gan", "benchmark", "reports"),
         "datasets is the layer every other package builds on"),
    Rule("reports-read-files", ("reports",), ("htr", "gan", "benchmark"), "reports read results files only"),
    Rule("htr-scores-itself", ("htr",), ("gan", "benchmark"), "htr's scoring is its own"),
    Rule("gan-metrics-injected", ("gan",), ("benchmark",), "gan's metrics are injected by its caller"),
    Rule("metrics-without-gan", ("benchmark.metrics",), ("gan",), "metrics score images, whatever drew them"),
)


def rule_report(rule: Rule, broken: list[Arrow]) -> str:
    lines = [f"{rule.name}: {', '.join(rule.importers)} must not import {', '.join(rule.forbidden)} ({rule.reason});",
             f"{len(broken)} offending import(s):"]
    return "\n".join(lines + [f"  {a}" for a in broken])


# --- cycles ----------------------------------------------------------------------------------------

def _graph(arrows: list[Arrow]) -> dict[str, dict[str, Arrow]]:
    """importer -> {imported: the first arrow between them}."""
    graph: dict[str, dict[str, Arrow]] = {}
    for a in sorted(arrows):
        graph.setdefault(a.importer, {}).setdefault(a.imported, a)
        graph.setdefault(a.imported, {})
    return graph


def strongly_connected(graph: dict[str, dict[str, Arrow]]) -> list[list[str]]:
    """Tarjan's strongly connected components, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for succ in graph[node]:
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
            components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _closed_path(graph: dict[str, dict[str, Arrow]], component: list[str]) -> list[Arrow]:
    """A shortest path of arrows from the component's first module back to itself, inside it."""
    start, inside = component[0], set(component)
    came_by: dict[str, Arrow] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for succ, arrow in graph[node].items():
                if succ == start:
                    path = [arrow]
                    while path[0].importer != start:
                        path.insert(0, came_by[path[0].importer])
                    return path
                if succ in inside and succ not in came_by:
                    came_by[succ] = arrow
                    following.append(succ)
        frontier = following
    raise AssertionError(f"no closed path in {component}")


def cycles(arrows: list[Arrow]) -> list[tuple[list[str], list[Arrow]]]:
    """(modules, one closed path) for every component of more than one module, and every self-import."""
    graph = _graph(arrows)
    return [(c, _closed_path(graph, c)) for c in strongly_connected(graph) if len(c) > 1 or c[0] in graph[c[0]]]


def cycle_report(found: list[tuple[list[str], list[Arrow]]]) -> str:
    lines = [f"{len(found)} import cycle(s) (no cycle among project modules: each layer must build on the ones below):"]
    for modules, path in found:
        lines.append(f"  cycle of {len(modules)} module(s): {', '.join(modules)}; one path:")
        lines += [f"    {a}" for a in path]
    return "\n".join(lines)


# --- the project -----------------------------------------------------------------------------------

def project_root() -> Path:
    """The directory the imported project packages live in."""
    roots = {Path(importlib.util.find_spec(p).origin).parents[1] for p in PACKAGES}
    assert len(roots) == 1, f"the packages live in several places: {sorted(map(str, roots))}"
    return roots.pop()


@pytest.fixture(scope="module")
def project_arrows() -> list[Arrow]:
    return import_arrows(project_root(), PACKAGES)


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.name)
def test_layer_rule(project_arrows, rule):
    broken = broken_by(project_arrows, rule)
    if broken:
        pytest.fail(rule_report(rule, broken), pytrace=False)


def test_no_import_cycles(project_arrows):
    found = cycles(project_arrows)
    if found:
        pytest.fail(cycle_report(found), pytrace=False)


def test_the_walk_sees_every_package(project_arrows):
    modules = module_files(project_root(), PACKAGES)
    assert set(PACKAGES) <= set(modules) and len(modules) > 2 * len(PACKAGES)
    assert project_arrows


# --- the walker on a synthetic project -------------------------------------------------------------

SYNTHETIC = {
    "low/__init__.py": "",
    "low/base.py": "import os\nfrom high.top import thing\n",
    "low/rel.py": "def f():\n    from .base import x\n    from . import base, nothing\n",
    "low/selfish.py": "import low.selfish\n",
    "low/plain.py": 'NAMES = ("high.top",)\n',
    "low/dyn.py": ("import importlib\n"
                   'MODULES = ("high.top", "not.a.module")\n'
                   "def load_all():\n"
                   "    for name in MODULES:\n"
                   "        importlib.import_module(name)\n"
                   "def load(name):\n"
                   "    return importlib.import_module(name)\n"
                   'load("high")\n'
                   'importlib.import_module("high.top")\n'
                   '__import__("low.base")\n'),
    "high/__init__.py": "",
    "high/top.py": "import low.base as base\nthing = 1\n",
}


@pytest.fixture
def synthetic(tmp_path) -> list[Arrow]:
    for rel, text in SYNTHETIC.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text, encoding="utf-8")
    return import_arrows(tmp_path, ("low", "high"))


def test_walker_finds_every_kind_of_import(synthetic):
    assert {str(a) for a in synthetic} == {
        "low.base -> high.top (low/base.py:2)",
        "low.rel -> low.base (low/rel.py:2)",                  # relative, inside a function
        "low.rel -> low.base (low/rel.py:3)",
        "low.rel -> low (low/rel.py:3)",                       # `nothing` is no module: the package
        "low.selfish -> low.selfish (low/selfish.py:1)",
        "low.dyn -> high.top (low/dyn.py:2)",                  # a name tuple fed to import_module
        "low.dyn -> high (low/dyn.py:8)",                      # a literal passed to an importing function
        "low.dyn -> high.top (low/dyn.py:9)",
        "low.dyn -> low.base (low/dyn.py:10)",
        "high.top -> low.base (high/top.py:1)",
    }


def test_rule_reports_each_forbidden_arrow(synthetic):
    rule = Rule("low-below-high", ("low",), ("high",), "low is the bottom layer")
    report = rule_report(rule, broken_by(synthetic, rule))
    assert report.splitlines() == [
        "low-below-high: low must not import high (low is the bottom layer);",
        "4 offending import(s):",
        "  low.base -> high.top (low/base.py:2)",
        "  low.dyn -> high (low/dyn.py:8)",
        "  low.dyn -> high.top (low/dyn.py:2)",
        "  low.dyn -> high.top (low/dyn.py:9)",
    ]


def test_cycles_and_self_imports_are_found_with_a_path(synthetic):
    found = cycles(synthetic)
    assert [modules for modules, _ in found] == [["high.top", "low.base"], ["low.selfish"]]
    assert [str(a) for a in found[0][1]] == ["high.top -> low.base (high/top.py:1)", "low.base -> high.top (low/base.py:2)"]
    assert "cycle of 2 module(s): high.top, low.base" in cycle_report(found)


def test_areas_take_submodules_and_star_prefixes():
    assert in_area("benchmark.study", "benchmark.study") and in_area("benchmark.study.run", "benchmark.study")
    assert not in_area("benchmark.study_cli", "benchmark.study")
    assert in_area("benchmark.perf", "benchmark.perf*") and in_area("benchmark.perf_gpu", "benchmark.perf*")
