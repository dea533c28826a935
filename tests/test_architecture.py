"""The layers hold as ARCHITECTURE.md draws them: arrows point down and never in a circle."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("services", "containers", "patterns", "sweep")
# who may import whom (by top-level package); services.errors and services.limits import nothing of the project
ALLOWED = {
    "services": {"services"},
    "containers": {"containers", "services"},
    "patterns": {"patterns"},
    "sweep": {"sweep", "services", "containers", "patterns"},
}
GROUND = ("services.errors", "services.limits")


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Every project module -> the project modules it imports (at module level or inside functions)."""
    graph: dict[str, set[str]] = {}
    modules = {_module(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    for mod, path in modules.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        out = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                    names = [f"{target}.{a.name}" for a in node.names]
                else:
                    target = node.module or ""
                    names = [f"{target}.{a.name}" for a in node.names]
                out |= {n for n in [target, *names] if n in modules}
            elif isinstance(node, ast.Import):
                out |= {a.name for a in node.names if a.name in modules}
        graph[mod] = out - {mod}
    return graph


def test_arrows_point_down():
    bad = [
        f"{mod} -> {dep}"
        for mod, deps in _imports().items()
        for dep in deps
        if dep.split(".")[0] not in ALLOWED[mod.split(".")[0]]
    ]
    assert not bad, bad


def test_ground_modules_import_nothing_of_the_project():
    graph = _imports()
    for mod in GROUND:
        assert not graph[mod], (mod, graph[mod])


def test_no_import_cycles():
    graph = _imports()
    # packages import their submodules (``from . import x``); only cycles between modules count
    edges = {m: {d for d in deps if not (m.startswith(d + ".") or d.startswith(m + "."))} for m, deps in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(edges.get(m, ())):
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d) :] + [d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)
    assert not cycles, cycles
