"""The public surface: what `import rlp2p` promises, and examples that use only it."""

import ast
import subprocess
import sys
from pathlib import Path

import rlp2p

ROOT = Path(__file__).resolve().parent.parent


def test_every_exported_name_resolves():
    for name in rlp2p.__all__:
        assert getattr(rlp2p, name) is not None, name
    for name in ("Node", "NodeConfig", "Publisher", "Reader", "PublishReport", "SyncReport", "Delivery", "PublishError"):
        assert name in rlp2p.__all__


def test_every_error_is_public():
    import inspect

    import rlp2p.errors

    errors = {n for n, c in inspect.getmembers(rlp2p.errors, inspect.isclass) if issubclass(c, rlp2p.errors.Rlp2pError)}
    assert errors <= set(rlp2p.__all__), errors - set(rlp2p.__all__)


def test_test_helpers_are_not_public_api():
    assert "LocalSwarm" not in rlp2p.__all__
    from rlp2p.testing import LocalSwarm

    assert LocalSwarm.__name__ == "LocalSwarm"


def test_import_rlp2p_is_light():
    # the CLI's start-up depends on it: names are imported when first used
    code = "import sys, rlp2p; print(any(m.startswith('libp2p') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_examples_import_only_the_public_api():
    for path in sorted((ROOT / "examples").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            modules = []
            if isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            for module in modules:
                if module.split(".")[0] == "rlp2p":
                    assert module in ("rlp2p", "rlp2p.testing"), f"{path.name} imports {module}"
