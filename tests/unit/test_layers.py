"""The package's layers point one way, and no two modules import each other.

Every import counts: module level, inside functions (a lazy import is still a dependency) and
under ``TYPE_CHECKING``. An import of a public name from the lazy facade (``from llm_connectors
import X``) counts as an import of the module that defines ``X``. docs/architecture.md draws
the same layers; a module may import from its own layer and the layers below it.
"""

from __future__ import annotations

import ast
import fnmatch
from pathlib import Path

import pytest

import llm_connectors

PACKAGE = Path(llm_connectors.__file__).resolve().parent
ROOT = "llm_connectors"

# Bottom to top. Patterns are module names relative to the package ("" is the package itself).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("errors", "types", "_version", "requests", "definition", "stream", "_secrets", "_asynclib",
              "_env", "hooks", "pricing", "ids", "json_values", "tokens", "catalog", "catalog.*")),
    ("wire", ("wire", "wire.*")),
    ("services", ("http", "http.*", "observe", "observe.*", "resilience", "resilience.*")),
    ("pipeline", ("pipeline",)),
    ("connector", ("base", "_batch", "batches", "options")),
    ("providers", ("connectors", "connectors.*", "local", "local.*")),
    ("assembly", ("registry", "factory", "fallback")),
    ("facade", ("", "__main__", "cli", "cli.*", "sync")),
    ("testing", ("testing", "testing.*")),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def layer_of(module: str) -> int:
    for index, (_, patterns) in enumerate(LAYERS):
        if any(fnmatch.fnmatchcase(module, pattern) for pattern in patterns):
            return index
    raise AssertionError(f"module {module!r} is in no layer: add it to LAYERS (and docs/architecture.md)")


def _facade_targets(names: list[str]) -> set[str]:
    lazy = llm_connectors._LAZY
    return {lazy[name].lstrip(".") if name in lazy else name for name in names}


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> set[str]:
    if node.level:
        base = module.split(".") if module else []
        if not is_package:
            base = base[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join([*base, *([node.module] if node.module else [])])
    elif node.module == ROOT or (node.module or "").startswith(ROOT + "."):
        target = (node.module or "")[len(ROOT) + 1:]
    else:
        return set()
    names = [alias.name for alias in node.names]
    if target == "":
        return _facade_targets(names) - {""} | ({""} if not names else set())
    found = {f"{target}.{name}" for name in names if f"{target}.{name}" in MODULES}
    return found | ({target} if len(found) < len(names) else set())


def imports_of(module: str) -> set[str]:
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            found |= _resolve(module, path.name == "__init__.py", node)
        elif isinstance(node, ast.Import):
            found |= {a.name[len(ROOT) + 1:] for a in node.names if a.name.startswith(ROOT + ".")}
    return {m for m in found if m in MODULES and m != module}


GRAPH = {module: imports_of(module) for module in MODULES}


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m))
def test_imports_point_down(module: str) -> None:
    mine = layer_of(module)
    upward = sorted(f"{target} ({LAYERS[layer_of(target)][0]})" for target in GRAPH[module]
                    if layer_of(target) > mine)
    assert not upward, f"{module} ({LAYERS[mine][0]}) imports from higher layers: {', '.join(upward)}"


def test_no_import_cycles() -> None:
    # Tarjan's strongly connected components over every module.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    assert not cycles, f"import cycles: {cycles}"


def test_every_module_has_a_layer_and_the_check_sees_lazy_imports() -> None:
    for module in MODULES:
        layer_of(module)
    # A function-level import is seen: the CLI imports the factory only inside its commands.
    assert any(target == "factory" or target.startswith("factory") for target in GRAPH["cli"] | set().union(
        *(GRAPH[m] for m in MODULES if m.startswith("cli."))))
