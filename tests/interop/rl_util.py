"""Helpers of the interop tests that involve rlp2p nodes: js peers as py peer ids, bounded waits,
and one comparable form for what a js reader and a py reader delivered."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio
from libp2p.peer.id import ID

from interop.jsnode import JsNode

T = TypeVar("T")

#: a bound on every wait for something to spread through a swarm (a DHT announcement)
SPREAD_WAIT = 15.0
POLL = 0.1


def js_id(js: JsNode) -> ID:
    return ID.from_base58(js.peer_id)


async def wait_for(check: Callable[[], Awaitable[T | None]], what: str, timeout: float = SPREAD_WAIT) -> T:
    """Call ``check`` until it returns something truthy; at most ``timeout`` seconds (and as many
    tries as fit in it at one every POLL seconds)."""
    with trio.move_on_after(timeout):
        for _ in range(int(timeout / POLL) + 1):
            result = await check()
            if result:
                return result
            await trio.sleep(POLL)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def py_messages(deliveries: list[Any]) -> list[tuple[int, str, str, str, bytes]]:
    """(seq, id hex, group_id hex, timestamp, body) of what a py reader delivered."""
    return [
        (d.seq, d.id.hex(), d.message.group_id.hex(), str(d.message.timestamp), d.message.body)
        for d in deliveries
    ]


def js_messages(result: dict[str, Any]) -> list[tuple[int, str, str, str, bytes]]:
    """The same, from the js reader's ``rl_sync`` answer."""
    return [
        (m["seq"], m["id"], m["group_id"], m["timestamp"], base64.b64decode(m["body_b64"]))
        for m in result["messages"]
    ]


def assert_stopped(*nodes: JsNode) -> None:
    """Each js node a test started stopped cleanly and wrote nothing unexpected on stdout."""
    for js in nodes:
        assert js.returncode == 0, f"js node {js.peer_id} did not stop cleanly (exit code {js.returncode})"
        assert not js.protocol_errors, f"js node {js.peer_id} wrote unexpected lines: {js.protocol_errors}"
