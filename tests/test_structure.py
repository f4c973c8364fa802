"""The shape of the package, read from its source with ``ast``: every import goes one way (no cycle, no import hidden
inside a function), no method imports another, the pipeline imports no method, and functions stay short enough to
read. Then every module imports first in a fresh interpreter, whatever order the tests import in."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "recbole_bet"
OPTIONAL = {"ray", "faiss"}  # optional dependencies: imported where they are used, so a run without them works
LONGEST = 70  # lines of a function


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(tree: ast.AST, name: str, is_package: bool):
    """``(node, imported module, inside a function)`` for every import of ``tree``; relative imports resolved."""
    functions = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in ast.walk(f)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node, alias.name, id(node) in functions
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = name.split(".")[: len(name.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join(parent + ([base] if base else []))
            for alias in node.names:  # "from recbole_bet.methods import bet" imports the module recbole_bet.methods.bet
                target = f"{base}.{alias.name}"
                yield node, target if target in MODULES else base, id(node) in functions


def graph() -> dict[str, set[str]]:
    edges = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        edges[name] = {target for _, target, _ in imports(tree, name, path.name == "__init__.py") if target in MODULES and target != name}
    return edges


def method_of(name: str) -> str | None:
    """The method a module belongs to (``recbole_bet.methods.bet.search`` -> ``bet``); None for the registry and base."""
    parts = name.split(".")
    if len(parts) < 3 or parts[1] != "methods" or parts[2] == "base":
        return None
    return parts[2]


def test_no_import_cycle():
    edges = graph()
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)


def test_no_import_inside_a_function_but_optional_dependencies():
    hidden = []
    for name, path in MODULES.items():
        for node, target, inside in imports(ast.parse(path.read_text()), name, path.name == "__init__.py"):
            if inside and target.split(".")[0] not in OPTIONAL:
                hidden.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} imports {target}")
    assert not hidden, "\n".join(hidden)


def test_no_method_imports_another_and_the_pipeline_imports_none():
    edges = graph()
    crossing = [f"{a} -> {b}" for a, targets in edges.items() for b in targets
                if method_of(a) and (b == "recbole_bet.methods" or (method_of(b) and method_of(b) != method_of(a)))]
    assert not crossing, crossing
    assert {method_of(t) for t in edges["recbole_bet.quick_start"]} == {None}
    below = [f"{a} -> {b}" for a, targets in edges.items() for b in targets
             if not a.startswith("recbole_bet.methods") and a not in ("recbole_bet.config", "recbole_bet.quick_start")
             and b.startswith("recbole_bet.methods")]
    assert not below, below  # only the configuration (the registry) and the pipeline look methods up


def test_every_function_is_short_enough_to_read():
    long = []
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > LONGEST:
                long.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert not long, "\n".join(long)


def test_the_checks_see_what_they_check():
    """The walk finds the methods, their cross-imports would be seen, and a function-level import is recognised."""
    assert {"recbole_bet.methods.bet.search", "recbole_bet.methods.pep", "recbole_bet.quick_start"} <= set(MODULES)
    assert method_of("recbole_bet.methods.bet.search") == "bet" and method_of("recbole_bet.methods.base") is None
    tree = ast.parse("import os\ndef f():\n    import ray\n    from recbole_bet.methods import es\n")
    found = [(target, inside) for _, target, inside in imports(tree, "recbole_bet.x", False)]
    assert found == [("os", False), ("ray", True), ("recbole_bet.methods.es", True)]


PROBE = """
import importlib, sys
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "recbole_bet" or m.startswith("recbole_bet.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as error:
        failed.append(f"{name}: {type(error).__name__}: {error}")
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


@pytest.mark.slow
def test_each_module_imports_first():
    done = subprocess.run([sys.executable, "-c", PROBE, *MODULES], capture_output=True, text=True, cwd=PACKAGE.parent)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
