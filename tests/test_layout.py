"""The package's shape: its modules stand on floors (the table below, which the page
docs/develop/layout.md shows); a module imports only from its own floor or lower ones, no import
circles at all, the testing plugin imports nothing it does not need, and the generated files are
current.

Every import counts: at the top of a module or inside a function, under ``TYPE_CHECKING`` or
not, into a package's ``__init__`` or into a module of it. An edge is an edge, wherever the
``import`` statement stands.
"""

from __future__ import annotations

import ast
import functools
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "host" / "ratepad"

# The floors of ``ratepad``, lowest first: a module belongs to the longest entry that names it
# or one of its packages (``ratepad`` itself: the package's ``__init__`` only).
FLOORS: tuple[tuple[str, ...], ...] = (
    ("errors", "resources", "wire.values", "stats"),  # the error tree, pure functions
    ("wire.codec_support", "wire.codec", "flags"),  # the generated codec, the flag table
    ("events",),  # typed, frozen events
    ("wire", "eventformat"),  # the resynchronising stream, the sans-IO link session; events as JSON
    ("transports",),  # hid:// usb:// tcp:// spy:// behind one class, the registry
    ("driver", "keypad", "aio", "ratepad"),  # the driver: its sans-IO core, its facades, the
    # package's public names
    ("capture",),  # pcapng, the tap, replay://
    ("tools",),  # firmware sources, build and flash, the MicroPython VM, doctor
    ("sim",),  # simulated keypads, sim://, the simulated USB stacks (backends)
    ("agent",),  # store, hub, bridge, uploader, demo
    ("scenario",),  # scenario files: model, runner, serve, fleets, soak
    ("metrics", "survey", "surveys"),  # statistics for reports, surveys
    ("testing",),  # the pytest plugin
    ("cli", "__main__"),  # the ratepad command
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


EXAMPLES = PACKAGE / "examples"  # files ``ratepad examples`` writes for users: data, not modules


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py") if EXAMPLES not in p.parents}


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every ratepad module this module imports, wherever the import statement stands."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()

    def add(target: str) -> None:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
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
                continue
            for alias in node.names:
                add(f"{mod}.{alias.name}" if f"{mod}.{alias.name}" in modules else mod)
    return found


@functools.cache
def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def floor_of(name: str) -> int | None:
    """The floor of module ``name`` (None: on no floor)."""
    best: tuple[int, int] | None = None  # (length of the entry, floor)
    for floor, entries in enumerate(FLOORS):
        for entry in entries:
            full = "ratepad" if entry == "ratepad" else f"ratepad.{entry}"
            names_it = name == full or (entry != "ratepad" and name.startswith(full + "."))
            if names_it and (best is None or len(full) > best[0]):
                best = (len(full), floor)
    return None if best is None else best[1]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle through each strongly connected group of modules (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_circle_in(graph, set(group)) for group in groups]


def _circle_in(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A shortest circle from the group's first module back to itself, for the message."""
    start = min(group)
    paths = {start: [start]}
    todo = [start]
    while todo:
        node = todo.pop(0)
        for nxt in sorted(graph[node] & group):
            if nxt == start:
                return [*paths[node], start]
            if nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                todo.append(nxt)
    return sorted(group)


def test_every_module_is_on_a_floor() -> None:
    assert not sorted(n for n in _modules() if floor_of(n) is None)


def test_no_import_circles() -> None:
    found = cycles(_graph())
    assert not found, "import circles: " + "; ".join(" -> ".join(c) for c in found)


def test_no_import_from_a_higher_floor() -> None:
    upward = sorted(
        f"{name} (floor {floor_of(name)}) -> {target} (floor {floor_of(target)})"
        for name, deps in _graph().items()
        for target in deps
        if (floor_of(name) or 0) < (floor_of(target) or 0)
    )
    assert not upward, "imports from a higher floor:\n" + "\n".join(upward)


def test_the_checks_see_what_they_must(tmp_path: Path) -> None:
    # edges the old check dropped: a TYPE_CHECKING import into a package, a function's import
    src = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from .bridge import Bridge\n"
        "def f():\n    from ..cli import main\n"
    )
    modules = {m: PACKAGE for m in ("ratepad.agent.agent", "ratepad.agent.bridge", "ratepad.cli")}
    probe = tmp_path / "agent.py"
    probe.write_text(src, encoding="utf-8")
    assert _imports("ratepad.agent.agent", probe, modules) == {
        "ratepad.agent.bridge",
        "ratepad.cli",
    }
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert floor_of("ratepad.wire.codec") < floor_of("ratepad.events") < floor_of("ratepad.wire")  # type: ignore[operator]
    assert floor_of("ratepad") == floor_of("ratepad.keypad")
    assert floor_of("ratepad.nowhere") is None


def test_the_documentation_shows_these_floors() -> None:
    page = (ROOT / "docs" / "develop" / "layout.md").read_text(encoding="utf-8")
    section = page[page.index("Inside `host/ratepad/`") :]
    rows = re.findall(r"^\| (\d+) \| ([^|]*) \|", section, flags=re.MULTILINE)
    shown = [(int(floor), sorted(re.findall(r"`([^`]+)`", names))) for floor, names in rows]
    assert shown == [(floor, sorted(entries)) for floor, entries in enumerate(FLOORS)]


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
