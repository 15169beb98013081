"""rlp2p: Vac 3/REMOTE-LOG for py-libp2p.

The names an application needs, imported lazily so that ``import rlp2p.core`` stays light::

    from rlp2p import Node, NodeConfig, LogMode, generate_log_key

    async with Node.open("data/alice", config=NodeConfig(bootstrap=[addr])) as node:
        publisher = node.publisher(generate_log_key(), mode=LogMode.paged(64))
        await publisher.append([b"hello"])
        await publisher.publish()
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Node": "rlp2p.node.node",
    "NodeConfig": "rlp2p.node.node",
    "LocalSwarm": "rlp2p.node.swarm",
    "LogMode": "rlp2p.core.page",
    "Message": "rlp2p.core.message",
    "message_id": "rlp2p.core.message",
    "generate_log_key": "rlp2p.core.keys",
    "load_key": "rlp2p.core.keys",
    "save_key": "rlp2p.core.keys",
    "log_name": "rlp2p.core.keys",
    "Limits": "rlp2p.limits",
    "open_store": "rlp2p.store",
    "Rlp2pError": "rlp2p.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rlp2p' has no attribute {name!r}")
    return getattr(import_module(module), name)
