"""The benchmarks live outside the package and use it from outside."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_package_has_no_benchmark_code():
    # what rlp2p/ may import (nothing from bench/, interop/, tests/) is tests/test_structure.py's
    assert not (ROOT / "rlp2p" / "bench").exists()


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
