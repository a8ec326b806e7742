"""bench/ has no import circle: every import of every module, at the top or inside a function, points one way.

Edges: ``import a.b`` and ``from a import b`` (b a module, else a) as written anywhere in the file; a package's
``__init__`` runs before its submodules, so importing a.b.c also depends on a.b unless the importer lives inside
a.b itself (then a.b is already running); and a package that discovers its modules at run time
(``pkgutil.iter_modules(__path__)``, as bench.papers finds its specs) depends on each of its public modules."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO



def _module_names(top: Path, package: str) -> dict[str, Path]:
    names = {}
    for path in sorted((top / package).rglob("*.py")):
        parts = path.relative_to(top).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph(top: Path = REPO, package: str = "bench") -> dict[str, set[str]]:
    """Module -> the modules it imports, for every module of ``package`` under the directory ``top``."""
    modules = _module_names(top, package)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        source = path.read_text(encoding="utf-8")
        targets = []
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                targets += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*anchor, *([base] if base else [])])
                targets += [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        if "pkgutil.iter_modules(__path__)" in source:
            targets += [m for m in modules if m.rpartition(".")[0] == name and not m.rpartition(".")[2].startswith("_")]
        for target in targets:
            if target not in modules or target == name:
                continue
            graph[name].add(target)
            graph[name].update(a for a in _ancestors(target) if a in modules and a not in _ancestors(name) and a != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_bench_has_no_import_circle():
    graph = import_graph()
    assert len(graph) > 40 and graph["bench.report.page"], "the walk found bench's modules and their imports"
    assert cycles(graph) == []


def test_the_walk_sees_a_lazy_circle_and_a_discovery_circle(tmp_path):
    """The check itself: a circle closed by an import inside a function (as bench.report ↔ bench.report_figures once
    was) is found, and so is one through a package that imports its modules by discovery."""
    pkg = tmp_path / "pkg"
    (pkg / "specs").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("def f():\n    from .a import x\n    return x\n")
    (pkg / "specs" / "__init__.py").write_text("import pkgutil\nNAMES = list(pkgutil.iter_modules(__path__))\n")
    (pkg / "specs" / "one.py").write_text("from . import NAMES\n")
    (pkg / "c.py").write_text("import pkg.a\n")
    assert cycles(import_graph(tmp_path, "pkg")) == [["pkg.a", "pkg.b"], ["pkg.specs", "pkg.specs.one"]]


def test_the_report_never_imports_the_specs():
    """bench.report renders a spec handed to it; only its command line (bench.report.__main__) asks the registry."""
    graph = import_graph()
    for name, targets in graph.items():
        if name.startswith("bench.report.") and name != "bench.report.__main__":
            assert not {t for t in targets if t == "bench.papers" or t.startswith("bench.papers.")}, name
