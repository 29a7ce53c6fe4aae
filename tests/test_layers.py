"""The package layer rule: lower layers never import higher ones.

Floors, ground first: dsp, persistence; engine, accounts; session; transport; web.
Each package may import only the packages listed for it (and itself), checked on
every ``import`` in its source, including imports inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = {"dsp", "persistence", "engine", "accounts", "session", "transport", "web", "perf"}
ALLOWED: dict[str, set[str]] = {
    "dsp": set(),
    "persistence": set(),
    "engine": {"dsp"},
    "accounts": {"persistence"},
    "session": {"engine", "persistence", "accounts", "dsp"},
    "transport": {"session", "engine", "persistence", "accounts", "dsp"},
    "web": {"transport", "session", "engine", "persistence", "accounts", "dsp"},
    "perf": {"web", "transport", "session", "engine", "persistence", "accounts", "dsp"},
}


def imported_packages(path: Path) -> set[tuple[str, int]]:
    tree = ast.parse(path.read_text("utf-8"), filename=str(path))
    found: set[tuple[str, int]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update((alias.name.split(".")[0], node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add((node.module.split(".")[0], node.lineno))
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_layer_rule(package: str) -> None:
    violations = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for name, line in imported_packages(path):
            if name in PROJECT and name != package and name not in ALLOWED[package]:
                violations.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not violations, "layer rule broken:\n" + "\n".join(violations)


def test_checker_sees_violations(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from web.app import create_app\n    import session.bus\n")
    assert {n for n, _ in imported_packages(bad)} == {"web", "session"}
