"""A local swarm of nodes in one process, on 127.0.0.1: for the demo, tests and benchmarks.

Each node runs in its own task (see :meth:`Node.start`), so any of them can be stopped and
started again from its data folder, in any order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from rlp2p.node.node import Node, NodeConfig


class LocalSwarm:
    def __init__(self, root: Path, nursery: trio.Nursery, **config: Any) -> None:
        self.root = Path(root)
        self.nursery = nursery
        self.config = config  # NodeConfig fields every node gets (timeout, limits, ...)
        self.storage: list[Node] = []
        self.running: list[Node] = []

    @property
    def bootstrap(self) -> tuple[str, ...]:
        """The first running storage peer's address: how everyone else joins."""
        for node in self.storage:
            if node in self.running:
                return (node.addrs[0],)
        return ()

    async def start_node(self, name: str, *, storage: bool = False, bootstrap: tuple[str, ...] | None = None, **config: Any) -> Node:
        """Start (or restart, from its data folder) the node called ``name``."""
        merged = {**self.config, **config}
        boot = self.bootstrap if bootstrap is None else bootstrap
        node = Node.open(self.root / name, config=NodeConfig(storage=storage, bootstrap=boot, **merged))
        await node.start(self.nursery)
        self.running.append(node)
        if storage:
            self.storage.append(node)
        return node

    async def add_storage(self, count: int, prefix: str = "storage") -> list[Node]:
        first = len(self.storage)
        return [await self.start_node(f"{prefix}{first + i}", storage=True) for i in range(count)]

    async def stop(self, node: Node) -> None:
        if node in self.running:
            self.running.remove(node)
            await node.stop()
            node.close_store()
        if node in self.storage:
            self.storage.remove(node)

    async def close(self) -> None:
        for node in list(reversed(self.running)):
            await self.stop(node)
