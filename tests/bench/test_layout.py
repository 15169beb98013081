"""The benchmarks live outside the package: rlp2p/ never imports bench/, interop/ or tests/."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUTSIDE = ("bench", "interop", "tests")


def _imported(tree: ast.AST) -> list[str]:
    # every import, those inside functions too
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def test_the_package_has_no_benchmark_code_and_imports_nothing_outside_it():
    assert not (ROOT / "rlp2p" / "bench").exists()
    offending = []
    for path in sorted((ROOT / "rlp2p").rglob("*.py")):
        for name in _imported(ast.parse(path.read_text(), str(path))):
            if name.split(".")[0] in OUTSIDE or name.startswith("rlp2p.bench"):
                offending.append(f"{path.relative_to(ROOT)}: {name}")
    assert offending == []


def test_the_benchmarks_touch_no_private_attribute():
    # bench/ may wrap public methods for timing, never read or set another object's "_name"
    # (its own classes' self._x are theirs; dunders such as __dict__ are not private)
    found = []
    for path in sorted((ROOT / "bench").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Attribute) or not node.attr.startswith("_") or node.attr.startswith("__"):
                continue
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            found.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
    assert found == []
