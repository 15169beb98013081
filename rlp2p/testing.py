"""Helpers for applications' own tests: a swarm of rlp2p nodes in one process on 127.0.0.1.

    async with trio.open_nursery() as nursery:
        swarm = LocalSwarm(tmp_path, nursery)
        await swarm.add_storage(3)
        alice = await swarm.start_node("alice")
        ...
        await swarm.close()
"""

from rlp2p.node.swarm import LocalSwarm

__all__ = ["LocalSwarm"]
