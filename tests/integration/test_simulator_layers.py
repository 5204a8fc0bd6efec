"""The simulator's modules import one way: facade -> dispatch -> handlers -> world -> connection
-> settings, and nothing inside the package imports the facade (``simulator.py``)."""

from __future__ import annotations

import ast
from pathlib import Path

import ctrader_typed.testing

PACKAGE = Path(ctrader_typed.testing.__file__).parent
PREFIX = "ctrader_typed.testing"
LAYERS = ["simulator", "_dispatch", "_handlers", "_world", "_connection", "_settings"]
"""Top first: a module may import only the modules below it."""
CONSUMERS = {"__init__", "__main__", "cli", "pytest_plugin"}
"""The package's faces and entry points: they use the facade, nothing uses them."""


def imported(module: str) -> set[str]:
    """Modules of the package that ``module`` imports (under ``TYPE_CHECKING`` too)."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            if node.module == PREFIX:
                names.update(f"{PREFIX}.{alias.name}" for alias in node.names)
            else:
                names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n.removeprefix(f"{PREFIX}.") for n in names if n.startswith(f"{PREFIX}.")}


def test_nothing_inside_the_package_imports_the_facade() -> None:
    modules = {p.stem for p in PACKAGE.glob("*.py")} - CONSUMERS - {"simulator"}
    assert modules, "no modules found"
    importers = {m for m in modules if "simulator" in imported(m)}
    assert importers == set()


def test_the_parts_of_the_simulator_import_downwards_only() -> None:
    for level, module in enumerate(LAYERS):
        above = set(LAYERS[:level]) | {module}
        assert imported(module) & above == set(), f"{module} imports a module at or above it"
