"""The package's shape: no import cycles between modules, nothing below the CLI imports it, the
testing plugin imports nothing it does not need, and the generated files are current."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "host" / "ratepad"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every ratepad module this module imports at run time (top level or inside functions)."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()

    def add(target: str) -> None:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "ratepad":
                    add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.split(".")[0] == "ratepad":
                mod = node.module
            else:
                return
            for alias in node.names:
                if f"{mod}.{alias.name}" in modules:
                    add(f"{mod}.{alias.name}")
                else:
                    add(mod)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _packages_of(name: str) -> set[str]:
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def test_no_import_cycles_between_modules() -> None:
    # A package's __init__ re-exporting its modules is not a cycle; module-to-module edges are.
    modules = _modules()
    graph = {
        n: {t for t in deps if t not in _packages_of(n)}
        for n, deps in _graph().items()
        if modules[n].name != "__init__.py"
    }
    graph = {n: {t for t in deps if t in graph} for n, deps in graph.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                dfs(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            dfs(node)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_nothing_below_the_cli_imports_it() -> None:
    offenders = {
        name: sorted(t for t in deps if t == "ratepad.cli" or t.startswith("ratepad.cli."))
        for name, deps in _graph().items()
        if name.partition(".cli")[0] != "ratepad" and name != "ratepad.__main__"
    }
    assert not {k: v for k, v in offenders.items() if v}


def test_generated_files_are_current() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ratepad_protocol.generate", "--check"],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "protocol"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
