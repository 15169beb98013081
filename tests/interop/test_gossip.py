"""Announcements over gossipsub between rlp2p and js-libp2p (`@libp2p/gossipsub`, interop/node.mjs).

A js node subscribed to a log's topic receives the record a Python storage peer announces when it
accepts it, and checks it with js `ipns` (signature, name, validity); a Python follower's
announcements subscription receives a record that the js node publishes (republishes), verified
by rlp2p's topic validator, delivered by the js peer.
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone

import pytest
import trio

from interop.jsnode import JsNode
from rl_util import js_id, wait_for

from rlp2p.core.keys import generate_log_key
from rlp2p.core.page import LogMode
from rlp2p.core.record import create_record, verify_record

pytestmark = pytest.mark.interop


async def test_js_receives_and_validates_an_announcement_and_a_py_follower_hears_js(swarm, js_deps):
    storage = await swarm.add_storage(1)
    alice = await swarm.start_node("alice")
    key = generate_log_key()
    publisher = alice.publisher(key, mode=LogMode.paged(16, embed=1), replicas=1, replica_peers=[storage[0].peer_id])
    await publisher.append([b"first"])
    await publisher.publish()
    name = publisher.name

    bob = await swarm.start_node("bob")
    heard: list = []
    async with JsNode() as js, bob.announcements.listening(name, heard.append):
        await js.call("gossip_subscribe", name=name)
        await storage[0].connect(js.addrs[0])
        await bob.connect(js.addrs[0])

        async def js_meshed():
            peers = await js.call("gossip_peers", name=name)
            return str(storage[0].peer_id) in peers["subscribers"] and str(bob.peer_id) in peers["subscribers"]

        await wait_for(js_meshed, "the js node to see both rlp2p subscribers")

        # 1. rlp2p -> js: the storage peer announces seq 2 when it accepts it
        await publisher.append([b"second"])
        await publisher.publish()

        async def js_got():
            got = (await js.call("gossip_received"))["announcements"]
            return [a for a in got if a.get("seq") == 2] or None

        got = await wait_for(js_got, "the js node to receive the announcement")
        assert got[0]["valid"] is True, got[0]
        assert got[0]["topic"] == f"/rlp2p/log/{name}"

        # 2. js -> rlp2p: a newer record (seq 3, Alice's key, never stored anywhere) published by js
        state = await bob.reader().state(name)
        assert state.record_seq == 0  # Bob heard seq 2 but synced nothing: his held seq is 0
        stored = storage[0].store.get_record(name)
        assert stored is not None
        head = verify_record(name, stored.record).head
        record = create_record(key, head, 3, now=datetime.now(timezone.utc))
        before = bob.announcements.stats.accepted_new
        await js.call("gossip_publish", name=name, record_b64=base64.b64encode(record).decode())
        with trio.fail_after(15):
            while not any(info.sequence == 3 for info in heard):
                await trio.sleep(0.05)
        assert bob.announcements.stats.accepted_new > before
        assert bob.announcements.via[name] == js_id(js)  # delivered by the js peer
        assert bob.announcements.stats.rejected == 0

