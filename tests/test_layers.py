"""Dependencies point one way: the ground floor imports nothing of ours, and no two
modules named here import each other. Read from the source (imports inside
functions and under TYPE_CHECKING count too), so nothing is imported to check."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "modelyard"


def _imports(module: str) -> set[str]:
    """Every ``modelyard...`` module that ``module``'s source imports, anywhere in it."""
    path = SRC.joinpath(*module.split(".")[1:])
    file = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    found: set[str] = set()
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m == "modelyard" or m.startswith("modelyard.")}


def test_errors_is_the_ground_floor() -> None:
    # Every layer raises these errors; an import from errors.py upward would close a
    # circle through it (it once reached into loading.check for a type).
    assert _imports("modelyard.errors") == set()


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("modelyard.batch._parse", "modelyard.batch.files"),
        ("modelyard.errors", "modelyard.loading.check"),
    ],
)
def test_no_circle(a: str, b: str) -> None:
    assert not (b in _imports(a) and a in _imports(b)), f"{a} and {b} import each other"
