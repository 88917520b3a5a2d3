"""What the distribution declares matches what the package does.

- Every distribution imported anywhere in ``llm_connectors`` is declared: as a run-time
  dependency, or in the extra that the importing feature documents. (``make test`` also installs
  the built wheel into clean virtualenvs, ``scripts/clean_install.py``; this test names the
  offending import without a build.)
- Every run-time dependency is imported somewhere (no dead weight in a bare install).
- Every ``pip install '<name>[extra]'`` hint in code and docs names our distribution and a real extra.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "llm_connectors"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]

# Import name -> distribution, for the imports whose names differ from their distribution's.
DISTRIBUTION_OF = {"llama_cpp": "llama-cpp-python", "opentelemetry": "opentelemetry-api", "yaml": "pyyaml"}
# Imports a caller's own environment provides, each allowed only in the modules named, and why.
CALLER_PROVIDED = {
    # Only reached when the caller's code already runs under trio (so trio is installed).
    "trio": {"_asynclib.py", "http/bodies.py"},
    # Only imported once trio is imported; trio depends on sniffio.
    "sniffio": {"_asynclib.py"},
}
DEV_ONLY_EXTRAS = {"dev", "bench", "docs"}


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _type_checking_only(tree: ast.AST) -> set[int]:
    """ids of the import nodes under ``if TYPE_CHECKING:``, which never run."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            skipped |= {id(inner) for stmt in node.body for inner in ast.walk(stmt)}
    return skipped


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level import name -> the package modules (paths relative to the package) importing it at run time."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = _type_checking_only(tree)
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "llm_connectors":
                    found.setdefault(top, set()).add(str(path.relative_to(PACKAGE)))
    return found


def _declared() -> tuple[set[str], dict[str, set[str]]]:
    runtime = {_name(r) for r in PROJECT["dependencies"]}
    extras = {extra: {_name(r) for r in reqs} for extra, reqs in PROJECT["optional-dependencies"].items()
              if extra not in DEV_ONLY_EXTRAS}
    return runtime, extras


IMPORTS = _third_party_imports()


@pytest.mark.parametrize("module", sorted(IMPORTS))
def test_every_imported_distribution_is_declared(module: str) -> None:
    runtime, extras = _declared()
    importers = IMPORTS[module]
    if module in CALLER_PROVIDED:
        unexpected = importers - CALLER_PROVIDED[module]
        assert not unexpected, f"{module} may only be imported in {CALLER_PROVIDED[module]}, also in {unexpected}"
        return
    distribution = DISTRIBUTION_OF.get(module, module).lower().replace("_", "-")
    in_extras = [extra for extra, names in extras.items() if distribution in names]
    assert distribution in runtime or in_extras, (
        f"{', '.join(sorted(importers))} import(s) {module!r}, but the distribution {distribution!r} is neither "
        f"in [project] dependencies nor in an extra of pyproject.toml")


def test_every_runtime_dependency_is_used() -> None:
    runtime, _ = _declared()
    imported = {DISTRIBUTION_OF.get(m, m).lower().replace("_", "-") for m in IMPORTS}
    unused = runtime - imported
    assert not unused, f"declared but never imported: {sorted(unused)}"


def test_the_known_undeclared_import_would_be_caught() -> None:
    # sniffio is no longer installed by anyio (>= 4.15) or httpx (0.29): outside _asynclib.py,
    # where trio guarantees it, an import of it must fail this file's check.
    assert "_pool.py" not in CALLER_PROVIDED["sniffio"]
    runtime, extras = _declared()
    assert "sniffio" not in runtime and not any("sniffio" in names for names in extras.values())


def _hints() -> list[tuple[str, str, str]]:
    files = [*PACKAGE.rglob("*.py"), *(ROOT / "docs").rglob("*.md"), ROOT / "README.md",
             *(ROOT / "examples").glob("*.py")]
    pattern = re.compile(r"pip install (?:-U )?'?([A-Za-z0-9_.-]+)\[([a-z,]+)\]")
    return [(str(path.relative_to(ROOT)), m.group(1), m.group(2))
            for path in files for m in pattern.finditer(path.read_text(encoding="utf-8"))]


def test_install_hints_name_our_distribution_and_real_extras() -> None:
    hints = _hints()
    assert len(hints) >= 10  # the pattern still finds them
    extras = set(PROJECT["optional-dependencies"])
    for where, name, wanted in hints:
        if name == "llama-cpp-python":
            continue  # llama-cpp-python's own extras
        assert name == PROJECT["name"], f"{where}: pip install {name}[...] is not our distribution"
        assert set(wanted.split(",")) <= extras, f"{where}: unknown extra in {wanted!r}"


def test_license_is_shipped() -> None:
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
    assert PROJECT["license"] == "MIT" and PROJECT["license-files"] == ["LICENSE"]
    sdist = PYPROJECT["tool"]["hatch"]["build"]["targets"]["sdist"]["include"]
    for needed in ("LICENSE", "Makefile", "mkdocs.yml", "tests", "scripts", "benchmarks", "examples", "docs"):
        assert needed in sdist, f"the sdist does not include {needed} (make test needs it)"
