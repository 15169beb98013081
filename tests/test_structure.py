"""The package's shape, read from the source with ``ast``: no import cycle, one libp2p boundary.

Every ``import`` counts, those inside functions too (a cycle hidden in a method is still a
cycle); those under ``if TYPE_CHECKING:`` do not (they never run). An import names the module it
loads; the package ``__init__`` files Python runs on the way are not edges (a package that
re-exports its submodules would otherwise be a cycle with each of them).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "rlp2p"
#: py-libp2p (and multiaddr) modules any part of rlp2p may use: formats and types, no networking
SHARED_LIBP2P = {
    "libp2p.crypto": "log keys are libp2p Ed25519 keys; records are signed with them",
    "libp2p.peer.id": "a log's name is a peer id; peers are named by it everywhere",
    "libp2p.records": "the IPNS validator and record protobuf behind core/record.py",
    "libp2p.custom_types": "TProtocol, the str type protocol ids are declared with",
    "libp2p.utils.varint": "the varint codec of the wire framing",
    "libp2p.io.exceptions": "the stream read error the framing turns into StreamClosed",
    "libp2p.rcmgr.token_bucket": "a pure token bucket behind the admission policy's rate limit",
    "multiaddr": "the address format: the CLI checks addresses without loading py-libp2p",
}
#: networking imports outside rlp2p/p2p/, each with why it is still there
ALLOWED_ELSEWHERE = {
    ("rlp2p.node.announce", "libp2p.pubsub"): "gossipsub announcements; the live branch rewrites this module now",
    ("rlp2p.node.announce", "libp2p.tools.anyio_service"): "runs gossipsub's service (same module as above)",
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(path: Path, name: str) -> list[str]:
    """Every module ``path`` imports (absolute names), outside ``if TYPE_CHECKING:`` blocks."""
    is_package = path.name == "__init__.py"
    out: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            out.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            out.append(base)
            # `from pkg import sub` loads pkg.sub when sub is a module
            out.extend(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), filename=str(path)))
    return out


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: {i for i in imports(p, m) if i in mods and i != m} for m, p in mods.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            strong(v)
    return found


def test_the_checker_sees_function_level_imports_and_cycles(tmp_path):
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import rlp2p.hidden\n"
        "def f():\n    from rlp2p.node import peers\n    from . import sibling\n"
    )
    assert imports(source, "rlp2p.node.m") == [
        "typing",
        "typing.TYPE_CHECKING",
        "rlp2p.node",
        "rlp2p.node.peers",
        "rlp2p.node",
        "rlp2p.node.sibling",
    ]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle():
    assert cycles(graph()) == []


def test_the_package_imports_no_test_or_bench_code():
    bad = []
    for m, p in modules().items():
        for i in imports(p, m):
            if i.split(".")[0] in ("tests", "bench", "interop"):
                bad.append(f"{m} imports {i}")
    assert bad == []


def _networking(module: str) -> bool:
    if module.split(".")[0] not in ("libp2p", "multiaddr"):
        return False
    return not any(module == ok or module.startswith(ok + ".") for ok in SHARED_LIBP2P)


def test_libp2p_networking_is_imported_only_under_p2p():
    bad = []
    used_allowances = set()
    for m, p in modules().items():
        if m.startswith("rlp2p.p2p"):
            continue
        for i in imports(p, m):
            if not _networking(i):
                continue
            allowance = next((k for k in ALLOWED_ELSEWHERE if k[0] == m and (i == k[1] or i.startswith(k[1] + "."))), None)
            if allowance is None:
                bad.append(f"{m} imports {i}")
            else:
                used_allowances.add(allowance)
    assert bad == []
    # an allowance nothing needs any more goes
    assert used_allowances == set(ALLOWED_ELSEWHERE)


def test_publisher_and_reader_are_given_collaborators_not_the_node():
    # not even for type hints: what they may reach is what node/peers.py and the store offer
    for module in ("rlp2p.node.publisher", "rlp2p.node.reader"):
        path = modules()[module]
        named = {
            n.module for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ImportFrom) and n.module
        }
        assert "rlp2p.node.node" not in named, module
        assert "self.node" not in path.read_text(), module
