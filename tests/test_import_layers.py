"""Imports of ``monai_ssl`` run one way, and no private member of MONAI, Ignite or PyTorch is used.

Every module of the package is parsed with :mod:`ast` (nothing is imported), with the imports inside
functions and ``TYPE_CHECKING`` blocks, absolute and relative.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

PACKAGE = "monai_ssl"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE

# private members of MONAI, Ignite and PyTorch the package used to override, read or write
PRIVATE_NAMES = ("_save_func", "_saved", "_get_closed_form_lr", "_last_lr")


@dataclass(frozen=True)
class Import:
    """One import statement's target: ``module`` imports ``target`` at ``path:line``."""

    module: str
    target: str
    path: Path
    line: int

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT.parent)}:{self.line} ({self.module} imports {self.target})"


@cache
def modules() -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (file, is a package ``__init__``) of every module of the package."""
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _from_target(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute module of ``from X import ...`` in ``module`` (relative levels resolved)."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _targets(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """The modules an import statement imports (``from pkg import sub`` imports the module ``pkg.sub``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        target = _from_target(node, module, is_package)
        return [f"{target}.{a.name}" if f"{target}.{a.name}" in modules() else target for a in node.names]
    return []


@cache
def package_imports() -> tuple[Import, ...]:
    """Every import of a ``monai_ssl`` module by a ``monai_ssl`` module, in functions too."""
    found = []
    for module, (path, is_package) in modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            for target in _targets(node, module, is_package):
                if target == PACKAGE or target.startswith(f"{PACKAGE}."):
                    found.append(Import(module, target, path, node.lineno))
    return tuple(found)


def subpackage(module: str) -> str | None:
    """``handlers`` for ``monai_ssl.handlers.checkpoint``; None for the package's own ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def imports_between(source: str, target: str) -> list[Import]:
    """The imports of subpackage ``target`` by modules of subpackage ``source``."""
    return [i for i in package_imports() if subpackage(i.module) == source and subpackage(i.target) == target]


def subpackage_graph() -> dict[str, dict[str, list[Import]]]:
    """Subpackage -> imported subpackage -> the imports that make the edge."""
    graph: dict[str, dict[str, list[Import]]] = {}
    for found in package_imports():
        source, target = subpackage(found.module), subpackage(found.target)
        if source is not None and target is not None and source != target:
            graph.setdefault(source, {}).setdefault(target, []).append(found)
    return graph


def find_cycle(graph: dict[str, dict[str, list[Import]]]) -> list[str] | None:
    """A path ``[a, b, ..., a]`` of subpackages importing each other in turn, or None (depth-first search)."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return path[path.index(node) :] + [node]
        if node in done:
            return None
        for successor in sorted(graph.get(node, {})):
            cycle = visit(successor, [*path, node])
            if cycle:
                return cycle
        done.add(node)
        return None

    for start in sorted(graph):
        cycle = visit(start, [])
        if cycle:
            return cycle
    return None


def describe_cycle(graph: dict[str, dict[str, list[Import]]], cycle: list[str]) -> str:
    """The cycle's path, then one import that makes each of its edges."""
    steps = [f"{a} -> {b}: {graph[a][b][0]}" for a, b in zip(cycle, cycle[1:])]
    return " -> ".join(cycle) + "\n" + "\n".join(steps)


# ---------------------------------------------------------------- the scanner itself
def test_the_scan_finds_the_package_and_its_imports():
    assert {"monai_ssl.handlers", "monai_ssl.handlers.checkpoint", "monai_ssl.study.stats"} <= set(modules())
    resume = [i.target for i in package_imports() if i.module == "monai_ssl.handlers.resume"]
    assert "monai_ssl.handlers.checkpoint" in resume  # an absolute import
    init = [i.target for i in package_imports() if i.module == "monai_ssl.handlers"]
    assert "monai_ssl.handlers.checkpoint" in init  # a relative one (`from .checkpoint import ...`)


def test_relative_imports_and_imports_in_functions_are_resolved():
    tree = ast.parse("from ..study import stats\nfrom . import x\ndef f():\n    from .. import networks\n")
    targets = [t for node in ast.walk(tree) for t in _targets(node, "monai_ssl.handlers.report", False)]
    assert targets == ["monai_ssl.study.stats", "monai_ssl.handlers", "monai_ssl.networks"]


def test_a_cycle_is_found_with_its_path():
    edge = Import("monai_ssl.a.m", "monai_ssl.b", ROOT / "a" / "m.py", 3)
    graph = {"a": {"b": [edge]}, "b": {"c": [edge]}, "c": {"a": [edge]}, "d": {"a": [edge]}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b": [edge]}, "b": {"c": [edge]}, "d": {"a": [edge]}}) is None
    assert describe_cycle(graph, ["a", "b", "c", "a"]).splitlines() == [
        "a -> b -> c -> a",
        f"a -> b: {edge}",
        f"b -> c: {edge}",
        f"c -> a: {edge}",
    ]
    assert str(edge) == "monai_ssl/a/m.py:3 (monai_ssl.a.m imports monai_ssl.b)"


# ---------------------------------------------------------------- the layers
def test_handlers_do_not_import_the_study():
    found = imports_between("handlers", "study")
    assert not found, "a handler imports from monai_ssl.study:\n" + "\n".join(map(str, found))


def test_transforms_do_not_import_networks():
    found = imports_between("transforms", "networks")
    assert not found, "a transform imports from monai_ssl.networks:\n" + "\n".join(map(str, found))


def test_no_import_cycle_between_subpackages():
    graph = subpackage_graph()
    assert graph, "the scan found no import between subpackages"
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle between subpackages of monai_ssl: " + describe_cycle(graph, cycle)


# ---------------------------------------------------------------- public APIs only
@pytest.mark.parametrize("name", PRIVATE_NAMES)
def test_no_private_member_of_monai_ignite_or_torch_is_used(name):
    found = [
        f"{path.relative_to(ROOT.parent)}:{n}"
        for path, _ in modules().values()
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if any(_is_name(line, i, name) for i in _occurrences(line, name))
    ]
    assert not found, f"{name} (a private member of MONAI, Ignite or PyTorch) is used at: {', '.join(found)}"


def _occurrences(line: str, name: str) -> list[int]:
    starts, start = [], line.find(name)
    while start != -1:
        starts.append(start)
        start = line.find(name, start + 1)
    return starts


def _is_name(line: str, start: int, name: str) -> bool:
    """``name`` at ``start`` is a whole identifier (``_saved`` in ``x._saved`` or ``"_saved"``, not ``n_saved``)."""
    before = line[start - 1] if start else ""
    after = line[start + len(name)] if start + len(name) < len(line) else ""
    return not (before.isalnum() or before == "_") and not (after.isalnum() or after == "_")


def test_the_private_name_scan_matches_whole_names_only():
    def hits(line: str, name: str) -> int:
        return sum(_is_name(line, i, name) for i in _occurrences(line, name))

    assert hits("checkpoint._saved.append(item)", "_saved") == 1
    assert hits('state["_saved"]', "_saved") == 1
    assert hits("n_saved=2, key_metric_n_saved=1, _saved_epoch(x)", "_saved") == 0
    assert hits("scheduler._last_lr = rates; scheduler._last_lr", "_last_lr") == 2
