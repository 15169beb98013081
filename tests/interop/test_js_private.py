"""The independent js reader (interop/rlp2p-client.mjs + rlp2p-private.mjs) reads a private log
that a Python Alice published, given the capability, and delivers what a Python Bob delivers;
a wrong or outdated capability is a typed error there too."""

from __future__ import annotations

import pytest

from interop.jsnode import JsNode, JsNodeError
from rl_util import assert_stopped, js_messages, py_messages

from rlp2p.core.keys import generate_log_key
from rlp2p.core.page import LogMode
from rlp2p.core.private import Capability, new_seed

pytestmark = pytest.mark.interop


def bodies(start: int, count: int) -> list[bytes]:
    special = {0: b"", 3: bytes(range(256)), 5: b"\xff" * 70_000}
    return [special.get(i, f"private {i}".encode()) for i in range(start, start + count)]


async def test_js_reader_reads_a_private_log_with_the_capability(swarm, js_deps):
    storage = await swarm.add_storage(2)
    alice = await swarm.start_node("alice")
    publisher = alice.publisher(generate_log_key(), mode=LogMode.paged(4, embed=2), replicas=2, private=True)
    await publisher.append(bodies(0, 6), timestamp=1_700_000_000)
    await publisher.publish()
    old = str(await publisher.capability())
    new = str(await publisher.rotate())
    await publisher.append(bodies(6, 3), timestamp=-5)
    await publisher.publish()
    name = publisher.name
    peers = [s.addrs[0] for s in storage]

    bob = await swarm.start_node("bob")
    py_got: list = []
    await bob.reader().sync(new, on_message=py_got.append)
    assert [d.message.body for d in py_got] == bodies(0, 9)
    async with JsNode() as js:
        got = await js.call("rl_sync", name=name, peers=peers, delivered_seq=0, capability=new)
        assert js_messages(got) == py_messages(py_got)
        assert got["bypassed"] == {}
        got = await js.call("rl_sync", name=name, peers=peers, delivered_seq=7, capability=new)
        assert js_messages(got) == py_messages(py_got[7:])
        with pytest.raises(JsNodeError, match="CapabilityOutdated"):
            await js.call("rl_sync", name=name, peers=peers, delivered_seq=0, capability=old)
        wrong = str(Capability(name, 1, new_seed()))
        with pytest.raises(JsNodeError, match="WrongCapability"):
            await js.call("rl_sync", name=name, peers=peers, delivered_seq=0, capability=wrong)
        # without the capability the pages say the log is private
        with pytest.raises(JsNodeError, match="CapabilityRequired"):
            await js.call("rl_sync", name=name, peers=peers, delivered_seq=0)
    assert_stopped(js)
