"""The js reader (interop/rlp2p-client.mjs, from proto/ only) reads a log whose history Alice
truncated: what is left, the same as a Python reader, and the seqs that are gone."""

from __future__ import annotations

import pytest

from interop.jsnode import JsNode
from rl_util import assert_stopped, js_messages, py_messages

from rlp2p.core.keys import generate_log_key
from rlp2p.core.page import LogMode

pytestmark = pytest.mark.interop


@pytest.mark.parametrize("mode", [LogMode.paged(4, embed=0), LogMode.fully_replicated(embed=None)], ids=lambda m: m.describe())
async def test_js_reader_reads_a_truncated_log(swarm, js_deps, mode):
    storage = await swarm.add_storage(1)
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key(), mode=mode, replicas=1)
    await publisher.append([f"message {i}".encode() for i in range(1, 21)], timestamp=1_700_000_000)
    await publisher.truncate(before=10)
    name, peers = publisher.name, [storage[0].addrs[0]]

    bob = await swarm.start_node("bob")
    async with JsNode() as js:
        got = await js.call("rl_sync", name=name, peers=peers, delivered_seq=0)
        py_got: list = []
        py = await bob.reader().sync(name, on_message=py_got.append)
        assert [d.seq for d in py_got] == list(range(10, 21)) and py.gone == (1, 9)
        assert js_messages(got) == py_messages(py_got)
        assert (got["first_seq"], got["gone"]) == (10, [1, 9])
        got = await js.call("rl_sync", name=name, peers=peers, delivered_seq=12)
        assert [m["seq"] for m in got["messages"]] == list(range(13, 21)) and got["gone"] is None
    assert_stopped(js)
