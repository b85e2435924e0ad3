"""The package's shape: layers that import one way, no import cycle, no import hidden in
a function, and dispatch on declared capabilities rather than on methods' presence.

Read from the source with ``ast`` (nothing is imported), so it holds for every module.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "jopt"

# Layers, bottom first: a module imports only from its own layer and those below. A
# package's __init__ is a facade (the public namespaces mirror Keras's, so
# jopt.optimizers re-exports the loss-scale wrapper) and is exempt; jopt/__init__.py
# gathers everything.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "leaf helpers",
        ("jopt._version", "jopt.core.pytrees", "jopt.core.validation", "jopt.formulas"),
    ),
    ("core", ("jopt.core",)),
    ("schedules", ("jopt.schedules",)),
    ("optimizers", ("jopt.optimizers", "jopt.transforms", "jopt.legacy")),
    ("composites", ("jopt.composites", "jopt.layout")),
    ("tools", ("jopt.tools", "jopt.sharding", "jopt.demo")),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def layer_of(module: str) -> int:
    best, found = -1, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, found = len(prefix), index
    return found


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def imports(module: str) -> list[tuple[str, bool]]:
    """``(imported jopt module, inside a function)`` for each runtime import."""
    path = MODULES[module]
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            return  # annotations only: never run
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            in_function = True
        if isinstance(node, ast.Import):
            found.extend((a.name, in_function) for a in node.names if a.name.startswith("jopt"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            if base.startswith("jopt"):
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    found.append((sub if sub in MODULES else base, in_function))
        for child in ast.iter_child_nodes(node):
            visit(child, in_function)

    visit(tree, False)
    return found


def runtime_edges(module: str) -> set[str]:
    """What importing ``module`` runs: each imported module and its parent packages."""
    out: set[str] = set()
    for target, _ in imports(module):
        parts = target.split(".")
        out |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)} & set(MODULES)
    # A module's own packages are already being imported when it runs (the root package
    # gathers the API and is imported first whatever is imported).
    parts = module.split(".")
    return out - {".".join(parts[:i]) for i in range(1, len(parts) + 1)}


def test_every_module_has_a_layer() -> None:
    unplaced = [m for m in MODULES if m != "jopt" and layer_of(m) < 0]
    assert not unplaced, f"give these modules a layer in LAYERS: {unplaced}"


@pytest.mark.parametrize("module", sorted(m for m, p in MODULES.items() if p.name != "__init__.py"))
def test_modules_import_only_their_own_layer_and_below(module: str) -> None:
    mine = layer_of(module)
    upward = sorted(
        {
            f"{target} ({LAYERS[layer_of(target)][0]})"
            for target, _ in imports(module)
            if target != "jopt" and layer_of(target) > mine
        }
    )
    assert not upward, f"{module} ({LAYERS[mine][0]}) imports from a higher layer: {upward}"


def test_no_import_inside_a_function() -> None:
    hidden = sorted({f"{m} imports {t}" for m in MODULES for t, inside in imports(m) if inside})
    assert not hidden, f"an import inside a function hides a cycle: {hidden}"


def test_no_import_cycle() -> None:
    graph = {m: runtime_edges(m) for m in MODULES}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return [*stack[stack.index(n) :], n]
            if n not in state and (cycle := visit(n)):
                return cycle
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            cycle = visit(m)
            assert cycle is None, "import cycle: " + " -> ".join(cycle)


DUCK_TYPING = re.compile(r"hasattr\([^,]+,\s*\"(init|update|apply|lr|inner|opt_state|opt)\"\)")


def test_capabilities_are_declared_not_probed() -> None:
    probes = [
        f"{m}: {match.group(0)}"
        for m, path in MODULES.items()
        for match in DUCK_TYPING.finditer(path.read_text())
    ]
    assert not probes, f"dispatch on a capability of jopt.core.protocol instead: {probes}"
