"""Helpers for applications' own tests: a swarm of rlp2p nodes in one process on 127.0.0.1.

    async with trio.open_nursery() as nursery:
        swarm = LocalSwarm(tmp_path, nursery)
        await swarm.add_storage(3)
        alice = await swarm.start_node("alice")
        ...
        await swarm.close()
"""

from collections.abc import Callable
from typing import Any

import trio

from rlp2p.node.swarm import LocalSwarm

__all__ = ["LocalSwarm", "follow_in", "until"]


async def follow_in(nursery: trio.Nursery, follower: Any) -> trio.CancelScope:
    """Run ``follower`` (a :class:`rlp2p.node.follow.Follower`) in ``nursery`` and return once it
    caught up on every log; cancel the returned scope to stop it."""
    scope = trio.CancelScope()

    async def run(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        with scope:
            await follower.run(task_status=task_status)

    await nursery.start(run)
    await follower.caught_up.wait()
    return scope


async def until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    """Return once ``condition()`` holds, checking every 10 ms; ``trio.TooSlowError`` after
    ``timeout`` seconds (a follower's message that never arrived fails the test, never hangs it)."""
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.01)
