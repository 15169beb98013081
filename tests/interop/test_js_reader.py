"""A second implementation of rlp2p's reader, in JavaScript (interop/rlp2p-client.mjs, built from
proto/ only), syncs logs that a Python Alice published to Python storage peers, and must deliver
exactly what a Python Bob delivers: the same messages, MVDS ids and order.

The js reader fetches the record over /vac/ns/1.0.0 and validates it with js `ipns`, walks the
pages over /vac/cas/1.0.0 on one pipelined stream, fetches the blocks that are not embedded,
checks every block's sha2-256 against its CID and every message's MVDS id.
"""

from __future__ import annotations

import base64

import pytest

from interop.jsnode import JsNode
from rl_util import assert_stopped, js_messages, py_messages

from rlp2p.core.keys import generate_log_key
from rlp2p.core.page import LogMode

pytestmark = pytest.mark.interop

MODES = [
    LogMode.paged(4, embed=0),
    LogMode.linked_list(embed=None),
    LogMode.fully_replicated(embed=3),
]


def bodies(start: int, count: int) -> list[bytes]:
    # text, binary, empty and large bodies
    special = {0: b"", 3: bytes(range(256)), 5: b"\xff" * 70_000}
    return [special.get(i, f"message {i}".encode()) for i in range(start, start + count)]


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.describe())
async def test_js_reader_delivers_what_a_py_reader_delivers(swarm, js_deps, mode):
    storage = await swarm.add_storage(2)
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key(), mode=mode, replicas=2)
    await publisher.append(bodies(0, 10), timestamp=1_700_000_000)
    first = await publisher.publish()
    assert len(first.stored_on) == 2
    name = publisher.name
    peers = [s.addrs[0] for s in storage]

    bob = await swarm.start_node("bob")
    async with JsNode() as js:
        got = await js.call("rl_sync", name=name, peers=peers, delivered_seq=0)
        py_got: list = []
        py = await bob.reader().sync(name, on_message=py_got.append)
        assert [d.message.body for d in py_got] == bodies(0, 10)
        assert js_messages(got) == py_messages(py_got)
        assert got["record"]["sequence"] == str(first.sequence) == str(py.record_seq)
        assert got["head_seq"] == 10
        assert got["bypassed"] == {}
        assert got["streams"] == 3  # one NS stream to each peer, one CAS stream for everything
        page_size = mode.page_size or 10**6  # one page holds everything
        assert got["pages"] == -(-10 // page_size)  # every page, once

        # Alice appends; both readers take only what is new, from where they stopped
        await publisher.append(bodies(10, 3), timestamp=-5)  # a negative int64 timestamp too
        second = await publisher.publish()
        got = await js.call("rl_sync", name=name, peers=peers, delivered_seq=10)
        py_got = []
        await bob.reader().sync(name, on_message=py_got.append)
        assert [d.seq for d in py_got] == [11, 12, 13]
        assert js_messages(got) == py_messages(py_got)
        assert got["record"]["sequence"] == str(second.sequence)
        # the walk stops at the page holding seq 11
        assert got["pages"] == (13 - 1) // page_size - 10 // page_size + 1

        # caught up: nothing, after the head page
        got = await js.call("rl_sync", name=name, peers=peers, delivered_seq=13)
        assert got["messages"] == [] and got["pages"] == 1
    assert_stopped(js)


async def test_js_reader_falls_over_to_a_replica_that_holds_the_log(swarm, js_deps):
    """The first peer named holds nothing of this log (NOT_FOUND for the record), the second has
    it: the js reader bypasses the first, as the py reader does. 300 message blocks: more than
    one pipelined batch (256)."""
    holder, bystander = await swarm.add_storage(2)
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key(), mode=LogMode.paged(50, embed=0), replica_peers=[holder.peer_id], replicas=1)
    await publisher.append(bodies(0, 300))
    await publisher.publish()
    async with JsNode() as js:
        got = await js.call("rl_sync", name=publisher.name, peers=[bystander.addrs[0], holder.addrs[0]])
    assert_stopped(js)
    assert [m["seq"] for m in got["messages"]] == list(range(1, 301))
    assert [base64.b64decode(m["body_b64"]) for m in got["messages"]] == bodies(0, 300)
    assert got["pages"] == 6
    # one NS stream to each peer, then one CAS stream for every page and block (pipelined)
    assert got["streams"] == 3
    assert got["record_from"] == holder.addrs[0]
    assert "NOT_FOUND" in got["bypassed"][bystander.addrs[0]]
    assert got["peers_used"] == [holder.addrs[0]]
