"""The package's shape: imports only go down, and there are no circles.

Every import counts: at module level, inside functions, and under
``TYPE_CHECKING`` (a circle that only type checkers see is still a circle in
the design). The layers, from the top:

- the course: widgets, exercises, troubleshooting, the command line, plots, ``smtplab.testing``;
- the facade: ``smtplab.lab`` (and the package's ``__init__``, which re-exports);
- the core: everything else (servers, relays, the HTTP API, the post office, DNS, stores...).

The core never imports the facade or the course: it talks to the mail world through
``smtplab.world.MailWorld``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "smtplab"
COURSE = ("smtplab.widgets", "smtplab.exercises", "smtplab.troubleshoot", "smtplab.cli", "smtplab.plots",
          "smtplab.testing")
FACADE = ("smtplab.lab",)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(name: str) -> set[str]:
    """Every smtplab module `name` imports, wherever the import statement is."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:  # `from . import relay` imports the module smtplab.relay
                found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in MODULES else target)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: imports_of(name) for name in MODULES}


def in_layer(name: str, layer: tuple[str, ...]) -> bool:
    return any(name == top or name.startswith(top + ".") for top in layer)


def test_the_graph_was_read():
    assert GRAPH["smtplab.lab"] >= {"smtplab.server", "smtplab.postoffice"}  # a reader that finds nothing passes anything
    assert "smtplab.relay" in GRAPH["smtplab.postoffice"]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_there_are_no_import_circles():
    assert cycles(GRAPH) == []


def test_the_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("name", sorted(n for n in MODULES if not in_layer(n, COURSE + FACADE) and n != "smtplab"))
def test_the_core_never_reaches_up(name):
    upward = sorted(m for m in GRAPH[name] if in_layer(m, COURSE + FACADE) or m == "smtplab")
    assert upward == [], f"{name} imports {upward}: the core must talk to the world through smtplab.world"


def test_the_facade_does_not_import_the_course():
    assert sorted(m for m in GRAPH["smtplab.lab"] if in_layer(m, COURSE)) == []
