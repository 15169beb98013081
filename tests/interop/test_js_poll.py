"""NS Poll (rlp2p extension) against the js storage peer (interop/rlp2p-storage.mjs), which does
not speak it: the reader falls back to the spec's Fetch there, and a py storage peer beside it
is polled as usual."""

from __future__ import annotations

import pytest

from interop.jsnode import JsNode
from rl_util import js_id

from rlp2p.core.keys import generate_log_key
from rlp2p.core.page import LogMode
from rlp2p.node.polling import PollReport

pytestmark = pytest.mark.interop


async def test_a_js_storage_peer_without_poll_is_asked_with_fetch(swarm, js_deps):
    async with JsNode("--storage") as store:
        store_id = js_id(store)
        (py_storage,) = await swarm.add_storage(1)
        peers = [store_id, py_storage.peer_id]
        alice = await swarm.start_node("alice", bootstrap=())
        await alice.connect(store.addrs[0])
        await alice.connect(py_storage.addrs[0])
        publisher = alice.publisher(generate_log_key(), mode=LogMode.paged(5, embed=0), replicas=2, replica_peers=peers)
        await publisher.append([b"one", b"two"])
        await publisher.publish()

        bob = await swarm.start_node("bob", bootstrap=())
        await bob.connect(store.addrs[0])
        await bob.connect(py_storage.addrs[0])
        reader = bob.reader(storage_peers=peers)
        report = PollReport()
        polls = await reader.poll([publisher.name], report)
        result = polls[publisher.name]
        assert result.changed and result.best.sequence == 1 and result.holders == peers
        assert report.fell_back == [store_id.to_string()] and not report.failed
        assert report.round_trips == {store_id.to_string(): 2, py_storage.peer_id.to_string(): 1}

        got: list = []
        await reader.sync_many([publisher.name], on_message=got.append)
        assert [d.message.body for d in got] == [b"one", b"two"]
        # caught up: both say so, the js peer through Fetch
        again = await reader.poll([publisher.name])
        assert not again[publisher.name].changed and again[publisher.name].answered == 2
